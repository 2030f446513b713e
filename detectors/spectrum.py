"""Spectral features of images for the detector's frequency branch.

``log_spectrum``: the centred 2-D FFT log-magnitude of each channel. With H x W images the zero
frequency sits at (H // 2, W // 2) (``torch.fft.fftshift``); a pattern cos(2 pi (u x / W + v y / H))
puts its two peaks at (H // 2 + v, W // 2 + u) and (H // 2 - v, W // 2 - u).

``radial_profile``: the azimuthal average of that log-magnitude over rings of integer radius
r = round(sqrt(dy^2 + dx^2)) around the zero frequency, for r = 0 .. R - 1 with R = min(H, W) // 2 + 1
(the corners beyond the inscribed circle are left out, so every ring is complete).

``local_log_spectrum``: the log-magnitude of the orthonormal 2-D DCT-II of every non-overlapping
b x b block (JPEG's transform, at 4 x 4 by default so that 28 px images tile exactly), the local
frequency statistics of Qian et al. 2020 (F3-Net). Unlike the global spectrum, it sees flat regions
one at a time: an exactly flat block has exactly zero AC coefficients (log eps), where a generator's
low-amplitude background noise of one or two 8-bit levels gives coefficients of about 0.004.
"""

from __future__ import annotations

import torch

EPS = 1e-8


def log_spectrum(images: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """(N, C, H, W) real -> (N, C, H, W) float32 log(|FFT| + eps), zero frequency centred.

    The FFT is unnormalised (``norm="backward"``): a constant image c gives log(|c| H W) at the centre.
    """
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got {tuple(images.shape)}")
    spec = torch.fft.fftshift(torch.fft.fft2(images.double()), dim=(-2, -1))
    return torch.log(spec.abs() + eps).float()


def ring_index(height: int, width: int) -> tuple[torch.Tensor, int]:
    """(H, W) int64 ring number of every frequency (-1 outside the inscribed circle), and R rings."""
    n_rings = min(height, width) // 2 + 1
    dy = torch.arange(height) - height // 2
    dx = torch.arange(width) - width // 2
    r = torch.sqrt(dy[:, None].double() ** 2 + dx[None, :].double() ** 2).round().long()
    return torch.where(r < n_rings, r, torch.full_like(r, -1)), n_rings


def radial_profile(spectrum: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) centred spectrum -> (N, C, R) mean over each ring of integer radius 0 .. R - 1."""
    n, c, h, w = spectrum.shape
    rings, n_rings = ring_index(h, w)
    flat = spectrum.reshape(n, c, h * w).double()
    idx = rings.reshape(-1)
    keep = idx >= 0
    sums = torch.zeros(n, c, n_rings, dtype=torch.float64)
    sums.index_add_(2, idx[keep], flat[:, :, keep])
    counts = torch.bincount(idx[keep], minlength=n_rings).double()
    return (sums / counts).float()


def dct_matrix(n: int) -> torch.Tensor:
    """(n, n) float64 orthonormal DCT-II basis: row k is sqrt(2/n) c_k cos(pi (2i + 1) k / (2n)), c_0 = 1/sqrt(2)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    m = torch.cos(torch.pi * (2 * i + 1) * k / (2 * n)) * (2.0 / n) ** 0.5
    m[0] /= 2.0 ** 0.5
    return m


def block_dct(images: torch.Tensor, block: int = 4) -> torch.Tensor:
    """(N, C, H, W) real, H and W multiples of ``block`` -> (N, C * block^2, H / block, W / block) float64
    orthonormal DCT-II coefficients of each non-overlapping block; channel c * block^2 + k * block + l holds
    frequency (k, l) (vertical, horizontal) of input channel c. Parseval holds per block."""
    if images.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) images, got {tuple(images.shape)}")
    n, c, h, w = images.shape
    if h % block or w % block:
        raise ValueError(f"image size {h}x{w} is not a multiple of the DCT block {block}")
    d = dct_matrix(block).to(images.device)
    x = images.double().reshape(n, c, h // block, block, w // block, block).permute(0, 1, 2, 4, 3, 5)
    coef = d @ x @ d.T  # (N, C, H/b, W/b, b, b)
    return coef.permute(0, 1, 4, 5, 2, 3).reshape(n, c * block * block, h // block, w // block)


def local_log_spectrum(images: torch.Tensor, block: int = 4, eps: float = 1e-3) -> torch.Tensor:
    """Images in [0, 1] (N, C, H, W) -> (N, C * block^2, H / block, W / block) float32 log(|block DCT| + eps).

    Taken on the raw [0, 1] values (not centred), so black regions give exactly log(eps); eps = 1e-3 is a
    quarter of one 8-bit level (1/255)."""
    return torch.log(block_dct(images.float(), block).abs() + eps).float()


def spectral_features(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] (N, C, H, W) -> (log spectrum (N, C, H, W), radial profile (N, C, R)).

    Images are centred (2x - 1) first so the zero-frequency term does not dwarf the rest.
    """
    spec = log_spectrum(images.float() * 2 - 1)
    return spec, radial_profile(spec)
