"""The bundled judge: load, train, classify."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diffeval.io import read_model_weights

from .model import JudgeConfig, JudgeNet

JUDGE_DIR = Path(__file__).resolve().parent.parent / "assets" / "judge"


class Judge:
    """Classifies 1x28x28 images in [0, 1] into the 10 Fashion-MNIST classes."""

    def __init__(self, net: JudgeNet, meta: dict | None = None) -> None:
        self.net = net.eval()
        self.meta = meta or {}

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """(N, 1, 28, 28) float in [0, 1] (uint8 accepted) -> logits float32 (N, 10)."""
        return torch.cat([self.net(_as_float(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """(N, 1, 28, 28) -> (N, 128) penultimate features (float32)."""
        return torch.cat(
            [self.net.features(_as_float(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
        )

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted class ids, int64 (N,)."""
        return self.logits(images).argmax(1)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"the judge takes (N, 1, 28, 28) images, got {tuple(x.shape)}")
    return x.float()


def load_judge(directory: str | Path | None = None) -> Judge:
    """Load the judge from ``directory`` (default: the one bundled with the package)."""
    directory = Path(directory) if directory else JUDGE_DIR
    cfg_path, weights = directory / "config.json", directory / "model.safetensors"
    if not cfg_path.is_file() or not weights.is_file():
        raise FileNotFoundError(
            f"judge weights missing: expected {cfg_path} and {weights}; "
            "create them with `python -m diffeval.bundle judge`"
        )
    meta = json.loads(cfg_path.read_text())
    cfg = meta["model"]
    net = JudgeNet(JudgeConfig(**{**cfg, "channels": tuple(cfg["channels"])}))
    net.load_state_dict(read_model_weights(directory))
    return Judge(net, meta)


__all__ = ["JUDGE_DIR", "Judge", "JudgeConfig", "JudgeNet", "load_judge"]
