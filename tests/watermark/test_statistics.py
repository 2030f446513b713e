"""p-values on unmarked white noise are uniform; marked noise gets tiny p-values."""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score

from diffeval.watermark.keys import make_key
from diffeval.watermark.statistics import inject, key_cosine, key_distance, key_pvalue, key_score, key_test

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
    ncx2 = lambda x, sigma: key_pvalue(x, key, sigma, test="ncx2")  # noqa: E731
    assert (ncx2(z, "outside") - ncx2(z, "unit")).abs().median() < 0.05
    for sigma in ("outside", "mask"):
        p = ncx2(z, sigma)
        assert ((p >= 0) & (p <= 1)).all()
    assert torch.allclose(key_pvalue(z, key, test="cosine"), key_pvalue(3 * z, key, test="cosine"), atol=1e-12)
    with pytest.raises(ValueError, match="non-zero key"):
        key_pvalue(z, make_key(SHAPE, "zeros", 4, seed=0), test="cosine")
    with pytest.raises(ValueError, match="sigma"):
        key_pvalue(z, key, "median", test="ncx2")
    with pytest.raises(ValueError, match="test must be"):
        key_pvalue(z, key, test="l2")


@pytest.mark.parametrize("pattern", ["rings", "rand", "zeros"])
def test_marked_noise_is_detected(pattern):
    key = make_key(SHAPE, pattern, 4, seed=3)
    z = torch.randn(200, *SHAPE, generator=torch.Generator().manual_seed(9))
    zw = inject(z, key) + 0.3 * torch.randn(200, *SHAPE, generator=torch.Generator().manual_seed(10))
    test = "ncx2" if pattern == "zeros" else "cosine"
    assert (key_pvalue(zw, key, test=test) < 1e-3).float().mean() > 0.95
    assert key_distance(zw, key).max() < key_distance(z, key).min()
    assert key_score(zw, key, test).min() > key_score(z, key, test).max()


def test_cosine_p_value_on_a_two_channel_key():
    """M counts the coordinates of every keyed channel: uniform p-values on white noise."""
    key = make_key((3, 16, 16), "rand", 3, channels=(0, 2), seed=1)
    z = torch.randn(3000, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    p = key_pvalue(z, key).numpy()
    assert stats.kstest(p, "uniform").pvalue > 0.01
    cos = key_cosine(z, key)
    assert ((cos >= -1) & (cos <= 1)).all()


def test_matched_filter_beats_the_distance_on_a_weakened_key():
    """Noise keeping 30% of the key plus fresh white noise (what an attack leaves): the cosine (a
    matched filter) separates it from unmarked noise better than the paper's L1 distance, which also
    measures the noise's own energy."""
    key = make_key(SHAPE, "rings", 4, seed=3)
    gen = torch.Generator().manual_seed(11)
    z0, z1 = torch.randn(400, *SHAPE, generator=gen), torch.randn(400, *SHAPE, generator=gen)
    weak = 0.3 * inject(torch.zeros(400, *SHAPE), key) + z1
    y = [0] * 400 + [1] * 400
    auc = {
        t: roc_auc_score(y, torch.cat([key_score(z0, key, t), key_score(weak, key, t)]).numpy())
        for t in ("cosine", "ncx2")
    }
    assert auc["cosine"] > auc["ncx2"] + 0.1, auc


@pytest.mark.parametrize("test", ["cosine", "ncx2"])
def test_key_test_is_key_score_and_key_pvalue_together(test):
    key = make_key(SHAPE, "rings", 4, seed=3)
    z = inject(torch.randn(50, *SHAPE, generator=torch.Generator().manual_seed(12)), key) + torch.randn(50, *SHAPE)
    score, p = key_test(z, key, "outside", test)
    assert torch.equal(score, key_score(z, key, test)) and torch.equal(p, key_pvalue(z, key, "outside", test))
