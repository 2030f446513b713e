"""Training a tiny detector end to end, evaluation tables and per-file prediction."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from diffeval.data import fashion
from diffeval.detectors.data import GeneratedSpec
from diffeval.detectors.evaluate import COLUMNS, evaluate_detector, predict_files
from diffeval.detectors.model import DetectorConfig, load_detector
from diffeval.detectors.perturb import AugmentConfig
from diffeval.detectors.train import DetectorTrainConfig, train_detector

from .test_detector_model import _planted


def _tiny_cfg(**kw) -> DetectorTrainConfig:
    return DetectorTrainConfig(steps=120, batch_size=32, lr=3e-3, augment=AugmentConfig(0, 0, 0, 0, 0, 0),
                               detector=DetectorConfig(branches="frequency", spec_channels=8, hidden=16), **kw)


def test_train_detector_learns_saves_and_reports_validation(tmp_path):
    x, y = _planted(400, 0)
    real = (x[y == 0] * 255).round().to(torch.uint8)
    fake = (x[y == 1] * 255).round().to(torch.uint8)
    model, log = train_detector(_tiny_cfg(), tmp_path / "cache", tmp_path / "det", progress=False,
                                sets=(real, fake, [{"generator": "planted"}]))
    assert list(log.columns) == ["step", "loss", "elapsed_s"] and log.step.iloc[-1] == 120
    info = json.loads((tmp_path / "det" / "config.json").read_text())["info"]
    assert info["validation"]["accuracy"] >= 0.9 and info["n_real"] == 200
    xt, yt = _planted(100, 5)
    again = load_detector(tmp_path / "det")
    assert torch.equal(again.predict_proba(xt), model.predict_proba(xt))
    assert ((again.predict_proba(xt) > 0.5).float() == yt).float().mean() >= 0.9


def test_evaluate_and_predict_tables(tmp_path):
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    torch.manual_seed(0)
    from diffeval.detectors.model import Detector

    model = Detector(DetectorConfig(branches="frequency", spec_channels=8, hidden=16)).eval()
    df = evaluate_detector(model, [GeneratedSpec("dit", steps=2, seed=1)], 6, tmp_path, ("none", "jpeg75"))
    assert list(df.columns) == COLUMNS and len(df) == 2 and set(df.perturbation) == {"none", "jpeg75"}
    assert (df.n_real == 6).all() and (df.n_generated == 6).all() and df.family.iloc[0] == "dit"
    assert df[["accuracy", "auc", "average_precision", "ece"]].notna().all().all()
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "ok.png")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "bad.png").write_bytes(b"nope")
    big = np.zeros((40, 36), np.uint8)
    big[6:34, 4:32] = 255  # its centre 28x28 crop is all white, like white.png
    Image.fromarray(big).save(tmp_path / "big.png")
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(tmp_path / "white.png")
    files = ["ok.png", "small.png", "bad.png", "big.png", "white.png"]
    rows = predict_files(model, [tmp_path / f for f in files])
    assert 0 <= rows.p_generated.iloc[0] <= 1 and rows.error.iloc[0] == ""
    assert "image is 20x20, smaller than the detector's 28x28 crop" in rows.error.iloc[1]
    assert np.isnan(rows.p_generated.iloc[1]) and rows.error.iloc[2].startswith("UnidentifiedImageError")
    assert rows.error.iloc[3] == "" and rows.p_generated.iloc[3] == rows.p_generated.iloc[4]  # cropped, not resized


def test_detect_cli_train_eval_predict(tmp_path):
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    from click.testing import CliRunner
    from PIL import Image

    from diffeval.cli import main

    runner = CliRunner()
    det = tmp_path / "det"
    res = runner.invoke(main, ["detect", "train", "--train-generators", "sd3-reflow@euler:1", "--n-per-generator", "8",
                               "--branches", "frequency", "--steps", "3", "--batch-size", "8", "--dark-p", "0.5",
                               "--cache", str(tmp_path / "cache"), "--out", str(det)])
    assert res.exit_code == 0, res.output
    assert json.loads((det / "config.json").read_text())["info"]["train_config"]["augment"]["dark_p"] == 0.5
    assert (det / "model.safetensors").is_file() and "validation" in res.output
    made = json.loads((det / "config.json").read_text())["info"]["generated"]
    assert [(e["generator"], e["sampler"], e["steps"]) for e in made] == [("sd3-reflow", "euler", 1)]
    res = runner.invoke(
        main,
        [
            "detect",
            "eval",
            "--detector",
            str(det),
            "--generators",
            "sd3-reflow@euler:1",
            "--n",
            "4",
            "--perturbations",
            "none,blur1",
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "ev" / "eval.csv")
    assert len(table) == 2 and (table.steps == 1).all()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"x")
    res = runner.invoke(main, ["detect", "predict", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                               "--detector", str(det), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(tmp_path / "p.csv")
    assert rows.error.isna().iloc[0] and rows.error.iloc[1].startswith("UnidentifiedImageError")
    bad = runner.invoke(main, ["detect", "eval", "--detector", str(tmp_path), "--n", "2"])
    assert bad.exit_code != 0 and "config.json" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(main, ["detect", "train", "--local-block", "5", "--out", str(tmp_path / "never")])
    assert bad.exit_code != 0 and "local_block" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "never").exists()


def test_real_and_generated_images_reach_the_detector_on_the_same_scale(tmp_path, monkeypatch):
    """A detector that only looks at the mean brightness cannot tell the classes apart by their units."""
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    from diffeval.detectors.model import Detector

    seen = []
    model = Detector(DetectorConfig(branches="frequency", spec_channels=8, hidden=16)).eval()
    monkeypatch.setattr(model, "predict_proba", lambda x, **k: seen.append(x) or torch.full((len(x),), 0.5))
    evaluate_detector(model, [GeneratedSpec("sd3-reflow", steps=1, seed=1)], 5, tmp_path)
    x = seen[0]
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert 0.1 < x[:5].max() and 0.1 < x[5:].max()  # both halves use the [0, 1] scale
    from diffeval.detectors.train import training_sets

    real, fake, _ = training_sets(DetectorTrainConfig(["sd3-reflow"], 4), tmp_path)
    assert real.dtype == fake.dtype == torch.uint8 and real.float().mean() > 20  # not collapsed by a double scaling
