"""Tables and plots of a robustness run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffeval.io import atomic_write_text, write_table
from diffeval.plots import pyplot, save_figure

MD_COLUMNS = ["generator", "pattern", "attack", "auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr", "accuracy",
              "fpr_at_alpha", "detect_s_per_image"]
# the per-key figures summarised over keys, and which way is worse: "min" (higher is better) or "max"
OVER_KEYS = {"auc": "min", "tpr_at_1pct_fpr": "min", "fpr_at_alpha": "max", "wrong_key_fpr": "max",
             "identification": "min"}


def write_robustness(table: pd.DataFrame, scores: pd.DataFrame, quality: pd.DataFrame, out: str | Path,
                     settings: dict) -> dict[str, Path]:
    """robustness.{csv,md,json}, scores.csv, quality.{csv,md,json} and the plots; returns the paths."""
    out = Path(out)
    keyed = "key" in table and table["key"].nunique() > 1
    if keyed:
        md = ("Over the keys (median, 10th percentile ranked from the worst key, worst key; per-key rows in "
              "robustness.csv):\n\n" + over_keys(table).to_markdown(index=False, floatfmt=".4g"))
    else:
        md = table[[c for c in MD_COLUMNS if c in table]].to_markdown(index=False, floatfmt=".4g")
    summary = paper_average(table)
    if len(summary):
        md += ("\n\nMean over the attacks (clean excluded)" + (", per key, then over the keys" if keyed else "")
               + ":\n\n" + summary.to_markdown(index=False, floatfmt=".4g"))
    if len(quality):
        md += "\n\nQuality cost (bundled judge features):\n\n" + quality.to_markdown(index=False, floatfmt=".4g")
    paths = write_table(table, out, "robustness", settings, markdown=md)
    paths["scores"] = atomic_write_text(out / "scores.csv", scores.to_csv(index=False))
    if len(quality):
        paths["quality"] = write_table(quality, out, "quality", settings)["csv"]
    roc = plot_roc(scores, out / "roc.png")
    if roc:
        paths["roc"] = roc
    sweep = plot_strength(table, out / "tpr_vs_strength.png")
    if sweep:
        paths["tpr_vs_strength"] = sweep
    return paths


def over_keys(table: pd.DataFrame, by: tuple[str, ...] = ("generator", "pattern", "attack"),
              figures: dict[str, str] | None = None) -> pd.DataFrame:
    """Per ``by`` group of per-key rows: ``keys`` (how many) and, for each figure of OVER_KEYS present,
    ``<figure>_median``, ``<figure>_p10`` (the 10th percentile of the keys ranked from the worst: for AUC, TPR and
    identification the 10th percentile, for the false-positive rates the 90th; linear interpolation) and
    ``<figure>_worst`` (the worst key's value). ``figures``: {column: "min" or "max", the worse direction}
    (default OVER_KEYS)."""
    if figures is None:  # identification among m candidates (--identify) is summarised like identification
        figures = {**OVER_KEYS, **{c: "min" for c in table.columns if c.startswith("identification_")}}
    figures = {f: w for f, w in figures.items() if f in table}
    rows = []
    for group, d in table.groupby(list(by), sort=False):
        row = dict(zip(by, group if isinstance(group, tuple) else (group,)))
        row["keys"] = len(d)
        for f, worst in figures.items():
            v = d[f].to_numpy(dtype=float)
            if np.isnan(v).all():
                row.update({f"{f}_median": np.nan, f"{f}_p10": np.nan, f"{f}_worst": np.nan})
                continue
            v = v[~np.isnan(v)]
            row[f"{f}_median"] = float(np.median(v))
            row[f"{f}_p10"] = float(np.percentile(v, 10 if worst == "min" else 90))
            row[f"{f}_worst"] = float(v.min() if worst == "min" else v.max())
        rows.append(row)
    return pd.DataFrame(rows)


def paper_average(table: pd.DataFrame) -> pd.DataFrame:
    """Per (generator, pattern): mean AUC, TPR@1%FPR and FPR over the attacked rows (clean excluded) of each key;
    with several keys, those means summarised over the keys (``over_keys``: ``mean_auc_median``, ...)."""
    attacked = table[table["kind"] != "none"]
    if attacked.empty:
        return pd.DataFrame()
    by = ["generator", "pattern", *(["key"] if "key" in attacked else [])]
    agg = attacked.groupby(by, sort=False)[["auc", "tpr_at_1pct_fpr", "fpr_at_alpha"]].mean()
    agg = agg.rename(columns=lambda c: f"mean_{c}").reset_index()
    if "key" not in agg or agg["key"].nunique() == 1:
        return agg.drop(columns=["key"], errors="ignore")
    return over_keys(agg, by=("generator", "pattern"),
                     figures={"mean_auc": "min", "mean_tpr_at_1pct_fpr": "min", "mean_fpr_at_alpha": "max"})


def plot_roc(scores: pd.DataFrame, path: Path) -> Path | None:
    """One panel per (generator, pattern), one ROC curve (log FPR) per attack, pooled over the keys (each key's
    marked images against the unmarked ones tested with that key)."""
    if scores.empty:
        return None
    plt = pyplot()
    from sklearn.metrics import roc_curve

    panels = list(scores.groupby(["generator", "pattern"], sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, ((gname, pattern), df) in zip(axes[0], panels):
        for attack, d in df.groupby("attack", sort=False):
            fpr, tpr, _ = roc_curve(d["marked"].astype(int), d["score"])
            ax.plot(np.maximum(fpr, 1e-4), tpr, label=attack, lw=1.2)
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
        ax.set_title(f"{gname} · {pattern}")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    return save_figure(fig, path, dpi=120)


def plot_strength(table: pd.DataFrame, path: Path) -> Path | None:
    """TPR@1%FPR against strength, one panel per attack kind with >= 2 strengths (WAVES-style sweeps)."""
    kinds = [k for k, d in table.groupby("kind", sort=False) if d["strength"].nunique() >= 2]
    if not kinds:
        return None
    plt = pyplot()

    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.0), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        d = table[table["kind"] == kind].sort_values("strength")
        for (gname, pattern), line in d.groupby(["generator", "pattern"], sort=False):
            ax.plot(line["strength"], line["tpr_at_1pct_fpr"], marker="o", ms=3, label=f"{gname} {pattern}")
        ax.set_title(kind)
        ax.set_xlabel("strength")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("TPR at 1% FPR")
    axes[0][-1].legend(fontsize=6)
    return save_figure(fig, path, dpi=120)


def write_forgery(table: pd.DataFrame, out: str | Path, settings: dict) -> dict[str, Path]:
    """forgery.{csv,md,json} (per-key rows in the CSV and JSON, the summary over keys in the Markdown) and
    forged_acceptance.png; returns the paths."""
    from .forgery import forgery_summary

    out = Path(out)
    alpha = float(table["alpha"].iloc[0]) if len(table) else float("nan")
    md = (f"Fraction of images the victim's detector accepts (p < {alpha:g}; strict: p < 1e-6), over the keys "
          "(per-key rows in forgery.csv). n_known 0: the victim's own marked images (power) and the attacker's "
          "clean images (false positives).\n\n" + forgery_summary(table).to_markdown(index=False, floatfmt=".3g"))
    paths = write_table(table, out, "forgery", settings, markdown=md)
    plot = plot_forgery(table, out / "forged_acceptance.png")
    if plot:
        paths["plot"] = plot
    return paths


def plot_forgery(table: pd.DataFrame, path: Path) -> Path | None:
    """Forged acceptance against the number of known marked images: median over keys, min-max band, one panel
    per scheme, the marked and clean rates as dashed lines."""
    forged = table[table["n_known"] > 0]
    if not len(forged):
        return None
    plt = pyplot()
    schemes = list(dict.fromkeys(forged["scheme"]))
    fig, axes = plt.subplots(1, len(schemes), figsize=(4.2 * len(schemes), 3.4), squeeze=False)
    for ax, scheme in zip(axes[0], schemes):
        d = table[table["scheme"] == scheme]
        for attack, line in d[d["n_known"] > 0].groupby("attack", sort=False):
            s = line.groupby("n_known")["accepted"].agg(["median", "min", "max"])
            ax.plot(s.index, s["median"], marker="o", ms=3, label=attack)
            ax.fill_between(s.index, s["min"], s["max"], alpha=0.2)
        for ref, style in (("marked", "--"), ("clean", ":")):
            rate = d.loc[d["attack"] == ref, "accepted"]
            if len(rate):
                ax.axhline(float(rate.median()), color="grey", ls=style, lw=1, label=f"{ref} (median)")
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{d['generator'].iloc[0]} · {scheme}")
        ax.set_xlabel("known marked images N")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("forged images accepted")
    axes[0][-1].legend(fontsize=6)
    return save_figure(fig, path, dpi=120)
