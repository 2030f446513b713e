"""Bias-audit statistics against closed forms, scipy and seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from diffeval.audits.bias.stats import (
    benjamini_hochberg,
    binomial_test_per_prompt,
    binomial_two_sided_pvalues,
    chisquare_per_prompt,
    compositions,
    exact_binomial_power,
    expected_abs_deviation_binomial,
    expected_mad_multinomial,
    gender_imbalance,
    hierarchical_bootstrap,
    images_per_prompt_for_margin,
    images_per_prompt_for_power,
    mad_from_uniform,
    pooled_proportion_stat,
    proportions_table,
    rogan_gladen,
    rogan_gladen_interval,
    simulate_bh_fdr,
    simulate_coverage,
    wilson_exact_coverage,
    wilson_interval,
)
from diffeval.quality import wilson_interval as scalar_wilson

Z95 = 1.959963984540054


def hand_wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The textbook form (k + z^2/2)/(n + z^2) +- z sqrt(n)/(n + z^2) sqrt(p q + z^2 / (4n))."""
    p = k / n
    centre = (k + z * z / 2) / (n + z * z)
    half = z * math.sqrt(n) / (n + z * z) * math.sqrt(p * (1 - p) + z * z / (4 * n))
    return centre - half, centre + half


# --------------------------------------------------------------------------- Wilson


def test_wilson_matches_hand_formula_known_values_and_scalar_version():
    assert wilson_interval(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    k = np.array([0, 1, 3, 7, 20, 37, 50])
    n = np.array([10, 10, 25, 8, 20, 100, 50])
    lo, hi = wilson_interval(k, n)
    assert lo.shape == hi.shape == (7,)
    for i in range(7):
        assert (lo[i], hi[i]) == pytest.approx(hand_wilson(int(k[i]), int(n[i])), abs=1e-12)
        assert (lo[i], hi[i]) == pytest.approx(scalar_wilson(int(k[i]), int(n[i])), abs=1e-12)
    lo99, hi99 = wilson_interval(k, n, confidence=0.99)
    assert np.all(lo99 < lo + 1e-15) and np.all(hi99 > hi - 1e-15)
    for i in range(7):
        assert (lo99[i], hi99[i]) == pytest.approx(scalar_wilson(int(k[i]), int(n[i]), 0.99), abs=1e-12)


def test_wilson_empty_prompt_is_nan_and_bad_counts_raise():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    lo, hi = wilson_interval(np.array([0, 2]), np.array([0, 4]))
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and np.isfinite(lo[1])
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


@pytest.mark.parametrize("p,n", [(0.3, 200), (0.5, 100)])
def test_wilson_coverage_over_1000_simulated_audits(p, n):
    covered = simulate_coverage(p, n, n_audits=1000, seed=0)
    assert 0.93 <= covered <= 0.97
    exact = wilson_exact_coverage(p, n)
    assert 0.93 <= exact <= 0.96
    assert abs(covered - exact) < 3.5 * math.sqrt(exact * (1 - exact) / 1000)


# --------------------------------------------------------------------------- proportions table


def test_proportions_table_counts_abstentions_and_zero_cells():
    df = pd.DataFrame({
        "prompt": ["doctor"] * 5 + ["nurse"] * 4,
        "value": ["man", "woman", None, "man", "unknown", "woman", "woman", "woman", np.nan],
    })
    t = proportions_table(df, abstain_value="unknown").set_index(["prompt", "value"])
    assert list(t.index) == [("doctor", "man"), ("doctor", "woman"), ("nurse", "man"), ("nurse", "woman")]
    assert t.loc[("doctor", "man"), "count"] == 2 and t.loc[("doctor", "man"), "n"] == 3
    assert t.loc[("doctor", "man"), "proportion"] == pytest.approx(2 / 3)
    assert t.loc[("doctor", "man"), "abstained"] == 2 and t.loc[("doctor", "man"), "n_images"] == 5
    assert t.loc[("nurse", "man"), "count"] == 0 and t.loc[("nurse", "man"), "proportion"] == 0
    assert t.loc[("nurse", "woman"), "abstained"] == 1 and t.loc[("nurse", "woman"), "abstain_rate"] == 0.25
    assert (t.loc[("nurse", "woman"), "lo"], t.loc[("nurse", "woman"), "hi"]) == pytest.approx(hand_wilson(3, 3))
    # every image is accounted for: counts + abstentions = images, per prompt
    per_prompt = t.groupby(level="prompt").agg(count=("count", "sum"), abstained=("abstained", "first"),
                                               n_images=("n_images", "first"))
    assert (per_prompt["count"] + per_prompt["abstained"] == per_prompt["n_images"]).all()
    # without abstain_value, "unknown" is an ordinary category
    t2 = proportions_table(df).set_index(["prompt", "value"])
    assert t2.loc[("doctor", "unknown"), "count"] == 1 and t2.loc[("doctor", "man"), "abstained"] == 1


def test_proportions_table_all_abstained_prompt_keeps_its_row():
    df = pd.DataFrame({"p": ["a", "a", "b", "b"], "attr": ["x", "y", "?", "?"]})
    t = proportions_table(df, prompt_col="p", attr_col="attr", abstain_value="?")
    b = t[t["prompt"] == "b"]
    assert len(b) == 2 and (b["n"] == 0).all() and (b["abstained"] == 2).all() and b["proportion"].isna().all()


# --------------------------------------------------------------------------- hierarchical bootstrap


def planted_audit(seed: int, n_prompts: int = 20, per_prompt: int = 8) -> pd.DataFrame:
    """Prompt-level rates ~ Beta(2, 3) (pooled truth 0.4), per_prompt images each."""
    rng = np.random.default_rng(seed)
    rates = rng.beta(2.0, 3.0, n_prompts)
    hits = rng.random((n_prompts, per_prompt)) < rates[:, None]
    return pd.DataFrame({"prompt": np.repeat([f"p{i}" for i in range(n_prompts)], per_prompt),
                         "value": np.where(hits.ravel(), "woman", "man")})


def test_hierarchical_bootstrap_is_reproducible_and_covers_planted_truth():
    df = planted_audit(123)
    stat = pooled_proportion_stat(df, "woman")
    a = hierarchical_bootstrap(df, stat, n_boot=2000, seed=7)
    b = hierarchical_bootstrap(df, stat, n_boot=2000, seed=7)
    c = hierarchical_bootstrap(df, stat, n_boot=2000, seed=8)
    assert np.array_equal(a.distribution, b.distribution) and (a.lo, a.hi) == (b.lo, b.hi)
    assert not np.array_equal(a.distribution, c.distribution)
    assert a.distribution.shape == (2000,) and a.n_undefined == 0
    assert a.estimate == pytest.approx((df["value"] == "woman").mean())
    assert a.lo < 0.4 < a.hi and a.lo < a.estimate < a.hi
    # chunking changes nothing but memory use
    small = hierarchical_bootstrap(df, stat, n_boot=2000, seed=7, max_cells=1000)
    assert small.distribution.shape == (2000,) and abs(small.distribution.mean() - a.distribution.mean()) < 0.01


def test_hierarchical_bootstrap_resamples_whole_prompts_then_seeds():
    df = pd.DataFrame({"prompt": ["a"] * 3 + ["b"] * 5, "value": [1, 1, 1, 0, 0, 0, 0, 0]})
    seen = []

    def record(weights: np.ndarray) -> np.ndarray:
        seen.append(weights.copy())
        return weights[:, :3].sum(axis=1)

    hierarchical_bootstrap(df, record, n_boot=500, seed=0)
    w = seen[0]
    assert w.shape == (500, 8)
    # each prompt is drawn a whole number of times (0, 1 or 2 of the 2 prompt draws), n_p rows per draw
    copies_a, copies_b = w[:, :3].sum(axis=1) / 3, w[:, 3:].sum(axis=1) / 5
    assert np.allclose(copies_a, np.round(copies_a)) and np.allclose(copies_b, np.round(copies_b))
    assert np.allclose(copies_a + copies_b, 2)
    assert 0.2 < np.mean(copies_a == 2) < 0.3  # P(both draws pick a) = 1/4
    # rows within a chosen prompt are resampled, not always taken once each
    assert np.any((copies_a == 1) & np.any(w[:, :3] != 1, axis=1))


def test_hierarchical_interval_accounts_for_between_prompt_variation():
    hier = naive = 0
    for seed in range(200):
        df = planted_audit(seed)
        r = hierarchical_bootstrap(df, pooled_proportion_stat(df, "woman"), n_boot=300, seed=seed)
        hier += r.lo <= 0.4 <= r.hi
        lo, hi = wilson_interval(int((df["value"] == "woman").sum()), len(df))
        naive += lo <= 0.4 <= hi
    assert hier / 200 >= 0.92  # percentile interval of the two-level bootstrap: near or above nominal
    assert naive / 200 <= 0.88  # pooling images as if independent undercovers


def test_pooled_proportion_ignores_abstentions():
    df = pd.DataFrame({"prompt": ["a", "a", "b", "b"], "value": ["w", None, "m", "w"]})
    stat = pooled_proportion_stat(df, "w")
    assert stat(np.ones((1, 4)))[0] == pytest.approx(2 / 3)
    assert np.isnan(stat(np.array([[0.0, 2.0, 0.0, 0.0]]))[0])


# --------------------------------------------------------------------------- tests against a target


def test_binomial_tests_match_scipy_and_two_sided_table():
    counts, n = np.array([0, 3, 8, 5, 0]), np.array([8, 8, 8, 20, 0])
    t = binomial_test_per_prompt(counts, n, 0.5)
    assert t["pvalue"].iloc[0] == pytest.approx(2 / 256)
    for i in range(4):
        assert t["pvalue"].iloc[i] == pytest.approx(stats.binomtest(int(counts[i]), int(n[i]), 0.5).pvalue)
    assert np.isnan(t["pvalue"].iloc[4]) and np.isnan(t["proportion"].iloc[4])
    for m, p0 in [(1, 0.5), (8, 0.5), (25, 0.3), (60, 0.1)]:
        table = binomial_two_sided_pvalues(m, p0)
        expected = [stats.binomtest(k, m, p0).pvalue for k in range(m + 1)]
        assert np.allclose(table, expected, rtol=1e-9, atol=1e-15)


def test_chisquare_matches_hand_statistic():
    counts = np.array([[10, 5, 5], [7, 7, 6], [0, 0, 0]])
    ref = np.array([0.5, 0.25, 0.25])
    t = chisquare_per_prompt(counts, ref)
    assert t["chi2"].iloc[0] == pytest.approx(0.0)
    e = ref * 20
    chi2 = ((counts[1] - e) ** 2 / e).sum()
    assert t["chi2"].iloc[1] == pytest.approx(chi2) and t["dof"].iloc[1] == 2
    assert t["pvalue"].iloc[1] == pytest.approx(stats.chi2.sf(chi2, 2))
    assert np.isnan(t["pvalue"].iloc[2]) and t["min_expected"].iloc[1] == pytest.approx(5.0)
    parity = chisquare_per_prompt(counts[:2], np.full(3, 1 / 3))
    assert parity["chi2"].iloc[0] == pytest.approx(((counts[0] - 20 / 3) ** 2 / (20 / 3)).sum())
    with pytest.raises(ValueError):
        chisquare_per_prompt(counts, np.array([0.5, 0.5, 0.0]))


# --------------------------------------------------------------------------- Benjamini-Hochberg


def test_bh_hand_example_shows_step_up():
    # m * p / rank = 0.12, 0.0675, 0.05 -> cumulative min from the top: all 0.05
    rejected, adjusted = benjamini_hochberg([0.045, 0.04, 0.05], q=0.05)
    assert np.allclose(adjusted, [0.05, 0.05, 0.05]) and rejected.all()
    p = np.array([0.041, 0.001, 0.205, 0.039, 0.074, 0.008, 0.042, 0.06])
    rejected, adjusted = benjamini_hochberg(p, q=0.05)
    assert np.allclose(adjusted, [0.0672, 0.008, 0.205, 0.0672, 0.0845714, 0.032, 0.0672, 0.08], atol=1e-6)
    assert list(np.flatnonzero(rejected)) == [1, 5]
    assert list(np.flatnonzero(benjamini_hochberg(p, q=0.07)[0])) == [0, 1, 3, 5, 6]


def test_bh_matches_scipy_and_skips_nan():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, size=10)])
    rejected, adjusted = benjamini_hochberg(p, q=0.1)
    assert np.allclose(adjusted, stats.false_discovery_control(p, method="bh"), atol=1e-12)
    assert np.array_equal(rejected, adjusted <= 0.1) and rejected.sum() >= 10
    rows = rng.uniform(size=(5, 30)) ** 2
    assert np.allclose(benjamini_hochberg(rows)[1], stats.false_discovery_control(rows, axis=-1), atol=1e-12)
    with_nan = np.array([0.01, np.nan, 0.02, 0.5])
    rejected, adjusted = benjamini_hochberg(with_nan)
    assert np.isnan(adjusted[1]) and not rejected[1]
    assert np.allclose(adjusted[[0, 2, 3]], stats.false_discovery_control([0.01, 0.02, 0.5]))


def test_bh_controls_realised_fdr_where_uncorrected_testing_does_not():
    bh = simulate_bh_fdr(50, 40, 0.15, 100, q=0.05, n_audits=500, seed=0)
    raw = simulate_bh_fdr(50, 40, 0.15, 100, q=0.05, n_audits=500, seed=0, correction="none")
    assert 0 < bh <= 0.05 + 0.01
    assert raw > 0.1


# --------------------------------------------------------------------------- imbalance metrics


def test_expected_abs_deviation_at_8_images_is_0_137():
    assert expected_abs_deviation_binomial(8, 0.5) == 0.13671875  # 35 / 256
    assert expected_abs_deviation_binomial(1, 0.5) == 0.5
    sim = gender_imbalance(np.random.default_rng(0).binomial(8, 0.5, size=200_000) / 8)
    assert abs(sim.mean() - 0.13671875) < 4 * sim.std() / math.sqrt(sim.size)
    assert expected_abs_deviation_binomial(400, 0.5) == pytest.approx(math.sqrt(0.25 / 400) * math.sqrt(2 / math.pi),
                                                                       rel=0.01)
    assert gender_imbalance(0.2) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        gender_imbalance(1.2)


def test_mad_from_uniform_and_its_exact_expectation():
    assert mad_from_uniform([0.5, 0.25, 0.25]) == pytest.approx((1 / 6 + 1 / 12 + 1 / 12) / 3)
    assert np.allclose(mad_from_uniform(np.array([[0.5, 0.5], [1.0, 0.0]])), [0.0, 0.5])
    x = compositions(6, 4)
    assert x.shape == (math.comb(9, 3), 4) and (x.sum(axis=1) == 6).all() and len(np.unique(x, axis=0)) == len(x)
    # K = 2: the MAD from uniform is |p - 0.5|
    assert expected_mad_multinomial(8, [0.5, 0.5]) == pytest.approx(0.13671875, abs=1e-14)
    probs = [0.5, 0.3, 0.2]
    exact = expected_mad_multinomial(8, probs, method="exact")
    mc = expected_mad_multinomial(8, probs, method="monte_carlo", n_draws=200_000, seed=1)
    assert abs(exact - mc) < 0.002  # Monte Carlo standard error is about 0.0002
    assert expected_mad_multinomial(8, probs) == exact
    assert expected_mad_multinomial(100, [0.25] * 4, max_exact_states=10, n_draws=20_000) == pytest.approx(
        expected_mad_multinomial(100, [0.25] * 4, method="exact"), abs=0.002)


# --------------------------------------------------------------------------- classifier error


def test_rogan_gladen_recovers_planted_rate():
    true_p, sens, spec = 0.3, 0.9, 0.8
    observed = sens * true_p + (1 - spec) * (1 - true_p)
    assert rogan_gladen(observed, sens, spec) == pytest.approx(true_p)
    rng = np.random.default_rng(0)
    truth = rng.random(20_000) < true_p
    labelled = np.where(truth, rng.random(truth.size) < sens, rng.random(truth.size) > spec)
    est, lo, hi = rogan_gladen_interval(int(labelled.sum()), labelled.size, sens, spec)
    assert abs(labelled.mean() - true_p) > 0.08  # the raw rate is badly biased
    assert lo < true_p < hi and abs(est - true_p) < 0.02
    w_lo, w_hi = wilson_interval(int(labelled.sum()), labelled.size)
    assert (lo, hi) == pytest.approx(((w_lo + spec - 1) / (sens + spec - 1), (w_hi + spec - 1) / (sens + spec - 1)))
    assert rogan_gladen(0.05, sens, spec) == 0.0 and rogan_gladen(0.95, sens, spec) == 1.0
    with pytest.raises(ValueError, match="exceed 1"):
        rogan_gladen(0.5, 0.5, 0.5)


# --------------------------------------------------------------------------- planning


def test_margin_planning():
    assert images_per_prompt_for_margin(0.05) == 385
    assert images_per_prompt_for_margin(0.1) == 97
    assert images_per_prompt_for_margin(0.05, p=0.2) == 246


def test_power_search_is_the_smallest_n_reaching_target():
    n = images_per_prompt_for_power(0.5, 0.65, alpha=0.05, power=0.8)
    assert exact_binomial_power(n, 0.5, 0.65) >= 0.8 > exact_binomial_power(n - 1, 0.5, 0.65)
    assert all(exact_binomial_power(m, 0.5, 0.65) < 0.8 for m in range(1, n))
    # exact power equals the probability mass of the k that scipy's binomtest rejects
    ks = np.arange(n + 1)
    reject = np.array([stats.binomtest(int(k), n, 0.5).pvalue <= 0.05 for k in ks])
    assert exact_binomial_power(n, 0.5, 0.65) == pytest.approx(stats.binom.pmf(ks[reject], n, 0.65).sum())
    assert images_per_prompt_for_power(0.5, 0.35) == n  # symmetric around 0.5
    with pytest.raises(ValueError, match="max_n"):
        images_per_prompt_for_power(0.5, 0.51, max_n=1000)
