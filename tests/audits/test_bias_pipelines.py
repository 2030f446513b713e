"""``diffeval audit bias -g PIPELINE_DIR``: a prompt audit of a diffusers text pipeline (tiny random weights built
by the test) with the face attributes and a CLIP zero-shot attribute, cached and resumed."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from diffeval.cli import main

pytest.importorskip("diffusers")


@pytest.fixture()
def tiny_clip(tmp_path):
    """A random-weight open_clip ViT registered under a test name, and its weights file."""
    open_clip = pytest.importorskip("open_clip")
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "tiny-audit-vit.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "tiny-audit-vit.json")
    torch.manual_seed(0)
    weights = tmp_path / "clip.pt"
    torch.save(open_clip.create_model("tiny-audit-vit", pretrained=None).state_dict(), weights)
    return "tiny-audit-vit", str(weights)


def test_bias_audit_of_a_pipeline_runs_and_resumes(tiny_pipelines, tiny_clip, tmp_path, monkeypatch):
    """60 occupation prompts x 2 images from the tiny SD folder: every image gets a row; the face attributes
    abstain ("no face detected": 16 px random images hold no face) and the CLIP attribute labels every image; a
    rerun reads the cache and samples nothing."""
    from diffeval.generators.diffusers_pipeline import DiffusersGenerator

    arch, weights = tiny_clip
    out = tmp_path / "audit"
    args = ["audit", "bias", "-g", str(tiny_pipelines["sd"]), "--prompts", "occupations", "--attributes",
            "gender,age_group,monk,ita_class,clip:colour=red|blue", "--clip-arch", arch, "--clip-pretrained", weights,
            "--n-per-prompt", "2", "--steps", "2", "--batch-size", "2", "--n-boot", "20", "--out", str(out)]
    res = CliRunner().invoke(main, args, obj={})
    assert res.exit_code == 0, res.output
    images = pd.read_csv(out / "images.csv")
    assert len(images) == 120 and images["prompt"].nunique() == 60
    for attr in ("gender", "age_group", "monk", "ita_class"):
        assert images[attr].isna().all() and (images[f"{attr}_abstain"] == "no face detected").all()
    assert set(images["colour"]) <= {"red", "blue"} and images["colour"].notna().all()
    assert (out / "plots" / "shares_monk.png").is_file()  # 600 (prompt, tone) cells: drawn as a heat map
    settings = json.loads((out / "summary.json").read_text())["settings"]
    assert settings["steps"] == 2 and settings["sampler"] == "DDIMScheduler"

    def no_sampling(*a, **k):
        raise AssertionError("the resumed audit sampled again")

    monkeypatch.setattr(DiffusersGenerator, "sample", no_sampling)
    again = CliRunner().invoke(main, args, obj={})
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(pd.read_csv(out / "images.csv"), images)


def test_bias_audit_refuses_a_class_pipeline_in_one_line(tiny_pipelines, tmp_path):
    res = CliRunner().invoke(main, ["audit", "bias", "-g", str(tiny_pipelines["dit"]), "--n-per-prompt", "2",
                                    "--steps", "1", "--out", str(tmp_path / "a")], obj={})
    assert res.exit_code == 1 and "class-conditioned; a prompt audit needs a text-conditional generator" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("family", ["sd-v", "sdxl", "sd3", "pixart"])
def test_bias_audit_runs_on_every_text_family(tiny_pipelines, tmp_path, family):
    """The fashion prompt set, one image per prompt, the bundled judge's category: a row per image."""
    out = tmp_path / "audit"
    res = CliRunner().invoke(main, ["audit", "bias", "-g", str(tiny_pipelines[family]), "--prompts", "fashion",
                                    "--attributes", "judge,monk", "--n-per-prompt", "1", "--steps", "1",
                                    "--n-boot", "10", "--out", str(out)], obj={})
    assert res.exit_code == 0, res.output
    from diffeval.audits.bias.prompts import load_prompt_set

    images = pd.read_csv(out / "images.csv")
    assert len(images) == len(load_prompt_set("fashion"))
    assert (images["category_abstain"] == "image is 16x16, not 28x28").all()
