"""What a model config would cost before anything is allocated: its parameter count and the peak activation
memory of one forward pass, both measured on PyTorch's meta device (tensors with shapes and no storage).

The activation estimate runs the real ``DiffusionModel.forward`` on meta tensors under a dispatch mode that
adds each new output's bytes when an op makes it and subtracts them when the tensor is freed, and keeps the
peak. It is the inference peak (``torch.no_grad``) for a batch of one image, in bytes of float32, and it
counts attention as the math kernel does (the (L, L) score matrix materialised); flash kernels on a GPU need
less, so the estimate errs high.
"""

from __future__ import annotations

import functools
import json
import os
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .config import ModelConfig
from .model import Conditioning, DiffusionModel

MAX_PARAMS_ENV = "DIFFEVAL_MAX_PARAMS"
DEFAULT_MAX_PARAMS = 2_000_000_000  # 8 GB of float32 weights; the bundled models have 1-3 M
MAX_ACTIVATION_ENV = "DIFFEVAL_MAX_ACTIVATION_GB"
DEFAULT_MAX_ACTIVATION_GB = 16.0  # GiB for one image's forward pass; the bundled models need under 1 MiB


class PeakBytes(TorchDispatchMode):
    """Tracks the live bytes of tensors made by ops while active (inputs and parameters are not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._storages: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self._storages.discard(key)
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key in self._storages:  # a view or an in-place result: no new memory
                continue
            nbytes = storage.nbytes()
            self._storages.add(key)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(t, self._free, key, nbytes)
        return out


def _meta_inputs(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor, Conditioning]:
    x = torch.empty(1, *config.model_shape, device="meta")
    t = torch.empty(1, device="meta")
    if config.conditioning == "class":
        return x, t, Conditioning(labels=torch.zeros(1, dtype=torch.long, device="meta"))
    if config.conditioning == "text":
        length = int(config.text_encoder.get("max_len", 16))
        ids = torch.zeros(1, length, dtype=torch.long, device="meta")
        return x, t, Conditioning(ids=ids, mask=torch.ones(1, length, dtype=torch.bool, device="meta"))
    return x, t, Conditioning()


@functools.lru_cache(maxsize=64)
def _footprint(config_json: str, max_params: int) -> tuple[int, int]:
    config = ModelConfig.from_dict(json.loads(config_json))
    with torch.device("meta"):
        model = DiffusionModel(config)
    n = sum(p.numel() for p in model.parameters())
    if n > max_params:  # no need to run it
        return n, 0
    x, t, cond = _meta_inputs(config)
    tracker = PeakBytes()
    with torch.no_grad(), tracker:
        model(x, t, cond)
    return n, tracker.peak


def footprint(config: ModelConfig, max_params: int | None = None) -> tuple[int, int]:
    """(parameters, peak activation bytes of one image's forward pass), measured on the meta device; the
    forward is skipped (0 bytes) when the parameters are already over ``max_params``. Memoised by config."""
    return _footprint(json.dumps(config.to_dict(), sort_keys=True), max_params or 2**62)


def max_params() -> int:
    """The parameter limit: ``$DIFFEVAL_MAX_PARAMS`` (default 2e9)."""
    return _limits()[0]


def _limits() -> tuple[int, float]:
    try:
        return (int(float(os.environ.get(MAX_PARAMS_ENV) or DEFAULT_MAX_PARAMS)),
                float(os.environ.get(MAX_ACTIVATION_ENV) or DEFAULT_MAX_ACTIVATION_GB))
    except ValueError:
        raise ValueError(f"{MAX_PARAMS_ENV} and {MAX_ACTIVATION_ENV} must be numbers") from None


def check_footprint(config: ModelConfig, where: object = "config") -> tuple[int, int]:
    """(parameters, activation bytes per image) of the config; ValueError naming the limit and the environment
    variable that raises it when either is over ``$DIFFEVAL_MAX_PARAMS`` (default 2e9) or
    ``$DIFFEVAL_MAX_ACTIVATION_GB`` (GiB for one image's forward pass, default 16)."""
    max_params, max_gb = _limits()
    try:
        n, act = footprint(config, max_params)
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{where}: the model config cannot be built or run ({str(e).splitlines()[0]})") from None
    if n > max_params:
        raise ValueError(f"{where}: the model would have {n:,} parameters ({4 * n / 2**30:.1f} GiB of float32), "
                         f"over the limit of {max_params:,}; set {MAX_PARAMS_ENV} to allow more")
    if act > max_gb * 2**30:
        raise ValueError(f"{where}: one image's forward pass would need {act / 2**30:,.1f} GiB of activations, "
                         f"over the limit of {max_gb:g} GiB; set {MAX_ACTIVATION_ENV} to allow more")
    return n, act
