"""CLI group ``diffeval audit``: score-error analysis (and, later, bias audits)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np


def _levels(text: str) -> list[float]:
    """"-6:6:1" (start:stop:step, stop included) or "-2,0,2"."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError
            return [float(v) for v in np.arange(start, stop + step / 2, step)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give start:stop:step (step > 0) or a comma list of log-SNR values") from None


@click.group()
def audit() -> None:
    """Audits of generators: score error against exact ground truth, sampler error, memorisation."""


@audit.command("score-error")
@click.option("--data", type=click.Choice(["gmm2d", "gmm64", "fashion"]), default="gmm2d", show_default=True,
              help="Ground truth: an exact Gaussian mixture, or the Fashion-MNIST training set's empirical optimum.")
@click.option("--generator", "-g", "generators", multiple=True,
              help="Toy name (mixtures), 'exact', bundled name or checkpoint dir; repeat. Default: all for the data.")
@click.option("--analyses", default=None, help="Comma list of error, discretisation, memorisation (default: all that apply).")
@click.option("--n", type=int, default=None, help="Samples per level / per model (default 1000 on mixtures, 200 on fashion).")
@click.option("--levels", default="-6:6:1", show_default=True, help="log-SNR grid: start:stop:step or a comma list.")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for the intervals.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--toys-dir", default=None, help="Where toy generators are trained/cached (default OUT/cache/toys).")
@click.option("--data-dir", default=None, help="Folder with the Fashion-MNIST files (else DIFFEVAL_DATA / Debian package).")
@click.option("--out", "out_dir", default="score_error", show_default=True, type=click.Path(file_okay=False))
def score_error(data, generators, analyses, n, levels, n_boot, seed, toys_dir, data_dir, out_dir) -> None:
    """Score error per noise level, discretisation error of the samplers, memorisation.

    Writes one CSV per table, score_error.md, score_error.json and PNG plots into OUT; finished parts
    are cached in OUT/cache, so an interrupted run resumes.
    """
    from audits.score_error.report import write_report
    from audits.score_error.run import ScoreErrorConfig, run_score_error

    config = ScoreErrorConfig(
        data=data, generators=list(generators), analyses=[a.strip() for a in analyses.split(",")] if analyses else [],
        n=n, levels=_levels(levels), n_boot=n_boot, seed=seed, toys_dir=toys_dir, data_dir=data_dir)
    out = Path(out_dir)
    tables = run_score_error(config, out)
    settings = asdict(config)
    paths = write_report(tables, out, settings)
    if "orders" in tables:
        click.echo(tables["orders"].to_string(index=False))
    if "memorisation" in tables:
        click.echo(tables["memorisation"].to_string(index=False))
    click.echo(json.dumps({k: str(v) for k, v in paths.items()}, indent=1))
