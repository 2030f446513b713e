"""Checkpoint directories: ``config.json`` (everything to rebuild the model) + ``model.safetensors``.

config.json holds {"format": "diffeval-generator", "version": 1, "name", "family", "model": ModelConfig,
"sampling": SamplingDefaults, "training": free-form provenance}. A latent model's checkpoint carries
its autoencoder: its config in ``model.autoencoder``, its weights under the ``autoencoder.`` prefix
in model.safetensors (as a diffusers pipeline carries its ``vae/``), so it decodes on its own.
Pickled checkpoints (*.pt, *.pth, *.ckpt, *.bin) are refused unless ``trust_pickle=True``; even then they are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from diffeval.io import ModelDirError, read_model_config, read_model_weights, save_model_dir

from .autoencoder import Autoencoder, build_autoencoder
from .config import ModelConfig, SamplingDefaults
from .footprint import check_footprint
from .interface import Generator
from .model import DiffusionModel

FORMAT = "diffeval-generator"
VERSION = 1


class CheckpointError(ModelDirError):
    """A checkpoint directory that cannot be loaded; the message says why and what to do."""


def check_size(config: ModelConfig, where: object = "config") -> tuple[int, int]:
    """(parameters, activation bytes per image) of the config, or CheckpointError when either is over its
    limit (``diffeval.generators.footprint.check_footprint``), before any memory is allocated for the model."""
    try:
        return check_footprint(config, where)
    except ValueError as e:
        raise CheckpointError(str(e)) from None


def save_checkpoint(
    directory: str | Path,
    model: DiffusionModel,
    name: str,
    family: str,
    sampling: SamplingDefaults,
    training: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    autoencoder: Autoencoder | None = None,
) -> Path:
    """Write config.json + model.safetensors (the given state_dict, default the model's own; a latent model's
    ``autoencoder`` weights under the ``autoencoder.`` prefix)."""
    if bool(model.config.autoencoder) != (autoencoder is not None):
        raise ValueError("a latent model's checkpoint needs its autoencoder, and a pixel model's takes none")
    tensors = {k: v.detach().to("cpu", torch.float32) for k, v in (state_dict or model.state_dict()).items()}
    if autoencoder is not None:
        tensors.update(autoencoder.fingerprint_tensors())
    config = {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "family": family,
        "model": model.config.to_dict(),
        "sampling": asdict(sampling),
        "training": training or {},
    }
    return save_model_dir(directory, config, tensors)


def read_config(directory: str | Path) -> dict[str, Any]:
    """A checkpoint's config.json, checked to be a diffeval generator config of this version."""
    try:
        return read_model_config(directory, FORMAT, (VERSION,), "checkpoint")
    except ModelDirError as e:
        raise CheckpointError(str(e)) from None


def _read_weights(directory: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    try:
        return read_model_weights(directory, trust_pickle)
    except ModelDirError as e:
        raise CheckpointError(str(e)) from None


def load_checkpoint(
    directory: str | Path, device: str | torch.device | None = None, trust_pickle: bool = False
) -> Generator:
    """Rebuild a Generator from a checkpoint directory. Raises CheckpointError with a clear reason."""
    directory = Path(directory)
    config = read_config(directory)
    try:
        model_config = ModelConfig.from_dict(config["model"])
        sampling = SamplingDefaults(**config.get("sampling", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / 'config.json'}: invalid model config ({e})") from e
    check_size(model_config, directory / "config.json")
    model = DiffusionModel(model_config)
    state = _read_weights(directory, trust_pickle)
    ae_keys = [k for k in state if k.startswith("autoencoder.")]
    ae_state = {k.removeprefix("autoencoder."): state.pop(k) for k in ae_keys}
    autoencoder = None
    if model_config.autoencoder:
        try:
            autoencoder = build_autoencoder(model_config.autoencoder, ae_state, directory / "model.safetensors")
        except ModelDirError as e:
            raise CheckpointError(str(e)) from None
    elif ae_state:
        raise CheckpointError(f"{directory}: model.safetensors holds autoencoder weights but config.json names no "
                              "autoencoder")
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
            detail.append(
                f"{len(wrong)} with wrong shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})"
            )
        raise CheckpointError(f"{directory}: weights do not match config.json: " + "; ".join(detail))
    model.load_state_dict(state)
    return Generator(model, config.get("name", directory.name), config.get("family", "custom"), sampling, device,
                     autoencoder=autoencoder)
