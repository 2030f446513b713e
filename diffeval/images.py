"""Saving images: sample grids (PNG) and image archives (.npz), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from diffeval.generators.checkpoints import atomic_output


def quantize_uint8(images: torch.Tensor) -> torch.Tensor:
    """float (N, C, H, W) in [0, 1] -> uint8 (N, C, H, W) on the CPU, rounding to nearest (x * 255 + 0.5):
    the values a PNG of the images holds."""
    return images.detach().float().clamp(0, 1).mul(255).add(0.5).floor().to(torch.uint8).cpu()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [0, 1] -> uint8 (N, H, W, C) numpy, rounding as ``quantize_uint8``."""
    return quantize_uint8(images).permute(0, 2, 3, 1).numpy()


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid; ``scale`` enlarges pixels (nearest)."""
    path = Path(path)
    nrow = nrow or max(1, int(np.ceil(np.sqrt(len(images)))))
    grid = make_grid(images.float().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    img = Image.fromarray(to_uint8(grid[None])[0].squeeze(-1) if grid.shape[0] == 1 else to_uint8(grid[None])[0])
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_output(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def save_npz(images: torch.Tensor, path: str | Path, **extra: np.ndarray) -> Path:
    """Save images as uint8 (N, H, W, C) under key ``images`` (plus any extra arrays)."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, images=to_uint8(images), **extra)
    return path
