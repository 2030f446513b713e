"""Tree-Ring watermarking (Wen et al. 2023) for any bundled generator with a deterministic sampler.

- ``keys``: key patterns (rings, rand, zeros) in the centred Fourier spectrum of the initial noise; key files.
- ``statistics``: injection, the L1 key distance and p-values (non-central chi-square with the exact
  degrees of freedom, or the scale-free cosine test).
- ``embed`` / ``detect``: generate marked images; invert images to noise and score them per key.
- ``null`` / ``calibrate``: the null of recovered noise from unmarked images (whitened cosine, conformal or Beta
  p-value) that holds for every key of one geometry.
- ``gaussian_shading``: Gaussian Shading (Yang et al. 2024), the distribution-preserving scheme.
- ``keyfiles``: read a key file of either scheme.
- ``attacks``: rotation, JPEG, crop, blur, noise, jitter, erasing, regeneration, combinations; presets.
- ``robustness`` / ``report``: the evaluation behind ``diffeval watermark robustness``.
"""

from .attacks import PRESETS, Attack, attacks_from, parse_attack
from .detect import DetectSettings, detect_files, detect_images, recover_noise
from .embed import EmbedSettings, generate
from .keys import PATTERNS, WatermarkKey, load_key, make_key, save_key
from .statistics import inject, key_cosine, key_distance, key_pvalue, key_score, key_test

__all__ = [
    "PATTERNS",
    "PRESETS",
    "Attack",
    "DetectSettings",
    "EmbedSettings",
    "WatermarkKey",
    "attacks_from",
    "detect_files",
    "detect_images",
    "generate",
    "inject",
    "key_cosine",
    "key_distance",
    "key_pvalue",
    "key_score",
    "key_test",
    "load_key",
    "make_key",
    "parse_attack",
    "recover_noise",
    "save_key",
]
