"""The complete description of a diffusion model: everything needed to rebuild it from config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .parameterization import PARAMETERIZATIONS
from .schedules import ScheduleConfig

BACKBONES = ("unet", "dit", "mmdit", "mlp")
CONDITIONINGS = ("none", "class", "text")


@dataclass
class SamplingDefaults:
    """What ``Generator.sample`` uses when the caller leaves a choice open."""

    sampler: str = "ddim"
    steps: int = 50
    guidance: float = 1.0
    eta: float = 0.0
    spacing: str = "uniform"
    clip_x0: bool = True  # clamp x0_hat to the data range [-1, 1] and recompute eps_hat (DDPM's clip_sample)


@dataclass
class ModelConfig:
    """Architecture, conditioning, output parameterization and noise schedule of one generator.

    ``backbone_config`` holds the fields of UNetConfig / DiTConfig / MMDiTConfig; ``text_encoder`` the
    fields of TextEncoderConfig; ``vocab`` the tokenizer vocabulary (text conditioning only).
    ``channels`` and ``image_size`` describe the images; ``autoencoder`` (the fields of
    ``generators.autoencoder.AutoencoderConfig``, empty for pixel-space models) makes it a latent model, whose
    network works on the autoencoder's scaled latents (``model_shape``) as Stable Diffusion's does.
    """

    backbone: str
    parameterization: str
    schedule: ScheduleConfig
    conditioning: str = "none"
    image_size: int = 28
    channels: int = 1
    emb_dim: int = 128
    num_classes: int = 10
    class_names: list[str] = field(default_factory=list)
    backbone_config: dict[str, Any] = field(default_factory=dict)
    text_encoder: dict[str, Any] = field(default_factory=dict)
    vocab: list[str] = field(default_factory=list)
    autoencoder: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.schedule, dict):
            self.schedule = ScheduleConfig(**self.schedule)
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {BACKBONES}")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {self.conditioning!r}; choose one of {CONDITIONINGS}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"unknown parameterization {self.parameterization!r}; choose one of {PARAMETERIZATIONS}")
        if self.schedule.zero_terminal_snr and self.parameterization == "eps":
            raise ValueError(
                "a zero-terminal-SNR schedule needs a v, x0 or velocity network: eps gives no x0 at alpha = 0"
            )
        if self.backbone == "mmdit" and self.conditioning != "text":
            raise ValueError("the MMDiT backbone needs text conditioning")
        if self.conditioning == "text" and not self.vocab:
            raise ValueError("text conditioning needs a tokenizer vocabulary (vocab)")
        if self.autoencoder:
            ae = self.autoencoder_config
            if (ae.in_channels, ae.image_size) != (self.channels, self.image_size):
                raise ValueError(f"the autoencoder takes {ae.in_channels}x{ae.image_size}px images, the model makes "
                                 f"{self.channels}x{self.image_size}px")

    @property
    def autoencoder_config(self):
        """The AutoencoderConfig of a latent model (None for pixel-space models)."""
        from .autoencoder import AutoencoderConfig

        return AutoencoderConfig.from_dict(self.autoencoder) if self.autoencoder else None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the network denoises: the latent shape for latent models, else the image shape."""
        ae = self.autoencoder_config
        return ae.latent_shape if ae is not None else self.image_shape

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["schedule"] = self.schedule.to_dict()
        if not self.autoencoder:
            del out["autoencoder"]  # pixel configs read as they did before latent models existed
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"model config has unknown fields: {sorted(unknown)}")
        return cls(**data)
