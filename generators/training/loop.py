"""The training loop: AdamW, warm-up, gradient clipping, EMA, CFG condition dropout, bf16 on CUDA,
a CSV loss log, and resume from ``train_state.pt`` after an interruption.

Batches are drawn from a generator seeded by (seed, step), so a resumed run sees the same batches
as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from diffeval.io import atomic_torch_save, atomic_write_text

from ..checkpoints import save_checkpoint
from ..config import SamplingDefaults
from ..devices import pick_device
from ..model import Conditioning, DiffusionModel
from ..parameterization import training_target
from ..schedules import NoiseSchedule
from ..tokenizer import WordTokenizer
from .config import TrainConfig
from .data import TrainingData
from .ema import EMA

STATE_FILE = "train_state.pt"
LOG_FILE = "loss_log.csv"


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _batch(model: DiffusionModel, data: TrainingData, tokenizer, schedule, cfg: TrainConfig, step: int):
    g = _step_generator(cfg.seed, step)
    b = cfg.batch_size
    idx = torch.randint(len(data), (b,), generator=g)
    x0 = data.batch_images(idx)
    drop = torch.rand(b, generator=g) < cfg.cond_dropout
    kind = model.config.conditioning
    cond = Conditioning()
    if kind == "class":
        labels = data.labels[idx].clone()
        labels[drop] = model.config.num_classes
        cond = Conditioning(labels=labels)
    elif kind == "text":
        texts = data.batch_texts(idx, g)
        texts = ["" if d else s for s, d in zip(texts, drop.tolist())]
        ids, mask = tokenizer.encode(texts)
        cond = Conditioning(ids=ids, mask=mask)
    t = schedule.sample_training_times(b, g)
    eps = data.noise[idx].float() if data.noise is not None else torch.randn(x0.shape, generator=g)
    return x0, eps, t, cond


def training_loss(model: DiffusionModel, schedule: NoiseSchedule, x0, eps, t, cond) -> torch.Tensor:
    """MSE between the network output and its parameterization's target at x_t = alpha x0 + sigma eps."""
    alpha, sigma = schedule.alpha_sigma(t.double())
    d_alpha, d_sigma = schedule.d_alpha_sigma(t.double())
    f = lambda v: v.to(x0.device, torch.float32)  # noqa: E731
    a = f(alpha)[:, None, None, None]
    s = f(sigma)[:, None, None, None]
    x_t = a * x0 + s * eps
    target = training_target(model.config.parameterization, x0, eps, f(alpha), f(sigma), f(d_alpha), f(d_sigma))
    out = model(x_t, t.to(x0.device), cond)
    return torch.nn.functional.mse_loss(out.float(), target)


def train(
    model: DiffusionModel,
    data: TrainingData,
    cfg: TrainConfig,
    out_dir: str | Path,
    name: str,
    family: str,
    sampling: SamplingDefaults,
    provenance: dict[str, Any] | None = None,
    resume: bool = True,
    progress: bool = True,
    autoencoder=None,
) -> pd.DataFrame:
    """Train ``model`` in place and export its EMA weights to ``out_dir`` (config.json + model.safetensors).

    A latent model (``model.config.autoencoder``) trains on ``data`` already encoded to model-space latents
    (``data.model_space``); its frozen ``autoencoder`` is saved into the checkpoint beside it.

    Returns the loss log: columns step (int), loss (mean MSE over the last ``log_every`` steps),
    lr, elapsed_s (wall seconds since this run started, cumulative across resumes).
    """
    run = _TrainingRun(model, data, cfg, Path(out_dir), name, family, sampling, provenance or {}, autoencoder)
    start = run.resume() if resume else 0
    run.t0 = time.time()  # the wall clock of this run starts after the resumed state is loaded
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {name}", disable=not progress)
    step = start
    try:
        for step in range(start, cfg.steps):
            if run.step(step, bar):
                break
    except KeyboardInterrupt:
        run.checkpoint(step)
        raise
    finally:
        bar.close()
    model.load_state_dict(run.ema.state_dict())
    model.eval()
    return pd.DataFrame(run.log, columns=["step", "loss", "lr", "elapsed_s"])


class _TrainingRun:
    """The state of one training run: model, optimizer, EMA, loss log and wall clock."""

    def __init__(self, model: DiffusionModel, data: TrainingData, cfg: TrainConfig, out: Path, name: str,
                 family: str, sampling: SamplingDefaults, provenance: dict[str, Any], autoencoder=None) -> None:
        if model.config.autoencoder and not data.model_space:
            raise ValueError("a latent model trains on encoded latents: pass TrainingData(model_space=True)")
        if tuple(data.images.shape[1:]) != model.config.model_shape:
            raise ValueError(f"training data of shape {tuple(data.images.shape[1:])} for a model of "
                             f"{model.config.model_shape}")
        out.mkdir(parents=True, exist_ok=True)
        self.autoencoder = autoencoder
        self.model, self.data, self.cfg, self.out = model, data, cfg, out
        self.name, self.family, self.sampling, self.provenance = name, family, sampling, provenance
        self.device = pick_device(cfg.device)
        model.to(self.device).train()
        self.schedule = NoiseSchedule(model.config.schedule)
        self.tokenizer = None
        if model.config.conditioning == "text":
            self.tokenizer = WordTokenizer(model.config.vocab, model.config.text_encoder.get("max_len", 16))
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.ema = EMA(model, cfg.ema_decay)
        self.use_bf16 = cfg.mixed_precision == "bf16" or (cfg.mixed_precision == "auto" and self.device.type == "cuda")
        self.log: list[list] = []
        self.elapsed0 = 0.0
        self.running, self.count = 0.0, 0
        self.t0 = 0.0

    def resume(self) -> int:
        """Load OUT/train_state.pt if present; returns the step to continue from (0 without one)."""
        state_path = self.out / STATE_FILE
        if not state_path.is_file():
            return 0
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.ema.load_state_dict(state["ema"])
        self.log, self.elapsed0 = list(state["log"]), float(state["elapsed_s"])
        return int(state["step"])

    def step(self, step: int, bar) -> bool:
        """One optimizer step (with logging and checkpoints); True when training should stop after it."""
        cfg, model = self.cfg, self.model
        elapsed = self.elapsed0 + time.time() - self.t0
        lr = cfg.lr_at(step, elapsed)
        for group in self.opt.param_groups:
            group["lr"] = lr
        x0, eps, t, cond = _batch(model, self.data, self.tokenizer, self.schedule, cfg, step)
        x0, eps, cond = x0.to(self.device), eps.to(self.device), cond.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            loss = training_loss(model, self.schedule, x0, eps, t, cond)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.ema.update(model, step)
        self.running += loss.item()
        self.count += 1
        bar.update(1)
        last = step + 1 == cfg.steps or bool(cfg.max_wall_s and self.elapsed0 + time.time() - self.t0 >= cfg.max_wall_s)
        if (step + 1) % cfg.log_every == 0 or last:
            self.log.append([step + 1, self.running / self.count, lr, round(self.elapsed0 + time.time() - self.t0, 2)])
            bar.set_postfix(loss=f"{self.running / self.count:.4f}")
            self.running, self.count = 0.0, 0
        if (step + 1) % cfg.checkpoint_every == 0 or last:
            self.checkpoint(step + 1)
        return last

    def checkpoint(self, step: int) -> None:
        """train_state.pt (to resume), loss_log.csv and the EMA checkpoint, each atomic."""
        elapsed = self.elapsed0 + time.time() - self.t0
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "ema": self.ema.state_dict(),
                 "step": step, "log": self.log, "elapsed_s": elapsed}
        atomic_torch_save(self.out / STATE_FILE, state)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["step", "loss", "lr", "elapsed_s"])
        writer.writerows(self.log)
        atomic_write_text(self.out / LOG_FILE, buf.getvalue())
        info = {"train_config": self.cfg.to_dict(), "steps_done": step, "train_wall_s": round(elapsed, 1),
                "device": str(self.device), "torch": torch.__version__, **self.provenance}
        save_checkpoint(self.out, self.model, self.name, self.family, self.sampling, info,
                        state_dict=self.ema.state_dict(), autoencoder=self.autoencoder)
