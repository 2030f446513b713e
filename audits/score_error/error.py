"""Score error per noise level: how far a model's denoiser is from the exact one.

At each log-SNR lambda = log(alpha / sigma) of a grid, x0 is drawn from the data, x = alpha x0 +
sigma eps, and the model's prediction at (x, t(lambda)) is compared with the exact posterior in four
spaces: score (grad log p_t), eps (E[eps|x]), x0 (E[x0|x]) and v (alpha eps - sigma x0). Errors are
per coordinate; 95% intervals come from a percentile bootstrap over the samples.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from .models import Model, Truth

SPACES = ("score", "eps", "x0", "v")
COLUMNS = ["model", "parameterization", "log_snr", "t", "alpha", "sigma", "space", "mse", "mse_lo", "mse_hi",
           "rel_error", "rel_lo", "rel_hi", "n"]


def default_levels() -> np.ndarray:
    """The log-SNR grid: -6 to 6 in steps of 1 (levels outside a model's trained range are skipped)."""
    return np.arange(-6.0, 6.5, 1.0)


def trained_range(schedule) -> tuple[float, float]:
    """(lowest, highest) log-SNR a model on ``schedule`` was trained on."""
    hi = float(schedule.log_snr(torch.tensor(schedule.t_min_train, dtype=torch.float64)))
    t_top = 1.0 - (1e-3 if schedule.is_flow else 0.0)
    lo = float(schedule.log_snr(torch.tensor(t_top, dtype=torch.float64)))
    return lo, hi


def _space(p, name: str) -> torch.Tensor:
    return getattr(p, name).reshape(p.x0.shape[0], -1)


def bootstrap_interval(
    errors: np.ndarray, norms: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float, float]:
    """95% percentile intervals of mean(errors) and sum(errors)/sum(norms) over resampled rows."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errors), size=(n_boot, len(errors)))
    e, m = errors[idx].sum(1), norms[idx].sum(1)
    mse = e / len(errors)
    rel = e / np.where(m > 0, m, np.nan)
    return (*np.quantile(mse, [0.025, 0.975]), *np.nanquantile(rel, [0.025, 0.975]))


def score_error_table(
    model: Model,
    truth: Truth,
    sample_x0: Callable[[int, int], torch.Tensor],
    levels: np.ndarray | None = None,
    n: int = 1000,
    seed: int = 0,
    n_boot: int = 1000,
    batch_size: int = 500,
) -> pd.DataFrame:
    """One row per (log-SNR level, space) with columns ``COLUMNS``.

    sample_x0(n, seed) -> (n, ...) model-space data points. mse: mean squared error per coordinate;
    rel_error: sum of squared errors / sum of squared true values; *_lo/*_hi: 95% bootstrap bounds.
    The same x0 and eps are used for every model at a level (seeded by ``seed`` and the level index).
    """
    levels = default_levels() if levels is None else np.asarray(levels, dtype=float)
    lo, hi = trained_range(model.schedule)
    rows = []
    for i, lam in enumerate(levels):
        if not lo - 1e-9 <= lam <= hi + 1e-9:
            continue
        t = float(model.schedule.t_from_log_snr(torch.tensor(lam, dtype=torch.float64)))
        alpha, sigma = (float(v) for v in model.schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
        x0 = sample_x0(n, seed * 1000 + i).to(torch.float64)
        g = torch.Generator().manual_seed(seed * 1000 + i + 500)
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        x = alpha * x0 + sigma * eps
        errs = {s: [] for s in SPACES}
        norms = {s: [] for s in SPACES}
        for start in range(0, n, batch_size):
            xb = x[start : start + batch_size]
            true = truth.posterior(xb, alpha, sigma)
            pred = model.predict(xb.reshape(xb.shape[0], *x0.shape[1:]), t)
            for s in SPACES:
                a, b = _space(pred, s), _space(true, s)
                errs[s].append(((a - b) ** 2).mean(1))
                norms[s].append((b**2).mean(1))
        for j, s in enumerate(SPACES):
            e, m = torch.cat(errs[s]).numpy(), torch.cat(norms[s]).numpy()
            mse_lo, mse_hi, rel_lo, rel_hi = bootstrap_interval(e, m, n_boot, seed * 7 + i * 11 + j)
            rows.append([model.name, model.parameterization, float(lam), t, alpha, sigma, s, float(e.mean()), mse_lo,
                         mse_hi, float(e.sum() / m.sum()) if m.sum() > 0 else float("nan"), rel_lo, rel_hi, n])
    return pd.DataFrame(rows, columns=COLUMNS)
