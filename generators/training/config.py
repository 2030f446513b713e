"""Training settings."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class TrainConfig:
    """steps/batch_size in optimizer steps and images; lr for AdamW after ``warmup`` linear steps.

    ``lr_schedule``: "constant" keeps ``lr`` after warm-up; "cosine" decays it from ``lr`` to
    ``min_lr`` over the remaining steps (half a cosine period).
    ``max_wall_s``: a wall-clock budget in seconds (cumulative over resumes). When set, training stops
    once the budget is spent (``steps`` is then an upper bound) and the cosine decay follows the
    elapsed fraction of the budget instead of the step count, so it reaches ``min_lr`` at the end
    whatever the machine's speed. The number of steps done is recorded in the checkpoint.
    """

    steps: int = 2000
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup: int = 100
    lr_schedule: str = "constant"
    min_lr: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_dropout: float = 0.1  # probability of the null condition (classifier-free guidance training)
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA), "bf16", "no"
    log_every: int = 50
    checkpoint_every: int = 250
    device: str = "auto"
    max_wall_s: float | None = None

    def lr_at(self, step: int, elapsed_s: float = 0.0) -> float:
        """Learning rate for optimizer step ``step`` (0-based), ``elapsed_s`` wall seconds into training."""
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.warmup and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.lr_schedule == "constant":
            return self.lr
        if self.max_wall_s:
            frac = min(1.0, elapsed_s / self.max_wall_s)
        else:
            frac = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * frac))

    def to_dict(self) -> dict:
        return asdict(self)
