"""DiffusionModel: a backbone plus its condition encoder, built from a ModelConfig."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbones import (
    MLP,
    DiT,
    DiTConfig,
    MLPConfig,
    MMDiT,
    MMDiTConfig,
    TextEncoder,
    TextEncoderConfig,
    UNet,
    UNetConfig,
)
from .config import ModelConfig


@dataclass
class Conditioning:
    """Network-ready conditions for a batch: class labels (N,) int64 with ``num_classes`` as the null
    label, or token ids (N, L) int64 with mask (N, L) bool. All None for unconditional models."""

    labels: torch.Tensor | None = None
    ids: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def to(self, device: torch.device) -> Conditioning:
        move = lambda v: None if v is None else v.to(device)  # noqa: E731
        return Conditioning(move(self.labels), move(self.ids), move(self.mask))

    def __getitem__(self, index) -> Conditioning:
        pick = lambda v: None if v is None else v[index]  # noqa: E731
        return Conditioning(pick(self.labels), pick(self.ids), pick(self.mask))

    @staticmethod
    def cat(items: list[Conditioning]) -> Conditioning:
        def join(name):
            values = [getattr(c, name) for c in items]
            return None if values[0] is None else torch.cat(values)

        return Conditioning(join("labels"), join("ids"), join("mask"))


def _text_dim(config: ModelConfig) -> int:
    return TextEncoderConfig(**config.text_encoder).dim


class DiffusionModel(nn.Module):
    """forward(x (N,C,H,W) in model space, t (N,) in [0,1], Conditioning) -> raw network output (N,C,H,W).

    (C, H, W) is ``config.model_shape``: the image for pixel models, the autoencoder's latent for latent ones
    (the autoencoder itself lives beside the model, in the Generator)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c, size, _ = config.model_shape
        if config.backbone == "unet":
            emb_dim = config.emb_dim
            context = _text_dim(config) if config.conditioning == "text" else None
            self.backbone = UNet(UNetConfig(**_tuples(config.backbone_config)), c, emb_dim, context)
        elif config.backbone == "dit":
            bc = DiTConfig(**config.backbone_config)
            emb_dim = bc.dim
            self.backbone = DiT(bc, c, size, emb_dim)
        elif config.backbone == "mlp":
            bc = MLPConfig(**config.backbone_config)
            emb_dim = bc.width
            self.backbone = MLP(bc, c * size * size, emb_dim)
        else:
            bc = MMDiTConfig(**config.backbone_config)
            emb_dim = bc.dim
            self.backbone = MMDiT(bc, c, size, _text_dim(config))
        self.label_embed = None
        self.text_encoder = None
        if config.conditioning == "class":
            self.label_embed = nn.Embedding(config.num_classes + 1, emb_dim)
            nn.init.normal_(self.label_embed.weight, std=0.02)
        elif config.conditioning == "text":
            te = TextEncoderConfig(**config.text_encoder)
            self.text_encoder = TextEncoder(te, len(config.vocab))
            self.text_pool = nn.Linear(te.dim, emb_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Conditioning | None = None) -> torch.Tensor:
        cond = cond or Conditioning()
        vec = tokens = mask = None
        if self.label_embed is not None:
            if cond.labels is None:
                raise ValueError("this model is class-conditional: labels are required (use the null label for none)")
            vec = self.label_embed(cond.labels)
        elif self.text_encoder is not None:
            if cond.ids is None:
                raise ValueError("this model is text-conditional: token ids are required")
            tokens, pooled = self.text_encoder(cond.ids, cond.mask)
            vec, mask = self.text_pool(pooled), cond.mask
        return self.backbone(x, t, vec, tokens, mask)


def _tuples(d: dict) -> dict:
    """JSON turns tuples into lists; dataclass configs hash/compare with tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
