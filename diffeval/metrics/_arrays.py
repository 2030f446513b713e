"""Input conversion shared by the metric functions: torch tensors / numpy arrays -> float64 numpy."""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def to_float64(x: ArrayLike, name: str) -> np.ndarray:
    """Any tensor/array (any real dtype, any device) as a float64 numpy array; rejects complex and NaN/inf."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{name} must be real, got a complex tensor")
        arr = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    else:
        arr = np.asarray(x)
        if np.iscomplexobj(arr):
            raise ValueError(f"{name} must be real, got a complex array")
        if arr.dtype == object:
            raise ValueError(f"{name} must be a numeric array, got dtype object")
        arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def features_2d(x: ArrayLike, name: str, min_rows: int = 1) -> np.ndarray:
    """A float64 (N, D) feature matrix with N >= min_rows and D >= 1."""
    arr = to_float64(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(arr.shape)}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns (shape {tuple(arr.shape)})")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {arr.shape[0]}")
    return arr


def paired_features(
    a: ArrayLike, b: ArrayLike, names: tuple[str, str], min_rows: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 (N_a, D), (N_b, D) feature matrices that must share D."""
    x = features_2d(a, names[0], min_rows)
    y = features_2d(b, names[1], min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{names[0]} and {names[1]} have different feature dims: {x.shape[1]} vs {y.shape[1]}")
    return x, y
