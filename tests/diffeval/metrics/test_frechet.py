"""Fréchet distance: closed forms, agreement with pytorch-fid, singular covariances, the eps fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from diffeval.metrics import GaussianStats, fid_from_features, frechet_distance
from diffeval.metrics import frechet as frechet_module

# pytorch-fid 0.3.0 passes sqrtm(disp=False), deprecated in recent SciPy
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


def _stats(
    rng: np.random.Generator, n: int, d: int, scale: float = 1.0, offset: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and A A^T / n style covariance of n random correlated features in d dims."""
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    feats = (rng.normal(size=(n, d)) @ mix) * scale + offset + rng.normal(size=d)
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def test_identity_covariances_unit_mean_shift_d2048() -> None:
    d = 2048
    value = frechet_distance(np.zeros(d), np.eye(d), np.ones(d), np.eye(d))
    assert isinstance(value, float)
    assert abs(value - d) <= 1e-9 * d


def test_features_against_themselves_give_zero() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(300, 48)) @ rng.normal(size=(48, 48)) + 2.0
    assert abs(fid_from_features(feats, feats)) < 1e-6
    assert abs(fid_from_features(torch.from_numpy(feats).float(), torch.from_numpy(feats).float())) < 1e-6


def test_equal_covariances_give_squared_mean_distance() -> None:
    rng = np.random.default_rng(1)
    mu1, sigma = _stats(rng, 400, 64)
    mu2 = mu1 + rng.normal(size=64)
    expected = float(((mu1 - mu2) ** 2).sum())
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-9, abs=1e-9 * np.trace(sigma))


@pytest.mark.parametrize("m1,s1,m2,s2", [(0.0, 1.0, 0.0, 2.0), (1.5, 0.3, -2.0, 4.0), (3.0, 2.0, 3.0, 2.0)])
def test_one_dimensional_closed_form(m1: float, s1: float, m2: float, s2: float) -> None:
    expected = (m1 - m2) ** 2 + (s1 - s2) ** 2  # s = standard deviation
    assert frechet_distance(m1, s1**2, m2, s2**2) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    value = frechet_distance(np.array([m1]), np.array([[s1**2]]), np.array([m2]), np.array([[s2**2]]))
    assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_diagonal_closed_form() -> None:
    rng = np.random.default_rng(2)
    v1, v2 = rng.uniform(0.1, 3.0, size=30), rng.uniform(0.1, 3.0, size=30)
    mu1, mu2 = rng.normal(size=30), rng.normal(size=30)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("d", [64, 512])
def test_agrees_with_pytorch_fid(d: int) -> None:
    rng = np.random.default_rng(d)
    mu1, s1 = _stats(rng, 2 * d + 10, d)
    mu2, s2 = _stats(rng, 3 * d, d, scale=1.3, offset=0.2)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = float(calculate_frechet_distance(mu1, s1, mu2, s2))
    assert ours == pytest.approx(ref, rel=1e-6)
    # same statistics as float32 torch tensors (the result is still computed in float64)
    t = [torch.from_numpy(a) for a in (mu1, s1, mu2, s2)]
    assert frechet_distance(*t) == pytest.approx(ours, rel=1e-12)


def test_singular_covariances_finite_and_close_to_pytorch_fid() -> None:
    rng = np.random.default_rng(3)
    d = 96
    mu1, s1 = _stats(rng, 40, d)  # n < d: rank 39
    mu2, s2 = _stats(rng, 50, d, scale=1.2)
    assert GaussianStats(d).update(rng.normal(size=(40, d))).rank() == 39
    assert np.linalg.matrix_rank(s1, hermitian=True) < d
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = float(calculate_frechet_distance(mu1, s1, mu2, s2))
    assert np.isfinite(ours)
    assert ours == pytest.approx(ref, rel=1e-5)


def test_eps_fallback_warns_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    mu1, s1 = _stats(rng, 100, 16)
    mu2, s2 = _stats(rng, 100, 16)
    expected = frechet_distance(mu1, s1, mu2, s2)
    real_trace = frechet_module.trace_sqrt_product
    calls: list[float] = []

    def flaky(a: np.ndarray, b: np.ndarray) -> float:
        calls.append(float(a[0, 0]))
        return float("nan") if len(calls) == 1 else real_trace(a, b)

    monkeypatch.setattr(frechet_module, "trace_sqrt_product", flaky)
    with pytest.warns(RuntimeWarning, match="adding 1e-06"):
        value = frechet_distance(mu1, s1, mu2, s2)
    assert len(calls) == 2 and calls[1] == pytest.approx(calls[0] + 1e-6)
    assert value == pytest.approx(expected, rel=1e-5)

    monkeypatch.setattr(frechet_module, "trace_sqrt_product", lambda a, b: float("nan"))
    with pytest.warns(RuntimeWarning), pytest.raises(FloatingPointError):
        frechet_distance(mu1, s1, mu2, s2)


def test_shape_and_value_validation() -> None:
    eye = np.eye(3)
    with pytest.raises(ValueError, match="different lengths"):
        frechet_distance(np.zeros(3), eye, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"sigma2 must have shape \(3, 3\)"):
        frechet_distance(np.zeros(3), eye, np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="mu1 must be a 1-D"):
        frechet_distance(np.zeros((3, 1)), eye, np.zeros(3), eye)
    with pytest.raises(ValueError, match="not symmetric"):
        frechet_distance(np.zeros(3), np.triu(np.ones((3, 3))), np.zeros(3), eye)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full(3, np.nan), eye, np.zeros(3), eye)
    with pytest.raises(ValueError, match="different feature dims"):
        fid_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        fid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))


def test_fid_from_features_matches_numpy_statistics() -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(200, 20))
    fake = rng.normal(size=(150, 20)) * 1.1 + 0.3
    expected = calculate_frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )
    assert fid_from_features(real, fake) == pytest.approx(float(expected), rel=1e-8)


def test_cholesky_and_symmetric_root_paths_agree() -> None:
    """The fast path (Cholesky of S1) and the singular-S1 path (symmetric root) give the same trace term."""
    from diffeval.metrics.frechet import _symmetric_psd_sqrt, trace_sqrt_product

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((300, 64)), rng.standard_normal((300, 64)) * 1.7
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = _symmetric_psd_sqrt(s1)
    expected = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    assert abs(trace_sqrt_product(s1, s2) - expected) < 1e-10 * expected
