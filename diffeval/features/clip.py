"""The ``clip`` feature space: open_clip image embeddings (L2-normalised), and text embeddings."""

from __future__ import annotations

import os

import torch

from .base import FeatureExtractor
from .errors import WeightsNotFoundError
from .preprocess import quantize, resize, to_rgb
from .weights import given_weights

ENV_VAR = "DIFFEVAL_CLIP_WEIGHTS"
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def _looks_like_path(value: str) -> bool:
    return os.sep in value or "/" in value or value.endswith(_CHECKPOINT_SUFFIXES)


class ClipExtractor(FeatureExtractor):
    """CLIP image embeddings (dim = the model's embed_dim), unit L2 norm, float32; no logits.

    Weights, first found: ``weights`` (a local checkpoint file), ``$DIFFEVAL_CLIP_WEIGHTS``, then
    ``pretrained``: a local checkpoint file, or an open_clip tag fetched through open_clip's cache
    (Hugging Face hub cache or ~/.cache/clip). An uncached tag offline raises WeightsNotFoundError
    (set HF_HUB_OFFLINE=1 where there is no network, or the hub client retries for about a minute).
    When a file stands in for a known tag, the tag's preprocessing and QuickGELU setting are used
    (the openai ViT-B-32 weights need QuickGELU).

    Contract: quantise to uint8 levels; gray -> RGB by repetition; torch bicubic antialias=True of
    the shorter side to the model's image size, centre crop, clamp to [0, 1]; normalise with the
    model's preprocess mean/std.

    Args:
        arch: open_clip model name, e.g. "ViT-B-32".
        pretrained: open_clip tag (e.g. "openai") or a checkpoint file path.
        weights: a local checkpoint file for ``arch`` (overrides downloading the tag).
        device: where the model runs.
        cache_dir: open_clip's download cache (default: its own).
    """

    num_logits = None

    def __init__(
        self,
        arch: str = "ViT-B-32",
        pretrained: str = "openai",
        weights: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        cache_dir: str | None = None,
    ) -> None:
        import open_clip

        self.arch, self.tag = arch, str(pretrained)
        self.name = f"clip:{arch}:{self.tag}"
        self.device = torch.device(device)
        if open_clip.get_model_config(arch) is None:
            raise ValueError(f"unknown open_clip architecture {arch!r}; see open_clip.list_models()")
        tag_cfg = open_clip.get_pretrained_cfg(arch, self.tag) if not os.path.isfile(self.tag) else {}
        checkpoint = self._checkpoint(weights, tag_cfg)
        kwargs = {}
        if tag_cfg:
            kwargs["force_quick_gelu"] = bool(tag_cfg.get("quick_gelu", False))
            kwargs["force_preprocess_cfg"] = {
                k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg
            }
        try:
            self.model = open_clip.create_model(
                arch, pretrained=checkpoint or self.tag, device=self.device, cache_dir=cache_dir, **kwargs
            ).eval()
        except RuntimeError as error:
            if checkpoint or "Failed to download" not in str(error):
                raise
            raise self._not_cached(tag_cfg, cache_dir) from None
        self.weights_source = checkpoint or f"open_clip tag {self.tag!r}"
        self.tokenizer = open_clip.get_tokenizer(arch)
        cfg = open_clip.get_model_preprocess_cfg(self.model)
        size = cfg["size"]
        if not isinstance(size, int):
            if len(set(size)) != 1:
                raise ValueError(f"non-square CLIP input {size} is not supported")
            size = int(size[0])
        self.input_size = size
        self.mean = torch.tensor(cfg["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.dim = int(open_clip.get_model_config(arch)["embed_dim"])
        mean = ", ".join(f"{v:.4f}" for v in cfg["mean"])
        std = ", ".join(f"{v:.4f}" for v in cfg["std"])
        self.contract = (
            f"quantize floor(x*255+0.5)/255; gray->RGB by repetition; torch bicubic antialias=True of the "
            f"shorter side to {size}, centre crop {size}x{size}, clamp [0, 1]; normalise mean ({mean}) std ({std})"
        )

    def _checkpoint(self, weights, tag_cfg: dict) -> str | None:
        """A local checkpoint path, or None to let open_clip fetch the tag."""
        given = given_weights(weights, ENV_VAR)
        if given is not None:
            place, path = given
            if not path.is_file():
                raise WeightsNotFoundError(
                    f"CLIP weights {path.name} for {self.arch} not found: {place} names {path}, "
                    f"which does not exist. Put the checkpoint there, or pass another file via "
                    f"--clip-weights / weights= or ${ENV_VAR}."
                )
            return str(path)
        if tag_cfg:
            return None
        if os.path.isfile(self.tag):
            return self.tag
        if _looks_like_path(self.tag):
            raise WeightsNotFoundError(
                f"CLIP checkpoint {self.tag} for {self.arch} not found (pretrained= names a file that does not exist); "
                f"weights= not given; ${ENV_VAR} not set. Put the file there, or pass it via --clip-weights / "
                f"weights= or ${ENV_VAR}."
            )
        import open_clip

        tags = open_clip.list_pretrained_tags_by_model(self.arch)
        raise ValueError(
            f"{self.tag!r} is neither an open_clip tag for {self.arch} nor a file; tags: {', '.join(tags) or 'none'}"
        )

    def _not_cached(self, tag_cfg: dict, cache_dir: str | None) -> WeightsNotFoundError:
        hub = tag_cfg.get("hf_hub", "").rstrip("/")
        if hub:
            from huggingface_hub import constants

            source, cache = f"Hugging Face hub {hub}", cache_dir or constants.HF_HUB_CACHE
        else:
            source, cache = tag_cfg.get("url", "?"), cache_dir or os.path.expanduser("~/.cache/clip")
        return WeightsNotFoundError(
            f"CLIP weights for tag {self.tag!r} of {self.arch} are not cached and cannot be downloaded "
            f"(normally from {source}). Looked at: weights= argument: not given; ${ENV_VAR}: not set; "
            f"open_clip cache {cache}: not cached. Download the checkpoint elsewhere and pass the local file "
            f"via --clip-weights / weights= or ${ENV_VAR}, or place it in that cache."
        )

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1 or 3, H, W) -> float32 (N, 3, S, S) normalised with the model's mean/std."""
        x = resize(to_rgb(quantize(images)), self.input_size, "bicubic-antialias-crop")
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def _forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x, normalize=True)

    @torch.no_grad()
    def encode_text(self, prompts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Prompts -> float32 (len(prompts), dim) unit-norm text embeddings on the CPU."""
        if isinstance(prompts, str):
            raise TypeError("encode_text takes a list of prompts, not one string")
        parts = [
            self.model.encode_text(self.tokenizer(list(prompts[i : i + batch_size])).to(self.device), normalize=True)
            .float()
            .cpu()
            for i in range(0, len(prompts), batch_size)
        ]
        return torch.cat(parts) if parts else torch.empty(0, self.dim)
