"""Evaluation metrics on feature vectors; pure functions in float64 (inputs: numpy arrays or torch tensors).

- FID `frechet_distance` / `fid_from_features`: Heusel et al. 2017, ||mu1-mu2||^2 + tr(S1+S2-2(S1 S2)^1/2),
  checked against pytorch-fid.
- `GaussianStats` / `load_stats_npz`: streaming float64 mean/covariance, pytorch-fid npz format (mu, sigma).
- KID `kernel_inception_distance`: Bińkowski et al. 2018, unbiased MMD^2, kernel (x.y/d+1)^3, 100 seeded
  subsets of 1000.
- IS `inception_score`: Salimans et al. 2016, exp(E KL(p(y|x)||p(y))) over 10 splits.
- `precision_recall`: Kynkäänniemi et al. 2019, k=3 nearest-neighbour balls.
- `density_coverage`: Naeem et al. 2020, k=5 nearest-neighbour balls (reference: the `prdc` package).
- `clip_score` / `clip_score_mean`: Hessel et al. 2021 CLIP-S at torchmetrics' scale, 100*max(cos, 0) per sample.
- `cmmd`: Jayasumana et al. 2024, RBF (sigma=10) MMD^2 V-statistic on normalised CLIP embeddings x1000.
"""

from .clip_metrics import clip_score, clip_score_mean, cmmd
from .frechet import fid_from_features, fid_interval, frechet_distance
from .gaussian import GaussianStats, load_stats_npz
from .inception_score import inception_score
from .kid import kernel_inception_distance
from .prdc import density_coverage, precision_recall

__all__ = [
    "GaussianStats",
    "load_stats_npz",
    "fid_interval",
    "frechet_distance",
    "fid_from_features",
    "kernel_inception_distance",
    "inception_score",
    "precision_recall",
    "density_coverage",
    "clip_score",
    "clip_score_mean",
    "cmmd",
]
