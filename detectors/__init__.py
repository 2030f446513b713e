"""Frequency-branch detector of generated images.

- spectrum.py: centred log-magnitude FFT and its azimuthal (ring-mean) profile
- model.py: ResNet pixel branch, spectrum CNN + profile MLP frequency branch, fusion head, ablations,
  safetensors save/load
- data.py: generated images made on demand and cached with a manifest
- perturb.py: training augmentation and the evaluation perturbations
- metrics.py: accuracy, balanced accuracy, AP, AUC, ECE
- train.py / evaluate.py: training, evaluation tables, per-file prediction (``diffeval detect``)

Not built yet: the leave-one-family-out runs, the ablation table, spectral-fingerprint and ROC plots.
"""

from .model import Detector, DetectorConfig, load_detector, save_detector
from .spectrum import log_spectrum, radial_profile, spectral_features

__all__ = ["Detector", "DetectorConfig", "load_detector", "log_spectrum", "radial_profile", "save_detector",
           "spectral_features"]
