"""Precision/recall and density/coverage against a brute-force sklearn/scipy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from diffeval.metrics import density_coverage, precision_recall


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance to the k-th nearest other sample (the query point itself is the 0-th neighbour)."""
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return dist[:, k]


def _reference(real: np.ndarray, fake: np.ndarray, k_pr: int, k_dc: int) -> tuple[float, float, float, float]:
    d_rf = cdist(real, fake)  # (N, M)
    r_real, r_fake = _radii(real, k_pr), _radii(fake, k_pr)
    precision = float(np.mean([(d_rf[:, j] <= r_real).any() for j in range(fake.shape[0])]))
    recall = float(np.mean([(d_rf[i, :] <= r_fake).any() for i in range(real.shape[0])]))
    r_dc = _radii(real, k_dc)
    density = float((d_rf < r_dc[:, None]).sum() / (k_dc * fake.shape[0]))
    coverage = float((d_rf.min(axis=1) < r_dc).mean())
    return precision, recall, density, coverage


@pytest.mark.parametrize("shift,chunk", [(0.0, 1024), (0.7, 16), (1.5, 7)])
def test_matches_brute_force_reference(shift: float, chunk: int) -> None:
    rng = np.random.default_rng(int(shift * 10))
    real = rng.normal(size=(130, 6))
    fake = rng.normal(size=(95, 6)) * 1.2 + shift
    p, r = precision_recall(real, fake, k=3, chunk_size=chunk)
    d, c = density_coverage(real, fake, k=5, chunk_size=chunk)
    ref = _reference(real, fake, 3, 5)
    assert (p, r, d, c) == pytest.approx(ref, abs=1e-12)
    assert 0 < p < 1 and 0 < r < 1 and 0 < c <= 1


def test_chunk_size_does_not_change_results() -> None:
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(70, 4)), rng.normal(size=(60, 4)) + 0.3
    base = precision_recall(real, fake) + density_coverage(real, fake)
    for chunk in (1, 13, 69, 70, 1000):
        assert precision_recall(real, fake, chunk_size=chunk) + density_coverage(real, fake, chunk_size=chunk) == base


def test_identical_sets_score_one() -> None:
    x = np.random.default_rng(1).normal(size=(80, 10))
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x[::-1], x[::2][::-1]) == pytest.approx(
        precision_recall(x[::-1].copy(), x[::2][::-1].copy())
    )
    density, coverage = density_coverage(x, torch.from_numpy(x).clone())
    assert coverage == 1.0 and density > 0


def test_far_apart_sets_score_zero() -> None:
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(50, 8)), rng.normal(size=(40, 8)) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_validation() -> None:
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="at least 6 rows"):
        density_coverage(x, np.ones((10, 3)), k=5)
    with pytest.raises(ValueError, match="at least 4 rows"):
        precision_recall(np.ones((10, 3)), np.ones((3, 3)), k=3)
    assert density_coverage(np.random.default_rng(0).normal(size=(10, 3)), np.zeros((1, 3)), k=5)[1] >= 0.0
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match="different feature dims"):
        precision_recall(np.ones((10, 3)), np.ones((10, 2)))
