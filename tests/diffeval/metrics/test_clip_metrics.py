"""CLIP score and CMMD against direct numpy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from diffeval.metrics import clip_metrics, clip_score, clip_score_mean, cmmd


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_clip_score_matches_formula_and_clamps_per_sample() -> None:
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(40, 32)), rng.normal(size=(40, 32))
    txt[:20] = img[:20] + 0.3 * txt[:20]  # half the pairs aligned, half random (some negative cosines)
    cos = (_unit(img) * _unit(txt)).sum(axis=1)
    assert (cos < 0).any()
    expected = 100 * np.maximum(cos, 0)
    scores = clip_score(img * 7.0, torch.from_numpy(txt).float())
    assert scores.dtype == np.float64 and scores.shape == (40,)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-5)  # text given as float32
    np.testing.assert_allclose(clip_score(img, txt), expected, rtol=1e-12, atol=1e-12)
    assert clip_score_mean(img, txt) == pytest.approx(expected.mean(), rel=1e-12)
    assert clip_score_mean(img, txt) > max(100 * cos.mean(), 0)  # differs from clamping the mean
    assert clip_score_mean(img, img) == pytest.approx(100.0, rel=1e-12)


def test_clip_score_validation() -> None:
    with pytest.raises(ValueError, match="same shape"):
        clip_score(np.ones((3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="all-zero"):
        clip_score(np.zeros((2, 4)), np.ones((2, 4)))


def _cmmd_reference(x: np.ndarray, y: np.ndarray, sigma: float, scale: float) -> float:
    x, y = _unit(x), _unit(y)
    k = lambda a, b: np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma**2))  # noqa: E731
    return float(scale * (k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()))


@pytest.mark.parametrize("sigma,scale", [(10.0, 1000.0), (0.5, 1.0)])
def test_cmmd_matches_numpy_formula(monkeypatch: pytest.MonkeyPatch, sigma: float, scale: float) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 16)), rng.normal(size=(45, 16)) + 0.4
    ref = _cmmd_reference(x, y, sigma, scale)
    assert cmmd(x, y, sigma=sigma, scale=scale) == pytest.approx(ref, rel=1e-9)
    monkeypatch.setattr(clip_metrics, "_CHUNK", 7)  # exercise the chunked sums
    assert cmmd(x, y, sigma=sigma, scale=scale) == pytest.approx(ref, rel=1e-9)
    assert ref > 0


def test_cmmd_same_set_is_zero_and_scale_invariant_inputs() -> None:
    x = np.random.default_rng(2).normal(size=(50, 8))
    assert cmmd(x, x) == 0.0
    assert cmmd(x, 3.0 * x) == pytest.approx(0.0, abs=1e-9)  # embeddings are normalised
    with pytest.raises(ValueError, match="sigma"):
        cmmd(x, x, sigma=0.0)
