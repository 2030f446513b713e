"""Building blocks shared by the backbones: time embeddings, position embeddings, attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of times t in [0, 1] (scaled by 1000 as for T = 1000). (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedder(nn.Module):
    """t (N,) -> (N, dim): sinusoid followed by a two-layer MLP."""

    def __init__(self, dim: int, freq_dim: int = 128) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))


def sincos_2d_position_embedding(dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (as in MAE/DiT). Returns (grid_h * grid_w, dim), row-major."""
    if dim % 4:
        raise ValueError("position embedding dim must be divisible by 4")
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64), torch.arange(grid_w, dtype=torch.float64), indexing="ij"
    )

    def encode(pos: torch.Tensor) -> torch.Tensor:
        out = pos.reshape(-1, 1) * omega[None]
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)

    return torch.cat([encode(ys), encode(xs)], dim=1).float()


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation of tokens x (N, L, D) by per-sample shift/scale (N, D)."""
    return x * (1 + scale[:, None]) + shift[:, None]


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Multi-head attention. q (N, Lq, D), k/v (N, Lk, D), key_mask (N, Lk) True = attend. -> (N, Lq, D)."""
    n, lq, d = q.shape
    lk = k.shape[1]
    q = q.reshape(n, lq, heads, d // heads).transpose(1, 2)
    k = k.reshape(n, lk, heads, d // heads).transpose(1, 2)
    v = v.reshape(n, lk, heads, d // heads).transpose(1, 2)
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(n, lq, d)


class RMSNorm(nn.Module):
    """RMS normalisation over the last dimension with a learned gain (used for QK-norm)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def zero_module(module: nn.Module) -> nn.Module:
    """Set all parameters of ``module`` to zero and return it."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module
