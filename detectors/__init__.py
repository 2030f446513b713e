"""Frequency-branch detector of generated images.

So far: spectral features (spectrum.py: centred log-magnitude FFT, azimuthal profile), the model
(model.py: ResNet pixel branch, spectrum CNN + profile MLP frequency branch, fusion head, ablations,
safetensors save/load), the generated-image cache with its manifest (data.py), augmentation and the
evaluation perturbations (perturb.py) and the metrics (metrics.py). Training, evaluation runs,
leave-one-family-out and the CLI are not built yet.
"""

from .model import Detector, DetectorConfig, load_detector, save_detector
from .spectrum import log_spectrum, radial_profile, spectral_features

__all__ = ["Detector", "DetectorConfig", "load_detector", "log_spectrum", "radial_profile", "save_detector",
           "spectral_features"]
