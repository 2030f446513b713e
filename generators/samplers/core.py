"""The sampling loops. A denoiser maps (x (N,C,H,W), t float) -> (x0_hat, eps_hat) in float32."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


def _coef(schedule: NoiseSchedule, t: float) -> tuple[float, float]:
    alpha, sigma = schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    return alpha.item(), sigma.item()


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
    if sampler == "ddpm":
        sampler, eta = "ddim", 1.0
    if sampler == "ddim" and eta > 0 and noise is None:
        raise ValueError("a stochastic sampler needs a NoiseSource")
    ts = [float(v) for v in times]
    prev_x0: torch.Tensor | None = None
    prev_h: float | None = None
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        x0, eps = denoise(x, t)
        a_t, s_t = _coef(schedule, t)
        a_s, s_s = _coef(schedule, s)
        if sampler == "ddim":
            x = _ddim_step(x0, eps, a_t, s_t, a_s, s_s, eta, noise)
        elif sampler == "euler":
            x = _ode_step(schedule, x, x0, eps, t, s)
        elif sampler == "heun":
            x_e = _ode_step(schedule, x, x0, eps, t, s)
            if s_s > 0:
                x0_b, eps_b = denoise(x_e, s)
                x = _heun_correct(schedule, x, x0, eps, x0_b, eps_b, t, s)
            else:
                x = x_e
        elif sampler == "dpm++2m":
            x, prev_x0, prev_h = _dpmpp_2m_step(x, x0, a_t, s_t, a_s, s_s, prev_x0, prev_h)
        else:
            raise ValueError(f"unknown sampler {sampler!r}")
        if progress is not None:
            progress(1)
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


def _ode_step(schedule, x, x0, eps, t, s):
    tau_t, c_t = _frame(schedule, t)
    tau_s, c_s = _frame(schedule, s)
    if not schedule.is_flow and (c_t == 0 or c_s == 0):
        # a VP end at alpha = 0 (zero-terminal-SNR schedules): tau = sigma/alpha is infinite there. The
        # limit of the step is DDIM's written with x0 alone, x_s = alpha_s x0 + sigma_s (x - alpha_t x0) / sigma_t
        # (x0 alone, because at alpha = 0 a network's eps is x itself and would make inversion a no-op)
        a_t, s_t = _coef(schedule, t)
        a_s, s_s = _coef(schedule, s)
        return a_s * x0 + s_s * (x - a_t * x0) / s_t
    return c_s * (x / c_t + (tau_s - tau_t) * _derivative(schedule, x0, eps))


def _heun_correct(schedule, x, x0_a, eps_a, x0_b, eps_b, t, s):
    tau_t, c_t = _frame(schedule, t)
    tau_s, c_s = _frame(schedule, s)
    if not schedule.is_flow and c_t == 0:
        # from alpha = 0 (zero terminal SNR) the EDM frame is singular: correct in the data frame
        # X = x / sigma, rho = alpha / sigma, where dX/drho = x0_hat (the frame of DPM-Solver++)
        a_s, s_s = _coef(schedule, s)
        return s_s * (x / _coef(schedule, t)[1] + (a_s / s_s) * 0.5 * (x0_a + x0_b))
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
    if sampler not in ("ddim", "euler", "heun"):
        raise ValueError(f"invert supports ddim, euler and heun, not {sampler!r}")
    if fixed_point < 0:
        raise ValueError("fixed_point must be >= 0")
    ts = [float(v) for v in torch.flip(times, [0])]
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        x0, eps = denoise(x, t)
        x_e = _ode_step(schedule, x, x0, eps, t, s)
        if sampler == "heun":
            if schedule.is_flow or _coef(schedule, s)[0] > 0:  # no correction into alpha = 0 (VP, zero terminal SNR)
                x0_b, eps_b = denoise(x_e, s)
                x_e = _heun_correct(schedule, x, x0, eps, x0_b, eps_b, t, s)
        else:
            for _ in range(fixed_point):
                x0_u, eps_u = denoise(x_e, s)
                x_e = _ode_step(schedule, x, x0_u, eps_u, t, s)
        x = x_e
        if progress is not None:
            progress(1)
    return x
