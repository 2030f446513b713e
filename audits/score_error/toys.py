"""Toy generators trained on the Gaussian mixtures, so that score-error curves exist for every
parameterization and backbone against an exact truth.

- On ``gmm2d`` (points laid out as 2x1x1 "images"): a residual MLP in each parameterization, eps, v
  and x0 on the same continuous cosine VP path and velocity on the rectified-flow path, so the
  parameterizations are compared on equal terms.
- On ``gmm64`` (1x8x8 images): one small copy of each bundled preset's design, the same backbone,
  parameterization and schedule (ddpm: UNet/eps/linear; sd1: UNet/eps/scaled-linear; sd2: UNet/v;
  dit: DiT/eps; sd3: MMDiT/flow). Text models are trained with the empty prompt only, class and text
  conditions play no part (the mixture has no labels). sd3-reflow shares sd3's design and is left out.

Each toy is trained with the ordinary training loop and saved as an ordinary checkpoint in a cache
directory; a later run finds it there and loads it instead of training again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from diffeval.generators import Generator, load_checkpoint
from diffeval.generators.config import ModelConfig, SamplingDefaults
from diffeval.generators.model import DiffusionModel
from diffeval.generators.schedules import ScheduleConfig
from diffeval.generators.training.config import TrainConfig
from diffeval.generators.training.data import TrainingData
from diffeval.generators.training.loop import train

from .gmm import MixtureTruth

_VOCAB = ["<pad>", "<unk>", "<bos>", "<eos>"]
_TEXT = {"dim": 32, "depth": 1, "heads": 4, "max_len": 4}
_UNET = {"base_channels": 32, "channel_mult": (1, 2), "num_res_blocks": 1, "attention_levels": (1,)}


@dataclass(frozen=True)
class ToySpec:
    """A toy generator: what it mirrors, and how long it trains."""

    name: str
    backbone: str
    parameterization: str
    schedule: ScheduleConfig
    backbone_config: dict
    text: bool = False
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3


def toy_specs(data: str) -> list[ToySpec]:
    """The toys trained on mixture ``data`` ("gmm2d" or "gmm64")."""
    vp, flow = ScheduleConfig("cosine", None), ScheduleConfig("rectified_flow", None)
    if data == "gmm2d":
        mlp = {"width": 128, "depth": 3}
        return [
            ToySpec(f"mlp-{p}", "mlp", p, flow if p == "velocity" else vp, mlp) for p in ("eps", "v", "x0", "velocity")
        ]
    if data == "gmm64":
        linear, scaled = ScheduleConfig("linear", 1000), ScheduleConfig("scaled_linear", 1000)
        tf = {"patch": 2, "dim": 64, "depth": 3, "heads": 4}
        kw = {"steps": 2000, "batch_size": 128}
        return [
            ToySpec("ddpm-toy", "unet", "eps", linear, _UNET, **kw),
            ToySpec("sd1-toy", "unet", "eps", scaled, _UNET, text=True, **kw),
            ToySpec("sd2-toy", "unet", "v", scaled, _UNET, text=True, **kw),
            ToySpec("dit-toy", "dit", "eps", linear, tf, **kw),
            ToySpec("sd3-toy", "mmdit", "velocity", flow, tf, text=True, **kw),
        ]
    raise ValueError(f"no toy generators for data {data!r}; choose gmm2d or gmm64")


def _model_config(spec: ToySpec, mix: MixtureTruth) -> ModelConfig:
    c, h, w = mix.shape
    if h != w:
        raise ValueError("toy images must be square")
    return ModelConfig(
        backbone=spec.backbone,
        parameterization=spec.parameterization,
        schedule=spec.schedule,
        conditioning="text" if spec.text else "none",
        image_size=h,
        channels=c,
        emb_dim=spec.backbone_config.get("width", 128),
        backbone_config=dict(spec.backbone_config),
        text_encoder=dict(_TEXT) if spec.text else {},
        vocab=list(_VOCAB) if spec.text else [],
    )


def train_toy(spec: ToySpec, mix: MixtureTruth, out_dir: str | Path, n_train: int = 50_000, seed: int = 0,
              progress: bool = True) -> Generator:
    """Train ``spec`` on n_train draws of ``mix`` (model space, as they are) into out_dir, or load it
    when out_dir already holds a finished checkpoint. Returns the Generator (EMA weights)."""
    out = Path(out_dir)
    if (out / "config.json").is_file() and not (out / "train_state.pt").is_file():
        return load_checkpoint(out)
    torch.manual_seed(seed)
    points = mix.sample(n_train, seed=seed + 1).float().reshape(n_train, *mix.shape)
    data = TrainingData(images=points, prompts=[""] * n_train if spec.text else None, model_space=True)
    cfg = TrainConfig(steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr, warmup=100, lr_schedule="cosine",
                      ema_decay=0.995, cond_dropout=0.0, seed=seed, log_every=100, checkpoint_every=500, device="cpu")
    model = DiffusionModel(_model_config(spec, mix))
    sampling = SamplingDefaults("euler" if spec.schedule.kind == "rectified_flow" else "ddim", 50, 1.0, clip_x0=False)
    train(model, data, cfg, out, spec.name, "toy", sampling,
          provenance={"data": f"{mix.name} ({n_train} draws, seed {seed + 1})", "toy": True}, progress=progress)
    (out / "train_state.pt").unlink(missing_ok=True)  # finished: the checkpoint is what is kept
    return load_checkpoint(out)
