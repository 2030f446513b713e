"""The sampler steps. A denoiser maps (x (N,C,H,W), t float) -> (x0_hat, eps_hat) in float32; a step maps the
state at t to the state at s < t (see ``Step``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..schedules import NoiseSchedule

DenoiseFn = Callable[[torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]


class NoiseSource:
    """Per-sample Gaussian noise: sample i draws from its own generator seeded by (seed, i), so
    results do not depend on batch size or on which other samples share the batch."""

    def __init__(
        self, seed: int, indices: Sequence[int], shape: tuple[int, ...], device: torch.device | str = "cpu"
    ) -> None:
        self.shape, self.device = tuple(shape), device
        self.generators = []
        for i in indices:
            state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(i)]).generate_state(2, dtype=np.uint32)
            self.generators.append(torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1])))

    def draw(self) -> torch.Tensor:
        """(N, *shape) standard normal float32, drawn on CPU (identical on every device), then moved."""
        out = torch.stack([torch.randn(self.shape, generator=g) for g in self.generators])
        return out.to(self.device)


def coef(schedule: NoiseSchedule, t: float) -> tuple[float, float]:
    """(alpha_t, sigma_t) of the path at time t, as floats."""
    alpha, sigma = schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    return alpha.item(), sigma.item()


@dataclass
class Step:
    """One step from t down to s: the state x at t, the denoiser's (x0_hat, eps_hat) there, the path's
    coefficients at both ends, and a ``memory`` dict a multistep sampler keeps across steps."""

    schedule: NoiseSchedule
    denoise: DenoiseFn
    x: torch.Tensor
    x0: torch.Tensor
    eps: torch.Tensor
    t: float
    s: float
    a_t: float
    s_t: float
    a_s: float
    s_s: float
    eta: float
    noise: NoiseSource | None
    memory: dict


def ddim_step(st: Step) -> torch.Tensor:
    return _ddim_step(st.x0, st.eps, st.a_t, st.s_t, st.a_s, st.s_s, st.eta, st.noise)


def euler_step(st: Step) -> torch.Tensor:
    return ode_step(st.schedule, st.x, st.x0, st.eps, st.t, st.s)


def heun_step(st: Step) -> torch.Tensor:
    x_e = ode_step(st.schedule, st.x, st.x0, st.eps, st.t, st.s)
    if st.s_s == 0:
        return x_e
    x0_b, eps_b = st.denoise(x_e, st.s)
    return heun_correct(st.schedule, st.x, st.x0, st.eps, x0_b, eps_b, st.t, st.s)


def dpmpp_2m_step(st: Step) -> torch.Tensor:
    x, st.memory["x0"], st.memory["h"] = _dpmpp_2m_step(st.x, st.x0, st.a_t, st.s_t, st.a_s, st.s_s,
                                                         st.memory.get("x0"), st.memory.get("h"))
    return x


def _ddim_step(x0, eps, a_t, s_t, a_s, s_s, eta, noise):
    """x_s = alpha_s x0 + sqrt(sigma_s^2 - c^2) eps + c z, c^2 = eta^2 * posterior variance."""
    if eta == 0 or s_s == 0:
        return a_s * x0 + s_s * eps
    ratio = a_t / a_s
    var = max(s_t**2 - ratio**2 * s_s**2, 0.0) * s_s**2 / s_t**2
    c = eta * var**0.5
    return a_s * x0 + max(s_s**2 - c**2, 0.0) ** 0.5 * eps + c * noise.draw()


def _frame(schedule: NoiseSchedule, t: float) -> tuple[float, float]:
    tt = torch.tensor(t, dtype=torch.float64)
    return schedule.ode_time(tt).item(), schedule.ode_scale(tt).item()


def _derivative(schedule: NoiseSchedule, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """dX/dtau in the ODE frame: eps for VP (X = x/alpha, tau = sigma/alpha); eps - x0 for the flow path."""
    return eps - x0 if schedule.is_flow else eps


def ode_step(schedule, x, x0, eps, t, s):
    tau_t, c_t = _frame(schedule, t)
    tau_s, c_s = _frame(schedule, s)
    if not schedule.is_flow and (c_t == 0 or c_s == 0):
        # a VP end at alpha = 0 (zero-terminal-SNR schedules): tau = sigma/alpha is infinite there. The
        # limit of the step is DDIM's written with x0 alone, x_s = alpha_s x0 + sigma_s (x - alpha_t x0) / sigma_t
        # (x0 alone, because at alpha = 0 a network's eps is x itself and would make inversion a no-op)
        a_t, s_t = coef(schedule, t)
        a_s, s_s = coef(schedule, s)
        return a_s * x0 + s_s * (x - a_t * x0) / s_t
    return c_s * (x / c_t + (tau_s - tau_t) * _derivative(schedule, x0, eps))


def heun_correct(schedule, x, x0_a, eps_a, x0_b, eps_b, t, s):
    tau_t, c_t = _frame(schedule, t)
    tau_s, c_s = _frame(schedule, s)
    if not schedule.is_flow and c_t == 0:
        # from alpha = 0 (zero terminal SNR) the EDM frame is singular: correct in the data frame
        # X = x / sigma, rho = alpha / sigma, where dX/drho = x0_hat (the frame of DPM-Solver++)
        a_s, s_s = coef(schedule, s)
        return s_s * (x / coef(schedule, t)[1] + (a_s / s_s) * 0.5 * (x0_a + x0_b))
    d = 0.5 * (_derivative(schedule, x0_a, eps_a) + _derivative(schedule, x0_b, eps_b))
    return c_s * (x / c_t + (tau_s - tau_t) * d)


def _dpmpp_2m_step(x, x0, a_t, s_t, a_s, s_s, prev_x0, prev_h):
    """DPM-Solver++(2M) (Lu et al. 2022): first order on the first step; the step to sigma = 0 returns x0_hat."""
    if s_s == 0:
        return x0, x0, None
    if a_t == 0:  # pure noise (flow path at t = 1): log-SNR is -inf, the first-order step is DDIM's
        return a_s * x0 + s_s * x, x0, None
    lam_t = np.log(a_t) - np.log(s_t)
    lam_s = np.log(a_s) - np.log(s_s)
    h = lam_s - lam_t
    if h == 0:  # a repeated time: nothing to integrate
        return x, prev_x0, prev_h
    if prev_x0 is None or prev_h is None:
        d = x0
    else:
        r = prev_h / h
        d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
    x_new = (s_s / s_t) * x - a_s * np.expm1(-h) * d
    return x_new, x0, h
