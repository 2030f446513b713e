"""The centred, orthonormal 2-D Fourier view of initial noise that Tree-Ring keys live in.

With ``norm="ortho"`` a white N(0, 1) image has spectrum values whose real and imaginary parts are
N(0, 1/2) (N(0, 1) real at self-conjugate bins such as DC). A real image's spectrum is Hermitian,
F(-f) = conj(F(f)), so a disc around DC holds exactly as many real degrees of freedom as it holds
pixels: the real part at DC plus (real, imaginary) of one bin of each conjugate pair. ``coordinates``
lists those, scaled so that white N(0, 1) noise gives N(0, 1) coordinates; that is what the p-value
of ``watermark.detect`` needs and what the paper's code misses (it counts each pair twice).
"""

from __future__ import annotations

import torch


def spectrum(x: torch.Tensor) -> torch.Tensor:
    """(…, H, W) real -> (…, H, W) complex128 centred orthonormal FFT (DC at index (H//2, W//2))."""
    return torch.fft.fftshift(torch.fft.fft2(x.to(torch.float64), norm="ortho"), dim=(-2, -1))


def inverse_spectrum(f: torch.Tensor) -> torch.Tensor:
    """Inverse of ``spectrum``, keeping the real part (float64)."""
    return torch.fft.ifft2(torch.fft.ifftshift(f, dim=(-2, -1)), norm="ortho").real


def frequencies(size: int) -> torch.Tensor:
    """Integer frequency of each index of a centred axis of length ``size`` (DC at size // 2)."""
    return torch.arange(size) - size // 2


def circle_mask(height: int, width: int, radius: float) -> torch.Tensor:
    """(H, W) bool: centred-spectrum bins within ``radius`` (in frequency units) of DC."""
    fy, fx = frequencies(height)[:, None].double(), frequencies(width)[None, :].double()
    return (fy**2 + fx**2) <= float(radius) ** 2


def mirror_index(size: int) -> torch.Tensor:
    """Index of -f for each centred index f along an axis of length ``size``."""
    c = size // 2
    return (2 * c - torch.arange(size)) % size


def is_hermitian_symmetric(mask: torch.Tensor) -> bool:
    """True when the (H, W) mask contains -f for every f it contains (needed to survive real())."""
    h, w = mask.shape
    mirrored = mask[mirror_index(h)][:, mirror_index(w)]
    return bool(torch.equal(mask, mirrored))


def half_plane(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pair, self_conjugate), both (H, W) bool.

    ``pair``: one representative of each conjugate pair (fy > 0, or fy == 0 and fx > 0, taking
    wrapped Nyquist indices into account); ``self_conjugate``: bins equal to their own mirror (DC and
    Nyquist bins), whose spectrum value of a real image is real.
    """
    my, mx = mirror_index(height), mirror_index(width)
    iy, ix = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    jy, jx = my[iy], mx[ix]
    self_conj = (iy == jy) & (ix == jx)
    lin, mirror_lin = iy * width + ix, jy * width + jx
    pair = (lin < mirror_lin) & ~self_conj
    return pair, self_conj


def coordinates(f: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Spectrum values (…, H, W) complex inside a Hermitian-symmetric mask -> (…, M) float64 with
    M = mask.sum(): sqrt(2)·(Re, Im) of one bin per conjugate pair and Re at self-conjugate bins.

    For white N(0, 1) noise these are i.i.d. N(0, 1), exactly.
    """
    if not is_hermitian_symmetric(mask):
        raise ValueError("the key mask must be symmetric under f -> -f (a paper-layout key is not: use --test paper)")
    pair, self_conj = half_plane(*mask.shape)
    p, s = pair & mask, self_conj & mask
    root2 = 2.0**0.5
    parts = [root2 * f[..., p].real, root2 * f[..., p].imag, f[..., s].real]
    return torch.cat(parts, dim=-1)
