"""diffeval's paper-layout key and paper statistics reproduce Wen et al.'s code (an independent port,
tests/watermark/wen_reference.py) on identical latents; benchmarks/treering_agreement.py reports the same at the
paper's 4x64x64, radius 10, channel 3 over 200 latents and 5 key seeds."""

from __future__ import annotations

import pytest
import torch

from benchmarks.treering_agreement import agreement
from diffeval.watermark.keys import load_key, make_key, save_key
from diffeval.watermark.statistics import key_test


def test_paper_layout_and_statistics_match_the_reference_code():
    table = agreement(n=6, shape=(4, 32, 32), radius=6, channel=3, seeds=(0, 1))
    assert (table["mask_bins_differ"] == 0).all()
    assert table["key_values_max_abs"].max() < 1e-5
    assert table["injected_max_abs"].max() < 1e-5
    assert table["distance_max_rel"].max() < 1e-5
    assert table["p_value_max_abs"].max() < 1e-4
    # the marked images are closer to the key than the unmarked ones, under both implementations
    assert (table["mean_distance_marked"] < table["mean_distance_unmarked"]).all()


def test_paper_layout_keys_round_trip_and_refuse_the_coordinate_tests(tmp_path):
    key = make_key((4, 16, 16), "rings", 4, (3,), seed=3, layout="paper")
    assert not torch.equal(key.mask, key.mask.flip(0))  # their disc sits one row off DC
    back = load_key(save_key(key, tmp_path / "k.safetensors"))
    assert back.layout == "paper" and torch.equal(back.values, key.values) and torch.equal(back.mask, key.mask)
    z = torch.randn(3, 4, 16, 16)
    score, p = key_test(z, back, test="paper")
    assert score.shape == p.shape == (3,) and ((0 <= p) & (p <= 1)).all()
    with pytest.raises(ValueError, match="use --test paper"):
        key_test(z, back, test="cosine")
    with pytest.raises(ValueError, match="integer radius"):
        make_key((4, 16, 16), "rings", 2.5, (3,), seed=0, layout="paper")
