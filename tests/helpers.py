"""Test helpers: tiny model configs and untrained generators on 8x8 images, so tests run in seconds on a CPU."""

from __future__ import annotations

import dataclasses

import torch

from diffeval.generators.config import ModelConfig, SamplingDefaults
from diffeval.generators.interface import Generator
from diffeval.generators.model import DiffusionModel
from diffeval.generators.schedules import ScheduleConfig
from diffeval.generators.tokenizer import WordTokenizer

TINY_TEXTS = ["a photo of a sneaker", "a shoe", "a bag", "an ankle boot", "a top", "a photo of a bag"]
TINY_VOCAB = WordTokenizer.from_texts(TINY_TEXTS, max_len=8).vocab
TINY_UNET = {"base_channels": 8, "channel_mult": (1, 2), "num_res_blocks": 1, "attention_levels": (1,), "groups": 4}
TINY_DIT = {"patch": 2, "dim": 32, "depth": 2, "heads": 2}
TINY_TEXT = {"dim": 16, "depth": 1, "heads": 2, "max_len": 8}


def tiny_config(kind: str) -> ModelConfig:
    """Tiny 1x8x8 versions of each preset family."""
    linear = ScheduleConfig("linear", 1000)
    flow = ScheduleConfig("rectified_flow", None)
    common = {"image_size": 8, "channels": 1, "emb_dim": 32, "num_classes": 10}
    text = {"text_encoder": dict(TINY_TEXT), "vocab": list(TINY_VOCAB)}
    if kind == "ddpm":
        return ModelConfig("unet", "eps", linear, "none", backbone_config=dict(TINY_UNET), **common)
    if kind == "sd1":
        return ModelConfig(
            "unet",
            "eps",
            ScheduleConfig("scaled_linear", 1000),
            "text",
            backbone_config=dict(TINY_UNET),
            **common,
            **text,
        )
    if kind == "sd2":
        return ModelConfig(
            "unet",
            "v",
            ScheduleConfig("scaled_linear", 1000),
            "text",
            backbone_config=dict(TINY_UNET),
            **common,
            **text,
        )
    if kind == "dit":
        return ModelConfig("dit", "eps", linear, "class", backbone_config=dict(TINY_DIT), **common)
    if kind == "sd3":
        return ModelConfig("mmdit", "velocity", flow, "text", backbone_config=dict(TINY_DIT), **common, **text)
    raise ValueError(kind)


TINY_KINDS = ["ddpm", "sd1", "sd2", "dit", "sd3"]


def tiny_generator(kind: str, seed: int = 0, randomize_output: bool = True, image_size: int = 8) -> Generator:
    """An untrained tiny generator (1 x image_size x image_size; 28 for the judge); zero-initialised output
    layers get random weights so outputs vary."""
    torch.manual_seed(seed)
    model = DiffusionModel(dataclasses.replace(tiny_config(kind), image_size=image_size))
    if randomize_output:
        with torch.no_grad():
            for p in model.parameters():
                if p.abs().sum() == 0 and p.ndim > 0:
                    p.normal_(0, 0.05)
    sampler = "euler" if kind == "sd3" else "ddim"
    return Generator(model, f"tiny-{kind}", kind, SamplingDefaults(sampler, 4, 1.0), device="cpu")
