"""The benchmark rows of the latent presets beside the pixel-space rows they replaced.

    python benchmarks/latent_vs_pixel.py

Reads benchmarks/results/benchmark/benchmark.csv (the main job, `diffeval benchmark --out
benchmarks/results/benchmark`, with the latent presets) and benchmarks/results/benchmark/pixel_presets.csv (the
same table made with the pixel-space presets, as committed at 6d4e245: `git show
6d4e245:benchmarks/results/benchmark/benchmark.csv`), and writes benchmarks/results/benchmark/latent_vs_pixel.md:
per preset FID [95%], KID, precision, recall, class agreement and samples/s, latent row above pixel row.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffeval.io import atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parent / "results" / "benchmark"
PRESETS = ["ddpm", "sd1", "sd2", "dit", "sd3", "sd3-reflow", "fashion-mnist:test"]


def rows(table: pd.DataFrame, space: str) -> pd.DataFrame:
    t = table[table["generator"].isin(PRESETS)].copy()
    t["space"] = [("pixel" if g == "ddpm" else space) if g != "fashion-mnist:test" else "real" for g in t["generator"]]
    return t


def fmt(r) -> dict:
    acc = "" if pd.isna(r.cond_accuracy) else f"{r.cond_accuracy:.3f}"
    speed = "" if pd.isna(r.samples_per_s) else f"{r.samples_per_s:.1f}"
    return {"preset": r.generator, "space": r.space, "FID [95%]": f"{r.fid:.1f} [{r.fid_lo:.1f}, {r.fid_hi:.1f}]",
            "KID": f"{r.kid:.1f}", "precision": f"{r.precision:.3f}", "recall": f"{r.recall:.3f}",
            "class agreement": acc, "samples/s": speed}


def main() -> None:
    new = rows(pd.read_csv(ROOT / "benchmark.csv"), "latent")
    old = rows(pd.read_csv(ROOT / "pixel_presets.csv"), "pixel (before)")
    out = []
    for name in PRESETS:
        for t, keep_ddpm in ((new, True), (old, False)):
            part = t[t["generator"] == name]
            if name in ("ddpm", "fashion-mnist:test") and not keep_ddpm:
                continue  # unchanged rows: listed once
            out += [fmt(r) for r in part.itertuples()]
    md = pd.DataFrame(out).to_markdown(index=False)
    atomic_write_text(ROOT / "latent_vs_pixel.md", md + "\n")
    print(md)


if __name__ == "__main__":
    main()
