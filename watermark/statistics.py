"""Scores and p-values of recovered noise against a key (pure functions, no generator needed).

Noise tensors are (N, C, H, W) in model space at t = 1 (what ``Generator.invert`` returns).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from .fourier import coordinates, inverse_spectrum, spectrum
from .keys import WatermarkKey

SIGMA_MODES = ("unit", "outside", "mask")


def inject(noise: torch.Tensor, key: WatermarkKey) -> torch.Tensor:
    """Overwrite the key region of each keyed channel's centred spectrum and keep the real part.

    noise: (N, C, H, W) float; returns float32 of the same shape. Outside the key's channels and
    mask the noise is unchanged (up to float rounding).
    """
    key.check_shape(tuple(noise.shape[1:]))
    out = noise.detach().to(torch.float64).clone()
    ch = list(key.channels)
    f = spectrum(out[:, ch])
    f = torch.where(key.mask, key.values.unsqueeze(0), f)
    out[:, ch] = inverse_spectrum(f)
    return out.float()


def key_distance(noise: torch.Tensor, key: WatermarkKey) -> torch.Tensor:
    """(N,) float64: mean |F - K| over the key's channels and mask (the paper's score; small = marked)."""
    key.check_shape(tuple(noise.shape[1:]))
    f = spectrum(noise[:, list(key.channels)])
    diff = (f - key.values.unsqueeze(0)).abs()
    return diff[..., key.mask].flatten(1).mean(dim=1)


def _sigma(f: torch.Tensor, key: WatermarkKey, y: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "unit":
        return torch.ones(y.shape[0], dtype=torch.float64)
    if mode == "mask":
        return y.std(dim=1)
    if mode == "outside":
        out = coordinates(f, ~key.mask).flatten(1)
        return out.pow(2).mean(dim=1).sqrt()
    raise ValueError(f"sigma must be one of {', '.join(SIGMA_MODES)}, got {mode!r}")


def key_pvalue(noise: torch.Tensor, key: WatermarkKey, sigma: str = "unit", test: str = "ncx2") -> torch.Tensor:
    """(N,) float64 p-values of "this noise carries ``key``" against white noise.

    y: the M independent real coordinates of the spectrum in the key region (``fourier.coordinates``,
    exactly N(0, 1) for white unit noise), k the key's.

    ``test="ncx2"`` (Wen et al.): eta = |y - k|^2 / sigma^2 is non-central chi-square with df = M and
    nc = |k|^2 / sigma^2 under the null, p = P(eta' <= eta). ``sigma``: "unit" (the noise scale the
    generator was trained on; the default, calibrated in the README), "outside" (RMS of the
    coordinates outside the key region, per image) or "mask" (std inside the region, the paper
    code's choice, which makes the test conservative).
    ``test="cosine"``: the cosine between y and k; under any isotropic null (whatever the scale),
    (1 + cos) / 2 ~ Beta((M-1)/2, (M-1)/2), p = P(cos' >= cos). Needs a non-zero key.
    """
    key.check_shape(tuple(noise.shape[1:]))
    f = spectrum(noise[:, list(key.channels)])
    y = coordinates(f, key.mask).flatten(1)
    k = coordinates(key.values, key.mask).flatten().unsqueeze(0)
    df = y.shape[1]
    if test == "cosine":
        if float(k.norm()) == 0:
            raise ValueError("the cosine test needs a non-zero key (not the zeros pattern)")
        cos = (y @ k.T).squeeze(1) / (y.norm(dim=1).clamp(min=1e-300) * k.norm())
        p = stats.beta.sf(((1 + cos) / 2).numpy(), (df - 1) / 2, (df - 1) / 2)
        return torch.from_numpy(np.asarray(p, dtype=np.float64))
    if test != "ncx2":
        raise ValueError(f"test must be 'ncx2' or 'cosine', got {test!r}")
    s = _sigma(f, key, y, sigma).clamp(min=1e-12)
    eta = (((y - k) ** 2).sum(dim=1) / s**2).numpy()
    nc = ((k**2).sum() / s**2).expand(y.shape[0]).numpy()
    p = np.where(nc > 0, stats.ncx2.cdf(eta, df, np.maximum(nc, 1e-300)), stats.chi2.cdf(eta, df))
    return torch.from_numpy(np.asarray(p, dtype=np.float64))
