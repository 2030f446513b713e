"""Demographic bias audits: statistics (stats.py), skin tone from pixels (skin.py) and prompt sets
(prompts.py). Face and attribute classifiers, the audit pipeline and its report come later."""

from .prompts import BUNDLED as BUNDLED_PROMPT_SETS
from .prompts import PromptSet, load_prompt_set

from .stats import (
    BootstrapResult,
    abstain_mask,
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
    hierarchical_weights,
    images_per_prompt_for_margin,
    images_per_prompt_for_power,
    mad_from_uniform,
    multinomial_logpmf,
    pooled_proportion_stat,
    proportions_table,
    rogan_gladen,
    rogan_gladen_interval,
    simulate_bh_fdr,
    simulate_coverage,
    wilson_exact_coverage,
    wilson_interval,
)

__all__ = [
    "BUNDLED_PROMPT_SETS", "BootstrapResult", "PromptSet", "abstain_mask", "benjamini_hochberg",
    "binomial_test_per_prompt", "binomial_two_sided_pvalues", "chisquare_per_prompt", "compositions",
    "exact_binomial_power", "expected_abs_deviation_binomial", "expected_mad_multinomial", "gender_imbalance",
    "hierarchical_bootstrap", "hierarchical_weights", "images_per_prompt_for_margin", "images_per_prompt_for_power",
    "load_prompt_set", "mad_from_uniform", "multinomial_logpmf", "pooled_proportion_stat", "proportions_table",
    "rogan_gladen", "rogan_gladen_interval", "simulate_bh_fdr", "simulate_coverage", "wilson_exact_coverage",
    "wilson_interval",
]
