"""A residual MLP denoiser for low-dimensional data (toy mixtures in 2-D and the like).

The input (N, C, H, W) is flattened to (N, D); the time embedding (plus an optional condition vector)
is added to every residual block. The last layer starts at zero, so the untrained model outputs 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .layers import TimestepEmbedder, zero_module


@dataclass(frozen=True)
class MLPConfig:
    width: int = 256
    depth: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.net = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return h + self.net(self.norm(h) + c)


class MLP(nn.Module):
    """forward(x, t, cond_vec=None, tokens=None, token_mask=None) -> tensor shaped like x."""

    def __init__(self, config: MLPConfig, in_features: int, emb_dim: int | None = None) -> None:
        super().__init__()
        if emb_dim is not None and emb_dim != config.width:
            raise ValueError("the MLP conditions on vectors of its own width: emb_dim must equal width")
        self.config = config
        self.inp = nn.Linear(in_features, config.width)
        self.time = TimestepEmbedder(config.width)
        self.blocks = nn.ModuleList(_Block(config.width) for _ in range(config.depth))
        self.out = nn.Sequential(
            nn.LayerNorm(config.width), nn.SiLU(), zero_module(nn.Linear(config.width, in_features))
        )

    def forward(self, x, t, cond_vec=None, tokens=None, token_mask=None):
        c = self.time(t)
        if cond_vec is not None:
            c = c + cond_vec
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, c)
        return self.out(h).reshape(x.shape)
