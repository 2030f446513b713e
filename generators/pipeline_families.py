"""Per-family conditioning and denoiser calls of diffusers pipelines, as each pipeline's own ``__call__`` does them.

A family turns prompts or labels into the denoiser's keyword arguments for a batch (and those of the null
condition the pipeline's classifier-free guidance uses), and calls the denoiser. ``model_output`` returns what
the scheduler consumes: eps or v (UNet/DiT/PixArt, the learned-variance half dropped) or the flow velocity (SD3).
Families: ``unet-text`` (SD 1.x/2.x), ``unet-text-xl`` (SDXL: two text encoders, pooled embeddings, size
conditioning), ``sd3`` (SD3Transformer2DModel), ``pixart`` (PixArt-alpha, T5), ``dit`` (class labels, null class
1000), ``unconditional`` (UNet2DModel over pixels or a VQ/KL latent).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Kwargs = dict[str, object]


def _cat(a: Kwargs, b: Kwargs) -> Kwargs:
    """Two batches of denoiser keyword arguments as one (tensors concatenated on dim 0)."""
    out = {}
    for k, v in a.items():
        if isinstance(v, dict):
            out[k] = _cat(v, b[k])
        elif isinstance(v, torch.Tensor):
            out[k] = torch.cat([v, b[k]])
        else:
            out[k] = v
    return out


class Family:
    """Base: ``encode(prompts, labels, n)`` -> (cond, null) keyword batches; ``call(x, t, kw)`` -> model output."""

    name = "unconditional"
    conditioning = "none"

    def __init__(self, pipe) -> None:
        self.pipe = pipe
        self.denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    @property
    def dtype(self) -> torch.dtype:
        return self.denoiser.dtype

    def encode(self, n: int, prompts: Sequence[str] | None = None, labels=None) -> tuple[Kwargs, Kwargs]:
        return {}, {}

    def null(self, n: int) -> Kwargs:
        """The null condition of ``n`` samples (what the pipeline's guidance uses as unconditional)."""
        return self.encode(n)[1]

    def call(self, x: torch.Tensor, t: torch.Tensor, kw: Kwargs) -> torch.Tensor:
        return self.denoiser(x, t, **kw).sample

    def _split_variance(self, out: torch.Tensor, channels: int) -> torch.Tensor:
        """Drop a learned-variance half (DiT, PixArt output 2C channels)."""
        return out[:, :channels] if out.shape[1] == 2 * channels else out

    @torch.no_grad()
    def model_output(self, x: torch.Tensor, t, cond: Kwargs, null: Kwargs, guidance: float) -> torch.Tensor:
        """The scheduler's model output at latents x (N, C, h, w), timestep t, float32. Guidance above 1 mixes
        null + g * (cond - null), as the diffusers pipelines do; at or below 1 the condition alone."""
        x = x.to(self.device, self.dtype)
        n = x.shape[0]
        t = torch.as_tensor(t, device=self.device)
        if guidance > 1:
            tt = t.reshape(-1).expand(2 * n) if t.numel() == 1 else torch.cat([t, t])
            out = self.call(torch.cat([x, x]), tt, _cat(null, cond)).float()
            u, c = out.chunk(2)
            return u + guidance * (c - u)
        return self.call(x, t.reshape(-1).expand(n) if t.numel() == 1 else t, cond).float()


class UNetText(Family):
    """SD 1.x / 2.x: CLIP text embeddings as cross-attention context."""

    name, conditioning = "unet-text", "text"

    def encode(self, n, prompts=None, labels=None):
        texts = list(prompts) if prompts is not None else [""] * n
        cond, null = self.pipe.encode_prompt(texts, self.device, 1, True)
        return {"encoder_hidden_states": cond}, {"encoder_hidden_states": null}

    def call(self, x, t, kw):
        return self.denoiser(x, t, encoder_hidden_states=kw["encoder_hidden_states"]).sample


class UNetTextXL(Family):
    """SDXL: two CLIP encoders (penultimate states concatenated), the second's pooled embedding and the size
    conditioning (original size, crop (0, 0), target size) as added conditions."""

    name, conditioning = "unet-text-xl", "text"

    def __init__(self, pipe, height: int, width: int) -> None:
        super().__init__(pipe)
        self.size = (height, width)

    def encode(self, n, prompts=None, labels=None):
        texts = list(prompts) if prompts is not None else [""] * n
        pe, npe, pooled, npooled = self.pipe.encode_prompt(prompt=texts, device=self.device, num_images_per_prompt=1,
                                                           do_classifier_free_guidance=True)
        enc2 = self.pipe.text_encoder_2
        proj = int(pooled.shape[-1]) if enc2 is None else enc2.config.projection_dim
        ids = self.pipe._get_add_time_ids(self.size, (0, 0), self.size, dtype=pe.dtype,
                                          text_encoder_projection_dim=proj).to(self.device).repeat(n, 1)
        return ({"encoder_hidden_states": pe, "added_cond_kwargs": {"text_embeds": pooled, "time_ids": ids}},
                {"encoder_hidden_states": npe, "added_cond_kwargs": {"text_embeds": npooled, "time_ids": ids}})

    def call(self, x, t, kw):
        return self.denoiser(x, t, encoder_hidden_states=kw["encoder_hidden_states"],
                             added_cond_kwargs=kw["added_cond_kwargs"]).sample


class SD3(Family):
    """SD3: joint-attention transformer over latents and text tokens (CLIP-L/G, T5 or zeros), pooled CLIP."""

    name, conditioning = "sd3", "text"

    def encode(self, n, prompts=None, labels=None):
        texts = list(prompts) if prompts is not None else [""] * n
        pe, npe, pooled, npooled = self.pipe.encode_prompt(prompt=texts, prompt_2=None, prompt_3=None,
                                                           device=self.device, do_classifier_free_guidance=True)
        return ({"encoder_hidden_states": pe, "pooled_projections": pooled},
                {"encoder_hidden_states": npe, "pooled_projections": npooled})

    def call(self, x, t, kw):
        return self.denoiser(hidden_states=x, timestep=t, **kw).sample


class PixArt(Family):
    """PixArt-alpha: T5 embeddings with their attention mask; learned variance dropped."""

    name, conditioning = "pixart", "text"

    def encode(self, n, prompts=None, labels=None):
        texts = list(prompts) if prompts is not None else [""] * n
        pe, pm, npe, nm = self.pipe.encode_prompt(texts, do_classifier_free_guidance=True, negative_prompt="",
                                                  device=self.device, clean_caption=False)
        return ({"encoder_hidden_states": pe, "encoder_attention_mask": pm},
                {"encoder_hidden_states": npe, "encoder_attention_mask": nm})

    def call(self, x, t, kw):
        out = self.denoiser(x, timestep=t, added_cond_kwargs={"resolution": None, "aspect_ratio": None}, **kw).sample
        return self._split_variance(out, x.shape[1])


class DiT(Family):
    """DiT: class labels; DiTPipeline's null class is 1000 whatever the table size; learned variance dropped."""

    name, conditioning = "dit", "class"
    NULL_CLASS = 1000

    def encode(self, n, prompts=None, labels=None):
        lab = torch.full((n,), self.NULL_CLASS) if labels is None else torch.as_tensor(labels).reshape(-1).long()
        lab = torch.where(lab < 0, self.NULL_CLASS, lab).to(self.device)
        return {"class_labels": lab}, {"class_labels": torch.full((n,), self.NULL_CLASS, device=self.device)}

    def call(self, x, t, kw):
        return self._split_variance(self.denoiser(x, timestep=t, class_labels=kw["class_labels"]).sample, x.shape[1])


def family_of(pipe, height: int, width: int) -> Family:
    """The family of a loaded pipeline, from its components."""
    if getattr(pipe, "transformer", None) is not None:
        kind = type(pipe.transformer).__name__
        if kind == "SD3Transformer2DModel":
            return SD3(pipe)
        if kind == "PixArtTransformer2DModel":
            return PixArt(pipe)
        if kind == "DiTTransformer2DModel" or hasattr(pipe, "id2label") or "DiT" in type(pipe).__name__:
            return DiT(pipe)
        raise ValueError(f"pipeline {type(pipe).__name__} with a {kind}: no diffeval family for it yet")
    if getattr(pipe, "text_encoder_2", None) is not None or "XL" in type(pipe).__name__:
        return UNetTextXL(pipe, height, width)
    if getattr(pipe, "text_encoder", None) is not None:
        return UNetText(pipe)
    return Family(pipe)

