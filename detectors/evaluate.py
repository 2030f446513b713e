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
from diffeval.images import from_uint8, read_image

from .data import GeneratedSpec, generated_images
from .metrics import METRICS, detection_metrics
from .model import Detector
from .perturb import EVAL_PERTURBATIONS, perturb

COLUMNS = ["generator", "family", "backbone", "sampler", "steps", "guidance", "perturbation", "n_real",
           "n_generated", *METRICS]


def evaluate_detector(model: Detector, specs: Sequence[GeneratedSpec], n: int, cache_dir: str | Path,
                      perturbations: Sequence[str] = ("none",), device: str = "cpu", data_dir=None,
                      progress: bool = False, trust_pickle: bool = False) -> pd.DataFrame:
    """Metrics on ``n`` real test images against ``n`` images of each spec, under each perturbation."""
    real_all, _ = load_fashion_mnist("test", data_dir)
    real = real_all[:n].float() / 255  # uint8 -> [0, 1], like the generated images below
    rows = []
    for spec in specs:
        fake, entry = generated_images(spec, n, cache_dir, device, progress=progress, trust_pickle=trust_pickle)
        x = torch.cat([real, fake.float() / 255])
        y = np.concatenate([np.zeros(len(real)), np.ones(len(fake))])
        for name in perturbations:
            p = model.predict_proba(perturb(x, name)).numpy()
            rows.append({"generator": entry["generator"], "family": entry["family"], "backbone": entry["backbone"],
                         "sampler": entry["sampler"], "steps": entry["steps"], "guidance": entry["guidance"],
                         "perturbation": name, "n_real": len(real), "n_generated": len(fake),
                         **detection_metrics(y, p)})
    return pd.DataFrame(rows, columns=COLUMNS)


def predict_files(model: Detector, paths: Sequence[str | Path]) -> pd.DataFrame:
    """P(generated) per image file; unreadable or wrongly sized files get their error instead."""

    c = model.config
    rows = []
    for raw in paths:
        path = Path(raw)
        try:
            arr, _ = read_image(path, c.channels)
            if arr.shape[:2] != (c.image_size, c.image_size):
                raise ValueError(
                    f"image is {arr.shape[1]}x{arr.shape[0]}, the detector takes {c.image_size}x{c.image_size}"
                )
            x = from_uint8(arr)[None]
            rows.append({"file": str(path), "p_generated": float(model.predict_proba(x)[0]), "error": ""})
        except Exception as error:  # noqa: BLE001 - every failure becomes that file's row
            rows.append({"file": str(path), "p_generated": float("nan"),
                         "error": f"{type(error).__name__}: {error}".splitlines()[0]})
    return pd.DataFrame(rows, columns=["file", "p_generated", "error"])


__all__ = ["COLUMNS", "EVAL_PERTURBATIONS", "evaluate_detector", "predict_files"]
