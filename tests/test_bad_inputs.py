"""Inputs a hostile or careless user gives: each is refused with a one-line error, or read as it is."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from diffeval.cli import main
from diffeval.generators.checkpoints import save_checkpoint

from .helpers import tiny_generator


def _run(args):
    return CliRunner().invoke(main, args, obj={})


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps: must be an integer >= 1"),
    (["--guidance", "-1"], "--guidance: must be a finite number >= 0"),
    (["--guidance", "nan"], "--guidance: must be a finite number >= 0"),
    (["--eta", "-1"], "--eta: must lie in [0, 1]"),
    (["--n", "0"], "--n: must be at least 1"),
])
def test_sample_refuses_invalid_settings(tmp_path, args, message):
    g = tiny_generator("sd1")
    save_checkpoint(tmp_path / "c", g.model, "tiny", "sd1", g.defaults)
    out = tmp_path / "g.png"
    r = _run(["sample", "-g", str(tmp_path / "c"), "--prompt", "a shoe", "--out", str(out), *args])
    assert r.exit_code == 1 and r.output.startswith(f"error: {message}") and r.output.count("\n") == 1, r.output
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps: must be an integer >= 1"),
    (["--fid-resamples", "-1"], "--fid-resamples: must be an integer >= 0"),
    (["--n", "1"], "--n: must be an integer >= 2"),
    (["--batch-size", "0"], "--batch-size: must be an integer >= 1"),
])
def test_benchmark_refuses_invalid_settings(tmp_path, args, message):
    r = _run(["benchmark", "sd3-reflow", "--no-progress", "--out", str(tmp_path / "b"), *args])
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "b" / "benchmark.csv").exists()


def test_detect_train_refuses_zero_steps(tmp_path):
    r = _run(["detect", "train", "--steps", "0", "--out", str(tmp_path / "d")])
    assert r.exit_code == 1 and r.output.startswith("error: --steps: must be an integer >= 1"), r.output
    assert not (tmp_path / "d").exists()


def test_sampling_a_conditional_model_without_a_condition_warns(tmp_path):
    g = tiny_generator("dit")
    save_checkpoint(tmp_path / "c", g.model, "tiny", "dit", g.defaults)
    with pytest.warns(UserWarning, match="class-conditional but no --label was given"):
        r = _run(["sample", "-g", str(tmp_path / "c"), "--n", "2", "--steps", "2", "--out", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output


def test_an_oversized_model_config_is_refused_before_it_is_built(tmp_path, monkeypatch):
    """base_channels 2000 would build about 2.4 G parameters: refused from the config, in well under a second."""
    import time

    from diffeval.generators import CheckpointError, load_generator

    g = tiny_generator("ddpm")
    save_checkpoint(tmp_path / "c", g.model, "tiny", "ddpm", g.defaults)
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    config["model"]["backbone_config"]["base_channels"] = 2000
    config["model"]["image_size"] = 28
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"parameters .* over the limit .* DIFFEVAL_MAX_PARAMS"):
        load_generator(tmp_path / "c")
    assert time.perf_counter() - t0 < 30
    monkeypatch.setenv("DIFFEVAL_MAX_PARAMS", "10")
    with pytest.raises(CheckpointError, match="over the limit of 10"):
        load_generator(tmp_path / "c")


def test_a_detector_config_cannot_name_an_arbitrary_builder():
    from diffeval.detectors.model import DetectorConfig

    with pytest.raises(ValueError, match="resnet must be one of resnet18"):
        DetectorConfig(resnet="vit_h_14")
    with pytest.raises(ValueError, match="hidden must be an integer in"):
        DetectorConfig(hidden=10**7)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    """A 16-bit grey ramp reads as its 8-bit equivalent (v / 65535 * 255), not as almost all white."""
    from diffeval.images import read_image

    ramp = (np.arange(64, dtype=np.float64).reshape(8, 8) / 63 * 65535).round().astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "r.png")
    arr, own = read_image(tmp_path / "r.png")
    assert own == 1 and arr.dtype == np.uint8
    assert np.array_equal(arr[..., 0], np.floor(ramp / 65535 * 255 + 0.5).astype(np.uint8))
    assert (arr == 255).mean() < 0.05  # was 99.6% white before
    Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)).save(tmp_path / "f.tiff")
    assert read_image(tmp_path / "f.tiff")[0].max() == 255
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "CMYK").save(tmp_path / "c.jpg")
    arr, own = read_image(tmp_path / "c.jpg")
    assert own == 3 and arr.shape == (8, 8, 3)


def test_an_unwritable_out_is_refused_before_the_work(tmp_path):
    """watermark detect with an --out it cannot write fails at once, with one line, not after inverting."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    key = tmp_path / "k.safetensors"
    assert _run(["watermark", "keygen", "-g", "sd3-reflow", "--seed", "1", "--out", str(key)]).exit_code == 0
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    r = _run(["watermark", "detect", str(tmp_path / "x.png"), "-g", "sd3-reflow", "--key", str(key), "--out",
              str(blocker / "rows.csv")])
    assert r.exit_code == 1 and r.output.startswith("error: --out: cannot write to") and r.output.count("\n") == 1
    b = _run(["benchmark", "sd3-reflow", "--no-progress", "--out", str(blocker / "b")])
    assert b.exit_code == 1 and b.output.startswith("error: --out: cannot write to")


def test_npz_labels_outside_the_classes_are_refused(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((4, 28, 28, 1), np.uint8), labels=np.array([0, 1, 2, 42]))
    r = _run(["benchmark", str(tmp_path / "x.npz"), "--no-progress", "--out", str(tmp_path / "b")])
    assert r.exit_code == 1 and "labels are the requested Fashion-MNIST classes 0-9" in r.output, r.output


def test_a_small_sample_leaves_only_the_metrics_it_cannot_compute_empty(tmp_path):
    """n = 3: IS (10 splits) and density/coverage (k = 5) are NaN with a warning; FID, KID, agreement stand."""
    import pandas as pd

    with pytest.warns(UserWarning, match="is_mean, is_std left empty"):
        r = _run(["benchmark", "sd3-reflow", "--n", "3", "--fid-resamples", "0", "--no-progress", "--out",
                  str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    row = pd.read_csv(tmp_path / "b" / "benchmark.csv").iloc[0]
    assert pd.isna(row["is_mean"]) and pd.isna(row["density"]) and pd.isna(row["error"])
    assert np.isfinite(row["fid"]) and np.isfinite(row["kid"]) and 0 <= row["cond_accuracy"] <= 1


MODEL_COMMANDS = [["train"], ["sample"], ["quality"], ["benchmark"], ["watermark", "keygen"], ["watermark", "embed"],
                  ["watermark", "detect"], ["watermark", "robustness"], ["watermark", "forgery"],
                  ["detect", "train"], ["detect", "eval"],
                  ["detect", "predict"], ["audit", "score-error"], ["audit", "bias"]]


@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=" ".join)
def test_every_command_that_loads_a_model_has_the_trust_flag_its_errors_name(command):
    r = _run([*command, "--help"])
    assert r.exit_code == 0 and "--trust-pickle" in r.output


def test_a_pickled_checkpoint_is_refused_then_trusted(tmp_path):
    import torch

    g = tiny_generator("ddpm")
    save_checkpoint(tmp_path / "c", g.model, "tiny", "ddpm", g.defaults)
    (tmp_path / "c" / "model.safetensors").unlink()
    torch.save(g.model.state_dict(), tmp_path / "c" / "model.pt")
    args = ["watermark", "keygen", "-g", str(tmp_path / "c"), "--radius", "2", "--seed", "1", "--out",
            str(tmp_path / "k.safetensors")]
    refused = _run(args)
    assert refused.exit_code == 1 and "pass --trust-pickle" in refused.output and refused.output.count("\n") == 1
    assert _run([*args, "--trust-pickle"]).exit_code == 0 and (tmp_path / "k.safetensors").is_file()


@pytest.mark.parametrize("args, message", [
    (["watermark", "keygen", "-g", "sd3-reflow", "--count", "0"], "--count: must be an integer >= 1"),
    (["watermark", "embed", "-g", "sd3-reflow", "--key", "k", "--n", "0"], "--n: must be an integer >= 1"),
    (["watermark", "robustness", "--n", "0"], "--n: must be an integer >= 1"),
    (["watermark", "robustness", "--n-unmarked", "-2"], "--n-unmarked: must be an integer >= 1"),
    (["watermark", "robustness", "--keys", "0"], "--keys: must be an integer >= 1"),
    (["watermark", "robustness", "--calibrate", "-1"], "--calibrate: must be an integer >= 0"),
    (["watermark", "robustness", "--calibrate", "100", "--test", "ncx2"], "--calibrate goes with the cosine test"),
    (["watermark", "robustness", "--key-seed", "-1"], "--key-seed: must lie in [0, 2**32)"),
])
def test_watermark_counts_are_checked_before_work(tmp_path, args, message):
    """A zero count used to exit 0 having written nothing (keygen) or fail deep inside (robustness)."""
    out = tmp_path / "o"
    r = _run([*args, "--out", str(out)])
    assert r.exit_code == 1 and r.output.startswith(f"error: {message}"), r.output
    assert not out.exists()
