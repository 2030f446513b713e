"""Shared fixtures (the helpers they use live in tests/helpers.py)."""

from __future__ import annotations

import pytest
import torch

from .helpers import TINY_KINDS

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(params=TINY_KINDS)
def tiny_kind(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory) -> dict:
    """{family: folder} of tiny random-weight diffusers pipelines (tests/pipelines.BUILDERS), built once."""
    pytest.importorskip("diffusers")
    from .pipelines import BUILDERS

    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {name: build(root / name) for name, build in BUILDERS.items()}


@pytest.fixture(scope="session")
def tiny_sd_invertible(tmp_path_factory):
    """A tiny SD pipeline whose VAE inverts its decodings (``cycle_train_vae``): Tree-Ring through images."""
    pytest.importorskip("diffusers")
    from .pipelines import save_tiny_sd

    return save_tiny_sd(tmp_path_factory.mktemp("tiny-sd-vae") / "tiny-sd-vae", vae_steps=200)
