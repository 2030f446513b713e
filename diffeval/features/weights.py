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
        given = given_weights(explicit, self.env_var)
        arg, env = "weights= argument", f"${self.env_var}"
        if given is None:
            if self.cache_path.is_file():
                return self.cache_path
            looked = [(arg, "not given"), (env, "not set"), ("cache", f"{self.cache_path} does not exist")]
        else:
            place, path = given
            if path.is_file():
                return path
            missing = f"{path} does not exist"
            looked = ([(arg, missing), (env, "not consulted")] if place == "weights=" else
                      [(arg, "not given"), (env, missing)]) + [("cache", "not consulted")]
        raise WeightsNotFoundError.missing(
            self.what, self.filename, looked, str(self.cache_path), self.source, self.env_var
        )


def given_weights(explicit: str | os.PathLike | None, env_var: str) -> tuple[str, Path] | None:
    """The first place that names a weight file, ("weights=", path) or ("$ENV_VAR", path), with ``~``
    expanded; None when neither is given. Whether the file exists is the caller's check (``WeightFile.resolve``
    for files with a cache path; the CLIP extractor, whose fall-back is an open_clip tag)."""
    env = os.environ.get(env_var) or None
    for place, value in (("weights=", explicit), (f"${env_var}", env)):
        if value is not None:
            return place, Path(value).expanduser()
    return None


def hub_checkpoint(filename: str) -> Path:
    """``torch.hub.get_dir()/checkpoints/filename``: where torch's downloaders cache weight files."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / filename
