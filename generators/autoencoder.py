"""A small KL-regularised autoencoder in the style of Stable Diffusion's ``AutoencoderKL``.

Images (N, C, H, W) in model space ([-1, 1]) -> encoder -> a diagonal Gaussian (mean, log-variance) over
latents (N, latent_channels, H / f, W / f), f = 2 ** (len(channel_mult) - 1) -> decoder -> images in model
space. As in SD, the diffusion model works on ``scaling_factor * (z - shift_factor)``, with the factor chosen
so that those latents have unit variance on the training set (SD 1.x: 0.18215, no shift).

Written here rather than taken from diffusers: the bundled models must run on a base install without the
``diffusers`` extra; the layout (ResNet blocks, stride-2 down, nearest-neighbour up, GroupNorm + SiLU, a
2 * latent_channels moments head) follows SD's so a reader of either can read the other.

Checkpoints: ``config.json`` ({"format": "diffeval-autoencoder", "version": 1, "autoencoder": config,
"training": provenance}) + ``model.safetensors``. ``load_autoencoder()`` reads the bundled one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffeval.io import ModelDirError, read_model_config, read_model_weights, save_model_dir

FORMAT = "diffeval-autoencoder"
VERSION = 1
AUTOENCODER_DIR = Path(__file__).parent / "bundled" / "autoencoder"


@dataclass
class AutoencoderConfig:
    """Architecture and latent scaling. ``channel_mult``: one entry per resolution (each after the first halves
    the size); ``scaling_factor`` / ``shift_factor``: model-space latents are scaling_factor * (z - shift)."""

    in_channels: int = 1
    image_size: int = 28
    latent_channels: int = 3
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 1
    scaling_factor: float = 1.0
    shift_factor: float = 0.0

    def __post_init__(self) -> None:
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        if not self.channel_mult or min(self.channel_mult) < 1:
            raise ValueError("channel_mult must be a non-empty list of positive integers")
        if self.image_size % self.factor:
            raise ValueError(f"image_size {self.image_size} is not divisible by the downsampling factor {self.factor}")
        for name in ("in_channels", "latent_channels", "base_channels", "num_res_blocks"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"autoencoder {name} must be >= 1")

    @property
    def factor(self) -> int:
        """Spatial downsampling factor f (SD: 8)."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(latent_channels, H / f, W / f)."""
        side = self.image_size // self.factor
        return (self.latent_channels, side, side)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AutoencoderConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"autoencoder config has unknown fields: {sorted(unknown)}")
        return cls(**data)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4) or 1, channels, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a (1x1 when the width changes) skip."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
                                  _norm(cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Encoder(nn.Module):
    """(N, C, H, W) -> moments (N, 2 * latent_channels, H / f, W / f): mean then log-variance."""

    def __init__(self, c: AutoencoderConfig) -> None:
        super().__init__()
        widths = [c.base_channels * m for m in c.channel_mult]
        layers: list[nn.Module] = [nn.Conv2d(c.in_channels, widths[0], 3, padding=1)]
        cin = widths[0]
        for level, w in enumerate(widths):
            for _ in range(c.num_res_blocks):
                layers.append(ResBlock(cin, w))
                cin = w
            if level < len(widths) - 1:
                layers.append(nn.Conv2d(cin, cin, 3, stride=2, padding=1))
        layers += [ResBlock(cin, cin), _norm(cin), nn.SiLU(), nn.Conv2d(cin, 2 * c.latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """(N, latent_channels, H / f, W / f) -> (N, C, H, W) in model space (unbounded; clamp for images)."""

    def __init__(self, c: AutoencoderConfig) -> None:
        super().__init__()
        widths = [c.base_channels * m for m in c.channel_mult][::-1]
        cin = widths[0]
        layers: list[nn.Module] = [nn.Conv2d(c.latent_channels, cin, 3, padding=1), ResBlock(cin, cin)]
        for level, w in enumerate(widths):
            for _ in range(c.num_res_blocks + 1):
                layers.append(ResBlock(cin, w))
                cin = w
            if level < len(widths) - 1:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cin, 3, padding=1)]
        layers += [_norm(cin), nn.SiLU(), nn.Conv2d(cin, c.in_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Autoencoder(nn.Module):
    """The KL autoencoder. ``encode``/``decode`` speak model-space latents (scaled, unit variance); the raw
    ``moments``/``decode_raw`` speak the encoder's own latent z."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.config.latent_shape

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Model-space images (N, C, H, W) -> (mean, log-variance) of z, each (N, *latent_shape); log-variance
        clamped to [-30, 20] as SD's DiagonalGaussianDistribution does."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> model-space latents (N, *latent_shape): the posterior mean (or a
        draw from it with ``sample``), shifted and scaled to unit variance."""
        mean, logvar = self.moments(images.to(self._dtype) * 2 - 1)
        z = mean
        if sample:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
            z = mean + torch.exp(0.5 * logvar) * noise
        return (z - self.config.shift_factor) * self.config.scaling_factor

    @torch.no_grad()
    def encode_batched(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """``encode`` in batches for a whole data set: uint8 or [0, 1] images (N, C, H, W) -> model-space latents
        (N, *latent_shape) float32 on CPU (the posterior mean, scaled)."""
        device = next(self.parameters()).device
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size]
            x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
            out.append(self.encode(x.to(device)).float().cpu())
        return torch.cat(out) if out else torch.empty(0, *self.latent_shape)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Model-space latents (N, *latent_shape) -> images (N, C, H, W) in [0, 1] (clamped)."""
        z = latents.to(self._dtype) / self.config.scaling_factor + self.config.shift_factor
        return ((self.decoder(z) + 1) / 2).clamp(0, 1)

    @property
    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def fingerprint_tensors(self) -> dict[str, torch.Tensor]:
        """The weights under the ``autoencoder.`` prefix (how generator checkpoints store them)."""
        return {f"autoencoder.{k}": v for k, v in self.state_dict().items()}


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) summed over latent dimensions, averaged over the batch (nats)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()


def save_autoencoder(directory: str | Path, model: Autoencoder, training: dict[str, Any] | None = None) -> Path:
    """Write config.json + model.safetensors (float32) for the autoencoder."""
    tensors = {k: v.detach().to("cpu", torch.float32) for k, v in model.state_dict().items()}
    config = {"format": FORMAT, "version": VERSION, "autoencoder": model.config.to_dict(), "training": training or {}}
    return save_model_dir(directory, config, tensors)


def build_autoencoder(config: dict[str, Any] | AutoencoderConfig, state: dict[str, torch.Tensor],
                      where: object = "autoencoder") -> Autoencoder:
    """An Autoencoder from its config and weights; ModelDirError naming ``where`` when they do not match."""
    try:
        cfg = config if isinstance(config, AutoencoderConfig) else AutoencoderConfig.from_dict(dict(config))
    except (TypeError, ValueError) as e:
        raise ModelDirError(f"{where}: invalid autoencoder config ({e})") from None
    model = Autoencoder(cfg)
    expected = model.state_dict()
    bad = sorted(set(expected) ^ set(state)) or sorted(
        k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape))
    if bad:
        raise ModelDirError(f"{where}: autoencoder weights do not match its config (e.g. {bad[0]})")
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def load_autoencoder(directory: str | Path | None = None, device: str | torch.device = "cpu",
                     trust_pickle: bool = False) -> Autoencoder:
    """The autoencoder saved in ``directory`` (default: the bundled one, ``generators/bundled/autoencoder``),
    frozen, in eval mode. ModelDirError when the directory is missing or does not hold one."""
    directory = Path(directory) if directory is not None else AUTOENCODER_DIR
    if not (directory / "config.json").is_file():
        hint = " (retrain it with `diffeval train --autoencoder --out DIR`)" if directory == AUTOENCODER_DIR else ""
        raise ModelDirError(f"no autoencoder at {directory}: config.json is missing{hint}")
    config = read_model_config(directory, FORMAT, (VERSION,), "autoencoder")
    state = read_model_weights(directory, trust_pickle)
    return build_autoencoder(config.get("autoencoder", {}), state, directory / "config.json").to(device)
