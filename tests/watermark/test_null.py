"""The calibrated null: whitening, per-key false-positive rates on a coloured null, power, files, calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from diffeval.cli import main
from diffeval.generators import load_generator
from diffeval.watermark.calibrate import CALIBRATION_SEED, calibrate_null
from diffeval.watermark.detect import DetectSettings
from diffeval.watermark.embed import EmbedSettings
from diffeval.watermark.keys import make_key, save_key
from diffeval.watermark.null import (
    calibrated_test,
    estimate_null,
    key_coordinates,
    load_null,
    save_null,
)
from diffeval.watermark.statistics import inject, key_test

SHAPE = (3, 14, 14)
RADIUS, CHANNELS = 2.19, (2,)
ALPHA = 0.05


def coloured_noise(n: int, seed: int) -> torch.Tensor:
    """Not white: a mean image (DC offset and a slope), a spatial window (which correlates neighbouring bins)
    and a channel-2 scale of 1.2: what inverting real images does to the key region, exaggerated."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *SHAPE, generator=g, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 14, dtype=torch.float64),
                            torch.linspace(-1, 1, 14, dtype=torch.float64), indexing="ij")
    window = 1 + 0.8 * torch.exp(-((xx - 0.3) ** 2 + yy**2) / 0.2)
    return (1.2 * x * window - 0.5 + 0.3 * xx).float()


def keys(n: int, pattern: str):
    return [make_key(SHAPE, pattern, RADIUS, CHANNELS, seed=100 + i) for i in range(n)]


@pytest.fixture(scope="module")
def null():
    return estimate_null(coloured_noise(4000, seed=0), keys(1, "rings")[0])


def test_whitened_calibration_coordinates_have_mean_zero_and_identity_covariance(null):
    """The fit part whitens to mean 0 exactly; the reference part, which the whitener never saw, to mean ~0 and
    covariance ~identity (the coloured null's coordinates have SDs 0.5-1.8 and strong correlations)."""
    assert null.n_fit == 1200 and len(null.reference) == 2800
    assert null.whiten(null.coords[: null.n_fit]).mean(0).abs().max() < 1e-10
    z = null.whiten(null.reference)
    eig = torch.linalg.eigvalsh(torch.cov(z.T))
    assert z.mean(0).abs().max() < 0.1 and 0.75 < float(eig.min()) and float(eig.max()) < 1.3, eig


@pytest.mark.parametrize("pattern", ["rings", "rand"])
def test_the_false_positive_rate_holds_for_every_key(null, pattern):
    """On 4,000 fresh draws of a coloured null, the plain cosine test's FPR at alpha = 0.05 depends on the key
    (some keys far outside [alpha / 2, 2 alpha]; measured 0.000-0.330 over the rings keys); after calibration
    every one of 30 keys is within 4 binomial standard errors of alpha with both p-values (measured 0.040-0.062)."""
    test_noise = coloured_noise(4000, seed=1)
    band = 4 * (ALPHA * (1 - ALPHA) / len(test_noise)) ** 0.5
    plain, calibrated = [], {"gaussian": [], "empirical": []}
    for key in keys(30, pattern):
        plain.append(float((key_test(test_noise, key)[1] < ALPHA).double().mean()))
        for method, rates in calibrated.items():
            rates.append(float((calibrated_test(test_noise, key, null, method)[1] < ALPHA).double().mean()))
    plain = np.array(plain)
    assert ((plain < ALPHA / 2) | (plain > 2 * ALPHA)).any()
    for method, rates in calibrated.items():
        assert np.abs(np.array(rates) - ALPHA).max() < band, method


@pytest.mark.parametrize("method", ["gaussian", "empirical"])
def test_marked_noise_is_detected(null, method):
    """Keys injected into fresh coloured noise: every image gets p < 0.01 (empirical: the smallest p-value,
    1 / (n + 1), for most)."""
    noise = coloured_noise(200, seed=2)
    for key in keys(5, "rings") + keys(5, "rand"):
        _, p = calibrated_test(inject(noise, key), key, null, method)
        assert float(p.max()) < 0.01


def test_empirical_p_values_are_ranks_among_the_calibration_images():
    """Scored against their own null, the reference images' p-values are their ranks: (1 + k) / (n_ref + 1) for
    k = 1..n_ref (each image counts itself), the largest score getting 2 / (n_ref + 1); the fit images (the first
    30%) are not in the reference."""
    noise = coloured_noise(500, seed=5)
    key = keys(1, "rand")[0]
    null = estimate_null(noise, key)
    assert null.n_fit == 150
    _, p = calibrated_test(noise[150:], key, null, "empirical")
    assert np.allclose(np.sort(p.numpy()), (2 + np.arange(350)) / 351)


def test_a_key_of_another_geometry_is_refused(null):
    noise = coloured_noise(10, seed=3)
    for other in (make_key(SHAPE, "rings", 3.0, CHANNELS, seed=0), make_key(SHAPE, "rings", RADIUS, (1,), seed=0),
                  make_key(SHAPE, "rings", RADIUS, CHANNELS, seed=0, inner_radius=1.0)):
        with pytest.raises(ValueError, match="calibrate a null"):
            calibrated_test(noise, other, null)
    with pytest.raises(ValueError, match="method"):
        calibrated_test(noise, keys(1, "rings")[0], null, "bootstrap")


def test_null_file_round_trip_and_bad_files(null, tmp_path):
    path = save_null(null, tmp_path / "null.safetensors")
    back = load_null(path)
    assert torch.equal(back.coords, null.coords) and back.geometry == null.geometry
    key = keys(1, "rings")[0]
    noise = coloured_noise(20, seed=4)
    assert torch.equal(calibrated_test(noise, key, back)[1], calibrated_test(noise, key, null)[1])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_null(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a diffeval watermark null"):
        load_null(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="not a diffeval watermark null"):
        load_null(save_key(key, tmp_path / "key.safetensors"))


def test_too_few_calibration_images_are_refused():
    key = keys(1, "rings")[0]
    m = key_coordinates(coloured_noise(1, seed=0), key).shape[1]
    with pytest.raises(ValueError, match="more images than coordinates"):
        estimate_null(coloured_noise(m, seed=0), key)


def test_calibrate_null_with_a_bundled_latent_model():
    """End to end on the latent sd3 at tiny settings: unmarked images from the calibration seed, inverted, give a
    null of the key's geometry that records the generator and the settings."""
    g = load_generator("sd3", device="cpu")
    key = make_key(g.noise_shape, "rings", 2.19, (2,), seed=0)
    null = calibrate_null(g, key, n=24, embed=EmbedSettings(steps=4, seed=CALIBRATION_SEED),
                          detect=DetectSettings(steps=4, fixed_point=0))
    assert null.n == 24 and null.dim == int(key.mask.sum()) and null.generator == g.fingerprint()
    assert null.settings["inv_steps"] == 4 and null.settings["embed_seed"] == CALIBRATION_SEED
    score, p = calibrated_test(torch.randn(8, *g.noise_shape), key, null, "gaussian")
    assert score.shape == (8,) and bool(((p > 0) & (p <= 1)).all())


def test_cli_calibrate_then_detect_with_the_null(tmp_path):
    """`watermark calibrate` on the reflow preset (2-step sampler, 4 inversion steps, 20 images: the tiny config),
    then `detect --null` with both p-values; a null used with other inversion settings, the ncx2 test or another
    key geometry, and too few calibration images are one-line errors (the last before any work)."""
    run = CliRunner().invoke
    null, key = tmp_path / "null.safetensors", tmp_path / "k.safetensors"
    r = run(main, ["watermark", "keygen", "-g", "sd3-reflow", "--pattern", "rings", "--seed", "3", "--out", str(key)],
            obj={})
    assert r.exit_code == 0, r.output
    tiny = ["--inv-steps", "4", "--fixed-point", "0"]
    r = run(main, ["watermark", "calibrate", "-g", "sd3-reflow", "--key", str(key), "--n", "20", *tiny,
                   "--out", str(null)], obj={})
    assert r.exit_code == 0, r.output
    assert "null of 13 coordinates" in r.output and load_null(null).settings["embed_seed"] == CALIBRATION_SEED
    r = run(main, ["watermark", "embed", "-g", "sd3-reflow", "--key", str(key), "--n", "3", "--unmarked",
                   "--out", str(tmp_path / "img")], obj={})
    assert r.exit_code == 0, r.output
    for method in ("empirical", "gaussian"):
        out = tmp_path / f"det-{method}.csv"
        r = run(main, ["watermark", "detect", str(tmp_path / "img"), "-g", "sd3-reflow", "--key", str(key), *tiny,
                       "--null", str(null), "--null-method", method, "--out", str(out)], obj={})
        assert r.exit_code == 0, r.output
        rows = pd.read_csv(out)
        assert len(rows) == 6 and rows["p_value"].between(0, 1).all()
        if method == "empirical":  # ranks among the 14 reference images of the 20 (6 fit the whitener)
            assert np.allclose(rows["p_value"] * 15, np.round(rows["p_value"] * 15))
    other = tmp_path / "k3.safetensors"
    run(main, ["watermark", "keygen", "-g", "sd3-reflow", "--radius", "3", "--seed", "1", "--out", str(other)], obj={})
    for args, msg in [(["--inv-steps", "8", "--fixed-point", "0"], "other inversion settings"),
                      ([*tiny, "--test", "ncx2"], "goes with the cosine test"),
                      ([*tiny, "--key", str(other)], "calibrate a null")]:
        keys = [] if "--key" in args else ["--key", str(key)]
        r = run(main, ["watermark", "detect", str(tmp_path / "img"), "-g", "sd3-reflow", *keys, *args,
                       "--null", str(null)], obj={})
        assert r.exit_code != 0 and r.output.startswith("error:") and msg in r.output, r.output
    r = run(main, ["watermark", "detect", str(tmp_path / "img"), "-g", "sd3", "--key", str(key), *tiny,
                   "--null", str(null)], obj={})
    assert r.exit_code != 0 and "another generator" in r.output, r.output
    r = run(main, ["watermark", "calibrate", "-g", "sd3-reflow", "--n", "5", "--out", str(tmp_path / "n2")], obj={})
    assert r.exit_code != 0 and "--n >= 15" in r.output and not (tmp_path / "n2").exists(), r.output


def shifted(noise: torch.Tensor) -> torch.Tensor:
    """An "attack" on the coloured null that moves what unmarked images invert to: a fixed low-frequency image
    added to the noise (a key that correlates with it is falsely accepted far more often)."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 14), torch.linspace(-1, 1, 14), indexing="ij")
    return noise + 0.4 * torch.cos(2.5 * xx + 1.5 * yy)


def test_attacked_references_hold_the_rate_under_the_attack():
    """Calibrated on clean images only, the rule's FPR under the shift ranges far above alpha for some of 30 keys;
    with the shifted calibration images as a second reference (p = the larger conformal p-value), every key is at
    most alpha + 4 standard errors under the shift, and on clean noise too."""
    calib = coloured_noise(4000, seed=0)
    key0 = keys(1, "rand")[0]
    clean_only = estimate_null(calib, key0)
    aware = estimate_null(calib, key0, attacked={"shift": shifted(calib[1200:])})
    assert list(aware.references()) == ["clean", "shift"] and len(aware.conditions["shift"]) == 2800
    clean, attacked = coloured_noise(4000, seed=1), shifted(coloured_noise(4000, seed=1))
    band = 4 * (ALPHA * (1 - ALPHA) / len(clean)) ** 0.5

    def fpr(noise, key, null):
        return float((calibrated_test(noise, key, null)[1] < ALPHA).double().mean())

    before = np.array([fpr(attacked, k, clean_only) for k in keys(30, "rand")])
    after = np.array([fpr(attacked, k, aware) for k in keys(30, "rand")])
    on_clean = np.array([fpr(clean, k, aware) for k in keys(30, "rand")])
    assert before.max() > 2 * ALPHA, before
    assert after.max() < ALPHA + band and on_clean.max() < ALPHA + band, (after, on_clean)
    with pytest.raises(ValueError, match="empirical"):
        calibrated_test(clean[:5], key0, aware, "gaussian")


def test_a_null_with_attacked_references_round_trips(tmp_path):
    calib = coloured_noise(600, seed=0)
    key = keys(1, "rand")[0]
    null = estimate_null(calib, key, attacked={"jpeg:50": shifted(calib[180:]), "rotation:15+jpeg:50": -calib[180:]})
    back = load_null(save_null(null, tmp_path / "n.safetensors"))
    assert list(back.conditions) == ["jpeg:50", "rotation:15+jpeg:50"]
    assert all(torch.equal(back.conditions[k], v) for k, v in null.conditions.items())
    with pytest.raises(ValueError, match="shape"):
        estimate_null(calib, key, attacked={"bad": calib[:10]})


def test_cli_calibrate_under_attacks_and_robustness_with_calibrate_attacks(tmp_path):
    run = CliRunner().invoke
    tiny = ["--inv-steps", "2", "--fixed-point", "0"]
    r = run(main, ["watermark", "calibrate", "-g", "sd3-reflow", "--radius", "2.19", "--channel", "2", "--n", "20",
                   "--attacks", "jpeg:50,rotation:15", *tiny, "--out", str(tmp_path / "null.safetensors")], obj={})
    assert r.exit_code == 0, r.output
    null = load_null(tmp_path / "null.safetensors")
    assert list(null.conditions) == ["jpeg(50)", "rotation(15)"] and null.settings["attacks"] == list(null.conditions)
    r = run(main, ["watermark", "calibrate", "-g", "sd3-reflow", "--n", "20", "--attacks", "jpeg:abc",
                   "--out", str(tmp_path / "bad.safetensors")], obj={})
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    args = ["watermark", "robustness", "-g", "sd3-reflow", "--pattern", "rand", "--keys", "2", "--n", "2",
            "--attacks", "clean,jpeg:50", "--no-quality", "--no-progress", *tiny]
    r = run(main, [*args, "--calibrate", "16", "--calibrate-attacks", "jpeg:50", "--out", str(tmp_path / "r")], obj={})
    assert r.exit_code == 0, r.output
    assert pd.read_csv(tmp_path / "r" / "robustness.csv")["fpr_at_alpha"].between(0, 1).all()
    r = run(main, [*args, "--calibrate-attacks", "jpeg:50", "--out", str(tmp_path / "r2")], obj={})
    assert r.exit_code == 1 and "--calibrate" in r.output and "Traceback" not in r.output, r.output
