"""Skin-tone audit: Lab against hand-known values, CIEDE2000 against Sharma et al. (2005), Monk ITAs
against reference notes, and skin segmentation on synthetic crops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffeval.audits.bias.skin import (
    ITA_CLASSES,
    MONK_LAB,
    MONK_SRGB,
    SkinMaskConfig,
    ciede2000,
    ita_class,
    ita_degrees,
    monk_bin,
    skin_mask,
    skin_tone,
    skin_tone_table,
    srgb_to_lab,
)

# ITA of Monk swatches 1..10 from our reference notes (degrees).
MONK_ITA_REF = np.array([83.0, 80.2, 71.8, 64.7, 50.3, 10.9, -20.1, -55.4, -78.4, -84.3])

# Sharma, Wu & Dalal (2005), Table 1: (L1, a1, b1, L2, a2, b2, dE00).
SHARMA_PAIRS = np.array([
    [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
    [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
    [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
    [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
    [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
    [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
    [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
    [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
    [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
    [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
    [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
    [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
    [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
    [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
    [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
    [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
    [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
    [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
    [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
    [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
    [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
    [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
    [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
    [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
])

BLUE = np.array([30, 60, 200], dtype=np.uint8)


def disc_image(colour: np.ndarray, size: int = 48, radius: float = 16.0, noise: float = 3.0,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (size, size, 3) image: a noisy disc of ``colour`` on a blue background, and its true mask."""
    yy, xx = np.mgrid[:size, :size]
    truth = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2
    img = np.broadcast_to(BLUE, (size, size, 3)).astype(np.float64)
    img[truth] = colour
    img += np.random.default_rng(seed).normal(0.0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --------------------------------------------------------------------------- Lab


def test_srgb_to_lab_hand_known_values():
    rgb = np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    lab = srgb_to_lab(rgb)
    assert lab.dtype == np.float64
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.01)
    np.testing.assert_allclose(lab[3], [53.39, 0.0, 0.0], atol=0.01)
    # Linear segment of f(t): sRGB 0.01 grey has Y/Yn < 216/24389, so L* = kappa * Y.
    y = 0.01 / 12.92
    np.testing.assert_allclose(srgb_to_lab(np.full(3, 0.01))[0], 24389 / 27 * y, rtol=1e-6)


def test_srgb_to_lab_uint8_path_and_input_checks():
    np.testing.assert_allclose(srgb_to_lab(MONK_SRGB), srgb_to_lab(MONK_SRGB / 255.0), atol=1e-12)
    with pytest.raises(ValueError):
        srgb_to_lab(np.array([0.2, 1.5, 0.3]))  # float outside [0, 1], e.g. forgot /255
    with pytest.raises(TypeError):
        srgb_to_lab(MONK_SRGB.astype(np.int64))
    with pytest.raises(ValueError):
        srgb_to_lab(np.zeros((4, 4)))


# --------------------------------------------------------------------------- CIEDE2000


def test_ciede2000_sharma_pairs():
    got = ciede2000(SHARMA_PAIRS[:, :3], SHARMA_PAIRS[:, 3:6])
    np.testing.assert_allclose(got, SHARMA_PAIRS[:, 6], atol=1e-4)
    np.testing.assert_allclose(ciede2000(SHARMA_PAIRS[:, 3:6], SHARMA_PAIRS[:, :3]), got, atol=1e-12)
    assert np.all(ciede2000(MONK_LAB, MONK_LAB) == 0.0)


# --------------------------------------------------------------------------- ITA, classes, Monk


def test_monk_swatch_itas_match_reference():
    ita = ita_degrees(srgb_to_lab(MONK_SRGB))
    assert np.max(np.abs(ita - MONK_ITA_REF)) < 0.15


def test_monk_bin_maps_each_swatch_to_itself():
    np.testing.assert_array_equal(monk_bin(MONK_LAB), np.arange(1, 11))
    assert monk_bin(MONK_LAB[5]) == 6  # single colour (3,) -> scalar


def test_ita_classes_of_monk_swatches_are_monotone():
    classes = ita_class(ita_degrees(MONK_LAB))
    expected = ["very_light"] * 4 + ["light", "tan", "brown", "dark", "dark", "dark"]
    assert list(classes) == expected
    order = [ITA_CLASSES.index(c) for c in classes]
    assert order == sorted(order)


def test_ita_class_boundaries():
    ita = np.array([55.0001, 55.0, 41.0, 28.0, 10.0, -30.0, -30.0001, np.nan])
    assert list(ita_class(ita)) == ["very_light", "light", "intermediate", "tan", "brown", "dark", "dark",
                                    "undefined"]
    assert ita_class(35.0) == "intermediate"


def test_ita_atan2_agrees_with_atan_only_for_positive_b():
    lab = np.array([[70.0, 5.0, 15.0], [30.0, 8.0, 12.0], [70.0, 0.0, -15.0]])
    ita = ita_degrees(lab)
    np.testing.assert_allclose(ita[:2], np.degrees(np.arctan((lab[:2, 0] - 50) / lab[:2, 2])), atol=1e-12)
    assert ita[2] > 90.0  # atan would give about -53 deg, a plausible-looking skin angle


def test_bgr_swap_changes_ita():
    """Feeding cv2-style BGR as RGB must visibly move ITA (a common bug in public pipelines)."""
    swapped = ita_degrees(srgb_to_lab(MONK_SRGB[:, ::-1]))
    assert np.min(np.abs(swapped - ita_degrees(MONK_LAB))) > 5.0


def test_cv2_8bit_lab_is_not_true_lab():
    """cv2's uint8 Lab encodes L*255/100 and a*+128, b*+128 as integers; even decoded, the rounding
    moves ITA by more than our 0.15-degree tolerance, so we compute Lab in float64 ourselves."""
    cv2 = pytest.importorskip("cv2")
    raw = cv2.cvtColor(MONK_SRGB[None], cv2.COLOR_RGB2Lab)[0].astype(np.float64)
    assert np.max(np.abs(raw - MONK_LAB)) > 50  # undecoded output is not Lab at all
    decoded = np.column_stack([raw[:, 0] * 100 / 255, raw[:, 1] - 128, raw[:, 2] - 128])
    np.testing.assert_allclose(decoded, MONK_LAB, atol=1.5)  # same colours, just quantised
    assert np.max(np.abs(ita_degrees(decoded) - ita_degrees(MONK_LAB))) > 0.3


# --------------------------------------------------------------------------- segmentation and measurement


@pytest.mark.parametrize("monk", [1, 6, 10])
def test_skin_mask_finds_disc_on_blue(monk):
    img, truth = disc_image(MONK_SRGB[monk - 1])
    assert iou(skin_mask(img), truth) > 0.9


def test_skin_mask_ycrcb_rule_finds_disc_but_drops_darkest_swatch():
    img, truth = disc_image(MONK_SRGB[5])
    assert iou(skin_mask(img, SkinMaskConfig(method="ycrcb")), truth) > 0.9
    row = MONK_SRGB[None]  # (1, 10, 3); no median filter so swatches are judged one by one
    ycrcb_row = skin_mask(row, SkinMaskConfig(method="ycrcb", median_size=1))[0]
    np.testing.assert_array_equal(ycrcb_row, np.arange(1, 11) != 10)
    assert skin_mask(row, SkinMaskConfig(median_size=1))[0].all()  # the default Lab rule keeps all ten


def test_skin_mask_rejects_non_skin_backgrounds():
    backgrounds = np.array([[30, 60, 200], [255, 255, 255], [128, 128, 128], [40, 180, 60], [0, 0, 0]],
                           dtype=np.uint8)
    assert not skin_mask(backgrounds[None], SkinMaskConfig(median_size=1)).any()
    assert not skin_mask(np.repeat(np.repeat(backgrounds[None], 8, 0), 8, 1)).any()


def test_skin_tone_measures_disc():
    img, truth = disc_image(MONK_SRGB[6], noise=2.0)
    tone = skin_tone(img, min_pixels=50)
    assert not tone.abstained and tone.reason is None
    assert tone.n_pixels == img.shape[0] * img.shape[1]
    assert tone.skin_fraction == pytest.approx(truth.mean(), abs=0.02)
    assert tone.monk == 7 and tone.ita_class == "brown"
    np.testing.assert_allclose([tone.L_median, tone.a_median, tone.b_median], MONK_LAB[6], atol=1.0)
    assert tone.ita == pytest.approx(MONK_ITA_REF[6], abs=2.0)
    assert tone.ita_q25 < tone.ita_q50 < tone.ita_q75  # noise spreads the per-pixel distribution


def test_skin_tone_abstains_on_blue_image():
    blue = np.broadcast_to(BLUE, (32, 32, 3)).copy()
    tone = skin_tone(blue, min_pixels=10)
    assert tone.abstained and tone.n_skin == 0 and "min_pixels" in tone.reason
    assert tone.monk is None and np.isnan(tone.ita)


def test_skin_tone_abstains_below_min_pixels():
    img, truth = disc_image(MONK_SRGB[4], noise=0.0)
    n = int(skin_mask(img).sum())
    assert n > 0.9 * truth.sum()
    assert not skin_tone(img, min_pixels=n).abstained
    assert skin_tone(img, min_pixels=n + 1).abstained


def test_skin_tone_table_keeps_abstention_rows():
    crops = [disc_image(MONK_SRGB[0])[0], np.broadcast_to(BLUE, (16, 16, 3)).copy(), disc_image(MONK_SRGB[9])[0]]
    df = skin_tone_table(crops, ids=["a", "b", "c"], min_pixels=50)
    assert list(df["id"]) == ["a", "b", "c"]
    assert list(df["abstained"]) == [False, True, False]
    assert df["monk"].iloc[0] == 1 and df["monk"].iloc[2] == 10 and df["monk"].isna().iloc[1]
    assert "min_pixels" in df["reason"].iloc[1] and pd.isna(df["ita_class"].iloc[1])
    assert df.loc[[0, 2], "ita_class"].tolist() == ["very_light", "dark"]
    with pytest.raises(ValueError):
        skin_tone_table(crops, ids=["a"])
