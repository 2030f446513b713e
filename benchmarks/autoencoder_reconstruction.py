"""How well the bundled autoencoder reconstructs real Fashion-MNIST, beside the real-data floor.

    python benchmarks/autoencoder_reconstruction.py [--autoencoder DIR] [--n 10000]

Writes benchmarks/results/autoencoder/reconstruction.{csv,md,json} and grid.png (rows: real test images, their
reconstructions, and samples of each installed latent preset).

Rows: "real floor" (the test images themselves) and "reconstruction" (decode(encode(x)) of the same test images,
through the posterior mean, PNG-quantised as a saved image would be). Columns: FID in the judge's feature space
against the shipped train statistics (60,000), with its 95% half-sampling interval; the judge's accuracy against
the true labels and its agreement with its own class of the original image; per-pixel error (MAE and RMSE on
[0, 1], PSNR in dB); encode and decode speed (images/s, CPU, batch 500). The test split is never trained on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffeval.data import load_fashion_mnist  # noqa: E402
from diffeval.feature_stats import read_stats, shipped_stats_path  # noqa: E402
from diffeval.features.fashion import FashionExtractor  # noqa: E402
from diffeval.generators import bundled_names, load_generator  # noqa: E402
from diffeval.generators.autoencoder import AUTOENCODER_DIR, load_autoencoder  # noqa: E402
from diffeval.io import write_table  # noqa: E402
from diffeval.metrics.frechet import fid_interval, frechet_distance  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "autoencoder"


def quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x * 255 + 0.5) / 255


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--autoencoder", default=None, help="autoencoder directory (default: the bundled one)")
    parser.add_argument("--n", type=int, default=10000, help="test images (at most 10,000)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    ae = load_autoencoder(args.autoencoder)
    images, labels = load_fashion_mnist("test")
    real = images[: args.n].float() / 255.0
    labels = labels[: args.n]

    t0 = time.perf_counter()
    with torch.no_grad():
        latents = ae.encode_batched(real, batch_size=500)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        rec = torch.cat([ae.decode(latents[i : i + 500]) for i in range(0, len(latents), 500)])
        t_dec = time.perf_counter() - t0
    rec = quantise(rec)

    judge = FashionExtractor()
    mu, sigma, n_ref = read_stats(shipped_stats_path("fashion-mnist-train", "fashion"))
    rows = []
    real_feats = judge.features(real, batch_size=500).numpy().astype(np.float64)
    real_pred = judge.logits_from_features(torch.as_tensor(real_feats)).argmax(1)
    for name, x, feats in (("real floor", real, real_feats),
                           ("reconstruction", rec, judge.features(rec, batch_size=500).numpy().astype(np.float64))):
        fid = frechet_distance(feats.mean(0), np.cov(feats, rowvar=False), mu, sigma)
        lo, hi = fid_interval(feats, mu, sigma, fid)
        pred = judge.logits_from_features(torch.as_tensor(feats)).argmax(1)
        err = x - real
        mse = float(err.pow(2).mean())
        rows.append({
            "images": name, "n": len(x), "fid": fid, "fid_lo": lo, "fid_hi": hi,
            "judge_accuracy": float((pred == labels).float().mean()),
            "class_agreement": float((pred == real_pred).float().mean()),
            "mae": float(err.abs().mean()), "rmse": mse ** 0.5,
            "psnr_db": float("inf") if mse == 0 else 10 * np.log10(1.0 / mse),
            "encode_per_s": len(x) / t_enc if name == "reconstruction" else None,
            "decode_per_s": len(x) / t_dec if name == "reconstruction" else None,
        })
    table = pd.DataFrame(rows)
    cfg = ae.config
    settings = {"autoencoder": str(args.autoencoder or AUTOENCODER_DIR), "latent_shape": list(cfg.latent_shape),
                "values_per_image": int(np.prod(cfg.latent_shape)), "pixels": cfg.in_channels * cfg.image_size ** 2,
                "scaling_factor": cfg.scaling_factor, "shift_factor": cfg.shift_factor, "reference": "train",
                "reference_n": int(n_ref), "latent_std_test": float(latents.std()),
                "latent_mean_test": float(latents.mean()), "torch_threads": torch.get_num_threads()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(table, out, "reconstruction", settings=settings, floatfmt=".4g")
    print(table.to_string(index=False))
    print(settings)
    _grid(real, rec, out / "grid.png")


def _grid(real: torch.Tensor, rec: torch.Tensor, path: Path, per_row: int = 10) -> None:
    """Rows: real test images, their reconstructions, then samples of each installed latent preset (classes
    0..9 in turn; the row order is given in the printout)."""
    from diffeval.data import class_prompt
    from diffeval.images.files import save_grid

    rows, names = [real[:per_row], rec[:per_row]], ["real", "reconstruction"]
    classes = torch.arange(per_row) % 10
    for name in bundled_names():
        g = load_generator(name)
        if g.autoencoder is None:
            continue
        rows.append(g.sample(per_row, seed=0, **g.class_conditions(classes, class_prompt)))
        names.append(name)
    save_grid(torch.cat(rows), path, nrow=per_row, scale=3)
    print("grid rows:", ", ".join(names))


if __name__ == "__main__":
    main()
