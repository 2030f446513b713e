"""Exact conversions between network outputs (eps, x0, v, velocity) and (x0, eps) estimates.

Path: x_t = alpha x0 + sigma eps. Checked on a VP path (alpha^2 + sigma^2 = 1), the rectified-flow path
(alpha = 1 - t, sigma = t) and a generic path with arbitrary positive alpha, sigma.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffeval.generators.parameterization import (
    PARAMETERIZATIONS,
    Prediction,
    from_score,
    to_prediction,
    training_target,
)

N = 32
PATHS = ("vp", "flow", "generic")


def r(v: torch.Tensor) -> torch.Tensor:
    return v[:, None, None, None]


def make_path(path: str, seed: int = 0):
    """float64 x0, eps (N,1,4,4), per-sample t, alpha, sigma, d_alpha, d_sigma (N,) and x_t."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(N, 1, 4, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(N, 1, 4, 4, generator=g, dtype=torch.float64)
    t = 0.05 + 0.9 * torch.rand(N, generator=g, dtype=torch.float64)  # away from the singular ends
    if path == "vp":  # alpha = cos(pi t / 2), sigma = sin(pi t / 2): variance preserving
        phi = 0.5 * math.pi * t
        a, b = torch.cos(phi), torch.sin(phi)
        da, db = -0.5 * math.pi * b, 0.5 * math.pi * a
        assert torch.allclose(a**2 + b**2, torch.ones_like(a), atol=1e-15)
    elif path == "flow":
        a, b = 1 - t, t
        da, db = -torch.ones_like(t), torch.ones_like(t)
    else:  # any path with alpha' sigma - alpha sigma' != 0
        a = 0.2 + torch.rand(N, generator=g, dtype=torch.float64)
        b = 0.2 + torch.rand(N, generator=g, dtype=torch.float64)
        da = -0.5 - torch.rand(N, generator=g, dtype=torch.float64)
        db = 0.5 + torch.rand(N, generator=g, dtype=torch.float64)
    x = r(a) * x0 + r(b) * eps
    return x0, eps, t, a, b, da, db, x


def maxerr(u: torch.Tensor, v: torch.Tensor) -> float:
    return (u.double() - v.double()).abs().max().item()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", PARAMETERIZATIONS)
def test_target_then_prediction_round_trip_float64(path, p):
    x0, eps, t, a, b, da, db, x = make_path(path)
    out = training_target(p, x0, eps, a, b, da, db)
    assert out.shape == x0.shape and out.dtype == torch.float64
    pred = to_prediction(out, x, a, b, p, da, db)
    assert isinstance(pred, Prediction)
    assert maxerr(pred.x0, x0) < 1e-10 and maxerr(pred.eps, eps) < 1e-10
    assert pred.x is x and pred.x0.dtype == torch.float64
    # derived quantities
    assert maxerr(pred.v, r(a) * eps - r(b) * x0) < 1e-10
    assert maxerr(pred.score, -eps / r(b)) < 1e-10
    assert maxerr(pred.velocity(da, db), r(da) * x0 + r(db) * eps) < 1e-10
    # from_score(score) round-trips
    back = from_score(pred.score, x, a, b)
    assert maxerr(back.x0, x0) < 1e-10 and maxerr(back.eps, eps) < 1e-10


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("p", PARAMETERIZATIONS)
def test_target_then_prediction_round_trip_float32(path, p):
    """Measured worst case over paths/parameterizations: 2.6e-6 (x0 output on the VP path)."""
    x0, eps, t, a, b, da, db, x = make_path(path, seed=1)
    out = training_target(p, x0, eps, a, b, da, db).float()
    pred = to_prediction(out, x.float(), a.float(), b.float(), p, da.float(), db.float())
    assert pred.x0.dtype == torch.float32 and pred.eps.dtype == torch.float32
    assert maxerr(pred.x0, x0) < 1e-5 and maxerr(pred.eps, eps) < 1e-5
    back = from_score(pred.score, x.float(), a.float(), b.float())
    assert maxerr(back.x0, x0) < 1e-5 and maxerr(back.eps, eps) < 1e-5


def test_scalar_coefficients_broadcast():
    x0, eps, *_ = make_path("vp")
    a, b = math.cos(0.3), math.sin(0.3)
    x = a * x0 + b * eps
    c = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731  (0-dim coefficients)
    for p in PARAMETERIZATIONS:
        out = training_target(p, x0, eps, c(a), c(b), c(-b), c(a))
        pred = to_prediction(out, x, c(a), c(b), p, c(-b), c(a))
        assert maxerr(pred.x0, x0) < 1e-12 and maxerr(pred.eps, eps) < 1e-12
        # plain Python floats work too
        out = training_target(p, x0, eps, a, b, -b, a)
        pred = to_prediction(out, x, a, b, p, -b, a)
        assert maxerr(pred.x0, x0) < 1e-12 and maxerr(pred.eps, eps) < 1e-12


def test_vp_references_from_v():
    """For VP paths: x0 = a x - b v and eps = b x + a v (Salimans & Ho)."""
    x0, eps, t, a, b, da, db, x = make_path("vp", seed=2)
    v = training_target("v", x0, eps, a, b)
    assert maxerr(v, r(a) * eps - r(b) * x0) < 1e-12
    assert maxerr(r(a) * x - r(b) * v, x0) < 1e-10
    assert maxerr(r(b) * x + r(a) * v, eps) < 1e-10
    pred = to_prediction(v, x, a, b, "v")
    assert maxerr(pred.x0, r(a) * x - r(b) * v) < 1e-12 and maxerr(pred.eps, r(b) * x + r(a) * v) < 1e-12


def test_flow_references_from_velocity():
    """For rectified flow, v_flow = eps - x0: eps = x + (1 - t) v and score = -(x + (1 - t) v) / t."""
    x0, eps, t, a, b, da, db, x = make_path("flow", seed=3)
    v = training_target("velocity", x0, eps, a, b, da, db)
    assert maxerr(v, eps - x0) < 1e-12
    assert maxerr(x + r(1 - t) * v, eps) < 1e-10
    pred = to_prediction(v, x, a, b, "velocity", da, db)
    assert maxerr(pred.eps, x + r(1 - t) * v) < 1e-10
    assert maxerr(pred.x0, x - r(t) * v) < 1e-10
    assert maxerr(pred.score, -(x + r(1 - t) * v) / r(t)) < 1e-10


def test_velocity_needs_path_derivatives():
    x = torch.zeros(2, 1, 2, 2)
    one = torch.ones(2)
    with pytest.raises(ValueError, match="path derivatives"):
        to_prediction(x, x, one, one, "velocity")
    with pytest.raises(ValueError, match="path derivatives"):
        to_prediction(x, x, one, one, "velocity", d_alpha=-one)
    with pytest.raises(ValueError, match="path derivatives"):
        training_target("velocity", x, x, one, one)


@pytest.mark.parametrize("name", ["score", "EPS", "", "flow"])
def test_unknown_parameterization_raises(name):
    x = torch.zeros(2, 1, 2, 2)
    one = torch.ones(2)
    with pytest.raises(ValueError, match="unknown parameterization"):
        to_prediction(x, x, one, one, name, -one, one)
    with pytest.raises(ValueError, match="unknown parameterization"):
        training_target(name, x, x, one, one, -one, one)
