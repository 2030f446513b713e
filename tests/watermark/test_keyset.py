"""Key sets (``watermark.keyset``): one member per marked image, the best-member test and its false-positive rate
(Bonferroni, and exact when calibrated), files, and the commands with ``--subkeys``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from scipy import stats

from diffeval.cli import main
from diffeval.watermark import detect
from diffeval.watermark.embed import marked_noise
from diffeval.watermark.gaussian_shading import make_shading_key, save_shading_key
from diffeval.watermark.keyfiles import load_any_key, scheme_of
from diffeval.watermark.keys import make_key
from diffeval.watermark.keyset import KeySet, load_keyset, make_keyset, member_index, save_keyset
from diffeval.watermark.null import estimate_null
from diffeval.watermark.statistics import inject

from .test_null import coloured_noise

SHAPE = (3, 14, 14)
ANNULUS = {"pattern": "rand", "radius": 5.0, "channels": (0, 1, 2), "inner_radius": 2.0}


class NoiseOnly:
    """The part of a Generator that ``marked_noise`` uses: white noise, sample i from (seed, i)."""

    noise_shape = SHAPE

    def initial_noise(self, n: int, seed: int, first_index: int = 0) -> torch.Tensor:
        return torch.stack([torch.randn(*SHAPE, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
                            for i in range(first_index, first_index + n)])


def _run(args):
    return CliRunner().invoke(main, args, obj={})


def test_member_index_is_per_sample_and_uniform():
    a = member_index(3, range(0, 4000), 8)
    assert np.array_equal(a[100:110], member_index(3, range(100, 110), 8))  # depends on (seed, i) only
    assert not np.array_equal(a[:50], member_index(4, range(50), 8))
    counts = np.bincount(a, minlength=8)
    assert stats.chisquare(counts).pvalue > 1e-3, counts


def test_members_are_reproducible_independent_and_share_the_geometry():
    ks = make_keyset(SHAPE, 4, seed=5, name="u", **ANNULUS)
    again = make_keyset(SHAPE, 4, seed=5, name="u", **ANNULUS)
    assert ks.fingerprint == again.fingerprint and ks.size == 4 and ks.pattern == "rand"
    assert len({m.fingerprint for m in ks.members}) == 4
    assert make_keyset(SHAPE, 4, seed=6, **ANNULUS).fingerprint != ks.fingerprint
    assert make_keyset(SHAPE, 4, seed=None, **ANNULUS).fingerprint != make_keyset(SHAPE, 4, **ANNULUS).fingerprint
    gs = make_keyset(SHAPE, 3, "gaussian-shading", seed=5)
    assert gs.shading and all(torch.equal(m.message, gs.members[0].message) for m in gs.members)
    assert len({m.secret for m in gs.members}) == 3
    with pytest.raises(ValueError, match="at least 2"):
        KeySet((ks.members[0],))
    with pytest.raises(ValueError, match="share channels"):
        KeySet((ks.members[0], make_key(SHAPE, "rand", 3.0, (0,), seed=1)))
    with pytest.raises(ValueError, match="one scheme"):
        KeySet((ks.members[0], gs.members[0]))


@pytest.mark.parametrize("scheme", ["tree-ring", "gaussian-shading"])
def test_each_sample_carries_its_own_member(scheme):
    g = NoiseOnly()
    ks = make_keyset(SHAPE, 4, scheme, seed=1, **({} if scheme == "gaussian-shading" else ANNULUS))
    z = marked_noise(g, ks, 12, seed=2, first_index=5)
    which = member_index(2, range(5, 17), 4)
    for i in range(12):
        alone = marked_noise(g, ks.members[which[i]], 1, seed=2, first_index=5 + i)
        assert torch.equal(z[i], alone[0])
    assert torch.equal(z[3:6], marked_noise(g, ks, 3, seed=2, first_index=8))  # independent of the batch


def test_a_gaussian_shading_key_set_spreads_the_signs():
    """One Gaussian Shading key fixes every coordinate's sign for all its images; with 64 members a coordinate is
    positive in about half of them, and the latents stay N(0, 1)."""
    g = NoiseOnly()
    single = marked_noise(g, make_shading_key(SHAPE, seed=0), 256, seed=0)
    spread = marked_noise(g, make_keyset(SHAPE, 64, "gaussian-shading", seed=0), 256, seed=0)
    assert set((single > 0).double().mean(0).unique().tolist()) <= {0.0, 1.0}
    share = (spread > 0).double().mean(0)
    assert float((share - 0.5).abs().mean()) < 0.1
    assert stats.kstest(spread.flatten()[::7].numpy(), "norm").pvalue > 1e-3


@pytest.mark.parametrize("scheme", ["tree-ring", "gaussian-shading"])
def test_the_best_member_test_detects_and_holds_its_false_positive_rate(scheme):
    """White noise: every marked sample is detected; Bonferroni over 8 members keeps the FPR at alpha = 0.01 on
    4,000 unmarked samples at or below alpha (plus 3 binomial standard errors)."""
    g = NoiseOnly()
    ks = make_keyset(SHAPE, 8, scheme, seed=3, **({} if scheme == "gaussian-shading" else ANNULUS))
    settings = detect.DetectSettings(gs_statistic="raw")
    score, p = detect.test_key(marked_noise(g, ks, 64, seed=0), ks, settings)
    assert bool((p < 1e-6).all()), p.max()
    _, p0 = detect.test_key(g.initial_noise(4000, seed=9), ks, settings)
    fpr = float((p0 < 0.01).double().mean())
    assert fpr <= 0.01 + 3 * (0.01 * 0.99 / 4000) ** 0.5, fpr
    member_scores = torch.stack([detect.test_key(g.initial_noise(50, seed=9), m, settings)[0] for m in ks.members])
    assert torch.equal(detect.test_key(g.initial_noise(50, seed=9), ks, settings)[0], member_scores.amax(0))


def test_the_calibrated_best_member_test_is_exact_on_a_coloured_null():
    """On the coloured null of test_null, ranking the best member's whitened cosine among the reference images'
    best is exact: FPR at alpha = 0.05 within 4 standard errors for each of 10 key sets of 8 members; the plain
    Bonferroni test on the same noise is off for some."""
    ks_list = [make_keyset(SHAPE, 8, seed=200 + i, pattern="rings", radius=2.19, channels=(2,)) for i in range(10)]
    null = estimate_null(coloured_noise(4000, seed=0), ks_list[0].members[0])
    noise = coloured_noise(4000, seed=1)
    band = 4 * (0.05 * 0.95 / len(noise)) ** 0.5
    settings = detect.DetectSettings(alpha=0.05)
    calibrated = [float((detect.test_key(noise, ks, settings, null)[1] < 0.05).double().mean()) for ks in ks_list]
    plain = [float((detect.test_key(noise, ks, settings)[1] < 0.05).double().mean()) for ks in ks_list]
    assert np.abs(np.array(calibrated) - 0.05).max() < band, calibrated
    assert np.abs(np.array(plain) - 0.05).max() > band, plain
    for member in ks_list[0].members:  # a member injected into fresh coloured noise
        _, p = detect.test_key(inject(coloured_noise(50, seed=2), member), ks_list[0], settings, null)
        assert float(p.max()) < 0.05


def test_score_noise_names_the_set_and_its_nearest_member_distance():
    g = NoiseOnly()
    a, b = make_keyset(SHAPE, 4, seed=1, name="a", **ANNULUS), make_keyset(SHAPE, 4, seed=2, name="b", **ANNULUS)
    rows = detect.score_noise(marked_noise(g, b, 6, seed=0), [a, b], detect.DetectSettings())
    assert list(rows["key"]) == ["b"] * 6 and rows["detected"].all() and (rows["distance"] < 1e-6).all()


def test_key_set_files_round_trip_and_bad_files(tmp_path):
    for ks in (make_keyset(SHAPE, 3, seed=1, name="tr", **ANNULUS), make_keyset(SHAPE, 3, "gaussian-shading", seed=1)):
        path = save_keyset(ks, tmp_path / f"{ks.pattern}.safetensors")
        assert path.stat().st_mode & 0o777 == 0o600
        back = load_any_key(path)
        assert isinstance(back, KeySet) and back.fingerprint == ks.fingerprint and scheme_of(back) == scheme_of(ks)
    (tmp_path / "junk.safetensors").write_bytes(b"not a key")
    with pytest.raises(ValueError, match="is not a diffeval watermark key-set file"):
        load_keyset(tmp_path / "junk.safetensors")
    save_shading_key(make_shading_key(SHAPE, seed=0), tmp_path / "gs.safetensors")
    with pytest.raises(ValueError, match="key-set file"):
        load_keyset(tmp_path / "gs.safetensors")


def test_keygen_embed_detect_with_key_sets(tmp_path):
    for scheme in ("tree-ring", "gaussian-shading"):
        key = tmp_path / f"{scheme}.safetensors"
        r = _run(["watermark", "keygen", "-g", "sd3-reflow", "--scheme", scheme, "--subkeys", "4", "--seed", "1",
                  "--radius", "5", "--inner-radius", "2", "--channel", "0", "--channel", "1", "--channel", "2",
                  "--out", str(key)])
        assert r.exit_code == 0 and "key set of 4" in r.output, r.output
        r = _run(["watermark", "embed", "-g", "sd3-reflow", "--key", str(key), "--n", "3", "--unmarked",
                  "--out", str(tmp_path / scheme)])
        assert r.exit_code == 0, r.output
        r = _run(["watermark", "detect", str(tmp_path / scheme), "-g", "sd3-reflow", "--key", str(key),
                  "--gs-statistic", "raw", "--inv-steps", "4", "--out", str(tmp_path / f"{scheme}.csv")])
        assert r.exit_code == 0, r.output
        rows = pd.read_csv(tmp_path / f"{scheme}.csv", keep_default_na=False)
        marked = ~rows["image"].str.contains("unmarked")
        assert rows.loc[marked, "detected"].all() and not rows.loc[~marked, "detected"].any(), rows
    r = _run(["watermark", "calibrate", "-g", "sd3-reflow", "--key", str(tmp_path / "tree-ring.safetensors"),
              "--n", "220", "--inv-steps", "2", "--steps", "2", "--out", str(tmp_path / "null.safetensors")])
    assert r.exit_code == 0 and "216 coordinates" in r.output, r.output
    r = _run(["watermark", "keygen", "-g", "sd3-reflow", "--subkeys", "2", "--layout", "paper", "--radius", "2",
              "--out", str(tmp_path / "p.safetensors")])
    assert r.exit_code == 1 and "--subkeys" in r.output and "Traceback" not in r.output, r.output


def test_robustness_and_forgery_with_key_sets(tmp_path):
    r = _run(["watermark", "robustness", "-g", "sd3-reflow", "--scheme", "tree-ring", "--scheme", "gaussian-shading",
              "--pattern", "rand", "--keys", "2", "--subkeys", "3", "--n", "3", "--attacks", "clean",
              "--inv-steps", "2", "--calibrate", "16", "--identify", "2,4", "--no-progress",
              "--out", str(tmp_path / "rob")])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "rob" / "robustness.csv")
    assert len(table) == 4 and table["auc"].between(0, 1).all()
    assert '"subkeys": 3' in (tmp_path / "rob" / "robustness.json").read_text()
    r = _run(["watermark", "forgery", "-g", "sd3-reflow", "--keys", "1", "--subkeys", "2", "--known", "1,2",
              "--targets", "2", "--inv-steps", "2", "--no-progress", "--out", str(tmp_path / "forge")])
    assert r.exit_code == 0, r.output
    forged = pd.read_csv(tmp_path / "forge" / "forgery.csv")
    assert set(forged["scheme"]) == {"tree-ring", "gaussian-shading"} and forged["accepted"].between(0, 1).all()
    r = _run(["watermark", "robustness", "-g", "sd3-reflow", "--subkeys", "0", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 1 and "subkeys" in r.output and "Traceback" not in r.output, r.output
