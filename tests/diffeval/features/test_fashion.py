"""The bundled ``fashion`` feature space."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from diffeval.features import FashionExtractor, get_extractor
from diffeval.features.preprocess import quantize, to_gray
from diffeval.judge import load_judge

EXTRACTOR = FashionExtractor()
JUDGE = load_judge().net.eval()  # the float32 judge, as a reference


def _images(n=10, c=1, size=28, seed=0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_features_are_the_judges():
    x = _images(4)
    torch.testing.assert_close(EXTRACTOR.features(x), JUDGE.features(quantize(x)))
    torch.testing.assert_close(EXTRACTOR.logits(x), JUDGE(quantize(x)))


def test_dims_and_describe():
    x = _images(4)
    assert EXTRACTOR.features(x).shape == (4, 128) and EXTRACTOR.features(x).dtype == torch.float32
    assert EXTRACTOR.logits(x).shape == (4, 10)
    info = EXTRACTOR.describe()
    assert info["name"] == "fashion" and info["dim"] == 128 and "601" in info["preprocessing"]
    assert EXTRACTOR.features(x[:0]).shape == (0, 128)


def test_deterministic_and_batch_size_invariant():
    x = _images(10)
    a = EXTRACTOR.features(x, batch_size=3)
    assert torch.equal(a, EXTRACTOR.features(x, batch_size=3))
    torch.testing.assert_close(a, EXTRACTOR.features(x, batch_size=7), atol=1e-6, rtol=0)


def test_uint8_and_float_give_equal_features():
    u = (_images(3) * 255).round().to(torch.uint8)
    float_input = u.float() / 255 + 0.4 / 255 * (_images(3, seed=1) - 0.5)
    assert torch.equal(EXTRACTOR.features(u), EXTRACTOR.features(float_input.clamp(0, 1)))


@torch.no_grad()
def test_rgb_goes_through_luma():
    rgb = _images(3, c=3)
    expected = JUDGE.features(to_gray(quantize(rgb)))
    torch.testing.assert_close(EXTRACTOR.features(rgb), expected)


@torch.no_grad()
def test_56px_input_is_resized_with_antialias():
    big = _images(3, size=56)
    small = F.interpolate(quantize(big), size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
    assert EXTRACTOR.prepare(big).shape == (3, 1, 28, 28)
    torch.testing.assert_close(EXTRACTOR.features(big), JUDGE.features(small))


def test_registry_builds_it():
    assert isinstance(get_extractor("fashion"), FashionExtractor)


def test_logits_from_features_equal_direct_logits():
    from diffeval.features import FashionExtractor

    ext = FashionExtractor()
    x = torch.rand(6, 1, 28, 28)
    torch.testing.assert_close(ext.logits_from_features(ext.features(x)), ext.logits(x), rtol=1e-5, atol=1e-5)
