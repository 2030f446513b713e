"""What a benchmark row evaluates: a generator, an image folder, an ``.npz`` archive or a data set split.

``resolve_source(text)`` decides which:
- a bundled generator name (``sd3``), a checkpoint directory (has ``config.json``) or a diffusers
  pipeline directory (has ``model_index.json``; optional extra) -> GeneratorSource;
- ``fashion-mnist:train`` / ``fashion-mnist:test`` -> DatasetSource (real images; the floor row);
- a file ending in ``.npz`` -> NpzSource (key ``images``, else ``arr_0``; uint8 NHWC/NCHW or float in [0, 1];
  an optional ``labels`` array gives conditional accuracy);
- any other directory -> FolderSource (every image file below it, sorted by path).

Fixed images (folders, archives, data sets) are read once as uint8 (N, C, H, W).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import UnidentifiedImageError

from diffeval.generators import BUNDLED_DIR, Generator, bundled_names, load_generator
from diffeval.generators.diffusers_pipeline import DiffusersGenerator, is_diffusers_dir
from diffeval.generators.presets import PRESET_NAMES
from diffeval.images import IMAGE_SUFFIXES, quantize_uint8, read_image

DATASETS = ("fashion-mnist:train", "fashion-mnist:test")


class SourceError(ValueError):
    """A source that cannot be used; the message is one line."""


@dataclass
class FixedImages:
    """Images that exist already: uint8 (N, C, H, W), optional int64 labels, and what was skipped."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def _size_mtime(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{int(st.st_mtime)}"


def folder_files(folder: str | Path) -> list[Path]:
    """Every file below ``folder`` except hidden ones, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith("."))


def folder_fingerprint(folder: str | Path) -> str:
    """Changes when a file below ``folder`` is added, removed, resized or modified (names relative to it)."""
    h = hashlib.sha256()
    for p in folder_files(folder):
        h.update(f"{p.relative_to(folder)}:{_size_mtime(p)}".encode())
    return h.hexdigest()[:16]


@dataclass
class GeneratorSource:
    text: str
    kind: str = "generator"

    def load(self, device: str | None = None, trust_pickle: bool = False) -> Generator | DiffusersGenerator:
        return load_generator(self.text, device, trust_pickle=trust_pickle)

    def fingerprint(self) -> str:
        """Changes when the checkpoint's weights change."""
        if is_diffusers_dir(self.text):
            return folder_fingerprint(self.text)
        path = BUNDLED_DIR / self.text if self.text in PRESET_NAMES else Path(self.text)
        weights = path / "model.safetensors"
        return f"{path.resolve()}:{_size_mtime(weights) if weights.exists() else '0:0'}"


@dataclass
class FolderSource:
    text: str
    kind: str = "folder"

    def fingerprint(self) -> str:
        return f"{Path(self.text).resolve()}:{folder_fingerprint(self.text)}"

    def read(self) -> FixedImages:
        return read_image_folder(self.text)


@dataclass
class NpzSource:
    text: str
    kind: str = "npz"

    def fingerprint(self) -> str:
        return f"{Path(self.text).resolve()}:{_size_mtime(Path(self.text))}"

    def read(self) -> FixedImages:
        return read_npz(self.text)


@dataclass
class DatasetSource:
    text: str
    kind: str = "dataset"
    data_dir: str | None = None

    def fingerprint(self) -> str:
        return self.text

    def read(self) -> FixedImages:
        from ..data import load_fashion_mnist

        images, labels = load_fashion_mnist(self.text.split(":")[1], self.data_dir)
        return FixedImages(images, labels)


Source = GeneratorSource | FolderSource | NpzSource | DatasetSource


def resolve_source(text: str, data_dir: str | None = None) -> Source:
    """Classify ``text`` (see the module docstring); unknown names give a one-line SourceError."""
    if text in PRESET_NAMES:
        return GeneratorSource(text)
    if text in DATASETS:
        return DatasetSource(text, data_dir=data_dir)
    path = Path(text)
    if path.suffix == ".npz":
        if not path.is_file():
            raise SourceError(f"{text}: no such .npz file")
        return NpzSource(text)
    if path.is_dir():
        is_generator = (path / "config.json").is_file() or is_diffusers_dir(path)
        return GeneratorSource(text) if is_generator else FolderSource(text)
    raise SourceError(
        f"{text!r} is not a bundled generator ({', '.join(bundled_names()) or 'none installed'}), a data set "
        f"({', '.join(DATASETS)}), a checkpoint or image directory, or an .npz file"
    )


def read_image_folder(folder: str | Path) -> FixedImages:
    """All images below ``folder`` as uint8 (N, C, H, W); files that are not images, are corrupt or
    differ from the most common size/mode are skipped and listed (with the reason), never fatal."""
    folder = Path(folder)
    decoded: list[tuple[str, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    for path in folder_files(folder):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((str(path), "not an image file"))
            continue
        try:
            arr, _ = read_image(path)
            decoded.append((str(path), arr[..., 0] if arr.shape[2] == 1 else arr))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            skipped.append((str(path), f"corrupt: {type(e).__name__}"))
    if not decoded:
        raise SourceError(f"{folder}: no readable images ({len(skipped)} files skipped)")
    has_rgb = any(a.ndim == 3 for _, a in decoded)
    arrays = [(p, np.repeat(a[..., None], 3, -1) if has_rgb and a.ndim == 2 else a) for p, a in decoded]
    size = Counter(a.shape for _, a in arrays).most_common(1)[0][0]
    kept = []
    for p, a in arrays:
        if a.shape != size:
            skipped.append((p, f"size {a.shape[:2]} differs from the folder's {size[:2]}"))
        else:
            kept.append(a if a.ndim == 3 else a[..., None])
    if skipped:
        warnings.warn(
            f"{folder}: skipped {len(skipped)} of {len(skipped) + len(kept)} files "
            f"(first: {skipped[0][0]}: {skipped[0][1]})",
            stacklevel=2,
        )
    images = torch.from_numpy(np.stack(kept)).permute(0, 3, 1, 2).contiguous()
    return FixedImages(images, None, skipped)


def _check_labels(path, labels: torch.Tensor, n: int) -> None:
    """One label per image, each a Fashion-MNIST class 0-9 (what the judge's class agreement compares)."""
    if len(labels) != n:
        raise SourceError(f"{path}: {len(labels)} labels for {n} images")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise SourceError(f"{path}: labels are the requested Fashion-MNIST classes 0-9 (the judge's), found "
                          f"{int(labels.min())} to {int(labels.max())}")


def read_npz(path: str | Path) -> FixedImages:
    """Images from an ``.npz`` (key ``images`` or ``arr_0``): uint8 or float in [0, 1], NHWC or NCHW
    with 1 or 3 channels (or NHW); optional ``labels``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            key = "images" if "images" in data else "arr_0" if "arr_0" in data else None
            if key is None:
                raise SourceError(f"{path}: no 'images' or 'arr_0' array (found: {', '.join(data.files) or 'none'})")
            arr = data[key]
            labels = torch.from_numpy(data["labels"].astype(np.int64)) if "labels" in data else None
    except (OSError, ValueError) as e:
        if isinstance(e, SourceError):
            raise
        raise SourceError(f"{path}: not a readable .npz archive ({e})") from None
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise SourceError(f"{path}: images must be (N, H, W, C) or (N, C, H, W), got shape {arr.shape}")
    if arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    if arr.shape[1] not in (1, 3):
        raise SourceError(f"{path}: expected 1 or 3 channels, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        x = arr.astype(np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            raise SourceError(f"{path}: {int(bad.reshape(len(x), -1).any(1).sum())} images contain NaN or inf")
        if x.min() < 0 or x.max() > 1:
            raise SourceError(f"{path}: float images must lie in [0, 1], found [{x.min():.3g}, {x.max():.3g}]")
        arr = quantize_uint8(x).numpy()
    if labels is not None:
        _check_labels(path, labels, len(arr))
    return FixedImages(torch.from_numpy(np.ascontiguousarray(arr)), labels)
