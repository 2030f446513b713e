"""What a benchmark run does: the settings (``BenchmarkConfig``) and the rows they expand to.

A row is one (source, sampler, steps, guidance). Generator sources get the grid samplers x steps x
guidance (``None`` = the generator's default); fixed images (folders, archives, data sets) get one row.
Settings come from CLI options or a TOML file (``load_spec``)::

    n = 1000
    features = "fashion"
    [[grid]]
    generators = ["sd3", "sd3-reflow"]
    samplers = ["euler", "heun"]
    steps = [2, 4, 8, 16]
    guidance = [3.0]
    [[grid]]
    generators = ["fashion-mnist:test"]
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from diffeval.checks import require_ints, require_seeds
from diffeval.io import digest, slug


@dataclass
class GridSpec:
    """Sources and the sampler x steps x guidance grid applied to the generators among them."""

    generators: list[str]
    samplers: list[str | None] = field(default_factory=lambda: [None])
    steps: list[int | None] = field(default_factory=lambda: [None])
    guidance: list[float | None] = field(default_factory=lambda: [None])

    def __post_init__(self) -> None:
        from diffeval.generators.interface import checked_settings

        for steps in self.steps:
            for guidance in self.guidance:
                checked_settings(1 if steps is None else steps, 1.0 if guidance is None else guidance, None)


@dataclass
class BenchmarkConfig:
    """All settings of a run; the defaults are the README's main job."""

    grids: list[GridSpec]
    out: str = "results/benchmark"
    n: int = 1000                      # samples per generator row (data set rows: a seeded subset of this size)
    seed: int = 0
    batch_size: int = 250              # images per chunk: the unit of caching and of sharding across ranks
    features: str = "fashion"          # feature space: fashion | inception | clip[:ARCH:TAG]
    feature_weights: str | None = None
    reference: str = "fashion-mnist:train"
    clip: str | None = None            # "ARCH:TAG" or "ARCH:/path/to/weights" for CLIP score and CMMD
    lpips: str | None = None           # LPIPS trunk ("alex", "vgg", "squeeze") for the diversity column
    lpips_weights: str | None = None
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    fid_resamples: int = 100           # random half-samples for FID's standard error and interval (0 = none)
    grid_images: int = 64
    device: str = "auto"
    data_dir: str | None = None
    trust_pickle: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        minimum = {"n": 2, "batch_size": 1, "kid_subsets": 1, "kid_subset_size": 2, "fid_resamples": 0,
                   "grid_images": 0}
        require_ints({name: (getattr(self, name), lo) for name, lo in minimum.items()})
        require_seeds(seed=self.seed)


@dataclass(frozen=True)
class RowSpec:
    source: str
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None


def expand_rows(config: BenchmarkConfig, is_generator) -> list[RowSpec]:
    """Rows in grid order, duplicates removed; ``is_generator(text)`` tells generators from fixed images."""
    rows: list[RowSpec] = []
    for grid in config.grids:
        for src in grid.generators:
            if not is_generator(src):
                rows.append(RowSpec(src))
                continue
            for sampler in grid.samplers:
                for steps in grid.steps:
                    for guidance in grid.guidance:
                        rows.append(RowSpec(src, sampler, steps, guidance))
    return list(dict.fromkeys(rows))


def row_key(row: RowSpec, resolved: dict, fingerprint: str, config: BenchmarkConfig) -> str:
    """A folder name for the row's cache: readable prefix + hash of everything its numbers depend on."""
    payload = {
        "resolved": resolved, "fingerprint": fingerprint, "n": config.n, "seed": config.seed,
        "batch_size": config.batch_size, "features": config.features, "feature_weights": config.feature_weights,
        "clip": config.clip, "lpips": config.lpips,
    }
    parts = [Path(row.source).name or row.source]
    parts += [str(resolved[k]) for k in ("sampler", "steps", "guidance") if resolved.get(k) is not None]
    return slug("-".join(parts) + "-" + digest(payload, 10))


def load_spec(path: str | Path, **overrides) -> BenchmarkConfig:
    """A BenchmarkConfig from a TOML file; keyword ``overrides`` (not None) win over the file."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read the spec ({e})") from None
    grids_raw = data.pop("grid", None)
    if grids_raw is None:
        keys = ("generators", "samplers", "steps", "guidance")
        grids_raw = [{k: data.pop(k) for k in keys if k in data}]
    known = {f.name for f in fields(BenchmarkConfig)} - {"grids"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    grids = []
    for g in grids_raw:
        bad = set(g) - {"generators", "samplers", "steps", "guidance"}
        if bad or "generators" not in g:
            raise ValueError(
                f"{path}: each [[grid]] needs 'generators' and may have samplers/steps/guidance (got {sorted(g)})"
            )
        grids.append(GridSpec(**{k: list(v) if isinstance(v, list) else [v] for k, v in g.items()}))
    data.update({k: v for k, v in overrides.items() if v is not None})
    return BenchmarkConfig(grids=grids, **data)


def config_dict(config: BenchmarkConfig) -> dict:
    return asdict(config)


def config_from_options(sources: tuple[str, ...] = (), spec: str | None = None, samplers: tuple[str, ...] = (),
                        steps: tuple[int, ...] = (), guidance: tuple[float, ...] = (), no_progress: bool = False,
                        **settings) -> BenchmarkConfig:
    """The config of ``diffeval benchmark``'s options: a TOML ``spec`` with the given settings (not None) winning
    and ``sources`` as one more grid; without a spec, one grid of ``sources`` (default: every bundled generator
    and the real-data floor). ``samplers``/``steps``/``guidance`` multiply every given source."""
    from diffeval.generators import bundled_names

    # flags that are off unless given must not override a spec file's setting
    overrides = {**settings, "progress": False if no_progress else None,
                 "trust_pickle": settings.get("trust_pickle") or None}
    grid_opts = {"samplers": list(samplers) or [None], "steps": list(steps) or [None],
                 "guidance": list(guidance) or [None]}
    if spec:
        config = load_spec(spec, **overrides)
        if sources:
            config.grids.append(GridSpec(list(sources), **grid_opts))
    else:
        names = list(sources) or [*bundled_names(), "fashion-mnist:test"]
        given = {k: v for k, v in overrides.items() if v is not None}
        config = BenchmarkConfig([GridSpec(names, **grid_opts)], **given)
    return config
