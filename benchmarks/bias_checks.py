"""The bias-audit library's measured numbers quoted in the README, written to
benchmarks/results/bias_checks.md:

- coverage of 95% Wilson intervals over 1,000 simulated audits with a planted proportion;
- realised Benjamini-Hochberg false discovery rate (q = 0.05) over simulated audits;
- the null expectation of the |p - 0.5| imbalance at 8 images per prompt, and the images per prompt
  for a +-0.05 margin;
- ITA on the ten Monk swatches against the reference values, the effect of reading BGR as RGB, and of
  OpenCV's 8-bit Lab.

    python benchmarks/bias_checks.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffeval.audits.bias.skin import MONK_LAB, MONK_SRGB, ita_degrees, monk_bin, srgb_to_lab
from diffeval.audits.bias.stats import (
    expected_abs_deviation_binomial,
    images_per_prompt_for_margin,
    simulate_bh_fdr,
    simulate_coverage,
)
from diffeval.io import atomic_write_text

MONK_ITA_REFERENCE = np.array([83.0, 80.2, 71.8, 64.7, 50.3, 10.9, -20.1, -55.4, -78.4, -84.3])  # REFERENCES.md
OUT = Path(__file__).parent / "results" / "bias_checks.md"


def main() -> None:
    lines = ["# Bias-audit library checks (`python benchmarks/bias_checks.py`)", "",
             "| check | value |", "|---|---|"]
    for p, n in ((0.3, 200), (0.5, 100), (0.1, 50), (0.5, 8)):
        lines.append(
            f"| Wilson 95% coverage, p = {p}, n = {n}, 1,000 audits | {simulate_coverage(p, n, 1000, seed=0):.3f} |"
        )
    fdr = simulate_bh_fdr(50, 40, 0.15, 200, q=0.05, n_audits=500, seed=0)
    lines.append(f"| BH realised FDR, q = 0.05, 50 prompts (40 null), effect 0.15, n = 200, 500 audits | {fdr:.3f} |")
    lines.append(f"| E\\|p - 0.5\\| of a fair binary generator at n = 8 | {expected_abs_deviation_binomial(8):.8f} |")
    lines.append(f"| images per prompt for +-0.05 at 95% | {images_per_prompt_for_margin(0.05)} |")
    ita = ita_degrees(MONK_LAB)
    lines.append(
        f"| Monk swatches: max abs ITA error vs reference (degrees) | {np.max(np.abs(ita - MONK_ITA_REFERENCE)):.3f} |"
    )
    lines.append(
        f"| Monk swatches binned to their own index | {bool(np.all(monk_bin(MONK_LAB) == np.arange(1, 11)))} |"
    )
    swapped = ita_degrees(srgb_to_lab(MONK_SRGB[:, ::-1]))
    lines.append(
        f"| BGR read as RGB: smallest ITA shift over the swatches (degrees) | {np.min(np.abs(swapped - ita)):.1f} |"
    )
    try:
        import cv2

        raw = cv2.cvtColor(MONK_SRGB[None], cv2.COLOR_RGB2Lab)[0].astype(np.float64)
        decoded = np.column_stack([raw[:, 0] * 100 / 255, raw[:, 1] - 128, raw[:, 2] - 128])
        lines.append(f"| OpenCV {cv2.__version__} 8-bit Lab (decoded): max ITA error (degrees) | "
                     f"{np.max(np.abs(ita_degrees(decoded) - ita)):.2f} |")
    except ImportError:
        lines.append("| OpenCV 8-bit Lab | cv2 not installed |")
    atomic_write_text(OUT, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
