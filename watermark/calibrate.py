"""Calibrate a watermark null for a generator: invert unmarked images drawn from a seed of their own, as 8-bit
images (what a detector reads from files), and optionally the same images under attacks (``null.NoiseNull``'s
``conditions``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from diffeval.generators import Generator
from diffeval.images import levels

from .attacks import Attack, attacks_from
from .detect import DetectSettings, recover_noise
from .embed import EmbedSettings, generate
from .keys import WatermarkKey
from .null import NoiseNull, estimate_null, fit_count

CALIBRATION_SEED = 7_919  # embed seed of the calibration images (evaluations use seeds 0 and 1)


def calibration_attacks(spec: str) -> tuple[Attack, ...]:
    """The attacks of an attack list (``attacks.attacks_from``) to calibrate under; "clean" is left out, the null's
    own reference."""
    return tuple(a for a in attacks_from(spec) if a.kind != "none")


def calibration_images(images: torch.Tensor, attack: Attack | None = None, tools: dict | None = None) -> torch.Tensor:
    """What is inverted of n calibration images (N, C, H, W): all of them as 8-bit levels (``attack`` None), or the
    reference images (after the first ``null.fit_count(n)``, which the whitener never sees) under ``attack``, seeded
    CALIBRATION_SEED (``tools``: its ``regen`` / ``autoencode`` callables, ``robustness.attack_tools``)."""
    if attack is None or attack.kind == "none":
        return levels(images)
    return attack(images[fit_count(len(images)):], seed=CALIBRATION_SEED, **(tools or {}))


def calibrate_null(
    generator: Generator,
    key: WatermarkKey,
    n: int = 1000,
    embed: EmbedSettings | None = None,
    detect: DetectSettings | None = None,
    progress: bool = False,
    attacks: Sequence[Attack] = (),
    tools: dict | None = None,
) -> NoiseNull:
    """Generate n unmarked images (embed seed ``CALIBRATION_SEED`` unless ``embed`` gives one), round them to 8-bit
    levels, invert them with ``detect``'s settings, and estimate the null of ``key``'s geometry; with ``attacks``,
    also invert the reference images (after the first ``null.fit_count(n)``) under each (attack seed
    ``CALIBRATION_SEED``; ``tools``: the attacks' ``regen`` and ``autoencode`` callables,
    ``robustness.attack_tools``) for the null's attacked references."""
    embed = embed or EmbedSettings(seed=CALIBRATION_SEED)
    detect = detect or DetectSettings()
    key.check_shape(generator.noise_shape)
    images = generate(generator, None, n, embed, progress=progress)
    noise = recover_noise(generator, calibration_images(images), detect, progress)
    attacked = {a.name: recover_noise(generator, calibration_images(images, a, tools), detect, progress)
                for a in attacks}
    settings = {"n": n, "embed_seed": embed.seed, "embed_steps": embed.steps, "embed_guidance": embed.guidance,
                "embed_sampler": embed.sampler, "inv_steps": detect.steps, "fixed_point": detect.fixed_point,
                "inv_sampler": detect.sampler, "levels": 8, "attacks": [a.name for a in attacks]}
    return estimate_null(noise, key, generator.fingerprint(), settings, attacked)
