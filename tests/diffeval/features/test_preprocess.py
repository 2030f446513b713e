"""The resize and quantisation contract shared by all extractors."""

from __future__ import annotations

import pytest
import torch

from diffeval.features.preprocess import RESIZE_MODES, quantize, resize, to_float01, to_gray, to_rgb
from diffeval.images import to_uint8


def _levels(shape, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_uint8_converts_exactly():
    u = _levels((2, 3, 5, 5))
    assert torch.equal(to_float01(u), u.float() / 255)
    assert torch.equal(quantize(u), u.float() / 255)
    assert to_float01(u).dtype == torch.float32


def test_uint8_and_float_agree_after_quantisation():
    u = _levels((2, 1, 6, 6))
    assert torch.equal(quantize(u.double() / 255), quantize(u))


def test_quantisation_matches_png_writer():
    x = torch.rand(3, 3, 7, 7, generator=torch.Generator().manual_seed(1))
    png = torch.from_numpy(to_uint8(x)).permute(0, 3, 1, 2)  # what diffeval.images writes
    assert torch.equal(quantize(x), quantize(png))


def test_less_than_half_a_level_is_invisible():
    u = _levels((2, 1, 6, 6), seed=2)
    noise = (torch.rand(u.shape, generator=torch.Generator().manual_seed(3)) - 0.5) * 0.98 / 255
    x = (u.float() / 255 + noise).clamp(0, 1)
    assert torch.equal(quantize(x), quantize(u))


@pytest.mark.parametrize("bad, count", [(float("nan"), 2), (float("inf"), 2), (-float("inf"), 2)])
def test_nonfinite_values_raise_with_count(bad, count):
    x = torch.rand(1, 1, 4, 4)
    x[0, 0, 0, :count] = bad
    with pytest.raises(ValueError, match=rf"{count} of 16 image values are NaN or infinite"):
        to_float01(x)


def test_out_of_range_raises_with_count_and_hint():
    x = torch.rand(1, 1, 4, 4)
    x[0, 0, 0, 0], x[0, 0, 1, 1], x[0, 0, 2, 2] = -1.0, 1.5, 1.0 + 1e-4
    with pytest.raises(ValueError, match=r"3 of 16 image values lie outside \[0, 1\].*\(x \+ 1\) / 2"):
        to_float01(x)


def test_tiny_overshoot_is_clamped():
    x = torch.tensor([[[[-5e-7, 1 + 5e-7]]]])
    assert torch.equal(to_float01(x), torch.tensor([[[[0.0, 1.0]]]]))


def test_bad_dtype_and_shape_raise():
    with pytest.raises(ValueError, match="uint8 or float"):
        to_float01(torch.zeros(1, 1, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        to_float01(torch.zeros(1, 2, 2))


def test_channels():
    g = torch.rand(2, 1, 3, 3)
    rgb = to_rgb(g)
    assert rgb.shape == (2, 3, 3, 3) and all(torch.equal(rgb[:, c], g[:, 0]) for c in range(3))
    assert to_rgb(rgb) is rgb
    assert torch.allclose(to_gray(rgb), g, atol=1e-6)  # luma weights sum to 1
    pure_red = torch.zeros(1, 3, 1, 1)
    pure_red[0, 0] = 1
    assert to_gray(pure_red).item() == pytest.approx(0.299)
    with pytest.raises(ValueError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels, got 2"):
        to_rgb(torch.rand(1, 2, 3, 3))
    with pytest.raises(ValueError, match="got 4"):
        to_gray(torch.rand(1, 4, 3, 3))


def test_resize_modes():
    x = torch.rand(2, 3, 20, 30)
    for mode in RESIZE_MODES:
        assert resize(x, 16, mode).shape == (2, 3, 16, 16)
        same = torch.rand(1, 3, 16, 16)
        assert torch.equal(resize(same, 16, mode), same)
    cropped = resize(x, 16, "bicubic-antialias-crop")
    assert cropped.min() >= 0 and cropped.max() <= 1
    with pytest.raises(ValueError, match="unknown resize mode 'area'; valid: bilinear"):
        resize(x, 16, "area")


def test_bilinear_mode_is_pytorch_fids_resize():
    x = torch.rand(1, 3, 28, 28)
    expected = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    assert torch.equal(resize(x, 299, "bilinear"), expected)
