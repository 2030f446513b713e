"""Image perturbations for the detector: training augmentation (Wang et al. 2020: blur and JPEG, plus
resizing) and the fixed evaluation perturbations (JPEG quality 95/75/50, blur sigma 1/2,
downscale-upscale), plus ``darkK``: every pixel below 8-bit level K set to 0, which erases a generator's
low-amplitude background noise (an evasion the local spectrum is sensitive to; not in the defaults). JPEG
and blur are ``diffeval.images.degrade``'s, which the watermark attacks use too, so both degrade images alike.

Images are float (N, C, H, W) in [0, 1]; every output is rounded to 8-bit levels and stays in [0, 1].
Augmentation is deterministic per (seed, image index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from diffeval.images import levels
from diffeval.images.degrade import blur, jpeg, seeded_rng

EVAL_PERTURBATIONS = ("none", "jpeg95", "jpeg75", "jpeg50", "blur1", "blur2", "resize0.5")


def down_up(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale by ``factor`` (bilinear, antialiased) and back up to the original size (bilinear)."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, round(h * factor)), max(1, round(w * factor))), mode="bilinear",
                          antialias=True, align_corners=False)
    return levels(F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1))


def zero_dark(x: torch.Tensor, level: int) -> torch.Tensor:
    """Pixels below 8-bit ``level`` (after rounding to 8 bits) set to exactly 0; the rest unchanged."""
    y = levels(x)
    return torch.where(y * 255 < level - 0.5, torch.zeros_like(y), y)


# prefix -> (lowest, highest, lowest included): JPEG quality, blur sigma in px, resize factor, dark level
_RANGES = {"jpeg": (1, 100, True), "blur": (0, 50, False), "resize": (0, 1, False), "dark": (0, 256, False)}


def check_perturbation(name: str) -> str:
    """``name`` if ``perturb`` can apply it: none, jpegQ (Q in [1, 100]), blurS (sigma in (0, 50] px), resizeF
    (F in (0, 1]) or darkK (integer K in [1, 256]); else a ValueError naming the choices."""
    if name == "none":
        return name
    prefix = next((p for p in _RANGES if name.startswith(p)), None)
    if prefix is not None:
        lo, hi, lo_included = _RANGES[prefix]
        value = name[len(prefix):]
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if (v >= lo if lo_included else v > lo) and v <= hi and (prefix != "dark" or value.isdigit()):
            return name
    raise ValueError(f"unknown perturbation {name!r}; choose one of {', '.join(EVAL_PERTURBATIONS)}, or jpegQ "
                     "(Q in [1, 100]), blurS (sigma in (0, 50] px), resizeF (F in (0, 1]), darkK (K in 1-256)")


def perturb(x: torch.Tensor, name: str) -> torch.Tensor:
    """One of EVAL_PERTURBATIONS, or ``darkK`` (levels below K set to 0), applied to every image."""
    check_perturbation(name)
    if name == "none":
        return levels(x)
    if name.startswith("jpeg"):
        return jpeg(x, float(name[4:]))
    if name.startswith("blur"):
        return blur(x, float(name[4:]))
    if name.startswith("resize"):
        return down_up(x, float(name[6:]))
    if name.startswith("dark") and name[4:].isdigit():
        return zero_dark(x, int(name[4:]))
    raise ValueError(f"unknown perturbation {name!r}; choose one of {', '.join(EVAL_PERTURBATIONS)} or darkK")


@dataclass
class AugmentConfig:
    """Per image, independently: blur with probability blur_p (sigma uniform in [0, blur_max]), JPEG with
    probability jpeg_p (quality uniform in [jpeg_min, 100]), down-up resize with probability resize_p
    (factor uniform in [resize_min, 1]), and, last, with probability dark_p every level below K set to 0
    (K uniform in 0 .. dark_max; off by default: it hides the black-background cue so that training has to
    find others). All probabilities 0 turns augmentation off."""

    blur_p: float = 0.5
    blur_max: float = 2.0
    jpeg_p: float = 0.5
    jpeg_min: int = 50
    resize_p: float = 0.2
    resize_min: float = 0.5
    dark_p: float = 0.0
    dark_max: int = 16


def augment(x: torch.Tensor, cfg: AugmentConfig, seed: int, first_index: int) -> torch.Tensor:
    """Augmented copy of x; image i's draws depend only on (seed, first_index + i)."""
    out = []
    for i, img in enumerate(x):
        r = seeded_rng(seed, first_index + i)
        u = r.random(8)  # the first six draws are what they were before dark_p existed
        y = img[None]
        if u[0] < cfg.resize_p:
            y = down_up(y, cfg.resize_min + (1 - cfg.resize_min) * u[1])
        if u[2] < cfg.blur_p and cfg.blur_max > 0:
            y = blur(y, cfg.blur_max * u[3])
        if u[4] < cfg.jpeg_p:
            y = jpeg(y, int(np.floor(cfg.jpeg_min + (101 - cfg.jpeg_min) * u[5])))
        if u[6] < cfg.dark_p:
            y = zero_dark(y, int(np.floor((cfg.dark_max + 1) * u[7])))
        out.append(levels(y)[0])
    return torch.stack(out) if out else x.clone()
