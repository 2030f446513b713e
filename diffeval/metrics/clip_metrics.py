"""Metrics on CLIP embeddings: CLIP score (Hessel et al. 2021, torchmetrics scale) and CMMD (Jayasumana et al. 2024)."""

from __future__ import annotations

import numpy as np

from ._arrays import ArrayLike, features_2d, paired_features

_CHUNK = 1024


def l2_normalise(x: np.ndarray, name: str) -> np.ndarray:
    """Rows of x (N, D) divided by their L2 norm; ValueError on a zero row."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} has {int((norms == 0).sum())} all-zero embedding(s); cannot normalise")
    return x / norms


def clip_score(image_emb: ArrayLike, text_emb: ArrayLike) -> np.ndarray:
    """Per-sample CLIP score 100 * max(cos(image_i, text_i), 0); float64 (N,), in [0, 100].

    image_emb and text_emb are (N, D) paired embeddings (normalised here, any scale accepted).
    """
    img = features_2d(image_emb, "image_emb")
    txt = features_2d(text_emb, "text_emb")
    if img.shape != txt.shape:
        raise ValueError(f"image_emb and text_emb must have the same shape (N, D), got {img.shape} and {txt.shape}")
    cos = np.einsum("nd,nd->n", l2_normalise(img, "image_emb"), l2_normalise(txt, "text_emb"))
    return 100.0 * np.clip(cos, 0.0, None)


def clip_score_mean(image_emb: ArrayLike, text_emb: ArrayLike) -> float:
    """Mean of the per-sample clamped CLIP scores, in [0, 100].

    Clamping is per sample, then the mean (as in Hessel et al.'s CLIP-S, scale 100 instead of 2.5).
    torchmetrics' CLIPScore instead averages the raw 100 * cos and clamps the mean at 0; the two agree
    whenever no pair has a negative cosine.
    """
    return float(clip_score(image_emb, text_emb).mean())


def _rbf_mean(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    """Mean over all (i, j) of exp(-gamma ||a_i - b_j||^2), in row chunks of a."""
    b_sq = (b * b).sum(axis=1)
    total = 0.0
    for start in range(0, a.shape[0], _CHUNK):
        ac = a[start : start + _CHUNK]
        sq = (ac * ac).sum(axis=1)[:, None] + b_sq[None, :] - 2.0 * ac @ b.T
        total += float(np.exp(-gamma * np.clip(sq, 0.0, None)).sum())
    return total / (a.shape[0] * b.shape[0])


def cmmd(real_emb: ArrayLike, fake_emb: ArrayLike, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """CMMD: scale * MMD^2 with an RBF kernel exp(-||x - y||^2 / (2 sigma^2)) on L2-normalised embeddings.

    real_emb (N, D), fake_emb (M, D). The biased V-statistic mean(K_xx) + mean(K_yy) - 2 mean(K_xy),
    diagonals included, exactly as the CMMD paper's reference code (google-research/cmmd distance.py);
    it is >= 0 (up to rounding) and exactly 0 for identical sets. Memory O(1024 * max(N, M)).
    """
    x, y = paired_features(real_emb, fake_emb, ("real_emb", "fake_emb"))
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}")
    x = l2_normalise(x, "real_emb")
    y = l2_normalise(y, "fake_emb")
    gamma = 1.0 / (2.0 * sigma**2)
    return float(scale * (_rbf_mean(x, x, gamma) + _rbf_mean(y, y, gamma) - 2.0 * _rbf_mean(x, y, gamma)))
