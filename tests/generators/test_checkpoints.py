"""Checkpoint format: safetensors + JSON, pickles refused, clear errors for bad directories."""

from __future__ import annotations

import json

import pytest
import torch

from diffeval.generators import CheckpointError, load_generator
from diffeval.generators.checkpoints import load_checkpoint, save_checkpoint
from diffeval.generators.config import SamplingDefaults

from ..helpers import tiny_generator


def _save(tmp_path, kind="dit"):
    g = tiny_generator(kind)
    save_checkpoint(tmp_path, g.model, "tiny", kind, g.defaults)
    return g


def test_round_trip_same_weights_and_samples(tmp_path, tiny_kind):
    g = _save(tmp_path, tiny_kind)
    h = load_checkpoint(tmp_path, "cpu")
    for (k, a), b in zip(g.model.state_dict().items(), h.model.state_dict().values()):
        assert torch.equal(a, b), k
    kw = {"labels": 3} if tiny_kind == "dit" else {"prompts": "a bag"} if tiny_kind in ("sd1", "sd2", "sd3") else {}
    assert torch.equal(g.sample(3, seed=1, **kw), h.sample(3, seed=1, **kw))
    assert h.info.family == tiny_kind and h.info.resolution == 8


def test_pickle_refused_unless_trusted(tmp_path):
    g = _save(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(g.model.state_dict(), tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="pickled checkpoints .* refused"):
        load_checkpoint(tmp_path)
    h = load_generator(tmp_path, device="cpu", trust_pickle=True)
    assert torch.equal(h.sample(2, labels=1, seed=0), g.sample(2, labels=1, seed=0))


def test_config_weight_mismatch_is_clear(tmp_path):
    _save(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model"]["backbone_config"]["dim"] = 48
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="weights do not match config.json.*wrong shape"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "config.json").unlink(), "no config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "config.json").write_text('{"format": "other"}'), "not a diffeval generator"),
        (lambda d: (d / "model.safetensors").unlink(), "no model.safetensors"),
        (lambda d: (d / "model.safetensors").write_bytes(b"garbage"), "unreadable safetensors"),
    ],
)
def test_bad_checkpoint_dirs(tmp_path, damage, message):
    _save(tmp_path)
    damage(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path)


def test_unknown_name_lists_bundled(tmp_path):
    with pytest.raises(CheckpointError, match="not a bundled name"):
        load_generator("sd9")


def test_defaults_saved(tmp_path):
    g = tiny_generator("sd3")
    save_checkpoint(tmp_path, g.model, "x", "sd3", SamplingDefaults("heun", 7, 2.5))
    assert load_checkpoint(tmp_path).defaults == SamplingDefaults("heun", 7, 2.5)
