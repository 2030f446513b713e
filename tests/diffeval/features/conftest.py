"""Feature-extractor tests: offline, and one CPU thread (small convolutions on a shared, busy CPU
run many times faster single-threaded than with threads waiting on each other)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # set before huggingface_hub is first imported


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
