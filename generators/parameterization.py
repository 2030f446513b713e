"""Exact conversions between what a network predicts and the clean-data / noise estimates.

Path: x_t = alpha * x0 + sigma * eps. Supported network outputs:

- ``eps``: the noise eps.
- ``x0``: the clean data x0.
- ``v``: v = alpha * eps - sigma * x0 (Salimans & Ho; for VP paths alpha^2 + sigma^2 = 1).
- ``velocity``: the path velocity dx_t/dt = alpha' * x0 + sigma' * eps (for rectified flow
  alpha = 1 - t, sigma = t, so velocity = eps - x0).

The score of the noised marginal is s = -E[eps | x_t] / sigma.
Every function broadcasts alpha/sigma (shape (N,) or scalars) over image tensors (N, C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PARAMETERIZATIONS = ("eps", "x0", "v", "velocity")


def _b(coef: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-sample coefficient (N,) or scalar against ``like`` (N, ...), in like's dtype."""
    coef = torch.as_tensor(coef, dtype=like.dtype, device=like.device)
    if coef.ndim == 0:
        return coef
    return coef.reshape(coef.shape + (1,) * (like.ndim - coef.ndim))


@dataclass
class Prediction:
    """Estimates of (x0, eps) at a point x_t of the path, with the other quantities derived exactly."""

    x: torch.Tensor
    x0: torch.Tensor
    eps: torch.Tensor
    alpha: torch.Tensor
    sigma: torch.Tensor

    @property
    def score(self) -> torch.Tensor:
        """grad_x log p_t(x) = -eps / sigma (undefined at sigma = 0)."""
        return -self.eps / _b(self.sigma, self.eps)

    @property
    def v(self) -> torch.Tensor:
        return _b(self.alpha, self.eps) * self.eps - _b(self.sigma, self.x0) * self.x0

    def velocity(self, d_alpha: torch.Tensor, d_sigma: torch.Tensor) -> torch.Tensor:
        """dx/dt = alpha' x0 + sigma' eps, with the path derivatives given."""
        return _b(d_alpha, self.x0) * self.x0 + _b(d_sigma, self.eps) * self.eps


def to_prediction(
    output: torch.Tensor,
    x: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
    parameterization: str,
    d_alpha: torch.Tensor | None = None,
    d_sigma: torch.Tensor | None = None,
) -> Prediction:
    """Convert a network output in ``parameterization`` to (x0, eps) at x = alpha x0 + sigma eps.

    ``d_alpha``/``d_sigma`` (path derivatives in t) are needed for ``velocity`` only.
    """
    a, s = _b(alpha, x), _b(sigma, x)
    if parameterization == "eps":
        eps = output
        x0 = (x - s * eps) / a
    elif parameterization == "x0":
        x0 = output
        eps = (x - a * x0) / s
    elif parameterization == "v":
        norm = a * a + s * s
        x0 = (a * x - s * output) / norm
        eps = (s * x + a * output) / norm
    elif parameterization == "velocity":
        if d_alpha is None or d_sigma is None:
            raise ValueError("the velocity parameterization needs the path derivatives d_alpha, d_sigma")
        da, ds = _b(d_alpha, x), _b(d_sigma, x)
        det = a * ds - s * da
        x0 = (ds * x - s * output) / det
        eps = (a * output - da * x) / det
    else:
        raise ValueError(f"unknown parameterization {parameterization!r}; choose one of {PARAMETERIZATIONS}")
    return Prediction(x=x, x0=x0, eps=eps, alpha=alpha, sigma=sigma)


def training_target(
    parameterization: str,
    x0: torch.Tensor,
    eps: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
    d_alpha: torch.Tensor | None = None,
    d_sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """What a network in ``parameterization`` should output for the pair (x0, eps)."""
    if parameterization == "eps":
        return eps
    if parameterization == "x0":
        return x0
    if parameterization == "v":
        return _b(alpha, eps) * eps - _b(sigma, x0) * x0
    if parameterization == "velocity":
        if d_alpha is None or d_sigma is None:
            raise ValueError("the velocity parameterization needs the path derivatives d_alpha, d_sigma")
        return _b(d_alpha, x0) * x0 + _b(d_sigma, eps) * eps
    raise ValueError(f"unknown parameterization {parameterization!r}; choose one of {PARAMETERIZATIONS}")


def from_score(score: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> Prediction:
    """(x0, eps) from a score: eps = -sigma s, x0 = (x + sigma^2 s) / alpha."""
    s = _b(sigma, x)
    eps = -s * score
    x0 = (x + s * s * score) / _b(alpha, x)
    return Prediction(x=x, x0=x0, eps=eps, alpha=alpha, sigma=sigma)
