"""The one rounding rule between float images and 8-bit levels, and PIL conversions that use it."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def quantize_uint8(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """float (..., C, H, W) in [0, 1] -> uint8 of the same shape on the CPU, rounding half up
    (floor(x * 255 + 0.5)): the values a PNG of the images holds. Computed in float32, or in float64 for
    float64 input; uint8 input is returned as it is."""
    x = torch.as_tensor(images).detach()
    if x.dtype == torch.uint8:
        return x.cpu()
    x = x.double() if x.dtype == torch.float64 else x.float()
    return x.clamp(0, 1).mul(255).add(0.5).floor().to(torch.uint8).cpu()


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """float (N, C, H, W) in [0, 1] -> uint8 (N, H, W, C) numpy, rounding as ``quantize_uint8``."""
    return quantize_uint8(images).permute(0, 2, 3, 1).numpy()


def levels(x: torch.Tensor) -> torch.Tensor:
    """float images in [0, 1] rounded to their 8-bit levels (what a saved PNG holds), still float in [0, 1]."""
    return quantize_uint8(x).float().div(255)


def from_uint8(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) -> float32 (C, H, W) in [0, 1]."""
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def to_pil(img: torch.Tensor) -> Image.Image:
    """One float (C, H, W) image in [0, 1] (C = 1 or 3) -> a PIL image ("L" or "RGB")."""
    arr = quantize_uint8(img).permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)


def from_pil(pil: Image.Image, channels: int) -> torch.Tensor:
    """A PIL image -> float32 (channels, H, W) in [0, 1] (its first ``channels`` channels)."""
    return from_uint8(np.asarray(pil))[:channels].contiguous()
