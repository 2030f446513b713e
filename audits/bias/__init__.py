"""Demographic bias audits: prompts x seeds -> generator (or image files) -> attribute classifiers ->
one row per image -> representation statistics per prompt and attribute -> CSV/JSON/HTML report.

- prompts.py: bundled prompt sets (occupations, descriptors, fashion) and prompt files
- classifiers.py: the classifier interface, the bundled judge, CLIP zero-shot
- faces.py: Haar face detection, perceived gender and age (ONNX), skin tone on the face
- skin.py: sRGB -> CIELAB (D65) -> ITA, ITA classes, Monk Skin Tone bins
- pipeline.py: generation / file reading, classification, resumable cache
- stats.py: Wilson intervals, bootstrap, exact tests, BH, imbalance metrics, Rogan-Gladen, planning
- summary.py: the shares / prompts / pooled tables
- report.py: the files of ``diffeval audit bias``
- planted.py: the planted-bias twin generators
"""

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
