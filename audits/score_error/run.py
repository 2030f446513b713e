"""``diffeval audit score-error``: the analyses run on one data set, cached per (analysis, model).

data ``gmm2d`` / ``gmm64``: the truth is the exact mixture. Models: the exact denoiser in every
parameterization (the zero-error check) and the toy generators trained on the mixture (or any
checkpoint of the mixture's shape). Analyses: ``error`` (score error per log-SNR level) and
``discretisation`` (exact ODE: orders per sampler and spacing; toys: model vs discretisation error).

data ``fashion``: the truth is the empirical optimal denoiser of the Fashion-MNIST training set, in the space
each model denoises (pixels; for latent models the training set encoded by their autoencoder, column
``model_space``).
Models: the bundled generators (or checkpoints). Analyses: ``error`` (against the empirical optimum,
x0 drawn from the training set) and ``memorisation`` (nearest/second-nearest training distances of
samples, with the empirical optimum's own samples as the positive control).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from diffeval.checks import require_ints, require_seeds
from diffeval.generators.schedules import NoiseSchedule, ScheduleConfig
from diffeval.images import save_npz
from diffeval.io import atomic_write_text, safe_path

from .error import default_levels

DATASETS = ("gmm2d", "gmm64", "fashion")
ANALYSES = ("error", "discretisation", "memorisation")
DEFAULT_ANALYSES = {"gmm2d": ("error", "discretisation"), "gmm64": ("error", "discretisation"),
                    "fashion": ("error", "memorisation")}


@dataclass
class ScoreErrorConfig:
    """Settings of one run. ``generators``: names (toy names, bundled names, checkpoint dirs, or
    "exact"); empty means the defaults for the data. n: samples per level (error), per model
    (memorisation) and per sampler grid (discretisation)."""

    data: str = "gmm2d"
    generators: list[str] = field(default_factory=list)
    analyses: list[str] = field(default_factory=list)
    n: int | None = None
    levels: list[float] = field(default_factory=lambda: [float(v) for v in default_levels()])
    n_boot: int = 1000
    seed: int = 0
    exact_steps: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64, 128, 256, 512, 1024])
    model_steps: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64, 128])
    control_steps: int = 50
    toys_dir: str | None = None
    data_dir: str | None = None
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        if self.data not in DATASETS:
            raise ValueError(f"unknown data {self.data!r}; choose one of {', '.join(DATASETS)}")
        self.analyses = list(self.analyses or DEFAULT_ANALYSES[self.data])
        for a in self.analyses:
            if a not in ANALYSES:
                raise ValueError(f"unknown analysis {a!r}; choose from {', '.join(ANALYSES)}")
        if self.data != "fashion" and "memorisation" in self.analyses:
            raise ValueError("memorisation is measured against a finite training set: use --data fashion")
        if self.data == "fashion" and "discretisation" in self.analyses:
            raise ValueError("the discretisation analysis needs an exact ODE: use --data gmm2d or gmm64")
        if self.n is None:
            self.n = 200 if self.data == "fashion" else 1000
        require_ints({"n": (self.n, 2), "n_boot": (self.n_boot, 1)})
        require_seeds(seed=self.seed)
        from diffeval.generators.diffusers_pipeline import is_diffusers_dir

        for name in self.generators:  # before anything is written into OUT
            if is_diffusers_dir(name):
                raise ValueError(f"{name}: the score-error audit needs the denoiser in pixel space "
                                 "(Generator.denoise) on its training data; a diffusers pipeline denoises VAE latents "
                                 "of data diffeval does not have, so it is not supported here")

    @classmethod
    def from_options(cls, data: str, generators: tuple[str, ...], analyses: str | None, n: int | None, levels: str,
                     n_boot: int, seed: int, toys_dir: str | None, data_dir: str | None,
                     trust_pickle: bool = False) -> ScoreErrorConfig:
        """From ``diffeval audit score-error``'s options: ``analyses`` a comma list, ``levels`` a log-SNR grid
        (see ``parse_levels``)."""
        return cls(data=data, generators=list(generators),
                   analyses=[a.strip() for a in analyses.split(",")] if analyses else [], n=n,
                   levels=parse_levels(levels), n_boot=n_boot, seed=seed, toys_dir=toys_dir, data_dir=data_dir,
                   trust_pickle=trust_pickle)


def parse_levels(text: str) -> list[float]:
    """"-6:6:1" (start:stop:step, stop included) or "-2,0,2" -> log-SNR values."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError
            levels = [float(v) for v in np.arange(start, stop + step / 2, step)]
        else:
            levels = [float(v) for v in text.split(",") if v.strip()]
        if not levels or not np.isfinite(levels).all() or len(levels) > 10_000:
            raise ValueError
        return levels
    except ValueError:
        raise ValueError(f"--levels: {text!r}: give start:stop:step (step > 0, stop >= start) or a comma list of "
                         "finite log-SNR values") from None


class _Tables(dict):
    """The run's tables by name, plus the memorisation samples and training points for the plots."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: dict[str, torch.Tensor] = {}
        self.points: torch.Tensor | None = None


class _Cache:
    """One CSV per finished (analysis, model) under OUT/cache, so an interrupted run resumes."""

    def __init__(self, out: Path, config: ScoreErrorConfig) -> None:
        self.dir = out / "cache"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag = f"{config.data}-n{config.n}-s{config.seed}"

    def get(self, analysis: str, model: str, make, fingerprint: str = "") -> pd.DataFrame:
        """The cached table of (analysis, model), else ``make()`` stored. ``fingerprint``: the weights'
        hash, so retrained weights are measured afresh."""
        path = safe_path(self.dir, f"{analysis}-{self.tag}-{model}" + (f"-{fingerprint}" if fingerprint else ""),
                         suffix=".csv")
        if path.is_file():
            return pd.read_csv(path)
        df = make()
        atomic_write_text(path, df.to_csv(index=False))
        return df

    def _images_path(self, source: str) -> Path:
        return safe_path(self.dir, f"samples-{self.tag}-{source}", suffix=".npz")

    def put_images(self, source: str, samples: torch.Tensor) -> None:
        """Model-space samples in [-1, 1] stored as the uint8 an image file would hold (``save_npz``)."""
        save_npz((samples.float() + 1) / 2, self._images_path(source))

    def get_images(self, source: str) -> torch.Tensor | None:
        """The stored samples (N, C, H, W) back in model space, or None."""
        path = self._images_path(source)
        if not path.is_file():
            return None
        return torch.from_numpy(np.load(path)["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1


# ---------------------------------------------------------------------- models per data set
EXACT_PATHS = {
    "eps": ScheduleConfig("cosine", None),
    "v": ScheduleConfig("cosine", None),
    "x0": ScheduleConfig("cosine", None),
    "velocity": ScheduleConfig("rectified_flow", None),
}


def _mixture_models(config: ScoreErrorConfig, truth, toys_dir: Path, progress: bool) -> list:
    from diffeval.generators import load_generator

    from .models import ExactModel, GeneratorModel
    from .toys import toy_specs, train_toy

    specs = {s.name: s for s in toy_specs(config.data)}
    names = config.generators or ["exact", *specs]
    models = []
    for name in names:
        if name == "exact":
            models += [ExactModel(truth, NoiseSchedule(sc), p) for p, sc in EXACT_PATHS.items()]
        elif name in specs:
            models.append(GeneratorModel(train_toy(specs[name], truth, toys_dir / config.data / name, seed=config.seed,
                                                   progress=progress), name))
        else:
            g = load_generator(name, trust_pickle=config.trust_pickle)
            shape = g.noise_shape
            if shape != tuple(truth.shape):
                raise ValueError(
                    f"generator {name!r} denoises {shape} points; {config.data} points are {tuple(truth.shape)}"
                )
            models.append(GeneratorModel(g))
    return models


def _fp(model) -> str:
    """The weights' fingerprint of a generator-backed model ("" for exact models)."""
    g = getattr(model, "generator", None)
    return g.fingerprint() if g is not None else ""


def _fashion_training_points(config: ScoreErrorConfig) -> torch.Tensor:
    from diffeval.data import load_fashion_mnist

    images, _ = load_fashion_mnist("train", config.data_dir)
    return images.float() / 127.5 - 1.0  # model space (N, 1, 28, 28) in [-1, 1]


# ---------------------------------------------------------------------- the run
def run_score_error(config: ScoreErrorConfig, out_dir: str | Path, progress: bool = True) -> dict[str, pd.DataFrame]:
    """Run the configured analyses; returns the tables by name (see ``report.write_report``).

    With memorisation, ``tables.samples`` (an attribute of the returned dict) maps each source to
    its samples (N, 1, 28, 28) in model space and ``tables.points`` holds the training points."""
    out = Path(out_dir)
    cache = _Cache(out, config)
    tables = _Tables()
    if config.data in ("gmm2d", "gmm64"):
        _mixture_analyses(config, cache, tables, out, progress)
    else:
        _fashion_analyses(config, cache, tables, progress)
    return tables


def _mixture_analyses(config: ScoreErrorConfig, cache: _Cache, tables: _Tables, out: Path, progress: bool) -> None:
    """Score error and discretisation error of the toy models against the exact mixture."""
    from .error import score_error_table
    from .gmm import mixture

    truth = mixture(config.data)
    sample_x0 = truth.sample
    toys_dir = Path(config.toys_dir) if config.toys_dir else out / "cache" / "toys"
    models = _mixture_models(config, truth, toys_dir, progress)
    levels = np.asarray(config.levels, dtype=float)
    if "error" in config.analyses:
        parts = [cache.get("error", m.name, functools.partial(score_error_table, m, truth, sample_x0, levels, config.n,
                                                              config.seed, config.n_boot), _fp(m))
                 for m in tqdm(models, desc="score error", disable=not progress)]
        tables["score_error"] = pd.concat(parts, ignore_index=True).assign(data=config.data)
    if "discretisation" in config.analyses:
        _discretisation(config, cache, tables, truth, sample_x0, models, progress)


def _discretisation(config: ScoreErrorConfig, cache: _Cache, tables: _Tables, truth, sample_x0, models,
                    progress: bool) -> None:
    """Sampler discretisation error with the exact score (VP and flow paths) and with each trained model."""
    from .discretisation import exact_discretisation_table, fit_orders, model_discretisation_table

    n_disc = min(config.n, 256)
    exact_parts = []
    for path, sc in (("vp", ScheduleConfig("linear", None)), ("flow", ScheduleConfig("rectified_flow", None))):
        make = functools.partial(exact_discretisation_table, truth, NoiseSchedule(sc), sample_x0,
                                 steps=tuple(config.exact_steps), n=n_disc, seed=config.seed, path=path)
        exact_parts.append(cache.get(f"discretisation-exact-{n_disc}", path, make))
    exact = pd.concat(exact_parts, ignore_index=True)
    tables["discretisation_exact"] = exact.assign(data=config.data)
    tables["orders"] = fit_orders(exact, by=("path", "sampler", "spacing")).assign(data=config.data)
    trained = [m for m in models if not m.name.startswith("exact-")]
    if trained:
        parts = [cache.get(f"discretisation-model-{n_disc}", m.name, functools.partial(
            model_discretisation_table, m, truth, sample_x0, steps=tuple(config.model_steps), n=n_disc,
            seed=config.seed), _fp(m))
                 for m in tqdm(trained, desc="discretisation", disable=not progress)]
        tables["discretisation_models"] = pd.concat(parts, ignore_index=True).assign(data=config.data)
        tables["model_orders"] = fit_orders(tables["discretisation_models"], "disc_error_median", min_steps=16,
                                            by=("model", "sampler", "spacing")).assign(data=config.data)


def _fashion_analyses(config: ScoreErrorConfig, cache: _Cache, tables: _Tables, progress: bool) -> None:
    """Score error and memorisation of the bundled generators against the empirical optimal denoiser."""
    from diffeval.generators import bundled_names, load_generator

    from .empirical import EmpiricalDenoiser
    from .error import score_error_table
    from .models import GeneratorModel

    points = _fashion_training_points(config)
    generators = {name: load_generator(name, trust_pickle=config.trust_pickle)
                  for name in (config.generators or bundled_names())}
    levels = np.asarray(config.levels, dtype=float)
    if "error" in config.analyses:
        parts = []
        for name, g in tqdm(generators.items(), desc="score error", disable=not progress):
            # a latent model denoises its autoencoder's latents: its truth is the empirical optimum of the
            # encoded training set, in that latent space (the "model_space" column says which)
            space = model_space_points(g, points)
            truth = EmpiricalDenoiser(space)
            make = functools.partial(score_error_table, GeneratorModel(g), truth, _draw_from(space), levels,
                                     config.n, config.seed, config.n_boot, batch_size=100)
            parts.append(cache.get("error", name, make, g.fingerprint()).assign(model_space=g.info.space))
        tables["score_error"] = pd.concat(parts, ignore_index=True).assign(data=config.data)
    if "memorisation" in config.analyses:
        _memorisation(config, cache, tables, points, generators, progress)


def model_space_points(g, points: torch.Tensor) -> torch.Tensor:
    """Training points (N, 1, 28, 28) in pixel model space -> the points of g's model space: themselves for a
    pixel model, the autoencoder's scaled posterior means (N, *noise_shape) for a latent one."""
    if g.autoencoder is None:
        return points
    return g.encode((points + 1) / 2, batch_size=1000)


def _draw_from(points: torch.Tensor):
    def sample_x0(n, seed):
        idx = torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        return points[idx]

    return sample_x0


def _memorisation(config: ScoreErrorConfig, cache: _Cache, tables: _Tables, points: torch.Tensor,
                  generators: dict, progress: bool) -> None:
    """Nearest-neighbour memorisation of the empirical optimum's and each generator's samples."""

    from .empirical import memorisation_table

    def measured(source: str, draw, fingerprint: str = "") -> pd.DataFrame:
        """The memorisation table of ``draw()``'s samples; the samples are kept beside it (uint8)."""
        def make() -> pd.DataFrame:
            samples = draw()
            cache.put_images(source + fingerprint, samples)
            return memorisation_table(samples, points, source)

        table = cache.get("memorisation", source, make, fingerprint)
        tables.samples[source] = cache.get_images(source + fingerprint)
        return table

    parts = [measured("empirical optimum",
                      functools.partial(empirical_optimum_samples, points, config.n, config.control_steps,
                                        config.seed))]
    for name, g in tqdm(generators.items(), desc="memorisation", disable=not progress):
        parts.append(measured(name, functools.partial(_quality_samples, g, config.n, config.seed), g.fingerprint()))
    tables.points = points
    per_sample = pd.concat(parts, ignore_index=True)
    tables["memorisation_samples"] = per_sample
    tables["memorisation"] = memorisation_summary(per_sample)


def _quality_samples(g, n: int, seed: int) -> torch.Tensor:
    """The quality check's n samples of g (sample i asks for class i mod 10), in model space [-1, 1]."""
    from diffeval.quality import generate_for_quality

    return generate_for_quality(g, n, seed=seed)[0] * 2 - 1


def empirical_optimum_samples(points: torch.Tensor, n: int, steps: int, seed: int) -> torch.Tensor:
    """n samples (model space, like points) drawn with the empirical optimal denoiser as the model:
    deterministic DDIM on the continuous linear VP path from seeded Gaussian noise."""
    from diffeval.generators.samplers import NoiseSource, run_sampler

    from .empirical import EmpiricalDenoiser

    truth = EmpiricalDenoiser(points, dtype=torch.float32)
    schedule = NoiseSchedule(ScheduleConfig("linear", None))

    def denoise(x, t):
        alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.tensor(t, dtype=torch.float64)))
        p = truth.posterior(x, alpha, max(sigma, 1e-6))
        return p.x0.to(x.dtype), p.eps.to(x.dtype)

    x = NoiseSource(seed, range(n), tuple(points.shape[1:])).draw()
    return run_sampler(denoise, schedule, x, schedule.sampling_times(steps, "uniform"), "ddim")


def memorisation_summary(per_sample: pd.DataFrame) -> pd.DataFrame:
    """Per source: n, memorised_fraction (d1/d2 < 1/3) with a Wilson 95% interval, median d1, median ratio."""
    from diffeval.quality import wilson_interval

    rows = []
    for source, g in per_sample.groupby("source", sort=False):
        k, n = int(g["memorised"].sum()), len(g)
        lo, hi = wilson_interval(k, n)
        rows.append([source, n, k / n, lo, hi, float(g["d1"].median()), float(g["ratio"].median())])
    return pd.DataFrame(rows, columns=["source", "n", "memorised_fraction", "memorised_lo", "memorised_hi",
                                       "median_d1", "median_ratio"])
