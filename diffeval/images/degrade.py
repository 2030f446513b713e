"""Image degradations, each with one strength parameter: float (N, C, H, W) images in [0, 1] in, the same
shape and range out (not yet rounded to 8-bit levels; callers round with ``levels``). Random ones (crop,
jitter, erasing, noise) draw image i's randomness from (seed, first_index + i), so results do not depend on
batch size. The watermark attacks and the detector's perturbations both use them.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageFilter
from torchvision.transforms import InterpolationMode

from .convert import from_pil, to_pil


def seeded_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of image ``index`` under ``seed`` (independent of batch size)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), 0xA77AC]))


def rotation(x: torch.Tensor, degrees: float, **_) -> torch.Tensor:
    return TF.rotate(x, float(degrees), interpolation=InterpolationMode.NEAREST, fill=0.0)


def jpeg(x: torch.Tensor, quality: float, **_) -> torch.Tensor:
    out = []
    for img in x:
        buf = io.BytesIO()
        to_pil(img).save(buf, format="JPEG", quality=int(round(quality)))
        out.append(from_pil(Image.open(io.BytesIO(buf.getvalue())), x.shape[1]))
    return torch.stack(out)


def blur(x: torch.Tensor, radius: float, reference_size: float | None = None, **_) -> torch.Tensor:
    """PIL Gaussian blur; with ``reference_size`` the radius is given for images of that width and
    scaled to x's width (``paper-scaled``: the paper's radius 4 at 512 px is 0.22 px at 28 px)."""
    if reference_size:
        radius = float(radius) * x.shape[-1] / float(reference_size)
    filt = ImageFilter.GaussianBlur(radius=float(radius))
    return torch.stack([from_pil(to_pil(img).filter(filt), x.shape[1]) for img in x])


def crop(x: torch.Tensor, scale: float, seed: int, first_index: int, ratio: float = 1.0, **_) -> torch.Tensor:
    """RandomResizedCrop with fixed scale and aspect ratio (w/h), position uniform; back to full size."""
    n, _, h, w = x.shape
    area = h * w * float(scale)
    cw = min(w, max(1, int(round(math.sqrt(area * ratio)))))
    ch = min(h, max(1, int(round(math.sqrt(area / ratio)))))
    out = []
    for i in range(n):
        r = seeded_rng(seed, first_index + i)
        top, left = int(r.integers(0, h - ch + 1)), int(r.integers(0, w - cw + 1))
        out.append(
            TF.resized_crop(x[i], top, left, ch, cw, [h, w], interpolation=InterpolationMode.BILINEAR, antialias=True)
        )
    return torch.stack(out)


def noise(x: torch.Tensor, std: float, seed: int, first_index: int, **_) -> torch.Tensor:
    z = torch.stack(
        [
            torch.from_numpy(seeded_rng(seed, first_index + i).standard_normal(x.shape[1:])).float()
            for i in range(len(x))
        ]
    )
    return (x + float(std) * z).clamp(0, 1)


def _jitter(x: torch.Tensor, b: float, seed: int, first_index: int, fn) -> torch.Tensor:
    out = []
    for i in range(len(x)):
        factor = float(seeded_rng(seed, first_index + i).uniform(max(0.0, 1.0 - b), 1.0 + b))
        out.append(fn(x[i], factor))
    return torch.stack(out)


def brightness(x: torch.Tensor, b: float, seed: int, first_index: int, **_) -> torch.Tensor:
    return _jitter(x, float(b), seed, first_index, TF.adjust_brightness)


def contrast(x: torch.Tensor, b: float, seed: int, first_index: int, **_) -> torch.Tensor:
    return _jitter(x, float(b), seed, first_index, TF.adjust_contrast)


def erase(x: torch.Tensor, fraction: float, seed: int, first_index: int, **_) -> torch.Tensor:
    """Set one random square-ish rectangle covering ``fraction`` of the area to 0."""
    n, _, h, w = x.shape
    side = math.sqrt(h * w * float(fraction))
    eh, ew = min(h, max(1, int(round(side)))), min(w, max(1, int(round(side))))
    out = x.clone()
    for i in range(n):
        r = seeded_rng(seed, first_index + i)
        top, left = int(r.integers(0, h - eh + 1)), int(r.integers(0, w - ew + 1))
        out[i, :, top : top + eh, left : left + ew] = 0.0
    return out
