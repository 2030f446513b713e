"""Image files: the suffixes diffeval reads, the one reader, and the grid, archive and PNG-folder writers
(all atomic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffeval.io import atomic_output, atomic_savez

from .convert import to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")
GRAY_MODES = ("L", "1", "I;16", "I", "F")


def image_files(folder: str | Path) -> list[Path]:
    """Every file below ``folder`` with an image suffix (any case), except hidden ones, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def native_channels(img: Image.Image) -> int:
    """1 for grey images (grey modes, or a palette of greys), 3 for everything else."""
    if img.mode in GRAY_MODES:
        return 1
    if img.mode == "P":
        pal = np.asarray(img.getpalette() or [], dtype=np.int64).reshape(-1, 3)
        if len(pal) and (pal[:, 0] == pal[:, 1]).all() and (pal[:, 1] == pal[:, 2]).all():
            return 1
    return 3


def read_image(path: str | Path, channels: int | None = None) -> tuple[np.ndarray, int]:
    """An image file -> (uint8 (H, W, C), the file's own channel count 1 or 3). ``channels`` (1 or 3)
    converts to grey (ITU-R 601 luma) or RGB; None keeps the file's own. 16- and 32-bit integer images are
    scaled from their full range (65535 for 16-bit, not clipped at 255); float ("F") images are read as
    [0, 1]; alpha is dropped; palettes and CMYK are converted by PIL. Raises PIL's errors
    (``UnidentifiedImageError``, ``OSError``) for unreadable files."""
    with Image.open(path) as img:
        img.load()
        own = native_channels(img)
        if img.mode.startswith(("I", "F")):
            img = Image.fromarray(_wide_to_uint8(np.asarray(img), img.mode))
        arr = np.asarray(img.convert("L" if (channels or own) == 1 else "RGB"))
    return (arr[..., None] if arr.ndim == 2 else arr), own


def _wide_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit ("I;16*"), 32-bit integer ("I": 16-bit PNGs open so) or float ("F") grey image -> uint8,
    scaled from its range to 0-255 with the half-up rule. "I" images are taken as 16-bit unless they exceed
    65535 (then 32-bit)."""
    x = arr.astype(np.float64)
    if mode == "F":
        scale = 1.0
    elif mode.startswith("I;16") or x.max(initial=0) <= 65535:
        scale = 65535.0
    else:
        scale = 4294967295.0
    return np.floor(np.clip(x / scale, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int = 2) -> Path:
    """Save (N, C, H, W) images in [0, 1] as one PNG grid; ``scale`` enlarges pixels (nearest)."""
    from torchvision.utils import make_grid

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
    """Save images as uint8 (N, H, W, C) under key ``images`` (plus any extra arrays), compressed."""
    return atomic_savez(path, {"images": to_uint8(images), **extra}, compressed=True)


def save_pngs(arrays: Sequence[np.ndarray], folder: str | Path) -> list[Path]:
    """uint8 (H, W, C) arrays as PNG files ``00000.png``, ``00001.png``, ... in ``folder``, each atomic."""
    folder = Path(folder)
    paths = []
    for i, a in enumerate(arrays):
        path = folder / f"{i:05d}.png"
        with atomic_output(path) as tmp:
            Image.fromarray(a[..., 0] if a.shape[2] == 1 else a).save(tmp, format="PNG")
        paths.append(path)
    return paths
