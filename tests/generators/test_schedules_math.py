"""Schedules and parameterizations against closed forms."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from generators.parameterization import PARAMETERIZATIONS, from_score, to_prediction, training_target
from generators.schedules import NoiseSchedule, ScheduleConfig

VP = [(k, d) for k in ("linear", "scaled_linear", "cosine") for d in (1000, None)]


@pytest.mark.parametrize("kind, steps", VP)
def test_vp_is_variance_preserving_and_monotone(kind, steps):
    s = NoiseSchedule(ScheduleConfig(kind, steps))
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    a, b = s.alpha_sigma(t)
    assert torch.allclose(a**2 + b**2, torch.ones_like(a), atol=1e-12)
    assert a[0] == 1 and b[0] == 0
    lam = s.log_snr(t[1:])
    assert (lam[1:] < lam[:-1]).all()


def test_discrete_grids_match_cumprod_of_betas():
    i = np.arange(1, 1001)
    betas = {
        "linear": np.linspace(1e-4, 0.02, 1000),
        "scaled_linear": np.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2,
    }
    f = np.cos((np.arange(1001) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2
    betas["cosine"] = np.clip(1 - f[1:] / f[:-1], None, 0.999)
    for kind, beta in betas.items():
        a, _ = NoiseSchedule(ScheduleConfig(kind, 1000)).alpha_sigma(torch.tensor(i / 1000))
        np.testing.assert_allclose(a.numpy() ** 2, np.cumprod(1 - beta), rtol=1e-10)


def test_continuous_linear_closed_form_and_derivative():
    s = NoiseSchedule(ScheduleConfig("linear", None))
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    a, _ = s.alpha_sigma(t)
    assert torch.allclose(torch.log(a**2), -(0.1 * t + 0.5 * 19.9 * t**2), atol=1e-12)
    da, ds = s.d_alpha_sigma(t)
    exact_da = a * -(0.1 + 19.9 * t) / 2
    assert torch.allclose(da, exact_da, atol=1e-6)
    assert torch.allclose(ds, -a * exact_da / torch.sqrt(1 - a**2), atol=1e-6)


def test_rectified_flow_path():
    s = NoiseSchedule(ScheduleConfig("rectified_flow", None))
    t = torch.rand(20, dtype=torch.float64)
    a, b = s.alpha_sigma(t)
    assert torch.equal(a, 1 - t) and torch.equal(b, t)
    da, ds = s.d_alpha_sigma(t)
    assert (da == -1).all() and (ds == 1).all()
    with pytest.raises(ValueError, match="continuous"):
        ScheduleConfig("rectified_flow", 1000)


@pytest.mark.parametrize("kind, steps", VP + [("rectified_flow", None)])
def test_log_snr_inverse(kind, steps):
    s = NoiseSchedule(ScheduleConfig(kind, steps))
    t = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)
    assert torch.allclose(s.t_from_log_snr(s.log_snr(t)), t, atol=1e-9)


def test_sampling_grids():
    d = NoiseSchedule(ScheduleConfig("linear", 1000)).sampling_times(7)
    assert len(d) == 8 and d[0] == 1 and d[-1] == 0 and (d[1:] < d[:-1]).all()
    assert torch.allclose(d * 1000, torch.round(d * 1000))
    flow = NoiseSchedule(ScheduleConfig("rectified_flow", None, shift=3.0))
    u = torch.linspace(1, 0, 11, dtype=torch.float64)
    assert torch.allclose(flow.sampling_times(10), 3 * u / (1 + 2 * u))
    s = NoiseSchedule(ScheduleConfig("cosine", None))
    k = s.sampling_times(12, "karras")
    assert k[-1] == 0 and (k[1:] < k[:-1]).all()
    a, b = s.alpha_sigma(k[:-1])
    root = (b / a) ** (1 / 7)
    assert torch.allclose(root[1:] - root[:-1], (root[1] - root[0]).expand(11), atol=1e-6)
    with pytest.raises(ValueError, match="spacing"):
        s.sampling_times(5, "leading")


@pytest.mark.parametrize("path", ["vp", "flow"])
@pytest.mark.parametrize("p", PARAMETERIZATIONS)
def test_parameterization_round_trips(path, p):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 1, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(16, 1, 4, 4, generator=g, dtype=torch.float64)
    t = torch.rand(16, generator=g, dtype=torch.float64) * 0.9 + 0.05
    if path == "vp":
        sched = NoiseSchedule(ScheduleConfig("cosine", None))
        a, b = sched.alpha_sigma(t)
        da, ds = sched.d_alpha_sigma(t)
    else:
        a, b, da, ds = 1 - t, t, -torch.ones_like(t), torch.ones_like(t)
    x = a[:, None, None, None] * x0 + b[:, None, None, None] * eps
    out = training_target(p, x0, eps, a, b, da, ds)
    pred = to_prediction(out, x, a, b, p, da, ds)
    assert torch.allclose(pred.x0, x0, atol=1e-10) and torch.allclose(pred.eps, eps, atol=1e-10)
    back = from_score(pred.score, x, a, b)
    assert torch.allclose(back.x0, x0, atol=1e-10) and torch.allclose(back.eps, eps, atol=1e-10)
    pred32 = to_prediction(out.float(), x.float(), a.float(), b.float(), p, da.float(), ds.float())
    assert torch.allclose(pred32.x0, x0.float(), atol=1e-5) and torch.allclose(pred32.eps, eps.float(), atol=1e-5)
    r = lambda v: v[:, None, None, None]  # noqa: E731
    if path == "vp":  # REFERENCES: from v, x0 = a x - b v and eps = b x + a v
        v = training_target("v", x0, eps, a, b)
        assert torch.allclose(r(a) * x - r(b) * v, x0, atol=1e-10) and torch.allclose(r(b) * x + r(a) * v, eps, atol=1e-10)
    else:  # REFERENCES: s = -(x + (1 - t) v) / t for v = eps - x0
        v = eps - x0
        assert torch.allclose(pred.score, -(x + r(1 - t) * v) / r(t), atol=1e-10)


def test_parameterization_errors():
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="path derivatives"):
        to_prediction(x, x, torch.ones(1), torch.ones(1), "velocity")
    with pytest.raises(ValueError, match="unknown parameterization"):
        to_prediction(x, x, torch.ones(1), torch.ones(1), "score")
