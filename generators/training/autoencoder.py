"""Training the KL autoencoder: reconstruction (L1 + MSE on model-space pixels) + a small KL weight, Adam,
seeded batches, resume from ``train_state.pt``; then the latent scale and shift are measured on the training
set so the diffusion model sees unit-variance latents (as SD's scaling factor does)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from diffeval.io import atomic_torch_save, atomic_write_text

from ..autoencoder import Autoencoder, AutoencoderConfig, kl_divergence, save_autoencoder
from ..devices import pick_device

STATE_FILE = "train_state.pt"


@dataclass
class AutoencoderTrainConfig:
    """steps/batch_size in optimizer steps and images; ``kl_weight`` multiplies the KL (nats per image) against
    the per-pixel reconstruction loss (SD: 1e-6 with a perceptual + GAN loss). lr decays by a cosine to 0."""

    steps: int = 2500
    batch_size: int = 64
    lr: float = 1e-3
    kl_weight: float = 1e-6
    seed: int = 0
    checkpoint_every: int = 500
    device: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _to_model_space(images: torch.Tensor) -> torch.Tensor:
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    return x * 2 - 1


def reconstruction_loss(model: Autoencoder, x: torch.Tensor, kl_weight: float, generator: torch.Generator | None
                        ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss for model-space images x (N, C, H, W): L1 + MSE of the decoded posterior sample, + kl_weight * KL."""
    mean, logvar = model.moments(x)
    noise = torch.randn(mean.shape, generator=generator).to(mean.device)
    z = mean + torch.exp(0.5 * logvar) * noise
    rec = model.decode_raw(z)
    l1, l2 = F.l1_loss(rec, x), F.mse_loss(rec, x)
    kl = kl_divergence(mean, logvar)
    loss = l1 + l2 + kl_weight * kl
    return loss, {"l1": l1.item(), "mse": l2.item(), "kl": kl.item()}


@torch.no_grad()
def latent_statistics(model: Autoencoder, images: torch.Tensor, batch_size: int = 500, max_images: int = 10000,
                      seed: int = 0) -> tuple[float, float]:
    """(shift, scale) with scale * (mean latent - shift) of zero mean and unit variance over ``images``
    (uint8 or [0, 1], (N, C, H, W); a seeded subset of ``max_images`` when there are more): the mean and
    1 / std of every latent value (SD3's shift/scale; SD 1.x took its 0.18215 from one batch)."""
    device = next(model.parameters()).device
    if images.shape[0] > max_images:
        images = images[torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))[:max_images]]
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, images.shape[0], batch_size):
        mean, _ = model.moments(_to_model_space(images[start : start + batch_size]).to(device))
        m = mean.double()
        total += float(m.sum())
        total_sq += float((m * m).sum())
        count += m.numel()
    mu = total / count
    std = (total_sq / count - mu * mu) ** 0.5
    return mu, 1.0 / std


def train_autoencoder(images: torch.Tensor, config: AutoencoderConfig, cfg: AutoencoderTrainConfig,
                      out_dir: str | Path, provenance: dict[str, Any] | None = None, resume: bool = True,
                      progress: bool = True) -> pd.DataFrame:
    """Train an autoencoder on ``images`` (N, C, H, W) uint8 or [0, 1] and save it to ``out_dir`` with its
    measured latent shift and scale. Returns the log: step, loss, l1, mse, kl (means over 50 steps), elapsed_s."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = Autoencoder(config).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps))))
    start, log, elapsed0 = 0, [], 0.0
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, log, elapsed0 = int(state["step"]), list(state["log"]), float(state["elapsed_s"])
    t0 = time.time()
    running: dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=start, desc="train autoencoder", disable=not progress)
    for step in range(start, cfg.steps):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(images.shape[0], (cfg.batch_size,), generator=g)
        x = _to_model_space(images[idx]).to(device)
        loss, parts = reconstruction_loss(model, x, cfg.kl_weight, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for k, v in {"loss": loss.item(), **parts}.items():
            running[k] = running.get(k, 0.0) + v
        bar.update(1)
        if (step + 1) % 50 == 0 or step + 1 == cfg.steps:
            count = (step % 50) + 1
            log.append([step + 1, *(running[k] / count for k in ("loss", "l1", "mse", "kl")),
                        round(elapsed0 + time.time() - t0, 2)])
            bar.set_postfix(loss=f"{running['loss'] / count:.4f}")
            running = {}
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            atomic_torch_save(state_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                           "scheduler": sched.state_dict(), "step": step + 1, "log": log,
                                           "elapsed_s": elapsed0 + time.time() - t0})
    bar.close()
    model.eval()
    shift, scale = latent_statistics(model, images)
    model.config.shift_factor, model.config.scaling_factor = round(shift, 6), round(scale, 6)
    wall = round(elapsed0 + time.time() - t0, 1)
    info = {"train_config": cfg.to_dict(), "steps_done": cfg.steps, "train_wall_s": wall, "device": str(device),
            "torch": torch.__version__, **(provenance or {})}
    save_autoencoder(out, model.cpu(), info)
    table = pd.DataFrame(log, columns=["step", "loss", "l1", "mse", "kl", "elapsed_s"])
    atomic_write_text(out / "loss_log.csv", table.to_csv(index=False))
    if state_path.is_file():
        state_path.unlink()
    return table
