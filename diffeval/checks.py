"""Range checks of settings, shared by the configs of every layer: one-line ValueErrors that name the option."""

from __future__ import annotations

import math
from collections.abc import Mapping


def _dash(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def require_ints(minimum: Mapping[str, tuple[object, int]]) -> None:
    """Each ``name: (value, lo)`` must be an int (not a bool) >= lo; else ``--name: must be an integer >= lo``
    (underscores written as dashes, as the CLI spells the option)."""
    for name, (value, lo) in minimum.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{_dash(name)}: must be an integer >= {lo}, got {value!r}")


def require_seeds(**seeds: object) -> None:
    """Each seed must be an integer in [0, 2**32): noise is seeded by a seed's 32 bits, so -1 would alias
    2**32 - 1."""
    for name, value in seeds.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise ValueError(f"{_dash(name)}: must lie in [0, 2**32), got {value!r}")


def require_range(name: str, value: object, lo: float = -math.inf, hi: float = math.inf, *,
                  open_lo: bool = False, open_hi: bool = False) -> float:
    """``value`` as a float, which must be finite and lie in the range (ends open where asked); else
    ``--name: must be a finite number in [lo, hi]`` (or ``> lo`` / ``>= lo`` when there is no upper end)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = math.nan
    inside = math.isfinite(v) and (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
    if not inside:
        if hi == math.inf:
            where = f"{'>' if open_lo else '>='} {lo:g}"
        else:
            where = f"in {'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        raise ValueError(f"{_dash(name)}: must be a finite number {where}, got {value!r}")
    return v
