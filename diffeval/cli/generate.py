"""``diffeval train`` and ``diffeval sample``."""

from __future__ import annotations

import click

from diffeval.generators.names import PRESET_NAMES

from .options import trust_pickle


@click.command()
@click.option("--preset", default=None, type=click.Choice(PRESET_NAMES), help="Which preset to train.")
@click.option("--autoencoder", "train_ae", is_flag=True,
              help="Train the latent presets' autoencoder instead of a preset.")
@click.option("--autoencoder-from", "autoencoder_dir", default=None, type=click.Path(file_okay=False),
              help="Autoencoder directory a latent preset trains over (default: the bundled one).")
@click.option("--steps", type=int, default=None, help="Optimizer steps (default: the preset's budget).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Checkpoint directory.")
@click.option("--device", default="auto", show_default=True, help="cuda, mps, cpu or auto.")
@click.option("--data-dir", default=None,
              help="Folder with the Fashion-MNIST idx files (else DIFFEVAL_DATA / Debian package).")
@click.option("--base", "base_dir", default=None,
              help="Checkpoint to start reflow from (sd3-reflow; default: bundled sd3).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from OUT/train_state.pt if present.")
@click.option("--init-from", default=None,
              help="Start from this checkpoint's weights (same architecture), fresh optimizer.")
@trust_pickle
def train(preset, train_ae, autoencoder_dir, steps, out_dir, device, data_dir, base_dir, resume, init_from,
          trust_pickle) -> None:
    """Train a preset (or, with --autoencoder, the autoencoder of the latent presets) on Fashion-MNIST; writes
    config.json, model.safetensors (EMA for presets) and loss_log.csv."""
    from ..io import folders_locked

    _check_train_options(preset, train_ae, autoencoder_dir, base_dir, init_from)
    with folders_locked(out_dir, command="train"):
        click.echo(_run_training(preset, autoencoder_dir, steps, out_dir, device, data_dir, base_dir, resume,
                                 init_from, trust_pickle))


def _check_train_options(preset, train_ae: bool, autoencoder_dir, base_dir, init_from) -> None:
    if bool(preset) == train_ae:
        raise click.UsageError("give exactly one of --preset NAME and --autoencoder")
    if train_ae and (base_dir or init_from or autoencoder_dir):
        raise click.UsageError("--base, --init-from and --autoencoder-from apply to --preset")


def _run_training(preset, autoencoder_dir, steps, out_dir, device, data_dir, base_dir, resume, init_from,
                  trust_pickle) -> str:
    """Train the preset (None: the autoencoder) and return the line that reports it."""
    from ..bundle import train_bundled_autoencoder, train_preset

    if preset is None:
        log = train_bundled_autoencoder(out_dir, steps, device, data_dir, resume)
        name = "autoencoder"
    else:
        log = train_preset(preset, out_dir, steps, device, data_dir, base_dir, resume, init_from=init_from,
                           trust_pickle=trust_pickle, autoencoder_dir=autoencoder_dir)
        name = preset
    return f"{name}: {int(log['step'].iloc[-1])} steps, final loss {log['loss'].iloc[-1]:.4f} -> {out_dir}"


@click.command()
@click.option("--generator", "-g", "generator", required=True,
              help="Bundled name, checkpoint directory or diffusers pipeline directory.")
@click.option("--n", type=int, default=64, show_default=True, help="Number of images.")
@click.option("--prompt", "prompts", multiple=True, help="Prompt(s) for text generators; repeat to cycle.")
@click.option("--label", "labels", type=int, multiple=True,
              help="Class label(s) for class generators; repeat to cycle.")
@click.option("--steps", type=int, default=None, help="Sampling steps (default: the generator's).")
@click.option("--sampler", default=None, help="A sampler such as ddim, dpm++2m or euler (default: the generator's).")
@click.option("--guidance", type=float, default=None, help="Classifier-free guidance scale (1 = none).")
@click.option("--eta", type=float, default=None, help="DDIM eta (0 = deterministic).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out", default="grid.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--npz", "npz", default=None, type=click.Path(dir_okay=False),
              help="Also save the images (uint8) here.")
@click.option("--height", type=int, default=None, help="Image height in pixels (pipelines that take it).")
@click.option("--width", type=int, default=None, help="Image width in pixels (pipelines that take it).")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True,
              help="Weights and activations of a diffusers pipeline (the bundled models run in float32).")
@click.option("--device", default="auto", show_default=True)
@trust_pickle
def sample(**options) -> None:
    """Sample images from a generator into a PNG grid (and optionally an .npz archive)."""
    from ..sampling import SampleConfig, run_sample, write_sample

    config = SampleConfig(**options)
    click.echo(write_sample(config, *run_sample(config)))
