"""Fréchet distance between Gaussians (FID when the statistics are Inception pool3 features).

d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}), in float64. The trace term is computed
from a symmetric form: tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(L^T S2 L)) with S1 = L L^T (Cholesky;
the symmetric root sqrt(S1) when S1 is singular): one Cholesky factor, two triangular products and
the eigenvalues of one symmetric matrix, instead of `scipy.linalg.sqrtm` of a non-symmetric product
(pytorch-fid); singular covariances need no eps fallback.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.linalg import blas

from ._arrays import ArrayLike, paired_features, to_float64
from .gaussian import GaussianStats


def _symmetric_psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; negative eigenvalues (rounding) are clipped to 0."""
    w, v = linalg.eigh(s, check_finite=False)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    return (root + root.T) / 2


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^{1/2}) for symmetric PSD (d, d) float64 matrices.

    S1 S2 is similar to the symmetric PSD matrix M = R^T S2 R for any R with R R^T = S1, so the trace
    is sum_i sqrt(lambda_i(M)), eigenvalues only. R is the Cholesky factor when S1 is positive
    definite (two triangular products), else the symmetric root from an eigendecomposition.
    """
    try:
        low = linalg.cholesky(sigma1, lower=True, check_finite=False)
        m = blas.dtrmm(1.0, low, np.asfortranarray(sigma2), side=1, lower=1)  # S2 L
        m = blas.dtrmm(1.0, low, m, side=0, lower=1, trans_a=1)  # L^T S2 L
    except linalg.LinAlgError:  # singular S1 (e.g. fewer samples than dimensions)
        root1 = _symmetric_psd_sqrt(sigma1)
        m = root1 @ sigma2 @ root1
    m = (m + m.T) / 2
    ev = linalg.eigh(m, eigvals_only=True, check_finite=False, driver="evd")
    return float(np.sqrt(np.clip(ev, 0.0, None)).sum())


def _as_mean(mu: ArrayLike, name: str) -> np.ndarray:
    m = np.atleast_1d(to_float64(mu, name))
    if m.ndim != 1:
        raise ValueError(f"{name} must be a 1-D mean vector (d,), got shape {m.shape}")
    return m


def _as_cov(sigma: ArrayLike, name: str, d: int) -> np.ndarray:
    s = np.atleast_2d(to_float64(sigma, name))
    if s.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) to match the mean, got {s.shape}")
    scale = float(np.abs(s).max()) if s.size else 0.0
    asym = float(np.abs(s - s.T).max()) if s.size else 0.0
    if asym > 1e-6 * max(scale, np.finfo(np.float64).tiny):
        raise ValueError(f"{name} is not symmetric (max |S - S^T| = {asym:.3g}, max |S| = {scale:.3g})")
    return (s + s.T) / 2


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, eps: float = 1e-6) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); float64, units of feature^2.

    mu: (d,), sigma: (d, d) symmetric PSD (numpy or torch; a scalar mean/variance is accepted for d = 1).
    Inputs are symmetrised ((S + S^T) / 2); asymmetry beyond 1e-6 relative raises ValueError.
    Singular covariances are fine (eigenvalues clipped at 0). If the result is still not finite, eps is
    added to both diagonals and the computation retried with a warning, as pytorch-fid does. The value is
    not clipped at 0: identical statistics give ~0, possibly a tiny negative number from rounding.
    """
    m1 = _as_mean(mu1, "mu1")
    m2 = _as_mean(mu2, "mu2")
    if m1.shape != m2.shape:
        raise ValueError(f"mu1 and mu2 have different lengths: {m1.shape[0]} vs {m2.shape[0]}")
    d = m1.shape[0]
    s1 = _as_cov(sigma1, "sigma1", d)
    s2 = _as_cov(sigma2, "sigma2", d)
    diff = m1 - m2
    base = float(diff @ diff + np.trace(s1) + np.trace(s2))

    def attempt(a: np.ndarray, b: np.ndarray) -> float:
        try:
            return base - 2.0 * trace_sqrt_product(a, b)
        except (linalg.LinAlgError, ValueError):
            return float("nan")

    value = attempt(s1, s2)
    if not np.isfinite(value):
        warnings.warn(
            f"Fréchet distance is not finite; adding {eps} to the diagonal of both covariances (pytorch-fid fallback)",
            RuntimeWarning,
            stacklevel=2,
        )
        offset = np.eye(d) * eps
        value = attempt(s1 + offset, s2 + offset)  # like pytorch-fid: traces stay those of the originals
        if not np.isfinite(value):
            raise FloatingPointError("Fréchet distance is not finite even after adding eps to the covariances")
    return value


def fid_from_features(real: ArrayLike, fake: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to real (N1, d) and fake (N2, d) features (N >= 2 each)."""
    x, y = paired_features(real, fake, ("real", "fake"), min_rows=2)
    a = GaussianStats(x.shape[1]).update(x)
    b = GaussianStats(y.shape[1]).update(y)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def fid_interval(feats: ArrayLike, mu: ArrayLike, sigma: ArrayLike, fid: float, resamples: int = 100, seed: int = 0
                 ) -> tuple[float, float]:
    """95% normal interval fid +- 1.96 SE for features (N, d) against the reference (mu, sigma), with the standard
    error from half-sampling: the FID of ``resamples`` random halves (without replacement) varies with SD ~
    sqrt(2) SE. Resampling with replacement is avoided on purpose: duplicates lower the covariance rank and bias
    FID upward, so percentile bootstrap intervals of FID miss the estimate. The interval covers the sampling
    noise of the feature set, not FID's O(1/n) bias: compare sets of equal n. (nan, nan) for resamples <= 0 or
    N < 4."""
    feats = np.asarray(feats, dtype=np.float64)
    if resamples <= 0 or len(feats) < 4:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    half = len(feats) // 2
    values = []
    for _ in range(resamples):
        x = feats[rng.permutation(len(feats))[:half]]
        values.append(frechet_distance(x.mean(0), np.cov(x, rowvar=False), mu, sigma))
    se = float(np.std(values, ddof=1)) / np.sqrt(2)
    return max(0.0, fid - 1.96 * se), fid + 1.96 * se
