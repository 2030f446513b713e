"""Deterministic sampling chains of diffusers schedulers, run forwards (sampling, SDEdit) and backwards (inversion).

A chain is the grid a deterministic scheduler walks: model timesteps t_0 > ... > t_{N-1}, and per step the
noise level it starts from and the one it ends at. VP chains (DDIM at eta 0, on the pipeline's own alphas_cumprod
and timestep spacing): step k starts at a = alpha_bar(t_k) and ends at a' = alpha_bar(t_k - T / N) (the final
alpha_bar below 0), exactly as DDIMScheduler.step does whatever the spacing, with
x_{k+1} = sqrt(a') x0_hat + sqrt(1 - a') eps_hat, both estimates taken at (x_k, t_k).
Flow chains (FlowMatchEulerDiscreteScheduler, x_sigma = (1 - sigma) x0 + sigma eps): step k goes from sigma_k to
sigma_{k+1} (the last to 0): x_{k+1} = x_k + (sigma_{k+1} - sigma_k) v(x_k, t_k).

Inversion solves step k for its input: the first estimate evaluates the model at x_{k+1} (plain DDIM / Euler
inversion, as Tree-Ring does); each of ``fixed_point`` further iterations re-evaluates it at the current solution
(the fixed point of x_k = step^-1(x_{k+1}; model(x_k)), which makes inversion exact as it converges).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, timestep) -> model output, float32


@dataclass
class Chain:
    """``kind`` "vp" or "flow"; ``timesteps`` (N,) model timesteps; ``start`` and ``end`` (N,) float64 noise
    levels each step starts from and ends at: alpha_bar (vp) or sigma (flow); ``prediction`` the model output:
    epsilon, v_prediction, sample, or flow."""

    kind: str
    timesteps: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    prediction: str

    def __len__(self) -> int:
        return len(self.timesteps)

    def tail(self, first: int) -> Chain:
        """The chain from step ``first`` on (SDEdit starts part-way)."""
        return Chain(self.kind, self.timesteps[first:], self.start[first:], self.end[first:], self.prediction)

    def eps_x0(self, out: torch.Tensor, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(eps_hat, x0_hat) of a VP model output at x, at step k's starting level."""
        a = float(self.start[k])
        sa, s1 = a**0.5, (1 - a) ** 0.5
        if self.prediction == "epsilon":
            eps = out
        elif self.prediction == "v_prediction":
            eps = sa * out + s1 * x
        elif self.prediction == "sample":
            eps = (x - sa * out) / max(s1, 1e-12)
        else:
            raise ValueError(f"prediction type {self.prediction!r} is not supported")
        return eps, (x - s1 * eps) / sa

    def noise_to(self, x0: torch.Tensor, eps: torch.Tensor, k: int) -> torch.Tensor:
        """x at step k's starting level of the forward process from data x0 and noise eps."""
        lev = float(self.start[k])
        if self.kind == "flow":
            return (1 - lev) * x0 + lev * eps
        return lev**0.5 * x0 + (1 - lev) ** 0.5 * eps

    def _step(self, model: ModelFn, x_eval: torch.Tensor, x_from: torch.Tensor, k: int, forward: bool):
        out = model(x_eval, self.timesteps[k])
        if self.kind == "flow":
            d = float(self.end[k] - self.start[k]) * out
            return x_from + d if forward else x_from - d
        a_to = float(self.end[k] if forward else self.start[k])
        a_from = float(self.start[k] if forward else self.end[k])
        eps, _ = self.eps_x0(out, x_eval, k)  # the model is evaluated at t_k in both directions
        x0 = (x_from - (1 - a_from) ** 0.5 * eps) / a_from**0.5
        return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * eps

    def run(self, model: ModelFn, x: torch.Tensor, on_step: Callable[[], None] | None = None) -> torch.Tensor:
        """Sample: x at the first step's start -> x at the last step's end."""
        for k in range(len(self)):
            x = self._step(model, x, x, k, forward=True)
            if on_step:
                on_step()
        return x

    def invert(self, model: ModelFn, x: torch.Tensor, fixed_point: int = 0,
               on_step: Callable[[], None] | None = None) -> torch.Tensor:
        """Invert ``run``: x at the last step's end -> x at the first step's start."""
        for k in reversed(range(len(self))):
            y = self._step(model, x, x, k, forward=False)
            for _ in range(fixed_point):
                y = self._step(model, y, x, k, forward=False)
            x = y
            if on_step:
                on_step()
        return x


def vp_chain(ddim_scheduler, steps: int) -> Chain:
    """The DDIM (eta 0) chain of ``steps`` steps of a DDIMScheduler (its spacing, offset and final alpha)."""
    s = ddim_scheduler
    s.set_timesteps(steps)
    ts = s.timesteps.clone().long()
    ratio = s.config.num_train_timesteps // s.num_inference_steps
    ac = s.alphas_cumprod.double()
    final = float(s.final_alpha_cumprod)
    start = [float(ac[t]) for t in ts]
    end = [float(ac[int(t) - ratio]) if int(t) - ratio >= 0 else final for t in ts]  # DDIM's previous timestep
    return Chain("vp", ts, torch.tensor(start, dtype=torch.float64), torch.tensor(end, dtype=torch.float64),
                 s.config.prediction_type)


def flow_chain(flow_scheduler, steps: int, mu: float | None = None) -> Chain:
    """The Euler chain of a FlowMatchEulerDiscreteScheduler (its shift, and ``mu`` where it shifts dynamically)."""
    s = flow_scheduler
    if s.config.get("use_dynamic_shifting", False):
        s.set_timesteps(steps, mu=mu)
    else:
        s.set_timesteps(steps)
    sigmas = s.sigmas.double().clone()
    return Chain("flow", s.timesteps.clone(), sigmas[:-1], sigmas[1:], "flow")
