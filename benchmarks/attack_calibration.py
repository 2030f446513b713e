"""Attack-aware calibration: does the calibrated rule's false-positive rate hold under attack? ->
benchmarks/results/attack_calibration/.

    OMP_NUM_THREADS=1 python benchmarks/attack_calibration.py [--generator sd3] [--keys 20] [--calibrate 1000]

Two ``diffeval watermark robustness`` runs on one cache, Tree-Ring rand keys at the annulus 2-5 on all channels,
``--keys`` keys with 10 marked images each and 200 unmarked images, under the paper's six attacks (blur scaled) and
the held-back four of ``watermark_keys.py``:

- ``clean-null/``: ``--calibrate N``, the null of clean calibration images (what `watermark_keys.py` ran);
- ``aware-null/``: ``--calibrate N --calibrate-attacks paper-scaled``: the same images also under the paper's six
  attacks as references (p = the largest conformal p-value over clean and each attack), so the held-back attacks
  are ones the null was not calibrated for.

Writes summary.{csv,md}: per (null, attack), over keys, the p-value rule's FPR (median / 90th percentile / worst
key; 200 unmarked images, so one false positive is 0.005), TPR at alpha (median / 10th percentile) and AUC (the
score is the same in both runs; only the p-value differs).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.io import write_table  # noqa: E402
from diffeval.watermark.attacks import attacks_from  # noqa: E402
from diffeval.watermark.detect import DetectSettings  # noqa: E402
from diffeval.watermark.embed import EmbedSettings  # noqa: E402
from diffeval.watermark.jobs import run_robustness_job  # noqa: E402
from diffeval.watermark.report import over_keys  # noqa: E402
from diffeval.watermark.robustness import RobustnessConfig  # noqa: E402

PAPER_SCALED = "clean,rotation:75,jpeg:25,crop:0.75:ratio=0.75,blur:4:reference_size=512,noise:0.1,brightness:6"
HELD_BACK = "vae:1,regen:0.2,rotation:15+jpeg:50,crop:0.75+blur:1+jpeg:70"
NULLS = {"clean-null": "", "aware-null": "paper-scaled"}
FIGURES = {"fpr_at_alpha": "max", "tpr_at_alpha": "min", "auc": "min"}


def config(generator: str, keys: int, calibrate: int, calibrate_attacks: str) -> RobustnessConfig:
    attacks = PAPER_SCALED + "," + HELD_BACK  # the preset's attacks (same names, so the same cache entries)
    return RobustnessConfig(generators=(generator,), patterns=("rand",), radius=5.0, inner_radius=2.0,
                            channels=(0, 1, 2), n=10, n_unmarked=200, keys=keys, calibrate=calibrate,
                            calibrate_attacks=calibrate_attacks, attacks=attacks, quality=False,
                            embed=EmbedSettings(), detect=DetectSettings())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default="sd3")
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--calibrate", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "attack_calibration"))
    parser.add_argument("--summary-only", action="store_true", help="Only rebuild summary.{csv,md,json}.")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    frames = []
    for name, calibrate_attacks in NULLS.items():
        folder = out / name
        folder.mkdir(exist_ok=True)
        if not (folder / "cache").exists():
            os.symlink("../cache", folder / "cache")
        if not args.summary_only:
            cfg = config(args.generator, args.keys, args.calibrate, calibrate_attacks)
            print(run_robustness_job(cfg, str(folder), progress=True))
        s = over_keys(pd.read_csv(folder / "robustness.csv"), figures=FIGURES)
        s.insert(0, "null", name)
        frames.append(s)
    summary = pd.concat(frames, ignore_index=True)
    held = {a.name for a in attacks_from(HELD_BACK)}
    summary.insert(2, "calibrated_for", [("clean" if a == "clean" else "attack" if n == "aware-null" and a not in held
                                          else "no") for n, a in zip(summary["null"], summary["attack"], strict=True)])
    print(write_summary(summary, args, out))


def write_summary(summary: pd.DataFrame, args: argparse.Namespace, out: Path) -> str:
    """summary.{csv,md,json} in ``out``; returns the Markdown."""
    cols = ["null", "attack", "calibrated_for", "keys", "fpr_at_alpha_median", "fpr_at_alpha_p10", "fpr_at_alpha_worst",
            "tpr_at_alpha_median", "tpr_at_alpha_p10", "auc_median"]
    cmd = (f"`OMP_NUM_THREADS=1 python benchmarks/attack_calibration.py --generator {args.generator} "
           f"--keys {args.keys} --calibrate {args.calibrate}`")
    md = (f"# Attack-aware calibration on `{args.generator}` ({args.keys} Tree-Ring rand keys, annulus 2-5, all "
          f"channels)\n\n{cmd}\n\nalpha = 0.01; 200 unmarked and 10 marked images per key under each attack; fpr "
          "p10: the 90th percentile over keys. calibrated_for: whether the null holds references of that attack "
          "(held-back attacks: never).\n\n" + summary[cols].to_markdown(index=False, floatfmt=".3g") + "\n")
    write_table(summary, out, "summary", settings={"generator": args.generator, "keys": args.keys,
                                                    "calibrate": args.calibrate}, markdown=md)
    return md


if __name__ == "__main__":
    main()
