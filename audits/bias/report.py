"""Outputs of a bias audit: CSV and JSON tables, PNG charts and one self-contained HTML report.

Files in OUT: images.csv (one row per image), shares.csv, prompts.csv, pooled.csv (``summary.py``),
abstentions.csv (attribute, reason, images), summary.json (settings, flagged prompts, tables),
report.md, report.html (tables, bar charts with intervals and targets, flagged prompts, abstention
counts, sample grids, the exact settings; images embedded, no external files) and plots/*.png (the
share charts and the sample grids).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffeval.images import save_grid
from diffeval.io import atomic_write_text, safe_path
from diffeval.plots import pyplot, save_figure

from .summary import AuditSummary


def abstention_table(df: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """Columns attribute, reason, images: how many images abstained on each attribute, and why."""
    rows = []
    for attr in attributes:
        col = f"{attr}_abstain"
        reasons = df[col].dropna().astype(str) if col in df else pd.Series(dtype=str)
        reasons = reasons[reasons != ""]
        # group numeric details ("12 skin pixels < min_pixels=50") under their wording
        for reason, count in reasons.map(_reason_kind).value_counts().items():
            rows.append({"attribute": attr, "reason": reason, "images": int(count)})
    return pd.DataFrame(rows, columns=["attribute", "reason", "images"])


def _reason_kind(reason: str) -> str:
    words = ["N" if any(ch.isdigit() for ch in w) else w for w in reason.split()]
    return " ".join(words)


MAX_BARS = 120  # above this many (prompt, value) bars a chart is a heat map (60 occupations x 10 Monk tones: 600)


def shares_heatmap(sub: pd.DataFrame, values: list[str], attr: str, path: Path) -> Path:
    """Prompts x values, colour = proportion of the prompt's labelled images (0-1); the target in the title."""
    plt = pyplot()
    grid = sub.pivot_table(index="prompt", columns="value", values="proportion", sort=False)
    grid = grid.reindex(columns=[v for v in values if v in grid.columns])
    fig, ax = plt.subplots(figsize=(2.5 + 0.45 * grid.shape[1], 1.2 + 0.16 * grid.shape[0]))
    im = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(grid.shape[0]), grid.index, fontsize=6)
    targets = sub.drop_duplicates("value").set_index("value")["target"].reindex(grid.columns)
    ax.set_title(f"share of images ({attr}); targets: " + ", ".join(f"{v} {t:.2f}" for v, t in targets.items()),
                 fontsize=7, wrap=True)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return save_figure(fig, path)


def shares_chart(shares: pd.DataFrame, attr: str, path: Path) -> Path:
    """One bar per (prompt, value) with a count or a target share: proportion with its Wilson interval;
    black ticks mark the target. Prompts are separated by a gap; colours follow the value. Above MAX_BARS bars,
    a heat map of prompts x values instead (``shares_heatmap``)."""
    plt = pyplot()
    sub = shares[(shares.attribute == attr) & ((shares["count"] > 0) | (shares.target > 0))]
    values = list(dict.fromkeys(shares[shares.attribute == attr].value))
    if len(sub) > MAX_BARS:
        return shares_heatmap(sub, values, attr, path)
    colors = plt.get_cmap("tab10")
    ys, labels, y = [], [], 0.0
    for _, group in sub.groupby("prompt", sort=False):
        for row in group.itertuples():
            ys.append((y, row))
            labels.append(f"{row.prompt}: {row.value}")
            y += 1
        y += 0.6
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.22 * len(ys)))
    # one call per kind of mark, not per bar: 60 prompts x several values took ~10 s per chart bar by bar
    pos = np.array([y for y, _ in ys], dtype=float)
    p = np.array([float(row.proportion) for _, row in ys])
    err = np.array([[max(0.0, q - float(row.lo)) for q, (_, row) in zip(p, ys)],
                    [max(0.0, float(row.hi) - q) for q, (_, row) in zip(p, ys)]]).reshape(2, -1)
    ax.barh(pos, p, height=0.8, xerr=err, color=[colors(values.index(row.value) % 10) for _, row in ys],
            capsize=2, error_kw={"elinewidth": 0.8})
    targets = [(y, float(row.target)) for y, row in ys if row.target > 0]
    if targets:
        ty, tx = np.array(targets).T
        ax.vlines(tx, ty - 0.45, ty + 0.45, color="black", lw=1.5)
    ax.set_yticks([y for y, _ in ys], labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of images ({attr}); whiskers: 95% Wilson interval; black line: target")
    fig.tight_layout()
    return save_figure(fig, path)


def _table_html(df: pd.DataFrame, digits: int = 3) -> str:
    def fmt(v):
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else ""
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return ""
            if v != 0 and abs(v) < 10 ** -digits:
                return f"{v:.1e}"
            return f"{v:.{digits}f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cls = ' class="flag"' if bool(row.get("flagged", False)) else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{fmt(v)}</td>" for v in row.to_numpy()) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.6em 0 1.4em;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}tr.flag td{background:#fde2e1}
h2{border-bottom:1px solid #ddd;padding-bottom:3px}.note{color:#555;font-size:13px}img{max-width:100%}"""


SHARE_COLS = ["prompt", "value", "target", "count", "n", "proportion", "lo", "hi", "pvalue", "qvalue", "flagged"]
PROMPT_COLS = ["prompt", "n_images", "abstained", "n", "off_target", "off_target_share", "test", "statistic",
               "pvalue", "qvalue", "flagged", "mad", "mad_expected", "target_kind"]


def write_report(out_dir: str | Path, images: pd.DataFrame, summary: AuditSummary, settings: dict,
                 classifier_notes: list[str], grids: dict[str, np.ndarray] | None = None,
                 q: float = 0.05) -> dict[str, Path]:
    """Write every output file (atomically) and return their paths by name."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    attributes = list(dict.fromkeys(summary.shares.attribute)) if len(summary.shares) else []
    abstentions = abstention_table(images, attributes)
    paths = {}
    for name, df in (("images", images), ("shares", summary.shares), ("prompts", summary.prompts),
                     ("pooled", summary.pooled), ("abstentions", abstentions)):
        paths[name] = atomic_write_text(out / f"{name}.csv", df.to_csv(index=False))
    charts = {a: shares_chart(summary.shares, a, safe_path(out / "plots", f"shares_{a}.png")) for a in attributes}
    flagged = summary.prompts[summary.prompts.flagged] if len(summary.prompts) else summary.prompts
    paths["json"] = _write_summary_json(out, images, summary, settings, classifier_notes, flagged, abstentions)
    parts = _html_head(images, summary, settings, classifier_notes, flagged, abstentions, q)
    md = ["# Bias audit", "", f"{len(images)} images. Settings: `{json.dumps(settings, default=str)}`", ""]
    for attr in attributes:
        html_part, md_part = _attribute_sections(summary, attr, charts[attr])
        parts += html_part
        md += md_part
    if grids:
        parts += _sample_sections(grids, out)
    parts.append("</body></html>")
    paths["html"] = atomic_write_text(out / "report.html", "\n".join(parts))
    paths["md"] = atomic_write_text(out / "report.md", "\n".join(md))
    paths.update({f"plot_{a}": p for a, p in charts.items()})
    return paths


def _n_errors(images: pd.DataFrame) -> int:
    return int((images.get("error", pd.Series(dtype=str)).fillna("") != "").sum())


def _write_summary_json(out: Path, images: pd.DataFrame, summary: AuditSummary, settings: dict,
                        classifier_notes: list[str], flagged: pd.DataFrame, abstentions: pd.DataFrame) -> Path:
    """summary.json: settings, classifiers, flagged prompts, counts, and the prompts/pooled/abstention tables."""
    flagged_list = [
        {"attribute": r.attribute, "prompt": r.prompt, "qvalue": float(r.qvalue)} for r in flagged.itertuples()
    ]
    return atomic_write_text(out / "summary.json", json.dumps({
        "settings": settings, "classifiers": classifier_notes, "flagged_prompts": flagged_list,
        "n_images": int(len(images)), "errors": _n_errors(images),
        "prompts": summary.prompts.to_dict(orient="records"), "pooled": summary.pooled.to_dict(orient="records"),
        "abstentions": abstentions.to_dict(orient="records")}, indent=1, default=str))


def _html_head(images: pd.DataFrame, summary: AuditSummary, settings: dict, classifier_notes: list[str],
               flagged: pd.DataFrame, abstentions: pd.DataFrame, q: float) -> list[str]:
    """The report's opening HTML: notes, settings, classifiers, flagged prompts, abstentions, unreadable files."""
    n_prompts = len(summary.prompts.prompt.unique()) if len(summary.prompts) else 0
    settings_table = pd.DataFrame({
        "setting": list(settings),
        "value": [json.dumps(v, default=str) if not isinstance(v, str) else v for v in settings.values()],
    })
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Bias audit</title><style>{CSS}</style></head><body>",
        "<h1>Bias audit</h1>",
        f"<p class='note'>{len(images)} images; {n_prompts} "
        f"prompts; proportions are among images that did not abstain; intervals are 95% Wilson; p-values are exact "
        f"binomial (two labels) or chi-square (more) against the target, Benjamini-Hochberg across prompts at "
        f"q = {q}. Flagged rows are highlighted.</p>",
        "<h2 id='settings'>Settings</h2>",
        _table_html(settings_table),
        "<h2 id='classifiers'>Classifiers</h2><ul>"
        + "".join(f"<li>{html.escape(n)}</li>" for n in classifier_notes)
        + "</ul>",
        "<h2 id='flagged'>Flagged prompts</h2>",
        _table_html(flagged[["attribute", "prompt", "n", "test", "pvalue", "qvalue"]])
        if len(flagged)
        else "<p>None at this FDR level.</p>",
        "<h2 id='abstentions'>Abstentions</h2>",
        _table_html(abstentions) if len(abstentions) else "<p>No image abstained.</p>",
    ]
    n_errors = _n_errors(images)
    if n_errors:
        bad = images[images.error.fillna("") != ""][["image_id", "source_file", "error"]]
        parts += [f"<h2 id='errors'>Unreadable files ({n_errors})</h2>", _table_html(bad)]
    return parts


def _attribute_sections(summary: AuditSummary, attr: str, chart: Path) -> tuple[list[str], list[str]]:
    """One attribute's HTML and Markdown sections: chart, per-prompt table, shares, pooled shares."""
    sh = summary.shares[summary.shares.attribute == attr]
    sh = sh[(sh["count"] > 0) | (sh.target > 0)]
    corrected = sh.get("corrected", pd.Series(dtype=float)).notna().any()
    cols = SHARE_COLS + (["corrected", "corrected_lo", "corrected_hi"] if corrected else [])
    pr = summary.prompts[summary.prompts.attribute == attr]
    po = summary.pooled[summary.pooled.attribute == attr]
    html_part = [f"<h2 id='attr-{html.escape(attr)}'>{html.escape(attr)}</h2>",
                 f"<img alt='shares of {html.escape(attr)}' src='{_png_data_uri(chart)}'>",
                 "<h3>Per prompt</h3>", _table_html(pr[PROMPT_COLS]),
                 "<h3>Shares</h3>", _table_html(sh[cols]),
                 "<h3>Pooled over prompts (prompt-then-image bootstrap)</h3>",
                 _table_html(po[["value", "estimate", "lo", "hi"]])]
    md_part = [f"## {attr}", "", f"![{attr}](plots/{chart.name})", "",
               pr[PROMPT_COLS].to_markdown(index=False, floatfmt=".3g"), "",
               sh[cols].to_markdown(index=False, floatfmt=".3g"), ""]
    return html_part, md_part


def _sample_sections(grids: dict[str, np.ndarray], out: Path) -> list[str]:
    """A sample grid per prompt (saved as plots/samples_NNN.png and embedded)."""
    parts = ["<h2 id='samples'>Samples</h2>"]
    for i, (prompt, imgs) in enumerate(grids.items()):
        grid = save_grid(torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255,
                         out / "plots" / f"samples_{i:03d}.png", nrow=8, scale=3)
        parts.append(f"<h3>{html.escape(prompt)}</h3><img alt='samples of {html.escape(prompt)}' "
                     f"src='{_png_data_uri(grid)}'>")
    return parts
