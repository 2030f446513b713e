"""KID: agreement with an sklearn-kernel reference on the same subsets, null/shifted behaviour, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import polynomial_kernel

from diffeval.metrics import kernel_inception_distance


def _reference_kid(real, fake, subsets, m, degree=3, coef0=1.0, seed=0):
    """Straightforward KID: same subset draws (real then fake per subset), explicit off-diagonal masks."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    off = ~np.eye(m, dtype=bool)
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx = polynomial_kernel(x, x, degree=degree, gamma=1.0 / d, coef0=coef0)
        kyy = polynomial_kernel(y, y, degree=degree, gamma=1.0 / d, coef0=coef0)
        kxy = polynomial_kernel(x, y, degree=degree, gamma=1.0 / d, coef0=coef0)
        values.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "real": rng.normal(size=(300, 16)),
        "same": rng.normal(size=(250, 16)),
        "shifted": rng.normal(size=(250, 16)) + 0.5,
    }


@pytest.mark.parametrize("degree,coef0", [(3, 1.0), (2, 0.5)])
def test_matches_sklearn_reference(data: dict[str, np.ndarray], degree: int, coef0: float) -> None:
    ours = kernel_inception_distance(
        data["real"], data["shifted"], subsets=20, subset_size=80, degree=degree, coef0=coef0, seed=3
    )
    ref = _reference_kid(data["real"], data["shifted"], 20, 80, degree, coef0, seed=3)
    assert ours[0] == pytest.approx(ref[0], rel=1e-10)
    assert ours[1] == pytest.approx(ref[1], rel=1e-8)


def test_same_distribution_near_zero_and_shift_clearly_positive(data: dict[str, np.ndarray]) -> None:
    mean0, std0 = kernel_inception_distance(data["real"], data["same"], subsets=50, subset_size=100)
    mean1, std1 = kernel_inception_distance(data["real"], data["shifted"], subsets=50, subset_size=100)
    assert std0 > 0 and abs(mean0) < 3 * std0  # unbiased: centred on 0 for equal distributions
    assert mean1 > 5 * std1 and mean1 > 10 * abs(mean0)


def test_seeded_reproducibility_and_torch_input(data: dict[str, np.ndarray]) -> None:
    a = kernel_inception_distance(data["real"], data["shifted"], subsets=10, subset_size=50, seed=7)
    b = kernel_inception_distance(data["real"], data["shifted"], subsets=10, subset_size=50, seed=7)
    c = kernel_inception_distance(data["real"], data["shifted"], subsets=10, subset_size=50, seed=8)
    assert a == b and a != c
    t = kernel_inception_distance(
        torch.from_numpy(data["real"]), torch.from_numpy(data["shifted"]), subsets=10, subset_size=50, seed=7
    )
    assert t == a


def test_small_sets_shrink_subsets_with_warning(data: dict[str, np.ndarray]) -> None:
    with pytest.warns(RuntimeWarning, match="reduced from 1000 to 250"):
        mean, std = kernel_inception_distance(data["real"], data["same"], subsets=1)
    assert std == 0.0
    assert mean == pytest.approx(_reference_kid(data["real"], data["same"], 1, 250)[0], rel=1e-10)


def test_validation(data: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="different feature dims"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="subsets"):
        kernel_inception_distance(data["real"], data["same"], subsets=0)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(data["real"], data["same"], subset_size=1)
