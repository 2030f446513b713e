"""Small data sets for fast tests: sklearn's 8x8 digits and Gaussian mixtures with known parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def load_digits_images(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 1,797 handwritten digits: (images float32 (N, 1, size, size) in [0, 1], labels int64).

    Pixel values 0..16 are divided by 16; ``size`` != 8 resizes with bilinear interpolation (antialiased).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x, torch.tensor(d.target, dtype=torch.long)


@dataclass
class GaussianMixture:
    """sum_k weights[k] * N(means[k], covs[k]). weights (K,), means (K, D), covs (K, D, D); float64."""

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self) -> None:
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64)
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.covs = torch.as_tensor(self.covs, dtype=torch.float64)
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covs.shape != (k, d, d):
            raise ValueError("weights (K,), means (K, D) and covs (K, D, D) do not agree")
        if abs(self.weights.sum().item() - 1) > 1e-9 or (self.weights < 0).any():
            raise ValueError("mixture weights must be non-negative and sum to 1")

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(points float64 (n, D), component ids int64 (n,)), reproducible for a seed."""
        g = torch.Generator().manual_seed(seed)
        comp = torch.multinomial(self.weights, n, replacement=True, generator=g)
        chol = torch.linalg.cholesky(self.covs)
        z = torch.randn(n, self.dim, generator=g, dtype=torch.float64)
        return self.means[comp] + torch.einsum("nij,nj->ni", chol[comp], z), comp

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log density at x (n, D) -> (n,), float64."""
        dist = torch.distributions.MultivariateNormal(self.means, covariance_matrix=self.covs)
        return torch.logsumexp(dist.log_prob(x.double()[:, None, :]) + torch.log(self.weights), dim=1)


def gmm_ring(k: int = 8, radius: float = 2.0, std: float = 0.1) -> GaussianMixture:
    """k equal isotropic Gaussians on a circle in 2-D (the classic toy)."""
    angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    covs = (std**2) * torch.eye(2, dtype=torch.float64).expand(k, 2, 2).clone()
    return GaussianMixture(torch.full((k,), 1.0 / k, dtype=torch.float64), means, covs)


def gmm_random(dim: int, k: int, seed: int = 0, scale: float = 1.0) -> GaussianMixture:
    """A random mixture with full covariances: means ~ N(0, scale^2), covs = A A^T / dim + 0.05 I."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(k, 5.0))
    means = rng.normal(0, scale, (k, dim))
    a = rng.normal(0, 1, (k, dim, dim)) * 0.5
    covs = a @ a.transpose(0, 2, 1) / dim + 0.05 * np.eye(dim)
    return GaussianMixture(torch.tensor(weights), torch.tensor(means), torch.tensor(covs))
