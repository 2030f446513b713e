"""Robustness over K keys: per-key rows, the marked images' seeds, wrong-key and identification figures, and the
summary over keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from diffeval.watermark.attacks import attacks_from
from diffeval.watermark.detect import DetectSettings
from diffeval.watermark.keys import key_geometry, make_key
from diffeval.watermark.report import over_keys, paper_average
from diffeval.watermark.robustness import RobustnessConfig, _pattern_rows
from diffeval.watermark.statistics import inject

SHAPE = (3, 14, 14)


def _recovered(keys, n, n_un, strength, seed=0):
    """Noise as the inversion would give it: marked = strength * injected + (1 - strength) * fresh noise."""
    g = torch.Generator().manual_seed(seed)
    rec = {None: torch.randn(n_un, *SHAPE, generator=g, dtype=torch.float64)}
    for k, key in enumerate(keys):
        z = torch.randn(n, *SHAPE, generator=g, dtype=torch.float64)
        rec[("rand", k)] = strength * inject(z, key) + (1 - strength) * torch.randn(n, *SHAPE, generator=g,
                                                                                      dtype=torch.float64)
    return rec


@pytest.mark.parametrize("strength", [1.0, 0.0])
def test_per_key_rows_wrong_key_and_identification(strength):
    cfg = RobustnessConfig(keys=4, n=30, n_unmarked=400)
    keys = [make_key(SHAPE, "rand", 4, (2,), seed=k) for k in range(4)]
    rec = _recovered(keys, cfg.n, cfg.n_unmarked, strength)
    timing = {("rand", k): 0.1 for k in range(4)}
    rows, frames = _pattern_rows("toy", "rand", keys, attacks_from("clean")[0], rec, timing, cfg)
    table = pd.DataFrame(rows)
    assert list(table["key"]) == [0, 1, 2, 3] and table["key_fingerprint"].nunique() == 4
    assert (table["n_marked"] == 30).all() and (table["n_unmarked"] == 400).all()
    scores = pd.concat(frames)
    assert len(scores) == 4 * (400 + 30)  # unmarked against every key, each key's own marked images
    assert sorted(scores[scores.marked].index.unique()) == list(range(30))  # frame index
    assert sorted(scores[scores.marked]["index"]) == list(range(120))  # seed indices k n .. (k + 1) n - 1
    if strength == 1.0:  # the key alone in its region: every key is found, and only its own
        assert (table["auc"] == 1.0).all() and (table["identification"] == 1.0).all()
        assert (table["wrong_key_fpr"] <= 0.05).all()
    else:  # no key at all: chance identification, and the rule's false-positive rate on both kinds of image
        assert table["auc"].between(0.3, 0.7).all()
        assert abs(table["identification"].mean() - 0.25) < 0.15
        assert table["wrong_key_fpr"].mean() < 0.05 and table["fpr_at_alpha"].mean() < 0.05


def test_over_keys_median_percentile_and_worst():
    table = pd.DataFrame({"generator": "g", "pattern": "rings", "attack": "clean",
                          "auc": [0.9, 0.5, 1.0, 0.8, 0.7], "fpr_at_alpha": [0.01, 0.02, 0.0, 0.05, 0.01],
                          "identification": np.nan})
    s = over_keys(table).iloc[0]
    assert s["keys"] == 5 and s["auc_median"] == 0.8 and s["auc_worst"] == 0.5
    assert s["auc_p10"] == pytest.approx(np.percentile([0.9, 0.5, 1.0, 0.8, 0.7], 10))  # 0.58
    assert s["fpr_at_alpha_worst"] == 0.05 and s["fpr_at_alpha_p10"] == pytest.approx(0.038)  # the 90th percentile
    assert np.isnan(s["identification_median"])


def test_paper_average_is_per_key_then_over_keys():
    rows = [{"generator": "g", "pattern": "rand", "key": k, "attack": a, "kind": "none" if a == "clean" else "jpeg",
             "auc": v, "tpr_at_1pct_fpr": v, "fpr_at_alpha": 0.01}
            for k, vals in enumerate([(1.0, 0.6, 0.8), (1.0, 0.9, 0.9)]) for a, v in zip(("clean", "j1", "j2"), vals)]
    avg = paper_average(pd.DataFrame(rows)).iloc[0]
    assert avg["keys"] == 2 and avg["mean_auc_worst"] == pytest.approx(0.7)
    assert avg["mean_auc_median"] == pytest.approx(0.8)


def test_robustness_with_two_keys_end_to_end(tmp_path):
    """Bundled sd3-reflow, two keys of 2 images each: key k marks seed indices 2k, 2k + 1, each marked image is its
    unmarked twin's seed with the key injected, and the tables carry both keys."""
    from diffeval.generators import load_generator
    from diffeval.watermark.embed import EmbedSettings, generate
    from diffeval.watermark.robustness import run_robustness

    cfg = RobustnessConfig(generators=("sd3-reflow",), patterns=("rand",), keys=2, n=2, attacks="clean",
                           quality=False, key_seed=5)
    cfg.detect.steps = 2
    table, scores, _ = run_robustness(cfg, tmp_path, progress=False)
    assert list(table["key"]) == [0, 1] and (table["n_unmarked"] == 4).all()  # default n_unmarked = keys * n
    g = load_generator("sd3-reflow")
    key1 = make_key(g.noise_shape, "rand", *key_geometry(g), seed=6)
    assert table.loc[1, "key_fingerprint"] == key1.fingerprint
    cached = sorted(p.name for p in (tmp_path / "cache").glob("sd3-reflow-rand-*.pt"))
    marked1 = [torch.load(tmp_path / "cache" / c, weights_only=True) for c in cached]
    expected = generate(g, key1, 2, EmbedSettings(), first_index=2)
    assert any(m.shape == expected.shape and torch.allclose(m, expected, atol=1e-5) for m in marked1)
    assert set(scores["key"]) == {0, 1}


def test_calibrated_rows_use_the_null():
    """With a null the rows come from the whitened cosine: its conformal p-values never fall below 1/(n+1), and a
    null whose noise is the unmarked noise's own process keeps every key's FPR near alpha."""
    from diffeval.watermark.null import estimate_null

    cfg = RobustnessConfig(keys=5, n=20, n_unmarked=2000)
    keys = [make_key(SHAPE, "rand", 4, (2,), seed=k) for k in range(5)]
    rec = _recovered(keys, cfg.n, cfg.n_unmarked, 1.0, seed=1)
    coloured = torch.tensor([1.0, 0.6, 1.5], dtype=torch.float64)[:, None, None]  # channel scales
    rec = {k: v * coloured - 0.3 for k, v in rec.items()}
    g = torch.Generator().manual_seed(9)
    null = estimate_null(torch.randn(999, *SHAPE, generator=g, dtype=torch.float64) * coloured - 0.3, keys[0])
    timing = {("rand", k): 0.1 for k in range(5)}
    rows, frames = _pattern_rows("toy", "rand", keys, attacks_from("clean")[0], rec, timing, cfg, null)
    table, scores = pd.DataFrame(rows), pd.concat(frames)
    assert scores["p_value"].min() >= 1 / 1000 - 1e-12
    assert (table["fpr_at_alpha"] <= 0.025).all() and (table["auc"] == 1.0).all()
    plain, _ = _pattern_rows("toy", "rand", keys, attacks_from("clean")[0], rec, timing, cfg)
    assert any(abs(r["fpr_at_alpha"] - q["fpr_at_alpha"]) > 0 for r, q in zip(rows, plain))  # it is another test


def test_robustness_calibrated_end_to_end(tmp_path):
    from diffeval.watermark.robustness import run_robustness

    cfg = RobustnessConfig(generators=("sd3-reflow",), patterns=("rings", "rand"), keys=2, n=2, attacks="clean",
                           quality=False, calibrate=16)
    cfg.detect.steps = 2
    table, scores, _ = run_robustness(cfg, tmp_path, progress=False)
    assert len(table) == 4 and scores["p_value"].min() >= 1 / 17 - 1e-12  # conformal p-values over 16 images
    assert len(list((tmp_path / "cache").glob("sd3-reflow-calibration-*.pt"))) == 2  # images and their noise
    cfg.calibrate = 14  # 13 key coordinates need at least 15 images
    with pytest.raises(ValueError, match="at least 15 images"):
        run_robustness(cfg, tmp_path / "few", progress=False)
    with pytest.raises(ValueError, match="--calibrate goes with the cosine test"):
        RobustnessConfig(calibrate=5, detect=DetectSettings(test="ncx2"))


@pytest.mark.parametrize("strength", [1.0, 0.0])
def test_identification_among_m_candidates_with_decoy_keys(strength):
    from diffeval.watermark.robustness import identify_candidates, robustness_columns

    cfg = RobustnessConfig(keys=4, n=40, n_unmarked=50, identify=(2, 16))
    keys = [make_key(SHAPE, "rand", 4, (2,), seed=k) for k in range(4)]
    decoys = [make_key(SHAPE, "rand", 4, (2,), seed=k) for k in range(4, 16)]
    rec = _recovered(keys, cfg.n, cfg.n_unmarked, strength)
    timing = {("rand", k): 0.1 for k in range(4)}
    rows, _ = _pattern_rows("toy", "rand", keys, attacks_from("clean")[0], rec, timing, cfg, None, decoys)
    table = pd.DataFrame(rows, columns=robustness_columns(cfg))
    assert list(table.columns[14:17]) == ["identification", "identification_2", "identification_16"]
    if strength == 1.0:
        assert (table[["identification_2", "identification_16"]] == 1.0).all().all()
    else:  # chance: 1/2 and 1/16
        assert abs(table["identification_2"].mean() - 0.5) < 0.12
        assert table["identification_16"].mean() < 0.2
    assert identify_candidates(1, 2) == [0, 1] and identify_candidates(3, 2) == [3, 0]
    assert identify_candidates(5, 16) == list(range(16)) and identify_candidates(20, 4) == [20, 0, 1, 2]
    s = over_keys(table)
    assert {"identification_16_median", "identification_16_worst"} <= set(s.columns)
    with pytest.raises(ValueError, match="--identify"):
        RobustnessConfig(identify=(1,))
