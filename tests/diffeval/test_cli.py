"""CLI: sampling to a grid, one-line errors with non-zero exit."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from diffeval.cli import main
from diffeval.generators.checkpoints import save_checkpoint

from ..helpers import tiny_generator


def test_sample_writes_grid_and_npz(tmp_path):
    g = tiny_generator("sd1")
    save_checkpoint(tmp_path / "ckpt", g.model, "tiny", "sd1", g.defaults)
    out, npz = tmp_path / "grid.png", tmp_path / "x.npz"
    result = CliRunner().invoke(
        main,
        [
            "sample",
            "-g",
            str(tmp_path / "ckpt"),
            "--n",
            "6",
            "--prompt",
            "a shoe",
            "--prompt",
            "a bag",
            "--steps",
            "3",
            "--out",
            str(out),
            "--npz",
            str(npz),
        ],
        obj={},
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size[0] > 8
    arr = np.load(npz)["images"]
    assert arr.shape == (6, 8, 8, 1) and arr.dtype == np.uint8


def test_errors_are_one_line_with_exit_code(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["sample", "-g", "no-such-model", "--out", str(tmp_path / "g.png")], obj={})
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and result.output.startswith("error: unknown generator")
    assert "Traceback" not in result.output
    g = tiny_generator("dit")
    save_checkpoint(tmp_path / "c", g.model, "tiny", "dit", g.defaults)
    result = runner.invoke(
        main, ["sample", "-g", str(tmp_path / "c"), "--label", "42", "--out", str(tmp_path / "g.png")], obj={}
    )
    assert result.exit_code == 1 and "labels must lie in 0..9" in result.output


def test_debug_shows_traceback(tmp_path):
    result = CliRunner().invoke(main, ["--debug", "sample", "-g", "no-such-model"], obj={})
    assert result.exit_code != 0 and result.exception is not None


def test_quality_writes_the_table_files_and_grids(tmp_path):
    """``diffeval quality`` end to end on the 2-step reflow model: one row, the one JSON layout, a grid."""
    import json

    out = tmp_path / "q"
    result = CliRunner().invoke(main, ["quality", "-g", "sd3-reflow", "--n", "20", "--out", str(out)], obj={})
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "quality.json").read_text())
    assert set(doc) == {"settings", "rows"} and doc["settings"]["n"] == 20 and len(doc["rows"]) == 1
    assert doc["rows"][0]["generator"] == "sd3-reflow" and 0 <= doc["rows"][0]["cond_accuracy"] <= 1
    assert (out / "quality.csv").is_file() and (out / "quality.md").is_file()
    assert (out / "grid_sd3-reflow.png").is_file()
    bad = CliRunner().invoke(main, ["quality", "-g", "sd3-reflow", "--n", "0", "--out", str(out)], obj={})
    assert bad.exit_code == 1 and bad.output.startswith("error: --n: must be an integer >= 1")


def test_train_a_preset_for_two_steps(tmp_path):
    """``diffeval train`` end to end: two optimizer steps of the latent dit preset on Fashion-MNIST over a tiny
    autoencoder (``--autoencoder-from``), then a checkpoint that carries it, loads and samples."""
    import torch

    from diffeval.generators import load_generator
    from diffeval.generators.autoencoder import Autoencoder, AutoencoderConfig, save_autoencoder

    torch.manual_seed(0)
    save_autoencoder(tmp_path / "ae", Autoencoder(AutoencoderConfig(base_channels=4, scaling_factor=0.5)))
    out = tmp_path / "dit"
    result = CliRunner().invoke(main, ["train", "--preset", "dit", "--steps", "2", "--device", "cpu", "--out",
                                       str(out), "--autoencoder-from", str(tmp_path / "ae")], obj={})
    assert result.exit_code == 0, result.output
    assert "dit: 2 steps, final loss" in result.output
    g = load_generator(out)
    assert g.info.space == "latent" and g.autoencoder.config.scaling_factor == 0.5
    assert tuple(g.sample(2, labels=3, steps=2, seed=0).shape) == (2, 1, 28, 28)


def test_train_the_autoencoder_for_two_steps(tmp_path):
    """``diffeval train --autoencoder``: two steps on Fashion-MNIST, saved with its measured latent scale; the
    options that belong to presets are refused in one line."""
    from diffeval.generators.autoencoder import load_autoencoder

    out = tmp_path / "ae"
    result = CliRunner().invoke(main, ["train", "--autoencoder", "--steps", "2", "--device", "cpu", "--out",
                                       str(out)], obj={})
    assert result.exit_code == 0, result.output
    assert "autoencoder: 2 steps, final loss" in result.output
    ae = load_autoencoder(out)
    assert ae.latent_shape == (3, 14, 14) and ae.config.scaling_factor > 0
    for bad in (["train", "--out", str(out)], ["train", "--autoencoder", "--preset", "sd3", "--out", str(out)],
                ["train", "--autoencoder", "--base", "x", "--out", str(out)]):
        r = CliRunner().invoke(main, bad, obj={})
        assert r.exit_code == 2 and ("exactly one of" in r.output or "apply to --preset" in r.output), r.output


