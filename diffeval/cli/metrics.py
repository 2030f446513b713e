"""``diffeval benchmark``, ``diffeval stats`` and ``diffeval quality``."""

from __future__ import annotations

import click

from .options import trust_pickle


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--spec", "spec", type=click.Path(dir_okay=False), default=None,
              help="TOML file with the grid and settings (CLI options given here override it).")
@click.option("--sampler", "samplers", multiple=True,
              help="Sampler(s) for every generator (repeat; default: each generator's).")
@click.option("--steps", "steps", type=int, multiple=True, help="Step count(s) (repeat).")
@click.option("--guidance", "guidance", type=float, multiple=True, help="Guidance scale(s) (repeat).")
@click.option("--n", "--num-samples", "n", type=int, default=None,
              help="Samples per generator row (under torchrun write --num-samples: torchrun reads --n as its own)  "
                   "[default: 1000].")
@click.option("--seed", type=int, default=None, help="Seed of the samples and of every random subset  [default: 0].")
@click.option("--features", default=None,
              help="Feature space: fashion, inception, or clip:ARCH:TAG  [default: fashion].")
@click.option("--weights", "feature_weights", default=None, help="Weight file of the feature network.")
@click.option("--reference", default=None, help="Real images to compare with  [default: fashion-mnist:train].")
@click.option("--clip", default=None,
              help="ARCH:TAG or ARCH:FILE of a CLIP model for CLIP score and CMMD (default: none).")
@click.option("--lpips", default=None,
              help="LPIPS trunk (alex, vgg, squeeze) for the diversity column (default: none).")
@click.option("--lpips-weights", default=None, help="The LPIPS trunk's ImageNet weight file.")
@click.option("--batch-size", type=int, default=None,
              help="Images per chunk (caching and sharding unit)  [default: 250].")
@click.option("--fid-resamples", type=int, default=None,
              help="Random half-samples for FID's interval (0 = none)  [default: 100].")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="Output folder  [default: results/benchmark].")
@click.option("--device", default=None, help="cuda, mps, cpu or auto  [default: auto].")
@click.option("--data-dir", default=None, help="Folder with the Fashion-MNIST files.")
@trust_pickle
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def benchmark(**options) -> None:
    """Evaluate SOURCES (bundled generator names, checkpoint dirs, image folders, .npz archives,
    fashion-mnist:test) against real data; default: every bundled generator and the real-data floor.

    Writes OUT/benchmark.{csv,md,json}, a sample grid per row (OUT/grids) and OUT/fid_vs_nfe.png.
    Finished rows and chunks are cached in OUT/cache: a re-run resumes. Under
    ``torchrun --nproc-per-node N -m diffeval benchmark ...`` the work is sharded over the processes.
    """
    from ..benchmark import config_from_options, run_benchmark, summary_text

    table = run_benchmark(config := config_from_options(**options))
    if table is not None:  # None on the other ranks under torchrun
        text, failure = summary_text(table, config.out)
        click.echo(text)
        if failure:  # the table (with its error column) is written; the exit status says some rows failed
            raise RuntimeError(failure)


@click.command()
@click.argument("source")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the .npz (mu, sigma).")
@click.option("--features", default="fashion", show_default=True, help="fashion, inception, or clip:ARCH:TAG.")
@click.option("--weights", "weights", default=None, help="Weight file of the feature network.")
@click.option("--batch-size", type=int, default=500, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--data-dir", default=None, help="Folder with the Fashion-MNIST files.")
def stats(**options) -> None:
    """Feature statistics of SOURCE (image folder, .npz of images, fashion-mnist:train|test) as an
    .npz with pytorch-fid's keys mu and sigma (plus n and the feature space), so files interchange."""
    from ..benchmark.stats_file import StatsConfig, run_stats

    click.echo(run_stats(StatsConfig(**options)))


@click.command()
@click.option("--generator", "-g", "generators", multiple=True,
              help="Bundled names or checkpoint dirs (default: all bundled).")
@click.option("--n", type=int, default=1000, show_default=True, help="Samples per generator.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out", default="quality", show_default=True, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True)
@trust_pickle
def quality(**options) -> None:
    """Judge samples of each generator with the bundled classifier (class agreement / chi-square).

    Writes quality.csv, quality.md, quality.json and a grid per generator into OUT.
    """
    from ..io import folders_locked
    from ..quality import QualityConfig, run_quality, write_quality

    config = QualityConfig(**options)
    with folders_locked(config.out, command="quality"):
        click.echo(write_quality(config, *run_quality(config)))
