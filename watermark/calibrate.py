"""Calibrate a watermark null for a generator: invert unmarked images drawn from a seed of their own."""

from __future__ import annotations

from diffeval.generators import Generator

from .detect import DetectSettings, recover_noise
from .embed import EmbedSettings, generate
from .keys import WatermarkKey
from .null import NoiseNull, estimate_null

CALIBRATION_SEED = 7_919  # embed seed of the calibration images (evaluations use seeds 0 and 1)


def calibrate_null(
    generator: Generator,
    key: WatermarkKey,
    n: int = 1000,
    embed: EmbedSettings | None = None,
    detect: DetectSettings | None = None,
    progress: bool = False,
) -> NoiseNull:
    """Generate n unmarked images (embed seed ``CALIBRATION_SEED`` unless ``embed`` gives one), invert them with
    ``detect``'s settings, and estimate the null of ``key``'s geometry."""
    embed = embed or EmbedSettings(seed=CALIBRATION_SEED)
    detect = detect or DetectSettings()
    key.check_shape(generator.noise_shape)
    images = generate(generator, None, n, embed, progress=progress)
    noise = recover_noise(generator, images, detect, progress)
    settings = {"n": n, "embed_seed": embed.seed, "embed_steps": embed.steps, "embed_guidance": embed.guidance,
                "embed_sampler": embed.sampler, "inv_steps": detect.steps, "fixed_point": detect.fixed_point,
                "inv_sampler": detect.sampler}
    return estimate_null(noise, key, generator.fingerprint(), settings)
