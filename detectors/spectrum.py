"""Spectral features of images for the detector's frequency branch.

``log_spectrum``: the centred 2-D FFT log-magnitude of each channel. With H x W images the zero
frequency sits at (H // 2, W // 2) (``torch.fft.fftshift``); a pattern cos(2 pi (u x / W + v y / H))
puts its two peaks at (H // 2 + v, W // 2 + u) and (H // 2 - v, W // 2 - u).

``radial_profile``: the azimuthal average of that log-magnitude over rings of integer radius
r = round(sqrt(dy^2 + dx^2)) around the zero frequency, for r = 0 .. R - 1 with R = min(H, W) // 2 + 1
(the corners beyond the inscribed circle are left out, so every ring is complete).
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


def spectral_features(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] (N, C, H, W) -> (log spectrum (N, C, H, W), radial profile (N, C, R)).

    Images are centred (2x - 1) first so the zero-frequency term does not dwarf the rest.
    """
    spec = log_spectrum(images.float() * 2 - 1)
    return spec, radial_profile(spec)
