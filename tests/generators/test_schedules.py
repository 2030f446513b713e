"""Noise schedules against closed forms and independent numpy references.

Path convention: x_t = alpha(t) x0 + sigma(t) eps, t in [0, 1], t = 0 clean.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffeval.generators.schedules import KINDS, NoiseSchedule, ScheduleConfig

T = 1000
VP_KINDS = ("linear", "scaled_linear", "cosine")
VP = [(kind, steps) for kind in VP_KINDS for steps in (T, None)]
VP_IDS = [f"{kind}-{'discrete' if steps else 'continuous'}" for kind, steps in VP]
ALL = VP + [("rectified_flow", None)]
ALL_IDS = VP_IDS + ["rectified_flow"]


def sched(kind: str, steps: int | None, **kw) -> NoiseSchedule:
    return NoiseSchedule(ScheduleConfig(kind, steps, **kw))


def numpy_alpha_bar(kind: str) -> np.ndarray:
    """alpha_bar at i / T for i = 1..T, from the published beta schedules (independent of the library)."""
    if kind == "linear":  # DDPM (Ho et al. 2020)
        betas = np.linspace(1e-4, 0.02, T)
    elif kind == "scaled_linear":  # Stable Diffusion 1/2
        betas = np.linspace(math.sqrt(0.00085), math.sqrt(0.012), T) ** 2
    elif kind == "cosine":  # Nichol & Dhariwal 2021, s = 0.008, betas clipped at 0.999
        s = 0.008
        f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
        betas = np.minimum(1 - f[1:] / f[:-1], 0.999)
    else:
        raise AssertionError(kind)
    return np.cumprod(1 - betas)


# ---------------------------------------------------------------------------------- VP invariants
@pytest.mark.parametrize("kind, steps", VP, ids=VP_IDS)
def test_vp_variance_preserving_endpoints_and_monotone_log_snr(kind, steps):
    s = sched(kind, steps)
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    a, b = s.alpha_sigma(t)
    assert a.dtype == torch.float64 and b.shape == t.shape
    assert (a**2 + b**2 - 1).abs().max().item() < 1e-12
    a0, b0 = s.alpha_sigma(torch.tensor(0.0, dtype=torch.float64))
    assert a0.item() == 1.0 and b0.item() == 0.0
    lam = s.log_snr(t[1:])  # (0, 1]; +inf at t = 0 is excluded
    assert torch.isfinite(lam).all()
    assert (lam[1:] < lam[:-1]).all()
    # and on random interior points (off the discrete grid), sorted
    u = torch.sort(torch.rand(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.99 + 0.005)[0]
    a, b = s.alpha_sigma(u)
    assert (a**2 + b**2 - 1).abs().max().item() < 1e-12
    lam = s.log_snr(u)
    assert (lam[1:] < lam[:-1]).all()


@pytest.mark.parametrize("kind", VP_KINDS)
def test_discrete_grid_matches_cumprod_of_betas(kind):
    i = np.arange(1, T + 1)
    a, b = sched(kind, T).alpha_sigma(torch.tensor(i / T, dtype=torch.float64))
    ref = numpy_alpha_bar(kind)
    np.testing.assert_allclose(a.numpy() ** 2, ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(b.numpy() ** 2, 1 - ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", VP_KINDS)
def test_discrete_interpolates_log_alpha_bar_linearly_between_grid_points(kind):
    s = sched(kind, T)
    ref = np.log(np.concatenate([[1.0], numpy_alpha_bar(kind)]))
    i = np.arange(0, T)
    for frac in (0.25, 0.5, 0.75):
        got = s.log_alpha_bar(torch.tensor((i + frac) / T, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, (1 - frac) * ref[:-1] + frac * ref[1:], rtol=1e-11, atol=1e-13)


def test_continuous_linear_closed_form():
    s = sched("linear", None)
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    a, b = s.alpha_sigma(t)
    closed = -(0.1 * t + 0.5 * 19.9 * t**2)
    assert (torch.log(a**2) - closed).abs().max().item() < 1e-12
    assert (s.log_alpha_bar(t) - closed).abs().max().item() < 1e-12
    assert (b**2 - (-torch.expm1(closed))).abs().max().item() < 1e-12


def test_continuous_linear_derivative_matches_analytic():
    s = sched("linear", None)
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    a, b = s.alpha_sigma(t)
    da, ds = s.d_alpha_sigma(t)
    exact_da = -0.5 * (0.1 + 19.9 * t) * a  # d/dt exp(0.5 log_ab)
    exact_ds = -a * exact_da / b  # from alpha^2 + sigma^2 = 1
    assert (da - exact_da).abs().max().item() < 1e-6
    assert (ds - exact_ds).abs().max().item() < 1e-6


def test_rectified_flow_path():
    s = sched("rectified_flow", None)
    assert s.is_flow and not s.discrete
    t = torch.rand(50, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.cat([t, torch.tensor([0.0, 1.0], dtype=torch.float64)])
    a, b = s.alpha_sigma(t)
    assert torch.equal(a, 1 - t) and torch.equal(b, t)
    da, ds = s.d_alpha_sigma(t)
    assert (da == -1).all() and (ds == 1).all() and da.shape == t.shape
    with pytest.raises(ValueError):
        ScheduleConfig("rectified_flow", 1000)


@pytest.mark.parametrize("kind, steps", ALL, ids=ALL_IDS)
def test_t_from_log_snr_inverts_log_snr(kind, steps):
    s = sched(kind, steps)
    t = torch.cat([
        torch.linspace(0.02, 0.98, 49, dtype=torch.float64),
        torch.rand(50, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.96 + 0.02,
    ])
    back = s.t_from_log_snr(s.log_snr(t))
    assert back.shape == t.shape
    assert (back - t).abs().max().item() < 1e-9


# ---------------------------------------------------------------------------------- sampling grids
@pytest.mark.parametrize("kind, steps", ALL, ids=ALL_IDS)
@pytest.mark.parametrize("n", [1, 7, 50, 1000])
def test_uniform_sampling_times(kind, steps, n):
    s = sched(kind, steps)
    t = s.sampling_times(n, "uniform")
    assert t.dtype == torch.float64 and t.shape == (n + 1,)
    assert t[0].item() == 1.0 and t[-1].item() == 0.0
    assert (t[1:] < t[:-1]).all()
    if steps is not None:  # on the training grid i / T
        i = t * steps
        assert (i - torch.round(i)).abs().max().item() < 1e-9
    else:
        assert torch.allclose(t, torch.linspace(1, 0, n + 1, dtype=torch.float64), atol=1e-15, rtol=0)


@pytest.mark.parametrize("shift", [1.0, 3.0, 0.5])
def test_flow_shift_maps_uniform_times(shift):
    s = sched("rectified_flow", None, shift=shift)
    u = torch.linspace(1, 0, 29, dtype=torch.float64)
    t = s.sampling_times(28)
    assert torch.allclose(t, shift * u / (1 + (shift - 1) * u), atol=1e-14, rtol=0)
    assert t[0].item() == 1.0 and t[-1].item() == 0.0 and (t[1:] < t[:-1]).all()
    if shift == 3.0:
        assert torch.allclose(t, 3 * u / (1 + 2 * u), atol=1e-14, rtol=0)


@pytest.mark.parametrize("kind, steps", ALL, ids=ALL_IDS)
@pytest.mark.parametrize("n", [2, 12, 40])
def test_karras_sampling_times(kind, steps, n):
    s = sched(kind, steps)
    t = s.sampling_times(n, "karras")
    assert t.shape == (n + 1,) and t[-1].item() == 0.0
    assert (t[1:] < t[:-1]).all()
    a, b = s.alpha_sigma(t[:-1])
    root = (b / a) ** (1 / 7)
    gaps = root[1:] - root[:-1]
    # equally spaced in (sigma/alpha)^(1/7); the bisection in t_from_log_snr is exact to ~1e-15 in t
    assert (gaps - gaps.mean()).abs().max().item() < 1e-8 * root.max().item()
    # endpoints: the largest noise level (t = 1, or 1 - 1e-3 for the flow) and the smallest trained one.
    # Loose tolerance here: the library evaluates them at float32-rounded times (see the test below).
    t_hi = 1.0 - (1e-3 if s.is_flow else 0.0)
    a_hi, b_hi = s.alpha_sigma(torch.tensor(t_hi, dtype=torch.float64))
    a_lo, b_lo = s.alpha_sigma(torch.tensor(s.t_min_train, dtype=torch.float64))
    assert math.isclose((b[0] / a[0]).item(), (b_hi / a_hi).item(), rel_tol=1e-4)
    assert math.isclose((b[-1] / a[-1]).item(), (b_lo / a_lo).item(), rel_tol=1e-4)


@pytest.mark.parametrize("kind, steps", [("linear", T), ("cosine", None), ("rectified_flow", None)],
                         ids=["linear-discrete", "cosine-continuous", "rectified_flow"])
def test_karras_endpoints_are_exact_float64_noise_levels(kind, steps):
    """The last nonzero Karras time should be t_min_train (0.001 for continuous kinds) and the first 1 - 1e-3
    for the flow, to float64 precision. BUG (schedules.py, sampling_times): ``torch.tensor(t_hi)`` and
    ``torch.tensor(self.t_min_train)`` are float32, so the endpoints come out as float32(0.001) =
    0.0010000000474974 and float32(0.999) = 0.9990000128746 (sigma/alpha off by 1.3e-5 relative for the flow)."""
    s = sched(kind, steps)
    t = s.sampling_times(10, "karras")
    t_hi = 1.0 - (1e-3 if s.is_flow else 0.0)
    assert abs(t[-2].item() - s.t_min_train) < 1e-12, t[-2].item()
    if not (kind == "cosine" and steps is None):  # cosine's alpha_bar floor makes log-SNR flat near t = 1
        assert abs(t[0].item() - t_hi) < 1e-12, t[0].item()


# ---------------------------------------------------------------------------------- errors
def test_invalid_configurations_raise():
    with pytest.raises(ValueError, match="unknown schedule kind"):
        ScheduleConfig("quadratic", 1000)
    with pytest.raises(ValueError):
        ScheduleConfig("linear", 1)
    with pytest.raises(ValueError):
        ScheduleConfig("rectified_flow", None, shift=0.0)
    s = sched("linear", T)
    with pytest.raises(ValueError, match="spacing"):
        s.sampling_times(10, "leading")
    with pytest.raises(ValueError):
        s.sampling_times(0)
    assert set(KINDS) == {"linear", "scaled_linear", "cosine", "rectified_flow"}


# ---------------------------------------------------------------------------------- zero terminal SNR
def numpy_zero_terminal(alpha_bar: np.ndarray) -> np.ndarray:
    """Lin et al. 2024, Algorithm 1, on alpha_bar at i / T for i = 1..T (independent numpy reference)."""
    root = np.sqrt(alpha_bar)
    first, last = root[0], root[-1]
    root = (root - last) * first / (first - last)
    return root**2


@pytest.mark.parametrize("kind", VP_KINDS)
def test_zero_terminal_snr_discrete_matches_lin_et_al(kind):
    s = sched(kind, T, zero_terminal_snr=True)
    t = torch.arange(1, T + 1, dtype=torch.float64) / T
    alpha, sigma = s.alpha_sigma(t)
    want = numpy_zero_terminal(numpy_alpha_bar(kind))
    np.testing.assert_allclose(alpha.numpy() ** 2, want, rtol=1e-9, atol=1e-15)
    assert alpha[-1].item() == 0.0 and sigma[-1].item() == 1.0
    assert alpha[0].item() == pytest.approx(math.sqrt(numpy_alpha_bar(kind)[0]), rel=1e-12)  # first step unchanged
    np.testing.assert_allclose((alpha**2 + sigma**2).numpy(), 1.0, atol=1e-12)
    lam = s.log_snr(t)
    assert torch.isfinite(lam[:-1]).all() and lam[-1].item() == -math.inf
    assert (lam[1:] < lam[:-1]).all()
    # between grid points alpha stays positive, finite and monotone, also on the last interval
    fine = torch.linspace(0, 1, 20001, dtype=torch.float64)
    a_fine, s_fine = s.alpha_sigma(fine)
    assert torch.isfinite(a_fine).all() and torch.isfinite(s_fine).all()
    assert (a_fine[1:] <= a_fine[:-1]).all() and (a_fine[:-1] > 0).all()


@pytest.mark.parametrize("kind", VP_KINDS)
def test_zero_terminal_snr_continuous(kind):
    s, raw = sched(kind, None, zero_terminal_snr=True), sched(kind, None)
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    alpha, sigma = s.alpha_sigma(t)
    a_raw, _ = raw.alpha_sigma(t)
    a1 = a_raw[-1].item()
    np.testing.assert_allclose(alpha.numpy(), ((a_raw - a1) / (1 - a1)).numpy(), rtol=1e-10, atol=1e-14)
    assert alpha[0].item() == 1.0 and alpha[-1].item() == 0.0 and sigma[-1].item() == 1.0
    assert (alpha[1:] < alpha[:-1]).all()


def test_zero_terminal_snr_sampling_times_and_config():
    s = sched("scaled_linear", T, zero_terminal_snr=True)
    assert s.sampling_times(20)[0].item() == 1.0  # uniform (trailing) spacing starts at pure noise
    k = s.sampling_times(20, "karras")
    assert torch.isfinite(k).all() and k[0].item() == pytest.approx(1 - 1 / T)  # sigma/alpha is infinite at t = 1
    assert "zero_terminal_snr" not in ScheduleConfig("scaled_linear", T).to_dict()  # old configs unchanged
    cfg = ScheduleConfig("scaled_linear", T, zero_terminal_snr=True)
    assert ScheduleConfig(**cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="already ends at pure noise"):
        ScheduleConfig("rectified_flow", None, zero_terminal_snr=True)
