"""What a Tree-Ring key costs in sample quality, per preset, over several keys.

    python benchmarks/treering_quality_cost.py [--generators sd1,sd2,dit,sd3,sd3-reflow] [--n 1000] [--keys 3]

Writes benchmarks/results/treering_quality/quality_cost.{csv,md,json} and grid.png (per generator: unmarked
row, then one marked row per key, same seeds). Images are cached in benchmarks/results/treering_quality/cache/.

Per generator: n unmarked images (seed 0, the watermark's embed path: captions or classes in turn, the ODE
sampler at the generator's default steps and guidance) and, for each key seed 0..K-1, n marked images from the
same initial noise with the key injected (default geometry: ``watermark.keys.default_geometry``). FID of each set
against the shipped Fashion-MNIST train statistics in the judge's features; the unmarked FID's half-sampling 95%
interval beside the marked - unmarked difference. Rows: one per (generator, pattern, key); ``summary`` rows give
the median and worst difference over keys.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffeval.feature_stats import shipped_stats_path  # noqa: E402
from diffeval.features import get_extractor  # noqa: E402
from diffeval.generators import load_generator  # noqa: E402
from diffeval.images import save_grid  # noqa: E402
from diffeval.io import atomic_torch_save, write_table  # noqa: E402
from diffeval.metrics import fid_interval, frechet_distance, load_stats_npz  # noqa: E402
from diffeval.watermark.embed import EmbedSettings, generate  # noqa: E402
from diffeval.watermark.keys import key_geometry, make_key  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "treering_quality"


def cached_images(path: Path, g, key, n: int, settings: EmbedSettings) -> torch.Tensor:
    """``generate(g, key, n)`` (key None: unmarked), kept in ``path`` and read from it on a rerun."""
    if path.is_file():
        return torch.load(path, weights_only=True)
    value = generate(g, key, n, settings, progress=True)
    atomic_torch_save(path, value)
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", default="sd1,sd2,dit,sd3,sd3-reflow")
    parser.add_argument("--patterns", default="rings")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    ext = get_extractor("fashion")
    mu, sigma = load_stats_npz(shipped_stats_path("fashion-mnist:train", "fashion"))

    def fid(feats: np.ndarray) -> float:
        return frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), mu, sigma)

    rows, grid = [], []
    settings = EmbedSettings(seed=0)
    for name in args.generators.split(","):
        g = load_generator(name)
        fp = g.fingerprint()
        radius, channels = key_geometry(g)
        unmarked = cached_images(out / "cache" / f"{name}-{fp}-unmarked-{args.n}.pt", g, None, args.n, settings)
        fu = ext.features(unmarked).numpy().astype(np.float64)
        base = fid(fu)
        lo, hi = fid_interval(fu, mu, sigma, base)
        grid.append(unmarked[:10])
        for pattern in args.patterns.split(","):
            for k in range(args.keys):
                key = make_key(g.noise_shape, pattern, radius, channels, seed=k)
                marked = cached_images(out / "cache" / f"{name}-{fp}-{pattern}-{k}-{args.n}.pt", g, key, args.n,
                                       settings)
                fm = fid(ext.features(marked).numpy().astype(np.float64))
                grid.append(marked[:10])
                rows.append({"generator": name, "space": g.info.space, "pattern": pattern, "key_seed": k,
                             "radius": radius, "channel": ",".join(map(str, channels)), "n": args.n,
                             "fid_unmarked": base, "fid_unmarked_lo": float(lo), "fid_unmarked_hi": float(hi),
                             "fid_marked": fm,
                             "fid_difference": fm - base, "within_interval": bool(lo <= fm <= hi)})
                print(rows[-1], flush=True)
        write_results(rows, grid, args, out)  # after each generator, so an interrupted run keeps what it measured


def write_results(rows: list[dict], grid: list[torch.Tensor], args, out: Path) -> None:
    """quality_cost.{csv,md,json} (per key, and the summary over keys in the Markdown), quality_cost_summary.*,
    grid.png."""
    table = pd.DataFrame(rows)
    summary = (table.groupby(["generator", "space", "pattern"], sort=False)
               .agg(keys=("key_seed", "count"), fid_unmarked=("fid_unmarked", "first"),
                    fid_unmarked_lo=("fid_unmarked_lo", "first"), fid_unmarked_hi=("fid_unmarked_hi", "first"),
                    fid_difference_median=("fid_difference", "median"), fid_difference_max=("fid_difference", "max"),
                    keys_within_interval=("within_interval", "sum"))
               .reset_index())
    md = ("## Per generator (median and worst over keys)\n\n" + summary.to_markdown(index=False, floatfmt=".4g")
          + "\n\n## Per key\n\n" + table.to_markdown(index=False, floatfmt=".4g") + "\n")
    write_table(table, out, "quality_cost", markdown=md,
                settings={"n": args.n, "keys": args.keys, "patterns": args.patterns, "embed_seed": 0,
                          "reference": "fashion-mnist:train (shipped statistics)", "features": "fashion"})
    write_table(summary, out, "quality_cost_summary")
    save_grid(torch.cat(grid), out / "grid.png", nrow=10, scale=2)
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
