"""Saving images: sample grids (PNG) and image archives (.npz), written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [0, 1] -> uint8 (N, H, W, C), rounding to nearest (x * 255 + 0.5)."""
    x = images.detach().float().clamp(0, 1).mul(255).add(0.5).floor().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    return tmp


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid; ``scale`` enlarges pixels (nearest)."""
    path = Path(path)
    nrow = nrow or max(1, int(np.ceil(np.sqrt(len(images)))))
    grid = make_grid(images.float().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    img = Image.fromarray(to_uint8(grid[None])[0].squeeze(-1) if grid.shape[0] == 1 else to_uint8(grid[None])[0])
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    tmp = _atomic_target(path)
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def save_npz(images: torch.Tensor, path: str | Path, **extra: np.ndarray) -> Path:
    """Save images as uint8 (N, H, W, C) under key ``images`` (plus any extra arrays)."""
    path = Path(path)
    tmp = _atomic_target(path)
    with open(tmp, "wb") as f:
        np.savez_compressed(f, images=to_uint8(images), **extra)
    os.replace(tmp, path)
    return path
