"""An independent re-implementation of Wen et al.'s Tree-Ring reference code (``optim_utils.py`` of
github.com/YuxinWenRick/tree-ring-watermark: ``circle_mask``, ``get_watermarking_mask``,
``get_watermarking_pattern``, ``inject_watermark``, ``eval_watermark``, ``get_p_value``), written from reading it
for the agreement test: numpy grids, unnormalised FFTs, (N, C, H, W) boolean masks and complex64 as there, with
the settings they read from ``args`` passed in. Only the paths of the paper's defaults (circle mask, ring / rand /
zeros patterns, complex injection, complex L1 measurement) are ported."""

from __future__ import annotations

import numpy as np
import scipy.stats
import torch


def circle_mask(size: int = 64, r: int = 10) -> np.ndarray:
    centre = size // 2
    yy, xx = np.ogrid[:size, :size]
    yy = yy[::-1]  # their grid counts rows from the bottom
    return ((xx - centre) ** 2 + (yy - centre) ** 2) <= r**2


def watermarking_mask(latents: torch.Tensor, radius: int, channel: int) -> torch.Tensor:
    mask = torch.zeros(latents.shape, dtype=torch.bool)
    disc = torch.tensor(circle_mask(latents.shape[-1], r=radius))
    if channel == -1:
        mask[:, :] = disc
    else:
        mask[:, channel] = disc
    return mask


def watermarking_pattern(shape: tuple[int, ...], pattern: str, radius: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)  # their set_random_seed; the CPU stream is all that matters here
    init = torch.randn(*shape)
    spec = torch.fft.fftshift(torch.fft.fft2(init), dim=(-1, -2))
    if pattern == "zeros":
        return spec * 0
    if pattern == "rand":
        spec[:] = spec[0]
        return spec
    original = spec.clone()
    for i in range(radius, 0, -1):
        ring = torch.tensor(circle_mask(init.shape[-1], r=i))
        for j in range(spec.shape[1]):
            spec[:, j, ring] = original[0, j, 0, i].item()
    return spec


def inject_watermark(latents: torch.Tensor, mask: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
    spec = torch.fft.fftshift(torch.fft.fft2(latents), dim=(-1, -2))
    spec[mask] = patch[mask].clone()
    return torch.fft.ifft2(torch.fft.ifftshift(spec, dim=(-1, -2))).real


def l1_metric(latents: torch.Tensor, mask: torch.Tensor, patch: torch.Tensor) -> float:
    """``eval_watermark``'s complex L1 measurement of one batch of reversed latents."""
    spec = torch.fft.fftshift(torch.fft.fft2(latents), dim=(-1, -2))
    return torch.abs(spec[mask] - patch[mask]).mean().item()


def p_value(latents: torch.Tensor, mask: torch.Tensor, patch: torch.Tensor) -> float:
    """``get_p_value`` for one batch of reversed latents."""
    spec = torch.fft.fftshift(torch.fft.fft2(latents), dim=(-1, -2))[mask].flatten()
    target = patch[mask].flatten()
    target = torch.concatenate([target.real, target.imag])
    values = torch.concatenate([spec.real, spec.imag])
    sigma = values.std()
    lam = (target**2 / sigma**2).sum().item()
    x = (((values - target) / sigma) ** 2).sum().item()
    return float(scipy.stats.ncx2.cdf(x=x, df=len(target), nc=lam))
