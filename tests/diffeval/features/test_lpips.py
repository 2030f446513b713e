"""LPIPS with a random alexnet trunk written to a temporary file (no download)."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models import alexnet

from diffeval.features import WeightsNotFoundError, load_lpips, lpips_distance, mean_pairwise_lpips


@pytest.fixture(scope="module")
def trunk_file(tmp_path_factory):
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in alexnet(weights=None).features.state_dict().items()}
    state["classifier.1.bias"] = torch.zeros(3)  # a full torchvision state dict has more; it is ignored
    path = tmp_path_factory.mktemp("lpips") / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def model(trunk_file):
    return load_lpips("alex", weights=trunk_file[0])


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("DIFFEVAL_LPIPS_TRUNK_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def _images(n, size=32, c=3, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def test_trunk_weights_are_loaded(model, trunk_file):
    assert torch.equal(model.net.slice1[0].weight, trunk_file[1]["features.0.weight"])
    assert torch.equal(getattr(model.net.slice5, "10").bias, trunk_file[1]["features.10.bias"])


def test_distance_properties(model):
    x, y = _images(3, seed=0), _images(3, seed=1)
    d = lpips_distance(model, x, y)
    assert d.shape == (3,) and d.dtype == torch.float32 and (d > 0).all()
    assert torch.equal(lpips_distance(model, x, x), torch.zeros(3))
    torch.testing.assert_close(lpips_distance(model, y, x), d)
    gray = _images(2, c=1)
    torch.testing.assert_close(
        lpips_distance(model, gray, x[:2]), lpips_distance(model, gray.expand(-1, 3, -1, -1), x[:2])
    )


def test_range_contract(model):
    x, y = _images(2, size=64, seed=2), _images(2, size=64, seed=3)
    with torch.no_grad():
        expected = model(2 * x - 1, 2 * y - 1).flatten()
        wrong = model(x, y).flatten()  # [0, 1] fed as if [-1, 1]: runs silently, different numbers
    torch.testing.assert_close(lpips_distance(model, x, y), expected)
    assert not torch.allclose(wrong, expected)
    u8 = (x * 255).round().to(torch.uint8)
    torch.testing.assert_close(
        lpips_distance(model, u8, u8.flip(0)), lpips_distance(model, u8.float() / 255, u8.flip(0).float() / 255)
    )


def test_mean_pairwise_lpips_groups(model):
    images = _images(6, seed=4)
    groups = ["a", "a", "a", "b", "b", "c"]
    pairs = [(0, 1), (0, 2), (1, 2), (3, 4)]
    first, second = zip(*pairs)
    expected = lpips_distance(model, images[list(first)], images[list(second)]).double().mean().item()
    assert mean_pairwise_lpips(model, images, groups) == pytest.approx(expected, rel=1e-6)
    capped = mean_pairwise_lpips(model, images, groups, max_pairs_per_group=2, seed=1)
    assert capped == mean_pairwise_lpips(model, images, groups, max_pairs_per_group=2, seed=1)
    assert math.isnan(mean_pairwise_lpips(model, images[:3], ["x", "y", "z"]))
    assert mean_pairwise_lpips(model, images[:2]) == pytest.approx(
        lpips_distance(model, images[:1], images[1:2]).item()
    )


def test_env_var(trunk_file, monkeypatch):
    monkeypatch.setenv("DIFFEVAL_LPIPS_TRUNK_WEIGHTS", str(trunk_file[0]))
    assert torch.equal(load_lpips().net.slice1[0].weight, trunk_file[1]["features.0.weight"])


def test_missing_trunk_raises(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        load_lpips("alex")
    message = str(info.value)
    assert "\n" not in message
    for part in (
        "alexnet-owt-7be5be79.pth",
        "DIFFEVAL_LPIPS_TRUNK_WEIGHTS",
        str(tmp_path / "torch_home" / "hub" / "checkpoints"),
    ):
        assert part in message
    with pytest.raises(WeightsNotFoundError, match="missing.pth does not exist"):
        load_lpips("alex", weights=tmp_path / "missing.pth")


def test_wrong_state_dict_is_refused(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, path)
    with pytest.raises(ValueError, match="lacks features.0.bias"):
        load_lpips("alex", weights=path)
