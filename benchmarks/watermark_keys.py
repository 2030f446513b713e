"""Tree-Ring and Gaussian Shading over 20 keys on `sd3`, calibrated, with identification among 2 / 16 / 256 keys,
the paper's attacks and a held-back set -> benchmarks/results/watermark_keys/.

    OMP_NUM_THREADS=1 python benchmarks/watermark_keys.py [--generator sd3] [--keys 20] [--subkeys S] [--runs clean]

Three ``diffeval watermark robustness`` runs on one cache (``cache/``, linked from each folder), each with both
schemes (Tree-Ring rand keys at the annulus 2-5 on all channels; Gaussian Shading), ``--calibrate 1000`` and
``--identify 2,16,256``:

- ``clean/``: 20 marked images per key, 1,000 unmarked (the false-positive bar needs 1,000), no attack;
- ``paper/``: 10 marked images per key, 200 unmarked, the paper's six attacks with the blur scaled to the image;
- ``held-back/``: the same images under attacks chosen after the schemes were built (the autoencoder round trip,
  SDEdit regeneration, two WAVES-style chains).

Writes summary.{csv,md}: per (run, scheme, attack), over the keys, median / 10th percentile / worst of AUC, TPR at
1% FPR, the p-value rule's FPR, wrong-key acceptance, identification among 20 / 2 / 16 / 256 keys, and per key the
share of marked images at p < 1e-6 and their mean score (Gaussian Shading: bit accuracy). ``--subkeys S``: every
key a key set of S members (``watermark.keyset``); ``--runs``: a comma list of the runs to make (default all).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.io import write_table  # noqa: E402
from diffeval.watermark.detect import DetectSettings  # noqa: E402
from diffeval.watermark.embed import EmbedSettings  # noqa: E402
from diffeval.watermark.jobs import run_robustness_job  # noqa: E402
from diffeval.watermark.report import over_keys  # noqa: E402
from diffeval.watermark.robustness import RobustnessConfig  # noqa: E402

OUT = "benchmarks/results/watermark_keys"
HELD_BACK = "vae:1,regen:0.2,rotation:15+jpeg:50,crop:0.75+blur:1+jpeg:70"
RUNS = {"clean": (20, 1000, "clean"), "paper": (10, 200, "paper-scaled"), "held-back": (10, 200, HELD_BACK)}
STRICT = 1e-6
FIGURES = {"auc": "min", "tpr_at_1pct_fpr": "min", "fpr_at_alpha": "max", "wrong_key_fpr": "max",
           "identification": "min", "identification_2": "min", "identification_16": "min",
           "identification_256": "min", "tpr_strict": "min", "marked_score": "min"}


def config(generator: str, keys: int, n: int, n_unmarked: int, attacks: str, subkeys: int = 1) -> RobustnessConfig:
    return RobustnessConfig(generators=(generator,), patterns=("rand", "gaussian-shading"), radius=5.0,
                            inner_radius=2.0, channels=(0, 1, 2), n=n, n_unmarked=n_unmarked, keys=keys,
                            subkeys=subkeys,
                            calibrate=1000, identify=(2, 16, 256), attacks=attacks, embed=EmbedSettings(),
                            detect=DetectSettings())


def per_key_extras(scores: pd.DataFrame) -> pd.DataFrame:
    """Per (pattern, key, attack) of the marked images: the share at p < STRICT and the mean score."""
    marked = scores[scores["marked"]]
    g = marked.groupby(["pattern", "key", "attack"], sort=False)
    return g.agg(tpr_strict=("p_value", lambda p: float(np.mean(p < STRICT))),
                 marked_score=("score", "mean")).reset_index()


def summarise(out: Path, runs: list[str]) -> pd.DataFrame:
    frames = []
    for run in runs:
        table = pd.read_csv(out / run / "robustness.csv")
        extra = per_key_extras(pd.read_csv(out / run / "scores.csv"))
        table = table.merge(extra, on=["pattern", "key", "attack"], how="left")
        s = over_keys(table, figures=FIGURES)
        s.insert(0, "run", run)
        frames.append(s)
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default="sd3")
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--subkeys", type=int, default=1, help="members per key (1: single keys)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma list of {', '.join(RUNS)}")
    parser.add_argument("--summary-only", action="store_true", help="Only rebuild summary.{csv,md}.")
    args = parser.parse_args()
    out = ROOT / OUT if args.out == OUT else Path(args.out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    runs = [r for r in args.runs.split(",") if r]
    if not args.summary_only:
        for run in runs:
            n, n_unmarked, attacks = RUNS[run]
            folder = out / run
            folder.mkdir(exist_ok=True)
            if not (folder / "cache").exists():
                os.symlink("../cache", folder / "cache")
            print(run_robustness_job(config(args.generator, args.keys, n, n_unmarked, attacks, args.subkeys),
                                     str(folder)))
    summary = summarise(out, runs)
    cols = ["run", "pattern", "attack", "keys", "auc_median", "auc_p10", "auc_worst", "tpr_at_1pct_fpr_p10",
            "fpr_at_alpha_worst", "wrong_key_fpr_worst", "identification_2_p10", "identification_16_p10",
            "identification_256_median", "identification_256_p10", "tpr_strict_median", "tpr_strict_p10",
            "marked_score_median"]
    cmd = (f"`OMP_NUM_THREADS=1 python benchmarks/watermark_keys.py --generator {args.generator} "
           f"--keys {args.keys}" + (f" --subkeys {args.subkeys}" if args.subkeys > 1 else "")
           + (f" --runs {args.runs}" if runs != list(RUNS) else "") + (f" --out {args.out}" if args.out != OUT else "")
           + "`")
    sets = f" (key sets of {args.subkeys} members)" if args.subkeys > 1 else ""
    md = (f"# Tree-Ring (rand, annulus 2-5, all channels) and Gaussian Shading over {args.keys} keys{sets} on "
          f"`{args.generator}`\n\n{cmd}\n\nCalibrated test (1,000 unmarked images of their own seed), alpha = 0.01; "
          "p10: the 10th percentile of the keys ranked from the worst (90th for false-positive rates); "
          "tpr_strict: marked images at p < 1e-6; marked_score: mean cosine (whitened) or bit accuracy.\n\n"
          + summary[cols].to_markdown(index=False, floatfmt=".3g") + "\n")
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "summary_only")}
    write_table(summary, out, "summary", settings=settings, markdown=md)
    print(md)


if __name__ == "__main__":
    main()
