"""Training settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TrainConfig:
    """steps/batch_size in optimizer steps and images; lr for AdamW after ``warmup`` linear steps."""

    steps: int = 2000
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    cond_dropout: float = 0.1  # probability of the null condition (classifier-free guidance training)
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA), "bf16", "no"
    log_every: int = 50
    checkpoint_every: int = 250
    device: str = "auto"

    def to_dict(self) -> dict:
        return asdict(self)
