"""Leave-one-family-out evaluation of the detector, with the three ablations (pixel, frequency, both),
the spectral fingerprints of the bundled generators, and ROC curves.

Folds: the UNet generators (ddpm, sd1, sd2) against the transformer ones (dit, sd3, sd3-reflow): train
on one group, test on the other (held out) and on the trained group's fresh samples (seen). Every
detector is also evaluated under the perturbations. Results go to benchmarks/results/detector/.

    python benchmarks/detector_lofo.py [--n-train 1000] [--n-eval 500] [--steps 1500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.data import GeneratedSpec, generated_images  # noqa: E402
from detectors.evaluate import evaluate_detector  # noqa: E402
from detectors.model import DetectorConfig  # noqa: E402
from detectors.perturb import AugmentConfig  # noqa: E402
from detectors.spectrum import spectral_features  # noqa: E402
from detectors.train import DetectorTrainConfig, train_detector  # noqa: E402
from diffeval.data import load_fashion_mnist  # noqa: E402
from diffeval.plots import pyplot, save_figure  # noqa: E402

# ddpm is pinned to the 100-step ancestral sampler its committed results were made with (its default
# was that sampler until it became DPM-Solver++ 100); the others use their defaults
GROUPS = {"unet": ["ddpm@ddpm:100", "sd1", "sd2"], "transformer": ["dit", "sd3", "sd3-reflow"]}


def fingerprints(out: Path, cache: Path, n: int) -> None:
    """Mean log spectrum of real test images and of each generator, and each generator's difference."""
    plt = pyplot()
    real, _ = load_fashion_mnist("test")
    ref, ref_prof = (t.mean(0)[0] for t in spectral_features(real[:n].float() / 255))
    names = GROUPS["unet"] + GROUPS["transformer"]
    fig, axes = plt.subplots(2, len(names) + 1, figsize=(2.2 * (len(names) + 1), 4.6))
    axes[0, 0].imshow(ref, cmap="magma")
    axes[0, 0].set_title("real: mean log|F|", fontsize=8)
    axes[1, 0].plot(ref_prof, color="black")
    axes[1, 0].set_title("radial profile", fontsize=8)
    for j, source in enumerate((GeneratedSpec.parse(item, seed=1) for item in names), start=1):
        x, _ = generated_images(source, n, cache)
        spec, prof = (t.mean(0)[0] for t in spectral_features(x.float() / 255))
        diff = spec - ref
        lim = float(diff.abs().max())
        axes[0, j].imshow(diff, cmap="coolwarm", vmin=-lim, vmax=lim)
        axes[0, j].set_title(f"{source.generator} - real (±{lim:.2f})", fontsize=8)
        axes[1, 0].plot(prof, lw=0.8, label=source.generator)
        axes[1, j].plot(prof - ref_prof)
        axes[1, j].axhline(0, color="gray", lw=0.5)
        axes[1, j].set_title(f"{source.generator}: profile - real", fontsize=8)
    axes[1, 0].legend(fontsize=5)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, out / "spectral_fingerprints.png")


def roc_plot(out: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for label, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, lw=1, label=label)
    ax.plot([0, 1], [0, 1], color="gray", lw=0.5, ls="--")
    ax.set_xlabel("false positive rate (real called generated)")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, out / "roc_held_out.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=1000, help="generated training images per generator")
    parser.add_argument("--n-eval", type=int, default=500, help="real and generated test images per generator")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--stem-stride", type=int, default=2)
    parser.add_argument("--branches", default="pixel,frequency,both")
    parser.add_argument("--perturbations", default="none,jpeg95,jpeg75,jpeg50,blur1,blur2,resize0.5")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "detector"))
    parser.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "detector" / "cache"))
    args = parser.parse_args()
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    fingerprints(out, cache, args.n_eval)
    from sklearn.metrics import roc_curve

    perturbations = [p.strip() for p in args.perturbations.split(",")]
    rows, curves = [], {}
    for held, train_group in (("transformer", "unet"), ("unet", "transformer")):
        for branches in args.branches.split(","):
            for augmented in (True, False) if branches == "both" else (True,):
                cfg = DetectorTrainConfig(GROUPS[train_group], args.n_train, args.steps, augment=AugmentConfig() if augmented
                                          else AugmentConfig(0, 0, 0, 0, 0, 0),
                                          detector=DetectorConfig(branches=branches, stem_stride=args.stem_stride))
                tag = f"train-{train_group}-{branches}{'' if augmented else '-noaug'}"
                model, _ = train_detector(cfg, cache, out / "models" / tag, progress=True)
                for group, role in ((held, "held out"), (train_group, "seen")):
                    specs = [GeneratedSpec.parse(g, seed=1) for g in GROUPS[group]]
                    table = evaluate_detector(model, specs, args.n_eval, cache,
                                              perturbations if role == "held out" else ["none"])
                    table.insert(0, "role", role)
                    table.insert(0, "augmented", augmented)
                    table.insert(0, "branches", branches)
                    table.insert(0, "trained_on", train_group)
                    rows.append(table)
                if augmented:
                    real, _ = load_fashion_mnist("test")
                    fake = torch.cat([generated_images(GeneratedSpec.parse(g, seed=1), args.n_eval, cache)[0] for g in GROUPS[held]])
                    x = torch.cat([real[: len(fake)], fake]).float() / 255
                    y = np.r_[np.zeros(len(fake)), np.ones(len(fake))]
                    fpr, tpr, _ = roc_curve(y, model.predict_proba(x).numpy())
                    curves[f"{branches}, {train_group} -> {held}"] = (fpr, tpr)
                pd.concat(rows).to_csv(out / "lofo_all.csv", index=False)
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(out / "lofo_all.csv", index=False)
    roc_plot(out, curves)
    held = table[(table.role == "held out") & (table.perturbation == "none")]
    summary = held.groupby(["branches", "augmented", "trained_on"])[["average_precision", "auc", "accuracy"]].mean()
    summary = summary.reset_index()
    ablation = held.groupby(["branches", "augmented"])[["average_precision", "auc", "accuracy"]].mean().reset_index()
    jpeg = table[(table.role == "held out") & (table.perturbation == "jpeg75")]
    jpeg = jpeg.groupby(["branches", "augmented"])["average_precision"].mean().reset_index(name="AP under JPEG 75")
    parts = ["# Detector: leave-one-family-out", "", f"`python benchmarks/detector_lofo.py --n-train {args.n_train} "
             f"--n-eval {args.n_eval} --steps {args.steps} --stem-stride {args.stem_stride}`", "",
             "## Held-out families, averaged over both folds (no perturbation)", "",
             ablation.merge(jpeg, on=["branches", "augmented"], how="left").to_markdown(index=False, floatfmt=".4f"), "",
             "## Per fold", "", summary.to_markdown(index=False, floatfmt=".4f"), "",
             "## Every row", "", table.to_markdown(index=False, floatfmt=".4f"), ""]
    (out / "lofo.md").write_text("\n".join(parts))
    print("\n".join(parts[:12]))


if __name__ == "__main__":
    main()
