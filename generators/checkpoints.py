"""Checkpoint directories: ``config.json`` (everything to rebuild the model) + ``model.safetensors``.

config.json holds {"format": "diffeval-generator", "version": 1, "name", "family", "model": ModelConfig,
"sampling": SamplingDefaults, "training": free-form provenance}. Pickled checkpoints (*.pt, *.pth,
*.ckpt, *.bin) are refused unless ``trust_pickle=True``; even then they are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .config import ModelConfig, SamplingDefaults
from .interface import Generator
from .model import DiffusionModel

FORMAT = "diffeval-generator"
VERSION = 1
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded; the message says why and what to do."""


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary file beside ``path`` (its folder is created) for the block to write; when the block
    ends it replaces ``path`` in one step, so readers see the old or the new file, never a partial one.
    On an error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file so that readers see the old or the new content, never a partial one."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def save_checkpoint(
    directory: str | Path,
    model: DiffusionModel,
    name: str,
    family: str,
    sampling: SamplingDefaults,
    training: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write config.json + model.safetensors (the given state_dict, default the model's own)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in (state_dict or model.state_dict()).items()}
    with atomic_output(directory / "model.safetensors") as tmp:
        save_file(tensors, str(tmp))
    config = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "family": family,
        "model": model.config.to_dict(),
        "sampling": asdict(sampling),
        "training": training or {},
    }
    atomic_write_text(directory / "config.json", json.dumps(config, indent=2) + "\n")
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory}: no config.json; a checkpoint directory holds config.json + model.safetensors")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a diffeval generator config (format {config.get('format')!r})")
    if config.get("version") != VERSION:
        raise CheckpointError(f"{path}: config version {config.get('version')} is not supported (expected {VERSION})")
    return config


def _read_weights(directory: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    st = directory / "model.safetensors"
    if st.is_file():
        try:
            return load_file(str(st))
        except Exception as e:  # safetensors raises several types for damaged files
            raise CheckpointError(f"{st}: unreadable safetensors file ({e})") from e
    pickles = sorted(p for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickles:
        raise CheckpointError(f"{directory}: no model.safetensors")
    if not trust_pickle:
        raise CheckpointError(
            f"{pickles[0]}: pickled checkpoints can run code when loaded and are refused; "
            "convert it to model.safetensors, or pass --trust-pickle (trust_pickle=True) if you trust its source"
        )
    state = torch.load(pickles[0], map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{pickles[0]}: does not hold a flat state dict of tensors")
    return state


def load_checkpoint(
    directory: str | Path, device: str | torch.device | None = None, trust_pickle: bool = False
) -> Generator:
    """Rebuild a Generator from a checkpoint directory. Raises CheckpointError with a clear reason."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory")
    config = read_config(directory)
    try:
        model_config = ModelConfig.from_dict(config["model"])
        sampling = SamplingDefaults(**config.get("sampling", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / 'config.json'}: invalid model config ({e})") from e
    model = DiffusionModel(model_config)
    state = _read_weights(directory, trust_pickle)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            detail.append(f"{len(wrong)} with wrong shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})")
        raise CheckpointError(f"{directory}: weights do not match config.json: " + "; ".join(detail))
    model.load_state_dict(state)
    return Generator(model, config.get("name", directory.name), config.get("family", "custom"), sampling, device)
