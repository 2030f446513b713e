"""Streaming float64 Gaussian statistics (mean, covariance) of feature vectors, and pytorch-fid npz I/O.

The accumulator keeps n, sum(x - c) and sum((x - c)(x - c)^T) in float64 about a fixed shift c
(zeros unless given). Feeding the same rows in any batching gives the same mean/cov up to float64
rounding, and shards combine exactly (`merge` re-centres a shard with another shift in closed form).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Union

import numpy as np

from diffeval.io import atomic_savez

from ._arrays import ArrayLike, to_float64

PathLike = Union[str, os.PathLike]

_STATE_KEYS = ("n", "sum", "sum_outer", "shift")
_RESERVED_NPZ_KEYS = ("mu", "sigma", "n")


class GaussianStats:
    """Streaming accumulator of feature statistics in float64.

    `GaussianStats(dim)`; `update(features)` with (N, dim) rows of any real dtype (torch or numpy).
    `mean` is (dim,), `cov` is (dim, dim), unbiased (ddof=1, as `np.cov(x, rowvar=False)`).

    `shift` (keyword, default zeros): a fixed vector c subtracted before accumulating, which reduces
    cancellation in cov = (Q - S S^T / n) / (n - 1) when features have a large common offset.

    `state_dict()` holds additive sums (keys n, sum, sum_outer) plus `shift`. For a
    torch.distributed all-reduce, every rank must use the same shift (the default zeros is fine) and
    only n, sum and sum_outer are summed; summing `shift` itself is only harmless while it is zero.
    Shards with different shifts are combined with `merge` (exact re-centring).
    """

    def __init__(self, dim: int, *, shift: ArrayLike | None = None) -> None:
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self._dim = int(dim)
        if shift is None:
            self._shift = np.zeros(self._dim, dtype=np.float64)
        else:
            c = to_float64(shift, "shift").reshape(-1).copy()
            if c.shape != (self._dim,):
                raise ValueError(f"shift must have shape ({self._dim},), got {c.shape}")
            self._shift = c
        self._n = 0
        self._sum = np.zeros(self._dim, dtype=np.float64)
        self._outer = np.zeros((self._dim, self._dim), dtype=np.float64)

    # ----------------------------------------------------------------- accumulation
    def update(self, features: ArrayLike) -> "GaussianStats":
        """Add rows of `features` (N, dim); returns self. N = 0 is a no-op."""
        x = to_float64(features, "features")
        if x.ndim != 2 or x.shape[1] != self._dim:
            raise ValueError(f"features must have shape (N, {self._dim}), got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return self
        x = x - self._shift
        self._n += x.shape[0]
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x
        return self

    def _sums_about(self, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum, sum_outer) of this accumulator re-expressed about another shift (exact algebra)."""
        delta = self._shift - shift
        if not delta.any():
            return self._sum.copy(), self._outer.copy()
        s = self._sum + self._n * delta
        q = self._outer + np.outer(self._sum, delta) + np.outer(delta, self._sum) + self._n * np.outer(delta, delta)
        return s, q

    def merge(self, other: "GaussianStats") -> "GaussianStats":
        """Add the sums of a disjoint shard `other` into self (exact combination); returns self."""
        if not isinstance(other, GaussianStats):
            raise TypeError(f"can only merge GaussianStats, got {type(other).__name__}")
        if other._dim != self._dim:
            raise ValueError(f"cannot merge stats of dim {other._dim} into dim {self._dim}")
        s, q = other._sums_about(self._shift)
        self._n += other._n
        self._sum += s
        self._outer += q
        return self

    def copy(self) -> "GaussianStats":
        """An independent copy."""
        return GaussianStats.from_state_dict(self.state_dict())

    def __add__(self, other: "GaussianStats") -> "GaussianStats":
        if not isinstance(other, GaussianStats):
            return NotImplemented
        return self.copy().merge(other)

    def __radd__(self, other: object) -> "GaussianStats":
        if isinstance(other, int) and other == 0:  # sum([a, b, c])
            return self.copy()
        return NotImplemented

    # ----------------------------------------------------------------- results
    @property
    def dim(self) -> int:
        """Feature dimension."""
        return self._dim

    @property
    def n(self) -> int:
        """Number of rows accumulated."""
        return self._n

    @property
    def mean(self) -> np.ndarray:
        """float64 (dim,) mean; ValueError if no rows were accumulated."""
        if self._n < 1:
            raise ValueError("mean needs at least 1 sample, got 0")
        return self._sum / self._n + self._shift

    @property
    def cov(self) -> np.ndarray:
        """float64 (dim, dim) unbiased covariance (ddof=1), symmetric; ValueError if n < 2."""
        if self._n < 2:
            raise ValueError(f"covariance needs at least 2 samples, got {self._n}")
        c = (self._outer - np.outer(self._sum, self._sum) / self._n) / (self._n - 1)
        return (c + c.T) / 2

    def rank(self) -> int:
        """Numerical rank of `cov` (numpy's default tolerance: max eigenvalue * dim * eps)."""
        return int(np.linalg.matrix_rank(self.cov, hermitian=True))

    def __repr__(self) -> str:
        return f"GaussianStats(dim={self._dim}, n={self._n})"

    # ----------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the sums: n (0-d int64), sum (dim,), sum_outer (dim, dim), shift (dim,); float64."""
        return {
            "n": np.array(self._n, dtype=np.int64),
            "sum": self._sum.copy(),
            "sum_outer": self._outer.copy(),
            "shift": self._shift.copy(),
        }

    @classmethod
    def from_state_dict(cls, d: Mapping[str, ArrayLike]) -> "GaussianStats":
        """Rebuild from `state_dict()` output (numpy arrays or torch tensors, e.g. after all-reduce)."""
        missing = [k for k in ("n", "sum", "sum_outer") if k not in d]
        if missing:
            raise ValueError(f"state dict lacks keys {missing}; has {sorted(d)}")
        s = to_float64(d["sum"], "sum").reshape(-1)
        dim = s.shape[0]
        q = to_float64(d["sum_outer"], "sum_outer")
        if q.shape != (dim, dim):
            raise ValueError(f"sum_outer must have shape ({dim}, {dim}), got {q.shape}")
        n_raw = float(to_float64(d["n"], "n").reshape(()))
        n = int(round(n_raw))
        if n < 0 or abs(n - n_raw) > 1e-6:
            raise ValueError(f"n must be a non-negative integer, got {n_raw}")
        out = cls(dim, shift=d["shift"] if "shift" in d else None)
        out._n = n
        out._sum = s.copy()
        out._outer = q.copy()
        return out

    def save_npz(self, path: PathLike, **meta: object) -> Path:
        """Write pytorch-fid's npz (mu, sigma) plus `n` and `meta` as 0-d arrays, atomically; returns the path.

        Metadata values must be scalars (numbers, bools, strings); the file loads without pickle.
        """
        clash = sorted(set(meta) & set(_RESERVED_NPZ_KEYS))
        if clash:
            raise ValueError(f"metadata keys {clash} are reserved")
        arrays: dict[str, np.ndarray] = {"mu": self.mean, "sigma": self.cov, "n": np.array(self._n, dtype=np.int64)}
        for key, value in meta.items():
            arr = np.asarray(value)
            if arr.ndim != 0 or arr.dtype == object:
                raise ValueError(f"metadata {key!r} must be a scalar number or string, got {type(value).__name__}")
            arrays[key] = arr
        path = Path(path)
        atomic_savez(path, arrays)
        return path


def load_stats_npz(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(mu (d,), sigma (d, d)) as float64 from a pytorch-fid style npz; ValueError naming the file if malformed."""
    path = Path(path)
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not a FID statistics file, expected an npz archive with keys mu and sigma")
    with loaded as f:
        missing = [k for k in ("mu", "sigma") if k not in f.files]
        if missing:
            raise ValueError(f"{path}: not a FID statistics file, missing keys {missing} (has {sorted(f.files)})")
        mu = np.asarray(f["mu"], dtype=np.float64)
        sigma = np.asarray(f["sigma"], dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: mu must be (d,) and sigma (d, d); got {mu.shape} and {sigma.shape}")
    return mu, sigma
