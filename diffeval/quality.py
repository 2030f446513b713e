"""Sample quality of generators judged by the bundled Fashion-MNIST classifier.

Conditional generators: the agreement between the requested class (class label, or the prompt
"a photo of a <class>") and the judged class. Unconditional: the judged class histogram and a
chi-square test against the uniform distribution (Fashion-MNIST's classes are balanced).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from diffeval.checks import require_ints, require_seeds
from diffeval.generators import Generator
from diffeval.generators.interface import class_conditions as generator_class_conditions
from diffeval.generators.samplers import nfe as sampler_nfe

from .data import class_prompt
from .judge import Judge

COLUMNS = [
    "generator", "family", "backbone", "parameterization", "conditioning", "sampler", "steps", "nfe", "guidance",
    "n_samples", "cond_accuracy", "cond_accuracy_lo", "cond_accuracy_hi", "chi2", "chi2_p", "class_hist",
    "samples_per_s",
]


def nfe(sampler: str, steps: int, guidance: float, conditional: bool) -> int:
    """Network evaluations per image (the sampler registry's count); CFG (guidance != 1) doubles each."""
    return sampler_nfe(sampler, steps, guided=conditional and guidance != 1.0)


def requested_classes(n: int) -> torch.Tensor:
    """Classes 0..9 in turn: sample i asks for class i % 10."""
    return torch.arange(n) % 10


def class_conditions(g: Generator, classes: torch.Tensor) -> dict:
    """``Generator.sample`` keyword arguments asking for ``classes``: labels, the prompts "a photo of a
    <class>", or nothing for an unconditional generator (``diffeval.generators.interface.class_conditions``)."""
    return generator_class_conditions(g.info, classes, class_prompt)


def generate_for_quality(g: Generator, n: int, seed: int = 0, **sampling) -> tuple[torch.Tensor, torch.Tensor | None]:
    """n samples with the classes requested in turn (None for unconditional generators)."""
    want = requested_classes(n)
    images = g.sample(n, seed=seed, **class_conditions(g, want), **sampling)
    return images, (want if g.info.conditioning != "none" else None)


def wilson_interval(k, n, confidence: float = 0.95):
    """Wilson score interval for k successes out of n; broadcasts over arrays.

    Returns (lo, hi) in [0, 1] (floats for scalar input, arrays otherwise); n = 0 gives (nan, nan).
    The closed form is clipped to [0, 1] against rounding.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    k_arr, n_arr = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        raise ValueError("need 0 <= k <= n")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k_arr / n_arr
        denom = 1 + z * z / n_arr
        centre = (p + z * z / (2 * n_arr)) / denom
        half = z * np.sqrt(p * (1 - p) / n_arr + z * z / (4 * n_arr * n_arr)) / denom
    lo = np.where(n_arr > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    hi = np.where(n_arr > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def quality_row(
    g: Generator, judge: Judge, n: int = 1000, seed: int = 0, progress: bool = False, **sampling
) -> tuple[dict, torch.Tensor]:
    """One row of COLUMNS for generator ``g`` at its defaults overridden by ``sampling``, and the judged images
    (float (n, C, H, W) in [0, 1])."""
    sampler = sampling.get("sampler") or g.defaults.sampler
    steps = sampling.get("steps") or g.defaults.steps
    guidance = g.defaults.guidance if sampling.get("guidance") is None else sampling["guidance"]
    t0 = time.time()
    images, want = generate_for_quality(g, n, seed, progress=progress, **sampling)
    rate = n / (time.time() - t0)
    judged = judge.predict(images)
    hist = torch.bincount(judged, minlength=10).tolist()
    row = {
        "generator": g.info.name, "family": g.info.family, "backbone": g.info.backbone,
        "parameterization": g.info.parameterization, "conditioning": g.info.conditioning, "sampler": sampler,
        "steps": steps, "nfe": nfe(sampler, steps, guidance, g.info.conditioning != "none"), "guidance": guidance,
        "n_samples": n, "cond_accuracy": np.nan, "cond_accuracy_lo": np.nan, "cond_accuracy_hi": np.nan,
        "chi2": np.nan, "chi2_p": np.nan, "class_hist": json.dumps(hist), "samples_per_s": rate,
    }
    if want is not None:
        k = int((judged == want).sum())
        row["cond_accuracy"] = k / n
        row["cond_accuracy_lo"], row["cond_accuracy_hi"] = wilson_interval(k, n)
    else:
        test = stats.chisquare(hist)
        row["chi2"], row["chi2_p"] = float(test.statistic), float(test.pvalue)
    return row, images


def quality_table(rows: list[dict]) -> pd.DataFrame:
    """Rows -> DataFrame with COLUMNS (documented above)."""
    return pd.DataFrame(rows, columns=COLUMNS)


@dataclass(frozen=True)
class QualityConfig:
    """``diffeval quality``: ``n`` samples of each generator (default: every bundled one) at its defaults."""

    generators: tuple[str, ...] = ()
    n: int = 1000
    seed: int = 0
    out: str = "quality"
    device: str = "auto"
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        require_ints({"n": (self.n, 1)})
        require_seeds(seed=self.seed)


def run_quality(config: QualityConfig) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """The quality table (COLUMNS) and the first 100 images of each generator, by name.

    Each finished generator's row and images are cached in ``<out>/cache/<name>-<hash>.npz`` (the hash covers
    the weights, n, seed and device), so a run killed part-way resumes with the generators it has not done.
    """
    from diffeval.generators import bundled_names, load_generator

    from .judge import load_judge

    names = list(config.generators) or bundled_names()
    if not names:
        raise ValueError("no bundled generators are installed; pass --generator DIR")
    judge = load_judge()
    rows, grids = [], {}
    for name in names:
        g = load_generator(name, config.device, config.trust_pickle)
        if tuple(g.image_shape) != (1, 28, 28):
            raise ValueError(f"{g.info.name}: quality judges 1x28x28 Fashion-MNIST-like images with the bundled "
                             f"classifier; this generator makes {tuple(g.image_shape)} images (use diffeval benchmark)")
        row, images = _cached_row(config, g, judge)
        rows.append(row)
        grids[g.info.name] = images
    return quality_table(rows), grids


def _cached_row(config: QualityConfig, g: Generator, judge: Judge) -> tuple[dict, torch.Tensor]:
    """One generator's row and first 100 images, from the cache or made and then cached."""
    from .io import atomic_savez, digest, safe_path

    key = digest({"weights": g.fingerprint(), "n": config.n, "seed": config.seed, "device": str(g.device)})
    path = safe_path(Path(config.out) / "cache", f"{g.info.name}-{key}", suffix=".npz")
    if path.is_file():
        with np.load(path) as data:
            return json.loads(str(data["row"])), torch.from_numpy(data["images"])
    row, images = quality_row(g, judge, config.n, config.seed, progress=True)
    grid = images[:100].float().cpu()
    atomic_savez(path, {"row": np.array(json.dumps(row)), "images": grid.numpy()})
    return row, grid


def write_quality(config: QualityConfig, table: pd.DataFrame, grids: dict[str, torch.Tensor]) -> str:
    """quality.csv/.md/.json and a grid per generator in ``config.out``; returns the table as text."""
    from dataclasses import asdict

    from .images import save_grid
    from .io import safe_path, write_table

    for name, images in grids.items():
        save_grid(images, safe_path(config.out, f"grid_{name}.png"), nrow=10)
    write_table(table, config.out, "quality", asdict(config))
    return table.drop(columns=["class_hist"]).to_string(index=False)
