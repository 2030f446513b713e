"""Does the calibrated Tree-Ring test hold its false-positive rate for every key? Per-key FPR at alpha = 0.01 over
300 fresh rand keys on 1,000 unmarked `sd3` images, for the plain cosine test, the whitened test ranked among its
own fitting images (the earlier method), and the split-conformal Ledoit-Wolf null of ``watermark/null.py``
-> benchmarks/results/watermark_keys/null_calibration.{csv,md}.

    OMP_NUM_THREADS=1 python benchmarks/null_calibration.py     # after benchmarks/watermark_keys.py (its cache)
    python benchmarks/null_calibration.py --calibrate 3000      # a larger calibration set -> null_calibration-3000.*

The calibration noise (1,000 unmarked images of seed 7919) and the unmarked test noise (seed 0, no attack) come
from the cache of ``watermark_keys.py``'s clean run (made here if missing). Two key geometries: the default
(radius 2.19 on channel 2, 13 coordinates) and the annulus 2-5 on all channels (216 coordinates). The binomial
noise alone of one key's FPR on 1,000 images is SD 0.0031 at alpha = 0.01.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.generators import load_generator  # noqa: E402
from diffeval.io import atomic_write_text  # noqa: E402
from diffeval.watermark.attacks import CLEAN  # noqa: E402
from diffeval.watermark.cache import TensorCache  # noqa: E402
from diffeval.watermark.null import calibrated_test, estimate_null, key_coordinates  # noqa: E402
from diffeval.watermark.robustness import (  # noqa: E402
    _marked_images,
    _recover,
    _regen_fn,
    calibration_noise,
    regen_generator_name,
)
from diffeval.watermark.statistics import key_test  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from watermark_keys import RUNS, config  # noqa: E402

ALPHA = 0.01
KEY_SEEDS = range(1000, 1300)  # not the evaluation keys (0..275 are used by watermark_keys.py)
GEOMETRIES = {"default (radius 2.19, channel 2)": (None, 0.0, ()), "annulus 2-5, all channels": (5.0, 2.0, (0, 1, 2))}


class _Quiet:
    def update(self, _n: int) -> None:
        pass


def in_sample_p(null, noise: torch.Tensor, key) -> np.ndarray:
    """The earlier empirical p-value: the sample-covariance whitener fitted on all calibration images, ranked
    among those same images."""
    y = null.coords
    mu = y.mean(0)
    ev, vec = torch.linalg.eigh(torch.cov(y.T))
    w = vec @ torch.diag(ev.clamp(min=1e-6 * float(ev.max())).rsqrt()) @ vec.T
    from diffeval.watermark.fourier import coordinates

    d = (coordinates(key.values, key.mask).flatten().double() - mu) @ w

    def cos(c: torch.Tensor) -> np.ndarray:
        z = (c - mu) @ w
        return ((z @ d) / (z.norm(dim=1) * d.norm())).numpy()

    ref = np.sort(cos(y))
    above = len(ref) - np.searchsorted(ref, cos(key_coordinates(noise, key)), side="left")
    return (1.0 + above) / (len(ref) + 1.0)


def main() -> None:
    import argparse
    from dataclasses import replace

    from diffeval.watermark.keys import key_geometry, make_key

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", type=int, default=1000, help="calibration images (1000: the clean run's)")
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "watermark_keys"
    n, n_unmarked, _ = RUNS["clean"]
    cfg = replace(config("sd3", 20, n, n_unmarked, "clean"), calibrate=args.calibrate)
    stem = "null_calibration" if args.calibrate == 1000 else f"null_calibration-{args.calibrate}"
    g = load_generator("sd3")
    cache = TensorCache(out / "cache")
    base = {"g": g.fingerprint(), "embed": asdict(cfg.embed)}
    cal = calibration_noise(g, cfg, cache, base, progress=True)
    images = _marked_images(g, cfg, {}, cache, base, progress=True)
    regen_name = regen_generator_name(cfg.regen_generator, g)
    test = _recover(g, CLEAN, images, {}, cfg, cache, base, _regen_fn(regen_name, cfg.regen_steps, g), regen_name,
                    _Quiet())[0][None]
    rows = []
    for geometry, (radius, inner, channels) in GEOMETRIES.items():
        r, ch = key_geometry(g, radius, channels)
        keys = [make_key(g.noise_shape, "rand", r, ch, seed=s, inner_radius=inner) for s in KEY_SEEDS]
        null = estimate_null(cal, keys[0])
        tests = {"plain cosine": lambda k: key_test(test, k)[1].numpy(),
                 "whitened, ranked among its fitting images (earlier)": lambda k, null=null: in_sample_p(null, test, k),
                 "split conformal + Ledoit-Wolf (empirical, default)":
                     lambda k, null=null: calibrated_test(test, k, null, "empirical")[1].numpy(),
                 "Ledoit-Wolf whitened, Beta tail (gaussian)":
                     lambda k, null=null: calibrated_test(test, k, null, "gaussian")[1].numpy()}
        for name, p_of in tests.items():
            fpr = np.array([np.mean(p_of(k) < ALPHA) for k in keys])
            rows.append({"geometry": geometry, "coordinates": null.dim, "test": name, "keys": len(keys),
                         "fpr_mean": fpr.mean(), "fpr_sd": fpr.std(), "fpr_min": fpr.min(), "fpr_max": fpr.max(),
                         "share_in_band": float(np.mean((fpr >= ALPHA / 2) & (fpr <= 2 * ALPHA)))})
    table = pd.DataFrame(rows)
    table.to_csv(out / f"{stem}.csv", index=False)
    md = ("# Per-key false-positive rate at alpha = 0.01, 300 rand keys, 1,000 unmarked `sd3` images\n\n"
          f"`python benchmarks/null_calibration.py --calibrate {args.calibrate}`; calibration: "
          f"{args.calibrate:,} unmarked images of seed 7919 (split: {null.n_fit} fit, {len(null.reference)} rank); "
          "band: [0.005, 0.02]; binomial noise alone: SD 0.0031.\n\n"
          + table.to_markdown(index=False, floatfmt=".4g") + "\n")
    atomic_write_text(out / f"{stem}.md", md)
    print(md)


if __name__ == "__main__":
    main()
