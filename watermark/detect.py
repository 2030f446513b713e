"""Inversion-based Tree-Ring detection: images -> recovered initial noise -> score and p-value per key."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import UnidentifiedImageError

from diffeval.generators import Generator
from diffeval.images import from_uint8, read_image

from .gaussian_shading import STATISTICS, ShadingKey, shading_test
from .keys import WatermarkKey
from .keyset import KeySet, is_shading
from .null import NULL_METHODS, NoiseNull, calibrated_test
from .statistics import key_distance, key_test

DETECT_COLUMNS = ["image", "key", "score", "distance", "p_value", "p_adjusted", "detected", "error"]


@dataclass
class DetectSettings:
    """Inversion and decision settings.

    steps: inversion steps on the uniform grid (null condition, guidance 1); fixed_point: iterations
    that solve each inversion step exactly (``Generator.invert``); alpha: the false-positive rate of
    the decision; test: "cosine" (matched filter, the default) or "ncx2" (the paper's distance test),
    sigma: the ncx2 test's noise scale (see ``statistics.key_pvalue``); null_method: the p-value when a
    calibrated null is given ("empirical" or "gaussian", see ``null.calibrated_test``); gs_statistic: Gaussian
    Shading's test ("votes", the paper's majority over each bit's copies, or "raw", every coordinate's sign; see
    ``gaussian_shading.shading_test``).
    """

    steps: int = 50
    fixed_point: int = 2
    sampler: str | None = None
    alpha: float = 0.01
    sigma: str = "unit"
    test: str = "cosine"
    batch_size: int = 250
    null_method: str = "empirical"
    gs_statistic: str = "votes"

    def __post_init__(self) -> None:
        if self.gs_statistic not in STATISTICS:
            raise ValueError(f"gs_statistic must be one of {', '.join(STATISTICS)}, got {self.gs_statistic!r}")
        if self.null_method not in NULL_METHODS:
            raise ValueError(f"null_method must be one of {', '.join(NULL_METHODS)}, got {self.null_method!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.steps < 1 or self.fixed_point < 0:
            raise ValueError("steps must be >= 1 and fixed_point >= 0")

    def inversion_parts(self) -> dict:
        """What recovered noise depends on among these settings (a cache key's part)."""
        return {"steps": self.steps, "fp": self.fixed_point, "sampler": self.sampler}


def recover_noise(
    generator: Generator, images: torch.Tensor, settings: DetectSettings, progress: bool = False
) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] -> recovered initial noise (N, C, H, W) float32."""
    return generator.invert(
        images, steps=settings.steps, sampler=settings.sampler,
        guidance=1.0, fixed_point=settings.fixed_point, batch_size=settings.batch_size, progress=progress,
    )


def test_key(noise: torch.Tensor, key: WatermarkKey | ShadingKey | KeySet, settings: DetectSettings,
             null: NoiseNull | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(score, p-value), both (N,): Tree-Ring's test of ``settings`` (calibrated by ``null`` when given) or, for a
    Gaussian Shading key, its bit accuracy and binomial p-value (``settings.gs_statistic``). A key set: the largest
    member score, and the smallest member p-value times the number of members (Bonferroni, at most 1); calibrated,
    the largest whitened cosine ranked among the reference images' largest (``null.calibrated_test``)."""
    if isinstance(key, KeySet):
        if null is not None and not key.shading:
            return calibrated_test(noise, key, null, settings.null_method)
        tested = [test_key(noise, m, settings) for m in key.members]
        score = torch.stack([t[0] for t in tested]).amax(0)
        p = (torch.stack([t[1] for t in tested]).amin(0) * key.size).clamp(max=1.0)
        return score, p
    if isinstance(key, ShadingKey):
        return shading_test(noise, key, settings.gs_statistic)
    if null is None:
        return key_test(noise, key, settings.sigma, settings.test)
    return calibrated_test(noise, key, null, settings.null_method)


def _distance(noise: torch.Tensor, key: WatermarkKey | ShadingKey | KeySet) -> torch.Tensor:
    """(N,) float64: the paper's distance to a Tree-Ring key (a key set: its nearest member); NaN for Gaussian
    Shading."""
    if is_shading(key):
        return torch.full((len(noise),), torch.nan, dtype=torch.float64)
    if isinstance(key, KeySet):
        return torch.stack([key_distance(noise, m).to(torch.float64) for m in key.members]).amin(0)
    return key_distance(noise, key).to(torch.float64)


def score_noise(
    noise: torch.Tensor, keys: Sequence[WatermarkKey | ShadingKey | KeySet], settings: DetectSettings,
    null: NoiseNull | None = None,
) -> pd.DataFrame:
    """Score recovered noise against every key. One row per image with the best key (smallest p-value,
    ties by score): score (the test's statistic, large = marked: the cosine, or minus the distance
    for ncx2; with a calibrated ``null``, the whitened cosine; a Gaussian Shading key's bit accuracy), distance
    (Tree-Ring: the paper's mean |F - K| in the key region), p_value for that key, p_adjusted =
    min(1, K * p) (Bonferroni over the K keys, so the decision's false-positive rate stays <= alpha),
    detected = p_adjusted < alpha."""
    if not keys:
        raise ValueError("give at least one key")
    dist = torch.stack([_distance(noise, k) for k in keys], dim=1).numpy()
    if null is not None and settings.test != "cosine":
        raise ValueError(f"a calibrated null goes with the cosine test, not {settings.test!r}")
    tested = [test_key(noise, k, settings, null) for k in keys]
    score = torch.stack([t[0] for t in tested], dim=1).numpy()
    pval = torch.stack([t[1] for t in tested], dim=1).numpy()
    best = np.lexsort((-score.T, pval.T), axis=0)[0] if len(keys) > 1 else np.zeros(len(noise), dtype=int)
    rows = np.arange(len(noise))
    p = pval[rows, best]
    adj = np.minimum(1.0, p * len(keys))
    return pd.DataFrame({
        "key": [keys[j].label for j in best],
        "score": score[rows, best],
        "distance": dist[rows, best],
        "p_value": p,
        "p_adjusted": adj,
        "detected": adj < settings.alpha,
    })


def check_null(null: NoiseNull, generator: Generator, settings: DetectSettings, keys: Sequence[WatermarkKey]) -> None:
    """Raise ValueError unless ``null`` was calibrated on ``generator`` with ``settings``' inversion and fits every
    key's geometry: a null of another model or inversion describes other noise."""
    if settings.test != "cosine":
        raise ValueError(f"a calibrated null goes with the cosine test, not {settings.test!r}")
    fp = generator.fingerprint()
    if any(is_shading(k) for k in keys):
        raise ValueError("a calibrated null is for Tree-Ring keys; Gaussian Shading's binomial test needs none")
    if null.generator and null.generator != fp:
        raise ValueError(f"the null was calibrated on another generator (fingerprint {null.generator}, this one "
                         f"{fp}): calibrate one for this generator")
    want = {"inv_steps": settings.steps, "fixed_point": settings.fixed_point, "inv_sampler": settings.sampler}
    had = null.settings
    differ = [f"{k} {had[k]} (now {v})" for k, v in want.items() if k in had and had[k] != v]
    if differ:
        raise ValueError(f"the null was calibrated with other inversion settings: {', '.join(differ)}; detect with "
                         "those or calibrate again")
    for k in keys:
        null.check(k)


def detect_images(
    generator: Generator,
    images: torch.Tensor,
    keys: Sequence[WatermarkKey],
    settings: DetectSettings | None = None,
    progress: bool = False,
    null: NoiseNull | None = None,
) -> pd.DataFrame:
    """Images (N, C, H, W) in [0, 1] -> DataFrame (score_noise's columns plus detect_s_per_image); with ``null``,
    the calibrated test (``check_null`` first)."""
    settings = settings or DetectSettings()
    for k in keys:
        k.check_shape(generator.noise_shape)
    if null is not None:
        check_null(null, generator, settings, keys)
    t0 = time.perf_counter()
    noise = recover_noise(generator, images, settings, progress)
    out = score_noise(noise, keys, settings, null)
    out["detect_s_per_image"] = (time.perf_counter() - t0) / max(1, len(images))
    return out


def read_image_file(path: str | Path, shape: tuple[int, int, int]) -> tuple[torch.Tensor | None, str]:
    """One image file -> ((C, H, W) float in [0, 1], "") or (None, reason) when it cannot be used
    with a generator of ``shape`` (C, H, W)."""
    c, h, w = shape
    try:
        arr, own = read_image(path, c)
    except FileNotFoundError:
        return None, "no such file"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return None, f"corrupt or not an image ({type(exc).__name__})"
    if own != c:
        return None, f"{own}-channel image; the generator makes {c}-channel images"
    if arr.shape[:2] != (h, w):
        return None, f"size {arr.shape[1]}x{arr.shape[0]}; the generator makes {w}x{h} images"
    return from_uint8(arr), ""


def detect_files(
    generator: Generator,
    paths: Sequence[str | Path],
    keys: Sequence[WatermarkKey],
    settings: DetectSettings | None = None,
    progress: bool = False,
    null: NoiseNull | None = None,
) -> pd.DataFrame:
    """One row per file (columns DETECT_COLUMNS): files that cannot be read or do not fit the
    generator get their reason in ``error`` and NaN scores; the others are scored together (with ``null``:
    the calibrated test)."""
    settings = settings or DetectSettings()
    shape = generator.image_shape
    for k in keys:
        k.check_shape(generator.noise_shape)
    if null is not None:
        check_null(null, generator, settings, keys)
    good, errors = [], {}
    tensors = []
    for i, p in enumerate(paths):
        img, err = read_image_file(p, shape)
        if img is None:
            errors[i] = err
        else:
            good.append(i)
            tensors.append(img)
    rows = pd.DataFrame(
        {
            "image": [str(p) for p in paths],
            "key": "",
            "score": np.nan,
            "distance": np.nan,
            "p_value": np.nan,
            "p_adjusted": np.nan,
            "detected": False,
            "error": "",
        }
    )
    for i, err in errors.items():
        rows.loc[i, "error"] = err
    if tensors:
        scored = detect_images(generator, torch.stack(tensors), keys, settings, progress, null)
        for col in ("key", "score", "distance", "p_value", "p_adjusted", "detected"):
            rows.loc[good, col] = scored[col].to_numpy()
    rows["detected"] = rows["detected"].astype(bool)
    return rows[DETECT_COLUMNS]
