"""A compact UNet (DDPM / Stable Diffusion lineage).

Residual blocks with GroupNorm and scale-shift time/condition modulation, self-attention at the
resolutions listed in ``attention_levels``, optional cross-attention to text tokens there (SD style).
Input and output: (N, C, H, W); H and W must be divisible by patch * 2^(len(channel_mult) - 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import TimestepEmbedder, attention, zero_module


@dataclass(frozen=True)
class UNetConfig:
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = (2,)
    heads: int = 4
    dropout: float = 0.0
    groups: int = 8
    patch: int = 1  # >1: pixel-unshuffle the input by this factor first (a cheap stand-in for SD's latent space)

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over pixels, then (if context_dim) cross-attention to text tokens."""

    def __init__(self, channels: int, heads: int, groups: int, context_dim: int | None) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = zero_module(nn.Linear(channels, channels))
        self.cross = context_dim is not None
        if self.cross:
            self.norm_c = nn.LayerNorm(channels)
            self.q_c = nn.Linear(channels, channels)
            self.kv_c = nn.Linear(context_dim, 2 * channels)
            self.proj_c = zero_module(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor:
        n, c, h, w = x.shape
        seq = self.norm(x).reshape(n, c, h * w).transpose(1, 2)
        q, k, v = self.qkv(seq).chunk(3, dim=-1)
        out = x.reshape(n, c, h * w).transpose(1, 2) + self.proj(attention(q, k, v, self.heads))
        if self.cross and tokens is not None:
            k_c, v_c = self.kv_c(tokens).chunk(2, dim=-1)
            out = out + self.proj_c(attention(self.q_c(self.norm_c(out)), k_c, v_c, self.heads, mask))
        return out.transpose(1, 2).reshape(n, c, h, w)


class UNet(nn.Module):
    """eps/v/x0/velocity network. forward(x, t, cond_vec, tokens, token_mask) -> same shape as x."""

    def __init__(self, config: UNetConfig, in_channels: int, emb_dim: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.config = config
        ch = [config.base_channels * m for m in config.channel_mult]
        g, drop = config.groups, config.dropout
        self.time = TimestepEmbedder(emb_dim)
        self.patch = config.patch
        inner = in_channels * config.patch**2
        self.stem = nn.Conv2d(inner, ch[0], 3, padding=1)

        self.down = nn.ModuleList()
        skips = [ch[0]]
        c = ch[0]
        for level, c_out in enumerate(ch):
            for _ in range(config.num_res_blocks):
                attn = AttentionBlock(c_out, config.heads, g, context_dim) if level in config.attention_levels else None
                self.down.append(nn.ModuleList([ResBlock(c, c_out, emb_dim, g, drop), attn or nn.Identity()]))
                c = c_out
                skips.append(c)
            if level < len(ch) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                skips.append(c)

        self.mid_res1 = ResBlock(c, c, emb_dim, g, drop)
        self.mid_attn = AttentionBlock(c, config.heads, g, context_dim)
        self.mid_res2 = ResBlock(c, c, emb_dim, g, drop)

        self.up = nn.ModuleList()
        for level in reversed(range(len(ch))):
            c_out = ch[level]
            for _ in range(config.num_res_blocks + 1):
                attn = AttentionBlock(c_out, config.heads, g, context_dim) if level in config.attention_levels else None
                self.up.append(
                    nn.ModuleList([ResBlock(c + skips.pop(), c_out, emb_dim, g, drop), attn or nn.Identity()])
                )
                c = c_out
            if level > 0:
                self.up.append(
                    nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)])
                )

        self.out_norm = nn.GroupNorm(g, c)
        self.out_conv = zero_module(nn.Conv2d(c, inner, 3, padding=1))

    @staticmethod
    def _run_block(block: nn.ModuleList, h, emb, tokens, mask):
        if isinstance(block[0], ResBlock):
            h = block[0](h, emb)
            return block[1](h, tokens, mask) if isinstance(block[1], AttentionBlock) else h
        for layer in block:
            h = layer(h)
        return h

    def forward(self, x, t, cond_vec=None, tokens=None, token_mask=None):
        emb = self.time(t)
        if cond_vec is not None:
            emb = emb + cond_vec
        if self.patch > 1:
            x = F.pixel_unshuffle(x, self.patch)
        h = self.stem(x)
        hs = [h]
        for block in self.down:
            h = self._run_block(block, h, emb, tokens, token_mask)
            hs.append(h)
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, emb), tokens, token_mask), emb)
        for block in self.up:
            if isinstance(block[0], ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run_block(block, h, emb, tokens, token_mask)
        out = self.out_conv(F.silu(self.out_norm(h)))
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out
