"""``diffeval stats``: feature statistics of real images as an .npz in pytorch-fid's format (mu, sigma)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from diffeval.checks import require_ints


@dataclass(frozen=True)
class StatsConfig:
    """``source``: an image folder, an .npz of images or fashion-mnist:train|test; ``out``: the .npz to write."""

    source: str
    out: str
    features: str = "fashion"
    weights: str | None = None
    batch_size: int = 500
    device: str = "auto"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        require_ints({"batch_size": (self.batch_size, 1)})


def run_stats(config: StatsConfig) -> str:
    """Compute and write the statistics (mu, sigma, n, feature space, extractor id); returns a summary line."""
    from diffeval.generators.devices import pick_device

    from ..feature_stats import extractor_id, stats_of
    from ..features import get_extractor
    from .sources import resolve_source

    src = resolve_source(config.source, config.data_dir)
    if not hasattr(src, "read"):
        raise ValueError(f"{config.source} is a generator; sample it first (diffeval sample --npz) "
                         "or use diffeval benchmark")
    fixed = src.read()
    extractor = get_extractor(config.features, weights=config.weights, device=str(pick_device(config.device)))
    result = stats_of(fixed.images, extractor, config.batch_size, progress=True)
    if result.n <= extractor.dim:
        warnings.warn(f"{result.n} images for {extractor.dim} features: the covariance has rank {result.rank()}",
                      stacklevel=2)
    result.save_npz(config.out, feature_space=extractor.name, extractor_id=extractor_id(extractor),
                    source=config.source)
    return (f"{result.n} images ({len(fixed.skipped)} skipped), {extractor.name} features (d={extractor.dim}) "
            f"-> {config.out}")
