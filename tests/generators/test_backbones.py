"""Backbone shapes, zero-initialised outputs, position embeddings, text sensitivity."""

from __future__ import annotations

import torch

from diffeval.bundle import text_vocab
from diffeval.generators.backbones.layers import sincos_2d_position_embedding
from diffeval.generators.model import Conditioning, DiffusionModel
from diffeval.generators.presets import PRESET_NAMES, build_presets
from diffeval.generators.tokenizer import WordTokenizer


def _cond(model: DiffusionModel, n: int, prompt: str = "a photo of a sneaker") -> Conditioning:
    cfg = model.config
    if cfg.conditioning == "class":
        return Conditioning(labels=torch.arange(n) % cfg.num_classes)
    if cfg.conditioning == "text":
        ids, mask = WordTokenizer(cfg.vocab, cfg.text_encoder["max_len"]).encode([prompt] * n)
        return Conditioning(ids=ids, mask=mask)
    return Conditioning()


def test_every_preset_builds_and_keeps_shape():
    presets = build_presets(text_vocab())
    assert list(presets) == list(PRESET_NAMES)
    for name, preset in presets.items():
        model = DiffusionModel(preset.model)
        x = torch.randn(3, *preset.model.model_shape)  # 1x28x28 pixels, or 3x14x14 latents
        out = model(x, torch.rand(3), _cond(model, 3))
        assert out.shape == x.shape, name
        assert torch.isfinite(out).all(), name


def test_transformers_output_exactly_zero_at_init():
    presets = build_presets(text_vocab())
    for name in ("dit", "sd3"):
        model = DiffusionModel(presets[name].model)
        out = model(torch.randn(2, *model.config.model_shape), torch.rand(2), _cond(model, 2))
        assert torch.count_nonzero(out) == 0, name


def test_unet_output_zero_at_init_too():
    model = DiffusionModel(build_presets(text_vocab())["ddpm"].model)
    assert torch.count_nonzero(model(torch.randn(2, 1, 28, 28), torch.rand(2))) == 0


def test_position_embedding_filled_and_distinct():
    pos = sincos_2d_position_embedding(128, 7, 7)
    assert pos.shape == (49, 128)
    assert torch.isfinite(pos).all() and pos.abs().sum(1).min() > 0
    assert torch.cdist(pos, pos).add(torch.eye(49) * 1e3).min() > 1e-3  # every position differs
    model = DiffusionModel(build_presets(text_vocab())["dit"].model)
    assert torch.equal(model.backbone.pos_embed[0], pos)


def test_mmdit_text_tokens_change_output():
    torch.manual_seed(0)
    model = DiffusionModel(build_presets(text_vocab())["sd3"].model)
    with torch.no_grad():  # leave the zero init so the output can depend on its inputs
        for p in model.parameters():
            if p.abs().sum() == 0 and p.ndim > 0:
                p.normal_(0, 0.05)
    x, t = torch.randn(2, *model.config.model_shape), torch.full((2,), 0.5)
    a = model(x, t, _cond(model, 2, "a photo of a sneaker"))
    b = model(x, t, _cond(model, 2, "a bag"))
    assert (a - b).abs().max() > 1e-4


def test_unet_cross_attention_uses_text():
    torch.manual_seed(0)
    model = DiffusionModel(build_presets(text_vocab())["sd1"].model)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0 and p.ndim > 0:
                p.normal_(0, 0.05)
    x, t = torch.randn(2, *model.config.model_shape), torch.full((2,), 0.5)
    assert (model(x, t, _cond(model, 2, "a shoe")) - model(x, t, _cond(model, 2, "a dress"))).abs().max() > 1e-4


def test_mlp_backbone_for_low_dimensional_points():
    from diffeval.generators.config import ModelConfig
    from diffeval.generators.schedules import ScheduleConfig

    cfg = ModelConfig(backbone="mlp", parameterization="eps", schedule=ScheduleConfig("cosine", None), image_size=1,
                      channels=2, emb_dim=32, backbone_config={"width": 32, "depth": 2})
    model = DiffusionModel(cfg)
    x = torch.randn(5, 2, 1, 1)
    out = model(x, torch.rand(5))
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))  # zero-initialised last layer
    torch.nn.init.normal_(model.backbone.out[-1].weight)
    a, b = model(x, torch.full((5,), 0.1)), model(x, torch.full((5,), 0.9))
    assert not torch.allclose(a, b)  # the time embedding reaches the output
