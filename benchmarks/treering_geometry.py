"""Which Tree-Ring key region to use on a latent preset: clean detection over K keys for several key geometries
(radius, annulus, channels) on the same images -> benchmarks/results/treering_geometry/.

    OMP_NUM_THREADS=1 python benchmarks/treering_geometry.py [--generator sd3] [--keys 10] [--n 10] [--n-unmarked 300]

Every geometry is a ``diffeval watermark robustness --attacks clean`` run (folder per geometry); the unmarked
images and their inversions do not depend on the key, so all runs share one cache (``cache/``, linked from each
folder). Writes geometry.{csv,md}: per (geometry, pattern) the number of key coordinates and, over the keys, the
median / 10th percentile / worst clean AUC and TPR at 1% FPR, the worst key's FPR at alpha = 0.01, the median
wrong-key FPR and identification accuracy among the K keys.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.io import atomic_write_text  # noqa: E402
from diffeval.watermark.detect import DetectSettings  # noqa: E402
from diffeval.watermark.report import over_keys  # noqa: E402
from diffeval.watermark.robustness import RobustnessConfig, run_robustness  # noqa: E402

# name: (radius, inner radius, channels); None: the generator's default radius / channels
GEOMETRIES = {
    "default": (None, 0.0, ()),
    "radius-3": (3.0, 0.0, ()),
    "annulus-2-5": (5.0, 2.0, ()),
    "radius-3-all-channels": (3.0, 0.0, (0, 1, 2)),
    "annulus-2-5-all-channels": (5.0, 2.0, (0, 1, 2)),
    "annulus-1-6-all-channels": (6.0, 1.0, (0, 1, 2)),
}


def coordinates(cfg: RobustnessConfig, generator: str) -> int:
    """M, the key region's independent real coordinates."""
    from diffeval.generators import load_generator
    from diffeval.watermark.keys import key_geometry, make_key
    from diffeval.watermark.null import key_coordinates

    g = load_generator(generator)
    radius, channels = key_geometry(g, cfg.radius, cfg.channels)
    key = make_key(g.noise_shape, "rings", radius, channels, seed=0, inner_radius=cfg.inner_radius)
    return int(key_coordinates(torch.zeros(1, *g.noise_shape), key).shape[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="sd3")
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--n", type=int, default=10, help="marked images per key")
    parser.add_argument("--n-unmarked", type=int, default=300)
    parser.add_argument("--geometries", default=",".join(GEOMETRIES))
    parser.add_argument("--calibrate", type=int, default=0,
                        help="calibrate the test on this many unmarked images of their own seed (0: plain cosine)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "treering_geometry"))
    args = parser.parse_args()
    out = Path(args.out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    frames = []
    for name in args.geometries.split(","):
        radius, inner, channels = GEOMETRIES[name]
        cfg = RobustnessConfig(generators=(args.generator,), radius=radius, inner_radius=inner, channels=channels,
                               keys=args.keys, n=args.n, n_unmarked=args.n_unmarked, attacks="clean", quality=False,
                               calibrate=args.calibrate, detect=DetectSettings())
        folder = out / (name + (f"-calibrated-{args.calibrate}" if args.calibrate else ""))
        folder.mkdir(exist_ok=True)
        link = folder / "cache"
        if not link.exists():
            link.symlink_to("../cache")
        table, _, _ = run_robustness(cfg, folder, progress=True)
        table.to_csv(folder / "robustness.csv", index=False)
        summary = over_keys(table)
        summary.insert(0, "coordinates", coordinates(cfg, args.generator))
        summary.insert(0, "calibrated", args.calibrate)
        summary.insert(0, "geometry", name)
        frames.append(summary)
        print(summary.to_string(index=False), flush=True)
    df = pd.concat(frames, ignore_index=True)
    keep = ["geometry", "calibrated", "coordinates", "generator", "pattern", "keys", "auc_median", "auc_p10",
            "auc_worst",
            "tpr_at_1pct_fpr_median", "tpr_at_1pct_fpr_p10", "tpr_at_1pct_fpr_worst", "fpr_at_alpha_worst",
            "wrong_key_fpr_median", "identification_median"]
    stem = "geometry" + (f"-calibrated-{args.calibrate}" if args.calibrate else "")
    atomic_write_text(out / f"{stem}.csv", df.to_csv(index=False))
    cmd = (f"`OMP_NUM_THREADS=1 python benchmarks/treering_geometry.py --generator {args.generator} --keys {args.keys} "
           f"--n {args.n} --n-unmarked {args.n_unmarked}" + (f" --calibrate {args.calibrate}" if args.calibrate else "")
           + "`")
    md = [f"# Tree-Ring key geometry on `{args.generator}`, clean images, over {args.keys} keys", "", cmd, "",
          df[keep].to_markdown(index=False, floatfmt=".3f"), ""]
    atomic_write_text(out / f"{stem}.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
