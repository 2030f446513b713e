"""The ``diffeval`` command line.

Errors print one line ("error: ...") and exit with status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click

from diffeval.generators import bundled_names, load_generator
from diffeval.generators.presets import PRESET_NAMES
from diffeval.io import atomic_write_text

from ..images import save_grid, save_npz


class DiffevalGroup(click.Group):
    """Turns exceptions into one-line errors unless --debug was given."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as e:  # the CLI's promise: one clear line, non-zero exit
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {e}", err=True)
            ctx.exit(1)


@click.group(cls=DiffevalGroup)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """diffeval: evaluation, watermarking, detection and audits of image diffusion generators."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"


@main.command()
@click.option("--preset", required=True, type=click.Choice(PRESET_NAMES), help="Which preset to train.")
@click.option("--steps", type=int, default=None, help="Optimizer steps (default: the preset's budget).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Checkpoint directory.")
@click.option("--device", default="auto", show_default=True, help="cuda, mps, cpu or auto.")
@click.option(
    "--data-dir", default=None, help="Folder with the Fashion-MNIST idx files (else DIFFEVAL_DATA / Debian package)."
)
@click.option(
    "--base", "base_dir", default=None, help="Checkpoint to start reflow from (sd3-reflow; default: bundled sd3)."
)
@click.option(
    "--resume/--no-resume", default=True, show_default=True, help="Continue from OUT/train_state.pt if present."
)
@click.option(
    "--init-from", default=None, help="Start from this checkpoint's weights (same architecture), fresh optimizer."
)
def train(preset, steps, out_dir, device, data_dir, base_dir, resume, init_from) -> None:
    """Train a preset on Fashion-MNIST; writes config.json, model.safetensors (EMA), loss_log.csv."""
    from ..bundle import train_preset

    log = train_preset(preset, out_dir, steps, device, data_dir, base_dir, resume, init_from=init_from)
    click.echo(f"{preset}: {int(log['step'].iloc[-1])} steps, final loss {log['loss'].iloc[-1]:.4f} -> {out_dir}")


@main.command()
@click.option("--generator", "-g", "name", required=True, help="Bundled name or checkpoint directory.")
@click.option("--n", type=int, default=64, show_default=True, help="Number of images.")
@click.option("--prompt", "prompts", multiple=True, help="Prompt(s) for text generators; repeat to cycle.")
@click.option(
    "--label", "labels", type=int, multiple=True, help="Class label(s) for class generators; repeat to cycle."
)
@click.option("--steps", type=int, default=None, help="Sampling steps (default: the generator's).")
@click.option("--sampler", default=None, help="ddpm, ddim, dpm++2m, euler or heun (default: the generator's).")
@click.option("--guidance", type=float, default=None, help="Classifier-free guidance scale (1 = none).")
@click.option("--eta", type=float, default=None, help="DDIM eta (0 = deterministic).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_path", default="grid.png", show_default=True, type=click.Path(dir_okay=False))
@click.option(
    "--npz", "npz_path", default=None, type=click.Path(dir_okay=False), help="Also save the images (uint8) here."
)
@click.option("--device", default="auto", show_default=True)
@click.option("--trust-pickle", is_flag=True, help="Allow a pickled checkpoint (only from a source you trust).")
def sample(
    name, n, prompts, labels, steps, sampler, guidance, eta, seed, out_path, npz_path, device, trust_pickle
) -> None:
    """Sample images from a generator into a PNG grid (and optionally an .npz archive)."""
    if n < 1:
        raise click.BadParameter("must be at least 1", param_hint="--n")
    g = load_generator(name, device, trust_pickle)
    cond = {}
    if prompts:
        cond["prompts"] = [prompts[i % len(prompts)] for i in range(n)]
    if labels:
        cond["labels"] = [labels[i % len(labels)] for i in range(n)]
    images = g.sample(n, steps=steps, sampler=sampler, guidance=guidance, eta=eta, seed=seed, progress=True, **cond)
    save_grid(images, out_path)
    if npz_path:
        save_npz(images, npz_path)
    click.echo(f"{n} images from {g.info.name} -> {out_path}" + (f", {npz_path}" if npz_path else ""))


@main.command()
@click.option(
    "--generator", "-g", "names", multiple=True, help="Bundled names or checkpoint dirs (default: all bundled)."
)
@click.option("--n", type=int, default=1000, show_default=True, help="Samples per generator.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", default="quality", show_default=True, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True)
def quality(names, n, seed, out_dir, device) -> None:
    """Judge samples of each generator with the bundled classifier (class agreement / chi-square).

    Writes quality.csv, quality.md, quality.json and a grid per generator into OUT.
    """
    from ..judge import load_judge
    from ..quality import quality_row, quality_table

    names = list(names) or bundled_names()
    if not names:
        raise click.ClickException("no bundled generators are installed; pass --generator DIR")
    judge = load_judge()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        g = load_generator(name, device)
        row, images = quality_row(g, judge, n, seed, progress=True)
        rows.append(row)
        save_grid(images[:100], out / f"grid_{g.info.name}.png", nrow=10)
    table = quality_table(rows)
    table.to_csv(out / "quality.csv.tmp", index=False)
    Path(out / "quality.csv.tmp").replace(out / "quality.csv")
    atomic_write_text(out / "quality.md", table.to_markdown(index=False, floatfmt=".4g") + "\n")
    atomic_write_text(out / "quality.json", json.dumps(table.to_dict(orient="records"), indent=2) + "\n")
    click.echo(table.drop(columns=["class_hist"]).to_string(index=False))


from .audit import audit  # noqa: E402  (registered below, defined apart)
from .detect import detect  # noqa: E402
from .metrics import benchmark, stats  # noqa: E402
from .watermark import watermark  # noqa: E402

main.add_command(audit)
main.add_command(detect)
main.add_command(benchmark)
main.add_command(stats)
main.add_command(watermark)


def run() -> None:
    """Console-script entry point."""
    main(obj={})


if __name__ == "__main__":
    sys.exit(run())
