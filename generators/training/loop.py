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
) -> pd.DataFrame:
    """Train ``model`` in place and export its EMA weights to ``out_dir`` (config.json + model.safetensors).

    Returns the loss log: columns step (int), loss (mean MSE over the last ``log_every`` steps),
    lr, elapsed_s (wall seconds since this run started, cumulative across resumes).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    model.to(device).train()
    schedule = NoiseSchedule(model.config.schedule)
    tokenizer = None
    if model.config.conditioning == "text":
        tokenizer = WordTokenizer(model.config.vocab, model.config.text_encoder.get("max_len", 16))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_decay)
    use_bf16 = cfg.mixed_precision == "bf16" or (cfg.mixed_precision == "auto" and device.type == "cuda")
    start, log, elapsed0 = 0, [], 0.0
    state_path = out / STATE_FILE
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        start, log, elapsed0 = int(state["step"]), list(state["log"]), float(state["elapsed_s"])
    t0 = time.time()

    def checkpoint(step: int) -> None:
        elapsed = elapsed0 + time.time() - t0
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "ema": ema.state_dict(),
                 "step": step, "log": log, "elapsed_s": elapsed}
        atomic_torch_save(state_path, state)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["step", "loss", "lr", "elapsed_s"])
        writer.writerows(log)
        atomic_write_text(out / LOG_FILE, buf.getvalue())
        info = {"train_config": cfg.to_dict(), "steps_done": step, "train_wall_s": round(elapsed, 1),
                "device": str(device), "torch": torch.__version__, **(provenance or {})}
        save_checkpoint(out, model, name, family, sampling, info, state_dict=ema.state_dict())

    running, count = 0.0, 0
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {name}", disable=not progress)
    try:
        for step in range(start, cfg.steps):
            elapsed = elapsed0 + time.time() - t0
            lr = cfg.lr_at(step, elapsed)
            for group in opt.param_groups:
                group["lr"] = lr
            x0, eps, t, cond = _batch(model, data, tokenizer, schedule, cfg, step)
            x0, eps, cond = x0.to(device), eps.to(device), cond.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = training_loss(model, schedule, x0, eps, t, cond)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            ema.update(model, step)
            running += loss.item()
            count += 1
            bar.update(1)
            last = step + 1 == cfg.steps or bool(cfg.max_wall_s and elapsed0 + time.time() - t0 >= cfg.max_wall_s)
            if (step + 1) % cfg.log_every == 0 or last:
                log.append([step + 1, running / count, lr, round(elapsed0 + time.time() - t0, 2)])
                bar.set_postfix(loss=f"{running / count:.4f}")
                running, count = 0.0, 0
            if (step + 1) % cfg.checkpoint_every == 0 or last:
                checkpoint(step + 1)
            if last:
                break
    except KeyboardInterrupt:
        checkpoint(step)
        raise
    finally:
        bar.close()
    model.load_state_dict(ema.state_dict())
    model.eval()
    return pd.DataFrame(log, columns=["step", "loss", "lr", "elapsed_s"])
