"""The empirical optimal denoiser of a finite training set, and nearest-neighbour distances.

For training points y_1..y_M (the data distribution is their empirical measure), the exact posterior
mean at x = alpha x0 + sigma eps is a softmax-weighted mean of the training points:

    E[x0 | x] = sum_j softmax_j(-||x - alpha y_j||^2 / (2 sigma^2)) y_j,   E[eps | x] = (x - alpha E[x0|x]) / sigma

A model that matched it perfectly would only ever reproduce training points (Gu et al. 2023), which
makes it the positive control for memorisation. The softmax is accumulated over chunks of the
training set with a running log-sum-exp, so the full Fashion-MNIST training set (60,000 x 784) fits in
memory; distances are computed in float64 by default because at small sigma the logits are huge and
float32 cancellation in ||x||^2 - 2 a x.y + a^2 ||y||^2 would pick the wrong neighbour.
"""

from __future__ import annotations

import pandas as pd
import torch

from diffeval.generators.parameterization import Prediction


class EmpiricalDenoiser:
    """Exact denoiser of the empirical distribution of ``points`` (M, D) (any float dtype; kept as given)."""

    def __init__(self, points: torch.Tensor, chunk: int = 8192, dtype: torch.dtype = torch.float64) -> None:
        if points.ndim < 2 or points.shape[0] < 1:
            raise ValueError("points must be (M, ...) with M >= 1")
        self.points = points.reshape(points.shape[0], -1).to(dtype)
        self.sq_norms = (self.points * self.points).sum(1)  # (M,)
        self.chunk, self.dtype = int(chunk), dtype

    def posterior(self, x: torch.Tensor, alpha, sigma) -> Prediction:
        """E[x0 | x], E[eps | x] at x (N, D) or (N, C, H, W) for scalar alpha and sigma > 0 (float64 out)."""
        alpha, sigma = float(alpha), float(sigma)
        if sigma <= 0:
            raise ValueError("the empirical denoiser needs sigma > 0")
        shape = x.shape
        xf = x.reshape(x.shape[0], -1).to(self.dtype)
        n, d = xf.shape
        run_max = torch.full((n, 1), -torch.inf, dtype=self.dtype)
        run_sum = torch.zeros(n, 1, dtype=self.dtype)
        run_mean = torch.zeros(n, d, dtype=self.dtype)
        for start in range(0, self.points.shape[0], self.chunk):
            y = self.points[start : start + self.chunk]
            # -||x - a y||^2 / (2 s^2) up to the per-row constant ||x||^2, which the softmax ignores
            logits = (2 * alpha * (xf @ y.T) - alpha * alpha * self.sq_norms[start : start + self.chunk]) / (
                2 * sigma * sigma
            )
            m = torch.maximum(run_max, logits.max(1, keepdim=True).values)
            scale = torch.exp(run_max - m)
            e = torch.exp(logits - m)
            run_sum = run_sum * scale + e.sum(1, keepdim=True)
            run_mean = run_mean * scale + e @ y
            run_max = m
        x0 = (run_mean / run_sum).double()
        xd = xf.double()
        eps = (xd - alpha * x0) / sigma
        view = lambda v: v.reshape(shape)  # noqa: E731
        a = torch.full((n,), alpha, dtype=torch.float64)
        return Prediction(x=view(xd), x0=view(x0), eps=view(eps), alpha=a, sigma=torch.full_like(a, sigma))


def nearest_two(
    samples: torch.Tensor, points: torch.Tensor, chunk: int = 8192
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Euclidean distances from each sample (N, ...) to its nearest and second-nearest point of
    ``points`` (M, ...), M >= 2, and the nearest point's index. Returns d1 (N,), d2 (N,), index (N,),
    float64 distances in the inputs' units."""
    s = samples.reshape(samples.shape[0], -1).double()
    p = points.reshape(points.shape[0], -1)
    if p.shape[0] < 2:
        raise ValueError("need at least two training points for the second-nearest distance")
    best = torch.full((s.shape[0], 2), torch.inf, dtype=torch.float64)
    best_idx = torch.zeros(s.shape[0], 2, dtype=torch.long)
    s_sq = (s * s).sum(1, keepdim=True)
    for start in range(0, p.shape[0], chunk):
        y = p[start : start + chunk].double()
        d2 = (s_sq - 2 * s @ y.T + (y * y).sum(1)[None]).clamp(min=0)
        k = min(2, y.shape[0])
        vals, idx = torch.topk(d2, k, dim=1, largest=False)
        vals = torch.cat([best, vals], 1)
        idx = torch.cat([best_idx, idx + start], 1)
        order = torch.argsort(vals, dim=1)[:, :2]
        best, best_idx = torch.gather(vals, 1, order), torch.gather(idx, 1, order)
    return best[:, 0].sqrt(), best[:, 1].sqrt(), best_idx[:, 0]


MEMORISED_RATIO = 1.0 / 3.0


def memorisation_table(samples: torch.Tensor, points: torch.Tensor, source: str = "") -> pd.DataFrame:
    """One row per sample: source, index, d1, d2 (nearest / second-nearest training distance), ratio =
    d1/d2, nearest (training index), memorised (ratio < 1/3, Gu et al. 2023)."""
    d1, d2, idx = nearest_two(samples, points)
    ratio = d1 / d2.clamp(min=1e-300)
    return pd.DataFrame({
        "source": source,
        "index": range(len(d1)),
        "d1": d1.numpy(),
        "d2": d2.numpy(),
        "ratio": ratio.numpy(),
        "nearest": idx.numpy(),
        "memorised": (ratio < MEMORISED_RATIO).numpy(),
    })
