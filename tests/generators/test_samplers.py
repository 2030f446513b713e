"""Samplers against the analytic case: Gaussian data x0 ~ N(m, s^2), independent dimensions.

x_t = a x0 + b eps is Gaussian, so the exact denoiser is known in closed form:
    E[x0 | x_t] = m + a s^2 / (a^2 s^2 + b^2) (x_t - a m),   eps_hat = (x_t - a x0_hat) / b.
The sampling starts from the exact marginal at t = 1, x_T = a(1) m + sqrt(a(1)^2 s^2 + b(1)^2) z, so the
prior mismatch of a schedule whose alpha(1) > 0 does not confound the tests. The probability-flow ODE then
maps z exactly to m + s z (the monotone transport between two Gaussians), which the deterministic samplers
approach as the step count grows.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from diffeval.generators.samplers import INVERTIBLE_SAMPLERS, ODE_SAMPLERS, SAMPLERS, NoiseSource, invert, run_sampler
from diffeval.generators.schedules import NoiseSchedule, ScheduleConfig

M, S = 0.3, 0.5
SCHEDULES = {
    "linear-discrete": ScheduleConfig("linear", 1000),
    "cosine-continuous": ScheduleConfig("cosine", None),
    "rectified_flow": ScheduleConfig("rectified_flow", None),
    # Lin et al.'s zero terminal SNR: alpha(1) = 0, so the first step starts from pure noise (log-SNR = -inf)
    "scaled_linear-zero-terminal": ScheduleConfig("scaled_linear", 1000, zero_terminal_snr=True),
}
ALL_SCHEDULES = {
    f"{kind}-{'discrete' if steps else 'continuous'}": ScheduleConfig(kind, steps)
    for kind in ("linear", "scaled_linear", "cosine")
    for steps in (1000, None)
} | {
    "rectified_flow": ScheduleConfig("rectified_flow", None),
    "rectified_flow-shift3": ScheduleConfig("rectified_flow", None, shift=3.0),
}


def coef(schedule: NoiseSchedule, t: float) -> tuple[float, float]:
    # float64 on purpose: torch.tensor(t) would round t to float32, which perturbs alpha/sigma by ~1e-8
    a, b = schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    return a.item(), b.item()


def exact_denoiser(schedule: NoiseSchedule, calls: list | None = None):
    """(x, t float) -> (x0_hat, eps_hat), exact for N(M, S^2) data; t clamped like Generator does."""

    def denoise(x, t):
        assert isinstance(t, float)
        if calls is not None:
            calls.append(t)
        a, b = coef(schedule, max(t, schedule.t_min_train))
        x0 = M + a * S**2 / (a**2 * S**2 + b**2) * (x - a * M)
        return x0, (x - a * x0) / b

    return denoise


def start(schedule: NoiseSchedule, n: int = 20000, seed: int = 0, shape=(1, 1, 1)):
    """(x_T, z): the exact marginal at t = 1 from z ~ N(0, 1), float64."""
    a, b = coef(schedule, 1.0)
    z = torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a * M + math.sqrt(a**2 * S**2 + b**2) * z, z


# ---------------------------------------------------------------------------------- distribution
# Measured at 100 steps, n = 20,000 (seed 0). The seed-0 z has mean -0.0178 and std 1.0103, so the exact
# transport m + s z has mean error -0.0089 and std error +0.0052: every sampler's mean error is -0.0084..-0.0089.
# std error: ddim = euler -0.0095 (linear), -0.0028 (cosine), -0.0023 (flow) (first order; -0.024 on
# linear at 50 steps); heun +0.0036 / +0.0049 / +0.0051; dpm++2m +0.0060 / +0.0054 / +0.0057.
# Max |x - (m + s z)| (transport error): ddim = euler 6.2e-2 / 3.4e-2 / 3.2e-2; heun 6.6e-3 / 1.2e-3 / 3.4e-4;
# dpm++2m 3.4e-3 / 9.0e-4 / 2.4e-3. (On linear-discrete, heun's and dpm++2m's last step to t = 0 returns
# x0_hat at t = 1/steps, which is O(sigma^2) = O(1/steps) away from the ODE endpoint there.)
TRANSPORT_TOL = {"ddim": 0.1, "euler": 0.1, "heun": 1.5e-2, "dpm++2m": 1e-2}
# SD's scaled-linear betas put more noise at t = 1/steps (sigma^2 = 0.025 there at 100 steps, linear: 0.006), so
# the last step's O(sigma^2) error dominates. Measured at 100 steps on the zero-terminal schedule: heun 3.1e-2,
# dpm++2m 2.8e-2, the same as on plain scaled_linear (3.0e-2, 2.6e-2), both halving with each doubling of steps.
TRANSPORT_TOL_SCALED = {"ddim": 0.1, "euler": 0.1, "heun": 4e-2, "dpm++2m": 4e-2}


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("sampler", ["ddim", "euler", "heun", "dpm++2m"])
def test_ode_samplers_reproduce_the_gaussian(name, sampler):
    sched = NoiseSchedule(SCHEDULES[name])
    x, z = start(sched)
    out = run_sampler(exact_denoiser(sched), sched, x, sched.sampling_times(100), sampler)
    assert out.shape == x.shape and out.dtype == torch.float64 and torch.isfinite(out).all()
    # sampling noise of 20,000 draws: s.e. 0.0035 (mean), 0.0025 (std); plus discretisation
    assert abs(out.mean().item() - M) < 0.02
    assert abs(out.std().item() - S) < 0.02
    # tighter, free of sampling noise: compare with the exact ODE endpoint of each starting point
    tol = (TRANSPORT_TOL_SCALED if SCHEDULES[name].kind == "scaled_linear" else TRANSPORT_TOL)[sampler]
    assert (out - (M + S * z)).abs().max().item() < tol


def _ddpm_chain_moments(sched: NoiseSchedule, times: torch.Tensor) -> tuple[float, float]:
    """Exact mean and std of the DDPM chain's output for Gaussian data (every step is affine in x plus
    independent noise): x_s = P x_t + Q + c z, with c^2 the posterior variance of q(x_s | x_t, x0)."""
    a1, b1 = coef(sched, 1.0)
    mu, var = a1 * M, a1**2 * S**2 + b1**2
    ts = [float(v) for v in times]
    for t, u in zip(ts[:-1], ts[1:]):
        at, bt = coef(sched, max(t, sched.t_min_train))
        au, bu = coef(sched, u)
        k = at * S**2 / (at**2 * S**2 + bt**2)  # x0_hat = M + k (x - at M)
        c2 = 0.0 if bu == 0 else bu**2 * (bt**2 - (at / au) ** 2 * bu**2) / bt**2
        g = math.sqrt(max(bu**2 - c2, 0.0))
        # x_u = au x0_hat + g eps_hat + c z, eps_hat = (x - at x0_hat) / bt
        P = au * k + g * (1 - at * k) / bt
        Q = (au - g * at / bt) * (M - k * at * M)
        mu, var = P * mu + Q, P * P * var + c2
    return mu, math.sqrt(var)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_ddpm_reproduces_the_gaussian(name):
    """Ancestral sampling with x0_hat = E[x0 | x_t] and only the posterior variance under-disperses by O(1/steps).
    The exact chain (``_ddpm_chain_moments``) predicts std errors -0.0174 (linear), -0.0093 (cosine), -0.0085
    (flow) at 200 steps and a mean error of 0; measured (seed 0): mean -0.0003 / -0.0022 / -0.0028,
    std -0.0201 / -0.0130 / -0.0117.

    NoiseSource keeps one generator per sample and costs ~5 us per sample and step, so instead of 20,000
    samples of shape (1,1,1) this uses 320 samples of shape (1,8,8): 20,480 independent values (all
    dimensions are independent under the elementwise Gaussian) in ~0.4 s instead of ~20 s.
    """
    sched = NoiseSchedule(SCHEDULES[name])
    n, shape = 320, (1, 8, 8)
    x, _ = start(sched, n, seed=0, shape=shape)
    den = exact_denoiser(sched)
    times = sched.sampling_times(200)
    out = run_sampler(lambda x_, t: tuple(v.float() for v in den(x_.double(), t)), sched, x.float(), times,
                      "ddpm", NoiseSource(1, range(n), shape))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    mean, std = out.double().mean().item(), out.double().std().item()
    assert abs(mean - M) < 0.02
    assert abs(std - S) < 0.03
    # against the exact chain: within ~4 standard errors (0.0035 for the mean, 0.0025 for the std)
    mu, sd = _ddpm_chain_moments(sched, times)
    assert abs(mu - M) < 1e-9
    assert abs(mean - mu) < 0.014 and abs(std - sd) < 0.01


def test_ddpm_is_ddim_with_eta_one():
    sched = NoiseSchedule(SCHEDULES["linear-discrete"])
    x, _ = start(sched, 8)
    den = exact_denoiser(sched)
    times = sched.sampling_times(20)
    a = run_sampler(den, sched, x, times, "ddpm", NoiseSource(4, range(8), (1, 1, 1)))
    b = run_sampler(den, sched, x, times, "ddim", NoiseSource(4, range(8), (1, 1, 1)), eta=1.0)
    c = run_sampler(den, sched, x, times, "ddim", NoiseSource(5, range(8), (1, 1, 1)), eta=1.0)
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------------------------- inversion
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_heun_invert_then_sample_round_trip(name):
    """Max error over 2,000 points, 100 Karras steps, measured: 1.2e-4 (linear), 3.3e-4 (cosine),
    1.3e-4 (flow). (With uniform steps: 4.6e-3 / 8.7e-4 / 3.0e-4 at 100 and 1.4e-3 / 4.2e-4 / 6.9e-5 at 200.)"""
    sched = NoiseSchedule(SCHEDULES[name])
    den = exact_denoiser(sched)
    x0 = M + S * torch.randn(2000, 1, 1, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    times = sched.sampling_times(100, "karras")
    z = invert(den, sched, x0, times, "heun")
    assert torch.isfinite(z).all() and not torch.allclose(z, x0, atol=0.1)
    back = run_sampler(den, sched, z, times, "heun")
    assert (back - x0).abs().max().item() < 1e-3


# uniform steps; measured max round-trip error over 2,000 points (first order, ~1/steps):
# linear 8.8e-2 at 100, 2.3e-2 at 400, 9.4e-3 at 1000; cosine 4.8e-2 at 100, 1.2e-2 at 400; flow 4.6e-2 at 100,
# 1.2e-2 at 400. ddim and euler invert identically (both use the Euler step backwards).
ROUND_TRIP_STEPS = {
    "linear-discrete": 1000,
    "cosine-continuous": 400,
    "rectified_flow": 400,
    "scaled_linear-zero-terminal": 1000,
}


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_first_order_invert_then_sample_round_trip(name, sampler):
    sched = NoiseSchedule(SCHEDULES[name])
    den = exact_denoiser(sched)
    x0 = M + S * torch.randn(2000, 1, 1, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    times = sched.sampling_times(ROUND_TRIP_STEPS[name])
    back = run_sampler(den, sched, invert(den, sched, x0, times, sampler), times, sampler)
    assert (back - x0).abs().max().item() < 2e-2


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("sampler", ["ddim", "euler"])
def test_fixed_point_inversion_is_the_samplers_exact_inverse(name, sampler):
    """With fixed-point refinement, invert solves each discrete step for its input, so even on a
    coarse 10-step grid sampling the recovered noise gives the data back. Max error measured with
    0 / 5 / 30 iterations: linear 0.70 / 3.7e-3 / 4e-11, flow 0.41 / 3.9e-6 / 1e-15; cosine 0.42 /
    9.8e-3 / 7.9e-3 (its last step starts at alpha ~ 1e-3, where the iteration contracts slowly)."""
    sched = NoiseSchedule(SCHEDULES[name])
    den = exact_denoiser(sched)
    x0 = M + S * torch.randn(2000, 1, 1, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    times = sched.sampling_times(10)
    plain = (run_sampler(den, sched, invert(den, sched, x0, times, sampler), times, sampler) - x0).abs().max().item()
    exact = (
        (run_sampler(den, sched, invert(den, sched, x0, times, sampler, fixed_point=30), times, sampler) - x0)
        .abs()
        .max()
        .item()
    )
    assert exact < (1e-2 if name == "cosine-continuous" else 1e-9) and plain > 0.3
    with pytest.raises(ValueError, match="fixed_point"):
        invert(den, sched, x0, times, sampler, fixed_point=-1)


# ---------------------------------------------------------------------------------- order of accuracy
def test_orders_of_euler_and_heun():
    """Mean abs error against a 2000-step Heun solution from the same noise (flow), measured:
    euler 5.4e-2, 2.8e-2, 1.4e-2 at 10/20/40 steps (ratios 1.94, 1.97);
    heun 7.2e-3, 1.7e-3, 3.9e-4 (ratios 4.35, 4.20)."""
    sched = NoiseSchedule(SCHEDULES["rectified_flow"])
    den = exact_denoiser(sched)
    x, _ = start(sched, 200)
    ref = run_sampler(den, sched, x, sched.sampling_times(2000), "heun")
    err = {}
    for sampler in ("euler", "heun"):
        for n in (10, 20, 40):
            out = run_sampler(den, sched, x, sched.sampling_times(n), sampler)
            err[sampler, n] = (out - ref).abs().mean().item()
    for n in (10, 20):
        assert 1.6 < err["euler", n] / err["euler", 2 * n] < 2.5, err
        assert err["heun", n] / err["heun", 2 * n] > 3.0, err


# ---------------------------------------------------------------------------------- identities
@pytest.mark.parametrize("name", list(ALL_SCHEDULES))
@pytest.mark.parametrize("spacing", ["uniform", "karras"])
def test_ddim_eta0_equals_euler(name, spacing):
    """Same method in the EDM frame. Measured max difference 1e-15..3e-14 (float64 rounding). (With a
    denoiser that builds torch.tensor(t) in float32 the difference grows to ~2e-7: that is the test's
    float32 time, not the samplers.)"""
    sched = NoiseSchedule(ALL_SCHEDULES[name])
    x, _ = start(sched, 500)
    times = sched.sampling_times(13, spacing)
    a = run_sampler(exact_denoiser(sched), sched, x, times, "ddim", eta=0.0)
    b = run_sampler(exact_denoiser(sched), sched, x, times, "euler")
    assert (a - b).abs().max().item() < 1e-10


@pytest.mark.parametrize("sampler, nfe", [("ddpm", 9), ("ddim", 9), ("dpm++2m", 9), ("euler", 9), ("heun", 17)])
def test_network_evaluations_and_progress(sampler, nfe):
    """One evaluation per step, two for heun except on its last (Euler) step; progress called per step."""
    sched = NoiseSchedule(SCHEDULES["linear-discrete"])
    calls, ticks = [], []
    x, _ = start(sched, 4)
    times = sched.sampling_times(9)
    run_sampler(exact_denoiser(sched, calls), sched, x, times, sampler, NoiseSource(0, range(4), (1, 1, 1)),
                progress=ticks.append)
    assert len(calls) == nfe and sum(ticks) == 9
    assert calls[0] == 1.0 and min(calls) > 0.0  # never evaluated at t = 0
    if sampler in INVERTIBLE_SAMPLERS:
        calls.clear()
        invert(exact_denoiser(sched, calls), sched, x, times, sampler)
        assert len(calls) == (18 if sampler == "heun" else 9)


def test_sampler_errors():
    sched = NoiseSchedule(SCHEDULES["linear-discrete"])
    den = exact_denoiser(sched)
    x, _ = start(sched, 2)
    times = sched.sampling_times(3)
    with pytest.raises(ValueError, match="NoiseSource"):
        run_sampler(den, sched, x, times, "ddpm")
    with pytest.raises(ValueError, match="NoiseSource"):
        run_sampler(den, sched, x, times, "ddim", eta=0.5)
    with pytest.raises(ValueError, match="unknown sampler"):
        run_sampler(den, sched, x, times, "lms")
    with pytest.raises(ValueError):
        invert(den, sched, x, times, "dpm++2m")
    assert set(ODE_SAMPLERS) | {"ddpm"} == set(SAMPLERS)


def test_dpmpp_2m_survives_more_uniform_steps_than_grid_points():
    """BUG: on a discrete schedule (T = 1000), ``sampling_times(steps > T, "uniform")`` snaps to the grid
    and repeats times (1500 steps -> 500 zero-length steps). ddim/euler/heun are unaffected, but
    ``_dpmpp_2m_step`` divides by h = 0 (r = prev_h / h) and returns NaN for the whole batch, and
    Generator.sample accepts any steps >= 1. Acceptable fixes: refuse steps > T there (ValueError) or
    make the samplers skip zero-length steps."""
    sched = NoiseSchedule(SCHEDULES["linear-discrete"])
    den = exact_denoiser(sched)
    x, z = start(sched, 16)
    try:
        times = sched.sampling_times(1500)
    except ValueError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = run_sampler(den, sched, x, times, "dpm++2m")
    assert torch.isfinite(out).all()
    assert (out - (M + S * z)).abs().max().item() < 1e-2


# ---------------------------------------------------------------------------------- noise source
def test_noise_source_is_per_sample_and_batch_independent():
    shape = (1, 2, 2)
    whole = NoiseSource(5, [0, 1, 2, 3], shape).draw()
    part = NoiseSource(5, [2, 3], shape).draw()
    assert whole.shape == (4, *shape) and whole.dtype == torch.float32
    assert torch.equal(whole[2:], part)
    assert torch.equal(NoiseSource(5, [3, 0], shape).draw(), whole[[3, 0]])
    # successive draws continue each sample's own stream
    src_whole, src_part = NoiseSource(5, range(4), shape), NoiseSource(5, [1], shape)
    for _ in range(3):
        assert torch.equal(src_whole.draw()[1:2], src_part.draw())
    assert not torch.equal(NoiseSource(6, [2, 3], shape).draw(), part)
    assert not torch.equal(whole[0], whole[1])


def test_a_new_sampler_is_one_registry_entry(monkeypatch):
    """Registering one SamplerSpec makes a sampler that Generator.sample, invert and the NFE count all accept."""
    from diffeval.generators.samplers import REGISTRY, SamplerSpec, nfe
    from diffeval.generators.samplers.core import euler_step

    from ..helpers import tiny_generator

    monkeypatch.setitem(REGISTRY, "euler-copy", SamplerSpec("euler-copy", euler_step, ode=True, invertible=True))
    g = tiny_generator("sd3")
    a = g.sample(2, steps=3, sampler="euler-copy", seed=0)
    b = g.sample(2, steps=3, sampler="euler", seed=0)
    assert torch.equal(a, b)
    assert torch.equal(g.invert(a, steps=3, sampler="euler-copy"), g.invert(a, steps=3, sampler="euler"))
    assert nfe("euler-copy", 10) == 10 and nfe("heun", 10) == 19 and nfe("heun", 10, guided=True) == 38
    assert nfe("heun", 10, to_zero=False) == 20
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        g.sample(1, steps=2, sampler="nope")
