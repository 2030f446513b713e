"""FID Inception feature statistics: our streaming pipeline against pytorch-fid's, same network.

    python benchmarks/bench_features.py [--n 2000] [--batch-size 50] [--size 28] [--out benchmarks/results]

Both pipelines run the same randomly initialised FID Inception (a random checkpoint with the real
file's keys, written to a temporary file first; timing does not depend on the weights) on the same
n random RGB images:

- ``diffeval_streaming``: uint8 tensor -> ``InceptionExtractor.iter_features`` -> ``GaussianStats.update``
  per batch; memory for the statistics is O(d^2) whatever n.
- ``pytorch_fid``: the images written as PNG files in a temporary folder, then
  ``pytorch_fid.fid_score.calculate_activation_statistics`` (PNG decoding included, ``num_workers=0``
  so everything runs in one process); it keeps all n x 2048 activations (float64) before ``np.cov``.

Memory: each pipeline runs in a fresh subprocess and reports its RSS high-water mark
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after computing mu and sigma. RSS rather than
tracemalloc because tracemalloc sees numpy's buffers but not torch's, which would hide exactly the
tensors that matter here. The figure is the whole process (interpreter, libraries, the ~95 MB
network, Inception's activations at 299 x 299), so differences between rows, not the absolute
values, show what a pipeline keeps; the Markdown file also lists the RSS before extraction.

Writes OUT/features.csv and OUT/features.md atomically. Columns: pipeline, n, batch_size,
images_per_s (extraction + statistics, model construction excluded), peak_mem_mb (RSS high-water,
MiB), state_mb (bytes the statistics keep: our float64 sums, or pytorch-fid's n x 2048 float64
activations), state_mb_at_50k (the same for 50,000 images: constant for ours, linear for pytorch-fid),
ratio_vs_pytorch_fid (images_per_s divided by pytorch-fid's).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.features.inception import FID_WEIGHTS_FILE, random_state_dict  # noqa: E402
from diffeval.io import atomic_write_text  # noqa: E402

PIPELINES = ("diffeval_streaming", "pytorch_fid")


def _rss_mb() -> float:
    """This process's RSS high-water mark in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(pipeline: str, weights: Path, data: Path, batch_size: int, result: Path) -> None:
    """Run one pipeline in this (fresh) process; write timing, memory, mu and sigma to ``result``."""
    images = torch.from_numpy(np.load(data)["images"])  # uint8 (N, 3, H, W)
    if pipeline == "diffeval_streaming":
        from diffeval.features import InceptionExtractor
        from diffeval.metrics.gaussian import GaussianStats

        extractor = InceptionExtractor(weights=weights)
        before = _rss_mb()
        start = time.perf_counter()
        stats = GaussianStats(extractor.dim)
        for features in extractor.iter_features(images, batch_size=batch_size):
            stats.update(features)
        mu, sigma = stats.mean, stats.cov
        state_mb = sum(v.nbytes for v in stats.state_dict().values()) / 2**20
    else:
        from pytorch_fid.fid_score import get_activations

        from diffeval.features.inception import build_fid_inception

        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = build_fid_inception(state, output_blocks=(3,))
        del state
        files = sorted(str(p) for p in (data.parent / "png").glob("*.png"))
        before = _rss_mb()
        start = time.perf_counter()
        # pytorch-fid's calculate_activation_statistics, spelled out to see the activations it keeps
        activations = get_activations(files, model, batch_size, 2048, "cpu", num_workers=0)
        mu, sigma = np.mean(activations, axis=0), np.cov(activations, rowvar=False)
        state_mb = activations.nbytes / 2**20
    seconds = time.perf_counter() - start
    np.savez(
        result, mu=mu, sigma=sigma, seconds=seconds, rss_before_mb=before, peak_mem_mb=_rss_mb(), state_mb=state_mb
    )


def write_images(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    """n random uint8 RGB images as one .npz (ours) and as PNG files in folder/png (pytorch-fid's)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, size, size), dtype=np.uint8)
    data = folder / "images.npz"
    np.savez(data, images=images)
    (folder / "png").mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / "png" / f"{i:06d}.png")
    return data


def _state_at(pipeline: str, state_mb: float, n: int, n_target: int) -> float:
    """What the statistics state would hold for n_target images: constant for the streaming sums,
    proportional to n for pytorch-fid's activation array."""
    return state_mb if pipeline == "diffeval_streaming" else state_mb * n_target / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--size", type=int, default=28, help="side of the random input images, pixels")
    ap.add_argument("--threads", type=int, default=None, help="torch threads in each worker (default: torch's)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--worker", choices=PIPELINES, help=argparse.SUPPRESS)
    ap.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        run_worker(args.worker, args.weights, args.data, args.batch_size, args.result)
        return

    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        tmp = Path(tmp)
        weights = tmp / FID_WEIGHTS_FILE
        torch.save(random_state_dict(seed=0), weights)
        data = write_images(tmp, args.n, args.size)
        for pipeline in PIPELINES:
            result = tmp / f"{pipeline}.npz"
            command = [sys.executable, __file__, "--worker", pipeline, "--weights", str(weights), "--data", str(data),
                       "--result", str(result), "--batch-size", str(args.batch_size)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            with np.load(result) as r:
                results[pipeline] = {k: r[k] for k in r.files}
            print(f"{pipeline}: {args.n / float(results[pipeline]['seconds']):.2f} images/s", flush=True)

    base = args.n / float(results["pytorch_fid"]["seconds"])
    for pipeline in PIPELINES:
        r = results[pipeline]
        speed = args.n / float(r["seconds"])
        rows.append(
            {
                "pipeline": pipeline,
                "n": args.n,
                "batch_size": args.batch_size,
                "images_per_s": round(speed, 3),
                "peak_mem_mb": round(float(r["peak_mem_mb"]), 1),
                "state_mb": round(float(r["state_mb"]), 2),
                "state_mb_at_50k": round(_state_at(pipeline, float(r["state_mb"]), args.n, 50000), 1),
                "ratio_vs_pytorch_fid": round(speed / base, 3),
            }
        )
    df = pd.DataFrame(rows)
    ours, ref = results["diffeval_streaming"], results["pytorch_fid"]
    d_mu = float(np.abs(ours["mu"] - ref["mu"]).max())
    d_sigma = float(np.abs(ours["sigma"] - ref["sigma"]).max())
    before = ", ".join(f"{p} {float(results[p]['rss_before_mb']):.1f} MiB" for p in PIPELINES)
    notes = (
        f"# FID Inception feature statistics: streaming vs pytorch-fid\n\n"
        f"Random-weight FID Inception, {args.n} random RGB images of {args.size}x{args.size} px, "
        f"batch {args.batch_size}, "
        f"torch threads {args.threads or torch.get_num_threads()}, CPU.\n\n"
        + df.to_markdown(index=False)
        + "\n\nimages_per_s: extraction plus mean/covariance, model construction excluded (pytorch-fid's "
        "includes PNG decoding). peak_mem_mb: RSS high-water mark of a fresh process per pipeline (mostly the network "
        "and Inception's 299x299 activations); state_mb: what the statistics keep (O(d^2) for ours, O(N d) for "
        "pytorch-fid; state_mb_at_50k extrapolates). RSS before "
        f"extraction: {before}. ratio_vs_pytorch_fid: images_per_s over pytorch-fid's.\n\n"
        f"Agreement of the statistics (same images, ours from uint8 tensors, pytorch-fid from PNG files): "
        f"max |mu diff| {d_mu:.3g}, max |sigma diff| {d_sigma:.3g}.\n"
    )
    out = Path(args.out)
    atomic_write_text(out / "features.csv", df.to_csv(index=False))
    atomic_write_text(out / "features.md", notes)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
