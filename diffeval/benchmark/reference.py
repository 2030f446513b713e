"""The real-data side of every row: Gaussian statistics of the reference set (for FID) and the
features of a seeded subset of it (for KID, precision/recall, density/coverage, CMMD).

For the ``fashion`` feature space and the Fashion-MNIST splits the statistics ship with the package
(``diffeval/assets/stats``, made by ``python -m diffeval.reference_stats``), so FID works even where
the data set is absent; anything else is computed once and cached under ``<cache>/reference``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from diffeval.io import safe_path

from ..data.fashion import DataNotFoundError, cache_dir
from ..feature_stats import extractor_id, read_stats, shipped_matches, shipped_stats_path, stats_of
from ..features import FeatureExtractor
from .sources import DatasetSource, resolve_source


@dataclass
class Reference:
    name: str
    mu: np.ndarray              # float64 (d,)
    sigma: np.ndarray           # float64 (d, d)
    n: int                      # images behind mu/sigma
    subset: np.ndarray | None   # float32 (m, d) features of a seeded subset; None if the images are unavailable
    images: torch.Tensor | None  # uint8 (m, C, H, W): the subset's images (for CLIP/CMMD), or None


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
    if isinstance(source, DatasetSource) and shipped.is_file() and shipped_matches(shipped, extractor):
        mu, sigma, n = read_stats(shipped)
    if fixed is None:
        if mu is None:
            raise DataNotFoundError(missing)
        warnings.warn(
            f"reference images unavailable, so KID, precision/recall, density/coverage and CMMD are NaN: {missing}",
            stacklevel=2,
        )
        return Reference(name, mu, sigma, n, None, None)
    if mu is None:
        cache = safe_path(cache_dir() / "reference",
                          f"{name.replace(':', '-')}-{source.fingerprint()[:40]}-{extractor_id(extractor)}.npz")
        if cache.is_file():
            mu, sigma, n = read_stats(cache)
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
