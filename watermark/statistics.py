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
TESTS = ("cosine", "ncx2", "paper")


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


def key_cosine(noise: torch.Tensor, key: WatermarkKey) -> torch.Tensor:
    """(N,) float64 in [-1, 1]: cosine between the key region's M real coordinates and the key's
    (the normalised matched filter; large = marked). Needs a non-zero key."""
    key.check_shape(tuple(noise.shape[1:]))
    y = coordinates(spectrum(noise[:, list(key.channels)]), key.mask).flatten(1)
    k = coordinates(key.values, key.mask).flatten()
    if float(k.norm()) == 0:
        raise ValueError("the cosine test needs a non-zero key (not the zeros pattern); use the ncx2 test")
    return (y @ k) / (y.norm(dim=1).clamp(min=1e-300) * k.norm())


def key_score(noise: torch.Tensor, key: WatermarkKey, test: str = "cosine") -> torch.Tensor:
    """(N,) float64 detection score of ``test`` (large = marked): the cosine for "cosine", minus
    the paper's mean L1 distance for "ncx2" and "paper"."""
    if test == "cosine":
        return key_cosine(noise, key)
    if test in ("ncx2", "paper"):
        return -key_distance(noise, key)
    raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")


def _sigma(f: torch.Tensor, key: WatermarkKey, y: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "unit":
        return torch.ones(y.shape[0], dtype=torch.float64)
    if mode == "mask":
        return y.std(dim=1)
    if mode == "outside":
        out = coordinates(f, ~key.mask).flatten(1)
        return out.pow(2).mean(dim=1).sqrt()
    raise ValueError(f"sigma must be one of {', '.join(SIGMA_MODES)}, got {mode!r}")


def key_pvalue(noise: torch.Tensor, key: WatermarkKey, sigma: str = "unit", test: str = "cosine") -> torch.Tensor:
    """(N,) float64 p-values of "this noise carries ``key``" against white noise.

    y: the M independent real coordinates of the spectrum in the key region (``fourier.coordinates``,
    exactly N(0, 1) for white unit noise), k the key's.

    ``test="cosine"`` (the default): the cosine between y and k, the normalised matched filter (the
    most powerful detector of a known signal in white Gaussian noise; the distance below also pays
    for the noise's own energy). Under any isotropic null, whatever its scale,
    (1 + cos) / 2 ~ Beta((M-1)/2, (M-1)/2), p = P(cos' >= cos). Needs a non-zero key.
    ``test="ncx2"`` (Wen et al.): eta = |y - k|^2 / sigma^2 is non-central chi-square with df = M and
    nc = |k|^2 / sigma^2 under the null, p = P(eta' <= eta). ``sigma``: "unit" (the noise scale the
    generator was trained on), "outside" (RMS of the coordinates outside the key region, per image)
    or "mask" (std inside the region, the paper code's choice, which makes the test conservative).
    """
    key.check_shape(tuple(noise.shape[1:]))
    if test == "cosine":
        return _cosine_pvalue(key_cosine(noise, key), key)
    if test == "paper":
        return paper_pvalue(noise, key)
    if test != "ncx2":
        raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    f = spectrum(noise[:, list(key.channels)])
    y = coordinates(f, key.mask).flatten(1)
    k = coordinates(key.values, key.mask).flatten().unsqueeze(0)
    df = y.shape[1]
    s = _sigma(f, key, y, sigma).clamp(min=1e-12)
    eta = (((y - k) ** 2).sum(dim=1) / s**2).numpy()
    nc = ((k**2).sum() / s**2).expand(y.shape[0]).numpy()
    p = np.where(nc > 0, stats.ncx2.cdf(eta, df, np.maximum(nc, 1e-300)), stats.chi2.cdf(eta, df))
    return torch.from_numpy(np.asarray(p, dtype=np.float64))


def paper_pvalue(noise: torch.Tensor, key: WatermarkKey) -> torch.Tensor:
    """(N,) float64: the p-value exactly as Wen et al.'s ``get_p_value`` computes it, for reproducing their
    numbers. y: the real and imaginary parts of every spectrum bin in the key's channels and mask (2 per bin, so
    each conjugate pair is counted twice and a real bin's zero imaginary part once), sigma their sample standard
    deviation (unbiased), p = ncx2.cdf(|y - k|^2 / sigma^2, df = len(y), nc = |k|^2 / sigma^2). The FFT's scale
    cancels. Its df counts dependent values as independent, so it is not a calibrated p-value (``test="ncx2"``
    is this test with the M independent coordinates and a stated sigma)."""
    key.check_shape(tuple(noise.shape[1:]))
    f = spectrum(noise[:, list(key.channels)])
    sel = f[..., key.mask].flatten(1)
    y = torch.cat([sel.real, sel.imag], dim=1)
    kk = key.values[..., key.mask].flatten()
    k = torch.cat([kk.real, kk.imag]).unsqueeze(0)
    s2 = y.std(dim=1, keepdim=True).clamp(min=1e-300) ** 2
    x = (((y - k) ** 2) / s2).sum(dim=1).numpy()
    nc = ((k**2) / s2).sum(dim=1).numpy()
    p = stats.ncx2.cdf(x, y.shape[1], np.maximum(nc, 1e-300))
    return torch.from_numpy(np.asarray(p, dtype=np.float64))


def _cosine_pvalue(cos: torch.Tensor, key: WatermarkKey) -> torch.Tensor:
    """P(cos' >= cos) under an isotropic null on the key's M coordinates: (1 + cos') / 2 ~ Beta((M-1)/2, (M-1)/2)."""
    df = coordinates(key.values, key.mask).numel()
    p = stats.beta.sf(((1 + cos) / 2).numpy(), (df - 1) / 2, (df - 1) / 2)
    return torch.from_numpy(np.asarray(p, dtype=np.float64))


def key_test(
    noise: torch.Tensor, key: WatermarkKey, sigma: str = "unit", test: str = "cosine"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(score, p_value), both (N,) float64: ``key_score`` and ``key_pvalue`` of one test, with the
    cosine computed once when the test is "cosine"."""
    if test == "cosine":
        cos = key_cosine(noise, key)
        return cos, _cosine_pvalue(cos, key)
    return key_score(noise, key, test), key_pvalue(noise, key, sigma, test)
