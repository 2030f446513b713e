"""p-values on unmarked white noise are uniform; marked noise gets tiny p-values."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from watermark.keys import make_key
from watermark.statistics import inject, key_distance, key_pvalue

SHAPE = (1, 28, 28)


@pytest.mark.parametrize(("pattern", "test"), [("rings", "ncx2"), ("rand", "ncx2"), ("zeros", "ncx2"),
                                               ("rings", "cosine"), ("rand", "cosine")])
def test_pvalue_is_uniform_on_unmarked_noise(pattern, test):
    key = make_key(SHAPE, pattern, 4, seed=3)
    z = torch.randn(3000, *SHAPE, generator=torch.Generator().manual_seed(7))
    p = key_pvalue(z, key, test=test).numpy()
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.005 <= (p < 0.01).mean() <= 0.02


def test_estimated_scales_and_the_scale_free_cosine_test():
    key = make_key(SHAPE, "rand", 4, seed=3)
    z = torch.randn(500, *SHAPE, generator=torch.Generator().manual_seed(8))
    # on unit white noise the per-image "outside" estimate (735 coordinates) is close to the true scale
    assert (key_pvalue(z, key, "outside") - key_pvalue(z, key, "unit")).abs().median() < 0.05
    for sigma in ("outside", "mask"):
        p = key_pvalue(z, key, sigma)
        assert ((p >= 0) & (p <= 1)).all()
    assert torch.allclose(key_pvalue(z, key, test="cosine"), key_pvalue(3 * z, key, test="cosine"), atol=1e-12)
    with pytest.raises(ValueError, match="non-zero key"):
        key_pvalue(z, make_key(SHAPE, "zeros", 4, seed=0), test="cosine")
    with pytest.raises(ValueError, match="sigma"):
        key_pvalue(z, key, "median")


@pytest.mark.parametrize("pattern", ["rings", "rand", "zeros"])
def test_marked_noise_is_detected(pattern):
    key = make_key(SHAPE, pattern, 4, seed=3)
    z = torch.randn(200, *SHAPE, generator=torch.Generator().manual_seed(9))
    zw = inject(z, key) + 0.3 * torch.randn(200, *SHAPE, generator=torch.Generator().manual_seed(10))
    assert (key_pvalue(zw, key) < 1e-3).float().mean() > 0.95
    assert key_distance(zw, key).max() < key_distance(z, key).min()
