"""Fashion-MNIST (Xiao et al. 2017; MIT licence): 60,000 train + 10,000 test grayscale 28x28 images.

Where the files are looked for, in order:
1. ``data_dir`` (the CLI's ``--data-dir``), then the ``DIFFEVAL_DATA`` environment variable: a folder
   holding the four idx files (``*.gz`` or uncompressed), directly or under ``FashionMNIST/raw/``;
2. the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
3. a download by torchvision (MD5-checked) when ``download=True`` and a network exists.
Each file's decompressed content is checked against its SHA-256 (the same bytes whichever way the
``.gz`` was compressed; Debian's recompressed files fail the upstream ``.gz`` MD5), staged under the cache folder
(``DIFFEVAL_CACHE``, default ``~/.cache/diffeval``) and read with ``torchvision.datasets.FashionMNIST``.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST

from diffeval.io import atomic_output, file_sha256

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# SHA-256 of the decompressed idx files of the official release.
CONTENT_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


class DataNotFoundError(FileNotFoundError):
    """The data set is in none of the places looked at; the message names them all."""


def cache_dir() -> Path:
    return Path(os.environ.get("DIFFEVAL_CACHE", Path.home() / ".cache" / "diffeval"))


def _gz_names() -> list[tuple[str, str]]:
    return [(name, md5) for name, md5 in FashionMNIST.resources]


def _candidates(data_dir: str | Path | None) -> list[Path]:
    found = []
    for base in (data_dir, os.environ.get("DIFFEVAL_DATA")):
        if base:
            base = Path(base)
            found += [base, base / "FashionMNIST" / "raw", base / "fashion-mnist"]
    found.append(DEBIAN_DIR)
    return found


def _has_files(folder: Path) -> bool:
    return all((folder / n).is_file() or (folder / n[:-3]).is_file() for n, _ in _gz_names())


def _stage(source: Path, root: Path) -> None:
    """Decompress/copy the four files into root/FashionMNIST/raw, checking each file's SHA-256."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, _ in _gz_names():
        target = raw / name[:-3]
        if target.is_file():
            continue
        gz, plain = source / name, source / name[:-3]
        with atomic_output(target) as tmp:  # a temporary file unique to this process; replaced only when verified
            if gz.is_file():
                with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                shutil.copyfile(plain, tmp)
            if file_sha256(tmp) != CONTENT_SHA256[target.name]:
                raise DataNotFoundError(
                    f"{gz if gz.is_file() else plain}: content differs from Fashion-MNIST's (SHA-256 mismatch)"
                )


def fashion_root(data_dir: str | Path | None = None, download: bool = False) -> Path:
    """A folder that torchvision's FashionMNIST reads (``root`` argument)."""
    root = cache_dir() / "data"
    if _has_files(root / "FashionMNIST" / "raw"):
        return root
    for folder in _candidates(data_dir):
        if folder.is_dir() and _has_files(folder):
            _stage(folder, root)
            return root
    if download:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
        return root
    looked = ", ".join(str(p) for p in _candidates(data_dir))
    raise DataNotFoundError(
        "Fashion-MNIST not found. Looked in: " + looked + ". Either install the Debian package "
        "(apt-get install dataset-fashion-mnist), put the four idx files in a folder given by --data-dir "
        "or DIFFEVAL_DATA, or allow a download (--download) where a network exists."
    )


def load_fashion_mnist(
    split: str = "train", data_dir: str | Path | None = None, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) for split "train" (60,000) or "test" (10,000)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    ds = FashionMNIST(str(fashion_root(data_dir, download)), train=split == "train", download=False)
    return ds.data.unsqueeze(1).contiguous(), ds.targets.long()
