"""Training of the bundled judge on Fashion-MNIST (random horizontal flips and 2-pixel shifts)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from diffeval.io import save_model_dir

from . import Judge
from .model import JudgeConfig, JudgeNet


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2))
    dx, dy = (int(v) for v in torch.randint(0, 5, (2,), generator=g))
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def train_judge(
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    out_dir: str | Path,
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
) -> dict:
    """Train, evaluate on the test split, write config.json (with test accuracy) + model.safetensors."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = train
    x = x.float() / 255.0
    net = JudgeNet(JudgeConfig())
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.time()
    bar = tqdm(total=steps, desc="train judge")
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // batch_size):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(net(_augment(x[idx], g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    wall = time.time() - t0
    judge = Judge(net)
    acc = (judge.predict(test[0]) == test[1]).float().mean().item()
    meta = {"model": net.config.to_dict(), "test_accuracy": round(acc, 4), "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "seed": seed, "train_wall_s": round(wall, 1), "torch": torch.__version__}
    save_model_dir(out_dir, meta, net.state_dict())
    return meta
