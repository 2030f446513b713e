"""Post-hoc watermark baselines from ``invisible-watermark`` (optional extra ``baselines``):
DwtDct, DwtDctSvd and RivaGAN, each hiding a 32-bit message.

They need images of at least 256x256 pixels, so each 28x28 generated image is upscaled (PIL bicubic)
to 256x256 and repeated to 3 channels (RGB) before the message is embedded; attacks then act on the
256x256 image, with the same parameters as on the Tree-Ring images. Score: the fraction of the 32
bits decoded correctly; p-value: P(Binomial(32, 1/2) >= matches) (the chance an unmarked image
matches as well).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from scipy import stats

from diffeval.images import quantize_uint8

BASELINES = ("dwtDct", "dwtDctSvd", "rivaGan")
CARRIER_SIZE = 256
N_BITS = 32


def _imwatermark():
    try:
        import imwatermark
    except ImportError:
        raise ImportError("the watermark baselines need the optional extra: pip install 'diffeval[baselines]' "
                          "(invisible-watermark and onnxruntime)") from None
    return imwatermark


def message_bits(seed: int) -> list[int]:
    """The 32-bit message of a seeded run."""
    return [int(b) for b in np.random.default_rng([int(seed), 0xB175]).integers(0, 2, N_BITS)]


def to_carrier(images: torch.Tensor, size: int = CARRIER_SIZE) -> torch.Tensor:
    """(N, C, h, w) in [0, 1] -> (N, 3, size, size) in [0, 1] (PIL bicubic, 8-bit levels)."""
    out = []
    for img in images:
        arr = quantize_uint8(img).permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).convert("RGB")
        big = np.asarray(pil.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(big).permute(2, 0, 1))
    return torch.stack(out)


def _bgr(img: torch.Tensor) -> np.ndarray:
    rgb = quantize_uint8(img).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(rgb[..., ::-1])


def embed_baseline(method: str, carriers: torch.Tensor, bits: list[int]) -> torch.Tensor:
    """Embed ``bits`` into (N, 3, H, W) [0, 1] carriers with ``method``; same shape and range."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINES)}")
    iw = _imwatermark()
    if method == "rivaGan":
        iw.WatermarkEncoder.loadModel()
    enc = iw.WatermarkEncoder()
    enc.set_watermark("bits", list(bits))
    out = []
    for img in carriers:
        bgr = enc.encode(_bgr(img), method)
        out.append(torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1]).astype(np.float32) / 255.0).permute(2, 0, 1))
    return torch.stack(out)


def decode_scores(method: str, images: torch.Tensor, bits: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(bit accuracy, p-value) per image of (N, 3, H, W) [0, 1] images."""
    iw = _imwatermark()
    if method == "rivaGan":
        iw.WatermarkDecoder.loadModel()
    dec = iw.WatermarkDecoder("bits", len(bits))
    want = np.asarray(bits)
    acc = []
    for img in images:
        got = np.asarray(dec.decode(_bgr(img), method), dtype=int)
        acc.append(float(np.mean(got == want)))
    acc_arr = np.asarray(acc)
    matches = np.round(acc_arr * len(bits)).astype(int)
    p = stats.binom.sf(matches - 1, len(bits), 0.5)
    return acc_arr, p
