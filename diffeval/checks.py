"""Range checks of settings, shared by the configs of every layer: one-line ValueErrors that name the option."""

from __future__ import annotations

from collections.abc import Mapping


def require_ints(minimum: Mapping[str, tuple[object, int]]) -> None:
    """Each ``name: (value, lo)`` must be an int (not a bool) >= lo; else ``--name: must be an integer >= lo``
    (underscores written as dashes, as the CLI spells the option)."""
    for name, (value, lo) in minimum.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"--{name.replace('_', '-')}: must be an integer >= {lo}, got {value!r}")
