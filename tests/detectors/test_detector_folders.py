"""``diffeval detect train/eval`` with ``--real DIR --fake DIR`` image folders of any size and diffusers pipeline
generators, under the one input policy (centre crop, never resized, common channels)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from diffeval.cli import main
from diffeval.detectors.folders import InputPolicy, apply_policy, choose_policy


def _folder(path, sizes, seed, colour=True):
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    for i, (h, w) in enumerate(sizes):
        shape = (h, w, 3) if colour else (h, w)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path / f"{i:03d}.png")
    return path


def test_policy_crops_never_resizes_and_shares_channels():
    """The crop is the smallest side (rounded to the spectrum block); any grey source makes the policy grey;
    an image is its centre crop, so surrounding pixels (and the image's size) cannot change what is seen."""
    rgb = [np.zeros((40, 30, 3), np.uint8), np.zeros((21, 50, 3), np.uint8)]
    grey = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    assert choose_policy([rgb], block=4) == InputPolicy(20, 3)
    assert choose_policy([rgb, grey], block=4) == InputPolicy(20, 1)
    centre = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    big = np.zeros((40, 30, 3), np.uint8)
    big[12:28, 7:23] = centre
    x, skipped = apply_policy([big, centre, np.zeros((10, 40, 3), np.uint8)], InputPolicy(16, 3), ["a", "b", "c"])
    assert torch.equal(x[0], x[1]) and skipped == [("c", "image is 40x10, smaller than the detector's 16x16 crop")]
    with pytest.raises(ValueError, match="at least 8 px"):
        choose_policy([[np.zeros((6, 6, 3), np.uint8)]])


def test_detect_train_and_eval_on_folders_and_a_pipeline(tiny_pipelines, tmp_path):
    """Train on a real folder (mixed sizes) against a fake folder plus a pipeline's samples; evaluate on other
    folders and the pipeline; predict a file. The detector's input is RGB 16x16 (the smallest side)."""
    pipe = str(tiny_pipelines["sd"])
    real = _folder(tmp_path / "real", [(40, 36)] * 12 + [(48, 48)] * 12, 0)
    fake = _folder(tmp_path / "fake", [(20, 20)] * 12, 1)
    det = tmp_path / "det"
    r = CliRunner().invoke(main, ["detect", "train", "--train-generators", pipe, "--real", str(real), "--fake",
                                  str(fake), "--n-per-generator", "12", "--steps", "4", "--batch-size", "8",
                                  "--stem-stride", "2", "--cache", str(tmp_path / "cache"), "--out", str(det)], obj={})
    assert r.exit_code == 0, r.output
    config = json.loads((det / "config.json").read_text())
    assert (config["model"]["image_size"], config["model"]["channels"]) == (16, 3)
    names = [e["generator"] for e in config["info"]["generated"]]
    assert names == ["sd", "files:fake"] and config["info"]["n_real"] == 24 and config["info"]["n_generated"] == 24
    real_test = _folder(tmp_path / "real_test", [(32, 32)] * 6, 2)
    fake_test = _folder(tmp_path / "fake_test", [(16, 24)] * 6, 3)
    r = CliRunner().invoke(main, ["detect", "eval", "--detector", str(det), "--generators", pipe, "--real",
                                  str(real_test), "--fake", str(fake_test), "--n", "6", "--perturbations",
                                  "none,jpeg75", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "ev")],
                           obj={})
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "ev" / "eval.csv")
    assert list(table["generator"]) == ["sd", "sd", "files:fake_test", "files:fake_test"]
    assert (table["n_real"] == 6).all() and (table["n_generated"] == 6).all() and table["auc"].between(0, 1).all()
    r = CliRunner().invoke(main, ["detect", "predict", str(fake_test / "000.png"), "--detector", str(det)], obj={})
    assert r.exit_code == 0 and "000.png" in r.output


def test_folder_errors_are_one_line(tmp_path):
    tiny = _folder(tmp_path / "tiny", [(6, 6)] * 3, 0)
    r = CliRunner().invoke(main, ["detect", "train", "--train-generators", "", "--real", str(tiny), "--fake",
                                  str(tiny), "--steps", "1", "--out", str(tmp_path / "d")], obj={})
    assert r.exit_code == 1 and "at least 8 px" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["detect", "train", "--train-generators", "", "--steps", "1",
                                  "--out", str(tmp_path / "d")], obj={})
    assert r.exit_code == 1 and "or give --fake" in r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["detect", "train", "--train-generators", "", "--real", str(tmp_path / "empty"),
                                  "--fake", str(tiny), "--steps", "1", "--out", str(tmp_path / "d")], obj={})
    assert r.exit_code == 1 and "no readable image files" in r.output


@pytest.mark.parametrize("family", ["sd-v", "sdxl", "sd3", "pixart", "dit", "ldm", "ddpm"])
def test_detect_train_and_eval_with_every_family(tiny_pipelines, tmp_path, family):
    """Each family's folder as --train-generators and --generators against a real folder."""
    pipe = str(tiny_pipelines[family]) + ("@ddim:4" if family == "ddpm" else "")  # DDPM's own: 1000 steps
    real = _folder(tmp_path / "real", [(20, 20)] * 8, 0)
    det = tmp_path / "det"
    common = ["--cache", str(tmp_path / "cache")]
    r = CliRunner().invoke(main, ["detect", "train", "--train-generators", pipe, "--real", str(real),
                                  "--n-per-generator", "8", "--steps", "2", "--batch-size", "4", "--stem-stride", "2",
                                  *common, "--out", str(det)], obj={})
    assert r.exit_code == 0, r.output
    side = 8 if family == "ddpm" else 16
    assert json.loads((det / "config.json").read_text())["model"]["image_size"] == side
    r = CliRunner().invoke(main, ["detect", "eval", "--detector", str(det), "--generators", pipe, "--real", str(real),
                                  "--n", "4", "--perturbations", "none", *common, "--out", str(tmp_path / "ev")],
                           obj={})
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(tmp_path / "ev" / "eval.csv")) == 1
