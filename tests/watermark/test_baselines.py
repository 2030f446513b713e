"""invisible-watermark baselines: message recovered on clean carriers, chance level on unmarked ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffeval.watermark.baselines import BASELINES, decode_scores, embed_baseline, message_bits, to_carrier


def covers(n=4):
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 5:23, 8:20] = 0.2 + 0.7 * torch.rand(n, 1, 18, 12, generator=g)
    return x


def test_carrier_is_an_upscaled_rgb_copy():
    c = to_carrier(covers(2))
    assert c.shape == (2, 3, 256, 256) and c.min() >= 0 and c.max() <= 1
    assert torch.equal(c[:, 0], c[:, 1]) and torch.equal(c[:, 1], c[:, 2])


@pytest.mark.parametrize("method", BASELINES)
def test_message_survives_clean_embedding(method):
    bits = message_bits(1)
    assert len(bits) == 32 and bits != message_bits(2)
    carriers = to_carrier(covers(2 if method == "rivaGan" else 4))
    marked = embed_baseline(method, carriers, bits)
    acc, p = decode_scores(method, marked, bits)
    acc0, p0 = decode_scores(method, carriers, bits)
    assert acc.min() >= 0.9 and p.max() < 1e-5 and acc0.max() < 0.9
    assert np.allclose(p0, [sum(math.comb(32, k) for k in range(int(round(a * 32)), 33)) / 2**32 for a in acc0])


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown baseline"):
        embed_baseline("stegastamp", to_carrier(covers(1)), message_bits(0))
