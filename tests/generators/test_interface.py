"""The Generator interface: shapes, ranges, conditioning errors, seeds, batch-size independence."""

from __future__ import annotations

import pytest
import torch

from diffeval.generators.samplers import SAMPLERS

from ..helpers import tiny_generator


def _cond(kind):
    return {"labels": [1, 2, 3]} if kind == "dit" else {"prompts": "a shoe"} if kind in ("sd1", "sd2", "sd3") else {}


def test_sample_contract(tiny_kind):
    g = tiny_generator(tiny_kind)
    for sampler in SAMPLERS:
        x = g.sample(3, sampler=sampler, steps=3, **_cond(tiny_kind))
        assert x.dtype == torch.float32 and x.shape == (3, 1, 8, 8) and x.device.type == "cpu"
        assert x.min() >= 0 and x.max() <= 1


def test_seed_and_batch_size_independence():
    g = tiny_generator("dit")
    a = g.sample(6, labels=[0, 1, 2, 3, 4, 5], steps=4, sampler="ddpm", seed=7, batch_size=6)
    b = g.sample(6, labels=[0, 1, 2, 3, 4, 5], steps=4, sampler="ddpm", seed=7, batch_size=4)
    c = g.sample(6, labels=[0, 1, 2, 3, 4, 5], steps=4, sampler="ddpm", seed=8, batch_size=6)
    assert torch.allclose(a, b, atol=1e-5)
    assert (a - c).abs().max() > 1e-3


def test_explicit_noise_is_used():
    g = tiny_generator("sd3")
    noise = torch.randn(2, 1, 8, 8)
    a = g.sample(2, prompts="a bag", noise=noise, steps=3)
    b = g.sample(2, prompts="a bag", noise=noise, steps=3, seed=99)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="noise must have shape"):
        g.sample(3, prompts="a bag", noise=noise)


def test_conditioning_errors():
    with pytest.raises(ValueError, match="unconditional"):
        tiny_generator("ddpm").sample(2, labels=1)
    with pytest.raises(ValueError, match="guidance must be 1"):
        tiny_generator("ddpm").sample(2, guidance=3.0)
    with pytest.raises(ValueError, match="pass labels, not prompts"):
        tiny_generator("dit").sample(2, prompts="a shoe")
    with pytest.raises(ValueError, match=r"labels must lie in 0..9"):
        tiny_generator("dit").sample(2, labels=[0, 12])
    with pytest.raises(ValueError, match="got 3 prompts for 2 samples"):
        tiny_generator("sd1").sample(2, prompts=["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown sampler"):
        tiny_generator("sd1").sample(2, sampler="plms")
    with pytest.raises(TypeError, match="prompt must be a str"):
        tiny_generator("sd1").sample(2, prompts=[1, 2])


def test_unknown_words_warn_and_use_unk():
    g = tiny_generator("sd3")
    with pytest.warns(UserWarning, match="vocabulary are read as <unk>: astronaut"):
        x = g.sample(2, prompts="a photo of an astronaut", steps=2)
    assert x.shape == (2, 1, 8, 8)


def test_guidance_changes_conditional_output():
    g = tiny_generator("dit")
    x = torch.randn(2, 1, 8, 8)
    a, b, u = (g.denoise(x, 0.5, labels=lab, guidance=w).eps for lab, w in ((3, 1.0), (3, 4.0), (-1, 1.0)))
    assert (a - b).abs().max() > 1e-4
    assert torch.allclose(b, u + 4.0 * (a - u), atol=1e-5)  # CFG is linear in the network output


def test_invert_shape_and_errors():
    g = tiny_generator("sd3")
    x = g.sample(2, prompts="a bag", steps=4)
    z = g.invert(x, steps=4)
    assert z.shape == (2, 1, 8, 8) and torch.isfinite(z).all()
    with pytest.raises(ValueError, match="images must have shape"):
        g.invert(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="invert supports"):
        g.invert(x, sampler="ddpm")


def test_denoise_returns_consistent_prediction(tiny_kind):
    g = tiny_generator(tiny_kind)
    x = torch.randn(3, 1, 8, 8)
    p = g.denoise(x, 0.5, **_cond(tiny_kind))
    alpha, sigma = (v.float() for v in g.schedule.alpha_sigma(torch.tensor(0.5)))
    assert torch.allclose(alpha * p.x0 + sigma * p.eps, x, atol=1e-5)
    assert torch.allclose(p.score, -p.eps / sigma, atol=1e-6)


def test_clip_x0_keeps_the_path_consistent():
    g = tiny_generator("dit")
    x = torch.randn(4, 1, 8, 8) * 3
    t = torch.full((4,), 0.7, dtype=torch.float64)
    cond = g.conditioning(4, labels=[1, 2, 3, 4])
    raw = g._predict(x, t, cond, 1.0, clip_x0=False)
    clipped = g._predict(x, t, cond, 1.0, clip_x0=True)
    alpha, sigma = (v.float() for v in g.schedule.alpha_sigma(torch.tensor(0.7)))
    assert raw.x0.abs().max() > 1 and clipped.x0.abs().max() <= 1
    assert torch.allclose(alpha * clipped.x0 + sigma * clipped.eps, x, atol=1e-5)
    a = g.sample(2, labels=1, steps=3, clip_x0=True)
    b = g.sample(2, labels=1, steps=3, clip_x0=False)
    assert a.shape == b.shape


def test_invert_refuses_a_generator_that_is_not_invertible():
    """GeneratorInfo.invertible is read: a generator marked not invertible refuses invert with a clear error."""
    import dataclasses

    g = tiny_generator("ddpm")
    assert g.image_shape == (g.info.channels, g.info.resolution, g.info.resolution)
    g.info = dataclasses.replace(g.info, invertible=False)
    with pytest.raises(ValueError, match="cannot invert"):
        g.invert(torch.zeros(1, *g.image_shape), steps=2)


def test_class_conditions_follow_the_conditioning_kind():
    """Generator.class_conditions: labels for class models, prompt(c) per image for text models, nothing else."""
    classes = torch.tensor([3, 7])
    prompt = "class {}".format
    assert torch.equal(tiny_generator("dit").class_conditions(classes, prompt)["labels"], classes)
    assert tiny_generator("sd1").class_conditions(classes, prompt) == {"prompts": ["class 3", "class 7"]}
    assert tiny_generator("ddpm").class_conditions(classes, prompt) == {}
