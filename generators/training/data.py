"""What the training loop consumes, independent of where the images came from."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TrainingData:
    """Training images and their conditions.

    images: (N, C, H, W) float in [0, 1] or uint8. labels: (N,) int64 class ids, or None.
    captions: per class, the captions an image of that class may get (repeats weight them); a caption
    is drawn per image per step. prompts: one fixed prompt per image (reflow pairs) instead.
    noise: (N, C, H, W) model-space noise paired with each image (reflow), else fresh noise is drawn.
    model_space: the images are already model-space points (any real values, e.g. samples of a toy
    mixture) and are used as they are instead of being mapped from [0, 1] to [-1, 1].
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    captions: list[list[str]] | None = None
    prompts: list[str] | None = None
    noise: torch.Tensor | None = None
    model_space: bool = False

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.ndim != 4:
            raise ValueError("images must be (N, C, H, W)")
        for name in ("labels", "noise"):
            v = getattr(self, name)
            if v is not None and v.shape[0] != n:
                raise ValueError(f"{name} has {v.shape[0]} rows for {n} images")
        if self.prompts is not None and len(self.prompts) != n:
            raise ValueError(f"prompts has {len(self.prompts)} entries for {n} images")
        if self.captions is not None and self.labels is None:
            raise ValueError("captions are chosen by class: labels are required")

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch_images(self, idx: torch.Tensor) -> torch.Tensor:
        """Model-space images x0 in [-1, 1] for the given indices (float32)."""
        x = self.images[idx]
        if self.model_space:
            return x.float()
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x * 2 - 1

    def batch_texts(self, idx: torch.Tensor, generator: torch.Generator) -> list[str]:
        if self.prompts is not None:
            return [self.prompts[i] for i in idx.tolist()]
        if self.captions is None:
            raise ValueError("a text-conditional model needs captions or prompts")
        out = []
        for label in self.labels[idx].tolist():
            options = self.captions[label]
            out.append(options[int(torch.randint(len(options), (1,), generator=generator))])
        return out
