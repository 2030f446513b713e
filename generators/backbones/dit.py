"""DiT (Peebles & Xie 2023): patchify, fixed 2-D sin-cos positions, transformer blocks with adaLN-Zero.

All modulation and the final projection start at zero, so an untrained DiT outputs exactly 0.
Input and output: (N, C, H, W) with H, W divisible by ``patch``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Mlp, TimestepEmbedder, attention, modulate, sincos_2d_position_embedding


@dataclass(frozen=True)
class DiTConfig:
    patch: int = 4
    dim: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ada = nn.Linear(dim, 6 * dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(c)).chunk(6, dim=-1)
        q, k, v = self.qkv(modulate(self.norm1(x), sh1, sc1)).chunk(3, dim=-1)
        x = x + g1[:, None] * self.proj(attention(q, k, v, self.heads))
        return x + g2[:, None] * self.mlp(modulate(self.norm2(x), sh2, sc2))


class FinalLayer(nn.Module):
    """adaLN then a linear map of each token to a patch of pixels (both zeroed by init_transformer_weights)."""

    def __init__(self, dim: int, patch: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Linear(dim, 2 * dim)
        self.linear = nn.Linear(dim, patch * patch * channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(F.silu(c)).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


def patchify_layers(channels: int, dim: int, patch: int) -> nn.Conv2d:
    return nn.Conv2d(channels, dim, patch, stride=patch)


def unpatchify(tokens: torch.Tensor, patch: int, channels: int, h: int, w: int) -> torch.Tensor:
    """(N, (h/p)*(w/p), p*p*C) -> (N, C, h, w)."""
    n = tokens.shape[0]
    gh, gw = h // patch, w // patch
    x = tokens.reshape(n, gh, gw, patch, patch, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(n, channels, h, w)


def init_transformer_weights(
    module: nn.Module, time: TimestepEmbedder, zeroed: list[nn.Linear], patch: nn.Conv2d | None = None
) -> None:
    """DiT's initialisation: Xavier-uniform linears with zero bias, then the patch embedding like a
    linear map (if given), N(0, 0.02) time MLP, and the adaLN modulations and output projection in
    ``zeroed`` set to exactly zero (the model starts at output 0). The order fixes the random draws."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if patch is not None:
        nn.init.xavier_uniform_(patch.weight.view(patch.out_channels, -1))
    nn.init.normal_(time.mlp[0].weight, std=0.02)
    nn.init.normal_(time.mlp[2].weight, std=0.02)
    for layer in zeroed:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


class DiT(nn.Module):
    """forward(x, t, cond_vec, tokens=None, token_mask=None) -> (N, C, H, W). cond_vec: (N, dim) or None."""

    def __init__(self, config: DiTConfig, in_channels: int, image_size: int, emb_dim: int | None = None) -> None:
        super().__init__()
        if image_size % config.patch:
            raise ValueError(f"image size {image_size} is not divisible by patch {config.patch}")
        if emb_dim is not None and emb_dim != config.dim:
            raise ValueError("DiT conditions on vectors of its own width: emb_dim must equal dim")
        self.config, self.channels = config, in_channels
        grid = image_size // config.patch
        self.patch_embed = patchify_layers(in_channels, config.dim, config.patch)
        self.register_buffer("pos_embed", sincos_2d_position_embedding(config.dim, grid, grid)[None], persistent=False)
        self.time = TimestepEmbedder(config.dim)
        self.blocks = nn.ModuleList(DiTBlock(config.dim, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.final = FinalLayer(config.dim, config.patch, in_channels)
        zeroed = [b.ada for b in self.blocks] + [self.final.ada, self.final.linear]
        init_transformer_weights(self, self.time, zeroed, self.patch_embed)

    def forward(self, x, t, cond_vec=None, tokens=None, token_mask=None):
        h = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = self.time(t)
        if cond_vec is not None:
            c = c + cond_vec
        for block in self.blocks:
            h = block(h, c)
        return unpatchify(self.final(h, c), self.config.patch, self.channels, x.shape[2], x.shape[3])
