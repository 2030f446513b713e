"""CLI commands ``diffeval benchmark`` and ``diffeval stats`` (registered on the main group in cli.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import click


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), default=None,
              help="TOML file with the grid and settings (CLI options given here override it).")
@click.option(
    "--sampler", "samplers", multiple=True, help="Sampler(s) for every generator (repeat; default: each generator's)."
)
@click.option("--steps", "steps", type=int, multiple=True, help="Step count(s) (repeat).")
@click.option("--guidance", "guidance", type=float, multiple=True, help="Guidance scale(s) (repeat).")
@click.option(
    "--n",
    "--num-samples",
    "n",
    type=int,
    default=None,
    help="Samples per generator row (under torchrun write --num-samples: torchrun reads --n as its own)  "
    "[default: 1000].",
)
@click.option("--seed", type=int, default=None, help="Seed of the samples and of every random subset  [default: 0].")
@click.option(
    "--features", default=None, help="Feature space: fashion, inception, or clip:ARCH:TAG  [default: fashion]."
)
@click.option("--weights", "feature_weights", default=None, help="Weight file of the feature network.")
@click.option("--reference", default=None, help="Real images to compare with  [default: fashion-mnist:train].")
@click.option(
    "--clip", default=None, help="ARCH:TAG or ARCH:FILE of a CLIP model for CLIP score and CMMD (default: none)."
)
@click.option(
    "--lpips", default=None, help="LPIPS trunk (alex, vgg, squeeze) for the diversity column (default: none)."
)
@click.option("--lpips-weights", default=None, help="The LPIPS trunk's ImageNet weight file.")
@click.option(
    "--batch-size", type=int, default=None, help="Images per chunk (caching and sharding unit)  [default: 250]."
)
@click.option(
    "--fid-resamples", type=int, default=None, help="Random half-samples for FID's interval (0 = none)  [default: 100]."
)
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Output folder  [default: results/benchmark].",
)
@click.option("--device", default=None, help="cuda, mps, cpu or auto  [default: auto].")
@click.option("--data-dir", default=None, help="Folder with the Fashion-MNIST files.")
@click.option(
    "--trust-pickle", is_flag=True, default=None, help="Allow pickled checkpoints (only from a source you trust)."
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def benchmark(sources, spec_path, samplers, steps, guidance, n, seed, features, feature_weights, reference, clip, lpips,
              lpips_weights, batch_size, fid_resamples, out_dir, device, data_dir, trust_pickle, no_progress) -> None:
    """Evaluate SOURCES (bundled generator names, checkpoint dirs, image folders, .npz archives,
    fashion-mnist:test) against real data; default: every bundled generator and the real-data floor.

    Writes OUT/benchmark.{csv,md,json}, a sample grid per row (OUT/grids) and OUT/fid_vs_nfe.png.
    Finished rows and chunks are cached in OUT/cache: a re-run resumes. Under
    ``torchrun --nproc-per-node N -m diffeval benchmark ...`` the work is sharded over the processes.
    """
    from diffeval.generators import bundled_names

    from ..benchmark import BenchmarkConfig, GridSpec, load_spec, run_benchmark

    overrides = {"n": n, "seed": seed, "features": features, "feature_weights": feature_weights, "reference": reference,
                 "clip": clip, "lpips": lpips, "lpips_weights": lpips_weights, "batch_size": batch_size,
                 "fid_resamples": fid_resamples, "out": out_dir, "device": device, "data_dir": data_dir,
                 "trust_pickle": trust_pickle, "progress": False if no_progress else None}
    grid_opts = {
        "samplers": list(samplers) or [None],
        "steps": list(steps) or [None],
        "guidance": list(guidance) or [None],
    }
    if spec_path:
        config = load_spec(spec_path, **overrides)
        if sources:
            config.grids.append(GridSpec(list(sources), **grid_opts))
    else:
        names = list(sources) or [*bundled_names(), "fashion-mnist:test"]
        config = BenchmarkConfig(
            [GridSpec(names, **grid_opts)], **{k: v for k, v in overrides.items() if v is not None}
        )
    if config.n < 2:
        raise click.BadParameter("must be at least 2", param_hint="--n")
    table = run_benchmark(config)
    if table is None:  # a non-zero rank under torchrun
        return
    shown = [c for c in ("generator", "sampler", "steps", "nfe", "guidance", "fid", "kid", "precision", "recall",
                         "cond_accuracy", "samples_per_s") if table[c].notna().any()]
    click.echo(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    click.echo(f"-> {Path(config.out) / 'benchmark.csv'} (.md, .json), grids/, fid_vs_nfe.png")
    failed = table[table["error"].notna()]
    if len(failed):
        raise click.ClickException(
            f"{len(failed)} of {len(table)} rows failed (see the error column): {failed['error'].iloc[0]}"
        )


@click.command()
@click.argument("source")
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Where to write the .npz (mu, sigma)."
)
@click.option("--features", default="fashion", show_default=True, help="fashion, inception, or clip:ARCH:TAG.")
@click.option("--weights", "feature_weights", default=None, help="Weight file of the feature network.")
@click.option("--batch-size", type=int, default=500, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--data-dir", default=None, help="Folder with the Fashion-MNIST files.")
def stats(source, out_path, features, feature_weights, batch_size, device, data_dir) -> None:
    """Feature statistics of SOURCE (image folder, .npz of images, fashion-mnist:train|test) as an
    .npz with pytorch-fid's keys mu and sigma (plus n and the feature space), so files interchange."""
    from diffeval.generators.devices import pick_device as resolve_device

    from ..benchmark.sources import resolve_source
    from ..feature_stats import extractor_id, stats_of
    from ..features import get_extractor

    src = resolve_source(source, data_dir)
    if not hasattr(src, "read"):
        raise click.ClickException(
            f"{source} is a generator; sample it first (diffeval sample --npz) or use diffeval benchmark"
        )
    fixed = src.read()
    extractor = get_extractor(features, weights=feature_weights, device=str(resolve_device(device)))
    result = stats_of(fixed.images, extractor, batch_size, progress=True)
    if result.n <= extractor.dim:
        warnings.warn(
            f"{result.n} images for {extractor.dim} features: the covariance has rank {result.rank()}", stacklevel=2
        )
    result.save_npz(out_path, feature_space=extractor.name, extractor_id=extractor_id(extractor), source=source)
    click.echo(
        f"{result.n} images ({len(fixed.skipped)} skipped), {extractor.name} features (d={extractor.dim}) -> {out_path}"
    )
