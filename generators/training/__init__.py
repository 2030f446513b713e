"""Training of diffusion models (see ``loop.train``)."""

from .config import TrainConfig
from .data import TrainingData
from .loop import train, training_loss

__all__ = ["TrainConfig", "TrainingData", "train", "training_loss"]
