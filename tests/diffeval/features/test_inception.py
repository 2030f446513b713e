"""The FID Inception extractor on a random checkpoint with the real file's keys (no download)."""

from __future__ import annotations

import pytest
import torch
from pytorch_fid import inception as fid_inception

from diffeval.features import InceptionExtractor, WeightsNotFoundError, get_extractor
from diffeval.features.inception import FID_WEIGHTS_FILE, FID_WEIGHTS_URL, random_state_dict
from diffeval.features.preprocess import quantize, to_rgb


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    state = random_state_dict(seed=0)
    path = tmp_path_factory.mktemp("inception") / FID_WEIGHTS_FILE
    torch.save(state, path)
    return path, state


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("DIFFEVAL_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # an empty hub cache


def test_features_and_logits_match_pytorch_fid(checkpoint, monkeypatch):
    path, state = checkpoint
    extractor = InceptionExtractor(weights=path)
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    features = extractor.features(images)
    logits = extractor.logits(images)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert features.std() > 0.1  # the random network does not collapse

    # pytorch-fid itself, fed the same images as a PNG reader would (k / 255, gray repeated to RGB)
    monkeypatch.setattr(fid_inception, "load_state_dict_from_url", lambda url, **kw: state)
    reference = fid_inception.InceptionV3([3]).eval()
    with torch.no_grad():
        expected = reference(to_rgb(quantize(images)))[0].flatten(1)
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)
    expected_logits = torch.nn.functional.linear(expected, state["fc.weight"], state["fc.bias"])
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(extractor.logits_from_features(features), expected_logits, atol=1e-5, rtol=1e-5)


def test_prepare_contract():
    extractor = InceptionExtractor.__new__(InceptionExtractor)  # prepare needs no weights
    u = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    x = extractor.prepare(u)
    assert x.shape == (2, 3, 299, 299) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, extractor.prepare((u.float() / 255 + 0.3 / 255).clamp(0, 1)))


def test_env_var_and_hub_cache(checkpoint, monkeypatch, tmp_path):
    path, state = checkpoint
    monkeypatch.setenv("DIFFEVAL_INCEPTION_WEIGHTS", str(path))
    extractor = get_extractor("inception")
    assert extractor.weights_source == str(path)
    assert torch.equal(extractor.fc.weight, state["fc.weight"])

    monkeypatch.delenv("DIFFEVAL_INCEPTION_WEIGHTS")
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / FID_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.symlink_to(path)
    assert InceptionExtractor().weights_source == str(cached)


def test_missing_weights_name_the_file_and_every_place(monkeypatch, tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        InceptionExtractor()
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, FileNotFoundError)
    for part in (FID_WEIGHTS_FILE, FID_WEIGHTS_URL, "weights= argument: not given",
                 "$DIFFEVAL_INCEPTION_WEIGHTS: not set", str(tmp_path / "torch_home" / "hub" / "checkpoints")):
        assert part in message

    monkeypatch.setenv("DIFFEVAL_INCEPTION_WEIGHTS", str(tmp_path / "nowhere.pth"))
    with pytest.raises(WeightsNotFoundError, match=r"DIFFEVAL_INCEPTION_WEIGHTS: .*nowhere.pth does not exist"):
        InceptionExtractor()
    with pytest.raises(WeightsNotFoundError, match=r"weights= argument: .*given.pth does not exist"):
        InceptionExtractor(weights=tmp_path / "given.pth")
