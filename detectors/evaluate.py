"""Evaluating a detector on generators (seen or not) under perturbations, and per-file prediction.

``evaluate_detector`` -> one row per (generator, sampler, steps, perturbation): generator, family,
backbone, sampler, steps, guidance, perturbation, n_real, n_generated, then METRICS (``metrics.py``).
Real images are Fashion-MNIST test images; generated ones use ``seed`` (default 1, training uses 0).
``predict_files`` -> one row per file: file, p_generated (nan on error), error (empty when fine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from diffeval.data import load_fashion_mnist
from diffeval.images import read_image

from .data import GeneratedSpec, generated_images
from .metrics import METRICS, detection_metrics
from .model import Detector
from .perturb import EVAL_PERTURBATIONS, perturb

COLUMNS = ["generator", "family", "backbone", "sampler", "steps", "guidance", "perturbation", "n_real",
           "n_generated", *METRICS]


def evaluate_detector(model: Detector, specs: Sequence[GeneratedSpec], n: int, cache_dir: str | Path,
                      perturbations: Sequence[str] = ("none",), device: str = "cpu", data_dir=None,
                      progress: bool = False, trust_pickle: bool = False, real_dir: str | None = None,
                      fake_dir: str | None = None) -> pd.DataFrame:
    """Metrics on ``n`` real test images (Fashion-MNIST test, or the first n of ``real_dir``) against ``n`` images
    of each spec and of ``fake_dir`` (a row "files:NAME"), under each perturbation. Every image enters through the
    detector's input policy (``folders.InputPolicy``: centre crop to its size, its channels, never resized)."""
    from .folders import InputPolicy, apply_policy, read_folder

    policy = InputPolicy(model.config.image_size, model.config.channels)
    real_src = read_folder(real_dir)[0][:n] if real_dir else load_fashion_mnist("test", data_dir)[0][:n]
    real = _fit(apply_policy(real_src, policy)[0], policy, "real").float() / 255  # uint8 -> [0, 1]
    sources = [(spec, None) for spec in specs] + ([(None, fake_dir)] if fake_dir else [])
    rows = []
    for spec, folder in sources:
        if spec is not None:
            raw, entry = generated_images(spec, n, cache_dir, device, progress=progress, trust_pickle=trust_pickle)
        else:
            raw = read_folder(folder)[0][:n]
            entry = {"generator": f"files:{Path(folder).name}", "family": "files", "backbone": "", "sampler": "",
                     "steps": None, "guidance": None}
        fake = _fit(apply_policy(raw, policy)[0], policy, entry["generator"])
        x = torch.cat([real, fake.float() / 255])
        y = np.concatenate([np.zeros(len(real)), np.ones(len(fake))])
        for name in perturbations:
            p = model.predict_proba(perturb(x, name)).numpy()
            rows.append({"generator": entry["generator"], "family": entry["family"], "backbone": entry["backbone"],
                         "sampler": entry["sampler"], "steps": entry["steps"], "guidance": entry["guidance"],
                         "perturbation": name, "n_real": len(real), "n_generated": len(fake),
                         **detection_metrics(y, p)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _fit(x: torch.Tensor, policy, what: str) -> torch.Tensor:
    if not len(x):
        raise ValueError(f"{what}: no image is at least {policy.size}x{policy.size} (the detector's crop) in "
                         f"{'grey' if policy.channels == 1 else 'RGB'}")
    return x


def predict_files(model: Detector, paths: Sequence[str | Path]) -> pd.DataFrame:
    """P(generated) per image file, each through the detector's input policy (centre crop to its size, its
    channels, never resized); unreadable files and files smaller than the crop get their error instead."""
    from .folders import InputPolicy, apply_policy

    c = model.config
    policy = InputPolicy(c.image_size, c.channels)
    rows = []
    for raw in paths:
        path = Path(raw)
        try:
            arr, _ = read_image(path, c.channels)
            x, skipped = apply_policy([arr], policy)
            if skipped:
                raise ValueError(skipped[0][1])
            rows.append({"file": str(path), "p_generated": float(model.predict_proba(x.float() / 255)[0]),
                         "error": ""})
        except Exception as error:  # noqa: BLE001 - every failure becomes that file's row
            rows.append({"file": str(path), "p_generated": float("nan"),
                         "error": f"{type(error).__name__}: {error}".splitlines()[0]})
    return pd.DataFrame(rows, columns=["file", "p_generated", "error"])


__all__ = ["COLUMNS", "EVAL_PERTURBATIONS", "evaluate_detector", "predict_files"]
