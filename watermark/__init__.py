"""Tree-Ring watermarking (built in a later issue; the package exists so the layout is fixed)."""
