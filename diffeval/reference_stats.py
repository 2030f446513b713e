"""Make the reference statistics shipped with the package (``diffeval/assets/stats``).

    python -m diffeval.reference_stats [--data-dir DIR]

For each Fashion-MNIST split, the mean and covariance (float64, pytorch-fid's ``mu``/``sigma``) of
the bundled judge's 128-d features (the ``fashion`` feature space), with the image count and a hash
of the extractor (``extractor_id``) so that stale files are recognised and ignored.
"""

from __future__ import annotations

import argparse
import time

from .data import load_fashion_mnist
from .feature_stats import STATS_DIR, extractor_id, shipped_stats_path, stats_of
from .features import get_extractor


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    extractor = get_extractor("fashion")
    STATS_DIR.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        t0 = time.time()
        images, _ = load_fashion_mnist(split, args.data_dir)
        stats = stats_of(images, extractor)
        path = shipped_stats_path(f"fashion-mnist:{split}", extractor.name)
        stats.save_npz(
            path, feature_space=extractor.name, extractor_id=extractor_id(extractor), source=f"fashion-mnist:{split}"
        )
        print(f"{path.name}: n={stats.n}, d={extractor.dim}, {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
