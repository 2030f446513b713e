"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with a polynomial kernel over subsets."""

from __future__ import annotations

import warnings

import numpy as np

from ._arrays import ArrayLike, paired_features


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """k(x, y) = (x . y / d + coef0)^degree for rows of x (n, d) and y (m, d); float64 (n, m)."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD^2 from kernel blocks of two equal-size samples (m >= 2).

    sum_{i != j} k(x_i, x_j) / (m (m-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1)) - 2 sum_{i, j} k(x_i, y_j) / m^2
    (the estimator of torch-fidelity's and the KID paper's code).
    """
    m = k_xx.shape[0]
    xx = k_xx.sum() - np.trace(k_xx)
    yy = k_yy.sum() - np.trace(k_yy)
    return float((xx + yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    real: ArrayLike,
    fake: ArrayLike,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef0: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of unbiased MMD^2 estimates over random subsets; float64, units of kernel value.

    real (N1, d), fake (N2, d). Kernel (x . y / d + coef0)^degree. m = min(subset_size, N1, N2) (a
    RuntimeWarning when m < subset_size). Subsets come from `np.random.default_rng(seed)`: for each
    subset, `rng.choice(N1, m, replace=False)` for real, then `rng.choice(N2, m, replace=False)` for fake.
    std is `np.std` with ddof=0 over the `subsets` estimates, as in torch-fidelity (the spread of a
    single-subset estimate, not the standard error of the mean).
    """
    x, y = paired_features(real, fake, ("real", "fake"), min_rows=2)
    if int(subsets) != subsets or subsets < 1:
        raise ValueError(f"subsets must be a positive integer, got {subsets!r}")
    if int(subset_size) != subset_size or subset_size < 2:
        raise ValueError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    if int(degree) != degree or degree < 1:
        raise ValueError(f"degree must be a positive integer, got {degree!r}")
    m = int(min(subset_size, x.shape[0], y.shape[0]))
    if m < subset_size:
        warnings.warn(
            f"KID subset size reduced from {subset_size} to {m} (real has {x.shape[0]}, fake {y.shape[0]} samples); "
            "values are not comparable to ones computed with the full subset size",
            RuntimeWarning,
            stacklevel=2,
        )
    rng = np.random.default_rng(seed)
    estimates = np.empty(int(subsets), dtype=np.float64)
    for i in range(int(subsets)):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        estimates[i] = mmd2_unbiased(
            polynomial_kernel(xs, xs, degree, coef0),
            polynomial_kernel(ys, ys, degree, coef0),
            polynomial_kernel(xs, ys, degree, coef0),
        )
    return float(estimates.mean()), float(estimates.std(ddof=0))
