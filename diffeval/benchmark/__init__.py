"""``diffeval benchmark``: evaluate generators, image folders and archives against real data.

>>> from diffeval.benchmark import BenchmarkConfig, GridSpec, expand_rows, run_benchmark
>>> cfg = BenchmarkConfig([GridSpec(["sd3-reflow"], steps=[1, 2, 4])], n=1000, out="results/b")
>>> [(row.source, row.steps) for row in expand_rows(cfg, lambda source: True)]  # one row per grid point
[('sd3-reflow', 1), ('sd3-reflow', 2), ('sd3-reflow', 4)]
>>> # run_benchmark(cfg) returns one row per (generator, sampler, steps, guidance), see COLUMNS:
>>> table = run_benchmark(cfg)   # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from diffeval.io import ensure_writable

from .distributed import World, barrier, close_world, init_world
from .reference import load_reference
from .report import plot_fid_vs_nfe, summary_text, write_tables
from .runner import COLUMNS, RowRunner, build_models
from .sources import GeneratorSource, SourceError, resolve_source
from .spec import BenchmarkConfig, GridSpec, RowSpec, config_dict, config_from_options, expand_rows, load_spec

__all__ = ["BenchmarkConfig", "GridSpec", "RowSpec", "COLUMNS", "config_from_options", "expand_rows", "run_benchmark",
           "load_spec",
           "SourceError", "summary_text"]


def run_benchmark(config: BenchmarkConfig, world: World | None = None) -> pd.DataFrame | None:
    """Run every row (resuming finished work) and write the tables, grids and plot under ``config.out``.

    Returns the table (COLUMNS) on rank 0 and None on other ranks. A row that fails (say, a generator
    that makes NaN) gets its error in the ``error`` column and the others still run (one process);
    sources that cannot be resolved fail before any work starts. A process group this call joined
    (under torchrun, with no ``world`` given) is left again when it returns.
    """
    ensure_writable(config.out)
    owned = world is None
    world = world or init_world()
    try:
        results = _run_rows(config, world)
    finally:
        if owned:
            close_world(world)
    if results is None:
        return None
    table = pd.DataFrame(results, columns=COLUMNS)
    counts = ("steps", "nfe", "n_samples", "n_skipped", "seed")
    text = ("generator", "family", "parameterization", "sampler", "feature_space", "reference", "source", "error")
    table = table.astype({c: "Int64" if c in counts else object if c in text else float for c in COLUMNS})
    out = Path(config.out)
    write_tables(table, out, config_dict(config))
    plot_fid_vs_nfe(table, out / "fid_vs_nfe.png")
    return table


def _run_rows(config: BenchmarkConfig, world: World) -> list[dict] | None:
    """Every row's result dict on rank 0 (None on other ranks), after a barrier."""
    sources = {g: resolve_source(g, config.data_dir) for grid in config.grids for g in grid.generators}
    rows = expand_rows(config, lambda s: isinstance(sources[s], GeneratorSource))
    if not rows:
        raise ValueError("nothing to benchmark: give at least one generator, folder, .npz or data set")
    extractor, judge, clip, lpips_model = build_models(config)
    reference = load_reference(config.reference, extractor, config.n, config.seed, config.data_dir,
                               progress=config.progress and world.is_main) if world.is_main else None
    runner = RowRunner(config, world, extractor, judge, reference, clip, lpips_model)
    results = []
    for row in rows:
        try:
            result = runner.run(row, sources[row.source])
        except Exception as e:  # one bad row must not cost the others; under torchrun, fail fast
            if world.size > 1:
                raise
            warnings.warn(f"row {row.source} ({row.sampler or 'default'}, {row.steps or 'default'} steps) failed: {e}",
                          stacklevel=2)
            result = {"generator": row.source, "source": row.source, "sampler": row.sampler, "steps": row.steps,
                      "guidance": row.guidance, "error": f"{type(e).__name__}: {e}"}
        results.append(result)
    barrier(world)
    return results if world.is_main else None
