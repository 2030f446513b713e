"""The shared utilities: atomic outputs and their modes, the one table writer, digests, model directories,
and the one uint8 rule and image reader every module now uses."""

from __future__ import annotations

import hashlib
import json
import stat

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from diffeval.images import from_uint8, quantize_uint8, read_image, to_uint8
from diffeval.io import (
    ModelDirError,
    atomic_write_text,
    digest,
    read_model_config,
    read_model_weights,
    safe_path,
    save_model_dir,
    slug,
    write_table,
)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_are_0644_and_key_files_0600(tmp_path):
    from diffeval.watermark.keys import make_key, save_key

    assert _mode(atomic_write_text(tmp_path / "a" / "x.txt", "hi")) == 0o644
    paths = write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t", "tab", {"n": 2})
    assert {_mode(p) for p in paths.values()} == {0o644}
    key = save_key(make_key((1, 8, 8), "rings", 2, seed=0), tmp_path / "k.safetensors")
    assert _mode(key) == 0o600
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind


def test_write_table_has_one_layout(tmp_path):
    table = pd.DataFrame({"name": ["a", "b"], "value": [0.5, np.nan]})
    paths = write_table(table, tmp_path, "rows", {"seed": 3}, markdown="# custom")
    doc = json.loads(paths["json"].read_text())
    assert doc == {"settings": {"seed": 3}, "rows": [{"name": "a", "value": 0.5}, {"name": "b", "value": None}]}
    assert paths["md"].read_text() == "# custom\n"
    assert pd.read_csv(paths["csv"]).shape == (2, 2)


def test_digest_is_the_old_cache_key_formula():
    """Caches written before the helper existed keep their keys."""
    obj = {"b": [1, 2], "a": ("x", 0.5), "p": tmp_path_like()}
    old = hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
    assert digest(obj, 16) == old[:16] and digest(obj) == old[:12]


def tmp_path_like():
    from pathlib import Path

    return Path("/a/b")


@pytest.mark.parametrize("text, expected", [("sd3", "sd3"), ("../../etc/x", "_.._etc_x"), ("/abs/path", "_abs_path"),
                                            ("a b\x00c", "a_b_c"), ("..", "_"), ("näme", "n_me")])
def test_slug_is_one_safe_component(text, expected):
    assert slug(text) == expected


def test_model_directories_round_trip_and_refuse_what_they_should(tmp_path):
    save_model_dir(tmp_path / "m", {"format": "diffeval-thing", "version": 2}, {"w": torch.ones(2, 3)})
    assert read_model_config(tmp_path / "m", "diffeval-thing", (1, 2), "thing")["version"] == 2
    assert torch.equal(read_model_weights(tmp_path / "m")["w"], torch.ones(2, 3))
    with pytest.raises(ModelDirError, match="not a diffeval other config"):
        read_model_config(tmp_path / "m", "diffeval-other", (1,), "other")
    with pytest.raises(ModelDirError, match="version 2 is not supported"):
        read_model_config(tmp_path / "m", "diffeval-thing", (1,), "thing")
    (tmp_path / "p").mkdir()
    torch.save({"w": torch.zeros(1)}, tmp_path / "p" / "model.pt")
    with pytest.raises(ModelDirError, match="refused"):
        read_model_weights(tmp_path / "p")
    assert torch.equal(read_model_weights(tmp_path / "p", trust_pickle=True)["w"], torch.zeros(1))


def test_the_uint8_rule_rounds_half_up_everywhere():
    """k + 0.5 levels round up (the PNG rule), which the detector cache and the bias audit now share."""
    ties = (torch.arange(255, dtype=torch.float64) + 0.5) / 255
    assert torch.equal(quantize_uint8(ties).long(), torch.arange(1, 256))
    x = torch.rand(3, 1, 5, 5)
    assert np.array_equal(to_uint8(x)[..., 0], np.floor(x.numpy()[:, 0] * 255 + 0.5).astype(np.uint8))
    assert torch.equal(quantize_uint8(quantize_uint8(x)), quantize_uint8(x))  # uint8 passes through


def test_read_image_modes(tmp_path):
    """Grey, grey palette, RGB, RGBA and colour palette files: their own channel count and the converted array."""
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(gray).convert("P").save(tmp_path / "gp.png")
    rgb = np.stack([gray, 255 - gray, gray // 2], -1)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(np.concatenate([rgb, np.full((8, 8, 1), 7, np.uint8)], -1)).save(tmp_path / "a.png")
    arr, own = read_image(tmp_path / "g.png")
    assert own == 1 and arr.shape == (8, 8, 1) and np.array_equal(arr[..., 0], gray)
    assert read_image(tmp_path / "gp.png")[1] == 1
    arr, own = read_image(tmp_path / "c.png")
    assert own == 3 and np.array_equal(arr, rgb)
    arr, own = read_image(tmp_path / "a.png")
    assert own == 3 and np.array_equal(arr, rgb)  # alpha dropped
    assert read_image(tmp_path / "c.png", channels=1)[0].shape == (8, 8, 1)
    assert torch.allclose(from_uint8(read_image(tmp_path / "g.png")[0])[0], torch.from_numpy(gray / 255).float())


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a\x00b", "x" * 5000, "ünïcødé/名前", "..", "",
                                  "C:\\\\Windows\\\\x", "a/../../b"])
def test_safe_path_stays_in_the_folder(tmp_path, name):
    """Every derived file name is one component inside the folder: no traversal, no absolute paths, no NUL,
    bounded length (long names stay distinct through their digest), any Unicode."""
    path = safe_path(tmp_path, name, suffix=".png")
    assert path.parent == tmp_path and path.name.endswith(".png") and "\x00" not in str(path)
    assert len(path.name) <= 130 and path.resolve().is_relative_to(tmp_path.resolve())
    atomic_write_text(path, "x")  # writable as it is
    assert safe_path(tmp_path, "x" * 5000) != safe_path(tmp_path, "x" * 4999 + "y")


def test_safe_path_refuses_a_symlink_out_of_the_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "grids").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="would leave the output folder"):
        safe_path(tmp_path / "out", "grids")
