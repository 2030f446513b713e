"""Summary tables of the committed watermark results (README numbers) -> benchmarks/results/watermark/summary.md.

    python benchmarks/watermark_tables.py

Reads the robustness.csv files written by (the default test is the cosine matched filter; the
``-ncx2`` folders repeat a run with the paper's distance score, ``--test ncx2``, on the same cached
recovered noise):
    diffeval watermark robustness --keys 1 -g sd3 -g sd2 --n 200 --n-unmarked 1000 --attacks clean --out benchmarks/results/watermark/clean-fpr
    diffeval watermark robustness --keys 1 -g ddpm -g sd1 -g dit -g sd3-reflow --n 200 --n-unmarked 1000 --attacks clean --out benchmarks/results/watermark/clean-all-1000
    diffeval watermark robustness --keys 1 -g sd3 --n 100 --attacks paper --baselines all --out benchmarks/results/watermark/paper-sd3
    diffeval watermark robustness --keys 1 -g sd3 --n 100 --attacks paper-scaled --baselines all --out benchmarks/results/watermark/paper-scaled-sd3
    diffeval watermark robustness --keys 1 -g sd2 --n 100 --attacks paper --baselines dwtDct,dwtDctSvd --out benchmarks/results/watermark/paper-sd2
    diffeval watermark robustness --keys 1 -g sd2 --n 100 --attacks paper-scaled --baselines dwtDct,dwtDctSvd --out benchmarks/results/watermark/paper-scaled-sd2
    diffeval watermark robustness --keys 1 -g sd3 --pattern rings --radius R --n 100 --attacks paper --out benchmarks/results/watermark/radius-R-sd3
    diffeval watermark robustness --keys 1 -g sd3 --radius 5 --inner-radius 2 --n 100 --attacks paper --out benchmarks/results/watermark/annulus-2-5-sd3
    the same with --test ncx2 for clean-fpr, clean-all-1000, paper-sd3, paper-scaled-sd3 and paper-sd2, --out ...-ncx2
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent / "results" / "watermark"
PAPER_ORDER = [
    "clean",
    "rotation(75)",
    "jpeg(25)",
    "crop(0.75)",
    "blur(4)",
    "blur(4@512px)",
    "noise(0.1)",
    "brightness(6)",
]


def clean_table(suffix: str = "") -> pd.DataFrame:
    dirs = (f"clean-fpr{suffix}", f"clean-all-1000{suffix}")
    frames = [pd.read_csv(ROOT / d / "robustness.csv") for d in dirs if (ROOT / d / "robustness.csv").is_file()]
    df = pd.concat(frames, ignore_index=True)
    df = df[df["attack"] == "clean"]
    return df[["generator", "pattern", "n_marked", "n_unmarked", "auc", "tpr_at_1pct_fpr", "fpr_at_alpha"]]


def paper_table(name: str) -> pd.DataFrame:
    df = pd.read_csv(ROOT / name / "robustness.csv")
    wide = df.pivot_table(index=["generator", "pattern"], columns="attack", values="auc", sort=False)
    wide = wide[[c for c in PAPER_ORDER if c in wide]]
    wide["attacked mean"] = wide[[c for c in wide if c != "clean"]].mean(axis=1)
    tpr = df[df["attack"] != "clean"].groupby(["generator", "pattern"], sort=False)["tpr_at_1pct_fpr"].mean()
    wide["attacked mean TPR@1%FPR"] = tpr
    return wide.reset_index()


def main() -> None:
    md = "## Clean detection (alpha = 0.01), cosine test\n\n" + clean_table().to_markdown(index=False, floatfmt=".4g")
    md += "\n\n## Clean detection (alpha = 0.01), ncx2 test (the paper's distance)\n\n" + clean_table(
        "-ncx2"
    ).to_markdown(index=False, floatfmt=".4g")
    for d in sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / "robustness.csv").is_file()):
        if d.startswith(("paper", "radius", "annulus")):
            md += f"\n\n## AUC under attacks: {d}\n\n" + paper_table(d).to_markdown(index=False, floatfmt=".3f")
            quality = ROOT / d / "quality.csv"
            if quality.is_file():
                md += "\n\nQuality cost:\n\n" + pd.read_csv(quality).to_markdown(index=False, floatfmt=".4g")
    out = ROOT / "summary.md"
    out.write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
