"""Frequency-branch detector of generated images.

- spectrum.py: centred log-magnitude FFT, its azimuthal (ring-mean) profile, and the local (4x4 block-DCT)
  log spectrum
- model.py: ResNet pixel branch; frequency branch (global-spectrum CNN, profile MLP, local-spectrum CNN);
  fusion head; ablations; safetensors save/load
- data.py: generated images made on demand and cached with a manifest
- perturb.py: training augmentation and the evaluation perturbations
- metrics.py: accuracy, balanced accuracy, AP, AUC, ECE
- train.py / evaluate.py: training, evaluation tables, per-file prediction (``diffeval detect``)

The leave-one-family-out runs, the ablation table, the spectral fingerprints and ROC curves are made by
``benchmarks/detector_lofo.py``.
"""

from .model import Detector, DetectorConfig, load_detector, save_detector
from .spectrum import block_dct, local_log_spectrum, log_spectrum, radial_profile, spectral_features

__all__ = ["Detector", "DetectorConfig", "block_dct", "load_detector", "local_log_spectrum", "log_spectrum",
           "radial_profile", "save_detector", "spectral_features"]
