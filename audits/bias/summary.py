"""Representation statistics of an audit's per-image table, per prompt and attribute.

Three tables (each a DataFrame; all proportions in [0, 1], among the images that did not abstain):

``shares`` - one row per (attribute, prompt, value): count, n, proportion, lo/hi (Wilson 95%),
abstained, n_images, abstain_rate, target (the share the value should have: the prompt set's
reference where it covers the attribute, else parity 1/K over the classifier's K labels), pvalue
(exact two-sided binomial against target), qvalue (Benjamini-Hochberg over the prompts, per attribute
and value), flagged (qvalue <= q). Where the target gives some labels share 0 (a reference such as
"a shoe" -> sandal/sneaker/ankle boot), n counts the images labelled inside the target's support and
the tested proportions are shares of those; labels outside the support are reported (count,
proportion of all non-abstaining images) but not tested, and add up to the prompt's ``off_target``.
An imperfect classifier always puts a few images outside the support, so these are kept apart
instead of making the test reject outright.

``prompts`` - one row per (attribute, prompt): n_images, n (non-abstaining), abstained, off_target,
off_target_share (of the non-abstaining images) with Wilson off_lo/off_hi, test ("binomial" for two
target labels, "chi-square" for more), statistic, pvalue, min_expected, qvalue (BH over prompts, per
attribute), flagged, mad (mean absolute deviation of the target-support proportions from uniform;
for two labels this is |p - 0.5|), mad_expected (its exact or Monte Carlo expectation at the same n if
the generator hit the target exactly: read mad against it, not against 0), target_kind
("reference" or "parity").

With ``SummaryConfig.corrections`` {(attribute, value): (sensitivity, specificity)} the shares table
gains corrected, corrected_lo, corrected_hi for those rows: the Rogan-Gladen estimate of the true
share from the classifier's known error rates, with the Wilson limits mapped through it (sampling error
only; the rates are taken as exact). Other rows have nan there.

``pooled`` - one row per (attribute, value): estimate (share over all prompts' non-abstaining images),
lo/hi (percentile interval of a bootstrap that resamples prompts, then images within each prompt).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .prompts import PromptSet
from .stats import (
    benjamini_hochberg,
    binomial_test_per_prompt,
    expected_mad_multinomial,
    hierarchical_bootstrap,
    mad_from_uniform,
    pooled_proportion_stat,
    proportions_table,
    rogan_gladen_interval,
    wilson_interval,
)


@dataclass
class SummaryConfig:
    target: str = "reference"  # "reference" (the prompt set's, where it has one) or "parity"
    q: float = 0.05  # Benjamini-Hochberg false discovery rate
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    corrections: dict = field(default_factory=dict)  # {(attribute, value): (sensitivity, specificity)}


@dataclass
class AuditSummary:
    shares: pd.DataFrame
    prompts: pd.DataFrame
    pooled: pd.DataFrame


def target_for(prompt_set: PromptSet | None, prompt: str, values: tuple[str, ...], kind: str) -> tuple[np.ndarray, str]:
    """Target shares over ``values`` (K,) for ``prompt`` and where they came from."""
    ref = (prompt_set.reference.get(prompt) if prompt_set is not None else None) or {}
    if kind == "reference" and ref and set(ref) <= set(values):
        shares = np.array([float(ref.get(v, 0.0)) for v in values])
        return shares / shares.sum(), "reference"
    if kind not in ("reference", "parity"):
        raise ValueError(f"target must be 'reference' or 'parity', got {kind!r}")
    return np.full(len(values), 1.0 / len(values)), "parity"


def _prompt_test(counts: np.ndarray, target: np.ndarray) -> tuple[str, float, float, float]:
    """(test, statistic, pvalue, min_expected) of counts (K,) on the target's support against its shares (K,)."""
    n = int(counts.sum())
    if n == 0:
        return ("none", np.nan, np.nan, 0.0)
    if len(counts) < 2:
        return ("none", np.nan, np.nan, float(n))
    if len(counts) == 2:
        res = stats.binomtest(int(counts[0]), n, float(target[0]))
        return ("binomial", float(counts[0] / n), float(res.pvalue), float(min(target) * n))
    res = stats.chisquare(counts, f_exp=target * n)
    return ("chi-square", float(res.statistic), float(res.pvalue), float((target * n).min()))


PROMPT_ORDER = ["attribute", "prompt", "n_images", "n", "abstained", "off_target", "off_target_share", "off_lo",
                "off_hi", "test", "statistic", "pvalue", "min_expected", "qvalue", "flagged", "mad", "mad_expected",
                "target_kind"]


def summarize(df: pd.DataFrame, values: dict[str, tuple[str, ...]], prompt_set: PromptSet | None = None,
              config: SummaryConfig | None = None) -> AuditSummary:
    """The three tables for every attribute in ``values`` (attribute -> all labels it can take)."""
    config = config or SummaryConfig()
    share_parts, prompt_parts, pooled_rows = [], [], []
    prompts = list(pd.unique(df["prompt"]))
    unknown = {a for a, _ in config.corrections} - set(values)
    if unknown:
        raise ValueError(f"corrections name attributes that were not measured: {', '.join(sorted(unknown))}")
    for attr, labels in values.items():
        labels = tuple(labels)
        work = pd.DataFrame({"prompt": df["prompt"], "value": _labels_of(df[attr], attr == "monk")})
        table = proportions_table(work, "prompt", "value", confidence=config.confidence)
        full = []
        for prompt in prompts:
            rows, prompt_row = _prompt_rows(attr, prompt, table[table.prompt == prompt], labels, prompt_set, config)
            full += rows
            prompt_parts.append(prompt_row)
        share_parts.append(_flag_shares(pd.DataFrame(full), attr, labels, config))
        pooled_rows += _pooled_rows(work, attr, labels, config)
    prompts_df = pd.DataFrame(prompt_parts)
    for attr in values:
        idx = prompts_df.index[prompts_df.attribute == attr]
        rejected, adjusted = benjamini_hochberg(prompts_df.loc[idx, "pvalue"].to_numpy(), config.q)
        prompts_df.loc[idx, "qvalue"] = adjusted
        prompts_df.loc[idx, "flagged"] = rejected
    shares_df = pd.concat(share_parts, ignore_index=True) if share_parts else pd.DataFrame()
    if len(shares_df):
        shares_df["flagged"] = shares_df["flagged"].astype(bool)
    if len(prompts_df):
        prompts_df["flagged"] = prompts_df["flagged"].astype(bool)
        prompts_df = prompts_df[PROMPT_ORDER]
    return AuditSummary(shares_df, prompts_df, pd.DataFrame(pooled_rows))


def _labels_of(column: pd.Series, integer_labels: bool) -> pd.Series:
    """Labels as str (None where abstained); integer labels (Monk tones) read back from floats lose '.0'."""
    col = column.astype(object).where(column.notna(), None)
    return col.map(lambda v: None if v is None else str(v).removesuffix(".0") if integer_labels else str(v))


def _prompt_rows(attr: str, prompt: str, sub: pd.DataFrame, labels: tuple[str, ...], prompt_set: PromptSet | None,
                 config: SummaryConfig) -> tuple[list[dict], dict]:
    """One prompt's share rows (one per label) and its prompts-table row."""
    base = sub.iloc[0]
    counts = np.array([int(sub.loc[sub.value == v, "count"].sum()) for v in labels])
    unknown = sorted(set(sub.value.dropna()) - set(labels))
    if unknown:
        raise ValueError(f"attribute {attr!r} has labels {unknown} outside its declared values {labels}")
    target, kind = target_for(prompt_set, prompt, labels, config.target)
    n_all = int(base["n"])
    support = target > 0
    n = int(counts[support].sum())
    off = n_all - n
    tests = binomial_test_per_prompt(counts[support], n, target[support], config.confidence) if n else None
    rows, k = [], 0
    for j, v in enumerate(labels):
        row = {"attribute": attr, "prompt": prompt, "value": v, "count": int(counts[j]),
               "abstained": int(base["abstained"]), "n_images": int(base["n_images"]),
               "abstain_rate": float(base["abstain_rate"]), "target": float(target[j])}
        if support[j]:
            row.update(n=n, proportion=counts[j] / n if n else np.nan,
                       lo=tests["lo"].iloc[k] if n else np.nan, hi=tests["hi"].iloc[k] if n else np.nan,
                       pvalue=float(tests["pvalue"].iloc[k]) if n else np.nan)
            k += 1
        else:
            lo, hi = wilson_interval(int(counts[j]), n_all, config.confidence) if n_all else (np.nan, np.nan)
            row.update(n=n_all, proportion=counts[j] / n_all if n_all else np.nan, lo=lo, hi=hi, pvalue=np.nan)
        rows.append(row)
    test, statistic, pvalue, min_expected = _prompt_test(counts[support], target[support])
    mad = float(mad_from_uniform(counts[support] / n)) if n else np.nan
    mad_expected = expected_mad_multinomial(n, target[support], n_draws=20_000) if n else np.nan
    off_lo, off_hi = wilson_interval(off, n_all, config.confidence) if n_all else (np.nan, np.nan)
    prompt_row = {"attribute": attr, "prompt": prompt, "n_images": int(base["n_images"]), "n": n_all,
                  "abstained": int(base["abstained"]), "off_target": off,
                  "off_target_share": off / n_all if n_all else np.nan, "off_lo": off_lo, "off_hi": off_hi,
                  "test": test, "statistic": statistic, "pvalue": pvalue, "min_expected": min_expected, "mad": mad,
                  "mad_expected": mad_expected, "target_kind": kind}
    return rows, prompt_row


def _flag_shares(shares: pd.DataFrame, attr: str, labels: tuple[str, ...], config: SummaryConfig) -> pd.DataFrame:
    """The shares table of one attribute with its misclassification-corrected columns and BH q-values/flags."""
    shares["corrected"] = shares["corrected_lo"] = shares["corrected_hi"] = np.nan
    for (c_attr, value), (sens, spec) in config.corrections.items():
        if c_attr != attr:
            continue
        if value not in labels:
            raise ValueError(f"correction names {value!r}, not a label of {attr!r} ({', '.join(labels)})")
        idx = shares.index[(shares.value == value) & (shares.n > 0)]
        est, lo, hi = rogan_gladen_interval(shares.loc[idx, "count"].to_numpy(), shares.loc[idx, "n"].to_numpy(),
                                            sens, spec, config.confidence)
        shares.loc[idx, "corrected"], shares.loc[idx, "corrected_lo"], shares.loc[idx, "corrected_hi"] = est, lo, hi
    for v in labels:
        idx = shares.index[shares.value == v]
        rejected, adjusted = benjamini_hochberg(shares.loc[idx, "pvalue"].to_numpy(), config.q)
        shares.loc[idx, "qvalue"] = adjusted
        shares.loc[idx, "flagged"] = rejected
    return shares


def _pooled_rows(work: pd.DataFrame, attr: str, labels: tuple[str, ...], config: SummaryConfig) -> list[dict]:
    """Per label: the share pooled over prompts with its hierarchical-bootstrap interval."""
    rows = []
    for v in labels:
        if not (work.value == v).any():
            rows.append({"attribute": attr, "value": v, "estimate": 0.0, "lo": 0.0, "hi": 0.0})
            continue
        boot = hierarchical_bootstrap(work, pooled_proportion_stat(work, v), n_boot=config.n_boot,
                                      seed=config.seed, confidence=config.confidence)
        rows.append({"attribute": attr, "value": v, "estimate": boot.estimate, "lo": boot.lo, "hi": boot.hi})
    return rows
