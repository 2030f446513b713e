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


def _clip_tokenizer():
    with tempfile.TemporaryDirectory() as tmp:
        return tiny_clip_tokenizer(Path(tmp))


def tiny_text_unet(cross_attention_dim: int, **extra):
    """A UNet2DConditionModel over 8x8x4 latents with one cross-attention level (``extra``: SDXL's added
    conditions)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=cross_attention_dim, attention_head_dim=4, norm_num_groups=4,
                                **extra)


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


def cycle_train_vae(vae, steps: int, seed: int = 0):
    """Train a random VAE for ``steps`` Adam steps so that encode(decode(z)) ~ z on N(0, 1) latents: a random
    VAE does not invert (relative latent error ~1), so image-space inversion and Tree-Ring detection would test
    nothing. 200 steps (~15 s on 2 cores) bring the error to ~0.5, about that of SD's VAE on its own samples."""
    g = torch.Generator().manual_seed(seed)
    scale = vae.config.scaling_factor
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    for _ in range(steps):
        z = torch.randn(32, vae.config.latent_channels, 8, 8, generator=g)
        x = vae.decode(z / scale).sample.clamp(-1, 1)
        loss = (vae.encode(x).latent_dist.mean * scale - z).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return vae.eval().requires_grad_(False)


def save_tiny_sd(folder: Path, prediction_type: str = "epsilon", seed: int = 0, vae_steps: int = 0) -> Path:
    """An SD 1.x-style text pipeline (UNet2DConditionModel with cross-attention, CLIP text encoder, VAE, DDIM
    scheduler; ``prediction_type="v_prediction"`` for the SD 2.x kind), saved as safetensors. ``vae_steps`` > 0:
    a VAE trained that long to invert its own decodings (``cycle_train_vae``)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    torch.manual_seed(seed)
    tokenizer = _clip_tokenizer()
    unet = tiny_text_unet(cross_attention_dim=32)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1,
                              clip_sample=False, set_alpha_to_one=False, prediction_type=prediction_type)
    vae = cycle_train_vae(tiny_vae(), vae_steps) if vae_steps else tiny_vae()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=tiny_clip_text_encoder(len(tokenizer)),
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
    pipe = DiTPipeline(transformer=transformer, vae=tiny_vae(), scheduler=DDIMScheduler(clip_sample=False),
                       id2label=labels)
    pipe.save_pretrained(folder)
    return folder


def tiny_clip_with_projection(vocab_size: int, dim: int = 32, projection_dim: int = 32, max_length: int = 77):
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    return CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=dim, intermediate_size=2 * dim, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=max_length, projection_dim=projection_dim,
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1))


def save_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """An SDXL-style pipeline: two CLIP text encoders (the second with a projection: the pooled embedding),
    a UNet with ``text_time`` added conditions (pooled text + 6 size numbers), VAE, Euler scheduler."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    torch.manual_seed(seed)
    tok = _clip_tokenizer()
    unet = tiny_text_unet(cross_attention_dim=64, use_linear_projection=True, addition_embed_type="text_time",
                          addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=tiny_vae(), text_encoder=tiny_clip_text_encoder(len(tok)), tokenizer=tok,
                                     text_encoder_2=tiny_clip_with_projection(len(tok)), tokenizer_2=tok, unet=unet,
                                     scheduler=scheduler)
    pipe.save_pretrained(folder)
    return folder


def save_tiny_sd3(folder: Path, seed: int = 0) -> Path:
    """An SD3-style flow pipeline: SD3Transformer2DModel (joint attention, patch 1), two CLIP encoders with
    projections (no T5: SD3 then uses zeros), a VAE with a shift factor, FlowMatchEulerDiscreteScheduler."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )

    torch.manual_seed(seed)
    tok = _clip_tokenizer()
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=1, in_channels=4, out_channels=4, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=64, pooled_projection_dim=64)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                        latent_channels=4, norm_num_groups=4, sample_size=16, shift_factor=0.0609,
                        scaling_factor=1.5305, use_quant_conv=False, use_post_quant_conv=False)
    pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                    vae=vae, text_encoder=tiny_clip_with_projection(len(tok)), tokenizer=tok,
                                    text_encoder_2=tiny_clip_with_projection(len(tok)), tokenizer_2=tok,
                                    text_encoder_3=None, tokenizer_3=None)
    pipe.save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())  # diffusers leaves None components out
    index.update(text_encoder_3=[None, None], tokenizer_3=[None, None])
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder


def save_tiny_ldm(folder: Path, seed: int = 0) -> Path:
    """An unconditional latent pipeline (LDMPipeline): UNet2DModel over 8x8x3 VQ latents, VQModel, DDIM."""
    from diffusers import DDIMScheduler, LDMPipeline, UNet2DModel, VQModel

    torch.manual_seed(seed)
    vq = VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                 latent_channels=3, num_vq_embeddings=32, norm_num_groups=4, sample_size=16)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(16, 32),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4)
    LDMPipeline(vqvae=vq, unet=unet, scheduler=DDIMScheduler(clip_sample=False)).save_pretrained(folder)
    return folder


def save_tiny_ddpm(folder: Path, seed: int = 0) -> Path:
    """An unconditional pixel pipeline (DDPMPipeline): UNet2DModel on 8x8 RGB, DDPM scheduler."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(16, 32),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(folder)
    return folder


def tiny_t5_tokenizer(max_length: int = 120):
    """A T5 (Unigram) tokenizer from a vocabulary written here: T5's three specials, the word-start mark and every
    printable ASCII character alone and after it. No sentencepiece model is needed."""
    from transformers import T5Tokenizer

    chars = [chr(c) for c in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(c, -3.0) for c in chars] + [("\u2581" + c, -2.5) for c in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_length)


def save_tiny_pixart(folder: Path, seed: int = 0) -> Path:
    """A PixArt-alpha pipeline: PixArtTransformer2DModel (adaLN-single, patch 2, learned variance) over 8x8
    latents, a 2-layer T5 encoder with the tokenizer above, VAE, DDIM."""
    from diffusers import DDIMScheduler, PixArtAlphaPipeline, PixArtTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tok = tiny_t5_tokenizer()
    encoder = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                      pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    transformer = PixArtTransformer2DModel(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8,
                                           num_attention_heads=3, caption_channels=32, in_channels=4,
                                           cross_attention_dim=24, out_channels=8, attention_bias=True,
                                           activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
                                           norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6)
    PixArtAlphaPipeline(tokenizer=tok, text_encoder=encoder, vae=tiny_vae(), transformer=transformer,
                        scheduler=DDIMScheduler(clip_sample=False)).save_pretrained(folder)
    return folder


BUILDERS = {"sd": save_tiny_sd, "sd-v": lambda f: save_tiny_sd(f, "v_prediction"), "sdxl": save_tiny_sdxl,
            "sd3": save_tiny_sd3, "pixart": save_tiny_pixart, "dit": save_tiny_dit, "ldm": save_tiny_ldm,
            "ddpm": save_tiny_ddpm}
FAMILY_NAMES = {"sd": "SD 1.x (UNet, eps)", "sd-v": "SD 2.x (UNet, v)", "sdxl": "SDXL (UNet, 2 text encoders)",
                "sd3": "SD3 (MMDiT, flow)", "pixart": "PixArt-alpha (T5)", "dit": "DiT (class)",
                "ldm": "LDM (unconditional, VQ)", "ddpm": "DDPM (unconditional, pixels)"}
