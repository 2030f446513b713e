"""``diffeval sample`` and ``diffeval benchmark`` on a saved pipeline folder of every family (the README's table of
families x commands names these tests), with the dtype and size options."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from diffeval.cli import main

pytest.importorskip("diffusers")

FAMILIES = ("sd", "sd-v", "sdxl", "sd3", "pixart", "dit", "ldm", "ddpm")


def _cond(family: str) -> list[str]:
    if family in ("sd", "sd-v", "sdxl", "sd3", "pixart"):
        return ["--prompt", "a shoe"]
    return ["--label", "3"] if family == "dit" else []


@pytest.mark.parametrize("family", FAMILIES)
def test_sample_command_on_every_family(tiny_pipelines, tmp_path, family):
    out = tmp_path / "grid.png"
    r = CliRunner().invoke(main, ["sample", "-g", str(tiny_pipelines[family]), *_cond(family), "--n", "2", "--steps",
                                  "2", "--out", str(out), "--npz", str(tmp_path / "x.npz")], obj={})
    assert r.exit_code == 0 and "2 images from" in r.output, r.output
    side = 8 if family == "ddpm" else 16
    assert np.load(tmp_path / "x.npz")["images"].shape == (2, side, side, 3)


def test_sample_dtype_and_size_options(tiny_pipelines, tmp_path):
    """--dtype bfloat16 and --height/--width on a text pipeline; --dtype on a bundled model and --height on a
    fixed-size pipeline are refused in one line."""
    r = CliRunner().invoke(main, ["sample", "-g", str(tiny_pipelines["sd"]), "--prompt", "a shoe", "--n", "2",
                                  "--steps", "2", "--dtype", "bfloat16", "--height", "24", "--width", "32",
                                  "--out", str(tmp_path / "g.png"), "--npz", str(tmp_path / "x.npz")], obj={})
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "x.npz")["images"].shape == (2, 24, 32, 3)
    for args, says in ((["-g", "ddpm", "--dtype", "float16"], "the bundled models and checkpoints run in float32"),
                       (["-g", str(tiny_pipelines["dit"]), "--label", "1", "--height", "32"], "makes 16px images only"),
                       (["-g", "ddpm", "--width", "32"], "ddpm makes 28px images only")):
        r = CliRunner().invoke(main, ["sample", *args, "--n", "1", "--steps", "1", "--out", str(tmp_path / "b.png")],
                               obj={})
        lines = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert r.exit_code == 1 and len(lines) == 1 and says in lines[0], r.output
    assert not (tmp_path / "b.png").exists()


def test_benchmark_rows_for_every_16px_family(tiny_pipelines, tmp_path):
    """One benchmark over the 16 px RGB folders (text UNets, SDXL, SD3, DiT, LDM): a row each, no errors."""
    rng = np.random.default_rng(0)
    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(ref / f"{i}.png")
    names = ["sd-v", "sdxl", "sd3", "pixart", "dit", "ldm"]
    r = CliRunner().invoke(main, ["benchmark", *(str(tiny_pipelines[f]) for f in names), "--reference", str(ref),
                                  "--n", "8", "--steps", "2", "--batch-size", "4", "--fid-resamples", "0",
                                  "--device", "cpu", "--out", str(tmp_path / "b"), "--no-progress"], obj={})
    assert r.exit_code == 0, r.output
    import pandas as pd

    table = pd.read_csv(tmp_path / "b" / "benchmark.csv")
    assert sorted(table["generator"]) == sorted(names) and table["error"].isna().all(), table.to_string()
    assert np.isfinite(table["fid"]).all()
