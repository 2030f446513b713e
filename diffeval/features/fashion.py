"""The ``fashion`` feature space: the bundled Fashion-MNIST judge's 128-d penultimate layer."""

from __future__ import annotations

from pathlib import Path

import torch

from ..judge import JUDGE_DIR, load_judge
from .base import FeatureExtractor
from .preprocess import quantize, resize, to_gray


class FashionExtractor(FeatureExtractor):
    """Bundled judge features (dim 128) and logits (10 classes); works offline everywhere.

    Contract: quantise to uint8 levels; RGB -> gray by ITU-R 601 luma (0.299, 0.587, 0.114); resize
    to 28 x 28 with torch bilinear antialias=True unless already 28 x 28; the network then
    standardises with the Fashion-MNIST mean/std itself.

    The judge runs in float64 (features returned as float32): float32 CPU convolutions pick
    different kernels for different batch sizes and differ by a few 1e-6; in float64 the features
    are the same whatever the batching, so streaming statistics do not depend on batch size.

    Args:
        weights: a judge directory (config.json + model.safetensors); default the bundled one.
        device: where the network runs.
    """

    input_size = 28
    num_logits = 10
    contract = (
        "quantize floor(x*255+0.5)/255; RGB->gray ITU-R 601 luma (0.299, 0.587, 0.114); "
        "resize to 28x28 torch bilinear antialias=True (skipped at 28x28); judge standardises (x-0.2860)/0.3530"
    )

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu") -> None:
        self.name = "fashion"
        self.device = torch.device(device)
        directory = Path(weights) if weights else JUDGE_DIR
        self.net = load_judge(directory).net.to(self.device, torch.float64).eval()
        self.dim = self.net.config.feature_dim
        self.num_logits = self.net.config.num_classes
        self.weights_source = "bundled judge" if directory == JUDGE_DIR else str(directory)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1 or 3, H, W) -> float32 (N, 1, 28, 28) on the judge's 256 levels (before resizing)."""
        return resize(to_gray(quantize(images)), self.input_size, "bilinear-antialias")

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x.double())

    def _forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.double())

    @torch.no_grad()
    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.net.head(torch.as_tensor(features).to(self.device, torch.float64)).float().cpu()
