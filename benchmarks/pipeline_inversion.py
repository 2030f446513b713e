"""Latent inversion and Tree-Ring detection on tiny random-weight diffusers pipelines of every family.

    python benchmarks/pipeline_inversion.py [--n 8] [--keys 5]

Writes benchmarks/results/pipeline_inversion.{csv,md,json} and pipeline_treering.{csv,md,json}.

Round trip: initial latents z (the generator's own seeded draw) -> ``sample`` with the deterministic chain
(``ode_sampler``, 10 steps) -> ``invert_latents`` (from the final latents) or ``invert`` (from the decoded images,
PNG-quantised) -> relative error |z' - z| / |z| over n images. "exact" rows sample with the null condition and
guidance 1, the setting inversion assumes; "watermark" rows sample as Tree-Ring embeds (captions or classes at the
pipeline's default guidance) and invert with the null condition at guidance 1, as Tree-Ring detects.

Tree-Ring: per family and key seed, n marked and n unmarked images (captions/classes, default guidance), detected
from their PNGs (cosine score, 10 inversion steps, 2 fixed-point iterations); AUC per key, over ``--keys`` keys.
All weights are random, so these numbers test the code path, not a model: a random VAE does not invert its own
decodings (image round trips near 1), which is why "sd (cycle VAE)" adds an SD pipeline whose VAE was trained for
200 steps to invert them (tests/pipelines.cycle_train_vae).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffeval.generators import load_generator  # noqa: E402
from diffeval.io import write_table  # noqa: E402
from diffeval.watermark.detect import DetectSettings, recover_noise  # noqa: E402
from diffeval.watermark.embed import EmbedSettings, default_conditions, generate  # noqa: E402
from diffeval.watermark.keys import make_key  # noqa: E402
from diffeval.watermark.statistics import key_test  # noqa: E402
from tests.pipelines import BUILDERS, FAMILY_NAMES, save_tiny_sd  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STEPS = 10


def _png(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round() / 255


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def round_trip(g, family: str, n: int) -> list[dict]:
    rows = []
    z = g.initial_noise(n, seed=0)
    cond = default_conditions(g, n)
    for setting in ("exact", "watermark"):
        kw = {"guidance": 1.0} if setting == "exact" else {**cond}
        final = g.sample(n, steps=STEPS, sampler=g.ode_sampler, noise=z, output="latent", **kw)
        images = _png(g.sample(n, steps=STEPS, sampler=g.ode_sampler, noise=z, **kw))
        row = {"family": family, "pipeline": type(g.pipe).__name__, "denoiser": g.info.backbone,
               "prediction": g.info.parameterization, "noise_shape": "x".join(map(str, g.noise_shape)),
               "setting": setting, "steps": STEPS, "n": n}
        for k in (0, 2, 6):
            row[f"latent_rt_fp{k}"] = _rel(g.invert_latents(final, steps=STEPS, fixed_point=k), z)
        t0 = time.perf_counter()
        row["image_rt_fp2"] = _rel(g.invert(images, steps=STEPS, fixed_point=2), z)
        row["invert_s_per_image"] = (time.perf_counter() - t0) / n
        rows.append(row)
    return rows


def tree_ring(g, family: str, n: int, keys: int, radius: float) -> list[dict]:
    es, ds = EmbedSettings(steps=STEPS), DetectSettings(steps=STEPS, fixed_point=2)
    unmarked = recover_noise(g, _png(generate(g, None, n, es)), ds)
    rows = []
    for seed in range(keys):
        key = make_key(g.noise_shape, "rings", radius, (min(3, g.noise_shape[0] - 1),), seed=seed)
        marked = recover_noise(g, _png(generate(g, key, n, es)), ds)
        su, sm = key_test(unmarked, key)[0].numpy(), key_test(marked, key)[0].numpy()
        auc = roc_auc_score(np.r_[np.zeros(n), np.ones(n)], np.r_[su, sm])
        rows.append({"family": family, "key_seed": seed, "radius": radius, "n_marked": n, "n_unmarked": n,
                     "auc": float(auc), "mean_cos_marked": float(sm.mean()), "mean_cos_unmarked": float(su.mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--keys", type=int, default=5)
    ap.add_argument("--n-treering", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rt, tr = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {FAMILY_NAMES[name]: build(Path(tmp) / name) for name, build in BUILDERS.items()}
        folders["SD 1.x, cycle-trained VAE"] = save_tiny_sd(Path(tmp) / "sd-vae", vae_steps=200)
        for family, folder in folders.items():
            g = load_generator(folder, "cpu")
            rt += round_trip(g, family, args.n)
            tr += tree_ring(g, family, args.n_treering, args.keys, radius=3)
            print(pd.DataFrame(rt[-2:]).to_string(index=False), flush=True)
    rt_df = pd.DataFrame(rt)
    write_table(rt_df, RESULTS, "pipeline_inversion", {"n": args.n, "steps": STEPS, "weights": "random"})
    tr_df = pd.DataFrame(tr)
    summary = tr_df.groupby("family", sort=False)["auc"].agg(["median", "min", "max", "count"]).reset_index()
    write_table(tr_df, RESULTS, "pipeline_treering", {"n": args.n_treering, "keys": args.keys, "radius": 3,
                                                      "steps": STEPS, "test": "cosine", "weights": "random"},
                markdown=summary.to_markdown(index=False, floatfmt=".3g"))
    print(rt_df.to_string(index=False))
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
