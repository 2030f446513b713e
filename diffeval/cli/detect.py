"""CLI group ``diffeval detect``: train, evaluate and apply the frequency-branch detector."""

from __future__ import annotations

import click

from .options import trust_pickle


@click.group()
def detect() -> None:
    """Detector of generated images: a pixel ResNet and a spectrum branch, fused."""


@detect.command("train")
@click.option("--train-generators", default="ddpm,sd1,sd2", show_default=True,
              help="Comma list of bundled names, checkpoint dirs or diffusers pipeline dirs whose samples are the "
                   "'generated' class ('' for none with --fake); NAME@SAMPLER:STEPS adds another sampler / step "
                   "count (e.g. dit@ddpm:100).")
@click.option("--real", "real_dir", default=None, type=click.Path(file_okay=False),
              help="Folder of real images (any size) instead of Fashion-MNIST.")
@click.option("--fake", "fake_dir", default=None, type=click.Path(file_okay=False),
              help="Folder of generated images (any size), added to the generated class.")
@click.option("--crop", type=int, default=None,
              help="Side of the centre crop every image is cut to (default: the smallest side; never resized).")
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
@trust_pickle
def train_cmd(**options) -> None:
    """Train a detector; OUT gets config.json, model.safetensors and train_log.csv."""
    from diffeval.detectors.jobs import TrainJob, run_train
    from diffeval.io import folders_locked

    job = TrainJob(**options)
    with folders_locked(job.out_dir, job.cache_dir, command="detect train"):
        click.echo(run_train(job))


@detect.command("eval")
@click.option("--detector", "detector_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--generators", default="ddpm,sd1,sd2,dit,sd3,sd3-reflow", show_default=True,
              help="Comma list (bundled names, checkpoint or pipeline dirs; '' for none with --fake); "
                   "NAME@SAMPLER:STEPS picks another sampler / step count (e.g. sd3@euler:8).")
@click.option("--real", "real_dir", default=None, type=click.Path(file_okay=False),
              help="Folder of real test images (any size; the first N) instead of Fashion-MNIST test.")
@click.option("--fake", "fake_dir", default=None, type=click.Path(file_okay=False),
              help="Folder of generated test images (any size; the first N): one more row, files:NAME.")
@click.option("--n", type=int, default=1000, show_default=True, help="Real test images and images per generator.")
@click.option("--perturbations", default="none,jpeg95,jpeg75,jpeg50,blur1,blur2,resize0.5", show_default=True,
              help="Comma list; darkK (every level below K set to 0, e.g. dark8) is also accepted.")
@click.option("--seed", type=int, default=1, show_default=True, help="Generation seed (training uses 0).")
@click.option("--cache", "cache_dir", default="detector_cache", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--out", "out_dir", default="detector_eval", show_default=True, type=click.Path(file_okay=False))
@trust_pickle
def eval_cmd(**options) -> None:
    """Accuracy, balanced accuracy, AP, AUC and ECE per (generator, sampler, steps, perturbation)."""
    from diffeval.detectors.jobs import EvalJob, run_eval
    from diffeval.io import folders_locked

    job = EvalJob(**options)
    with folders_locked(job.out_dir, job.cache_dir, command="detect eval"):
        click.echo(run_eval(job))


@detect.command("predict")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--detector", "detector_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_csv", default=None, type=click.Path(dir_okay=False), help="Also write the rows as CSV.")
@trust_pickle
def predict_cmd(**options) -> None:
    """P(generated) per image file; unreadable or wrongly sized files get a row with the error."""
    from diffeval.detectors.jobs import PredictJob, run_predict

    click.echo(run_predict(PredictJob(**options)))
