"""Does a schedule's non-zero terminal SNR bias what a text generator draws for a broad word?

Samples "a shoe" from pure noise, and again from noise carrying the average shoe image's share of signal
at t = 1 (alpha(1) * mean + sigma(1) * noise, the input the network saw in training at t = 1), and
prints the judged sandal / sneaker / ankle-boot counts. The README's figures (49/25/124 -> 66/42/91 of
200) are for the first even twin, trained with SD's scaled-linear schedule (alpha(1) = 0.068):

    git show ae8222b:audits/bias/assets/shoe-even/model.safetensors > old/model.safetensors
    git show ae8222b:audits/bias/assets/shoe-even/config.json > old/config.json
    python benchmarks/terminal_snr_leak.py old

For a zero-terminal-SNR generator (alpha(1) = 0) both rows are the same draw.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.data.fashion import load_fashion_mnist  # noqa: E402
from diffeval.generators import load_generator  # noqa: E402
from diffeval.judge import load_judge  # noqa: E402

SHOES = (5, 7, 9)  # sandal, sneaker, ankle boot


def main() -> None:
    g = load_generator(sys.argv[1] if len(sys.argv) > 1 else "sd2")
    n = 200
    a, s = (float(v) for v in g.schedule.alpha_sigma(torch.tensor([1.0], dtype=torch.float64)))
    x, y = load_fashion_mnist("train")
    shoe = (x[torch.isin(y, torch.tensor(SHOES))].float() / 127.5 - 1).mean(0)
    torch.manual_seed(0)
    eps = torch.randn(n, 1, 28, 28)
    judge = load_judge()
    print(f"alpha(1) = {a:.4f}, sigma(1) = {s:.4f}")
    for label, noise in (("pure noise", eps), ("noise + mean-shoe signal", a * shoe + s * eps)):
        counts = np.bincount(judge.predict(g.sample(n, prompts="a shoe", noise=noise, steps=20, guidance=1.0)).numpy(),
                             minlength=10)
        print(
            f"{label}: sandal {counts[5]}, sneaker {counts[7]}, ankle boot {counts[9]}, "
            f"other {n - counts[list(SHOES)].sum()}"
        )


if __name__ == "__main__":
    main()
