"""Files of a score-error run: one CSV per table, score_error.md (the tables a person reads),
score_error.json (every table and the settings) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffeval.io import atomic_write_text
from diffeval.plots import pyplot, save_figure


def _interval(v, lo, hi) -> str:
    return f"{v:.3g} [{lo:.3g}, {hi:.3g}]"


def error_markdown(table: pd.DataFrame, space: str) -> str:
    """Relative error (with 95% interval) per model (rows) and log-SNR (columns) in one space; a latent model's
    row says so ("sd3 (latent)": measured on its autoencoder's latents against their empirical optimum)."""
    t = table[table["space"] == space].copy()
    if "model_space" in t:
        t["model"] = [m if s != "latent" else f"{m} (latent)" for m, s in zip(t["model"], t["model_space"])]
    t["cell"] = [_interval(r.rel_error, r.rel_lo, r.rel_hi) for r in t.itertuples()]
    wide = t.pivot_table(index="model", columns="log_snr", values="cell", aggfunc="first", sort=False).fillna("")
    wide.columns = [f"{c:g}" for c in wide.columns]
    return wide.reset_index().to_markdown(index=False)


def exact_check(table: pd.DataFrame) -> pd.DataFrame:
    """For the exact-* models: the largest RMS error (sqrt of mse) over levels, per model and space."""
    t = table[table["model"].str.startswith("exact-")]
    if t.empty:
        return t
    return (t.assign(rms=np.sqrt(t["mse"])).groupby(["model", "space"], sort=False)["rms"].max()
            .unstack("space").reset_index())


def plot_score_error(table: pd.DataFrame, path: Path) -> Path | None:
    t = table[~table["model"].str.startswith("exact-")]
    if t.empty:
        return None
    plt = pyplot()
    spaces = ["eps", "x0"]
    fig, axes = plt.subplots(1, len(spaces), figsize=(5.5 * len(spaces), 4), squeeze=False)
    for ax, space in zip(axes[0], spaces):
        for model, g in t[t["space"] == space].groupby("model", sort=False):
            g = g.sort_values("log_snr")
            line, = ax.plot(g["log_snr"], g["rel_error"], marker="o", ms=3, label=model)
            ax.fill_between(g["log_snr"], g["rel_lo"], g["rel_hi"], color=line.get_color(), alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("log-SNR  log(alpha / sigma)")
        ax.set_ylabel(f"relative error in {space} space")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Score error against the exact denoiser ({table['data'].iloc[0]}); bands: 95% bootstrap")
    return save_figure(fig, path, dpi=110)


def plot_discretisation(exact: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
    groups = list(exact.groupby(["path", "spacing"], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4), squeeze=False)
    for ax, ((p, spacing), g) in zip(axes[0], groups):
        for sampler, s in g.groupby("sampler", sort=False):
            ax.loglog(s["nfe"], s["error_median"], marker="o", ms=3, label=sampler)
        x = np.array([g["nfe"].min(), g["nfe"].max()], dtype=float)
        y0 = g["error_median"].max()
        for order, style in ((1, ":"), (2, "--")):
            ax.loglog(x, y0 * (x / x[0]) ** -order, "k" + style, lw=0.8, label=f"order {order}")
        ax.set_title(f"{p}, {spacing} spacing")
        ax.set_xlabel("network evaluations (NFE)")
        ax.set_ylabel("median RMS error vs reference")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("Discretisation error with the exact score")
    return save_figure(fig, path, dpi=110)


def plot_model_discretisation(table: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
    models = list(table.groupby("model", sort=False))
    cols = min(3, len(models))
    rows = (len(models) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.6 * rows), squeeze=False)
    for ax, (model, g) in zip(axes.flat, models):
        for sampler, s in g.groupby("sampler", sort=False):
            line, = ax.loglog(s["nfe"], s["disc_error"], marker="o", ms=3, label=f"{sampler} discretisation")
            ax.loglog(s["nfe"], s["total_error"], ls="--", color=line.get_color(), lw=0.8)
        ax.axhline(g["model_error"].iloc[0], color="k", lw=1, label="model error")
        ax.set_title(model)
        ax.set_xlabel("NFE")
        ax.grid(alpha=0.3, which="both")
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Trained toys: discretisation error (solid), total error vs exact ODE (dashed), model error (black)")
    return save_figure(fig, path, dpi=110)


def plot_memorisation(per_sample: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    for source, g in per_sample.groupby("source", sort=False):
        ax.hist(g["ratio"].clip(0, 1), bins=bins, histtype="step", lw=1.5, label=source)
    ax.axvline(1 / 3, color="k", ls="--", lw=1, label="d1/d2 = 1/3")
    ax.set_xlabel("nearest / second-nearest training distance")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)


def plot_nearest_pairs(per_sample: pd.DataFrame, points: torch.Tensor, samples: dict[str, torch.Tensor], path: Path,
                       k: int = 8) -> Path:
    """Per source a row of k samples (top) over their nearest training images (bottom)."""
    plt = pyplot()
    sources = [s for s in samples if s in set(per_sample["source"])]
    fig, axes = plt.subplots(2 * len(sources), k, figsize=(k * 0.9, 2 * len(sources) * 0.95), squeeze=False)
    for r, source in enumerate(sources):
        g = per_sample[per_sample["source"] == source].head(k)
        for c, row in enumerate(g.itertuples()):
            for dr, img in ((0, samples[source][row.index]), (1, points[row.nearest])):
                ax = axes[2 * r + dr][c]
                ax.imshow(((img[0].float() + 1) / 2).clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[2 * r][c].set_title(f"{row.ratio:.2f}", fontsize=6)
        axes[2 * r][0].set_ylabel(source, fontsize=6)
        axes[2 * r + 1][0].set_ylabel("nearest", fontsize=6)
    return save_figure(fig, path, dpi=110)


def write_report(tables: dict[str, pd.DataFrame], out: str | Path, settings: dict) -> dict[str, Path]:
    """Write every table as CSV, the Markdown summary, the JSON and the plots; returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, table in tables.items():
        paths[name] = out / f"{name}.csv"
        atomic_write_text(paths[name], table.to_csv(index=False))
    md = [f"# Score-error analysis: {settings.get('data')}", ""]
    if "score_error" in tables:
        se = tables["score_error"]
        check = exact_check(se)
        if len(check):
            md += ["## The exact denoiser plugged in as a model (largest RMS error over levels)", "",
                   check.to_markdown(index=False, floatfmt=".2e"), ""]
        for space in ("eps", "x0"):
            md += [f"## Relative error in {space} space, 95% bootstrap interval (columns: log-SNR)", "",
                   error_markdown(se[~se["model"].str.startswith("exact-")], space), ""]
        p = plot_score_error(se, out / "score_error.png")
        if p:
            paths["score_error_png"] = p
    if "orders" in tables:
        md += ["## Fitted orders with the exact score (median error, steps >= 32)", "",
               tables["orders"].to_markdown(index=False, floatfmt=".3f"), ""]
        paths["discretisation_png"] = plot_discretisation(tables["discretisation_exact"], out / "discretisation.png")
    if "discretisation_models" in tables:
        t = tables["discretisation_models"]
        md += ["## Trained toys: discretisation vs model error (RMS, karras spacing)", "",
               t.drop(columns=["data"], errors="ignore").to_markdown(index=False, floatfmt=".4g"), ""]
        paths["discretisation_models_png"] = plot_model_discretisation(t, out / "discretisation_models.png")
        if "model_orders" in tables:
            md += [
                "## Trained toys: fitted orders of the discretisation error (own reference, steps >= 16)",
                "",
                tables["model_orders"].drop(columns=["data"], errors="ignore").to_markdown(index=False, floatfmt=".3f"),
                "",
            ]
    if "memorisation" in tables:
        md += ["## Memorisation (fraction of samples with d1/d2 < 1/3, Wilson 95% interval)", "",
               tables["memorisation"].to_markdown(index=False, floatfmt=".4g"), ""]
        paths["memorisation_png"] = plot_memorisation(tables["memorisation_samples"], out / "memorisation.png")
        samples = {k: v for k, v in getattr(tables, "samples", {}).items() if v is not None}
        if samples and getattr(tables, "points", None) is not None:
            paths["nearest_png"] = plot_nearest_pairs(tables["memorisation_samples"], tables.points, samples,
                                                      out / "memorisation_nearest.png")
            md += ["![samples over their nearest training images](memorisation_nearest.png)", ""]
    md += ["## Settings", "", "```json", json.dumps(settings, indent=1), "```", ""]
    paths["md"] = out / "score_error.md"
    atomic_write_text(paths["md"], "\n".join(md))
    blob = {"settings": settings, "tables": {k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}}
    paths["json"] = out / "score_error.json"
    atomic_write_text(paths["json"], json.dumps(blob, indent=1, default=str))
    return paths


def summary_text(tables: dict[str, pd.DataFrame], paths: dict[str, Path]) -> str:
    """What the CLI prints: the fitted orders and the memorisation summary (where measured), then the paths."""
    parts = [tables[name].to_string(index=False) for name in ("orders", "memorisation") if name in tables]
    return "\n".join([*parts, json.dumps({k: str(v) for k, v in paths.items()}, indent=1)])


def score_error_job(config, out: str | Path) -> str:
    """``diffeval audit score-error``: run the analyses of ``config`` (a ScoreErrorConfig) holding the lock on
    ``out`` (and the toys folder), write the report; returns the lines the CLI prints."""
    from dataclasses import asdict

    from diffeval.io import folders_locked

    from .run import run_score_error

    with folders_locked(out, config.toys_dir, command="audit score-error"):
        tables = run_score_error(config, out)
        return summary_text(tables, write_report(tables, out, asdict(config)))
