"""diffeval: a safety and evaluation toolkit around image diffusion generators."""

__version__ = "0.1.0"
