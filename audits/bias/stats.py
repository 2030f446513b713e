"""Statistics for demographic bias audits of image generators.

Input data: one row per generated image, with the prompt it was generated from and the attribute
value a classifier assigned to it (or an abstention: a missing value, or ``abstain_value``).
Proportions are always among non-abstaining images of a prompt; abstentions are counted, never dropped.

Contents: Wilson intervals; per-prompt proportion tables; a two-level (prompt, then seed)
bootstrap; exact binomial and chi-square goodness-of-fit tests against a stated target;
Benjamini-Hochberg FDR control; imbalance metrics with their exact null expectation at the same n;
Rogan-Gladen correction for classifier error; sample-size planning; Monte Carlo checks of interval
coverage and realised FDR. Everything random takes a seed and is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln, xlogy

from diffeval.quality import wilson_interval

ArrayLike = float | int | np.ndarray

# Relative tolerance scipy.stats.binomtest uses to decide that two pmf values are equal.
_BINOMTEST_RERR = 1 + 1e-7


def _z(confidence: float) -> float:
    """Two-sided standard normal quantile for ``confidence`` in (0, 1)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


# --------------------------------------------------------------------------- intervals and tables


def abstain_mask(values: pd.Series, abstain_value: object = None) -> np.ndarray:
    """Boolean (n_rows,) mask of abstentions: missing values, and values equal to ``abstain_value``."""
    mask = np.array(values.isna(), dtype=bool)
    if abstain_value is not None:
        mask |= (values == abstain_value).to_numpy()
    return mask


def _sorted_categories(values: pd.Series) -> list:
    """Distinct values, sorted when they are comparable, else in order of appearance."""
    unique = list(pd.unique(values))
    try:
        return sorted(unique)
    except TypeError:
        return unique


def proportions_table(df: pd.DataFrame, prompt_col: str = "prompt", attr_col: str = "value",
                      abstain_value: object = None, confidence: float = 0.95) -> pd.DataFrame:
    """Per-(prompt, value) proportions among a prompt's non-abstaining images, with Wilson intervals.

    ``df``: one row per image. Rows whose ``attr_col`` is missing or equals ``abstain_value`` abstain.
    Every value seen anywhere gets a row for every prompt (count 0 where unseen). Columns:
    prompt, value, count (images of the prompt with that value), n (non-abstaining images of the prompt),
    proportion (count / n in [0, 1], nan when n = 0), lo, hi (Wilson interval), abstained (images of the
    prompt that abstained), n_images (all images of the prompt), abstain_rate (abstained / n_images).
    If every image abstained, each prompt gets one row with value nan and n = 0.
    """
    prompts = pd.unique(df[prompt_col])
    abstained = abstain_mask(df[attr_col], abstain_value)
    n_images = df.groupby(prompt_col, sort=False).size().reindex(prompts)
    n_abstained = pd.Series(abstained, index=df.index).groupby(df[prompt_col], sort=False).sum().reindex(prompts)
    kept = df.loc[~abstained, [prompt_col, attr_col]]
    categories = _sorted_categories(kept[attr_col]) or [np.nan]
    counts = (kept.groupby([prompt_col, attr_col], sort=False).size()
              .reindex(pd.MultiIndex.from_product([prompts, categories]), fill_value=0))
    n = (n_images - n_abstained).to_numpy()
    n_rep = np.repeat(n, len(categories))
    k = counts.to_numpy()
    lo, hi = wilson_interval(k, n_rep, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = np.where(n_rep > 0, k / np.maximum(n_rep, 1), np.nan)
    out = pd.DataFrame({
        "prompt": np.repeat(prompts, len(categories)),
        "value": np.tile(np.array(categories, dtype=object), len(prompts)),
        "count": k.astype(int),
        "n": n_rep.astype(int),
        "proportion": proportion,
        "lo": lo,
        "hi": hi,
        "abstained": np.repeat(n_abstained.to_numpy(), len(categories)).astype(int),
        "n_images": np.repeat(n_images.to_numpy(), len(categories)).astype(int),
    })
    out["abstain_rate"] = out["abstained"] / out["n_images"]
    return out


# --------------------------------------------------------------------------- hierarchical bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap distribution (n_boot,) with the full-data estimate and a percentile interval.

    ``n_undefined`` replicates where the statistic was nan (e.g. every resampled image abstained)
    are kept in ``distribution`` but left out of the interval.
    """

    estimate: float
    lo: float
    hi: float
    distribution: np.ndarray
    confidence: float
    n_boot: int
    seed: int
    n_undefined: int


def hierarchical_weights(groups: list[np.ndarray], n_rows: int, n_boot: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Row multiplicities (n_boot, n_rows) of a two-level bootstrap.

    ``groups``: row indices of each prompt. Prompts are drawn with replacement (P draws); for every
    copy of a prompt its n_p rows are drawn with replacement. All copies of a prompt together draw
    copies * n_p rows uniformly from that prompt, which is one multinomial, so no loop over copies.
    """
    n_prompts = len(groups)
    weights = np.zeros((n_boot, n_rows))
    copies = rng.multinomial(n_prompts, np.full(n_prompts, 1.0 / n_prompts), size=n_boot)
    for j, rows in enumerate(groups):
        weights[:, rows] = rng.multinomial(copies[:, j] * len(rows), np.full(len(rows), 1.0 / len(rows)))
    return weights


def hierarchical_bootstrap(df: pd.DataFrame, stat_fn: Callable[[np.ndarray], np.ndarray], n_boot: int = 2000,
                           seed: int = 0, prompt_col: str = "prompt", confidence: float = 0.95,
                           max_cells: int = 4_000_000) -> BootstrapResult:
    """Prompt-then-seed bootstrap of a pooled statistic with a percentile interval.

    ``stat_fn`` maps row weights (B, n_rows) (multiplicities of ``df``'s rows, in row order) to (B,)
    statistics; ``pooled_proportion_stat`` builds one. The estimate is ``stat_fn`` at all weights 1.
    Replicates are generated in chunks of at most ``max_cells`` weights (memory bound); the random
    stream depends only on ``seed``, ``n_boot``, the row/prompt layout and ``max_cells``.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    codes, uniques = pd.factorize(df[prompt_col], sort=False)
    if len(codes) == 0 or (codes < 0).any():
        raise ValueError(f"need at least one row and no missing values in {prompt_col!r}")
    groups = [np.flatnonzero(codes == j) for j in range(len(uniques))]
    n_rows = len(codes)
    rng = np.random.default_rng(seed)
    chunk = max(1, max_cells // n_rows)
    parts = []
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        parts.append(np.asarray(stat_fn(hierarchical_weights(groups, n_rows, b, rng)), dtype=float).reshape(b))
    dist = np.concatenate(parts)
    estimate = float(np.asarray(stat_fn(np.ones((1, n_rows))), dtype=float).reshape(1)[0])
    finite = dist[np.isfinite(dist)]
    alpha = 1 - confidence
    lo, hi = (np.quantile(finite, [alpha / 2, 1 - alpha / 2]) if finite.size else (np.nan, np.nan))
    return BootstrapResult(estimate, float(lo), float(hi), dist, confidence, n_boot, seed, int(dist.size - finite.size))


def pooled_proportion_stat(df: pd.DataFrame, value: object, attr_col: str = "value",
                           abstain_value: object = None) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic for ``hierarchical_bootstrap``: share of ``value`` among all non-abstaining images.

    Returns a function of weights (B, n_rows) -> (B,) in [0, 1] (nan where no weight on a
    non-abstaining image).
    """
    valid = ~abstain_mask(df[attr_col], abstain_value)
    hit = (valid & (df[attr_col] == value).to_numpy()).astype(float)
    valid = valid.astype(float)

    def stat(weights: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (weights @ hit) / (weights @ valid)

    return stat


# --------------------------------------------------------------------------- tests against a target


def binomial_test_per_prompt(counts: ArrayLike, n: ArrayLike, p0: ArrayLike,
                             confidence: float = 0.95) -> pd.DataFrame:
    """Exact two-sided binomial test (``scipy.stats.binomtest``) of each prompt's proportion against p0.

    counts, n, p0 broadcast to (P,). Columns: count, n, proportion, p0, pvalue (nan when n = 0),
    lo, hi (Wilson interval for the proportion).
    """
    k, m, p = np.broadcast_arrays(np.atleast_1d(np.asarray(counts, dtype=int)), np.asarray(n, dtype=int),
                                  np.asarray(p0, dtype=float))
    pvalues = np.array([stats.binomtest(int(ki), int(mi), float(pi)).pvalue if mi > 0 else np.nan
                        for ki, mi, pi in zip(k, m, p)])
    lo, hi = wilson_interval(k, m, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        proportion = np.where(m > 0, k / np.maximum(m, 1), np.nan)
    return pd.DataFrame({"count": k, "n": m, "proportion": proportion, "p0": p, "pvalue": pvalues,
                         "lo": np.atleast_1d(lo), "hi": np.atleast_1d(hi)})


def chisquare_per_prompt(counts_matrix: np.ndarray, expected_probs: np.ndarray) -> pd.DataFrame:
    """Chi-square goodness of fit (``scipy.stats.chisquare``) of each prompt's counts to a reference.

    counts_matrix: (P, K) category counts; expected_probs: (K,) or (P, K), positive, rows summing to 1
    (parity 1/K, or e.g. the training-data distribution). Columns: n, chi2, dof (K - 1), pvalue
    (nan when n = 0), min_expected (smallest expected count; the chi-square approximation is
    unreliable below about 5).
    """
    obs = np.atleast_2d(np.asarray(counts_matrix, dtype=float))
    probs = np.broadcast_to(np.atleast_2d(np.asarray(expected_probs, dtype=float)), obs.shape)
    if np.any(probs <= 0) or not np.allclose(probs.sum(axis=1), 1.0):
        raise ValueError("expected_probs must be positive and sum to 1")
    n = obs.sum(axis=1)
    chi2 = np.full(len(obs), np.nan)
    pvalue = np.full(len(obs), np.nan)
    for i in np.flatnonzero(n > 0):
        res = stats.chisquare(obs[i], f_exp=probs[i] * n[i])
        chi2[i], pvalue[i] = res.statistic, res.pvalue
    return pd.DataFrame({"n": n.astype(int), "chi2": chi2, "dof": obs.shape[1] - 1, "pvalue": pvalue,
                         "min_expected": (probs * n[:, None]).min(axis=1)})


def benjamini_hochberg(pvalues: ArrayLike, q: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg step-up procedure along the last axis.

    Returns (rejected bool, adjusted p-values in [0, 1]) with the shape of ``pvalues``. nan p-values
    (tests not performed, e.g. n = 0) are not part of the family: adjusted nan, never rejected.
    """
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    p = np.asarray(pvalues, dtype=float)
    scalar = p.ndim == 0
    p = np.atleast_1d(p)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(p, axis=-1)  # nan sorts last
    ps = np.take_along_axis(p, order, axis=-1)
    m = np.isfinite(p).sum(axis=-1, keepdims=True)
    rank = np.arange(1, p.shape[-1] + 1)
    scaled = np.where(np.isfinite(ps), ps * m / rank, np.inf)
    adj_sorted = np.minimum.accumulate(scaled[..., ::-1], axis=-1)[..., ::-1]
    adj_sorted = np.where(np.isfinite(ps), np.minimum(adj_sorted, 1.0), np.nan)
    adjusted = np.empty_like(adj_sorted)
    np.put_along_axis(adjusted, order, adj_sorted, axis=-1)
    # reject ranks up to the largest i with p_(i) <= i q / m (the textbook comparison, free of rounding in adjusted)
    passes = np.isfinite(ps) & (ps <= q * rank / np.maximum(m, 1))
    last = np.where(passes, rank, 0).max(axis=-1, keepdims=True)
    rejected = np.empty_like(passes)
    np.put_along_axis(rejected, order, rank <= last, axis=-1)
    if scalar:
        return rejected.reshape(()), adjusted.reshape(())
    return rejected, adjusted


# --------------------------------------------------------------------------- imbalance metrics


def gender_imbalance(p: ArrayLike) -> ArrayLike:
    """|p - 0.5| for a binary proportion p in [0, 1]; range [0, 0.5]."""
    arr = np.asarray(p, dtype=float)
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError("proportions must lie in [0, 1]")
    out = np.abs(arr - 0.5)
    return float(out) if out.ndim == 0 else out


def expected_abs_deviation_binomial(n: int, p: float = 0.5) -> float:
    """Exact E|K/n - p| for K ~ Binomial(n, p), by summing the pmf (0.13671875 at n = 8, p = 0.5).

    This is what a generator with true rate p scores on |proportion - p| with n images per prompt.
    """
    if n < 1 or not 0 <= p <= 1:
        raise ValueError("need n >= 1 and p in [0, 1]")
    k = np.arange(n + 1)
    return float(np.sum(stats.binom.pmf(k, n, p) * np.abs(k / n - p)))


def mad_from_uniform(props: ArrayLike) -> ArrayLike:
    """Mean absolute deviation of K-category proportions (..., K) from uniform 1/K; shape (...)."""
    arr = np.asarray(props, dtype=float)
    k = arr.shape[-1]
    out = np.abs(arr - 1.0 / k).mean(axis=-1)
    return float(out) if out.ndim == 0 else out


def compositions(n: int, k: int) -> np.ndarray:
    """All (C(n+k-1, k-1), k) non-negative integer vectors summing to n (the multinomial support)."""
    parts = np.zeros((1, 0), dtype=np.int64)
    remaining = np.array([n], dtype=np.int64)
    for _ in range(k - 1):
        reps = remaining + 1
        parts = np.repeat(parts, reps, axis=0)
        first = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        remaining = np.repeat(remaining, reps) - first
        parts = np.column_stack([parts, first])
    return np.column_stack([parts, remaining])


def multinomial_logpmf(x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """log P(x) for count vectors x (S, K) under Multinomial(sum of a row, probs (K,)); shape (S,)."""
    n = x.sum(axis=-1)
    return gammaln(n + 1) - gammaln(x + 1).sum(axis=-1) + xlogy(x, probs).sum(axis=-1)


def expected_mad_multinomial(n: int, probs: ArrayLike, method: str = "auto", max_exact_states: int = 200_000,
                             n_draws: int = 200_000, seed: int = 0) -> float:
    """E[mad_from_uniform(X / n)] for X ~ Multinomial(n, probs (K,)).

    ``method``: "exact" enumerates all C(n+K-1, K-1) outcomes; "monte_carlo" averages ``n_draws``
    seeded draws (standard error about sd / sqrt(n_draws)); "auto" is exact when the outcome count is
    at most ``max_exact_states``, Monte Carlo otherwise. With uniform probs this is the null value a
    fair generator scores at n images per prompt.
    """
    pr = np.asarray(probs, dtype=float)
    if n < 1 or pr.ndim != 1 or np.any(pr < 0) or not np.isclose(pr.sum(), 1.0):
        raise ValueError("need n >= 1 and a probability vector")
    states = comb(n + len(pr) - 1, len(pr) - 1)
    if method == "auto":
        method = "exact" if states <= max_exact_states else "monte_carlo"
    if method == "exact":
        x = compositions(n, len(pr))
        return float(np.sum(np.exp(multinomial_logpmf(x, pr)) * mad_from_uniform(x / n)))
    if method == "monte_carlo":
        rng = np.random.default_rng(seed)
        chunk = max(1, 2_000_000 // len(pr))
        total = 0.0
        for start in range(0, n_draws, chunk):
            total += float(mad_from_uniform(rng.multinomial(n, pr, size=min(chunk, n_draws - start)) / n).sum())
        return total / n_draws
    raise ValueError(f"method must be 'auto', 'exact' or 'monte_carlo', got {method!r}")


# --------------------------------------------------------------------------- classifier error


def _youden(sensitivity: float, specificity: float) -> float:
    """sens + spec - 1, which must be positive for the correction to be defined."""
    if not (0 <= sensitivity <= 1 and 0 <= specificity <= 1):
        raise ValueError("sensitivity and specificity must lie in [0, 1]")
    j = sensitivity + specificity - 1
    if j <= 0:
        raise ValueError(f"sensitivity + specificity must exceed 1 (got {sensitivity + specificity:.4g}): "
                         "the classifier is no better than chance and the true rate is not identifiable")
    return j


def rogan_gladen(p_observed: ArrayLike, sensitivity: float, specificity: float) -> ArrayLike:
    """True-rate estimate (p + spec - 1) / (sens + spec - 1), clipped to [0, 1].

    p_observed: share of images the classifier labels positive. sensitivity = P(labelled positive |
    truly positive), specificity = P(labelled negative | truly negative), treated as known.
    """
    j = _youden(sensitivity, specificity)
    out = np.clip((np.asarray(p_observed, dtype=float) + specificity - 1) / j, 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def rogan_gladen_interval(k: ArrayLike, n: ArrayLike, sensitivity: float, specificity: float,
                          confidence: float = 0.95) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """(estimate, lo, hi) for the true rate from k of n images labelled positive.

    The transform is increasing when sens + spec > 1, so the Wilson interval endpoints for the observed
    rate are mapped through it (and clipped to [0, 1]). Sampling error only: sensitivity and
    specificity are taken as exact, so the interval is too narrow when they are themselves estimated.
    """
    lo, hi = wilson_interval(k, n, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_obs = np.asarray(k, dtype=float) / np.asarray(n, dtype=float)
    return (rogan_gladen(p_obs, sensitivity, specificity), rogan_gladen(lo, sensitivity, specificity),
            rogan_gladen(hi, sensitivity, specificity))


# --------------------------------------------------------------------------- planning


class SampleSizeTooLarge(ValueError):
    """The images per prompt a plan asks for exceed what the search looks at (or are infinite)."""


def images_per_prompt_for_margin(margin: float, p: float = 0.5, confidence: float = 0.95) -> int:
    """Images per prompt so that the normal-approximation half-width is <= margin: ceil(z^2 p(1-p) / margin^2).

    margin in (0, 1) as a proportion (0.05 = +-5 points); 385 for +-0.05 at p = 0.5, 95%.
    """
    if not 0 < margin < 1 or not 0 <= p <= 1:
        raise ValueError("need margin in (0, 1) and p in [0, 1]")
    z = _z(confidence)
    with np.errstate(divide="ignore", over="ignore"):
        n = np.ceil(z * z * p * (1 - p) / np.float64(margin) ** 2 - 1e-9)
    if not np.isfinite(n):
        raise SampleSizeTooLarge(f"+-{margin:g} needs more images per prompt than a float can count")
    return max(1, int(n))


def binomial_two_sided_pvalues(n: int, p0: float) -> np.ndarray:
    """Exact two-sided p-values (n + 1,) for every k = 0..n, as ``scipy.stats.binomtest`` computes them.

    p(k) = sum of pmf(j) over j with pmf(j) <= pmf(k) * (1 + 1e-7), capped at 1.
    """
    f = stats.binom.pmf(np.arange(n + 1), n, p0)
    sorted_f = np.sort(f)
    cum = np.cumsum(sorted_f)
    idx = np.searchsorted(sorted_f, f * _BINOMTEST_RERR, side="right") - 1
    return np.minimum(cum[idx], 1.0)


def exact_binomial_power(n: int, p0: float, p1: float, alpha: float = 0.05) -> float:
    """Power in [0, 1] of the exact two-sided binomial test of p0 at level alpha when the true rate is p1."""
    reject = binomial_two_sided_pvalues(n, p0) <= alpha
    return float(stats.binom.pmf(np.arange(n + 1), n, p1)[reject].sum())


def images_per_prompt_for_power(p0: float, p1: float, alpha: float = 0.05, power: float = 0.8,
                                max_n: int = 100_000) -> int:
    """Smallest n at which the exact two-sided binomial test of p0 has power >= ``power`` against p1.

    Exact power is not monotone in n (discreteness), so every n is scanned upward from n_start and the
    first n reaching the target is returned. n_start = 1 when the normal-approximation size n_normal is
    <= 2000, else n_normal // 2 (far below the target there; keeps the scan O(n_normal^2) at worst).
    Raises ValueError when no n <= max_n reaches the target.
    """
    if not (0 < p0 < 1 and 0 <= p1 <= 1) or p0 == p1:
        raise ValueError("need p0 in (0, 1), p1 in [0, 1] and p1 != p0")
    if alpha == 0 and 0 < power < 1:  # e.g. q / prompts underflowing: no n rejects at level 0
        raise SampleSizeTooLarge("alpha = 0 rejects at no n")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must lie in (0, 1)")
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    with np.errstate(over="ignore", invalid="ignore"):
        n_float = np.ceil(((za * np.sqrt(p0 * (1 - p0)) + zb * np.sqrt(p1 * (1 - p1))) / (p1 - p0)) ** 2)
    if not n_float <= max_n:  # also inf and NaN (alpha so small that its z is infinite)
        raise SampleSizeTooLarge(f"about {n_float:.3g} images per prompt needed (normal approximation), "
                                 f"above max_n={max_n}")
    n_normal = int(n_float)
    n_start = 1 if n_normal <= 2000 else n_normal // 2
    for n in range(n_start, max_n + 1):
        if exact_binomial_power(n, p0, p1, alpha) >= power:
            return n
    raise SampleSizeTooLarge(f"no n <= max_n={max_n} reaches power {power} for p0={p0}, p1={p1}")


# --------------------------------------------------------------------------- simulations


def simulate_coverage(true_p: float, n: int, n_audits: int = 1000, seed: int = 0, confidence: float = 0.95) -> float:
    """Share in [0, 1] of ``n_audits`` simulated audits (n images, true rate true_p) whose Wilson interval
    covers true_p."""
    rng = np.random.default_rng(seed)
    lo, hi = wilson_interval(rng.binomial(n, true_p, size=n_audits), n, confidence)
    return float(np.mean((lo <= true_p) & (true_p <= hi)))


def wilson_exact_coverage(true_p: float, n: int, confidence: float = 0.95) -> float:
    """Exact coverage probability in [0, 1] of the Wilson interval at n images and true rate true_p (sums the pmf)."""
    k = np.arange(n + 1)
    lo, hi = wilson_interval(k, n, confidence)
    return float(stats.binom.pmf(k, n, true_p)[(lo <= true_p) & (true_p <= hi)].sum())


def simulate_bh_fdr(n_prompts: int, n_null: int, effect: float, n: int, q: float = 0.05, n_audits: int = 500,
                    seed: int = 0, p0: float = 0.5, correction: str = "bh") -> float:
    """Realised FDR: mean over audits of false rejections / max(1, rejections).

    Each audit has ``n_prompts`` prompts with n images; the first ``n_null`` have true rate p0, the
    others p0 + effect. Each prompt gets the exact two-sided binomial test of p0; rejections at level q
    with Benjamini-Hochberg (``correction="bh"``) or per-test p <= q (``correction="none"``).
    """
    if not 0 <= n_null <= n_prompts or not 0 <= p0 + effect <= 1:
        raise ValueError("need 0 <= n_null <= n_prompts and p0 + effect in [0, 1]")
    rng = np.random.default_rng(seed)
    true_p = np.where(np.arange(n_prompts) < n_null, p0, p0 + effect)
    counts = rng.binomial(n, true_p, size=(n_audits, n_prompts))
    pvalues = binomial_two_sided_pvalues(n, p0)[counts]
    if correction == "bh":
        rejected = benjamini_hochberg(pvalues, q)[0]
    elif correction == "none":
        rejected = pvalues <= q
    else:
        raise ValueError(f"correction must be 'bh' or 'none', got {correction!r}")
    false = rejected[:, :n_null].sum(axis=1)
    return float(np.mean(false / np.maximum(1, rejected.sum(axis=1))))
