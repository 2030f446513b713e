"""A folder of cached tensors keyed by a hash of everything they depend on (interrupted runs resume)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from diffeval.io import atomic_torch_save, digest, safe_path


class TensorCache:
    """``folder/{name}-{digest(parts)}.pt``, written atomically; ``get`` makes and stores what is missing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str, parts: dict) -> Path:
        return safe_path(self.folder, f"{name}-{digest(parts, 16)}.pt")

    def load(self, name: str, parts: dict) -> torch.Tensor | None:
        path = self.path(name, parts)
        return torch.load(path, weights_only=True) if path.is_file() else None

    def put(self, name: str, parts: dict, value: torch.Tensor) -> torch.Tensor:
        atomic_torch_save(self.path(name, parts), value)
        return value

    def get(self, name: str, parts: dict, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        value = self.load(name, parts)
        return self.put(name, parts, make()) if value is None else value
