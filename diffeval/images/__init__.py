"""Images at the module boundaries: the one float-to-uint8 rule, the one image reader and suffix list, grid
and archive writers, and the degradations that the watermark attacks and the detector perturbations share.

- ``convert``: float (N, C, H, W) in [0, 1] <-> uint8, rounding half up (floor(x * 255 + 0.5)): what a PNG holds.
- ``files``: ``IMAGE_SUFFIXES``, ``image_files``, ``read_image``, ``save_grid``, ``save_npz``, ``save_pngs``.
- ``degrade``: rotation, JPEG, blur, crop, noise, brightness, contrast, erasing; randomness per (seed, index).
"""

from .convert import from_uint8, levels, quantize_uint8, to_pil, to_uint8
from .files import IMAGE_SUFFIXES, image_files, read_image, save_grid, save_npz, save_pngs

__all__ = ["IMAGE_SUFFIXES", "from_uint8", "image_files", "levels", "quantize_uint8", "read_image", "save_grid",
           "save_npz", "save_pngs", "to_pil", "to_uint8"]
