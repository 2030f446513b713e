"""MMDiT (Esser et al. 2024, Stable Diffusion 3): two token streams, image and text, each with its own
weights (adaLN modulation, QKV, output projection, MLP), joined in one attention over both.

Conditioning vector c = time embedding + pooled text embedding drives adaLN in both streams. All
modulations and the final projection start at zero, so an untrained MMDiT outputs exactly 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dit import FinalLayer, init_transformer_weights, patchify_layers, unpatchify
from .layers import Mlp, RMSNorm, TimestepEmbedder, attention, modulate, sincos_2d_position_embedding


@dataclass(frozen=True)
class MMDiTConfig:
    patch: int = 4
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0

    def to_dict(self) -> dict:
        return asdict(self)


class StreamWeights(nn.Module):
    """One stream's private weights inside a joint block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // heads)
        self.k_norm = RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ada = nn.Linear(dim, 6 * dim)
        self.heads = heads

    def qkv_of(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor):
        n, length, d = x.shape
        q, k, v = self.qkv(modulate(self.norm1(x), shift, scale)).chunk(3, dim=-1)
        q = self.q_norm(q.reshape(n, length, self.heads, -1)).reshape(n, length, d)
        k = self.k_norm(k.reshape(n, length, self.heads, -1)).reshape(n, length, d)
        return q, k, v


class JointBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.img = StreamWeights(dim, heads, mlp_ratio)
        self.txt = StreamWeights(dim, heads, mlp_ratio)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, c: torch.Tensor, ctx_mask: torch.Tensor | None):
        mods = []
        qkvs = []
        for stream, tokens in ((self.txt, ctx), (self.img, x)):
            m = stream.ada(F.silu(c)).chunk(6, dim=-1)
            mods.append(m)
            qkvs.append(stream.qkv_of(tokens, m[0], m[1]))
        q, k, v = (torch.cat([a, b], dim=1) for a, b in zip(*qkvs))
        key_mask = None
        if ctx_mask is not None:
            img_mask = torch.ones(x.shape[0], x.shape[1], dtype=torch.bool, device=x.device)
            key_mask = torch.cat([ctx_mask, img_mask], dim=1)
        out = attention(q, k, v, self.heads, key_mask)
        n_ctx = ctx.shape[1]
        results = []
        for stream, tokens, part, (_, _, g1, sh2, sc2, g2) in (
            (self.txt, ctx, out[:, :n_ctx], mods[0]),
            (self.img, x, out[:, n_ctx:], mods[1]),
        ):
            tokens = tokens + g1[:, None] * stream.proj(part)
            tokens = tokens + g2[:, None] * stream.mlp(modulate(stream.norm2(tokens), sh2, sc2))
            results.append(tokens)
        return results[1], results[0]


class MMDiT(nn.Module):
    """forward(x, t, cond_vec, tokens, token_mask) -> (N, C, H, W).

    cond_vec (N, dim): pooled text embedding projected to ``dim``; tokens (N, L, context_dim): text tokens;
    token_mask (N, L) True for real tokens.
    """

    def __init__(self, config: MMDiTConfig, in_channels: int, image_size: int, context_dim: int) -> None:
        super().__init__()
        if image_size % config.patch:
            raise ValueError(f"image size {image_size} is not divisible by patch {config.patch}")
        self.config, self.channels = config, in_channels
        grid = image_size // config.patch
        self.patch_embed = patchify_layers(in_channels, config.dim, config.patch)
        self.register_buffer("pos_embed", sincos_2d_position_embedding(config.dim, grid, grid)[None], persistent=False)
        self.context_embed = nn.Linear(context_dim, config.dim)
        self.time = TimestepEmbedder(config.dim)
        self.blocks = nn.ModuleList(JointBlock(config.dim, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.final = FinalLayer(config.dim, config.patch, in_channels)
        adas = [stream.ada for block in self.blocks for stream in (block.img, block.txt)]
        init_transformer_weights(self, self.time, adas + [self.final.ada, self.final.linear])

    def forward(self, x, t, cond_vec=None, tokens=None, token_mask=None):
        if tokens is None:
            raise ValueError("MMDiT needs text tokens")
        h = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        ctx = self.context_embed(tokens)
        c = self.time(t)
        if cond_vec is not None:
            c = c + cond_vec
        for block in self.blocks:
            h, ctx = block(h, ctx, c, token_mask)
        return unpatchify(self.final(h, c), self.config.patch, self.channels, x.shape[2], x.shape[3])
