"""Feature statistics at rest: the statistics shipped with the package (``diffeval/assets/stats``, made by
``python -m diffeval.reference_stats``), streaming statistics of an image set, and the extractor id that
says whether a statistics file was made by the extractor in hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from diffeval.io import digest, file_sha256

from .features import FeatureExtractor
from .judge import JUDGE_DIR
from .metrics import GaussianStats, load_stats_npz

STATS_DIR = Path(__file__).resolve().parent / "assets" / "stats"


def extractor_id(extractor: FeatureExtractor) -> str:
    """A short hash of what the extractor computes: its description with the weights' location
    replaced by a hash of their content, so the same network gives the same id on every machine."""
    desc = dict(extractor.describe())
    where = desc.pop("weights", None)
    path = JUDGE_DIR / "model.safetensors" if where == "bundled judge" else Path(str(where)) if where else None
    if path is not None and path.is_dir():
        path = next(
            (p for p in (path / "model.safetensors", path / "open_clip_model.safetensors") if p.is_file()), path
        )
    desc["weights_sha256"] = file_sha256(path) if path is not None and path.is_file() else str(where)
    return digest(desc, 12)


def shipped_stats_path(reference: str, feature_space: str) -> Path:
    return STATS_DIR / f"{reference.replace(':', '-')}.{feature_space}.npz"


def stats_of(
    images: torch.Tensor, extractor: FeatureExtractor, batch_size: int = 500, progress: bool = False
) -> GaussianStats:
    """Streaming statistics of ``extractor`` features of uint8/float images (N, C, H, W)."""
    from tqdm.auto import tqdm

    stats = GaussianStats(extractor.dim)
    batches = extractor.iter_features(images, batch_size)
    for features in tqdm(
        batches, total=-(-len(images) // batch_size), desc="reference features", disable=not progress, leave=False
    ):
        stats.update(features)
    return stats


def read_stats(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, n) of a statistics file written by ``GaussianStats.save_npz``."""
    mu, sigma = load_stats_npz(path)
    with np.load(path) as data:
        return mu, sigma, int(data["n"])


def shipped_matches(path: Path, extractor: FeatureExtractor) -> bool:
    with np.load(path) as data:
        made_with = str(data["extractor_id"]) if "extractor_id" in data else ""
    return made_with == extractor_id(extractor)
