"""CLI group ``diffeval detect``: train, evaluate and apply the frequency-branch detector."""

from __future__ import annotations

import json
from pathlib import Path

import click

from diffeval.io import atomic_write_text


@click.group()
def detect() -> None:
    """Detector of generated images: a pixel ResNet and a spectrum branch, fused."""


@detect.command("train")
@click.option("--train-generators", default="ddpm,sd1,sd2", show_default=True,
              help="Comma list of bundled names or checkpoint dirs whose samples are the 'generated' class; "
                   "NAME@SAMPLER:STEPS adds another sampler / step count (e.g. dit@ddpm:100).")
@click.option("--n-per-generator", type=int, default=2000, show_default=True)
@click.option("--branches", type=click.Choice(["pixel", "frequency", "both"]), default="both", show_default=True)
@click.option("--steps", type=int, default=1500, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--stem-stride", type=int, default=1, show_default=True, help="ResNet stem stride (2: about 4x cheaper).")
@click.option("--pretrained", default=None, help="Optional ResNet weight file (conv1/fc are replaced).")
@click.option("--local-block", type=int, default=4, show_default=True,
              help="Block size of the frequency branch's local (block-DCT) log spectrum; 0 leaves it out.")
@click.option("--no-augment", is_flag=True, help="Train without blur/JPEG/resize augmentation.")
@click.option("--dark-p", type=float, default=0.0, show_default=True,
              help="Probability that a training image has every level below K set to 0 (K uniform in 0-16), "
                   "so that the detector cannot rely on exactly black backgrounds alone.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cache", "cache_dir", default="detector_cache", show_default=True,
              help="Where generated images are cached (with manifest.json).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def train_cmd(train_generators, n_per_generator, branches, steps, batch_size, lr, stem_stride, pretrained, local_block,
              no_augment, dark_p, seed, cache_dir, device, out_dir) -> None:
    """Train a detector; OUT gets config.json, model.safetensors and train_log.csv."""
    from diffeval.detectors.model import DetectorConfig
    from diffeval.detectors.perturb import AugmentConfig
    from diffeval.detectors.train import DetectorTrainConfig, train_detector

    aug = AugmentConfig(0, 0, 0, 0, 0, 0, dark_p=dark_p) if no_augment else AugmentConfig(dark_p=dark_p)
    cfg = DetectorTrainConfig([g.strip() for g in train_generators.split(",") if g.strip()], n_per_generator, steps,
                              batch_size, lr, seed=seed, augment=aug,
                              detector=DetectorConfig(branches=branches, stem_stride=stem_stride, pretrained=pretrained,
                                                       local_block=local_block))
    _, log = train_detector(cfg, cache_dir, out_dir, device)
    val = json.loads((Path(out_dir) / "config.json").read_text())["info"]["validation"]
    click.echo(
        f"final loss {log['loss'].iloc[-1]:.4f}; validation " + ", ".join(f"{k} {v:.4f}" for k, v in val.items())
    )


@detect.command("eval")
@click.option("--detector", "detector_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--generators", default="ddpm,sd1,sd2,dit,sd3,sd3-reflow", show_default=True,
              help="Comma list; NAME@SAMPLER:STEPS picks another sampler / step count (e.g. sd3@euler:8).")
@click.option("--n", type=int, default=1000, show_default=True, help="Real test images and images per generator.")
@click.option("--perturbations", default="none,jpeg95,jpeg75,jpeg50,blur1,blur2,resize0.5", show_default=True,
              help="Comma list; darkK (every level below K set to 0, e.g. dark8) is also accepted.")
@click.option("--seed", type=int, default=1, show_default=True, help="Generation seed (training uses 0).")
@click.option("--cache", "cache_dir", default="detector_cache", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", "out_dir", default="detector_eval", show_default=True, type=click.Path(file_okay=False))
def eval_cmd(detector_dir, generators, n, perturbations, seed, cache_dir, device, out_dir) -> None:
    """Accuracy, balanced accuracy, AP, AUC and ECE per (generator, sampler, steps, perturbation)."""
    from diffeval.detectors.data import GeneratedSpec
    from diffeval.detectors.evaluate import evaluate_detector
    from diffeval.detectors.model import load_detector

    specs = [GeneratedSpec.parse(g, seed) for g in generators.split(",") if g.strip()]
    model = load_detector(detector_dir, device)
    table = evaluate_detector(model, specs, n, cache_dir, [p.strip() for p in perturbations.split(",")], device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "eval.csv", table.to_csv(index=False))
    atomic_write_text(out / "eval.md", table.to_markdown(index=False, floatfmt=".4f") + "\n")
    atomic_write_text(out / "eval.json", json.dumps(table.to_dict(orient="records"), indent=1))
    click.echo(table.to_string(index=False))


@detect.command("predict")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--detector", "detector_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_csv", default=None, type=click.Path(dir_okay=False), help="Also write the rows as CSV.")
def predict_cmd(images, detector_dir, out_csv) -> None:
    """P(generated) per image file; unreadable or wrongly sized files get a row with the error."""
    from diffeval.detectors.evaluate import predict_files
    from diffeval.detectors.model import load_detector

    rows = predict_files(load_detector(detector_dir), images)
    if out_csv:
        atomic_write_text(Path(out_csv), rows.to_csv(index=False))
    click.echo(rows.to_string(index=False))
