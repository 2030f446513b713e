"""Audits of generators.

- ``score_error``: score error against exact ground truth (Gaussian mixtures) or the empirical optimal
  denoiser (Fashion-MNIST), sampler discretisation error, memorisation (``diffeval audit score-error``).
- ``bias``: demographic and attribute representation per prompt with intervals, tests and
  multiple-comparison control, planted-bias twins, face attributes and skin tone (``diffeval audit bias``).
"""
