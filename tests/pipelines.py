"""Tiny random-weight diffusers pipelines, built and saved by the tests (nothing is downloaded), the way
diffusers' own tests build their dummy components: a few channels, one block, 8x8 latents."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars)))


def tiny_clip_tokenizer(folder: Path, max_length: int = 77):
    """A CLIPTokenizer from files written here: every byte as a token (and as a word end), no merges."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)


def tiny_clip_text_encoder(vocab_size: int, dim: int = 32, max_length: int = 77):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=dim, intermediate_size=2 * dim,
                                        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=max_length,
                                        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
                                        pad_token_id=vocab_size - 1))


def tiny_vae(latent_channels: int = 4):
    """A one-downsample AutoencoderKL: 16x16 RGB images <-> 8x8 latents."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                         latent_channels=latent_channels, norm_num_groups=4, sample_size=16)


def save_tiny_sd(folder: Path, prediction_type: str = "epsilon", seed: int = 0) -> Path:
    """An SD 1.x-style text pipeline (UNet2DConditionModel with cross-attention, CLIP text encoder, VAE, DDIM
    scheduler; ``prediction_type="v_prediction"`` for the SD 2.x kind), saved as safetensors."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = tiny_clip_tokenizer(Path(tmp))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=4, norm_num_groups=4)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                              clip_sample=False, set_alpha_to_one=False, prediction_type=prediction_type)
    pipe = StableDiffusionPipeline(vae=tiny_vae(), text_encoder=tiny_clip_text_encoder(len(tokenizer)),
                                   tokenizer=tokenizer, unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def save_tiny_dit(folder: Path, seed: int = 0) -> Path:
    """A DiT class pipeline (DiTTransformer2DModel over 8x8 latents, VAE, DDIM scheduler). DiTPipeline asks for
    class 1000 as the null class, so the class table has ImageNet's 1000 rows (+1); id2label names 10 of them."""
    from diffusers import DDIMScheduler, DiTPipeline, DiTTransformer2DModel

    torch.manual_seed(seed)
    transformer = DiTTransformer2DModel(sample_size=8, patch_size=2, in_channels=4, out_channels=8, num_layers=2,
                                        num_attention_heads=2, attention_head_dim=8, num_embeds_ada_norm=1000,
                                        norm_num_groups=4)
    labels = {i: name for i, name in enumerate(["top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                                                 "sneaker", "bag", "boot"])}
    pipe = DiTPipeline(transformer=transformer, vae=tiny_vae(), scheduler=DDIMScheduler(), id2label=labels)
    pipe.save_pretrained(folder)
    return folder
