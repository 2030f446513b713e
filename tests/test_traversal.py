"""Names never become paths unchecked: a checkpoint whose config names it ``../../../../../escape/X`` (or an
absolute path) must not make any command write outside its --out folder."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffeval.cli import main
from diffeval.generators import BUNDLED_DIR


def _files(root):
    return {p for p in root.rglob("*") if p.is_file()}


def _hostile_checkpoint(tmp_path, name: str):
    """The bundled 2-step reflow model, renamed in its config.json."""
    ckpt = tmp_path / "ckpt"
    shutil.copytree(BUNDLED_DIR / "sd3-reflow", ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["name"] = name
    (ckpt / "config.json").write_text(json.dumps(config))
    return ckpt


COMMANDS = {
    "quality": lambda c, o: ["quality", "-g", c, "--n", "10", "--out", o],
    "detect train": lambda c, o: ["detect", "train", "--train-generators", c, "--n-per-generator", "8", "--steps",
                                  "1", "--batch-size", "4", "--stem-stride", "2", "--cache", f"{o}/cache", "--out",
                                  f"{o}/d"],
    "watermark robustness": lambda c, o: ["watermark", "robustness", "-g", c, "--n", "2", "--pattern", "rings",
                                          "--attacks", "clean", "--no-quality", "--inv-steps", "2", "--fixed-point",
                                          "0", "--no-progress", "--keys", "1", "--out", o],
    "watermark forgery": lambda c, o: ["watermark", "forgery", "-g", c, "--keys", "1", "--known", "1", "--targets",
                                       "1", "--steps", "2", "--inv-steps", "1", "--no-progress", "--out", o],
    "benchmark": lambda c, o: ["benchmark", c, "--n", "20", "--fid-resamples", "0", "--batch-size", "10",
                               "--no-progress", "--out", o],
    "audit score-error": lambda c, o: ["audit", "score-error", "--data", "fashion", "-g", c, "--analyses",
                                       "memorisation", "--n", "4", "--out", o],
}


@pytest.mark.parametrize("relative", [True, False], ids=["dot-dot", "absolute"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_hostile_checkpoint_name_writes_nothing_outside_out(tmp_path, command, relative):
    """Twelve ``..`` climb past the file-system root from any output folder here, so an unchecked name would
    land in /escape-<id>; the absolute variant points into tmp_path/abs. Every file made is under --out."""
    marker = f"escape-{uuid.uuid4().hex[:12]}"
    name = "../" * 12 + f"{marker}/X" if relative else str(tmp_path / "abs" / "X")
    ckpt = _hostile_checkpoint(tmp_path, name)
    out = tmp_path / "out"
    before = _files(tmp_path)
    try:
        result = CliRunner().invoke(main, COMMANDS[command](str(ckpt), str(out)), obj={})
        escaped = Path("/", marker).exists()
    finally:
        shutil.rmtree(Path("/", marker), ignore_errors=True)
    assert result.exit_code == 0, result.output
    created = _files(tmp_path) - before
    outside = sorted(str(p) for p in created if out not in p.parents)
    assert created and not outside and not escaped and not (tmp_path / "abs").exists(), outside
