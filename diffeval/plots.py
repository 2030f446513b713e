"""Plot files: a headless pyplot and figures written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

from diffeval.io import atomic_output


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: float | None = None) -> Path:
    """Lay out ``fig``, write it as a PNG so readers never see a partial file, and close it.
    ``dpi``: None keeps the figure's own dpi."""
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi if dpi is not None else "figure")
    pyplot().close(fig)
    return path
