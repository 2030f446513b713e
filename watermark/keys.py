"""Tree-Ring keys: a pattern written into the centred Fourier spectrum of the initial noise.

A key holds, per keyed channel, complex spectrum values on a disc of ``radius`` frequency units
around DC. Values are Hermitian-symmetric, so the key survives the real part taken after injection
exactly. Patterns (Wen et al. 2023):

- ``rings``: one real constant per ring k = 1..radius (ring k: (k-1)^2 < |f|^2 <= k^2, DC in ring 1),
  drawn N(0, 1) so a keyed bin has the energy of a noise bin; invariant to rotations of the image.
- ``rand``: the spectrum of a seeded white N(0, 1) image on the disc.
- ``zeros``: zero on the disc.

``layout="paper"`` builds a key exactly as Wen et al.'s code does (``paper_layout``): their disc, whose centre sits
one row off the DC bin (their mask flips the row axis), and complex ring constants read from a seeded noise
spectrum. That key is not Hermitian-symmetric, so injecting it and keeping the real part does not leave it in the
noise, and only the paper's own statistics (``test="paper"``) apply to it; it is there to reproduce their numbers.

Keys are secrets: a file holds the values and the seed they came from; keep it private.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from diffeval.io import atomic_write_bytes

from .fourier import circle_mask, frequencies, spectrum

PATTERNS = ("rings", "rand", "zeros")
KEY_FORMAT = "diffeval-watermark-key"
KEY_FILE_MODE = 0o600  # a key forges and removes marks: readable by its owner only


@dataclass
class WatermarkKey:
    """A key for images of ``shape`` (C, H, W). ``values``: (len(channels), H, W) complex128, zero
    outside ``mask`` (H, W) bool. ``seed`` is the secret the values were drawn from."""

    pattern: str
    radius: float
    channels: tuple[int, ...]
    shape: tuple[int, int, int]
    seed: int
    values: torch.Tensor = field(repr=False)
    mask: torch.Tensor = field(repr=False)
    name: str = ""
    inner_radius: float = 0.0
    layout: str = "centred"

    @property
    def fingerprint(self) -> str:
        """12 hex digits of a hash of the key values (safe to print; does not reveal the key)."""
        h = hashlib.sha256(self.values.real.numpy().tobytes() + self.values.imag.numpy().tobytes())
        return h.hexdigest()[:12]

    @property
    def label(self) -> str:
        return self.name or f"{self.pattern}-{self.fingerprint}"

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError unless images of (C, H, W) ``shape`` can carry this key."""
        if tuple(shape) != tuple(self.shape):
            raise ValueError(
                f"key {self.label} was made for images of shape {tuple(self.shape)}, not {tuple(shape)}"
            )


def ring_index(height: int, width: int) -> torch.Tensor:
    """(H, W) int: ring k = ceil(|f|) of each bin (DC gets 1), the paper's ring assignment."""
    fy = (torch.arange(height) - height // 2)[:, None].double()
    fx = (torch.arange(width) - width // 2)[None, :].double()
    return torch.sqrt(fy**2 + fx**2).ceil().clamp(min=1).long()


LAYOUTS = ("centred", "paper")


def paper_disc(size: int, radius: float) -> torch.Tensor:
    """(size, size) bool: Wen et al.'s ``circle_mask``, the disc |(x, y) - (size // 2, size // 2)| <= radius on a grid
    whose row axis is reversed, so its centre is row size - 1 - size // 2 (one above DC for even sizes)."""
    c = size // 2
    y = (size - 1 - torch.arange(size))[:, None].double()
    x = torch.arange(size)[None, :].double()
    return (x - c) ** 2 + (y - c) ** 2 <= float(radius) ** 2


def paper_layout(shape: tuple[int, int, int], pattern: str, radius: float, channels: tuple[int, ...], seed: int):
    """(values (len(channels), H, W) complex128 in orthonormal units, mask (H, W)) as Wen et al.'s
    ``get_watermarking_pattern`` / ``get_watermarking_mask`` make them: a (1, C, H, W) N(0, 1) draw from ``seed``
    (torch's CPU stream), its centred unnormalised spectrum; "rings": ring i = radius..1 (their disc of radius i,
    smaller ones written last) set to the spectrum value at row 0, column i; "rand": the spectrum; "zeros": 0.
    Their values are divided by sqrt(H W) here (diffeval's FFT is orthonormal); their radius is an integer."""
    c, h, w = shape
    if h != w or int(radius) != radius:
        raise ValueError("the paper layout needs square noise and an integer radius")
    g = torch.Generator().manual_seed(int(seed))
    spec = torch.fft.fftshift(torch.fft.fft2(torch.randn(1, c, h, w, generator=g)), dim=(-1, -2))
    patch = spec.clone()
    if pattern == "zeros":
        patch = spec * 0
    elif pattern == "rings":
        for i in range(int(radius), 0, -1):
            ring = paper_disc(h, i)
            for j in range(c):
                patch[:, j, ring] = spec[0, j, 0, i].item()
    values = patch[0, list(channels)].to(torch.complex128) / (h * w) ** 0.5
    mask = paper_disc(h, radius)
    return torch.where(mask, values, torch.zeros((), dtype=torch.complex128)), mask


def make_key(
    shape: tuple[int, int, int],
    pattern: str = "rings",
    radius: float = 4,
    channels: tuple[int, ...] | list[int] = (0,),
    seed: int | None = None,
    name: str = "",
    inner_radius: float = 0.0,
    layout: str = "centred",
) -> WatermarkKey:
    """Draw a key for images of ``shape`` (C, H, W). ``seed`` None draws a fresh secret.

    ``inner_radius`` > 0 leaves the bins with |f| < inner_radius (DC and the lowest rings, which set
    the image's global layout) to the noise: the key is an annulus. ``layout="paper"``: Wen et al.'s key
    (``paper_layout``), for reproducing their numbers.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; choose one of {', '.join(PATTERNS)}")
    c, h, w = (int(v) for v in shape)
    channels = tuple(int(ch) for ch in channels)
    if not channels or any(ch < 0 or ch >= c for ch in channels) or len(set(channels)) != len(channels):
        raise ValueError(f"channels {list(channels)} do not fit images with {c} channel(s)")
    if not 0 < radius < min(h, w) / 2:
        raise ValueError(f"radius must be in (0, {min(h, w) / 2}) for {h}x{w} images, got {radius}")
    if not 0 <= inner_radius < radius:
        raise ValueError(f"inner_radius must be in [0, radius), got {inner_radius}")
    seed = secrets.randbits(62) if seed is None else int(seed)
    if layout == "paper":
        if inner_radius:
            raise ValueError("the paper layout has no inner radius")
        values, mask = paper_layout((c, h, w), pattern, radius, channels, seed)
        return WatermarkKey(pattern, float(radius), channels, (c, h, w), seed, values, mask, name, 0.0, layout)
    mask = circle_mask(h, w, radius)
    if inner_radius > 0:
        fy, fx = frequencies(h)[:, None].double(), frequencies(w)[None, :].double()
        mask &= (fy**2 + fx**2) >= float(inner_radius) ** 2
    g = torch.Generator().manual_seed(seed)
    values = torch.zeros(len(channels), h, w, dtype=torch.complex128)
    if pattern == "rand":
        values = spectrum(torch.randn(len(channels), h, w, generator=g, dtype=torch.float64))
    elif pattern == "rings":
        rings = ring_index(h, w)
        n_rings = int(rings[mask].max())
        consts = torch.randn(len(channels), n_rings, generator=g, dtype=torch.float64)
        values = consts[:, (rings.clamp(max=n_rings) - 1)].to(torch.complex128)
    values = torch.where(mask, values, torch.zeros((), dtype=torch.complex128))
    return WatermarkKey(pattern, float(radius), channels, (c, h, w), seed, values, mask, name, float(inner_radius))


BUNDLED_GEOMETRY = (4.0, (0,))  # radius, channels: the defaults measured on the bundled 28 px pixel models
PAPER_RADIUS, PAPER_SIDE, PAPER_CHANNEL = 10.0, 64, 3  # Wen et al.: radius 10 on channel 3 of SD's 64x64x4 latent


def default_geometry(generator) -> tuple[float, tuple[int, ...]]:
    """(radius, channels) of a key when none are given. Bundled pixel models (ddpm): radius 4 on channel 0.
    Latent models (the bundled latent presets and diffusers pipelines): the paper's geometry scaled to the initial
    latent, radius 10 * side / 64 (10 on SD's 64x64, 2.19 on the bundled 14x14, 1.25 on an 8x8 test latent) on
    channel 3 (the last, where the latent has fewer channels)."""
    if generator.info.family != "diffusers" and generator.autoencoder is None:
        return BUNDLED_GEOMETRY
    c, h, w = generator.noise_shape
    return PAPER_RADIUS * min(h, w) / PAPER_SIDE, (min(PAPER_CHANNEL, c - 1),)


def key_geometry(generator, radius: float | None = None, channels=()) -> tuple[float, tuple[int, ...]]:
    """(radius, channels) of a key for ``generator``: the given ones, ``default_geometry``'s where not given."""
    default_radius, default_channels = default_geometry(generator)
    return (default_radius if radius is None else radius), (tuple(channels) or default_channels)


def key_record(key: WatermarkKey) -> tuple[dict, dict[str, torch.Tensor]]:
    """(header metadata, tensors) of ``key`` as its file stores them (``save_key``; key sets store several)."""
    meta = {
        "format": KEY_FORMAT,
        "version": "1",
        "pattern": key.pattern,
        "radius": repr(key.radius),
        "inner_radius": repr(key.inner_radius),
        "channels": json.dumps(list(key.channels)),
        "shape": json.dumps(list(key.shape)),
        "seed": str(key.seed),
        "name": key.name,
        "layout": key.layout,
    }
    tensors = {
        "values_real": key.values.real.contiguous(),
        "values_imag": key.values.imag.contiguous(),
        "mask": key.mask.to(torch.uint8),
    }
    return meta, tensors


def key_from_record(meta: dict, tensors: dict[str, torch.Tensor], name: str = "") -> WatermarkKey:
    """The key of a ``key_record`` (``name`` where the record has none); KeyError / ValueError if damaged."""
    values = torch.complex(tensors["values_real"].double(), tensors["values_imag"].double())
    return WatermarkKey(
        pattern=meta["pattern"],
        radius=float(meta["radius"]),
        channels=tuple(json.loads(meta["channels"])),
        shape=tuple(json.loads(meta["shape"])),
        seed=int(meta["seed"]),
        values=values,
        mask=tensors["mask"].bool(),
        name=meta.get("name") or name,
        inner_radius=float(meta.get("inner_radius", "0.0")),
        layout=meta.get("layout", "centred"),
    )


def save_key(key: WatermarkKey, path: str | Path) -> Path:
    """Write ``key`` to a safetensors file (values + mask, settings in the header), atomically."""
    meta, tensors = key_record(key)
    return atomic_write_bytes(Path(path), save(tensors, metadata=meta), mode=KEY_FILE_MODE)


def read_tagged_file(path: Path, fmt: str, names: tuple[str, ...], what: str, kind: str,
                     hint: str = "") -> tuple[dict, dict[str, torch.Tensor]]:
    """(header metadata, tensors) of a safetensors file whose header says ``format: fmt`` and which holds the
    tensors ``names``: FileNotFoundError when missing (``hint`` appended), ValueError "PATH is not WHAT" otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"{kind} {path} does not exist{hint}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise ValueError(f"{path} is not {what} ({exc})") from None
    if meta.get("format") != fmt or not set(names) <= set(tensors):
        raise ValueError(f"{path} is not {what}")
    return meta, tensors


def load_key(path: str | Path) -> WatermarkKey:
    """Read a key file written by ``save_key``; a clear ValueError for anything else."""
    path = Path(path)
    meta, tensors = read_tagged_file(path, KEY_FORMAT, ("values_real", "values_imag", "mask"),
                                     "a diffeval watermark key file", "key file")
    try:
        return key_from_record(meta, tensors, path.stem)
    except (KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: damaged watermark key file ({exc})") from None
