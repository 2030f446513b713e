"""A small transformer text encoder trained jointly with the diffusion model.

token ids (N, L) + mask (N, L) -> token features (N, L, dim) and a pooled vector (N, dim)
(mean of the valid tokens after the final LayerNorm).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TextEncoderConfig:
    dim: int = 64
    depth: int = 2
    heads: int = 4
    max_len: int = 16

    def to_dict(self) -> dict:
        return asdict(self)


class TextEncoder(nn.Module):
    def __init__(self, config: TextEncoderConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.token_embed = nn.Embedding(vocab_size, config.dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.max_len, config.dim))
        nn.init.normal_(self.token_embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.dim, config.heads, 4 * config.dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.token_embed(ids) + self.pos_embed[:, : ids.shape[1]]
        h = self.norm(self.layers(h, src_key_padding_mask=~mask))
        weights = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return h, pooled
