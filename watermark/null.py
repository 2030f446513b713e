"""The null distribution of recovered noise: what inverting *unmarked* images of one generator gives.

The plain tests (``statistics.key_test``) assume the recovered noise is white N(0, 1). It is not: on the latent
``sd3`` the key disc's 13 coordinates have means up to -0.33, standard deviations 0.84-1.26 and correlations up to
0.28 (1,000 unmarked images), so the false-positive rate depends on the key (its spread over random keys is
about twice the binomial noise). A ``NoiseNull`` holds the key-region coordinates of noise recovered from n
unmarked images of one generator, for one key geometry (shape, channels, disc): every key of that geometry,
whatever its values, is calibrated by it.

- ``whiten``: y -> W (y - mu), with mu the mean and W = Sigma^(-1/2) (symmetric, eigenvalues floored) of the
  first ``FIT_SHARE`` of the calibration images (the *fit* part), Sigma the Ledoit-Wolf shrinkage estimate
  (``sklearn.covariance.LedoitWolf``): a key region of M = 216 coordinates is estimated from a few hundred
  images, where the sample covariance's smallest eigenvalues are far too small and whitening by them inflates
  fresh noise.
- ``calibrated_test(noise, key, null, method)``: the cosine between the whitened coordinates and the whitened key
  W (k - mu) (the matched filter for coloured noise), and a p-value:
  ``"gaussian"``: (1 + cos) / 2 ~ Beta((M-1)/2, (M-1)/2), exact if the whitened null is isotropic Gaussian, any
  alpha; ``"empirical"``: the split-conformal p-value (1 + #{reference scores >= score}) / (n_ref + 1) of the same
  statistic on the *reference* part (the calibration images after the fit part), exactly valid for every key
  whenever calibration and tested unmarked images come from the same process, because the whitener never saw the
  reference images (its smallest value is 1 / (n_ref + 1)). Ranking among the fit images themselves is not: on
  the latent ``sd3`` with the 216-coordinate annulus key it gave FPR 0.022 on average at alpha = 0.01 (300 keys,
  1,000 unmarked test images), the split 0.0105 (``benchmarks/null_calibration.py``).

A key set (``watermark.keyset``) is calibrated the same way: its statistic is the largest member cosine, ranked
among the reference images' largest member cosines, so the empirical p-value stays exact for the set.

**Under attack.** A null calibrated on clean images holds for clean unmarked images; an attack changes what unmarked
images invert to (on ``sd3`` the clean-calibrated rule's FPR reached 0.065-0.095 under rotation at alpha = 0.01).
``conditions`` adds reference sets: the same calibration images under each of a list of attacks, inverted (only the
reference part's images, so the whitener saw none of them). The empirical p-value is then the largest of the
conformal p-values among the clean and each attacked reference, max_a (1 + #{ref_a >= s}) / (n_a + 1): for an
unmarked image made by any one of those processes P(p <= alpha) <= alpha, so the rule holds under every attack
calibrated for, at the price of power where the attacks spread the null.

Calibration images must not be the evaluation images: ``calibrate.calibrate_null`` draws them from its own seed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from scipy import stats
from sklearn.covariance import LedoitWolf

from diffeval.io import atomic_write_bytes

from .fourier import coordinates, spectrum
from .keys import WatermarkKey, read_tagged_file
from .keyset import KeySet, region_key

NULL_FORMAT = "diffeval-watermark-null"
NULL_METHODS = ("gaussian", "empirical")
EIGEN_FLOOR = 1e-6  # relative to the largest eigenvalue of the coordinates' covariance
FIT_SHARE = 0.3  # calibration images that fit mean and whitener; the rest are the conformal reference


def geometry_of(key: WatermarkKey) -> dict:
    """What fixes a key's coordinates (not its values): shape, channels and the mask's bins, as JSON-able values."""
    if key.layout != "centred":
        raise ValueError("a calibrated null needs a centred-layout key (the paper layout is not Hermitian)")
    rows, cols = torch.nonzero(key.mask, as_tuple=True)
    return {"shape": list(key.shape), "channels": list(key.channels),
            "bins": [[int(r), int(c)] for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]}


def key_coordinates(noise: torch.Tensor, key: WatermarkKey) -> torch.Tensor:
    """Noise (N, C, H, W) -> (N, M) float64: the M real coordinates of the key region over its channels."""
    key.check_shape(tuple(noise.shape[1:]))
    return coordinates(spectrum(noise[:, list(key.channels)]), key.mask).flatten(1)


@dataclass
class NoiseNull:
    """Key-region coordinates of noise recovered from n unmarked images (``coords`` (n, M) float64) for one key
    ``geometry`` (``geometry_of``), with the generator's fingerprint and the settings that made them. The first
    ``n_fit`` rows fit mean and whitener, the others (``reference``) rank the empirical p-values."""

    coords: torch.Tensor = field(repr=False)
    geometry: dict = field(repr=False)
    generator: str = ""
    settings: dict = field(default_factory=dict)
    conditions: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.coords = self.coords.to(torch.float64)
        if self.coords.ndim != 2 or self.coords.shape[0] < self.coords.shape[1] + 2:
            raise ValueError(f"a null needs more images than coordinates + 1, got coords of shape "
                             f"{tuple(self.coords.shape)}")
        self.conditions = {str(k): v.to(torch.float64) for k, v in self.conditions.items()}
        bad = [k for k, v in self.conditions.items() if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] != self.dim]
        if bad:
            raise ValueError(f"attacked references {', '.join(bad)} must be (n, {self.dim}) coordinates")
        self.n_fit = fit_count(self.n)
        fit = self.coords[: self.n_fit]
        self.mean = fit.mean(0)
        cov = torch.from_numpy(LedoitWolf().fit(fit.numpy()).covariance_).reshape(self.dim, self.dim)
        ev, vec = torch.linalg.eigh(cov)
        ev = ev.clamp(min=EIGEN_FLOOR * float(ev.max()))
        self.whitener = vec @ torch.diag(ev.rsqrt()) @ vec.T

    @property
    def n(self) -> int:
        return int(self.coords.shape[0])

    @property
    def reference(self) -> torch.Tensor:
        """(n - n_fit, M): the calibration coordinates the whitener was not fitted on."""
        return self.coords[self.n_fit:]

    def references(self) -> dict[str, torch.Tensor]:
        """The reference coordinates the empirical p-value ranks among: "clean" and each attacked condition."""
        return {"clean": self.reference, **self.conditions}

    @property
    def dim(self) -> int:
        return int(self.coords.shape[1])

    def check(self, key: WatermarkKey | KeySet) -> None:
        """Raise ValueError unless ``key`` (every member of a key set) has this null's geometry."""
        for member in getattr(key, "members", ()):
            self.check(member)
        if isinstance(key, KeySet):
            return
        if geometry_of(key) != self.geometry:
            g = self.geometry
            raise ValueError(f"key {key.label} (shape {list(key.shape)}, channels {list(key.channels)}, "
                             f"{int(key.mask.sum())} bins) does not have the calibrated geometry (shape {g['shape']}, "
                             f"channels {g['channels']}, {len(g['bins'])} bins): calibrate a null for it")

    def whiten(self, y: torch.Tensor) -> torch.Tensor:
        """(..., M) coordinates -> (..., M) W (y - mu)."""
        return (y.to(torch.float64) - self.mean) @ self.whitener

    def key_direction(self, key: WatermarkKey) -> torch.Tensor:
        """(M,) the whitened key W (k - mu): where marked noise moves in whitened coordinates."""
        self.check(key)
        return self.whiten(coordinates(key.values, key.mask).flatten())

    def cosine(self, y: torch.Tensor, key: WatermarkKey) -> torch.Tensor:
        """(N, M) coordinates -> (N,) float64 cosine between W (y - mu) and W (k - mu)."""
        d = self.key_direction(key)
        if float(d.norm()) == 0:
            raise ValueError(f"key {key.label} equals the null's mean: nothing to detect")
        z = self.whiten(y)
        return (z @ d) / (z.norm(dim=1).clamp(min=1e-300) * d.norm())


def fit_count(n: int) -> int:
    """How many of n calibration images fit the mean and whitener (the first ``FIT_SHARE``, at least 2)."""
    return max(2, math.ceil(FIT_SHARE * n))


def estimate_null(
    noise: torch.Tensor, key: WatermarkKey, generator: str = "", settings: dict | None = None,
    attacked: dict[str, torch.Tensor] | None = None,
) -> NoiseNull:
    """Null of ``key``'s geometry from noise (n, C, H, W) recovered from unmarked images; ``attacked``: {attack
    name: noise (n - fit_count(n), C, H, W) recovered from the reference images (the rows after the fit part) after
    that attack}: the null's ``conditions``."""
    want = (len(noise) - fit_count(len(noise)), *noise.shape[1:])
    conditions = {}
    for name, a in (attacked or {}).items():
        if tuple(a.shape) != want:
            raise ValueError(f"attacked calibration noise {name} has shape {tuple(a.shape)}, not {want} (the "
                             "reference images after the first fit_count(n))")
        conditions[name] = key_coordinates(a, key)
    return NoiseNull(key_coordinates(noise, key), geometry_of(key), generator, dict(settings or {}), conditions)


def set_cosine(null: NoiseNull, y: torch.Tensor, key: WatermarkKey | KeySet) -> torch.Tensor:
    """(N, M) coordinates -> (N,) float64: ``null.cosine`` with the key, or the largest over a key set's members."""
    members = key.members if isinstance(key, KeySet) else (key,)
    return torch.stack([null.cosine(y, m) for m in members]).amax(0)


def calibrated_test(
    noise: torch.Tensor, key: WatermarkKey | KeySet, null: NoiseNull, method: str = "empirical"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(score, p_value), both (N,) float64: the whitened cosine (large = marked) and its p-value under ``null``
    (``method``: "gaussian" Beta tail, or "empirical" conformal rank among the calibration images). A key set: the
    largest member cosine; "gaussian" then multiplies the tail by the number of members (Bonferroni), "empirical"
    ranks it among the reference images' largest member cosines (exact)."""
    if method not in NULL_METHODS:
        raise ValueError(f"method must be one of {', '.join(NULL_METHODS)}, got {method!r}")
    null.check(key)
    cos = set_cosine(null, key_coordinates(noise, region_key(key)), key)
    if method == "gaussian":
        if null.conditions:
            raise ValueError("a null calibrated under attacks ranks among its attacked references: use the "
                             "empirical method")
        m, s = null.dim, (key.size if isinstance(key, KeySet) else 1)
        p = np.minimum(1.0, s * stats.beta.sf(((1 + cos) / 2).numpy(), (m - 1) / 2, (m - 1) / 2))
        return cos, torch.from_numpy(np.asarray(p, dtype=np.float64))
    p = np.zeros(len(cos))
    for ref in null.references().values():  # the largest conformal p-value over clean and attacked references
        ref = np.sort(set_cosine(null, ref, key).numpy())
        above = len(ref) - np.searchsorted(ref, cos.numpy(), side="left")  # reference scores >= each score
        p = np.maximum(p, (1.0 + above) / (len(ref) + 1.0))
    return cos, torch.from_numpy(p)


def save_null(null: NoiseNull, path: str | Path) -> Path:
    """Write ``null`` to a safetensors file (coordinates; geometry, generator and settings in the header)."""
    meta = {"format": NULL_FORMAT, "version": "1", "geometry": json.dumps(null.geometry),
            "generator": null.generator, "settings": json.dumps(null.settings),
            "conditions": json.dumps(list(null.conditions))}
    tensors = {"coords": null.coords.contiguous(),
               **{f"condition/{i}": v.contiguous() for i, v in enumerate(null.conditions.values())}}
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def load_null(path: str | Path) -> NoiseNull:
    """Read a file written by ``save_null``; a clear ValueError for anything else."""
    path = Path(path)
    meta, tensors = read_tagged_file(path, NULL_FORMAT, ("coords",), "a diffeval watermark null file", "null file",
                                     " (make one with `diffeval watermark calibrate`)")
    try:
        geometry, settings = json.loads(meta["geometry"]), json.loads(meta.get("settings", "{}"))
        names = json.loads(meta.get("conditions", "[]"))
        conditions = {str(name): tensors[f"condition/{i}"] for i, name in enumerate(names)}
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: damaged null file header ({exc})") from None
    return NoiseNull(tensors["coords"], geometry, meta.get("generator", ""), settings, conditions)
