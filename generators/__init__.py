"""Bundled diffusion generators behind one interface.

Importing the package is cheap (no torch): its names load on first use.

>>> from diffeval.generators import PRESET_NAMES
>>> PRESET_NAMES[:3]
('ddpm', 'sd1', 'sd2')
>>> from diffeval.generators import load_generator
>>> g = load_generator("dit")
>>> x = g.sample(4, labels=7, steps=2, seed=0)      # 4 sneakers, float32 in [0, 1]
>>> tuple(x.shape), x.dtype, bool(x.min() >= 0 and x.max() <= 1)
((4, 1, 28, 28), torch.float32, True)
"""

from __future__ import annotations

import importlib

from .names import PRESET_NAMES

_HOMES = {
    "BUNDLED_DIR": ".loading", "bundled_names": ".loading", "load_generator": ".loading",
    "CheckpointError": ".checkpoints", "load_checkpoint": ".checkpoints", "save_checkpoint": ".checkpoints",
    "Generator": ".interface", "GeneratorInfo": ".interface",
}


def __getattr__(name: str):
    """The public names, imported from their modules on first use (PEP 562)."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BUNDLED_DIR", "PRESET_NAMES", "CheckpointError", "Generator", "GeneratorInfo", "bundled_names",
           "load_checkpoint", "load_generator", "save_checkpoint"]
