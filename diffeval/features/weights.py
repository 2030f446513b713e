"""Finding a weight file: explicit path, then an environment variable, then a cache path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsNotFoundError


@dataclass(frozen=True)
class WeightFile:
    """Where one weight file may be found.

    The first place that is *given* decides: an explicit path, else the environment variable when
    set, else the cache path. A given path that does not exist is an error, never a silent fall-back
    to another file.
    """

    what: str  # e.g. "FID Inception weights"
    filename: str  # the file's canonical name, e.g. pt_inception-2015-12-05-6726825d.pth
    env_var: str  # e.g. DIFFEVAL_INCEPTION_WEIGHTS
    cache_path: Path  # where a downloader would have put it
    source: str | None = None  # URL or hub id it normally comes from

    def resolve(self, explicit: str | os.PathLike | None = None) -> Path:
        """The path to load, or :class:`WeightsNotFoundError` naming every place looked."""
        env = os.environ.get(self.env_var) or None
        candidates = [("weights= argument", explicit), (f"${self.env_var}", env), ("cache", self.cache_path)]
        looked: list[tuple[str, str]] = []
        for i, (place, value) in enumerate(candidates):
            if value is None:
                looked.append((place, "not given" if i == 0 else "not set"))
                continue
            path = Path(value).expanduser()
            if path.is_file():
                return path
            looked.append((place, f"{path} does not exist"))
            looked += [(p, "not consulted") for p, _ in candidates[i + 1 :]]
            break
        raise WeightsNotFoundError.missing(
            self.what, self.filename, looked, str(self.cache_path), self.source, self.env_var
        )


def hub_checkpoint(filename: str) -> Path:
    """``torch.hub.get_dir()/checkpoints/filename``: where torch's downloaders cache weight files."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / filename
