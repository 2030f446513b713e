"""Fréchet distance: our Cholesky + eigvalsh trace term against pytorch-fid's scipy.linalg.sqrtm, same statistics.

    python benchmarks/bench_frechet.py [--dim 2048] [--repeats 3] [--out benchmarks/results] [--threads N]

Builds two random well-conditioned covariances (A A^T / d + 0.1 I) and means, times both
implementations in the same run (best of --repeats, wall clock, after an untimed warm-up at d=32) and
writes <out>/frechet.csv and
<out>/frechet.md (atomically). Columns: dim, ours_s, pytorch_fid_s, speedup (pytorch_fid_s / ours_s),
ours_value, pytorch_fid_value, abs_diff, rel_diff, threads (torch threads / os cpu count).
--threads N limits BLAS/OpenMP (threadpoolctl) and torch to N threads; with busy cores, multi-threaded
BLAS can be oversubscribed and much slower, so compare on idle cores or with --threads 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.io import atomic_write_text  # noqa: E402
from diffeval.metrics import frechet_distance  # noqa: E402

COLUMNS = [
    "dim",
    "ours_s",
    "pytorch_fid_s",
    "speedup",
    "ours_value",
    "pytorch_fid_value",
    "abs_diff",
    "rel_diff",
    "threads",
]


def random_statistics(dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """mu1, sigma1, mu2, sigma2 with sigma = A A^T / d + 0.1 I (eigenvalues >= 0.1)."""
    rng = np.random.default_rng(seed)
    out = []
    for scale in (1.0, 1.3):
        a = rng.normal(size=(dim, dim)) * scale
        sigma = a @ a.T / dim + 0.1 * np.eye(dim)
        out += [rng.normal(size=dim), (sigma + sigma.T) / 2]
    return out[0], out[1], out[2], out[3]


def best_time(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    """(best wall-clock seconds over `repeats` calls, value of the last call)."""
    best, value = float("inf"), float("nan")
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = float(fn())
        best = min(best, time.perf_counter() - t0)
    return best, value


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    return ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info()) or "none"


def markdown_table(df: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> pd.DataFrame:
    """Time both implementations on the same statistics and write the csv/md; returns the table."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    w = random_statistics(32, seed=1)  # untimed warm-up: BLAS/LAPACK thread pools, lazy imports
    frechet_distance(*w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        calculate_frechet_distance(*w)

    mu1, s1, mu2, s2 = random_statistics(args.dim)
    ours_s, ours = best_time(lambda: frechet_distance(mu1, s1, mu2, s2), args.repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # sqrtm(disp=False) in recent SciPy
        ref_s, ref = best_time(lambda: calculate_frechet_distance(mu1, s1, mu2, s2), args.repeats)

    row = {
        "dim": args.dim,
        "ours_s": ours_s,
        "pytorch_fid_s": ref_s,
        "speedup": ref_s / ours_s,
        "ours_value": ours,
        "pytorch_fid_value": ref,
        "abs_diff": abs(ours - ref),
        "rel_diff": abs(ours - ref) / abs(ref),
        "threads": f"{torch.get_num_threads()}/{os.cpu_count()}",
    }
    df = pd.DataFrame([row], columns=COLUMNS)
    machine = (
        f"Machine: processor={platform.processor() or platform.machine()!r}, numpy {np.__version__}, "
        f"BLAS threads: {blas_threads()}; best of {args.repeats}, wall clock, same statistics and run."
    )
    atomic_write_text(args.out / "frechet.csv", df.to_csv(index=False, float_format="%.10g"))
    title = "# Fréchet distance: Cholesky + eigvalsh trace term vs pytorch-fid sqrtm"
    md = f"{title}\n\n{markdown_table(df)}\n\n{machine}\n"
    atomic_write_text(args.out / "frechet.md", md)
    print(md)
    return df


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--threads", type=int, default=None, help="limit BLAS/OpenMP and torch threads (default: library defaults)"
    )
    args = parser.parse_args(argv)
    if args.dim < 1 or args.repeats < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--dim, --repeats and --threads must be positive")
    if args.threads is None:
        return run(args)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        return run(args)


if __name__ == "__main__":
    main()
