"""Audits of generators: ``score_error`` (score error against exact ground truth, sampler
discretisation error, memorisation). Bias audits are a later issue."""
