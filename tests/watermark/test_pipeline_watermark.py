"""``diffeval watermark keygen/embed/detect/robustness -g PIPELINE_DIR``: Tree-Ring on the initial latent of
diffusers pipelines, end to end through PNG files (tiny pipelines built by the tests)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from diffeval.cli import main

pytest.importorskip("diffusers")


def _run(*args: str) -> str:
    r = CliRunner().invoke(main, list(args), obj={})
    assert r.exit_code == 0, r.output
    return r.output


def test_tree_ring_separates_marked_images_of_a_latent_pipeline(tiny_sd_invertible, tmp_path):
    """keygen (on the 4x8x8 latent), embed 12 marked + 12 unmarked images (DDIM, prompts, guidance 7.5), detect
    them from their PNGs (VAE encode + DDIM inversion, null prompt, guidance 1): the cosine score ranks marked
    images above unmarked ones (AUC 0.78 for this key; random UNet weights and a VAE that inverts only roughly, so
    a smoke test of the path; benchmarks/pipeline_watermark.py gives the spread over keys)."""
    pipe = str(tiny_sd_invertible)
    out = _run("watermark", "keygen", "-g", pipe, "--pattern", "rings", "--radius", "3", "--seed", "1",
               "--out", str(tmp_path / "key.safetensors"))
    assert "shape (4, 8, 8)" in out and "channels [3]" in out
    _run("watermark", "embed", "-g", pipe, "--key", str(tmp_path / "key.safetensors"), "--n", "12", "--steps", "10",
         "--unmarked", "--out", str(tmp_path / "emb"))
    assert json.loads((tmp_path / "emb" / "embed.json").read_text())["n"] == 12
    _run("watermark", "detect", str(tmp_path / "emb"), "-g", pipe, "--key", str(tmp_path / "key.safetensors"),
         "--inv-steps", "10", "--out", str(tmp_path / "det.csv"))
    rows = pd.read_csv(tmp_path / "det.csv")
    assert len(rows) == 24 and (rows["error"].isna() | (rows["error"] == "")).all()
    marked = ~rows["image"].str.contains("unmarked")
    auc = roc_auc_score(marked, rows["score"])
    assert auc > 0.7, auc


def test_default_key_geometry_scales_the_paper_to_the_latent(tiny_pipelines, tmp_path):
    """No --radius/--channel: the paper's radius 10 at 64x64 scaled to the 8x8 latent (1.25), channel 3."""
    out = _run("watermark", "keygen", "-g", str(tiny_pipelines["sd3"]), "--seed", "0",
               "--out", str(tmp_path / "k.safetensors"))
    assert "radius 1.25, channels [3], shape (4, 8, 8)" in out


@pytest.mark.parametrize("family", ["sd-v", "sdxl", "sd3", "pixart", "dit", "ldm", "ddpm"])
def test_watermark_commands_run_on_every_family(tiny_pipelines, tmp_path, family):
    """keygen, embed and detect on each family's folder; a PNG of the wrong size gets its own error row."""
    from PIL import Image

    pipe = str(tiny_pipelines[family])
    key = str(tmp_path / "k.safetensors")
    _run("watermark", "keygen", "-g", pipe, "--pattern", "rand", "--seed", "0", "--out", key)
    _run("watermark", "embed", "-g", pipe, "--key", key, "--n", "2", "--steps", "2", "--out", str(tmp_path / "e"))
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(tmp_path / "e" / "wrong.png")
    _run("watermark", "detect", str(tmp_path / "e"), "-g", pipe, "--key", key, "--inv-steps", "2",
         "--out", str(tmp_path / "d.csv"))
    rows = pd.read_csv(tmp_path / "d.csv")
    rows["error"] = rows["error"].fillna("")
    assert len(rows) == 3
    bad = rows[rows["image"].str.endswith("wrong.png")]
    side = 8 if family == "ddpm" else 16
    assert bad["error"].iloc[0] == f"size 28x28; the generator makes {side}x{side} images"
    assert np.isfinite(rows.loc[rows["error"] == "", "score"].astype(float)).all()


def test_robustness_on_a_pipeline_with_its_own_regeneration(tiny_pipelines, tmp_path):
    """robustness -g PIPE: attacks including regeneration by the pipeline itself (regen auto), quality skipped
    with a warning (the bundled judge reads 28 px grayscale), rows for every (pattern, attack)."""
    out_dir = tmp_path / "rob"
    with pytest.warns(UserWarning, match="judge's features of \\(1, 28, 28\\) images, not \\(3, 16, 16\\); skipped"):
        r = CliRunner().invoke(main, ["watermark", "robustness", "-g", str(tiny_pipelines["sd"]), "--pattern",
                                      "rings", "--radius", "3", "--n", "4", "--steps", "2", "--inv-steps", "2",
                                      "--fixed-point", "0", "--attacks", "clean,jpeg:50,regen:0.3", "--out",
                                      str(out_dir), "--no-progress", "--keys", "1"], obj={})
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out_dir / "robustness.csv")
    assert list(table["attack"]) == ["clean", "jpeg(50)", "regen(0.3)"] and table["auc"].between(0, 1).all()


@pytest.mark.parametrize("family", ["sd-v", "sdxl", "sd3", "pixart", "dit", "ldm", "ddpm"])
def test_robustness_runs_on_every_family(tiny_pipelines, tmp_path, family):
    """A short robustness run (clean and JPEG, the default key geometry scaled to the latent) on each family."""
    out_dir = tmp_path / "rob"
    r = CliRunner().invoke(main, ["watermark", "robustness", "-g", str(tiny_pipelines[family]), "--pattern", "rand",
                                  "--keys", "1", "--n", "2", "--steps", "1", "--inv-steps", "1", "--fixed-point", "0",
                                  "--attacks",
                                  "clean,jpeg:50", "--no-quality", "--out", str(out_dir), "--no-progress"], obj={})
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out_dir / "robustness.csv")
    assert len(table) == 2 and table["n_marked"].eq(2).all() and table["auc"].between(0, 1).all()
