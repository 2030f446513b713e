"""``diffeval sample``: images of one generator into a PNG grid (and optionally an .npz archive)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from diffeval.checks import require_seeds
from diffeval.generators import Generator, load_generator
from diffeval.images import save_grid, save_npz


@dataclass(frozen=True)
class SampleConfig:
    """What to sample: ``n`` images of ``generator`` (a bundled name or checkpoint directory); ``prompts`` /
    ``labels`` cycle over the images; None settings take the generator's defaults."""

    generator: str
    n: int = 64
    prompts: tuple[str, ...] = ()
    labels: tuple[int, ...] = ()
    steps: int | None = None
    sampler: str | None = None
    guidance: float | None = None
    eta: float | None = None
    seed: int = 0
    out: str = "grid.png"
    npz: str | None = None
    device: str = "auto"
    height: int | None = None
    width: int | None = None
    dtype: str = "float32"
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"--n: must be at least 1, got {self.n}")
        require_seeds(seed=self.seed)


def run_sample(config: SampleConfig) -> tuple[Generator, torch.Tensor]:
    """The generator and its images, float (n, C, H, W) in [0, 1]."""
    g = load_generator(config.generator, config.device, config.trust_pickle, dtype=config.dtype)
    n, cond = config.n, {}
    if g.info.conditioning != "none" and not (config.prompts or config.labels):
        warnings.warn(f"{g.info.name} is {g.info.conditioning}-conditional but no "
                      f"{'--prompt' if g.info.conditioning == 'text' else '--label'} was given: sampling with the "
                      "null condition (unconditionally)", stacklevel=2)
    if config.prompts:
        cond["prompts"] = [config.prompts[i % len(config.prompts)] for i in range(n)]
    if config.labels:
        cond["labels"] = [config.labels[i % len(config.labels)] for i in range(n)]
    size = {k: v for k, v in (("height", config.height), ("width", config.width)) if v is not None}
    if size and g.info.family != "diffusers":
        raise ValueError(f"--height/--width: {g.info.name} makes {g.info.resolution}px images only")
    images = g.sample(n, steps=config.steps, sampler=config.sampler, guidance=config.guidance, eta=config.eta,
                      seed=config.seed, progress=True, **size, **cond)
    return g, images


def write_sample(config: SampleConfig, g: Generator, images: torch.Tensor) -> str:
    """Write the grid (and the archive); returns the line the CLI prints."""
    save_grid(images, config.out)
    if config.npz:
        save_npz(images, config.npz)
    return f"{config.n} images from {g.info.name} -> {config.out}" + (f", {config.npz}" if config.npz else "")
