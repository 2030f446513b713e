"""Generate images that carry a Tree-Ring key (and their unmarked twins from the same seeds)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffeval.data import CLASS_NAMES, class_prompt
from diffeval.generators import Generator

from .gaussian_shading import ShadingKey, shade
from .keys import WatermarkKey
from .keyset import KeySet, member_index
from .statistics import inject


def default_conditions(generator: Generator, n: int, first_index: int = 0) -> dict:
    """Conditions cycling through the classes for conditional generators (label i % classes; text: the caption of
    Fashion-MNIST class i % 10); nothing for unconditional ones. Returned as keyword arguments of ``sample``."""
    kind = generator.info.conditioning
    if kind == "none":
        return {}
    classes = generator.info.num_classes if kind == "class" else len(CLASS_NAMES)  # text: the Fashion captions
    labels = [(first_index + i) % classes for i in range(n)]
    if kind == "class":
        return {"labels": torch.tensor(labels)}
    return {"prompts": [class_prompt(c) for c in labels]}


@dataclass
class EmbedSettings:
    """How marked images are generated. None: the generator's default steps and guidance; the
    sampler is always deterministic (``Generator.ode_sampler``) unless given."""

    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None
    seed: int = 0
    batch_size: int = 250


def initial_noise(generator: Generator, n: int, seed: int, first_index: int = 0) -> torch.Tensor:
    """(n, *generator.noise_shape) float32 N(0, 1) noise (latents for a latent pipeline); sample i depends only
    on (seed, first_index + i), and is the noise the generator itself draws for it."""
    return generator.initial_noise(n, seed, first_index)


def marked_noise(generator: Generator, key: WatermarkKey | ShadingKey | KeySet | None, n: int, seed: int,
                 first_index: int = 0) -> torch.Tensor:
    """(n, *noise_shape) float32: the initial noise of samples first_index .. first_index + n - 1 of ``seed``
    carrying ``key`` (None: unmarked). A key set marks sample i with member ``keyset.member_index(seed, i)``."""
    if key is not None:
        key.check_shape(tuple(generator.noise_shape))
    if isinstance(key, KeySet):
        which = member_index(seed, range(first_index, first_index + n), key.size)
        rows = [marked_noise(generator, key.members[j], 1, seed, first_index + i) for i, j in enumerate(which.tolist())]
        return torch.cat(rows) if rows else torch.empty(0, *generator.noise_shape)
    if isinstance(key, ShadingKey):
        return shade(key, n, seed, first_index)
    z = initial_noise(generator, n, seed, first_index)
    return inject(z, key) if isinstance(key, WatermarkKey) else z


def generate(
    generator: Generator,
    key: WatermarkKey | ShadingKey | KeySet | None,
    n: int,
    settings: EmbedSettings | None = None,
    first_index: int = 0,
    conditions: dict | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """n images (n, C, H, W) in [0, 1]; marked with ``key`` when it is given, else the unmarked twins
    (Tree-Ring: same noise before injection; both schemes: same conditions). A Gaussian Shading key draws its own
    initial latents (``gaussian_shading.shade``, from the same seed and indices); a key set marks each image with one
    member (``marked_noise``)."""
    s = settings or EmbedSettings()
    z = marked_noise(generator, key, n, s.seed, first_index)
    cond = default_conditions(generator, n, first_index) if conditions is None else conditions
    return generator.sample(
        n, steps=s.steps, sampler=s.sampler or generator.ode_sampler, guidance=s.guidance,
        eta=0.0, noise=z, batch_size=s.batch_size, progress=progress, **cond,
    )
