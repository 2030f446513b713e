"""Feature extractors behind a registry, one name per feature space, plus an LPIPS loader.

``fashion``: the bundled Fashion-MNIST judge (128-d, offline everywhere). ``inception``: the
standard FID Inception (2048-d pool3, 1008 logits). ``clip``: open_clip image embeddings
(``clip:ARCH:TAG`` picks the model). All take (N, C, H, W) uint8 or float in [0, 1]; the shared
resize and quantisation contract is in :mod:`diffeval.features.preprocess`.
"""

from __future__ import annotations

import os

import torch

from .base import FeatureExtractor
from .clip import ClipExtractor
from .errors import WeightsNotFoundError
from .fashion import FashionExtractor
from .inception import InceptionExtractor
from .lpips_net import load_lpips, lpips_distance, mean_pairwise_lpips
from .preprocess import quantize, resize, to_float01, to_gray, to_rgb

FEATURE_SPACES = ("fashion", "inception", "clip")


def get_extractor(
    name: str, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu", **kwargs
) -> FeatureExtractor:
    """The extractor for feature space ``name`` (one of :data:`FEATURE_SPACES`, or "clip:ARCH:TAG").

    ``weights`` is the local weight file (for fashion: a judge directory); ``kwargs`` go to the
    extractor (clip: ``arch``, ``pretrained``, ``cache_dir``).
    """
    space, _, spec = name.partition(":")
    if space not in FEATURE_SPACES or (spec and space != "clip"):
        raise ValueError(f"unknown feature space {name!r}; valid: {', '.join(FEATURE_SPACES)} (or clip:ARCH:TAG)")
    if space == "fashion":
        return FashionExtractor(weights=weights, device=device, **kwargs)
    if space == "inception":
        return InceptionExtractor(weights=weights, device=device, **kwargs)
    if spec:
        arch, _, tag = spec.partition(":")
        if not arch or not tag:
            raise ValueError(f"expected clip:ARCH:TAG, e.g. clip:ViT-B-32:openai, got {name!r}")
        kwargs = {**kwargs, "arch": arch, "pretrained": tag}
    return ClipExtractor(weights=weights, device=device, **kwargs)


__all__ = [
    "FEATURE_SPACES",
    "ClipExtractor",
    "FashionExtractor",
    "FeatureExtractor",
    "InceptionExtractor",
    "WeightsNotFoundError",
    "get_extractor",
    "load_lpips",
    "lpips_distance",
    "mean_pairwise_lpips",
    "quantize",
    "resize",
    "to_float01",
    "to_gray",
    "to_rgb",
]
