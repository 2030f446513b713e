"""k-NN manifold metrics: precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020).

A sample's ball has radius = Euclidean distance to its k-th nearest OTHER sample of the same set.
Distances are computed with `torch.cdist` in float64 on row chunks, so memory is O(chunk_size * N).
Ball membership follows each paper's reference code: `<=` for precision/recall
(improved-precision-recall-metric), strict `<` for density/coverage (the `prdc` package).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from ._arrays import ArrayLike, paired_features

DEFAULT_CHUNK = 1024


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _check(
    real: ArrayLike, fake: ArrayLike, k: int, chunk_size: int, fake_needs_radii: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    x, y = paired_features(real, fake, ("real", "fake"), min_rows=1)
    for arr, name, needed in ((x, "real", int(k) + 1), (y, "fake", int(k) + 1 if fake_needs_radii else 1)):
        if arr.shape[0] < needed:
            raise ValueError(f"{name} needs at least {needed} rows for k={k}, got {arr.shape[0]}")
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def knn_radii(x: torch.Tensor, k: int, chunk_size: int = DEFAULT_CHUNK) -> torch.Tensor:
    """float64 (N,) distance from each row of x (N, d) to its k-th nearest other row (self excluded by index)."""
    n = x.shape[0]
    if n <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {n}")
    out = torch.empty(n, dtype=torch.float64)
    for sl in _chunks(n, chunk_size):
        d = torch.cdist(x[sl], x)
        rows = torch.arange(sl.stop - sl.start)
        d[rows, rows + sl.start] = float("inf")
        out[sl] = torch.kthvalue(d, k, dim=1).values
    return out


def _fraction_in_union(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk_size: int) -> float:
    """Fraction of query rows within distance <= radius of at least one centre."""
    inside = 0
    for sl in _chunks(queries.shape[0], chunk_size):
        d = torch.cdist(queries[sl], centres)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / queries.shape[0]


def precision_recall(
    real: ArrayLike, fake: ArrayLike, k: int = 3, *, chunk_size: int = DEFAULT_CHUNK
) -> tuple[float, float]:
    """(precision, recall) in [0, 1] for real (N, d) and fake (M, d) features (Kynkäänniemi et al. 2019).

    precision = fraction of fake samples inside the union of real k-NN balls; recall = fraction of real
    samples inside the union of fake k-NN balls. Needs N, M > k.
    """
    x, y = _check(real, fake, k, chunk_size, fake_needs_radii=True)
    precision = _fraction_in_union(y, x, knn_radii(x, int(k), chunk_size), chunk_size)
    recall = _fraction_in_union(x, y, knn_radii(y, int(k), chunk_size), chunk_size)
    return precision, recall


def density_coverage(
    real: ArrayLike, fake: ArrayLike, k: int = 5, *, chunk_size: int = DEFAULT_CHUNK
) -> tuple[float, float]:
    """(density, coverage) for real (N, d) and fake (M, d) features (Naeem et al. 2020). Needs N > k, M >= 1.

    density = (1 / (k M)) sum_j sum_i 1[||fake_j - real_i|| < r_i], in [0, N / k] (1 means "as dense as real");
    coverage = fraction of real samples whose ball contains at least one fake sample, in [0, 1].
    """
    x, y = _check(real, fake, k, chunk_size, fake_needs_radii=False)
    radii = knn_radii(x, int(k), chunk_size)
    count = 0
    covered = 0
    for sl in _chunks(x.shape[0], chunk_size):
        inside = torch.cdist(x[sl], y) < radii[sl, None]
        count += int(inside.sum())
        covered += int(inside.any(dim=1).sum())
    return count / (int(k) * y.shape[0]), covered / x.shape[0]
