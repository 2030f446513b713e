"""Key sets: one user's key made of S member keys of one scheme and geometry, one member per marked image.

Tree-Ring and Gaussian Shading mark every image of a key with the same pattern (the Fourier disc, or the sign of
every latent coordinate), so one key's images share it: they are less diverse than unmarked images (the per-key
FID cost measured in the README) and averaging a handful of them recovers the pattern (the forgery attacks). A
``KeySet`` holds S independent members (Tree-Ring: S keys of one geometry; Gaussian Shading: S key streams, one
message); image i of seed s carries member ``member_index(s, i, S)``, a hash of (s, i), so over many images the
members are used equally and the set's images are spread over S patterns instead of one.

Detection tests every member and keeps the best (``detect.test_key``): the score is the largest member score and
the p-value is Bonferroni over the S members, min(1, S min_j p_j), valid for any dependence between members; with a
calibrated null the largest whitened cosine is ranked among the reference images' largest ones
(``null.calibrated_test``), exactly valid. The price is power: the threshold of a maximum over S is higher than
that of one test.

Member seeds derive from the set's seed (``member_seed``), so an evaluation key set is reproducible.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from diffeval.io import atomic_write_bytes

from .gaussian_shading import ShadingKey, make_shading_key, shading_from_record, shading_record
from .keys import KEY_FILE_MODE, WatermarkKey, key_from_record, key_record, make_key, read_tagged_file

KEYSET_FORMAT = "diffeval-watermark-keyset"


def member_seed(seed: int, j: int) -> int:
    """A 62-bit seed for member j of the set drawn from ``seed`` (independent of other sets' members)."""
    return int.from_bytes(hashlib.sha256(f"keyset:{int(seed)}:{int(j)}".encode()).digest()[:8], "big") >> 2


def member_index(seed: int, indices, members: int) -> np.ndarray:
    """(len(indices),) int: the member that marks sample ``i`` of embed seed ``seed``, for each i (uniform over
    0 .. members - 1, from a hash of (seed, i): the same sample always gets the same member)."""
    return np.array([int.from_bytes(hashlib.sha256(f"keyset-member:{int(seed)}:{int(i)}".encode()).digest()[:8],
                                    "big") % members for i in indices], dtype=np.int64)


@dataclass
class KeySet:
    """S >= 2 member keys of one scheme, shape and geometry (``members``); ``name`` labels the set."""

    members: tuple[WatermarkKey | ShadingKey, ...]
    name: str = ""

    def __post_init__(self) -> None:
        self.members = tuple(self.members)
        if len(self.members) < 2:
            raise ValueError(f"a key set needs at least 2 members, got {len(self.members)}")
        first = self.members[0]
        if any(type(m) is not type(first) or tuple(m.shape) != tuple(first.shape) for m in self.members):
            raise ValueError("the members of a key set must be keys of one scheme and shape")
        if isinstance(first, WatermarkKey) and any(
                m.channels != first.channels or not torch.equal(m.mask, first.mask) for m in self.members):
            raise ValueError("the members of a Tree-Ring key set must share channels and key region")

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.members[0].shape)

    @property
    def shading(self) -> bool:
        """True for a set of Gaussian Shading keys."""
        return isinstance(self.members[0], ShadingKey)

    @property
    def pattern(self) -> str:
        return "gaussian-shading" if self.shading else self.members[0].pattern

    @property
    def fingerprint(self) -> str:
        """12 hex digits of a hash of the members' fingerprints (safe to print)."""
        return hashlib.sha256("".join(m.fingerprint for m in self.members).encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return self.name or f"{self.pattern}-set{self.size}-{self.fingerprint}"

    def check_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != self.shape:
            raise ValueError(f"key set {self.label} was made for shape {self.shape}, not {tuple(shape)}")


def is_shading(key: WatermarkKey | ShadingKey | KeySet) -> bool:
    """True for a Gaussian Shading key or a key set of them."""
    return isinstance(key, ShadingKey) or (isinstance(key, KeySet) and key.shading)


def region_key(key: WatermarkKey | ShadingKey | KeySet) -> WatermarkKey | ShadingKey:
    """The key itself, or a key set's first member: what fixes the shape and (Tree-Ring) the key region, which the
    members share."""
    return key.members[0] if isinstance(key, KeySet) else key


def make_any_key(shape: tuple[int, int, int], pattern: str, seed: int | None, name: str = "", radius: float = 4.0,
                 channels: tuple[int, ...] = (0,), inner_radius: float = 0.0, layout: str = "centred",
                 subkeys: int = 1) -> WatermarkKey | ShadingKey | KeySet:
    """A key for (C, H, W) noise: Gaussian Shading for the pattern "gaussian-shading", else a Tree-Ring key of
    ``pattern`` at ``radius`` / ``channels``; ``subkeys`` > 1: a key set of that many members drawn from ``seed``
    (``make_keyset``). ``seed`` None draws the secret(s) from the OS."""
    shading = pattern == "gaussian-shading"
    if subkeys > 1:
        if layout != "centred":
            raise ValueError("--subkeys: key sets have the centred layout")
        geometry = {} if shading else {"pattern": pattern, "radius": radius, "channels": channels,
                                       "inner_radius": inner_radius}
        return make_keyset(shape, subkeys, "gaussian-shading" if shading else "tree-ring", seed, name, **geometry)
    if shading:
        return make_shading_key(shape, seed=seed, name=name)
    return make_key(shape, pattern, radius, channels, seed=seed, name=name, inner_radius=inner_radius, layout=layout)


def make_keyset(shape: tuple[int, int, int], members: int, scheme: str = "tree-ring", seed: int | None = None,
                name: str = "", **geometry) -> KeySet:
    """A set of ``members`` keys for (C, H, W) noise. ``seed`` None draws every member's secret from the OS.
    Tree-Ring: ``geometry`` holds make_key's pattern, radius, channels, inner_radius (layout centred). Gaussian
    Shading: the members share the first member's message (one user, one message) and differ in their key
    streams."""
    def seed_of(j: int) -> int | None:
        return None if seed is None else member_seed(seed, j)

    if scheme == "gaussian-shading":
        first = make_shading_key(shape, seed_of(0), name=f"{name}#0")
        rest = [make_shading_key(shape, seed_of(j), message=first.message, channel_factor=first.channel_factor,
                                 spatial_factor=first.spatial_factor, name=f"{name}#{j}") for j in range(1, members)]
        return KeySet((first, *rest), name)
    return KeySet(tuple(make_key(shape, seed=seed_of(j), name=f"{name}#{j}", **geometry) for j in range(members)),
                  name)


def save_keyset(keys: KeySet, path: str | Path) -> Path:
    """Write the set to one safetensors file readable by its owner only, atomically: member j's tensors under
    "j/NAME", the members' headers as a JSON list."""
    records = [(shading_record if keys.shading else key_record)(m) for m in keys.members]
    tensors = {f"{j}/{k}": v.clone() for j, (_, ts) in enumerate(records) for k, v in ts.items()}  # no shared memory
    meta = {"format": KEYSET_FORMAT, "version": "1", "scheme": "gaussian-shading" if keys.shading else "tree-ring",
            "name": keys.name, "members": json.dumps([m for m, _ in records])}
    return atomic_write_bytes(path, save(tensors, metadata=meta), mode=KEY_FILE_MODE)


def load_keyset(path: str | Path) -> KeySet:
    """Read a file written by ``save_keyset``; a clear ValueError for anything else."""
    path = Path(path)
    meta, tensors = read_tagged_file(path, KEYSET_FORMAT, (), "a diffeval watermark key-set file", "key file")
    try:
        records = json.loads(meta["members"])
        read = shading_from_record if meta["scheme"] == "gaussian-shading" else key_from_record
        name = meta.get("name") or path.stem
        members = tuple(read(m, {k.split("/", 1)[1]: v for k, v in tensors.items() if k.split("/", 1)[0] == str(j)},
                             f"{name}#{j}") for j, m in enumerate(records))
        return KeySet(members, name)
    except (KeyError, ValueError, TypeError, IndexError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: damaged watermark key-set file ({exc})") from None
