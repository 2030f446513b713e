"""Read a watermark key file of either scheme: Tree-Ring (``keys.save_key``), Gaussian Shading
(``gaussian_shading.save_shading_key``) or a key set of either (``keyset.save_keyset``), told apart by the
``format`` in the file's header."""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open

from .gaussian_shading import GS_FORMAT, ShadingKey, load_shading_key
from .keys import WatermarkKey, load_key
from .keyset import KEYSET_FORMAT, KeySet, is_shading, load_keyset

AnyKey = WatermarkKey | ShadingKey | KeySet
SCHEMES = ("tree-ring", "gaussian-shading")


def scheme_of(key: AnyKey) -> str:
    return "gaussian-shading" if is_shading(key) else "tree-ring"


def load_any_key(path: str | Path) -> AnyKey:
    """The key in ``path``, of whichever scheme its header names; the schemes' own clear errors otherwise."""
    path = Path(path)
    fmt = None
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as f:
                fmt = (f.metadata() or {}).get("format")
        except Exception:  # not safetensors: load_key says so in its own words
            fmt = None
    if fmt == KEYSET_FORMAT:
        return load_keyset(path)
    return load_shading_key(path) if fmt == GS_FORMAT else load_key(path)
