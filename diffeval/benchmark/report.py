"""Writing the benchmark table (CSV, Markdown, JSON, all atomic) and the FID-against-NFE plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffeval.io import write_table
from diffeval.plots import pyplot, save_figure

MARKDOWN_COLUMNS = [
    "generator", "sampler", "steps", "nfe", "guidance", "n_samples", "fid", "fid_lo", "fid_hi", "kid", "kid_std",
    "is_mean", "precision", "recall", "density", "coverage", "clip_score", "lpips_diversity", "cond_accuracy",
    "samples_per_s",
]


def write_tables(table: pd.DataFrame, out: str | Path, settings: dict) -> dict[str, Path]:
    """benchmark.csv, benchmark.md (main columns, NaN-only columns dropped, failed rows listed) and
    benchmark.json (all rows plus the settings); returns the paths."""
    shown = table[[c for c in MARKDOWN_COLUMNS if c in table and table[c].notna().any()]].astype(object)
    shown = shown.where(shown.notna(), "")
    md = shown.to_markdown(index=False, floatfmt=".4g")
    errors = table[table["error"].notna()] if "error" in table else table.iloc[0:0]
    if len(errors):
        md += "\n\nFailed rows:\n" + "\n".join(f"- {r.generator}: {r.error}" for r in errors.itertuples())
    return write_table(table, out, "benchmark", settings, markdown=md)


SUMMARY_COLUMNS = ("generator", "sampler", "steps", "nfe", "guidance", "fid", "kid", "precision", "recall",
                   "cond_accuracy", "samples_per_s")


def summary_text(table: pd.DataFrame, out: str | Path) -> tuple[str, str | None]:
    """What the CLI prints after a run (the main columns and where the files are), and an error line when
    some rows failed (None when all succeeded)."""
    shown = [c for c in SUMMARY_COLUMNS if table[c].notna().any()]
    text = table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    text += f"\n-> {Path(out) / 'benchmark.csv'} (.md, .json), grids/, fid_vs_nfe.png"
    failed = table[table["error"].notna()]
    if not len(failed):
        return text, None
    return text, f"{len(failed)} of {len(table)} rows failed (see the error column): {failed['error'].iloc[0]}"


def plot_fid_vs_nfe(table: pd.DataFrame, path: str | Path) -> Path | None:
    """FID (with its half-sampling 95% interval) against NFE, one line per generator and sampler; the real-data
    floor as a horizontal line. None when no generator row has an NFE."""
    plt = pyplot()

    gen = table[table["nfe"].notna() & table["fid"].notna()]
    if gen.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for (name, sampler), part in gen.groupby(["generator", "sampler"], sort=False):
        part = part.sort_values("nfe")
        err = (
            np.vstack([part["fid"] - part["fid_lo"], part["fid_hi"] - part["fid"]])
            if part["fid_lo"].notna().all()
            else None
        )
        ax.errorbar(part["nfe"], part["fid"], yerr=err, marker="o", capsize=3, label=f"{name} ({sampler})")
    for r in table[table["family"] == "real"].itertuples():
        ax.axhline(r.fid, color="grey", ls="--", lw=1, label=f"{r.generator} (floor)")
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations per image (NFE)")
    ax.set_ylabel(f"FID ({gen['feature_space'].iloc[0]} features)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
