"""Leave-one-family-out evaluation of the detector, with the three ablations (pixel, frequency, both),
the spectral fingerprints of the bundled generators, and ROC curves.

Folds: the UNet generators (ddpm, sd1, sd2) against the transformer ones (dit, sd3, sd3-reflow): train
on one group, test on the other (held out) and on the trained group's fresh samples (seen). Every
generator uses its default sampler; the held-out group is also tested with one other sampler each
(EXTRA_SAMPLERS). Every detector is also evaluated under the perturbations. Ablations: pixel only,
frequency only, both (with and without augmentation); frequency only without the local (block-DCT)
spectrum ("frequency-global"); frequency only trained with dark levels zeroed in half the images
("frequency-darkaug"; the dark8 perturbation zeroes levels below 8 at test time). Results go to
benchmarks/results/detector/.

    python benchmarks/detector_lofo.py [--n-train 1000] [--n-eval 500] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.data import load_fashion_mnist  # noqa: E402
from diffeval.detectors.data import GeneratedSpec, generated_images  # noqa: E402
from diffeval.detectors.evaluate import evaluate_detector  # noqa: E402
from diffeval.detectors.model import DetectorConfig, load_detector  # noqa: E402
from diffeval.detectors.perturb import AugmentConfig  # noqa: E402
from diffeval.detectors.spectrum import local_log_spectrum, spectral_features  # noqa: E402
from diffeval.detectors.train import DetectorTrainConfig, train_config_from_dict, train_detector, training_sets  # noqa: E402
from diffeval.plots import pyplot, save_figure  # noqa: E402

GROUPS = {"unet": ["ddpm", "sd1", "sd2"], "transformer": ["dit", "sd3", "sd3-reflow"]}  # default samplers
# other samplers of a held-out group, tested but never trained on (ancestral sampling: the ddpm preset's
# default until it became DPM-Solver++ 100; dit's DDIM replaced by ancestral)
EXTRA_SAMPLERS = {"unet": ["ddpm@ddpm:100"], "transformer": ["dit@ddpm:100"]}
# (name, branches, augmentation: standard / none / standard plus dark-level zeroing, local_block)
VARIANTS = [
    ("pixel", "pixel", "standard", 4),
    ("frequency", "frequency", "standard", 4),
    ("both", "both", "standard", 4),
    ("both", "both", "none", 4),
    ("frequency-global", "frequency", "standard", 0),
    ("frequency-darkaug", "frequency", "dark", 4),
]
METRIC_COLUMNS = ["accuracy", "balanced_accuracy", "average_precision", "auc", "ece"]  # lofo_all.csv's measured values
AUGMENTATIONS = {
    "standard": AugmentConfig(),
    "none": AugmentConfig(0, 0, 0, 0, 0, 0),
    "dark": AugmentConfig(dark_p=0.5),
}


def fingerprints(out: Path, cache: Path, n: int) -> None:
    """Mean log spectrum of real test images and of each generator, and each generator's difference; the same
    for the radial profile and for the local (4x4 block-DCT) log spectrum, averaged over blocks."""
    plt = pyplot()
    real, _ = load_fashion_mnist("test")
    ref, ref_prof = (t.mean(0)[0] for t in spectral_features(real[:n].float() / 255))
    ref_local = local_log_spectrum(real[:n].float() / 255).mean((0, 2, 3)).reshape(4, 4)
    names = GROUPS["unet"] + GROUPS["transformer"]
    fig, axes = plt.subplots(3, len(names) + 1, figsize=(2.2 * (len(names) + 1), 6.9))
    axes[0, 0].imshow(ref, cmap="magma")
    axes[0, 0].set_title("real: mean log|F|", fontsize=8)
    axes[1, 0].plot(ref_prof, color="black")
    axes[1, 0].set_title("radial profile", fontsize=8)
    axes[2, 0].imshow(ref_local, cmap="magma")
    axes[2, 0].set_title("real: mean local log|DCT 4x4|", fontsize=8)
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
        local = local_log_spectrum(x.float() / 255).mean((0, 2, 3)).reshape(4, 4) - ref_local
        lim = float(local.abs().max())
        axes[2, j].imshow(local, cmap="coolwarm", vmin=-lim, vmax=lim)
        axes[2, j].set_title(f"local DCT - real (±{lim:.2f})", fontsize=8)
    axes[1, 0].legend(fontsize=5)
    for ax in [*axes[0], *axes[2]]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, out / "spectral_fingerprints.png")


def dark_pixels(out: Path, cache: Path, n: int) -> pd.DataFrame:
    """Per source, over n images (seed 1 / the test split): the share of pixels at exactly 0, at 1-7 (of 255)
    and of 4x4 blocks that are exactly flat black: the low-amplitude background noise the local spectrum sees."""
    real, _ = load_fashion_mnist("test")
    sources = [("Fashion-MNIST test", real[:n])]
    for item in GROUPS["unet"] + GROUPS["transformer"] + EXTRA_SAMPLERS["unet"] + EXTRA_SAMPLERS["transformer"]:
        spec = GeneratedSpec.parse(item, seed=1)
        x, entry = generated_images(spec, n, cache)
        sources.append((f"{entry['generator']} ({entry['sampler']}, {entry['steps']})", x))
    rows = []
    for name, x in sources:
        v = x.long()
        blocks = v.reshape(len(v), -1, 7, 4, 7, 4).amax((3, 5))
        rows.append({"images": name, "n": len(v), "pixels at 0": (v == 0).float().mean().item(),
                     "pixels at 1-7": ((v >= 1) & (v <= 7)).float().mean().item(),
                     "4x4 blocks all 0": (blocks == 0).float().mean().item(),
                     "mean level": v.float().mean().item()})
    table = pd.DataFrame(rows)
    parts = ["# Dark pixels: real against generated", "",
             f"`python benchmarks/detector_lofo.py --fingerprints-only --n-eval {n}` (8-bit levels 0-255)", "",
             table.to_markdown(index=False, floatfmt=".3f"), ""]
    (out / "dark_pixels.md").write_text("\n".join(parts))
    return table


def roc_plot(out: Path, curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]) -> None:
    """ROC per (variant, fold): colour by variant, solid UNet -> transformers, dashed transformers -> UNets."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.8))
    colours = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(v for v, _ in curves))}
    for (name, fold), (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, lw=1.2, color=colours[name], ls="-" if fold.startswith("unet") else "--",
                label=f"{name}, {fold}")
    ax.plot([0, 1], [0, 1], color="gray", lw=0.5, ls=":")
    ax.set_xlabel("false positive rate (real called generated)")
    ax.set_ylabel("true positive rate (held-out generators)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, out / "roc_held_out.png")


def trained(cfg: DetectorTrainConfig, cache: Path, directory: Path):
    """The detector in ``directory`` if it was trained with ``cfg`` (fields it predates at their defaults) on the
    same generator weights (their fingerprints), so a rerun resumes; otherwise train it there."""
    sets = training_sets(cfg, cache)
    saved = directory / "config.json"
    if saved.is_file():
        info = json.loads(saved.read_text())["info"]
        same_weights = [e["fingerprint"] for e in info.get("generated", [])] == [e["fingerprint"] for e in sets[2]]
        if (
            same_weights
            and "train_config" in info
            and asdict(train_config_from_dict(info["train_config"])) == asdict(cfg)
        ):
            print(f"reusing {directory}")
            return load_detector(directory)
    return train_detector(cfg, cache, directory, progress=True, sets=sets)[0]


def write_report(table: pd.DataFrame, out: Path, args: argparse.Namespace, perturbations: list[str]) -> str:
    """lofo.md from the every-row table (lofo_all.csv); returns its headline section."""
    if "seed" not in table:
        table = table.assign(seed=0)
    variant = ["branches", "augmented"]
    held = table[table.role == "held out"]
    clean = held[held.perturbation == "none"]
    metrics = ["average_precision", "auc", "accuracy"]
    headline = clean.groupby(variant, sort=False)[metrics].mean()
    # each held-out family once: sd3 and sd3-reflow are one family (sd3)
    per_family = clean.groupby([*variant, "seed", "trained_on", "family"], sort=False)["average_precision"].mean()
    headline.insert(1, "AP, mean over families", per_family.groupby(variant, sort=False).mean())
    headline["AP under JPEG 75"] = (
        held[held.perturbation == "jpeg75"].groupby(variant, sort=False)["average_precision"].mean()
    )
    seeds = sorted(table.seed.unique())
    seeds_of = table.groupby(variant, sort=False)["seed"].agg(lambda v: ",".join(map(str, sorted(set(v)))))
    headline.insert(0, "seeds", seeds_of)
    if len(seeds) > 1:
        for column, rows in (("AP", clean), ("AP under JPEG 75", held[held.perturbation == "jpeg75"])):
            per_seed = (
                rows.groupby([*variant, "seed"], sort=False)["average_precision"].mean().groupby(variant, sort=False)
            )
            headline[f"{column}: seed min-max"] = (
                per_seed.min().map("{:.4f}".format) + "-" + per_seed.max().map("{:.4f}".format)
            )
    per_fold = clean.groupby([*variant, "trained_on"], sort=False)[metrics].mean().reset_index()
    by_perturbation = held.pivot_table(index=variant, columns="perturbation", values="average_precision", sort=False)
    none = table[(table.role != "seen") & (table.perturbation == "none")].copy()
    none["test images"] = none.generator + " (" + none.sampler + ", " + none.steps.astype(str) + ")"
    by_generator = none.pivot_table(index=variant, columns="test images", values="average_precision", sort=False)
    parts = [
        "# Detector: leave-one-family-out",
        "",
        f"`python benchmarks/detector_lofo.py --n-train {args.n_train} "
        f"--n-eval {args.n_eval} --steps {args.steps} --stem-stride {args.stem_stride} --seeds "
        f"{','.join(map(str, seeds))}`" + (
            "" if seeds_of.nunique() == 1 else
            " (the variants of the `seeds` column only: runs with `--variants` and `--out` elsewhere, joined with "
            "`--report-only --merge OTHER/lofo_all.csv`)"),
        "",
        "Folds: train on the UNet generators (ddpm, sd1, sd2), test on the transformers (dit, sd3, sd3-reflow), "
        "and the other way round; every mean is over both folds and every training seed. `frequency-global` is the "
        "frequency branch without its local (block-DCT) spectrum.",
        "",
        "## Held-out generators, averaged over both folds (default samplers, no perturbation)",
        "",
        headline.reset_index().to_markdown(index=False, floatfmt=".4f"),
        "",
        "## Held-out average precision by perturbation",
        "",
        by_perturbation[[p for p in perturbations if p in by_perturbation]]
        .reset_index()
        .to_markdown(index=False, floatfmt=".4f"),
        "",
        "## Held-out average precision per test generator (no perturbation; other samplers never trained on)",
        "",
        by_generator.reset_index().to_markdown(index=False, floatfmt=".4f"),
        "",
        "## Per fold",
        "",
        per_fold.to_markdown(index=False, floatfmt=".4f"),
        "",
        "## Every row",
        "",
        table.to_markdown(index=False, floatfmt=".4f"),
        "",
    ]
    (out / "lofo.md").write_text("\n".join(parts))
    return "\n".join(parts[:10])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-train", type=int, default=1000, help="generated training images per generator")
    parser.add_argument("--n-eval", type=int, default=500, help="real and generated test images per generator")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--stem-stride", type=int, default=2)
    parser.add_argument("--variants", default=",".join(dict.fromkeys(v[0] for v in VARIANTS)),
                        help="which of pixel, frequency, both, frequency-global to train")
    parser.add_argument("--seeds", default="0", help="training seeds, comma list (each trains every variant)")
    parser.add_argument("--perturbations", default="none,jpeg95,jpeg75,jpeg50,blur1,blur2,resize0.5,dark8",
                        help="dark8 (levels below 8 set to 0) tests the black-background cue")
    parser.add_argument("--fingerprints-only", action="store_true",
                        help="only the spectral-fingerprint plot and the dark-pixel table (no training)")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild lofo.md from the saved lofo_all.csv (no training, no plots)")
    parser.add_argument("--merge", action="append", default=[],
                        help="with --report-only: append the rows of another run's lofo_all.csv (other seeds)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "detector"))
    parser.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "detector" / "cache"))
    args = parser.parse_args()
    out, cache = Path(args.out), Path(args.cache)
    out.mkdir(parents=True, exist_ok=True)
    perturbations = [p.strip() for p in args.perturbations.split(",")]
    if args.report_only:
        table = pd.concat([pd.read_csv(out / "lofo_all.csv"), *(pd.read_csv(m) for m in args.merge)],
                          ignore_index=True)
        table = table.drop_duplicates(subset=[c for c in table if c not in METRIC_COLUMNS], keep="last")
        table.to_csv(out / "lofo_all.csv", index=False)
        print(write_report(table, out, args, perturbations))
        return
    fingerprints(out, cache, args.n_eval)
    print(dark_pixels(out, cache, args.n_eval).to_string(index=False))
    if args.fingerprints_only:
        return
    from sklearn.metrics import roc_curve

    rows, curves = [], {}
    chosen = {v.strip() for v in args.variants.split(",")}
    seeds = [int(x) for x in str(args.seeds).split(",")]
    for seed in seeds:
        for held, train_group in (("transformer", "unet"), ("unet", "transformer")):
            for name, branches, augmentation, local_block in (v for v in VARIANTS if v[0] in chosen):
                augmented = augmentation != "none"
                cfg = DetectorTrainConfig(GROUPS[train_group], args.n_train, args.steps, seed=seed,
                                          augment=AUGMENTATIONS[augmentation],
                                          detector=DetectorConfig(branches=branches, stem_stride=args.stem_stride,
                                                                  local_block=local_block))
                tag = f"train-{train_group}-{name}{'' if augmented else '-noaug'}{f'-seed{seed}' if seed else ''}"
                model = trained(cfg, cache, out / "models" / tag)
                for role, items, tests in (("held out", GROUPS[held], perturbations),
                                           ("held out, other sampler", EXTRA_SAMPLERS[held], perturbations),
                                           ("seen", GROUPS[train_group], ["none"])):
                    table = evaluate_detector(model, [GeneratedSpec.parse(g, seed=1) for g in items], args.n_eval,
                                              cache, tests)
                    for column, value in (("role", role), ("seed", seed), ("augmented", augmented),
                                          ("branches", name), ("trained_on", train_group)):
                        table.insert(0, column, value)
                    rows.append(table)
                if augmented and seed == seeds[0]:
                    real, _ = load_fashion_mnist("test")
                    fake = torch.cat([generated_images(GeneratedSpec.parse(g, seed=1), args.n_eval, cache)[0]
                                      for g in GROUPS[held]])
                    x = torch.cat([real[: len(fake)], fake]).float() / 255
                    y = np.r_[np.zeros(len(fake)), np.ones(len(fake))]
                    fpr, tpr, _ = roc_curve(y, model.predict_proba(x).numpy())
                    curves[(name, f"{train_group} -> {held}")] = (fpr, tpr)
                pd.concat(rows).to_csv(out / "lofo_all.csv", index=False)
    table = pd.concat(rows, ignore_index=True)
    table.to_csv(out / "lofo_all.csv", index=False)
    roc_plot(out, curves)
    print(write_report(table, out, args, perturbations))


if __name__ == "__main__":
    main()
