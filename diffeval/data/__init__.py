"""Data sets: Fashion-MNIST (the bundled models' data), sklearn digits and Gaussian mixtures (tests),
and the caption set for text conditioning."""

from .captions import BROAD_WORDS, CLASS_WORDS, caption_class_shares, caption_corpus, captions_per_class, class_prompt
from .fashion import CLASS_NAMES, DataNotFoundError, load_fashion_mnist
from .toy import GaussianMixture, gmm_random, gmm_ring, load_digits_images

__all__ = [
    "BROAD_WORDS",
    "CLASS_NAMES",
    "CLASS_WORDS",
    "DataNotFoundError",
    "GaussianMixture",
    "caption_corpus",
    "caption_class_shares",
    "captions_per_class",
    "class_prompt",
    "gmm_random",
    "gmm_ring",
    "load_digits_images",
    "load_fashion_mnist",
]
