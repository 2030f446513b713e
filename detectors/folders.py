"""Image folders of any size as detector data, under one input policy for both classes.

The policy (``InputPolicy``): every image, real or generated, from a folder or a generator, is converted to the
detector's channels (grey by ITU-R 601 luma when any training image is grey, since grey-versus-colour would
otherwise separate the classes; RGB otherwise) and centre-cropped to ``size`` x ``size`` pixels. Nothing is ever
resized: resampling leaves interpolation traces that depend on the source size (a 512 px photo shrunk is sharper
than a 16 px sample enlarged), which a detector learns instead of the generator. ``size`` is the smallest side among
the training images (or ``--crop``), rounded down to a multiple of the local spectrum's block; smaller images are
reported and left out. What cropping cannot remove is a difference of content scale (a crop of a large photo shows
less of the scene than a crop of a small sample); keep the classes at comparable resolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from diffeval.images import image_files, read_image


@dataclass(frozen=True)
class InputPolicy:
    """size: the square crop's side in pixels; channels: 1 (grey) or 3 (RGB)."""

    size: int
    channels: int

    def describe(self) -> str:
        return (f"centre crop {self.size}x{self.size}, {'grey (luma)' if self.channels == 1 else 'RGB'}, "
                "never resized")


def read_folder(folder: str | Path) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """Every image file below ``folder`` as uint8 (H, W, C) in its own channels, and (path, reason) for the files
    that could not be read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of images")
    arrays, errors = [], []
    for path in image_files(folder):
        try:
            arrays.append(read_image(path)[0])
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            errors.append((str(path), f"corrupt or not an image ({type(exc).__name__})"))
    if not arrays:
        raise ValueError(f"{folder}: no readable image files")
    return arrays, errors


def choose_policy(sources: list[list[np.ndarray] | torch.Tensor], crop: int | None = None,
                  block: int = 4) -> InputPolicy:
    """The policy for these training sources (folder arrays (H, W, C) or uint8 tensors (N, C, H, W))."""
    sides, grey = [], False
    for s in sources:
        if isinstance(s, torch.Tensor):
            sides.append(min(s.shape[-2:]))
            grey |= s.shape[1] == 1
        else:
            sides += [min(a.shape[:2]) for a in s]
            grey |= any(a.shape[2] == 1 for a in s)
    size = int(crop) if crop else min(sides, default=0)
    if block:
        size -= size % block
    if size < 8:
        raise ValueError(f"--crop: the detector needs crops of at least 8 px (a multiple of {block}); got {size}")
    return InputPolicy(size, 1 if grey else 3)


def apply_policy(images: list[np.ndarray] | torch.Tensor, policy: InputPolicy,
                 names: list[str] | None = None) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """uint8 (N, C, S, S) of the images that fit, and (name, reason) for those smaller than the crop."""
    items = list(images) if isinstance(images, list) else [img.permute(1, 2, 0).numpy() for img in images]
    names = names or [f"#{i}" for i in range(len(items))]
    out, skipped = [], []
    s = policy.size
    for name, arr in zip(names, items):
        h, w = arr.shape[:2]
        if h < s or w < s:
            skipped.append((name, f"image is {w}x{h}, smaller than the detector's {s}x{s} crop"))
            continue
        if arr.shape[2] != policy.channels:
            if policy.channels == 3:
                skipped.append((name, "grey image; the detector reads RGB"))
                continue
            arr = np.asarray(Image.fromarray(arr).convert("L"))[..., None]  # PIL's luma, as read_image(path, 1)
        top, left = (h - s) // 2, (w - s) // 2
        out.append(torch.from_numpy(np.array(arr[top : top + s, left : left + s])).permute(2, 0, 1))
    x = torch.stack(out) if out else torch.zeros(0, policy.channels, s, s, dtype=torch.uint8)
    return x, skipped
