"""What the analyses evaluate: a denoiser at (x, t) returning a float64 Prediction.

- ``GeneratorModel`` wraps any diffeval Generator (its ``denoise``: null condition, guidance 1).
- ``ExactModel`` plugs a ground truth (a Gaussian mixture or the empirical optimal denoiser) in as if
  it were a network: it emits the raw output a perfect network of the given parameterization would
  emit, and that output goes through the same exact conversion (``to_prediction``) as a real model's.
  Its error against the truth is the check that the whole chain is exact (zero up to float64 rounding).
"""

from __future__ import annotations

from typing import Protocol

import torch

from diffeval.generators import Generator
from diffeval.generators.parameterization import Prediction, to_prediction, training_target
from diffeval.generators.schedules import NoiseSchedule


class Truth(Protocol):
    def posterior(self, x: torch.Tensor, alpha, sigma) -> Prediction: ...


class Model(Protocol):
    name: str
    parameterization: str
    schedule: NoiseSchedule

    def predict(self, x: torch.Tensor, t: float) -> Prediction: ...


def _to64(p: Prediction, shape: torch.Size) -> Prediction:
    """The prediction in float64 on CPU, images laid out in ``shape`` (the caller's layout)."""
    f = lambda v: torch.as_tensor(v).detach().to("cpu", torch.float64)  # noqa: E731
    g = lambda v: f(v).reshape(shape)  # noqa: E731
    return Prediction(x=g(p.x), x0=g(p.x0), eps=g(p.eps), alpha=f(p.alpha), sigma=f(p.sigma))


class GeneratorModel:
    """A Generator seen as a denoiser: ``predict(x (N, *noise_shape) model space, t)`` -> float64 Prediction
    (pixel model space, or the latents of a latent model: ``generator.info.space``).

    Conditional generators are evaluated with the null condition at guidance 1, which estimates the
    unconditional score of the training data."""

    def __init__(self, generator: Generator, name: str | None = None) -> None:
        if not hasattr(generator, "denoise"):
            raise ValueError(f"{generator.info.name}: the score-error audit needs Generator.denoise")
        self.generator = generator
        self.name = name or generator.info.name
        self.parameterization = generator.info.parameterization
        self.schedule = generator.schedule
        self.shape = generator.noise_shape  # where it denoises: pixels, or a latent model's latents

    def predict(self, x: torch.Tensor, t: float) -> Prediction:
        shape = x.shape
        x = x.reshape(x.shape[0], *self.shape)
        return _to64(self.generator.denoise(x.float(), float(t), guidance=1.0), shape)


class ExactModel:
    """The ground truth emitted in ``parameterization`` and converted back exactly, in float64."""

    def __init__(self, truth: Truth, schedule: NoiseSchedule, parameterization: str, name: str | None = None) -> None:
        self.truth, self.schedule, self.parameterization = truth, schedule, parameterization
        self.name = name or f"exact-{parameterization}"

    def predict(self, x: torch.Tensor, t: float) -> Prediction:
        x = x.to(torch.float64)
        tt = torch.full((x.shape[0],), float(t), dtype=torch.float64)
        alpha, sigma = self.schedule.alpha_sigma(tt)
        d_alpha, d_sigma = self.schedule.d_alpha_sigma(tt)
        p = self.truth.posterior(x, alpha, sigma)
        raw = training_target(self.parameterization, p.x0, p.eps, alpha, sigma, d_alpha, d_sigma)
        return to_prediction(raw, x, alpha, sigma, self.parameterization, d_alpha, d_sigma)


def denoise_fn(model: Model):
    """The (x, t) -> (x0_hat, eps_hat) function the samplers integrate, in x's dtype."""

    def denoise(x: torch.Tensor, t: float):
        p = model.predict(x, t)
        return p.x0.to(x.dtype), p.eps.to(x.dtype)

    return denoise
