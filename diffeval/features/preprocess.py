"""The resize and quantisation contract shared by every feature extractor.

Every extractor's ``prepare`` runs, in this order: :func:`to_float01` (uint8 or float in [0, 1] ->
float32), :func:`quantize` (to the 256 levels a PNG holds), channels (:func:`to_rgb` or
:func:`to_gray`), :func:`resize`, then the network's own normalisation. Quantising first makes
features of generated float images equal to those of the same images saved as PNG and read back.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RANGE_TOLERANCE = 1e-6  # float inputs may stray this far outside [0, 1] (then are clamped)
LUMA_601 = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights for R, G, B

RESIZE_MODES = {
    "bilinear": "torch bilinear, align_corners=False, no antialias, to size x size (pytorch-fid's resize)",
    "bilinear-antialias": "torch bilinear, align_corners=False, antialias=True, to size x size",
    "bicubic-antialias-crop": "torch bicubic antialias=True of the shorter side to size, centre crop to "
    "size x size, clamp to [0, 1] (CLIP's 'shortest' resize)",
    "nearest-exact": "torch nearest-exact, to size x size",
}


def check_images(images: torch.Tensor) -> None:
    """Raise ValueError unless ``images`` is (N, C, H, W) uint8, or float, finite, in [0, 1] (+-1e-6)."""
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or float images in [0, 1], got dtype {images.dtype}")
    nonfinite = int((~torch.isfinite(images)).sum())
    if nonfinite:
        raise ValueError(f"{nonfinite} of {images.numel()} image values are NaN or infinite")
    outside = int(((images < -RANGE_TOLERANCE) | (images > 1 + RANGE_TOLERANCE)).sum())
    if outside:
        lo, hi = float(images.min()), float(images.max())
        raise ValueError(
            f"{outside} of {images.numel()} image values lie outside [0, 1] (min {lo:.4g}, max {hi:.4g}); "
            "float images must be in [0, 1] (map [-1, 1] with (x + 1) / 2) or be uint8"
        )


def to_float01(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) in 0..255, or float in [0, 1] -> float32 (N, C, H, W) in [0, 1].

    Float values within 1e-6 outside [0, 1] are clamped; NaN, inf or anything further out raises
    ValueError saying how many values were bad (:func:`check_images`).
    """
    x = torch.as_tensor(images)
    check_images(x)
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255.0
    return x.to(torch.float32).clamp(0.0, 1.0)


def quantize(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 or float [0, 1] (N, C, H, W) -> float32 on the 256 levels k / 255.

    Rounds half up, floor(x * 255 + 0.5) / 255, exactly as :func:`diffeval.images.to_uint8` writes
    PNGs; uint8 input is converted exactly (k -> k / 255).
    """
    x = to_float01(images)
    if torch.as_tensor(images).dtype == torch.uint8:
        return x
    return torch.floor(x * 255.0 + 0.5) / 255.0


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 3, H, W) by repeating the channel; (N, 3, H, W) unchanged."""
    channels = images.shape[1]
    if channels == 3:
        return images
    if channels == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    raise ValueError(f"expected 1 (grayscale) or 3 (RGB) channels, got {channels}")


def to_gray(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) by ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B; 1 channel unchanged."""
    channels = images.shape[1]
    if channels == 1:
        return images
    if channels == 3:
        weights = torch.tensor(LUMA_601, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * weights).sum(1, keepdim=True)
    raise ValueError(f"expected 1 (grayscale) or 3 (RGB) channels, got {channels}")


def resize(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """float (N, C, H, W) -> (N, C, size, size) with one of :data:`RESIZE_MODES`.

    Returns the input unchanged when it already is size x size (every mode is the identity there).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; valid: {', '.join(RESIZE_MODES)}")
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    if mode == "bilinear":
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    if mode == "bilinear-antialias":
        return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if mode == "nearest-exact":
        return F.interpolate(images, size=(size, size), mode="nearest-exact")
    # Shorter side to ``size``, the longer one truncated, centre crop rounded: as torchvision's
    # Resize(size) + CenterCrop(size) that open_clip's preprocessing uses.
    new_h, new_w = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    x = F.interpolate(images, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return x[..., top : top + size, left : left + size].clamp(0.0, 1.0)
