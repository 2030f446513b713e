"""Named generator configurations matching the field's history, all making Fashion-MNIST-size images (1x28x28).

| preset       | backbone | conditioning | output   | schedule              | default sampler        |
|--------------|----------|--------------|----------|-----------------------|------------------------|
| ddpm         | UNet     | none         | eps      | linear, T=1000        | dpm++2m, 100 steps     |
| sd1          | UNet     | text + CFG   | eps      | scaled_linear, T=1000 | dpm++2m, 20 steps, w=3 |
| sd2          | UNet     | text + CFG   | v        | scaled_linear, T=1000 | dpm++2m, 20 steps, w=3 |
| dit          | DiT      | class + CFG  | eps      | linear, T=1000        | ddim, 50 steps, w=3    |
| sd3          | MMDiT    | text + CFG   | velocity | rectified flow        | euler, 28 steps, w=3   |
| sd3-reflow   | MMDiT    | text         | velocity | rectified flow        | euler, 2 steps, w=1    |

``sd3-reflow`` is ``sd3`` after one reflow round on (noise, guided sample) pairs: guidance is baked in.
``ddpm`` denoises pixels, as Ho et al.'s did (its UNet on 2x2 pixel-unshuffled 14x14x4 images); ``sd1``,
``sd2``, ``dit``, ``sd3`` and ``sd3-reflow`` are latent models, as the real ones are: they denoise the bundled
autoencoder's 3x14x14 latents (``generators.autoencoder``), scaled to unit variance, and decode their samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .config import ModelConfig, SamplingDefaults
from .names import PRESET_NAMES  # noqa: F401  (re-exported: presets and their names in one place)
from .schedules import ScheduleConfig
from .training.config import TrainConfig

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

PIXEL_UNET = {"base_channels": 48, "channel_mult": (1, 2), "num_res_blocks": 1, "attention_levels": (1,), "patch": 2}
# on 14x14 latents the backbones see the grids they saw on 28x28 pixels: the UNet's levels at 14 and 7, the
# transformers' 7x7 tokens (patch 2 instead of 4)
_UNET = {**PIXEL_UNET, "patch": 1}
_DIT = {"patch": 2, "dim": 128, "depth": 6, "heads": 4}
_MMDIT = {"patch": 2, "dim": 128, "depth": 4, "heads": 4}
_TEXT = {"dim": 64, "depth": 2, "heads": 4, "max_len": 12}


@dataclass
class Preset:
    """A named recipe: model architecture, training budget, sampling defaults."""

    name: str
    family: str
    model: ModelConfig
    train: TrainConfig
    sampling: SamplingDefaults
    description: str
    base: str | None = None  # reflow presets start from this preset's checkpoint
    extra: dict[str, Any] = field(default_factory=dict)


def latent_autoencoder() -> dict[str, Any]:
    """The autoencoder config of the latent presets: the bundled autoencoder's (with its measured scale and
    shift) when it is installed, else the architecture's defaults (scale 1), which training replaces."""
    from diffeval.io import read_model_config

    from .autoencoder import AUTOENCODER_DIR, FORMAT, VERSION, AutoencoderConfig

    if (AUTOENCODER_DIR / "config.json").is_file():
        return dict(read_model_config(AUTOENCODER_DIR, FORMAT, (VERSION,), "autoencoder")["autoencoder"])
    return AutoencoderConfig().to_dict()


def _model(backbone, parameterization, schedule, conditioning, bb, vocab=(), latent=True) -> ModelConfig:
    return ModelConfig(
        backbone=backbone,
        parameterization=parameterization,
        schedule=schedule,
        conditioning=conditioning,
        class_names=list(FASHION_CLASSES),
        backbone_config=dict(bb),
        text_encoder=dict(_TEXT) if conditioning == "text" else {},
        vocab=list(vocab),
        autoencoder=latent_autoencoder() if latent else {},
    )


def build_presets(vocab: list[str] | tuple[str, ...] = ("<pad>", "<unk>", "<bos>", "<eos>")) -> dict[str, Preset]:
    """All presets. ``vocab``: the tokenizer vocabulary for the text presets (from the caption set)."""
    linear = ScheduleConfig("linear", 1000)
    scaled = ScheduleConfig("scaled_linear", 1000)
    flow = ScheduleConfig("rectified_flow", None)
    unet_train = TrainConfig(steps=1200, batch_size=64, lr=5e-4, ema_decay=0.995)
    tf_train = TrainConfig(steps=1600, batch_size=64, lr=5e-4, ema_decay=0.995)
    # latent models keep clip_x0 off: their latents are unbounded (SD's pipelines do not clip either)
    return {
        "ddpm": Preset(
            "ddpm",
            "ddpm",
            _model("unet", "eps", linear, "none", PIXEL_UNET, latent=False),
            replace(unet_train, cond_dropout=0.0),
            SamplingDefaults("dpm++2m", 100, 1.0),
            "UNet, eps, unconditional (Ho et al. 2020)",
        ),
        "sd1": Preset(
            "sd1",
            "sd1",
            _model("unet", "eps", scaled, "text", _UNET, vocab),
            unet_train,
            SamplingDefaults("dpm++2m", 20, 3.0, clip_x0=False),
            "UNet + cross-attention, eps, text + CFG (SD 1.x)",
        ),
        "sd2": Preset(
            "sd2",
            "sd2",
            _model("unet", "v", scaled, "text", _UNET, vocab),
            unet_train,
            SamplingDefaults("dpm++2m", 20, 3.0, clip_x0=False),
            "UNet + cross-attention, v-prediction, text + CFG (SD 2.x)",
        ),
        "dit": Preset(
            "dit",
            "dit",
            _model("dit", "eps", linear, "class", _DIT),
            tf_train,
            SamplingDefaults("ddim", 50, 3.0, clip_x0=False),
            "DiT with adaLN-Zero, eps, class + CFG (Peebles & Xie 2023)",
        ),
        "sd3": Preset(
            "sd3",
            "sd3",
            _model("mmdit", "velocity", flow, "text", _MMDIT, vocab),
            tf_train,
            SamplingDefaults("euler", 28, 3.0, clip_x0=False),
            "MMDiT, rectified flow, text + CFG (SD3)",
        ),
        "sd3-reflow": Preset(
            "sd3-reflow",
            "sd3",
            _model("mmdit", "velocity", flow, "text", _MMDIT, vocab),
            TrainConfig(steps=600, batch_size=64, lr=1e-4, cond_dropout=0.0, warmup=0, ema_decay=0.995),
            SamplingDefaults("euler", 2, 1.0, clip_x0=False),
            "sd3 after one reflow round (1-4 step sampling)",
            base="sd3",
            extra={"pairs": 3000, "pair_steps": 20, "pair_guidance": 3.0},
        ),
    }


