"""Noise schedules: the Gaussian path x_t = alpha(t) * x0 + sigma(t) * eps for t in [0, 1].

Every schedule is a continuous function of t. t = 0 is clean data (alpha = 1, sigma = 0) and t = 1 is
(nearly) pure noise. Discrete schedules (T = 1000 as in DDPM) are defined at the grid t_i = i / T and
interpolated linearly in log(alpha_bar) between grid points; training only uses grid points.

Kinds:
- ``linear``: DDPM betas linspace(1e-4, 0.02, T); continuous: beta(t) = 0.1 + 19.9 t (Song et al.).
- ``scaled_linear``: Stable Diffusion 1/2 betas linspace(sqrt(0.00085), sqrt(0.012), T)^2.
- ``cosine``: Nichol & Dhariwal, s = 0.008, betas clipped at 0.999 (discrete) or alpha_bar >= 1e-6.
- ``rectified_flow``: alpha = 1 - t, sigma = t (continuous only).

``zero_terminal_snr`` (VP kinds): rescale sqrt(alpha_bar) as in Lin et al. 2024 ("Common Diffusion
Noise Schedules and Sample Steps are Flawed") so that alpha(1) = 0 exactly: shifted so its last value
is 0 and scaled so its first trained value is unchanged. Without it, SD's ``scaled_linear`` keeps
alpha(1) = 0.068: at t = 1 the network is trained on inputs that still carry a trace of the image (its
mean brightness among others), but sampling starts from pure noise, which biases what it generates.
Needs a v, x0 or velocity network (eps cannot be converted to x0 where alpha = 0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

KINDS = ("linear", "scaled_linear", "cosine", "rectified_flow")
_COSINE_S = 0.008
_MIN_ALPHA_BAR = 1e-6


@dataclass(frozen=True)
class ScheduleConfig:
    """Which path to use. ``discrete_steps=None`` means continuous time."""

    kind: str = "linear"
    discrete_steps: int | None = 1000
    shift: float = 1.0  # rectified-flow sampling time shift (SD3); 1 = none
    flow_t_sampling: str = "logit_normal"  # rectified-flow training times: "logit_normal" | "uniform"
    zero_terminal_snr: bool = False  # VP kinds: rescale so that alpha(1) = 0 (Lin et al. 2024)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown schedule kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind == "rectified_flow" and self.discrete_steps is not None:
            raise ValueError("the rectified_flow schedule is continuous: set discrete_steps=None")
        if self.discrete_steps is not None and self.discrete_steps < 2:
            raise ValueError("discrete_steps must be at least 2")
        if self.shift <= 0:
            raise ValueError("shift must be positive")
        if self.zero_terminal_snr and self.kind == "rectified_flow":
            raise ValueError(
                "zero_terminal_snr applies to VP schedules; the rectified-flow path already ends at pure noise"
            )

    def to_dict(self) -> dict:
        out = asdict(self)
        if not self.zero_terminal_snr:  # configs written before the option existed stay byte-identical
            del out["zero_terminal_snr"]
        return out


def _discrete_log_alpha_bar(kind: str, steps: int) -> torch.Tensor:
    """log(alpha_bar) at t_i = i / T for i = 0..T (float64, first entry 0)."""
    if kind == "linear":
        betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    elif kind == "scaled_linear":
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, steps, dtype=torch.float64) ** 2
    elif kind == "cosine":
        i = torch.arange(steps + 1, dtype=torch.float64)
        f = torch.cos((i / steps + _COSINE_S) / (1 + _COSINE_S) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    else:
        raise ValueError(f"no discrete form for schedule {kind!r}")
    log_ab = torch.cumsum(torch.log1p(-betas), 0)
    return torch.cat([torch.zeros(1, dtype=torch.float64), log_ab])


def _zero_terminal(log_ab: torch.Tensor, anchor: torch.Tensor | float, last: torch.Tensor) -> torch.Tensor:
    """Lin et al.'s rescale in log(alpha_bar): sqrt(ab) -> (sqrt(ab) - last) * anchor / (anchor - last),
    where ``anchor``/``last`` are sqrt(alpha_bar) at the first trained time and at t = 1 (-inf at t = 1)."""
    root = torch.exp(0.5 * log_ab)
    scaled = ((root - last) * anchor / (anchor - last)).clamp(min=0.0)
    return 2.0 * torch.log(scaled)


class NoiseSchedule:
    """alpha(t), sigma(t), log-SNR and the time grids used for training and sampling.

    All returned tensors are float64 with the shape of ``t``; callers cast where they need to.
    """

    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config
        self.kind = config.kind
        self.discrete = config.discrete_steps is not None
        self._grid = _discrete_log_alpha_bar(config.kind, config.discrete_steps) if self.discrete else None
        self._zero_terminal = config.zero_terminal_snr
        if self._zero_terminal and self.discrete:  # rescale the grid once; interpolation then reads it
            grid = self._grid
            self._grid = torch.cat(
                [grid[:1], _zero_terminal(grid[1:], torch.exp(0.5 * grid[1]), torch.exp(0.5 * grid[-1]))]
            )
        elif self._zero_terminal:  # continuous: the rescale is applied per call, anchored at alpha(0) = 1
            self._zt_last = torch.exp(0.5 * self._raw_log_alpha_bar(torch.tensor(1.0, dtype=torch.float64)))

    @property
    def is_flow(self) -> bool:
        return self.kind == "rectified_flow"

    @property
    def t_min_train(self) -> float:
        """Smallest time the network is trained on (it is also clamped to this when evaluated)."""
        return 1.0 / self.config.discrete_steps if self.discrete else 1e-3

    # ------------------------------------------------------------------ path coefficients
    def log_alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """log(alpha^2) for VP kinds. t: any shape, values in [0, 1]; -inf at t = 1 with zero_terminal_snr."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(0.0, 1.0)
        if self.discrete:
            pos = t * self.config.discrete_steps
            lo = pos.floor().clamp(max=self.config.discrete_steps - 1).long()
            frac = pos - lo
            grid = self._grid.to(t.device)
            lo_v, hi_v = grid[lo], grid[lo + 1]
            if not self._zero_terminal:
                return lo_v * (1 - frac) + hi_v * frac
            # the last interval ends at alpha = 0: interpolate alpha itself there (log-linear would be -inf)
            root = torch.exp(0.5 * lo_v) * (1 - frac) + torch.exp(0.5 * hi_v) * frac
            log_lin = lo_v * (1 - frac) + torch.nan_to_num(hi_v, neginf=0.0) * frac
            return torch.where(torch.isinf(hi_v), 2.0 * torch.log(root), log_lin)
        raw = self._raw_log_alpha_bar(t)
        if self._zero_terminal:
            return _zero_terminal(raw, 1.0, self._zt_last)
        return raw

    def _raw_log_alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """The continuous VP kinds before any zero-terminal rescale."""
        if self.kind == "linear":
            return -(0.1 * t + 0.5 * 19.9 * t**2)
        if self.kind == "scaled_linear":
            # continuous limit of the SD betas: beta(t) = T*(sqrt(b0) + t*(sqrt(b1)-sqrt(b0)))^2 with T=1000
            a, b = 0.00085**0.5, 0.012**0.5
            return -1000.0 * (a**2 * t + a * (b - a) * t**2 + (b - a) ** 2 * t**3 / 3)
        if self.kind == "cosine":
            f = torch.cos((t + _COSINE_S) / (1 + _COSINE_S) * math.pi / 2) ** 2
            f0 = math.cos(_COSINE_S / (1 + _COSINE_S) * math.pi / 2) ** 2
            return torch.log((f / f0).clamp(min=_MIN_ALPHA_BAR))
        raise ValueError(f"log_alpha_bar is not defined for {self.kind!r}")

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha(t), sigma(t)), float64, broadcast like t."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(0.0, 1.0)
        if self.is_flow:
            return 1.0 - t, t
        log_ab = self.log_alpha_bar(t)
        alpha = torch.exp(0.5 * log_ab)
        sigma = torch.sqrt((-torch.expm1(log_ab)).clamp(min=0.0))
        return alpha, sigma

    def d_alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d alpha / dt, d sigma / dt). Exact for the flow path, central differences otherwise."""
        t = torch.as_tensor(t, dtype=torch.float64)
        if self.is_flow:
            return -torch.ones_like(t), torch.ones_like(t)
        h = 1e-5
        lo, hi = (t - h).clamp(0.0, 1.0), (t + h).clamp(0.0, 1.0)
        a_lo, s_lo = self.alpha_sigma(lo)
        a_hi, s_hi = self.alpha_sigma(hi)
        return (a_hi - a_lo) / (hi - lo), (s_hi - s_lo) / (hi - lo)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """lambda(t) = log(alpha / sigma), decreasing in t; +inf at t = 0."""
        alpha, sigma = self.alpha_sigma(t)
        return torch.log(alpha) - torch.log(sigma)

    def t_from_log_snr(self, lam: torch.Tensor, iters: int = 80) -> torch.Tensor:
        """Inverse of ``log_snr`` by bisection on [0, 1] (float64, same shape as lam)."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        lo, hi = torch.zeros_like(lam), torch.ones_like(lam)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            above = self.log_snr(mid) > lam  # still too little noise: move right
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return 0.5 * (lo + hi)

    # ------------------------------------------------------------------ time grids
    def sample_training_times(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n training times (float32). Discrete: i/T with i uniform in 1..T. Flow: logit-normal or uniform."""
        if self.discrete:
            steps = self.config.discrete_steps
            return torch.randint(1, steps + 1, (n,), generator=generator).float() / steps
        if self.is_flow and self.config.flow_t_sampling == "logit_normal":
            return torch.sigmoid(torch.randn(n, generator=generator))
        return self.t_min_train + (1 - self.t_min_train) * torch.rand(n, generator=generator)

    def sampling_times(self, steps: int, spacing: str = "uniform", rho: float = 7.0) -> torch.Tensor:
        """steps + 1 decreasing times from the noisiest to 0 (float64).

        spacing ``uniform``: evenly spaced in t ("trailing" spacing for discrete schedules: snapped to
        the grid, starting at t = 1); rectified flow applies ``shift``.
        spacing ``karras``: evenly spaced in (sigma/alpha)^(1/rho) (EDM, rho = 7) between the largest
        and smallest trained noise levels, then 0.
        """
        if steps < 1:
            raise ValueError("steps must be at least 1")
        if self.discrete and steps > self.config.discrete_steps:
            raise ValueError(f"at most {self.config.discrete_steps} steps on this discrete schedule, got {steps}")
        if spacing == "uniform":
            t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
            if self.discrete:
                n = self.config.discrete_steps
                t = torch.round(t * n) / n
            if self.is_flow and self.config.shift != 1.0:
                s = self.config.shift
                t = s * t / (1 + (s - 1) * t)
            return t
        if spacing == "karras":
            # the flow path and zero-terminal VP schedules have sigma/alpha = inf at t = 1: start one step below
            t_hi = 1.0 - (self.t_min_train if self.is_flow or self._zero_terminal else 0.0)
            a_hi, s_hi = self.alpha_sigma(torch.tensor(t_hi, dtype=torch.float64))
            a_lo, s_lo = self.alpha_sigma(torch.tensor(self.t_min_train, dtype=torch.float64))
            r_max, r_min = (s_hi / a_hi).item(), (s_lo / a_lo).item()
            if steps == 1:
                ratios = torch.tensor([r_max], dtype=torch.float64)
            else:
                ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
                ratios = (r_max ** (1 / rho) + ramp * (r_min ** (1 / rho) - r_max ** (1 / rho))) ** rho
            t = self.t_from_log_snr(-torch.log(ratios))
            return torch.cat([t, torch.zeros(1, dtype=torch.float64)])
        raise ValueError(f"unknown spacing {spacing!r}; choose 'uniform' or 'karras'")

    # ------------------------------------------------------------------ ODE frame
    def ode_time(self, t: torch.Tensor) -> torch.Tensor:
        """The variable the ODE samplers step in: t for the flow path, sigma/alpha (EDM) for VP."""
        if self.is_flow:
            return torch.as_tensor(t, dtype=torch.float64)
        alpha, sigma = self.alpha_sigma(t)
        return sigma / alpha

    def ode_scale(self, t: torch.Tensor) -> torch.Tensor:
        """The factor c(t) with ODE state X = x / c(t): 1 for the flow path, alpha for VP."""
        if self.is_flow:
            return torch.ones_like(torch.as_tensor(t, dtype=torch.float64))
        return self.alpha_sigma(t)[0]
