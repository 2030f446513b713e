"""Detection metrics from labels (1 = generated) and predicted P(generated).

accuracy and balanced_accuracy at threshold 0.5; average_precision and auc from scikit-learn (the
generated class is positive); ece: expected calibration error of the predicted label with 15 equal-width
bins of confidence max(p, 1 - p) over [0.5, 1]: sum over bins of (bin size / N) * |accuracy - mean
confidence|.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

METRICS = ("accuracy", "balanced_accuracy", "average_precision", "auc", "ece")


def expected_calibration_error(y_true: np.ndarray, p: np.ndarray, bins: int = 15) -> float:
    y = np.asarray(y_true).astype(int)
    p = np.asarray(p, dtype=float)
    pred = (p >= 0.5).astype(int)
    conf = np.maximum(p, 1 - p)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(total)


def detection_metrics(y_true, p) -> dict[str, float]:
    """The five METRICS; average_precision and auc are nan when only one class is present."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError("need two 1-D arrays of the same, non-zero length")
    pred = (p >= 0.5).astype(int)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float((pred == y).mean()),
        "average_precision": float(average_precision_score(y, p)) if both else float("nan"),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "ece": expected_calibration_error(y, p),
    }
