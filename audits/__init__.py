"""Bias audits and score-error analysis (built in later issues; the package exists so the layout is fixed)."""
