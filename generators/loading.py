"""Loading generators: bundled preset names, checkpoint directories and diffusers pipeline directories."""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoints import CheckpointError, load_checkpoint
from .diffusers_pipeline import DiffusersGenerator, check_dtype, is_diffusers_dir
from .interface import Generator
from .names import PRESET_NAMES

BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_names() -> list[str]:
    """Names of the bundled checkpoints present in this installation, in preset order."""
    return [n for n in PRESET_NAMES if (BUNDLED_DIR / n / "config.json").is_file()]


def load_generator(
    name_or_path: str | Path, device: str | torch.device | None = None, trust_pickle: bool = False,
    dtype: str = "float32",
) -> Generator | DiffusersGenerator:
    """A bundled preset name (``ddpm``, ``sd1``, ``sd2``, ``dit``, ``sd3``, ``sd3-reflow``), a checkpoint
    directory (``config.json`` + ``model.safetensors``) or a diffusers pipeline directory (``model_index.json``,
    read with ``local_files_only``; needs the ``diffusers`` extra). ``dtype`` (float32, float16, bfloat16) applies
    to pipelines; the bundled models run in float32."""
    text = str(name_or_path)
    path = Path(text)
    if dtype != "float32" and not (path.is_dir() and is_diffusers_dir(path)):
        check_dtype(dtype)
        raise ValueError(f"--dtype {dtype}: the bundled models and checkpoints run in float32 (dtypes apply to "
                         "diffusers pipelines)")
    if text in PRESET_NAMES:
        path = BUNDLED_DIR / text
        if not (path / "config.json").is_file():
            raise CheckpointError(
                f"bundled checkpoint {text!r} is not installed (expected {path}); train it with "
                f"`diffeval train --preset {text} --out DIR` and load DIR"
            )
        return load_checkpoint(path, device)
    if path.is_dir():
        if is_diffusers_dir(path):
            return DiffusersGenerator(path, device, trust_pickle, dtype)
        return load_checkpoint(path, device, trust_pickle)
    raise CheckpointError(
        f"unknown generator {text!r}: not a bundled name ({', '.join(PRESET_NAMES)}), a checkpoint directory or a "
        "diffusers pipeline directory"
    )
