"""Inception Score: closed forms (uniform -> 1, evenly spread one-hot -> K) and a scipy.stats.entropy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import softmax
from scipy.stats import entropy

from diffeval.metrics import inception_score


def _reference_is(logits: np.ndarray, splits: int) -> tuple[float, float]:
    p = softmax(logits.astype(np.float64), axis=1)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0)
        scores.append(np.exp(np.mean([entropy(row, py) for row in part])))
    return float(np.mean(scores)), float(np.std(scores))


def test_uniform_predictions_give_one() -> None:
    mean, std = inception_score(np.zeros((100, 7)), splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 10, 1000])
def test_confident_even_predictions_give_k(k: int) -> None:
    splits = 5
    labels = np.tile(np.arange(k), splits)  # every split sees each class once
    logits = np.full((k * splits, k), -50.0)
    logits[np.arange(len(labels)), labels] = 50.0
    mean, std = inception_score(logits, splits=splits)
    assert mean == pytest.approx(k, rel=1e-6) and std < 1e-6 * k


@pytest.mark.parametrize("n,splits", [(100, 10), (103, 10), (37, 1), (12, 12)])
def test_matches_entropy_reference(n: int, splits: int) -> None:
    rng = np.random.default_rng(n)
    logits = rng.normal(size=(n, 20)) * 3
    ours = inception_score(logits, splits=splits)
    ref = _reference_is(logits, splits)
    assert ours[0] == pytest.approx(ref[0], rel=1e-10)
    assert ours[1] == pytest.approx(ref[1], rel=1e-8, abs=1e-12)


def test_float32_tensor_input_is_computed_in_float64() -> None:
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(60, 10)) * 5).float()
    ours = inception_score(logits, splits=3)
    ref = _reference_is(logits.double().numpy(), 3)
    assert ours[0] == pytest.approx(ref[0], rel=1e-12)


def test_validation() -> None:
    with pytest.raises(ValueError, match="cannot exceed"):
        inception_score(np.zeros((5, 3)), splits=10)
    with pytest.raises(ValueError, match="2-D"):
        inception_score(np.zeros(5), splits=1)
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.zeros((5, 3)), splits=0)
