"""A config's cost measured before it is built: parameters and one image's peak activation memory."""

from __future__ import annotations

import json

import pytest
import torch

from diffeval.generators import CheckpointError, bundled_names, load_generator
from diffeval.generators.checkpoints import save_checkpoint
from diffeval.generators.config import ModelConfig
from diffeval.generators.footprint import PeakBytes, footprint

from ..helpers import tiny_generator


def test_peak_bytes_follows_allocation_and_release():
    """Three 1 MiB float32 tensors made, one freed before the third: the peak is 2 MiB, not 3; a view and an
    in-place op add nothing."""
    x = torch.empty(256, 1024, device="meta")
    with PeakBytes() as tracker:
        a = x * 2
        b = a + 1
        a.view(-1).add_(1)
        del a
        c = b * 3
    assert tracker.peak == 2 * 2**20 and tracker.live == 2 * 2**20
    del b, c
    assert tracker.live == 0


def test_the_meta_estimate_matches_the_same_count_on_a_real_cpu_forward():
    """For every bundled model the meta-device count is, to 64 bytes (a scalar the CPU kernels make), the
    live-byte peak of a real CPU forward pass, and the parameter count is the real one."""
    from diffeval.generators.footprint import _meta_inputs
    from diffeval.generators.model import Conditioning

    for name in bundled_names():
        g = load_generator(name)
        n, act = footprint(g.model.config)
        assert n == sum(p.numel() for p in g.model.parameters())
        _, _, meta = _meta_inputs(g.model.config)
        cond = Conditioning(*(None if v is None else torch.ones(v.shape, dtype=v.dtype)
                              for v in (meta.labels, meta.ids, meta.mask)))
        x = torch.randn(1, *g.noise_shape)  # what the network sees: pixels or latents
        with torch.no_grad(), PeakBytes() as tracker:
            g.model(x, torch.rand(1), cond)
        assert abs(tracker.peak - act) <= 64 and 0 < act < 2**20, (name, act, tracker.peak)


def _dit_config(image_size: int) -> ModelConfig:
    config = load_generator("dit").model.config.to_dict()
    config["image_size"] = config["autoencoder"]["image_size"] = image_size  # the latent DiT: latents of side / 2
    return ModelConfig.from_dict(config)


def test_attention_memory_grows_with_the_square_of_the_tokens():
    """The latent DiT (patch 2 on side / 2 latents): 56 px has 196 tokens, 112 px 784; the (L, L) scores of 4
    heads dominate at 112 px."""
    small, large = footprint(_dit_config(56))[1], footprint(_dit_config(112))[1]
    scores = 4 * 784 * 784 * 4  # heads * L * L * float32
    assert large >= scores and large / small > 8


def test_a_config_whose_activations_are_too_large_is_refused_in_seconds(tmp_path, monkeypatch):
    """A DiT checkpoint edited to 4096 px (1 M tokens): 16 TiB of attention scores, refused from the config,
    with the size, the limit and the variable that raises it; raising it lets the check pass."""
    g = tiny_generator("dit")
    save_checkpoint(tmp_path / "c", g.model, "tiny", "dit", g.defaults)
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    config["model"]["image_size"] = 4096
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"GiB of activations, over the limit of 16 GiB; set "
                                              r"DIFFEVAL_MAX_ACTIVATION_GB"):
        load_generator(tmp_path / "c")
    config["model"]["image_size"] = 64
    (tmp_path / "c" / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DIFFEVAL_MAX_ACTIVATION_GB", "1e-6")
    with pytest.raises(CheckpointError, match="over the limit of 1e-06 GiB"):
        load_generator(tmp_path / "c")
