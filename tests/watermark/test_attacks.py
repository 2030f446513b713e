"""Each attack changes images as specified, keeps shape and range, and is seeded per image."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from diffeval.watermark.attacks import PRESETS, Attack, attacks_from, parse_attack


def images(n=6, c=1, size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, c, size, size)
    x[:, :, 6:22, 9:19] = 0.3 + 0.6 * torch.rand(n, c, 16, 10, generator=g)  # a garment-like blob on black
    return x.mul(255).round().div(255)


@pytest.mark.parametrize("attack", [a for a in PRESETS["all"] if a.kind != "regen"], ids=lambda a: a.name)
def test_every_attack_keeps_shape_range_and_levels(attack):
    x = images()
    y = attack(x, seed=1, autoencode=_bundled_round_trip)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.min() >= 0 and y.max() <= 1
    assert torch.allclose(y * 255, (y * 255).round(), atol=1e-4)  # 8-bit levels, like a saved PNG
    if attack.kind != "none":
        assert not torch.equal(y, x)
    assert torch.equal(attack(x, seed=1, autoencode=_bundled_round_trip), y)


def _bundled_round_trip(x: torch.Tensor) -> torch.Tensor:
    """The vae attack's round trip through the bundled autoencoder (28 px grey images)."""
    from diffeval.generators import load_generator
    from diffeval.watermark.robustness import autoencode_fn

    return autoencode_fn(load_generator("ddpm"))(x)


def test_random_attacks_are_per_image_and_batch_independent():
    x = images(8)
    for a in (Attack("crop", 0.6), Attack("noise", 0.1), Attack("brightness", 0.5), Attack("erase", 0.2)):
        whole = a(x, seed=4)
        parts = torch.cat([a(x[:3], seed=4, first_index=0), a(x[3:], seed=4, first_index=3)])
        assert torch.equal(whole, parts), a.name
        assert not torch.equal(a(x, seed=4), a(x, seed=5)), a.name


def test_attacks_do_what_they_say():
    x = images(4)
    assert torch.equal(Attack("rotation", 90)(x), torch.rot90(x, 1, dims=(2, 3)))  # counter-clockwise
    assert torch.equal(Attack("rotation", 0)(x), x)
    # noise is clipped, never wrapped: black stays >= 0, and white areas cannot turn black
    white = torch.ones(2, 1, 28, 28)
    y = Attack("noise", 0.1)(white, seed=0)
    assert y.min() > 0.5 and 0.4 < (y == 1).float().mean() < 0.6
    # jpeg and blur are PIL's own
    pil = Image.fromarray((x[0, 0].numpy() * 255).round().astype(np.uint8))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=25)
    ref = np.asarray(Image.open(buf), dtype=np.float32) / 255
    assert np.allclose(Attack("jpeg", 25)(x)[0, 0].numpy(), ref, atol=1e-6)
    ref = np.asarray(pil.filter(ImageFilter.GaussianBlur(4)), dtype=np.float32) / 255
    assert np.allclose(Attack("blur", 4)(x)[0, 0].numpy(), ref, atol=1e-6)
    ref = np.asarray(pil.filter(ImageFilter.GaussianBlur(4 * 28 / 512)), dtype=np.float32) / 255
    scaled = parse_attack("blur:4:reference_size=512")
    assert scaled.name == "blur(4@512px)" and np.allclose(scaled(x)[0, 0].numpy(), ref, atol=1e-6)
    assert [a.name for a in attacks_from("paper-scaled")][4] == "blur(4@512px)"
    # erase zeroes about the asked fraction; crop with scale 1 is the identity
    assert (Attack("erase", 0.25)(torch.ones(1, 1, 28, 28), seed=0) == 0).float().mean().item() == pytest.approx(
        0.25, abs=0.02
    )
    assert torch.allclose(Attack("crop", 1.0)(x), x, atol=1 / 255)
    # brightness factors lie in [max(0, 1 - b), 1 + b]
    y = Attack("brightness", 0.5)(x, seed=2)
    ratio = (y[x > 0.5] / x[x > 0.5]).min().item()
    assert ratio >= 0.5 - 1e-2


def test_regen_needs_a_generator_and_uses_it():
    x = images(2)
    with pytest.raises(ValueError, match="regen"):
        Attack("regen", 0.3)(x)
    y = Attack("regen", 0.3)(x, regen=lambda im, t, seed, first: im * 0 + t)
    assert torch.allclose(y, torch.full_like(x, 0.3), atol=1 / 255)


def test_parse_attacks():
    assert parse_attack("jpeg:25") == Attack("jpeg", 25)
    assert parse_attack("crop:0.75:ratio=0.75") == Attack("crop", 0.75, (("ratio", 0.75),))
    combo = parse_attack("rotation:15+jpeg:50")
    assert combo.kind == "combo" and combo.name == "rotation(15)+jpeg(50)"
    assert attacks_from("paper")[0].kind == "none" and len(attacks_from("paper")) == 7
    assert [a.name for a in attacks_from("clean,blur:1")] == ["clean", "blur(1)"]
    for bad in ("sharpen:2", "jpeg", "jpeg:high"):
        with pytest.raises(ValueError):
            parse_attack(bad)
