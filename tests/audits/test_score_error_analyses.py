"""Score-error tables, discretisation orders, toy training and the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from diffeval.audits.score_error.discretisation import (
    exact_discretisation_table,
    fit_orders,
    model_discretisation_table,
    nfe,
    solver_times,
)
from diffeval.audits.score_error.error import bootstrap_interval, score_error_table, trained_range
from diffeval.audits.score_error.gmm import gmm2d, gmm64
from diffeval.audits.score_error.models import ExactModel, GeneratorModel
from diffeval.audits.score_error.toys import ToySpec, train_toy
from diffeval.cli import main
from diffeval.generators.schedules import NoiseSchedule, ScheduleConfig

PATHS = {
    "eps": ScheduleConfig("linear", 1000),
    "v": ScheduleConfig("scaled_linear", 1000),
    "x0": ScheduleConfig("cosine", None),
    "velocity": ScheduleConfig("rectified_flow", None),
}


@pytest.mark.parametrize("parameterization", list(PATHS))
@pytest.mark.parametrize("make", [gmm2d, gmm64])
def test_exact_score_as_a_model_has_zero_error_at_every_level(parameterization, make):
    truth = make()
    schedule = NoiseSchedule(PATHS[parameterization])
    table = score_error_table(ExactModel(truth, schedule, parameterization), truth, truth.sample,
                              np.arange(-6.0, 6.5, 1.0), n=200, n_boot=50)
    lo, hi = trained_range(schedule)
    assert set(table["log_snr"]) == {v for v in np.arange(-6.0, 6.5, 1.0) if lo <= v <= hi}
    assert set(table["space"]) == {"score", "eps", "x0", "v"}
    assert (np.sqrt(table["mse"]) < 1e-10).all()
    assert (table["mse_lo"] <= table["mse"] + 1e-30).all() and (table["mse"] <= table["mse_hi"] + 1e-30).all()


def test_a_wrong_model_has_the_error_we_planted():
    """A model that predicts eps_hat + 0.1 has MSE 0.01 in eps space at every level."""
    truth = gmm2d()
    schedule = NoiseSchedule(ScheduleConfig("cosine", None))
    exact = ExactModel(truth, schedule, "eps")

    class Shifted:
        name, parameterization = "shifted", "eps"

        def __init__(self):
            self.schedule = schedule

        def predict(self, x, t):
            from diffeval.generators.parameterization import to_prediction

            p = exact.predict(x, t)
            return to_prediction(p.eps + 0.1, x, p.alpha, p.sigma, "eps")

    table = score_error_table(Shifted(), truth, truth.sample, [-2.0, 0.0, 2.0], n=100, n_boot=50)
    eps = table[table["space"] == "eps"]
    assert np.allclose(eps["mse"], 0.01, rtol=1e-9)
    score = table[table["space"] == "score"]
    assert np.allclose(score["mse"], 0.01 / score["sigma"] ** 2, rtol=1e-9)


def test_bootstrap_interval_covers_the_mean_about_95_percent():
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(200):
        e = rng.exponential(1.0, 200)
        lo, hi, *_ = bootstrap_interval(e, np.ones_like(e), 400, i)
        hits += lo <= 1.0 <= hi
    assert 0.88 <= hits / 200 <= 0.99


def test_discretisation_orders_with_the_exact_score():
    truth = gmm2d()
    table = exact_discretisation_table(
        truth,
        NoiseSchedule(ScheduleConfig("linear", None)),
        truth.sample,
        samplers=("euler", "heun"),
        steps=(32, 64, 128, 256, 512),
        spacings=("karras",),
        n=64,
    )
    orders = fit_orders(table).set_index("sampler")["order"]
    assert abs(orders["euler"] - 1) < 0.2 and abs(orders["heun"] - 2) < 0.2
    assert (table.groupby("sampler")["error_median"].apply(lambda s: s.is_monotonic_decreasing)).all()


def test_solver_grids_and_nfe():
    s = NoiseSchedule(ScheduleConfig("rectified_flow", None))
    karras = solver_times(s, 8, "karras")
    assert len(karras) == 8 and float(karras[-1]) > 0  # the final jump to 0 is left out
    uniform = solver_times(s, 8, "uniform")
    assert len(uniform) == 9 and float(uniform[-1]) == 0.0
    assert nfe("heun", karras) == 14 and nfe("heun", uniform) == 15 and nfe("euler", uniform) == 8


def test_toy_training_learns_and_is_cached(tmp_path):
    truth = gmm2d()
    spec = ToySpec("mlp-eps", "mlp", "eps", ScheduleConfig("cosine", None), {"width": 64, "depth": 2}, steps=300,
                   batch_size=128, lr=2e-3)
    g = train_toy(spec, truth, tmp_path / "toy", n_train=4000, progress=False)
    model = GeneratorModel(g, "toy")
    table = score_error_table(model, truth, truth.sample, [0.0, 2.0], n=300, n_boot=50)
    eps = table[table["space"] == "eps"].set_index("log_snr")["rel_error"]
    assert (eps < 0.5).all()  # the untrained (zero-output) model has relative eps error 1
    mtime = (tmp_path / "toy" / "model.safetensors").stat().st_mtime_ns
    again = train_toy(spec, truth, tmp_path / "toy", n_train=4000, progress=False)
    assert (tmp_path / "toy" / "model.safetensors").stat().st_mtime_ns == mtime
    x = torch.randn(4, 2, 1, 1)
    assert torch.equal(again.denoise(x, 0.5).eps, g.denoise(x, 0.5).eps)
    disc = model_discretisation_table(model, truth, truth.sample, samplers=("euler",), steps=(4, 16), n=32,
                                      model_reference_steps=64)
    assert (disc["model_error"] > 0).all() and disc["disc_error"].iloc[0] > disc["disc_error"].iloc[1]


def test_cli_score_error_on_a_mixture(tmp_path):
    out = tmp_path / "se"
    r = CliRunner().invoke(main, ["audit", "score-error", "--data", "gmm2d", "-g", "exact", "--n", "50", "--n-boot",
                                  "20", "--levels", "-2:2:2", "--analyses", "error", "--out", str(out)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "score_error.csv")
    assert set(table["model"]) == {"exact-eps", "exact-v", "exact-x0", "exact-velocity"}
    assert (np.sqrt(table["mse"]) < 1e-10).all()
    assert "exact denoiser plugged in" in (out / "score_error.md").read_text()
    assert json.loads((out / "score_error.json").read_text())["settings"]["data"] == "gmm2d"
    cached = list((out / "cache").glob("error-*.csv"))
    assert len(cached) == 4


@pytest.mark.parametrize("args,message", [
    (["--levels", "a:b:c"], "start:stop:step"),
    (["--analyses", "memorisation"], "use --data fashion"),
    (["--analyses", "nonsense"], "unknown analysis"),
    (["--data", "fashion", "--analyses", "discretisation"], "exact ODE"),
    (["-g", "no-such-generator", "--analyses", "error"], "unknown generator"),
])
def test_cli_score_error_bad_input_is_one_line(tmp_path, args, message):
    r = CliRunner().invoke(main, ["audit", "score-error", "--n", "20", "--out", str(tmp_path / "o"), *args])
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output


def test_cli_fashion_against_the_empirical_optimum(tmp_path):
    """The positive control memorises every sample; a bundled generator does not; its score error is
    measured against the exact empirical optimum; a rerun reuses the cache."""
    out = tmp_path / "fashion"
    args = ["audit", "score-error", "--data", "fashion", "-g", "sd3-reflow", "--n", "12", "--levels", "-1,1",
            "--n-boot", "20", "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    mem = pd.read_csv(out / "memorisation.csv").set_index("source")
    assert mem.loc["empirical optimum", "memorised_fraction"] == 1.0
    assert mem.loc["sd3-reflow", "memorised_fraction"] < 0.5
    se = pd.read_csv(out / "score_error.csv")
    assert set(se["log_snr"]) == {-1.0, 1.0} and (se["rel_error"] > 0).all()
    assert (out / "memorisation_nearest.png").stat().st_size > 0
    before = sorted(p.stat().st_mtime_ns for p in (out / "cache").iterdir())
    assert CliRunner().invoke(main, args).exit_code == 0
    assert sorted(p.stat().st_mtime_ns for p in (out / "cache").iterdir()) == before
