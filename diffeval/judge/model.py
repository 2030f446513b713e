"""The bundled judge: a small Fashion-MNIST classifier. Its 128-d penultimate layer is also the
``fashion`` feature space for the offline FID.

Input: float (N, 1, 28, 28) in [0, 1]. The network normalises with the training set's mean/std itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class JudgeConfig:
    channels: tuple[int, int] = (32, 64)
    feature_dim: int = 128
    num_classes: int = 10
    mean: float = 0.2860  # Fashion-MNIST train pixel mean in [0, 1]
    std: float = 0.3530

    def to_dict(self) -> dict:
        return asdict(self)


class JudgeNet(nn.Module):
    def __init__(self, config: JudgeConfig = JudgeConfig()) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.bn2 = nn.BatchNorm2d(c2)
        self.fc = nn.Linear(c2 * 7 * 7, config.feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) in [0, 1] -> (N, feature_dim) penultimate activations (after ReLU)."""
        x = (x - self.config.mean) / self.config.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) in [0, 1] -> logits (N, num_classes)."""
        return self.head(self.dropout(self.features(x)))
