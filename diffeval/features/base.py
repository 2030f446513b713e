"""The feature-extractor interface: images in, float32 (N, dim) features out."""

from __future__ import annotations

import abc
from collections.abc import Iterator

import numpy as np
import torch

from .preprocess import check_images


class FeatureExtractor(abc.ABC):
    """Maps images to one feature space.

    Input everywhere: (N, C, H, W) uint8, or float in [0, 1] (see :mod:`.preprocess`). Outputs are
    float32 on the CPU. Subclasses set the attributes in ``__init__`` and implement ``prepare`` and
    ``_forward_features`` (and ``_forward_logits`` when ``num_logits`` is not None).
    """

    name: str  # registry name, e.g. "inception" (CLIP: "clip:ARCH:TAG")
    dim: int  # feature dimension
    num_logits: int | None = None  # classifier outputs for the Inception Score, None if none
    input_size: int  # side of the square network input, pixels
    device: torch.device
    weights_source: str  # where the weights came from (path or "bundled ...")
    contract: str  # the preprocessing, in one line, for reports

    @abc.abstractmethod
    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> network input: to_float01 -> quantize -> channels -> resize -> normalisation."""

    @abc.abstractmethod
    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared input on ``device`` -> (n, dim) features."""

    def _forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"the {self.name} feature space has no classifier logits")

    def iter_features(self, images: torch.Tensor | np.ndarray, batch_size: int = 64) -> Iterator[torch.Tensor]:
        """Yield float32 (n_i, dim) CPU features batch by batch (for streaming statistics)."""
        yield from self._batched(images, batch_size, self._forward_features)

    def features(self, images: torch.Tensor | np.ndarray, batch_size: int = 64) -> torch.Tensor:
        """(N, C, H, W) images -> float32 (N, dim) features on the CPU."""
        parts = list(self.iter_features(images, batch_size))
        return torch.cat(parts) if parts else torch.empty(0, self.dim)

    def logits(self, images: torch.Tensor | np.ndarray, batch_size: int = 64) -> torch.Tensor:
        """(N, C, H, W) images -> float32 (N, num_logits) classifier logits on the CPU (for IS)."""
        if self.num_logits is None:
            raise NotImplementedError(f"the {self.name} feature space has no classifier logits")
        parts = list(self._batched(images, batch_size, self._forward_logits))
        return torch.cat(parts) if parts else torch.empty(0, self.num_logits)

    @torch.no_grad()
    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """(N, dim) features from :meth:`features` -> float32 (N, num_logits) logits, without running the
        network again (the classifier head only)."""
        raise NotImplementedError(f"the {self.name} feature space has no classifier logits")

    def describe(self) -> dict:
        """Name, dimensions, weights source and preprocessing contract, for reports."""
        return {
            "name": self.name,
            "dim": self.dim,
            "num_logits": self.num_logits,
            "input_size": self.input_size,
            "weights": self.weights_source,
            "preprocessing": self.contract,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={str(self.device)!r})"

    @torch.no_grad()
    def _batched(self, images, batch_size: int, forward) -> Iterator[torch.Tensor]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        images = torch.as_tensor(images)
        check_images(images)  # once over all images, so an error counts every bad value
        for i in range(0, len(images), batch_size):
            x = self.prepare(images[i : i + batch_size].to(self.device))
            yield forward(x).float().cpu()
