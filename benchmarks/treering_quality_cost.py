"""What a Tree-Ring key costs in sample quality, per preset, over several keys.

    python benchmarks/treering_quality_cost.py [--generators sd1,sd2,dit,sd3,sd3-reflow] [--n 1000] [--keys 3]
        [--patterns rings,rand,gaussian-shading] [--radius R] [--inner-radius r] [--channels 0,1,2] [--subkeys 1,8,64]

Writes benchmarks/results/treering_quality/quality_cost.{csv,md,json} and grid.png (per generator: unmarked
row, then one marked row per key, same seeds). Images are cached in benchmarks/results/treering_quality/cache/.

Per generator: n unmarked images (seed 0, the watermark's embed path: captions or classes in turn, the ODE
sampler at the generator's default steps and guidance) and, for each key seed 0..K-1, n marked images from the
same initial noise with the key injected (default geometry: ``watermark.keys.default_geometry``; the pattern
``gaussian-shading`` draws Gaussian Shading's own latents from the same seeds; ``--subkeys S`` > 1: each key is a
key set of S members, ``watermark.keyset``, each image carrying one member). FID of each set against the shipped
Fashion-MNIST train statistics in the judge's features; the unmarked FID's half-sampling 95% interval beside the
marked - unmarked difference; KID (x1000) of marked against unmarked images with its SD over 100 subsets of half the
images. Rows: one per (generator, pattern, key); ``summary`` rows give
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
from diffeval.metrics import fid_interval, frechet_distance, kernel_inception_distance, load_stats_npz  # noqa: E402
from diffeval.watermark.embed import EmbedSettings, generate  # noqa: E402
from diffeval.watermark.keys import key_geometry  # noqa: E402
from diffeval.watermark.robustness import evaluation_key  # noqa: E402

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
    parser.add_argument("--radius", type=float, default=None, help="key radius (default: the generator's)")
    parser.add_argument("--inner-radius", type=float, default=0.0)
    parser.add_argument("--channels", default="", help="comma list of keyed channels (default: the generator's)")
    parser.add_argument("--subkeys", default="1", help="comma list of members per key (1: a single key)")
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
        radius, channels = key_geometry(g, args.radius, tuple(int(c) for c in args.channels.split(",") if c))
        tag = f"r{radius:g}-i{args.inner_radius:g}-c{''.join(map(str, channels))}"
        unmarked = cached_images(out / "cache" / f"{name}-{fp}-unmarked-{args.n}.pt", g, None, args.n, settings)
        fu = ext.features(unmarked).numpy().astype(np.float64)
        base = fid(fu)
        lo, hi = fid_interval(fu, mu, sigma, base)
        grid.append(unmarked[:10])
        for pattern, subkeys, k in [(p, int(s), k) for p in args.patterns.split(",") for s in args.subkeys.split(",")
                                    for k in range(args.keys)]:
            gs = pattern == "gaussian-shading"
            key = evaluation_key(g, pattern, k, f"{pattern}-{k}", radius, channels, args.inner_radius,
                                 subkeys=subkeys)
            file = f"{name}-{fp}-{pattern}-{'' if gs else tag + '-'}{k}-{args.n}{f'-s{subkeys}' * (subkeys > 1)}.pt"
            marked = cached_images(out / "cache" / file, g, key, args.n, settings)
            feats = ext.features(marked).numpy().astype(np.float64)
            fm = fid(feats)
            kid, kid_sd = kernel_inception_distance(fu, feats, subsets=100,
                                                    subset_size=min(1000, max(2, args.n // 2)))
            grid.append(marked[:10])
            rows.append({"generator": name, "space": g.info.space, "pattern": pattern, "subkeys": subkeys,
                         "key_seed": k,
                         "radius": np.nan if gs else radius, "inner_radius": np.nan if gs else args.inner_radius,
                         "channel": "all" if gs else ",".join(map(str, channels)), "n": args.n,
                         "fid_unmarked": base, "fid_unmarked_lo": float(lo), "fid_unmarked_hi": float(hi),
                         "fid_marked": fm,
                         "fid_difference": fm - base, "within_interval": bool(lo <= fm <= hi),
                         "kid_x1000": 1000 * kid, "kid_sd_x1000": 1000 * kid_sd,
                         "kid_within_2sd": bool(abs(kid) <= 2 * kid_sd)})
            print(rows[-1], flush=True)
        write_results(rows, grid, args, out)  # after each generator, so an interrupted run keeps what it measured


def write_results(rows: list[dict], grid: list[torch.Tensor], args, out: Path) -> None:
    """quality_cost.{csv,md,json} (per key, and the summary over keys in the Markdown), quality_cost_summary.*,
    grid.png."""
    table = pd.DataFrame(rows)
    summary = (table.groupby(["generator", "space", "pattern", "subkeys"], sort=False)
               .agg(keys=("key_seed", "count"), fid_unmarked=("fid_unmarked", "first"),
                    fid_unmarked_lo=("fid_unmarked_lo", "first"), fid_unmarked_hi=("fid_unmarked_hi", "first"),
                    fid_difference_median=("fid_difference", "median"), fid_difference_max=("fid_difference", "max"),
                    keys_within_interval=("within_interval", "sum"), kid_x1000_median=("kid_x1000", "median"),
                    keys_kid_within_2sd=("kid_within_2sd", "sum"))
               .reset_index())
    md = ("## Per generator (median and worst over keys)\n\n" + summary.to_markdown(index=False, floatfmt=".4g")
          + "\n\n## Per key\n\n" + table.to_markdown(index=False, floatfmt=".4g") + "\n")
    write_table(table, out, "quality_cost", markdown=md,
                settings={"n": args.n, "keys": args.keys, "patterns": args.patterns, "subkeys": args.subkeys,
                          "embed_seed": 0,
                          "radius": args.radius, "inner_radius": args.inner_radius, "channels": args.channels,
                          "reference": "fashion-mnist:train (shipped statistics)", "features": "fashion"})
    write_table(summary, out, "quality_cost_summary")
    save_grid(torch.cat(grid), out / "grid.png", nrow=10, scale=2)
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
