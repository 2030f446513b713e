"""The sampling loops: integrate from noise down to data with a registered sampler, or back up (invert)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..schedules import NoiseSchedule
from .core import DenoiseFn, NoiseSource, Step, coef, heun_correct, ode_step
from .registry import get_sampler, invertible_samplers


def run_sampler(
    denoise: DenoiseFn,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    times: torch.Tensor,
    sampler: str,
    noise: NoiseSource | None = None,
    eta: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Integrate from ``x`` at times[0] down to times[-1] (normally 0). Returns the final x (x's dtype).

    times: decreasing float64 tensor of steps + 1 values. ``noise`` is required for stochastic steps
    (ddpm, ddim with eta > 0). Network evaluations: one per step, two for heun (one on its last step).
    """
    spec = get_sampler(sampler)
    eta = spec.eta if spec.eta is not None else eta
    if spec.stochastic(eta) and noise is None:
        raise ValueError("a stochastic sampler needs a NoiseSource")
    ts = [float(v) for v in times]
    memory: dict = {}
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        x0, eps = denoise(x, t)
        step = Step(schedule, denoise, x, x0, eps, t, s, *coef(schedule, t), *coef(schedule, s), eta, noise, memory)
        x = spec.step(step)
        if progress is not None:
            progress(1)
    return x


def invert(
    denoise: DenoiseFn,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    times: torch.Tensor,
    sampler: str = "ddim",
    progress: Callable[[int], None] | None = None,
    fixed_point: int = 0,
) -> torch.Tensor:
    """Run a deterministic sampler backwards: data at times[-1] (normally 0) up to noise at times[0].

    Uses the same grid as sampling, traversed in increasing time. ddim/euler evaluate the model at
    the lower end of each step (the standard DDIM inversion approximation); heun corrects with a
    second evaluation at the upper end. ``fixed_point`` > 0 then refines each ddim/euler step by that
    many fixed-point iterations of x_t = step(x_s, model(x_t)), which solves the sampler's own step
    for its input, so that sampling the result reproduces x much more closely (one extra network
    evaluation per iteration).
    """
    if not get_sampler(sampler).invertible:
        raise ValueError(f"invert supports {', '.join(invertible_samplers())}, not {sampler!r}")
    if fixed_point < 0:
        raise ValueError("fixed_point must be >= 0")
    ts = [float(v) for v in torch.flip(times, [0])]
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        x0, eps = denoise(x, t)
        x_e = ode_step(schedule, x, x0, eps, t, s)
        if sampler == "heun":
            if schedule.is_flow or coef(schedule, s)[0] > 0:  # no correction into alpha = 0 (VP, zero terminal SNR)
                x0_b, eps_b = denoise(x_e, s)
                x_e = heun_correct(schedule, x, x0, eps, x0_b, eps_b, t, s)
        else:
            for _ in range(fixed_point):
                x0_u, eps_u = denoise(x_e, s)
                x_e = ode_step(schedule, x, x0_u, eps_u, t, s)
        x = x_e
        if progress is not None:
            progress(1)
    return x
