"""Shared fixtures (the helpers they use live in tests/helpers.py)."""

from __future__ import annotations

import pytest
import torch

from .helpers import TINY_KINDS

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(params=TINY_KINDS)
def tiny_kind(request) -> str:
    return request.param
