"""The ``inception`` feature space: the standard FID Inception (pt_inception-2015-12-05).

pytorch-fid's ``InceptionV3(use_fid_inception=True)`` builds the network and then fetches its
weights with ``pytorch_fid.inception.load_state_dict_from_url``. We find the file ourselves
(explicit path, ``$DIFFEVAL_INCEPTION_WEIGHTS``, the torch hub cache), load it with
``weights_only=True``, and hand it to pytorch-fid's constructor by replacing that one function
for the duration of the call (:func:`_serve_state_dict`). The network is then pytorch-fid's own
code, block for block, so our statistics interchange with pytorch-fid's ``.npz`` files.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import torch
from pytorch_fid import inception as fid_inception
from torch import nn

from .base import FeatureExtractor
from .preprocess import quantize, resize, to_rgb
from .weights import WeightFile, hub_checkpoint

FID_WEIGHTS_URL = fid_inception.FID_WEIGHTS_URL
FID_WEIGHTS_FILE = os.path.basename(FID_WEIGHTS_URL)  # pt_inception-2015-12-05-6726825d.pth
ENV_VAR = "DIFFEVAL_INCEPTION_WEIGHTS"
_PATCH_LOCK = threading.Lock()  # one replacement of pytorch-fid's module attribute at a time


def inception_weight_file() -> WeightFile:
    """Where the FID Inception weights are looked for (the cache path follows ``torch.hub.get_dir()``)."""
    cache = hub_checkpoint(FID_WEIGHTS_FILE)
    return WeightFile("FID Inception weights", FID_WEIGHTS_FILE, ENV_VAR, cache, FID_WEIGHTS_URL)


@contextlib.contextmanager
def _serve_state_dict(state_dict: dict[str, torch.Tensor]) -> Iterator[None]:
    """Make pytorch-fid's weight download return ``state_dict`` instead, while the block runs.

    ``fid_inception_v3()`` calls the module-level name ``load_state_dict_from_url(FID_WEIGHTS_URL)``;
    any other URL requested meanwhile is refused rather than downloaded. The original function is
    restored on exit, also when construction fails.
    """

    def serve(url: str, *args, **kwargs) -> dict[str, torch.Tensor]:
        if url != FID_WEIGHTS_URL:
            raise RuntimeError(f"pytorch-fid asked for unexpected weights {url}")
        return state_dict

    with _PATCH_LOCK:
        original = fid_inception.load_state_dict_from_url
        fid_inception.load_state_dict_from_url = serve
        try:
            yield
        finally:
            fid_inception.load_state_dict_from_url = original


def build_fid_inception(state_dict: dict[str, torch.Tensor], **kwargs) -> fid_inception.InceptionV3:
    """pytorch-fid's ``InceptionV3(**kwargs, use_fid_inception=True)`` with the given weights (no download)."""
    with _serve_state_dict(state_dict):
        return fid_inception.InceptionV3(use_fid_inception=True, **kwargs).eval()


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random FID-Inception checkpoint with the keys and shapes pytorch-fid's loader expects.

    For tests and benchmarks. Convolutions get He-normal weights and batch norms identity
    statistics, so pool3 activations are O(1) rather than vanishing.
    """
    generator = torch.Generator().manual_seed(seed)
    # pytorch-fid's fid_inception_v3() up to (not including) its weight download.
    net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
    net.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("conv.weight"):
            fan_in = value[0].numel()
            value = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif key.endswith("bn.bias") or key == "fc.bias":
            value = torch.randn(value.shape, generator=generator) * 0.1
        elif key == "fc.weight":
            value = torch.randn(value.shape, generator=generator) * 2048**-0.5
        state[key] = value.clone()
    return state


class InceptionExtractor(FeatureExtractor):
    """FID Inception pool3 features (dim 2048) and 1008-way logits (for the Inception Score).

    Contract: quantise to uint8 levels (k / 255); gray -> RGB by repetition; bilinear resize to
    299 x 299 (align_corners=False, no antialias: pytorch-fid's); scale to [-1, 1] by 2x - 1. This
    is what pytorch-fid computes for the same images saved as PNG.

    The network runs in channels_last memory layout (faster convolutions; same result to ~1e-6).

    Logits are the checkpoint's ``fc`` (1008 x 2048 weight, bias) applied to the pool3 features,
    as the original TF graph does (no dropout at evaluation).

    Args:
        weights: path to pt_inception-2015-12-05-6726825d.pth; default ``$DIFFEVAL_INCEPTION_WEIGHTS``,
            then ``torch.hub.get_dir()/checkpoints/``. A missing file raises WeightsNotFoundError.
        device: where the network runs.
    """

    input_size = 299
    dim = 2048
    num_logits = 1008
    contract = (
        "quantize floor(x*255+0.5)/255; gray->RGB by repetition; resize to 299x299 torch bilinear "
        "align_corners=False without antialias (pytorch-fid); scale 2x-1 to [-1, 1]"
    )

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> None:
        self.name = "inception"
        self.device = torch.device(device)
        path = inception_weight_file().resolve(weights)
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        self.weights_source = str(path)
        self.net = build_fid_inception(state_dict, output_blocks=(3,), resize_input=False, normalize_input=False)
        self.fc = nn.Linear(2048, 1008)
        self.fc.load_state_dict({"weight": state_dict["fc.weight"], "bias": state_dict["fc.bias"]})
        # channels_last: oneDNN's faster convolution layout (1.25x on CPU here); features equal to ~2e-6
        self.net.to(self.device, memory_format=torch.channels_last)
        self.fc.to(self.device).eval()

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1 or 3, H, W) -> float32 (N, 3, 299, 299) in [-1, 1]."""
        return 2 * resize(to_rgb(quantize(images)), self.input_size, "bilinear") - 1

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))[0].flatten(1)

    def _forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self._forward_features(x))

    @torch.no_grad()
    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.as_tensor(features, dtype=torch.float32).to(self.device)).float().cpu()

