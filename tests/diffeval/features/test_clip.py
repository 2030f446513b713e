"""The CLIP extractor on a tiny registered open_clip config with a random checkpoint (no download)."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch

from diffeval.features import ClipExtractor, WeightsNotFoundError, get_extractor

ARCH = "tiny-test-vit"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    (folder / f"{ARCH}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder / f"{ARCH}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(ARCH, pretrained=None)
    path = folder / "tiny.pt"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("DIFFEVAL_CLIP_WEIGHTS", raising=False)


def test_local_checkpoint_features_and_text(checkpoint):
    path, state = checkpoint
    extractor = ClipExtractor(arch=ARCH, pretrained=str(path))
    assert all(torch.equal(extractor.model.state_dict()[k], v) for k, v in state.items())
    assert extractor.dim == 32 and extractor.input_size == 32 and extractor.num_logits is None
    images = torch.rand(3, 1, 20, 24, generator=torch.Generator().manual_seed(0))
    features = extractor.features(images, batch_size=2)
    assert features.shape == (3, 32) and features.dtype == torch.float32
    torch.testing.assert_close(features.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(features, extractor.features(images.expand(-1, 3, -1, -1)))  # gray == RGB copy
    text = extractor.encode_text(["a shoe", "a photo of a bag"])
    assert text.shape == (2, 32)
    torch.testing.assert_close(text.norm(dim=1), torch.ones(2))
    with pytest.raises(NotImplementedError):
        extractor.logits(images)


def test_prepare_normalises_with_the_models_mean_std(checkpoint):
    extractor = ClipExtractor(arch=ARCH, pretrained=str(checkpoint[0]))
    x = extractor.prepare(torch.full((1, 3, 40, 40), 255, dtype=torch.uint8))
    assert x.shape == (1, 3, 32, 32)
    mean, std = open_clip.get_model_preprocess_cfg(extractor.model)["mean"], extractor.std.flatten()
    torch.testing.assert_close(x[0, :, 0, 0], (1 - torch.tensor(mean)) / std)
    assert "bicubic antialias=True" in extractor.describe()["preprocessing"]


def test_weights_argument_env_var_and_registry_spec(checkpoint, monkeypatch):
    path, _ = checkpoint
    assert ClipExtractor(arch=ARCH, pretrained="openai", weights=path).weights_source == str(path)
    monkeypatch.setenv("DIFFEVAL_CLIP_WEIGHTS", str(path))
    assert ClipExtractor(arch=ARCH).weights_source == str(path)
    monkeypatch.delenv("DIFFEVAL_CLIP_WEIGHTS")
    extractor = get_extractor(f"clip:{ARCH}:{path}")
    assert isinstance(extractor, ClipExtractor) and extractor.name == f"clip:{ARCH}:{path}"


def test_uncached_tag_offline_raises_one_line(tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        ClipExtractor("ViT-B-32", "openai", cache_dir=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    for part in ("'openai'", "ViT-B-32", "--clip-weights", "weights=", "DIFFEVAL_CLIP_WEIGHTS", str(tmp_path)):
        assert part in message


def test_missing_files_and_unknown_tags(tmp_path, monkeypatch):
    with pytest.raises(WeightsNotFoundError, match="nothere.pt"):
        ClipExtractor("ViT-B-32", str(tmp_path / "nothere.pt"))
    with pytest.raises(WeightsNotFoundError, match=r"weights= names .*gone.pt"):
        ClipExtractor("ViT-B-32", "openai", weights=tmp_path / "gone.pt")
    monkeypatch.setenv("DIFFEVAL_CLIP_WEIGHTS", str(tmp_path / "env.pt"))
    with pytest.raises(WeightsNotFoundError, match=r"\$DIFFEVAL_CLIP_WEIGHTS names .*env.pt"):
        ClipExtractor("ViT-B-32", "openai")
    monkeypatch.delenv("DIFFEVAL_CLIP_WEIGHTS")
    with pytest.raises(ValueError, match="neither an open_clip tag .* tags: .*openai"):
        ClipExtractor("ViT-B-32", "no-such-tag")
    with pytest.raises(ValueError, match="unknown open_clip architecture"):
        ClipExtractor("no-such-arch", "openai")
