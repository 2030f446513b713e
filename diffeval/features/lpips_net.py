"""LPIPS (Zhang et al. 2018) without downloads: the trunk's ImageNet weights come from a local file.

Range trap: LPIPS networks expect inputs in [-1, 1]. Feeding [0, 1] images to ``model(x, y)``
without ``normalize=True`` gives plausible-looking but wrong distances and no error;
:func:`lpips_distance` takes [0, 1] (or uint8) and always passes ``normalize=True``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Hashable, Sequence

import numpy as np
import torch

from .preprocess import resize, to_float01, to_rgb
from .weights import WeightFile, hub_checkpoint

ENV_VAR = "DIFFEVAL_LPIPS_TRUNK_WEIGHTS"
MIN_SIZE = 64  # alexnet's strides and pools need about 64 px
_TRUNK_WEIGHTS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights", "squeeze": "SqueezeNet1_1_Weights"}
_ALIASES = {"vgg16": "vgg", "alexnet": "alex", "squeezenet": "squeeze"}


def trunk_weight_file(net: str = "alex") -> WeightFile:
    """Where the torchvision ImageNet weights of LPIPS's trunk ``net`` are looked for."""
    from torchvision import models

    url = getattr(models, _TRUNK_WEIGHTS[net]).IMAGENET1K_V1.url
    filename = os.path.basename(url)  # e.g. alexnet-owt-7be5be79.pth
    return WeightFile(f"LPIPS {net} trunk weights", filename, ENV_VAR, hub_checkpoint(filename), url)


def load_lpips(net: str = "alex", weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
    """An ``lpips.LPIPS`` model (v0.1 linear layers from the lpips package) with a locally loaded trunk.

    The trunk is built random (``pnet_rand=True``, so torchvision downloads nothing) and then gets
    the ImageNet weights from ``weights``, ``$DIFFEVAL_LPIPS_TRUNK_WEIGHTS`` or the torch hub cache
    (torchvision's file name, e.g. alexnet-owt-7be5be79.pth). Only the ``features.*`` entries are
    used; a state dict holding just those is enough. Missing file -> WeightsNotFoundError.
    """
    import lpips

    net = _ALIASES.get(net, net)
    if net not in _TRUNK_WEIGHTS:
        raise ValueError(f"unknown LPIPS trunk {net!r}; valid: {', '.join(_TRUNK_WEIGHTS)}")
    path = trunk_weight_file(net).resolve(weights)
    state = torch.load(path, map_location="cpu", weights_only=True)
    with warnings.catch_warnings():  # lpips passes torchvision the deprecated pretrained=False
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    model.net.load_state_dict(_trunk_state(model.net.state_dict(), state, path))
    return model.to(device).eval()


def _trunk_state(target: dict, source: dict, path) -> dict:
    """Map torchvision ``features.I.param`` keys to lpips's ``sliceK.I.param`` (lpips keeps I)."""
    mapped = {}
    for key in target:
        _, rest = key.split(".", 1)  # "slice2.3.weight" -> "3.weight"
        if f"features.{rest}" not in source:
            raise ValueError(f"{path} lacks features.{rest}: not a torchvision ImageNet state dict for this trunk")
        mapped[key] = source[f"features.{rest}"]
    return mapped


def lpips_distance(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """LPIPS between pairs: x, y (N, C, H, W) float in [0, 1] or uint8 -> float32 (N,) on the CPU.

    x and y may differ in channels (1 or 3) but not in N, H, W.

    Contract: to_float01 (no quantisation); gray -> RGB; images smaller than 64 px on a side are
    resized to 64 x 64 (torch bilinear, antialias); then ``model(x, y, normalize=True)``, which maps
    [0, 1] to the [-1, 1] the network expects.
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.ndim != 4 or y.ndim != 4 or (x.shape[0], *x.shape[2:]) != (y.shape[0], *y.shape[2:]):
        raise ValueError(f"x and y must be (N, C, H, W) with equal N, H, W; got {tuple(x.shape)} and {tuple(y.shape)}")
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            a, b = (_prepare(t[i : i + batch_size].to(device)) for t in (x, y))
            out.append(model(a, b, normalize=True).flatten().float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def _prepare(images: torch.Tensor) -> torch.Tensor:
    x = to_rgb(to_float01(images))
    if min(x.shape[-2:]) < MIN_SIZE:
        x = resize(x, MIN_SIZE, "bilinear-antialias")
    return x


def mean_pairwise_lpips(
    model,
    images: torch.Tensor,
    groups: Sequence[Hashable] | None = None,
    max_pairs_per_group: int = 50,
    seed: int = 0,
    batch_size: int = 64,
) -> float:
    """Mean LPIPS over distinct pairs within each group: a diversity measure (higher = more diverse).

    Each group (images sharing a label or prompt; ``groups=None`` is one group) contributes all its
    n(n-1)/2 pairs, or ``max_pairs_per_group`` distinct pairs drawn at random (seeded) when it has
    more; the mean is over all contributed pairs together. NaN when no group has two images.
    """
    if max_pairs_per_group < 1:
        raise ValueError(f"max_pairs_per_group must be >= 1, got {max_pairs_per_group}")
    images = torch.as_tensor(images)
    labels = [0] * len(images) if groups is None else list(groups.tolist() if hasattr(groups, "tolist") else groups)
    if len(labels) != len(images):
        raise ValueError(f"{len(labels)} group labels for {len(images)} images")
    members: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(label, []).append(index)
    rng = np.random.default_rng(seed)
    pairs = [p for idx in members.values() for p in _distinct_pairs(idx, max_pairs_per_group, rng)]
    if not pairs:
        return math.nan
    first, second = torch.tensor(pairs).T
    total = 0.0
    for i in range(0, len(pairs), batch_size):  # index per batch: never copies all pairs at once
        a, b = images[first[i : i + batch_size]], images[second[i : i + batch_size]]
        total += float(lpips_distance(model, a, b, batch_size).double().sum())
    return total / len(pairs)


def _distinct_pairs(indices: list[int], limit: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """All unordered pairs of ``indices`` if at most ``limit``, else ``limit`` distinct random ones."""
    n = len(indices)
    total = n * (n - 1) // 2
    if total <= limit:
        return [(indices[i], indices[j]) for i in range(n) for j in range(i + 1, n)]
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < limit:
        i, j = rng.choice(n, size=2, replace=False)
        chosen.add((min(i, j), max(i, j)))
    return [(indices[i], indices[j]) for i, j in sorted(chosen)]
