"""Gaussian Shading (Yang et al., CVPR 2024): a watermark that leaves the initial latent exactly N(0, I).

A k-bit message s is tiled over the latent (each bit fills ``channel_factor`` x ``spatial_factor`` x
``spatial_factor`` coordinates, the paper's diffusion: s of shape (C / fc, H / fhw, W / fhw) repeated), then
encrypted: m = tile(s) XOR K, with K a key stream the size of the latent. Each coordinate is drawn from the half
of the standard normal its bit selects, z = Phi^-1((m + u) / 2), u ~ U(0, 1): m = 0 gives z < 0, m = 1 gives z > 0.
Because K is a uniform bit stream, m is uniform whatever s is, so z ~ N(0, 1) coordinate by coordinate and no
statistic of one marked latent differs from an unmarked one (the "performance-lossless" claim).

Extraction inverts the image to z', reads m' = [z' > 0], decrypts with K and takes each message bit by majority
over its copies. Detection tests the bit accuracy against Binomial(k, 1/2): p = P(X >= matches), the chance that
an unmarked image (whose decrypted bits are fair coin flips) agrees as well. With k = 256 a p-value of 1e-6 needs
about 0.66 bit accuracy.

The key stream is SHA-256 in counter mode over the secret (the paper uses ChaCha20; any stream cipher with a
secret key does): without the secret the marked latent's signs look like fair coins.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from scipy import stats

from diffeval.io import atomic_write_bytes

from .keys import read_tagged_file

GS_FORMAT = "diffeval-gaussian-shading-key"
GS_FILE_MODE = 0o600  # the secret forges and removes marks: readable by its owner only
MAX_MESSAGE_BITS = 256  # default factors: the smallest tiling that gives at most this many bits (paper: 256)


def key_stream(secret: bytes, n_bits: int) -> torch.Tensor:
    """(n_bits,) uint8 in {0, 1}: SHA-256(secret || counter) blocks, counter big-endian from 0."""
    blocks = -(-n_bits // 256)
    raw = b"".join(hashlib.sha256(secret + i.to_bytes(8, "big")).digest() for i in range(blocks))
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:n_bits]
    return torch.from_numpy(bits.copy())


def default_factors(shape: tuple[int, int, int]) -> tuple[int, int]:
    """(channel_factor, spatial_factor) for a (C, H, W) latent: channel factor 1 and the smallest spatial factor
    dividing H and W that leaves at most MAX_MESSAGE_BITS bits (SD's 4x64x64: 8, so 256 bits as in the paper;
    the bundled 3x14x14: 2, so 147 bits, 4 copies each)."""
    c, h, w = shape
    for f in range(1, min(h, w) + 1):
        if h % f == 0 and w % f == 0 and c * (h // f) * (w // f) <= MAX_MESSAGE_BITS:
            return 1, f
    return c, min(h, w)  # not reached for latents with a common divisor of H and W; one bit per channel otherwise


@dataclass
class ShadingKey:
    """A Gaussian Shading key for latents of ``shape`` (C, H, W): the secret of the key stream, the message bits
    ``message`` ((C / fc, H / fhw, W / fhw) uint8) and the tiling factors."""

    shape: tuple[int, int, int]
    secret: bytes = field(repr=False)
    message: torch.Tensor = field(repr=False)
    channel_factor: int = 1
    spatial_factor: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        c, h, w = self.shape
        fc, f = self.channel_factor, self.spatial_factor
        if fc < 1 or f < 1 or c % fc or h % f or w % f:
            raise ValueError(f"factors (channel {fc}, spatial {f}) must divide the latent shape {tuple(self.shape)}")
        want = (c // fc, h // f, w // f)
        if tuple(self.message.shape) != want:
            raise ValueError(f"the message must have shape {want}, got {tuple(self.message.shape)}")

    @property
    def bits(self) -> int:
        return int(self.message.numel())

    @property
    def copies(self) -> int:
        return self.channel_factor * self.spatial_factor**2

    @property
    def fingerprint(self) -> str:
        """12 hex digits of a hash of the secret and message (safe to print)."""
        return hashlib.sha256(self.secret + self.message.numpy().tobytes()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return self.name or f"gs-{self.fingerprint}"

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != tuple(self.shape):
            raise ValueError(f"key {self.label} was made for latents of shape {tuple(self.shape)}, not {tuple(shape)}")

    def stream(self) -> torch.Tensor:
        """(C, H, W) uint8 key stream."""
        return key_stream(self.secret, int(np.prod(self.shape))).reshape(self.shape)

    def tiled(self, message: torch.Tensor | None = None) -> torch.Tensor:
        """(C, H, W) uint8: the message repeated over the latent (bit (c, i, j) at (c + a C', i + b H', j + d W'))."""
        m = self.message if message is None else message
        return m.repeat(self.channel_factor, self.spatial_factor, self.spatial_factor)


def make_shading_key(
    shape: tuple[int, int, int],
    seed: int | None = None,
    message: torch.Tensor | None = None,
    channel_factor: int | None = None,
    spatial_factor: int | None = None,
    name: str = "",
) -> ShadingKey:
    """A key for (C, H, W) latents. ``seed`` None draws a 256-bit secret from the OS; an int makes a reproducible
    evaluation key (its secret and, unless given, its message derive from the seed). Factors default to
    ``default_factors``."""
    shape = tuple(int(v) for v in shape)
    dfc, dfs = default_factors(shape)
    fc, fs = channel_factor or dfc, spatial_factor or dfs
    if seed is None:
        secret = secrets.token_bytes(32)
    else:
        secret = hashlib.sha256(f"gaussian-shading:{int(seed)}".encode()).digest()
    c, h, w = shape
    if message is None:
        if fc < 1 or fs < 1 or c % fc or h % fs or w % fs:
            raise ValueError(f"factors (channel {fc}, spatial {fs}) must divide the latent shape {shape}")
        n = (c // fc) * (h // fs) * (w // fs)
        message = key_stream(hashlib.sha256(b"message" + secret).digest(), n).reshape(c // fc, h // fs, w // fs)
    return ShadingKey(shape, secret, message.to(torch.uint8), fc, fs, name)


def shade(key: ShadingKey, n: int, seed: int, first_index: int = 0) -> torch.Tensor:
    """(n, C, H, W) float32 marked initial latents: coordinate x of sample i is Phi^-1((m_x + u) / 2) with u uniform
    from (seed, first_index + i) (so a latent depends on its own index only, as ``Generator.initial_noise``)."""
    m = (key.tiled() ^ key.stream()).to(torch.float64)
    out = torch.empty(n, *key.shape, dtype=torch.float64)
    for i in range(n):
        g = torch.Generator().manual_seed(hash_seed(seed, first_index + i))
        u = torch.rand(*key.shape, generator=g, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        out[i] = torch.special.ndtri((m + u) / 2)
    return out.float()


def hash_seed(seed: int, index: int) -> int:
    """A 63-bit torch seed for sample ``index`` of ``seed`` (independent streams per index)."""
    return int.from_bytes(hashlib.sha256(f"gs-sample:{int(seed)}:{int(index)}".encode()).digest()[:8], "big") >> 1


def extract(latents: torch.Tensor, key: ShadingKey) -> tuple[torch.Tensor, torch.Tensor]:
    """Recovered latents (N, C, H, W) -> (message bits (N, C', H', W') uint8 by majority over the copies, per-copy
    agreement (N,) float64: the fraction of coordinates whose decrypted sign matches the key's message)."""
    key.check_shape(tuple(latents.shape[1:]))
    c, h, w = key.shape
    fc, f = key.channel_factor, key.spatial_factor
    bits = ((latents > 0).to(torch.uint8) ^ key.stream()).to(torch.float64)  # decrypted, (N, C, H, W)
    copies = bits.reshape(-1, fc, c // fc, f, h // f, f, w // f)
    votes = copies.mean(dim=(1, 3, 5))
    message = (votes > 0.5).to(torch.uint8)
    ties = votes == 0.5  # an even number of copies split evenly: decide by the first copy (deterministic)
    message[ties] = copies[:, 0, :, 0, :, 0, :][ties].to(torch.uint8)
    raw = (bits == key.tiled().to(torch.float64)).to(torch.float64).flatten(1).mean(dim=1)
    return message, raw


def bit_accuracy(latents: torch.Tensor, key: ShadingKey) -> torch.Tensor:
    """(N,) float64: fraction of the k message bits extracted correctly."""
    message, _ = extract(latents, key)
    return (message == key.message).to(torch.float64).flatten(1).mean(dim=1)


STATISTICS = ("votes", "raw")


def shading_test(
    latents: torch.Tensor, key: ShadingKey, statistic: str = "votes"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(accuracy, p-value), both (N,) float64. ``statistic="votes"`` (the paper's): the k message bits by majority
    over their copies, p = P(Binomial(k, 1/2) >= matches). ``"raw"``: every coordinate's decrypted sign against the
    tiled message, p = P(Binomial(C H W, 1/2) >= matches); more powerful when each sign is only slightly better
    than a coin (few copies per bit, a lossy inversion). Both are exact when the decrypted signs are independent
    fair coins: over random keys always; for one fixed key only if the recovered noise's signs are independent
    (see ``watermark.null`` for a calibration against unmarked images)."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    if statistic == "votes":
        acc, k = bit_accuracy(latents, key), key.bits
    else:
        acc, k = extract(latents, key)[1], int(np.prod(key.shape))
    matches = torch.round(acc * k).numpy()
    p = stats.binom.sf(matches - 1, k, 0.5)
    return acc, torch.from_numpy(np.asarray(p, dtype=np.float64))


def shading_record(key: ShadingKey) -> tuple[dict, dict[str, torch.Tensor]]:
    """(header metadata, tensors) of ``key`` as its file stores them (``save_shading_key``)."""
    meta = {"format": GS_FORMAT, "version": "1", "shape": json.dumps(list(key.shape)), "secret": key.secret.hex(),
            "channel_factor": str(key.channel_factor), "spatial_factor": str(key.spatial_factor), "name": key.name}
    return meta, {"message": key.message.contiguous()}


def shading_from_record(meta: dict, tensors: dict[str, torch.Tensor], name: str = "") -> ShadingKey:
    """The key of a ``shading_record`` (``name`` where the record has none); KeyError / ValueError if damaged."""
    return ShadingKey(tuple(json.loads(meta["shape"])), bytes.fromhex(meta["secret"]),
                      tensors["message"].to(torch.uint8), int(meta["channel_factor"]), int(meta["spatial_factor"]),
                      meta.get("name") or name)


def save_shading_key(key: ShadingKey, path: str | Path) -> Path:
    """Write the key (secret and message) to a safetensors file readable by its owner only, atomically."""
    meta, tensors = shading_record(key)
    return atomic_write_bytes(path, save(tensors, metadata=meta), mode=GS_FILE_MODE)


def load_shading_key(path: str | Path) -> ShadingKey:
    """Read a file written by ``save_shading_key``; a clear ValueError for anything else."""
    path = Path(path)
    meta, tensors = read_tagged_file(path, GS_FORMAT, ("message",), "a diffeval Gaussian Shading key file", "key file")
    try:
        return shading_from_record(meta, tensors, path.stem)
    except (KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: damaged Gaussian Shading key file ({exc})") from None
