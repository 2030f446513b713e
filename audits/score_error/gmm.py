"""Gaussian mixtures as exact ground truth under the diffusion paths.

The mixture's parameters live in ``diffeval.data.GaussianMixture``; ``MixtureTruth`` adds the closed
forms. A mixture p(x0) = sum_k pi_k N(mu_k, Sigma_k) in D dimensions, noised by x = alpha x0 + sigma eps, stays a
mixture: component k becomes N(alpha mu_k, C_k) with C_k = alpha^2 Sigma_k + sigma^2 I. With the
eigendecomposition Sigma_k = U_k diag(lam_k) U_k^T every quantity is closed-form and cheap for any
(alpha, sigma), including one (alpha, sigma) per sample:

- score:  grad log p_t(x) = -sum_k w_k C_k^-1 (x - alpha mu_k),  w = softmax_k(log pi_k + log N_k(x))
- E[x0 | x] = sum_k w_k (mu_k + alpha Sigma_k C_k^-1 (x - alpha mu_k))
- E[eps | x] = sum_k w_k sigma C_k^-1 (x - alpha mu_k)  (= -sigma * score)

Everything is float64; the responsibilities use log-sum-exp, so the formulas stay finite at
alpha -> 0 (pure noise) and at sigma -> 0 (clean data, for covariances of full rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from diffeval.data import GaussianMixture
from diffeval.generators.parameterization import Prediction


def _col(v: torch.Tensor | float, n: int) -> torch.Tensor:
    """A scalar or (N,) coefficient as float64 (N, 1, 1) for broadcasting over (N, K, D)."""
    v = torch.as_tensor(v, dtype=torch.float64).reshape(-1)
    return v.expand(n).reshape(n, 1, 1)


@dataclass
class MixtureTruth:
    """The exact denoiser of a mixture (``diffeval.data.GaussianMixture``: weights (K,), means (K, D),
    covs (K, D, D)) under any Gaussian path.

    ``shape``: how a point is laid out as an image (C, H, W) for the image backbones, C*H*W = D.
    """

    mixture: GaussianMixture
    shape: tuple[int, int, int] | None = None
    name: str = "gmm"

    def __post_init__(self) -> None:
        d = self.means.shape[1]
        sym = 0.5 * (self.mixture.covs + self.mixture.covs.transpose(1, 2))
        lam, u = torch.linalg.eigh(sym)
        if (lam < -1e-10 * lam.abs().max().clamp(min=1)).any():
            raise ValueError("covariances must be positive semi-definite")
        self.eigvals, self.eigvecs = lam.clamp(min=0.0), u  # (K, D), (K, D, D)
        if self.shape is None:
            self.shape = (d, 1, 1)
        if math.prod(self.shape) != d:
            raise ValueError(f"shape {self.shape} does not hold {d} dimensions")

    @property
    def weights(self) -> torch.Tensor:
        return self.mixture.weights

    @property
    def means(self) -> torch.Tensor:
        return self.mixture.means

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """n points (n, D) float64 from p(x0), deterministic for a seed."""
        return self.mixture.sample(n, seed=int(seed))[0]

    def sample_noised(self, n: int, alpha: float, sigma: float, seed: int = 0) -> torch.Tensor:
        """n points (n, D) from the noised marginal p_t (alpha x0 + sigma eps)."""
        x0 = self.sample(n, seed)
        g = torch.Generator().manual_seed(int(seed) + 7_919)
        return alpha * x0 + sigma * torch.randn(n, self.dim, generator=g, dtype=torch.float64)

    # ------------------------------------------------------------------ closed forms
    def _parts(self, x: torch.Tensor, alpha, sigma):
        """Per-component projections y (N, K, D), variances c (N, K, D) and log-responsibilities (N, K)."""
        x = torch.as_tensor(x, dtype=torch.float64).reshape(x.shape[0], -1)
        n = x.shape[0]
        a, s = _col(alpha, n), _col(sigma, n)
        diff = x[:, None, :] - a * self.means[None]  # (N, K, D)
        y = torch.einsum("kji,nkj->nki", self.eigvecs, diff)  # U_k^T (x - a mu_k)
        c = a * a * self.eigvals[None] + s * s  # eigenvalues of C_k, (N, K, D)
        if (c <= 0).any():
            raise ValueError("the noised covariance is singular (sigma = 0 with a rank-deficient covariance)")
        log_n = -0.5 * (y * y / c).sum(-1) - 0.5 * torch.log(c).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        log_w = torch.log(self.weights)[None] + log_n
        return x, a, s, y, c, log_w

    def log_prob(self, x: torch.Tensor, alpha=1.0, sigma=0.0) -> torch.Tensor:
        """log p_t(x) (N,) of the noised mixture; differentiable in x (autograd checks the score)."""
        return torch.logsumexp(self._parts(x, alpha, sigma)[-1], dim=1)

    def posterior(self, x: torch.Tensor, alpha, sigma) -> Prediction:
        """Exact E[x0 | x], E[eps | x] (and through them score and v) at x (N, D) or (N, C, H, W).

        alpha, sigma: scalars or (N,). Returned tensors are float64 with x's shape.
        """
        shape = x.shape
        x, a, s, y, c, log_w = self._parts(x, alpha, sigma)
        w = torch.softmax(log_w, dim=1)[..., None]  # (N, K, 1)
        u = self.eigvecs  # (K, D, D), columns are eigenvectors

        def back(coef: torch.Tensor) -> torch.Tensor:  # sum_k w_k U_k (coef * y)
            return torch.einsum("kij,nkj->ni", u, w * coef * y)

        x0 = (w[..., 0] @ self.means) + back(a * self.eigvals[None] / c)
        eps = back(s / c)
        view = lambda v: v.reshape(shape)  # noqa: E731
        return Prediction(x=view(x), x0=view(x0), eps=view(eps), alpha=a.reshape(-1), sigma=s.reshape(-1))

    def score(self, x: torch.Tensor, alpha, sigma) -> torch.Tensor:
        """grad_x log p_t(x) (float64, x's shape); finite at sigma = 0 for full-rank covariances."""
        shape = x.shape
        x, a, s, y, c, log_w = self._parts(x, alpha, sigma)
        w = torch.softmax(log_w, dim=1)[..., None]
        return -torch.einsum("kij,nkj->ni", self.eigvecs, w * y / c).reshape(shape)


# ---------------------------------------------------------------------- the named mixtures
def _random_covariance(rng: np.random.Generator, d: int, scale_lo: float, scale_hi: float) -> np.ndarray:
    """A full covariance with a random orientation and standard deviations in [scale_lo, scale_hi]."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    std = np.exp(rng.uniform(np.log(scale_lo), np.log(scale_hi), d))
    return (q * std**2) @ q.T


def gmm2d() -> MixtureTruth:
    """Six anisotropic components on a circle of radius 0.7 in 2-D, unequal weights (seeded, fixed)."""
    rng = np.random.default_rng(2)
    k = 6
    angles = np.arange(k) * 2 * np.pi / k + 0.3
    means = 0.7 * np.stack([np.cos(angles), np.sin(angles)], 1)
    covs = np.stack([_random_covariance(rng, 2, 0.03, 0.15) for _ in range(k)])
    weights = np.array([3.0, 1.0, 2.0, 1.0, 2.0, 1.0])
    mix = GaussianMixture(torch.tensor(weights / weights.sum()), torch.tensor(means), torch.tensor(covs))
    return MixtureTruth(mix, shape=(2, 1, 1), name="gmm2d")


def gmm64() -> MixtureTruth:
    """Eight components in 64-D, laid out as 1x8x8 images: means with smooth spatial structure in
    [-0.8, 0.8], full covariances with standard deviations 0.02-0.3 (seeded, fixed)."""
    rng = np.random.default_rng(64)
    k, side = 8, 8
    yy, xx = np.meshgrid(np.linspace(-1, 1, side), np.linspace(-1, 1, side), indexing="ij")
    means = []
    for _ in range(k):
        fx, fy, ph = rng.uniform(0.5, 2.0), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
        means.append(0.6 * np.sin(np.pi * (fx * xx + fy * yy) + ph) + rng.uniform(-0.2, 0.2))
    means = np.stack(means).reshape(k, -1)
    covs = np.stack([_random_covariance(rng, side * side, 0.02, 0.3) for _ in range(k)])
    weights = rng.dirichlet(np.full(k, 5.0))
    mix = GaussianMixture(torch.tensor(weights), torch.tensor(means), torch.tensor(covs))
    return MixtureTruth(mix, shape=(1, side, side), name="gmm64")


MIXTURES = {"gmm2d": gmm2d, "gmm64": gmm64}


def mixture(name: str) -> MixtureTruth:
    """A named mixture: ``gmm2d`` or ``gmm64``."""
    if name not in MIXTURES:
        raise ValueError(f"unknown mixture {name!r}; choose one of {', '.join(MIXTURES)}")
    return MIXTURES[name]()
