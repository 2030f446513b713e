"""The sampler registry: one entry per sampler (its step, whether it solves the probability-flow ODE, whether
``invert`` runs it backwards, its network evaluations per step), so a new sampler is one entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .core import Step, ddim_step, dpmpp_2m_step, euler_step, heun_step


@dataclass(frozen=True)
class SamplerSpec:
    """``step``: Step -> the state at the step's lower time. ``ode``: deterministic (an ODE solver at eta 0).
    ``invertible``: ``invert`` supports it. ``evals_per_step``: network evaluations per step (Heun: 2, but 1
    on a step to sigma = 0). ``eta``: a fixed DDIM eta (DDPM's ancestral sampler is DDIM at eta = 1)."""

    name: str
    step: Callable[[Step], torch.Tensor]
    ode: bool
    invertible: bool
    evals_per_step: int = 1
    eta: float | None = None

    def stochastic(self, eta: float) -> bool:
        """Whether the steps draw fresh noise at this eta."""
        return self.step is ddim_step and eta > 0

    def nfe(self, steps: int, to_zero: bool = True) -> int:
        """Network evaluations of ``steps`` steps (per image, one condition); ``to_zero``: the last step ends
        at sigma = 0, where Heun skips its correction."""
        return self.evals_per_step * steps - (self.evals_per_step - 1 if to_zero else 0)


REGISTRY: dict[str, SamplerSpec] = {
    spec.name: spec
    for spec in (
        SamplerSpec("ddpm", ddim_step, ode=False, invertible=False, eta=1.0),
        SamplerSpec("ddim", ddim_step, ode=True, invertible=True),
        SamplerSpec("dpm++2m", dpmpp_2m_step, ode=True, invertible=False),
        SamplerSpec("euler", euler_step, ode=True, invertible=True),
        SamplerSpec("heun", heun_step, ode=True, invertible=True, evals_per_step=2),
    )
}


def get_sampler(name: str) -> SamplerSpec:
    """The registered sampler ``name``; a ValueError naming the choices otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def invertible_samplers() -> tuple[str, ...]:
    return tuple(n for n, s in REGISTRY.items() if s.invertible)


# diffusers scheduler classes (a pipeline's own scheduler, kept when no sampler is asked for) that evaluate the
# network as the registered sampler of the same method does
DIFFUSERS_SCHEDULERS = {"DDPMScheduler": "ddpm", "DDIMScheduler": "ddim", "DPMSolverMultistepScheduler": "dpm++2m",
                        "EulerDiscreteScheduler": "euler", "FlowMatchEulerDiscreteScheduler": "euler",
                        "HeunDiscreteScheduler": "heun"}


def nfe(sampler: str, steps: int, guided: bool = False, to_zero: bool = True) -> int:
    """Network evaluations per image: the sampler's per-step count, doubled by classifier-free guidance.
    ``sampler`` is a registered name or one of DIFFUSERS_SCHEDULERS."""
    return get_sampler(DIFFUSERS_SCHEDULERS.get(sampler, sampler)).nfe(steps, to_zero) * (2 if guided else 1)
