"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) per split, from classifier logits."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, rel_entr

from ._arrays import ArrayLike, features_2d


def inception_score(logits: ArrayLike, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score over `splits` consecutive chunks of logits (N, K); float64.

    p(y|x) = softmax(logits) in float64; p(y) is the mean of p(y|x) within a split. Chunks are
    `np.array_split(range(N), splits)` (no shuffling); when N % splits != 0 the first chunks hold one
    more sample, whereas the original code and torch-fidelity cut at i * N // splits (identical when
    splits divides N). std uses ddof=0 (as the original and torch-fidelity). IS lies in [1, K].
    """
    z = features_2d(logits, "logits", min_rows=1)
    n = z.shape[0]
    if int(splits) != splits or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}")
    if splits > n:
        raise ValueError(f"splits ({splits}) cannot exceed the number of samples ({n})")
    p = np.exp(log_softmax(z, axis=1))
    scores = np.empty(int(splits), dtype=np.float64)
    for i, chunk in enumerate(np.array_split(p, int(splits), axis=0)):
        py = chunk.mean(axis=0, keepdims=True)
        kl = rel_entr(chunk, py).sum(axis=1)  # KL(p(y|x) || p(y)), 0 log 0 = 0
        scores[i] = np.exp(kl.mean())
    return float(scores.mean()), float(scores.std(ddof=0))
