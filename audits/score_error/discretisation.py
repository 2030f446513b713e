"""Discretisation error of the ODE samplers, separated from model error.

The probability-flow ODE is integrated from the same start x_T by a K-step sampler and by a
high-accuracy reference. In the samplers' frame (``NoiseSchedule.ode_time``) the ODE is
dX/dtau = E[eps|x] for VP paths (X = x / alpha, tau = sigma / alpha, alpha = (1 + tau^2)^-1/2) and
dx/dt = E[eps|x] - E[x0|x] for rectified flow.

- With an exact ground truth the reference is scipy's DOP853 at rtol = atol = 1e-10 on the exact
  ODE; the distance of the K-step result from it is pure discretisation error, and the slope of
  log error against log NFE gives the sampler's order.
- For a trained model three solutions are compared: its K-step sample, its own reference (Heun with
  ``model_reference_steps`` steps on the same spacing) and the exact reference. Then
  disc_error = |K-step - own reference|, model_error = |own reference - exact reference| and
  total_error = |K-step - exact reference|.

For ``karras`` spacing (EDM, rho = 7) the comparison is made at the smallest positive time of the grid
(the final jump to sigma = 0 is the same fixed step for every K, so it would only add a floor); for
``uniform`` spacing the solutions are compared at t = 0. Errors are RMS over samples and coordinates,
in model space.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.integrate import solve_ivp

from diffeval.generators.samplers import nfe as sampler_nfe
from diffeval.generators.samplers import run_sampler
from diffeval.generators.schedules import NoiseSchedule

from .models import ExactModel, Model, Truth, denoise_fn

THEORY_ORDER = {"euler": 1.0, "ddim": 1.0, "heun": 2.0, "dpm++2m": 2.0}


def solver_times(schedule: NoiseSchedule, steps: int, spacing: str) -> torch.Tensor:
    """The K-step grid a sampler walks, ending where the comparison is made (see the module note)."""
    times = schedule.sampling_times(steps, spacing)
    return times[:-1] if spacing == "karras" else times


def nfe(sampler: str, times: torch.Tensor) -> int:
    """Network evaluations of ``run_sampler`` on ``times`` (Heun skips its correction on a step to 0)."""
    return sampler_nfe(sampler, len(times) - 1, to_zero=float(times[-1]) == 0.0)


def start_points(truth, schedule: NoiseSchedule, t_start: float, n: int, sample_x0, seed: int) -> torch.Tensor:
    """n exact draws from p_t at t_start (model space, float64)."""
    alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.tensor(t_start, dtype=torch.float64)))
    x0 = sample_x0(n, seed).to(torch.float64)
    g = torch.Generator().manual_seed(seed + 99_991)
    return alpha * x0 + sigma * torch.randn(x0.shape, generator=g, dtype=torch.float64)


def exact_reference(truth: Truth, schedule: NoiseSchedule, x_start: torch.Tensor, t_start: float, t_end: float,
                    rtol: float = 1e-10, atol: float = 1e-10) -> torch.Tensor:
    """Solve the exact probability-flow ODE from (x_start, t_start) to t_end with DOP853 (float64)."""
    shape = x_start.shape
    tt = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    if schedule.is_flow:
        def rhs(tau, y):
            x = torch.from_numpy(y).reshape(shape)
            p = truth.posterior(x, 1.0 - tau, tau)
            return (p.eps - p.x0).reshape(-1).numpy()

        tau0, tau1, scale0, scale1 = t_start, t_end, 1.0, 1.0
    else:
        def rhs(tau, y):
            alpha = (1.0 + tau * tau) ** -0.5
            x = torch.from_numpy(y).reshape(shape) * alpha
            return truth.posterior(x, alpha, tau * alpha).eps.reshape(-1).numpy()

        tau0, tau1 = float(schedule.ode_time(tt(t_start))), float(schedule.ode_time(tt(t_end)))
        scale0, scale1 = float(schedule.ode_scale(tt(t_start))), float(schedule.ode_scale(tt(t_end)))
    y0 = (x_start / scale0).reshape(-1).numpy()
    sol = solve_ivp(rhs, (tau0, tau1), y0, method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"the reference ODE solve failed: {sol.message}")
    return torch.from_numpy(sol.y[:, -1]).reshape(shape) * scale1


def _rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean().sqrt())


def _median(a: torch.Tensor, b: torch.Tensor) -> float:
    """Median over samples of each sample's RMS distance (robust to the few trajectories that end in
    another mode of a multimodal distribution than the reference's)."""
    d = ((a.double() - b.double()) ** 2).reshape(a.shape[0], -1).mean(1).sqrt()
    return float(d.median())


def exact_discretisation_table(
    truth: Truth,
    schedule: NoiseSchedule,
    sample_x0,
    samplers=("euler", "heun", "dpm++2m"),
    steps=(4, 8, 16, 32, 64, 128, 256, 512, 1024),
    spacings=("karras", "uniform"),
    n: int = 256,
    seed: int = 0,
    path: str = "",
) -> pd.DataFrame:
    """With the exact denoiser as the model: columns path, sampler, spacing, steps, nfe, error (RMS vs
    the DOP853 reference over samples and coordinates), error_median (median over samples of each
    sample's RMS error), ref_rms (RMS size of the reference solution)."""
    # the velocity form stays finite at alpha = 0 (flow at t = 1), the eps form at sigma = 0
    model = ExactModel(truth, schedule, "velocity" if schedule.is_flow else "eps")
    denoise = denoise_fn(model)
    rows = []
    for spacing in spacings:
        first = solver_times(schedule, steps[0], spacing)
        t_start, t_end = float(first[0]), float(first[-1])
        x_start = start_points(truth, schedule, t_start, n, sample_x0, seed)
        ref = exact_reference(truth, schedule, x_start, t_start, t_end)
        for sampler in samplers:
            for k in steps:
                times = solver_times(schedule, k, spacing)
                if abs(float(times[0]) - t_start) > 1e-12 or abs(float(times[-1]) - t_end) > 1e-12:
                    raise RuntimeError("the sampler grids must share their end points")
                x = run_sampler(denoise, schedule, x_start.clone(), times, sampler)
                rows.append([path, sampler, spacing, k, nfe(sampler, times), _rms(x, ref), _median(x, ref),
                             _rms(ref, torch.zeros_like(ref))])
    return pd.DataFrame(
        rows, columns=["path", "sampler", "spacing", "steps", "nfe", "error", "error_median", "ref_rms"]
    )


def model_discretisation_table(
    model: Model,
    truth: Truth | None,
    sample_x0,
    samplers=("euler", "heun", "dpm++2m"),
    steps=(4, 8, 16, 32, 64),
    spacing: str = "karras",
    n: int = 256,
    seed: int = 0,
    model_reference_steps: int = 512,
) -> pd.DataFrame:
    """Columns model, sampler, spacing, steps, nfe, disc_error, model_error, total_error (RMS, model
    space). Without a truth, model_error and total_error are NaN. Start points are exact draws from the
    noised data at the grid's first time when a truth is given, else Gaussian noise scaled to it."""
    schedule = model.schedule
    first = solver_times(schedule, steps[0], spacing)
    t_start, t_end = float(first[0]), float(first[-1])
    x_start = start_points(truth, schedule, t_start, n, sample_x0, seed).float()
    denoise = denoise_fn(model)
    with torch.no_grad():
        own = run_sampler(
            denoise, schedule, x_start.clone(), solver_times(schedule, model_reference_steps, spacing), "heun"
        )
    exact = exact_reference(truth, schedule, x_start.double(), t_start, t_end) if truth is not None else None
    model_err = _rms(own, exact) if exact is not None else float("nan")
    rows = []
    for sampler in samplers:
        for k in steps:
            times = solver_times(schedule, k, spacing)
            with torch.no_grad():
                x = run_sampler(denoise, schedule, x_start.clone(), times, sampler)
            total = _rms(x, exact) if exact is not None else float("nan")
            rows.append([model.name, sampler, spacing, k, nfe(sampler, times), _rms(x, own), _median(x, own),
                         model_err, total])
    return pd.DataFrame(rows, columns=["model", "sampler", "spacing", "steps", "nfe", "disc_error", "disc_error_median",
                                       "model_error", "total_error"])


def fit_orders(
    table: pd.DataFrame, error_col: str = "error_median", min_steps: int = 32, by=("sampler", "spacing")
) -> pd.DataFrame:
    """Least-squares slope of log(error) against log(NFE) over rows with steps >= min_steps, per group.

    With few steps some trajectories of a multimodal ODE end in another mode than the reference's;
    they dominate an RMS error and make it jump, so the order is read from the per-sample median
    error by default, over the asymptotic range (steps >= min_steps). Columns: the
    ``by`` columns, order (= -slope), theory (the sampler's order, given for karras spacing only),
    points, steps_min, steps_max."""
    rows = []
    for key, grp in table.groupby(list(by), sort=False):
        g = grp[(grp["steps"] >= min_steps) & (grp[error_col] > 0)]
        if len(g) < 2:
            continue
        slope = np.polyfit(np.log(g["nfe"].to_numpy(float)), np.log(g[error_col].to_numpy(float)), 1)[0]
        key = key if isinstance(key, tuple) else (key,)
        named = dict(zip(by, key))
        theory = (
            THEORY_ORDER.get(named.get("sampler"), np.nan) if named.get("spacing", "karras") == "karras" else np.nan
        )
        rows.append([*key, float(-slope), theory, len(g), int(g["steps"].min()), int(g["steps"].max())])
    return pd.DataFrame(rows, columns=[*by, "order", "theory", "points", "steps_min", "steps_max"])
