"""Denoising networks. Each maps (x, t, cond_vec, tokens, token_mask) -> a tensor shaped like x."""

from .dit import DiT, DiTConfig
from .mlp import MLP, MLPConfig
from .mmdit import MMDiT, MMDiTConfig
from .text_encoder import TextEncoder, TextEncoderConfig
from .unet import UNet, UNetConfig

__all__ = [
    "DiT",
    "DiTConfig",
    "MLP",
    "MLPConfig",
    "MMDiT",
    "MMDiTConfig",
    "TextEncoder",
    "TextEncoderConfig",
    "UNet",
    "UNetConfig",
]
