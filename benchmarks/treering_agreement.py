"""diffeval's paper-layout Tree-Ring key and paper statistics against an independent port of Wen et al.'s code
(tests/watermark/wen_reference.py) on identical latents: the mask, the key values, the injected latents, the L1
distance and the p-value, as max abs differences (and the largest relative difference of the distance).

    python benchmarks/treering_agreement.py [--n 200]

Writes benchmarks/results/treering_agreement.{csv,md,json} and treering_calibration.{csv,md,json} (the false-positive
rate of each p-value on unmarked white latents). Latents: N(0, 1) draws at the paper's 4x64x64 shape,
radius 10, channel 3; "marked" ones carry the key (injected by each side's own code), "unmarked" ones do not;
rings, rand and zeros patterns, key seeds 0..4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffeval.io import write_table  # noqa: E402
from diffeval.watermark.keys import make_key  # noqa: E402
from diffeval.watermark.statistics import inject, key_distance, paper_pvalue  # noqa: E402
from tests.watermark import wen_reference as wen  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def agreement(n: int = 200, shape=(4, 64, 64), radius: int = 10, channel: int = 3, seeds=range(5)) -> pd.DataFrame:
    """One row per (pattern, key seed): max abs differences between diffeval and the port."""
    rows = []
    c, h, w = shape
    scale = (h * w) ** 0.5  # their FFT is unnormalised, diffeval's orthonormal
    for pattern in ("rings", "rand", "zeros"):
        for seed in seeds:
            key = make_key(shape, pattern, radius, (channel,), seed=seed, layout="paper")
            patch = wen.watermarking_pattern((1, *shape), pattern, radius, seed)
            g = torch.Generator().manual_seed(1000 + seed)
            latents = torch.randn(n, *shape, generator=g)
            mask = wen.watermarking_mask(latents[:1], radius, channel)  # their code works on one image at a time
            theirs_marked = torch.cat([wen.inject_watermark(latents[i : i + 1].clone(), mask, patch)
                                       for i in range(n)])
            ours_marked = inject(latents, key)
            d_ours = {m: key_distance(x, key).numpy() * scale for m, x in (("u", latents), ("m", theirs_marked))}
            p_ours = {m: paper_pvalue(x, key).numpy() for m, x in (("u", latents), ("m", theirs_marked))}
            d_theirs = {m: np.array([wen.l1_metric(x[i : i + 1], mask, patch) for i in range(n)])
                        for m, x in (("u", latents), ("m", theirs_marked))}
            p_theirs = {m: np.array([wen.p_value(x[i : i + 1], mask, patch) for i in range(n)])
                        for m, x in (("u", latents), ("m", theirs_marked))}
            rows.append({
                "pattern": pattern, "key_seed": seed, "n_latents": n,
                "mask_bins_differ": int((key.mask != mask[0, channel]).sum()),
                "key_values_max_abs": float((key.values[0] * scale - patch[0, channel]).abs()[key.mask].max()),
                "injected_max_abs": float((ours_marked - theirs_marked).abs().max()),
                "distance_max_abs": float(max(np.abs(d_ours[m] - d_theirs[m]).max() for m in "um")),
                "distance_max_rel": float(max((np.abs(d_ours[m] - d_theirs[m]) / d_theirs[m]).max() for m in "um")),
                "p_value_max_abs": float(max(np.abs(p_ours[m] - p_theirs[m]).max() for m in "um")),
                "mean_distance_unmarked": float(d_theirs["u"].mean()),
                "mean_distance_marked": float(d_theirs["m"].mean()),
            })
    return pd.DataFrame(rows)


def calibration(n: int = 4000, shape=(4, 64, 64), radius: int = 10, channel: int = 3, alpha: float = 0.01):
    """Measured false-positive rate at ``alpha`` of each p-value on ``n`` unmarked N(0, 1) latents (a calibrated
    test gives ``alpha``): the paper's p-value with the paper's key, diffeval's ncx2 (sigma unit and mask) and
    cosine tests with diffeval's centred key; key seed 0."""
    from diffeval.watermark.statistics import key_pvalue

    z = torch.randn(n, *shape, generator=torch.Generator().manual_seed(5))
    rows = []
    for pattern in ("rings", "rand", "zeros"):
        paper = make_key(shape, pattern, radius, (channel,), seed=0, layout="paper")
        centred = make_key(shape, pattern, radius, (channel,), seed=0)
        tests = {"paper (Wen et al.)": paper_pvalue(z, paper),
                 "ncx2, sigma unit": key_pvalue(z, centred, "unit", "ncx2"),
                 "ncx2, sigma mask": key_pvalue(z, centred, "mask", "ncx2")}
        if pattern != "zeros":
            tests["cosine (default)"] = key_pvalue(z, centred, "unit", "cosine")
        for name, pvalues in tests.items():
            p = pvalues.numpy()
            rows.append({"pattern": pattern, "test": name, "n_unmarked": n, "alpha": alpha,
                         "fpr": float(np.mean(p < alpha)), "fpr_se": float(np.sqrt(alpha * (1 - alpha) / n))})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    table = agreement(args.n)
    write_table(table, RESULTS, "treering_agreement", {"n": args.n, "shape": [4, 64, 64], "radius": 10,
                                                         "channel": 3})
    print(table.to_string(index=False))
    cal = calibration()
    write_table(cal, RESULTS, "treering_calibration", {"n": 4000, "shape": [4, 64, 64], "radius": 10, "channel": 3,
                                                       "key_seed": 0, "alpha": 0.01})
    print(cal.to_string(index=False))


if __name__ == "__main__":
    main()
