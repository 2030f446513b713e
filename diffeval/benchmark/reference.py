"""The real-data side of every row: Gaussian statistics of the reference set (for FID) and the
features of a seeded subset of it (for KID, precision/recall, density/coverage, CMMD).

For the ``fashion`` feature space and the Fashion-MNIST splits the statistics ship with the package
(``diffeval/assets/stats``, made by ``python -m diffeval.reference_stats``), so FID works even where
the data set is absent; anything else is computed once and cached under ``<cache>/reference``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from diffeval.io import digest, file_sha256

from ..data.fashion import DataNotFoundError, cache_dir
from ..features import FeatureExtractor
from ..judge import JUDGE_DIR
from ..metrics import GaussianStats, load_stats_npz
from .sources import DatasetSource, resolve_source

STATS_DIR = Path(__file__).resolve().parent.parent / "assets" / "stats"


@dataclass
class Reference:
    name: str
    mu: np.ndarray              # float64 (d,)
    sigma: np.ndarray           # float64 (d, d)
    n: int                      # images behind mu/sigma
    subset: np.ndarray | None   # float32 (m, d) features of a seeded subset; None if the images are unavailable
    images: torch.Tensor | None  # uint8 (m, C, H, W): the subset's images (for CLIP/CMMD), or None


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


def load_reference(
    name: str, extractor: FeatureExtractor, subset_size: int, seed: int = 0, data_dir: str | None = None,
    progress: bool = False,
) -> Reference:
    """Reference ``name`` (a data set split, image folder or .npz) in ``extractor``'s feature space."""
    source = resolve_source(name, data_dir)
    if not hasattr(source, "read"):
        raise ValueError(f"the reference must be real images (a data set, folder or .npz), not the generator {name!r}")
    try:
        fixed = source.read()
    except DataNotFoundError as e:
        fixed = None
        missing = str(e)
    mu = sigma = None
    n = 0
    shipped = shipped_stats_path(name, extractor.name)
    if isinstance(source, DatasetSource) and shipped.is_file() and _shipped_matches(shipped, extractor):
        mu, sigma, n = _read_stats(shipped)
    if fixed is None:
        if mu is None:
            raise DataNotFoundError(missing)
        warnings.warn(
            f"reference images unavailable, so KID, precision/recall, density/coverage and CMMD are NaN: {missing}", stacklevel=2
        )
        return Reference(name, mu, sigma, n, None, None)
    if mu is None:
        cache = (
            cache_dir()
            / "reference"
            / f"{name.replace(':', '-').replace('/', '_')}-{source.fingerprint()[:40]}-{extractor_id(extractor)}.npz"
        )
        cache = cache.with_name(cache.name.replace(" ", "_"))
        if cache.is_file():
            mu, sigma, n = _read_stats(cache)
        else:
            stats = stats_of(fixed.images, extractor, progress=progress)
            cache.parent.mkdir(parents=True, exist_ok=True)
            stats.save_npz(cache)
            mu, sigma, n = stats.mean, stats.cov, stats.n
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(fixed.images))
    idx = np.sort(rng.choice(len(fixed.images), size=m, replace=False))
    images = fixed.images[torch.from_numpy(idx)]
    subset = extractor.features(images, batch_size=500).numpy()
    return Reference(name, mu, sigma, n, subset, images)


def _read_stats(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, n) of a statistics file written by ``GaussianStats.save_npz``."""
    mu, sigma = load_stats_npz(path)
    with np.load(path) as data:
        return mu, sigma, int(data["n"])


def _shipped_matches(path: Path, extractor: FeatureExtractor) -> bool:
    with np.load(path) as data:
        made_with = str(data["extractor_id"]) if "extractor_id" in data else ""
    return made_with == extractor_id(extractor)
