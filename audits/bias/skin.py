"""Skin-tone measurement for demographic bias audits of generated face images.

Pipeline for one face crop: sRGB -> CIELAB (D65, exact float64 formulas, never cv2's 8-bit Lab) ->
pixel-rule skin mask -> median L*, a*, b* over skin pixels -> individual typology angle (ITA), its
six Chardon/Del Bino classes, and the nearest Monk Skin Tone swatch by CIEDE2000. The per-pixel ITA
quartiles are kept so the continuous distribution is not collapsed into a class. A crop with too few
skin pixels abstains with a reason; tables keep abstention rows.

Conventions: images are RGB (not BGR) arrays of shape (H, W, 3), either uint8 in [0, 255] or float
in [0, 1]. L* is in [0, 100]; a*, b* are unbounded (about [-128, 127] for sRGB); angles in degrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

# --------------------------------------------------------------------------- sRGB -> CIELAB

# Linear sRGB -> CIE XYZ for D65 (IEC 61966-2-1 primaries and the ASTM E308 D65 white, 7 digits;
# B. Lindbloom's published matrix). Rows give X, Y, Z.
SRGB_TO_XYZ_D65 = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
# Reference white = row sums of the matrix = (0.9504700, 1.0000001, 1.0888300), i.e. the D65 white
# (0.95047, 1.0, 1.08883) to 7 digits, derived so that sRGB white maps to exactly L*=100, a*=b*=0.
D65_WHITE_XYZ = SRGB_TO_XYZ_D65.sum(axis=1)
CIE_EPSILON = 216.0 / 24389.0  # (6/29)^3
CIE_KAPPA = 24389.0 / 27.0  # (29/3)^3


def _as_unit_rgb(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) as float64 in [0, 1]: uint8 is divided by 255, floats must already be in [0, 1]."""
    arr = np.asarray(rgb)
    if arr.ndim == 0 or arr.shape[-1] != 3:
        raise ValueError(f"expected shape (..., 3), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"expected uint8 or float RGB, got {arr.dtype} (convert explicitly)")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)) or out.min(initial=0.0) < 0.0 or out.max(initial=0.0) > 1.0:
        raise ValueError("float RGB must be finite and in [0, 1]")
    return out


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 inverse companding of sRGB values in [0, 1] (any shape) to linear light in [0, 1]."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _cie_f(t: np.ndarray) -> np.ndarray:
    """CIE Lab companding f(t): cube root above epsilon, linear segment (kappa*t + 16)/116 below."""
    return np.where(t > CIE_EPSILON, np.cbrt(t), (CIE_KAPPA * t + 16.0) / 116.0)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3), float in [0, 1] or uint8 -> CIELAB (..., 3) float64 under D65 (L* in [0, 100])."""
    xyz = srgb_to_linear(_as_unit_rgb(rgb)) @ SRGB_TO_XYZ_D65.T
    f = _cie_f(xyz / D65_WHITE_XYZ)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


# --------------------------------------------------------------------------- ITA and its classes


def ita_degrees(lab: np.ndarray) -> np.ndarray:
    """Individual typology angle ITA = atan2(L* - 50, b*) in degrees for Lab (..., 3) -> (...,).

    The published definition is atan((L* - 50) / b*). We use atan2 with b* in the x position: for
    b* > 0 (all real skin) both agree exactly and lie in (-90, 90); for b* <= 0 (bluish, non-skin)
    atan2 stays defined and returns |ITA| >= 90, which flags the pixel instead of dividing by zero or
    folding it onto a plausible skin angle. L* = 50, b* = 0 gives 0.
    """
    lab = np.asarray(lab, dtype=np.float64)
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2]))


ITA_CLASSES = ("very_light", "light", "intermediate", "tan", "brown", "dark")
# Lower bounds (exclusive) of the first five classes (Chardon et al. 1991; Del Bino et al. 2006):
# very light > 55, light (41, 55], intermediate (28, 41], tan (10, 28], brown (-30, 10], dark <= -30.
ITA_LOWER_BOUNDS = (55.0, 41.0, 28.0, 10.0, -30.0)


def ita_class(ita: float | np.ndarray) -> str | np.ndarray:
    """ITA class names for ITA in degrees (any shape); NaN -> "undefined". Scalar in, str out."""
    arr = np.asarray(ita, dtype=np.float64)
    conditions = [arr > bound for bound in ITA_LOWER_BOUNDS] + [arr <= ITA_LOWER_BOUNDS[-1]]
    out = np.select(conditions, list(ITA_CLASSES), default="undefined").astype(object)
    return str(out.item()) if out.ndim == 0 else out


# --------------------------------------------------------------------------- CIEDE2000 and Monk scale


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between broadcastable Lab arrays (..., 3) -> (...,).

    Follows Sharma, Wu & Dalal (2005), including the hue-mean and hue-difference rules when one colour
    is achromatic or the hues lie on either side of 0/360 degrees.
    """
    lab1, lab2 = np.broadcast_arrays(np.asarray(lab1, dtype=np.float64), np.asarray(lab2, dtype=np.float64))
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0) ** 7
    g = 0.5 * (1.0 - np.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, np.degrees(np.arctan2(b1, a1p)) % 360.0)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, np.degrees(np.arctan2(b2, a2p)) % 360.0)
    chroma_product = c1p * c2p
    diff = h2p - h1p
    dh = np.where(chroma_product == 0, 0.0,
                  np.where(np.abs(diff) <= 180, diff, np.where(diff > 180, diff - 360.0, diff + 360.0)))
    d_l, d_c = L2 - L1, c2p - c1p
    d_h = 2.0 * np.sqrt(chroma_product) * np.sin(np.radians(dh / 2.0))
    l_bar, c_bar = (L1 + L2) / 2.0, (c1p + c2p) / 2.0
    h_sum = h1p + h2p
    h_bar = np.where(chroma_product == 0, h_sum,
                     np.where(np.abs(diff) <= 180, h_sum / 2.0,
                              np.where(h_sum < 360, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0)))
    t = (1.0 - 0.17 * np.cos(np.radians(h_bar - 30.0)) + 0.24 * np.cos(np.radians(2.0 * h_bar))
         + 0.32 * np.cos(np.radians(3.0 * h_bar + 6.0)) - 0.20 * np.cos(np.radians(4.0 * h_bar - 63.0)))
    d_theta = 30.0 * np.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    c_bar7p = c_bar**7
    r_c = 2.0 * np.sqrt(c_bar7p / (c_bar7p + 25.0**7))
    s_l = 1.0 + 0.015 * (l_bar - 50.0) ** 2 / np.sqrt(20.0 + (l_bar - 50.0) ** 2)
    s_c = 1.0 + 0.045 * c_bar
    s_h = 1.0 + 0.015 * c_bar * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c
    tl, tc, th = d_l / s_l, d_c / s_c, d_h / s_h
    return np.sqrt(np.maximum(tl**2 + tc**2 + th**2 + r_t * tc * th, 0.0))


# Monk Skin Tone scale (Monk 2019), swatches 1 (lightest) .. 10 (darkest), sRGB uint8.
MONK_SRGB = np.array([
    (246, 237, 228), (243, 231, 219), (247, 234, 208), (234, 218, 186), (215, 189, 150),
    (160, 126, 86), (130, 92, 67), (96, 65, 52), (58, 49, 42), (41, 36, 32),
], dtype=np.uint8)
MONK_LAB = srgb_to_lab(MONK_SRGB)  # (10, 3)


def monk_distances(lab: np.ndarray) -> np.ndarray:
    """CIEDE2000 from Lab (..., 3) to each Monk swatch -> (..., 10)."""
    lab = np.asarray(lab, dtype=np.float64)
    return ciede2000(lab[..., None, :], MONK_LAB)


def monk_bin(lab: np.ndarray) -> np.ndarray:
    """Nearest Monk swatch index in 1..10 (CIEDE2000) for Lab (..., 3) -> int array (...,)."""
    return np.argmin(monk_distances(lab), axis=-1) + 1


# --------------------------------------------------------------------------- skin segmentation


@dataclass(frozen=True)
class SkinMaskConfig:
    """Pixel rule for skin. ``method``:

    - "lab" (default): hue angle h_ab = atan2(b*, a*) in [hue_min, hue_max] degrees and chroma
      C*ab in [chroma_min, chroma_max]. Accepts all ten Monk swatches (h 49..89 deg, C 3.8..28).
    - "ycrcb": Chai & Ngan (1999) 133 <= Cr <= 173, 77 <= Cb <= 127 with BT.601 full-range float
      Cr = 128 + 0.5 (R - Y) / 0.701, Cb = 128 + 0.5 (B - Y) / 0.886 on the 0..255 scale. Rejects the
      darkest Monk swatch (10: Cr 130.8) and only just accepts 1 and 9 (Cr 133.2, 133.1), so it can
      make abstention depend on skin tone; kept for comparison with published pipelines.

    Both are intersected with L* in [l_min, l_max], which drops specular highlights and deep shadow.
    The rule is evaluated on the features (Lab, or Cr/Cb plus L*) after a ``median_size`` x
    ``median_size`` per-channel median filter (1 = off): per-pixel hue is pure noise for near-neutral
    skin (Monk 1, 9, 10 have C*ab < 7), and the median keeps edges. Measurements use unfiltered pixels.
    """

    method: Literal["lab", "ycrcb"] = "lab"
    hue_min: float = 20.0
    hue_max: float = 100.0
    chroma_min: float = 2.0
    chroma_max: float = 50.0
    cr_range: tuple[float, float] = (133.0, 173.0)
    cb_range: tuple[float, float] = (77.0, 127.0)
    l_min: float = 8.0
    l_max: float = 97.0
    median_size: int = 5


def rgb_to_ycrcb(rgb: np.ndarray) -> np.ndarray:
    """BT.601 full-range Y, Cr, Cb (..., 3) on the 0..255 scale from RGB (..., 3) uint8 or float [0, 1]."""
    rgb255 = _as_unit_rgb(rgb) * 255.0
    r, g, b = rgb255[..., 0], rgb255[..., 1], rgb255[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return np.stack([y, 128.0 + 0.5 * (r - y) / 0.701, 128.0 + 0.5 * (b - y) / 0.886], axis=-1)


def _in_range(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Elementwise lo <= x <= hi."""
    return (x >= lo) & (x <= hi)


def _median_filter(features: np.ndarray, size: int) -> np.ndarray:
    """Per-channel size x size median of features (H, W, C) with edge replication; size 1 is a no-op."""
    if size < 1:
        raise ValueError("median_size must be >= 1")
    if size == 1 or features.ndim != 3:
        return features
    return ndimage.median_filter(features, size=(size, size, 1), mode="nearest")


def skin_mask(rgb: np.ndarray, config: SkinMaskConfig = SkinMaskConfig(), lab: np.ndarray | None = None) -> np.ndarray:
    """Boolean skin mask (H, W) for an RGB image (H, W, 3); ``lab`` may pass a precomputed srgb_to_lab(rgb)."""
    lab = srgb_to_lab(rgb) if lab is None else lab
    if config.method == "lab":
        feats = _median_filter(lab, config.median_size)
        hue = np.degrees(np.arctan2(feats[..., 2], feats[..., 1]))
        chroma = np.hypot(feats[..., 1], feats[..., 2])
        mask = _in_range(hue, config.hue_min, config.hue_max)
        mask &= _in_range(chroma, config.chroma_min, config.chroma_max)
    elif config.method == "ycrcb":
        ycc = rgb_to_ycrcb(rgb)
        feats = _median_filter(np.stack([lab[..., 0], ycc[..., 1], ycc[..., 2]], axis=-1), config.median_size)
        mask = _in_range(feats[..., 1], *config.cr_range) & _in_range(feats[..., 2], *config.cb_range)
    else:
        raise ValueError(f"unknown skin mask method {config.method!r}")
    return mask & _in_range(feats[..., 0], config.l_min, config.l_max)


# --------------------------------------------------------------------------- per-crop measurement


@dataclass
class SkinTone:
    """Skin-tone measurement of one crop. Lab medians are per channel over skin pixels; ``ita`` is the
    ITA of that median colour, ``ita_q25/50/75`` are quartiles of per-pixel ITA (degrees); ``monk`` is
    1..10 and ``monk_delta_e`` its CIEDE2000 distance. When ``abstained`` all measurements are NaN/None."""

    abstained: bool
    reason: str | None
    n_pixels: int
    n_skin: int
    skin_fraction: float
    L_median: float = float("nan")
    a_median: float = float("nan")
    b_median: float = float("nan")
    ita: float = float("nan")
    ita_class: str | None = None
    monk: int | None = None
    monk_delta_e: float = float("nan")
    ita_q25: float = float("nan")
    ita_q50: float = float("nan")
    ita_q75: float = float("nan")


def skin_tone(rgb: np.ndarray, min_pixels: int = 100, config: SkinMaskConfig = SkinMaskConfig()) -> SkinTone:
    """Measure skin tone of an RGB face crop (H, W, 3); abstains if fewer than ``min_pixels`` skin pixels."""
    if min_pixels < 1:
        raise ValueError("min_pixels must be >= 1")
    arr = np.asarray(rgb)
    if arr.ndim != 3:
        raise ValueError(f"expected an image of shape (H, W, 3), got {arr.shape}")
    lab = srgb_to_lab(arr)
    mask = skin_mask(arr, config, lab=lab)
    n_pixels, n_skin = int(mask.size), int(mask.sum())
    fraction = n_skin / n_pixels if n_pixels else 0.0
    if n_skin < min_pixels:
        return SkinTone(True, f"{n_skin} skin pixels < min_pixels={min_pixels}", n_pixels, n_skin, fraction)
    skin_lab = lab[mask]
    median = np.median(skin_lab, axis=0)
    q25, q50, q75 = np.percentile(ita_degrees(skin_lab), [25, 50, 75])
    ita = float(ita_degrees(median))
    distances = monk_distances(median)
    monk = int(np.argmin(distances)) + 1
    return SkinTone(False, None, n_pixels, n_skin, fraction, float(median[0]), float(median[1]),
                    float(median[2]), ita, ita_class(ita), monk, float(distances[monk - 1]),
                    float(q25), float(q50), float(q75))


SKIN_TONE_COLUMNS = ["id"] + [f.name for f in fields(SkinTone)]


def skin_tone_table(crops: Sequence[np.ndarray], ids: Sequence[object] | None = None, min_pixels: int = 100,
                    config: SkinMaskConfig = SkinMaskConfig()) -> pd.DataFrame:
    """One row per crop, in input order, abstentions kept (``ids`` default to 0..n-1). Columns: id,
    abstained (bool), reason (str; missing when measured), n_pixels, n_skin, skin_fraction in [0, 1],
    L_median/a_median/b_median (CIELAB of skin pixels), ita (deg, of the median Lab), ita_class (str;
    missing on abstention), monk (Int64 1..10 or <NA>), monk_delta_e (CIEDE2000 to that swatch),
    ita_q25/ita_q50/ita_q75 (quartiles of per-pixel ITA, deg). Measurements are NaN on abstention."""
    ids = list(range(len(crops))) if ids is None else list(ids)
    if len(ids) != len(crops):
        raise ValueError(f"{len(crops)} crops but {len(ids)} ids")
    rows = [{"id": i, **asdict(skin_tone(crop, min_pixels, config))} for i, crop in zip(ids, crops)]
    df = pd.DataFrame(rows, columns=SKIN_TONE_COLUMNS)
    df["abstained"] = df["abstained"].astype(bool)
    df["monk"] = df["monk"].astype("Int64")
    return df
