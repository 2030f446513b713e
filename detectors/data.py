"""Real and generated images for the detector.

Real: Fashion-MNIST (train split for training, test split for evaluation). Generated: made on demand
by any Generator with its sampler and step count, sample i asking for class i mod 10 (by label or by
the prompt "a photo of a <class>"; unconditional generators ignore it), and cached as uint8 ``.npz``
files under a cache folder with ``manifest.json`` (one entry per file: generator, family, backbone,
sampler, steps, guidance, seed, fingerprint, n). A rerun reuses the file; asking for more images
generates only the missing ones (sample i depends only on the seed and i).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from diffeval.images import quantize_uint8
from diffeval.io import atomic_savez, atomic_write_text, safe_path
from diffeval.quality import class_conditions

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class GeneratedSpec:
    """Which images to make: generator (name or directory), sampler/steps/guidance (None: its defaults)."""

    generator: str
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0

    @classmethod
    def parse(cls, item: str, seed: int = 0) -> GeneratedSpec:
        """``NAME`` or ``NAME@SAMPLER`` or ``NAME@SAMPLER:STEPS`` (e.g. ``sd3@euler:8``, ``dit@ddpm:100``)."""
        name, _, how = item.strip().partition("@")
        sampler, _, steps = how.partition(":")
        if not name:
            raise ValueError(f"no generator name in {item!r}")
        try:
            n_steps = int(steps) if steps else None
        except ValueError:
            raise ValueError(f"steps must be an integer in {item!r}") from None
        return cls(name, sampler or None, n_steps, None, seed)


def read_manifest(cache_dir: str | Path) -> list[dict]:
    path = Path(cache_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else []


def generated_images(spec: GeneratedSpec, n: int, cache_dir: str | Path, device: str = "cpu",
                     batch_size: int = 250, progress: bool = False, generator=None,
                     trust_pickle: bool = False) -> tuple[torch.Tensor, dict]:
    """(n, C, H, W) uint8 images and their manifest entry; generated once, then read from the cache."""
    from diffeval.generators import load_generator

    g = generator or load_generator(spec.generator, device=device, trust_pickle=trust_pickle)
    steps, sampler, guidance, _, _ = g.resolve_settings(spec.steps, spec.sampler, spec.guidance)
    fp = g.fingerprint()
    cache = Path(cache_dir)
    path = safe_path(cache, f"{g.info.name}-{sampler}-{steps}-{guidance:g}-s{spec.seed}-{fp[:10]}.npz")
    name = path.name
    have = np.zeros((0, g.info.channels, g.info.resolution, g.info.resolution), np.uint8)
    if path.is_file():
        with np.load(path) as z:
            have = z["images"]
    if len(have) < n:
        start = len(have)
        x = g.sample(n - start, steps=steps, sampler=sampler, guidance=guidance, seed=spec.seed, first_index=start,
                     batch_size=batch_size, progress=progress,
                     **class_conditions(g, torch.arange(start, n) % 10))
        new = quantize_uint8(x).numpy()
        have = np.concatenate([have, new])
        atomic_savez(path, {"images": have}, compressed=True)
    entry = {"file": name, "generator": g.info.name, "family": g.info.family, "backbone": g.info.backbone,
             "sampler": sampler, "steps": steps, "guidance": guidance, "seed": spec.seed, "fingerprint": fp,
             "n": int(len(have)), "spec": asdict(spec)}
    manifest = [e for e in read_manifest(cache) if e["file"] != name] + [entry]
    atomic_write_text(cache / MANIFEST, json.dumps(manifest, indent=1))
    return torch.from_numpy(have[:n]), entry
