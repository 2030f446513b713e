"""Detection with the bundled models: round trip, separation on a tiny config, per-file errors, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from diffeval.cli import main
from diffeval.generators import load_generator
from diffeval.watermark.detect import DetectSettings, detect_files, detect_images
from diffeval.watermark.embed import EmbedSettings, generate, initial_noise
from diffeval.watermark.fourier import spectrum
from diffeval.watermark.keys import make_key
from diffeval.watermark.robustness import detection_metrics, tpr_at_fpr

STEPS = 10
DET = DetectSettings(steps=20, fixed_point=2)  # the tiny config: 10 sampling steps, 20 inversion steps


@pytest.fixture(scope="module")
def sd3():
    return load_generator("sd3", device="cpu")


def key_of(sd3, seed: int, name: str = ""):
    """A rand key on the latent's channel 2 (of 3x14x14), radius 3: the 6 px radius these tests used on the old
    28 px pixel models, scaled to the latent."""
    return make_key(sd3.noise_shape, "rand", 3, (2,), seed=seed, name=name)


def test_invert_recovers_the_noise_with_a_bundled_model(sd3):
    """invert(sample(z)) on the latent sd3's own 10-step grid, null condition: in the key region the recovered
    noise is closer to z than unrelated noise is (rms measured 0.85 against 1.40). Fixed-point iterations do not
    help here (0.99 with 2, 1.03 with 20): what remains is the autoencoder's round trip, encode(decode(z)) != z,
    which no ODE solver undoes."""
    n = 16
    z = initial_noise(sd3, n, seed=0)
    x = sd3.sample(n, noise=z, steps=STEPS, sampler="euler", guidance=1.0)
    mask = key_of(sd3, 0).mask

    def key_region_rms(r):
        return (spectrum(r - z)[..., mask]).abs().pow(2).mean().sqrt().item()

    plain = key_region_rms(sd3.invert(x, steps=STEPS))
    unrelated = key_region_rms(initial_noise(sd3, n, seed=1))
    assert plain < 0.95 and unrelated > 1.25


@pytest.mark.parametrize("test", ["cosine", "ncx2"])
def test_detection_separates_marked_from_unmarked(sd3, test):
    """Tiny config (10 sampling, 20 inversion steps) on the latent sd3: measured AUC 1.0 (cosine) and 0.98 (ncx2),
    p-value rule TPR 0.42 / 0.42 at FPR 0 on 12 + 12 images (the pixel sd3 gave 0.92 / 0.83: the latent round
    trip costs the key energy; issue 19 re-measures the watermark on the latent presets)."""
    key = key_of(sd3, 1)
    settings = EmbedSettings(steps=STEPS, seed=3)
    marked = generate(sd3, key, 12, settings)
    unmarked = generate(sd3, None, 12, settings)
    det = DetectSettings(steps=DET.steps, fixed_point=DET.fixed_point, test=test)
    pos, neg = detect_images(sd3, marked, [key], det), detect_images(sd3, unmarked, [key], det)
    m = detection_metrics(neg["score"], pos["score"], neg["p_value"], pos["p_value"], 0.01)
    assert m["auc"] >= 0.95 and m["tpr_at_alpha"] >= 0.3 and m["fpr_at_alpha"] == 0.0
    assert set(pos.columns) >= {"key", "score", "distance", "p_value", "p_adjusted", "detected", "detect_s_per_image"}


def test_identification_picks_the_key_that_marked_the_image(sd3):
    """Three keys, four images marked with each: the best-scoring key is the one that marked the image for 11
    of the 12 (measured), and p_adjusted is Bonferroni over the keys."""
    keys = [key_of(sd3, s, f"k{s}") for s in (1, 2, 3)]
    right = 0
    for k in keys:
        rows = detect_images(sd3, generate(sd3, k, 4, EmbedSettings(steps=STEPS, seed=9)), keys, DET)
        right += int((rows["key"] == k.label).sum())
        assert np.allclose(rows["p_adjusted"], np.minimum(1, 3 * rows["p_value"]))
    assert right >= 10


def test_files_that_do_not_fit_get_an_error_row(sd3, tmp_path):
    key = key_of(sd3, 1)
    img = generate(sd3, key, 2, EmbedSettings(steps=STEPS))
    for i, a in enumerate((img[:, 0] * 255).round().byte().numpy()):
        Image.fromarray(a).save(tmp_path / f"ok{i}.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG broken")
    Image.new("L", (32, 32)).save(tmp_path / "big.png")
    Image.new("RGB", (28, 28)).save(tmp_path / "rgb.png")
    files = [tmp_path / f for f in ("ok0.png", "corrupt.png", "big.png", "rgb.png", "ok1.png", "missing.png")]
    rows = detect_files(sd3, files, [key], DET)
    assert list(rows["error"] == "") == [True, False, False, False, True, False]
    assert rows.loc[[0, 4], "p_value"].notna().all() and rows.loc[[1, 2, 3, 5], "p_value"].isna().all()
    assert "corrupt" in rows.loc[1, "error"] and "32x32" in rows.loc[2, "error"] and "3-channel" in rows.loc[3, "error"]
    with pytest.raises(ValueError, match="made for images of shape"):
        detect_files(sd3, files, [make_key((3, 28, 28), "rand", 4, seed=0)])


def test_tpr_at_fpr_and_metrics_closed_cases():
    neg, pos = np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.5, 3.5, 4.0, 5.0])
    assert tpr_at_fpr(neg, pos, 0.0) == 0.75 and tpr_at_fpr(neg, pos, 0.25) == 1.0
    m = detection_metrics(neg, pos, np.array([0.5, 0.2, 0.001, 0.9]), np.array([0.001, 0.002, 0.5, 0.003]), 0.01)
    assert m["auc"] == pytest.approx(15 / 16) and m["fpr_at_alpha"] == 0.25 and m["tpr_at_alpha"] == 0.75
    assert m["accuracy"] == pytest.approx(0.75)


def test_cli_keygen_embed_detect_robustness(tmp_path):
    run = CliRunner().invoke
    r = run(main, ["watermark", "keygen", "-g", "sd3-reflow", "--pattern", "rand", "--seed", "4",
                   "--out", str(tmp_path / "k.safetensors")], obj={})
    assert r.exit_code == 0, r.output
    r = run(main, ["watermark", "embed", "-g", "sd3-reflow", "--key", str(tmp_path / "k.safetensors"), "--n", "3",
                   "--unmarked", "--out", str(tmp_path / "img")], obj={})
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "img").glob("0*.png"))) == 3 and (tmp_path / "img" / "grid.png").is_file()
    (tmp_path / "img" / "zz-corrupt.png").write_bytes(b"nope")
    r = run(
        main,
        [
            "watermark",
            "detect",
            str(tmp_path / "img"),
            "-g",
            "sd3-reflow",
            "--key",
            str(tmp_path / "k.safetensors"),
            "--inv-steps",
            "4",
            "--out",
            str(tmp_path / "det.csv"),
        ],
        obj={},
    )
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(tmp_path / "det.csv", keep_default_na=False)
    assert len(rows) == 7 and (rows["error"] != "").sum() == 1  # 3 marked, 3 unmarked, 1 corrupt
    r = run(
        main,
        ["watermark", "detect", str(tmp_path / "img"), "-g", "sd3-reflow", "--key", str(tmp_path / "nokey")],
        obj={},
    )
    assert r.exit_code != 0 and r.output.startswith("error:") and "Traceback" not in r.output
    r = run(main, ["watermark", "robustness", "-g", "sd3-reflow", "--pattern", "rand", "--n", "4", "--attacks",
                   "clean,jpeg:50,rotation:10+blur:1", "--inv-steps", "2", "--baselines", "dwtDct", "--no-progress",
                   "--keys", "1", "--out", str(tmp_path / "rob")], obj={})
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "rob" / "robustness.csv")
    assert list(table["attack"]) == ["clean", "jpeg(50)", "rotation(10)+blur(1)"] * 2
    assert list(table["pattern"]) == ["rand"] * 3 + ["dwtDct"] * 3
    assert table.loc[3, "auc"] == 1.0  # dwtDct on clean carriers
    assert table[["auc", "tpr_at_1pct_fpr", "fpr_at_alpha"]].notna().all().all()
    for name in ("robustness.md", "robustness.json", "scores.csv", "quality.csv", "roc.png", "samples_sd3-reflow.png"):
        assert (tmp_path / "rob" / name).is_file(), name
    mtime = (tmp_path / "rob" / "cache").stat().st_mtime_ns
    cached = sorted(p.name for p in (tmp_path / "rob" / "cache").iterdir())
    r = run(main, ["watermark", "robustness", "-g", "sd3-reflow", "--pattern", "rand", "--n", "4", "--attacks", "clean",
                   "--keys", "1", "--inv-steps", "2", "--no-progress", "--out", str(tmp_path / "rob")], obj={})
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "rob" / "cache").iterdir()) == cached  # all reused
    rerun = pd.read_csv(tmp_path / "rob" / "robustness.csv")
    assert rerun["detect_s_per_image"].notna().all()  # the timing is cached with the recovered noise
    assert (tmp_path / "rob" / "cache").stat().st_mtime_ns == mtime
    r = run(main, ["watermark", "robustness", "--attacks", "sharpen:3", "--out", str(tmp_path / "x")], obj={})
    assert r.exit_code != 0 and "unknown attack" in r.output
    r = run(main, ["watermark", "robustness", "--baselines", "stegastamp", "--out", str(tmp_path / "x")], obj={})
    assert r.exit_code != 0 and "unknown baseline" in r.output
