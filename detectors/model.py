"""The detector: a pixel branch (torchvision ResNet adapted to small images), a frequency branch (a
small CNN on the global log-magnitude spectrum, an MLP on its radial profile and a small CNN on the local
4x4 block-DCT log spectrum), and a fusion head that outputs one logit: P(generated) = sigmoid(logit).

``branches`` selects the ablation: "pixel", "frequency" or "both"; ``local_block=0`` drops the local
spectrum. Checkpoints are a directory with ``config.json`` (version 2; version 1, from before the local
spectrum, loads with ``local_block=0``) and ``model.safetensors`` (pickles are refused unless trusted, as
for generators).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from diffeval.io import read_model_config, read_model_weights, save_model_dir

from .spectrum import local_log_spectrum, spectral_features

FORMAT = "diffeval-detector"
RESNETS = ("resnet18", "resnet34", "resnet50")
BRANCHES = ("pixel", "frequency", "both")


@dataclass
class DetectorConfig:
    """image_size, channels: input shape; resnet: torchvision name (resnet18/34/50); pretrained: optional
    weight file for the ResNet (ImageNet-style state dict; conv1/fc are replaced, so only the rest loads);
    stem_stride: the ResNet's first convolution's stride (1 keeps 28x28 feature maps in the first stage;
    2 is about 4x cheaper on a CPU); local_block: block size of the frequency branch's local (block-DCT) log
    spectrum, 0 for none (image_size must be a multiple); spec_channels: width of the spectrum CNNs; hidden: fusion
    MLP width."""

    branches: str = "both"
    image_size: int = 28
    channels: int = 1
    resnet: str = "resnet18"
    pretrained: str | None = None
    stem_stride: int = 1
    local_block: int = 4
    spec_channels: int = 32
    hidden: int = 128
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resnet not in RESNETS:
            raise ValueError(f"resnet must be one of {', '.join(RESNETS)}, got {self.resnet!r}")
        limits = {"image_size": (8, 1024), "channels": (1, 3), "stem_stride": (1, 2), "spec_channels": (1, 512),
                  "hidden": (1, 4096)}
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
        if self.branches not in BRANCHES:
            raise ValueError(f"branches must be one of {', '.join(BRANCHES)}, got {self.branches!r}")
        if self.local_block < 0 or (self.local_block and self.image_size % self.local_block):
            raise ValueError(f"local_block must be 0 or divide image_size {self.image_size}, got {self.local_block}")

    @classmethod
    def from_dict(cls, d: dict) -> DetectorConfig:
        """From its ``asdict`` form as saved in config.json; version-1 dicts, from before the local spectrum,
        have no ``local_block`` and get 0 (what they were trained with), not today's default."""
        return cls(**{"local_block": 0, **d})


def small_image_resnet(
    name: str, channels: int, pretrained: str | None = None, stem_stride: int = 1
) -> tuple[nn.Module, int]:
    """A torchvision ResNet with a 3x3 stem of ``stem_stride`` and no max-pool (for 28-64 px images), fc removed."""
    if name not in RESNETS:  # an allow-list: a config never names an arbitrary torchvision builder
        raise ValueError(f"unknown detector backbone {name!r}; choose one of {', '.join(RESNETS)}")
    net = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained ResNet weights {path} not found (pass a local state-dict file)")
        state = (
            load_file(str(path))
            if path.suffix == ".safetensors"
            else torch.load(path, map_location="cpu", weights_only=True)
        )
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith(("conv1.", "fc."))}, strict=False)
    net.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=stem_stride, padding=1, bias=False)
    net.maxpool = nn.Identity()
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


class FrequencyBranch(nn.Module):
    """Three spectral views, each to features, concatenated:
    global log spectrum (N, C, H, W) -> CNN; its radial profile (N, C, R) -> MLP; and, when
    ``local_block`` > 0, the local (block-DCT) log spectrum (N, C * b^2, H / b, W / b) -> CNN."""

    def __init__(self, channels: int, image_size: int, width: int, local_block: int = 0) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)  # spectra have large, position-dependent offsets
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        rings = image_size // 2 + 1
        self.profile = nn.Sequential(nn.BatchNorm1d(channels * rings), nn.Linear(channels * rings, width), nn.ReLU())
        self.dim = 3 * width
        self.local_block = local_block
        if local_block:
            k = channels * local_block ** 2
            self.local = nn.Sequential(  # a 1x1 layer reads each block's own spectrum, then 3x3 layers mix blocks
                nn.BatchNorm2d(k), nn.Conv2d(k, width, 1), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.dim += 2 * width

    def forward(self, spectrum: torch.Tensor, profile: torch.Tensor, local: torch.Tensor | None = None) -> torch.Tensor:
        parts = [self.cnn(self.norm(spectrum)), self.profile(profile.flatten(1))]
        if self.local_block:
            parts.append(self.local(local))
        return torch.cat(parts, dim=1)


class Detector(nn.Module):
    """(N, C, H, W) images in [0, 1] -> (N,) logits (positive: generated)."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        dim = 0
        if config.branches in ("pixel", "both"):
            self.pixel, pdim = small_image_resnet(config.resnet, config.channels, config.pretrained, config.stem_stride)
            dim += pdim
        if config.branches in ("frequency", "both"):
            self.frequency = FrequencyBranch(config.channels, config.image_size, config.spec_channels,
                                             config.local_block)
            dim += self.frequency.dim
        self.head = nn.Sequential(nn.Linear(dim, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        c = self.config
        if images.shape[1:] != (c.channels, c.image_size, c.image_size):
            raise ValueError(
                f"detector takes ({c.channels}, {c.image_size}, {c.image_size}) images, got {tuple(images.shape[1:])}"
            )
        parts: list[torch.Tensor] = []
        if hasattr(self, "pixel"):
            parts.append(self.pixel(images * 2 - 1))
        if hasattr(self, "frequency"):
            spec, prof = spectral_features(images)
            local = local_log_spectrum(images, c.local_block) if c.local_block else None  # on images' device
            parts.append(self.frequency(spec.to(images.device), prof.to(images.device), local))
        return self.head(torch.cat(parts, dim=1)).squeeze(1)

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N,) P(generated) in [0, 1], float32 on CPU (eval mode)."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out = torch.cat([torch.sigmoid(self(images[i:i + batch_size].to(device).float())).cpu()
                         for i in range(0, len(images), batch_size)]) if len(images) else torch.empty(0)
        self.train(was)
        return out


def save_detector(model: Detector, directory: str | Path, info: dict | None = None) -> Path:
    """Write config.json + model.safetensors (atomically) into ``directory``."""
    config = {"format": FORMAT, "version": 2, "model": asdict(model.config), "info": info or {}}
    return save_model_dir(directory, config, model.state_dict())


def load_detector(directory: str | Path, device: str | torch.device = "cpu", trust_pickle: bool = False) -> Detector:
    """Load a detector directory (config versions 1 and 2); a pickle checkpoint is refused unless ``trust_pickle``."""
    raw = read_model_config(directory, FORMAT, (1, 2), "detector")
    model_cfg = dict(raw["model"])
    model_cfg["pretrained"] = None  # the saved weights already hold whatever was pretrained
    model = Detector(DetectorConfig.from_dict(model_cfg))
    state = read_model_weights(directory, trust_pickle)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{directory}: weights do not match config.json: {str(error).splitlines()[0]}") from None
    return model.to(device).eval()
