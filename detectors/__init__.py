"""Frequency-branch detector of generated images (built in a later issue; the package exists so the layout is fixed)."""
