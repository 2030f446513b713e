"""Detector data cache, perturbations and metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from diffeval.detectors.data import MANIFEST, GeneratedSpec, generated_images
from diffeval.detectors.metrics import detection_metrics, expected_calibration_error
from diffeval.detectors.perturb import EVAL_PERTURBATIONS, AugmentConfig, augment, down_up, perturb
from diffeval.generators import load_generator


def test_generated_images_are_cached_with_a_manifest_and_extended(tmp_path):
    g = load_generator("dit")
    spec = GeneratedSpec("dit", steps=2)
    x, entry = generated_images(spec, 4, tmp_path, generator=g)
    assert x.dtype == torch.uint8 and x.shape == (4, 1, 28, 28)
    assert entry["family"] == "dit" and entry["backbone"] == "dit" and entry["steps"] == 2 and entry["n"] == 4
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert [e["file"] for e in manifest] == [entry["file"]]

    class NoSampling:  # a rerun must read the cache
        info, fingerprint, resolve_settings = g.info, g.fingerprint, g.resolve_settings

        def sample(self, *a, **k):
            raise AssertionError("sampled again")

    again, _ = generated_images(spec, 4, tmp_path, generator=NoSampling())
    assert torch.equal(x, again)
    more, entry6 = generated_images(spec, 6, tmp_path, generator=g)  # only 2 new images are made
    assert torch.equal(more[:4], x) and entry6["n"] == 6
    direct = g.sample(2, steps=2, seed=0, first_index=4, labels=torch.tensor([4, 5]))
    assert torch.equal(more[4:], (direct * 255).round().to(torch.uint8))


def test_perturbations_keep_range_and_change_images_as_specified():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28)
    for name in EVAL_PERTURBATIONS:
        y = perturb(x, name)
        assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
        assert torch.equal(y, (y * 255).round() / 255)  # 8-bit levels
    assert (perturb(x, "none") - x).abs().max() <= 0.5 / 255 + 1e-7
    errs = [(perturb(x, f"jpeg{q}") - x).abs().mean().item() for q in (95, 75, 50)]
    assert errs[0] < errs[1] < errs[2]
    assert perturb(x, "blur2").std() < perturb(x, "blur1").std() < x.std()  # blur removes the noise's variance
    flat = torch.full((1, 1, 28, 28), 0.4)
    assert torch.allclose(down_up(flat, 0.5), flat, atol=0.5 / 255 + 1e-7)  # resizing keeps a flat image
    dark = perturb(x, "dark8")
    levels = (perturb(x, "none") * 255).round()
    assert torch.equal(dark == 0, levels < 8) and torch.equal(dark[levels >= 8], perturb(x, "none")[levels >= 8])
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(x, "sharpen")


def test_augmentation_is_seeded_per_image_and_off_when_disabled():
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    cfg = AugmentConfig(blur_p=1.0, jpeg_p=1.0, resize_p=1.0)
    a = augment(x, cfg, seed=3, first_index=0)
    b = torch.cat([augment(x[:2], cfg, 3, 0), augment(x[2:], cfg, 3, 2)])  # independent of batching
    assert torch.equal(a, b) and not torch.equal(a, augment(x, cfg, seed=4, first_index=0))
    assert 0 <= a.min() and a.max() <= 1 and (a - x).abs().mean() > 0.01
    off = augment(x, AugmentConfig(0, 0, 0, 0, 0, 0), 0, 0)
    assert (off - x).abs().max() <= 0.5 / 255 + 1e-7


def test_detection_metrics_against_sklearn_and_a_hand_computed_ece():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.9, 0.8, 0.3, 0.2])
    m = detection_metrics(y, p)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["balanced_accuracy"] == pytest.approx(2 / 3)
    assert m["average_precision"] == pytest.approx(average_precision_score(y, p))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    # 2 bins on [0.5, 1]: confidences .9 .6 .9 .8 .7 .8 -> bin [0.5,0.75): {.6 wrong, .7 wrong}; [0.75,1]: 4 right
    ece = expected_calibration_error(y, p, bins=2)
    assert ece == pytest.approx(2 / 6 * abs(0 - 0.65) + 4 / 6 * abs(1 - 0.85))
    perfect = detection_metrics(np.array([0, 1]), np.array([0.0, 1.0]))
    assert perfect["ece"] == 0 and perfect["auc"] == 1
    assert np.isnan(detection_metrics(np.ones(3), np.full(3, 0.9))["auc"])


def test_generated_spec_parse_picks_sampler_and_steps():
    assert GeneratedSpec.parse("sd3") == GeneratedSpec("sd3")
    assert GeneratedSpec.parse(" dit@ddpm:100 ", seed=3) == GeneratedSpec("dit", "ddpm", 100, None, 3)
    assert GeneratedSpec.parse("sd3@heun") == GeneratedSpec("sd3", "heun")
    for bad in ("@ddim:5", "dit@ddim:many"):
        with pytest.raises(ValueError):
            GeneratedSpec.parse(bad)


def test_dark_level_augmentation_zeroes_below_a_drawn_level_and_leaves_the_other_draws_alone():
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    base = AugmentConfig(blur_p=0.5, jpeg_p=0.5, resize_p=0.5)
    dark = AugmentConfig(blur_p=0.5, jpeg_p=0.5, resize_p=0.5, dark_p=1.0, dark_max=40)
    a, b = augment(x, base, 3, 10), augment(x, dark, 3, 10)
    for i in range(len(x)):  # b is a with every level below some K <= 40 set to 0
        kept = b[i] > 0
        assert torch.equal(b[i][kept], a[i][kept])
        assert not (~kept).any() or (a[i][~kept] * 255).round().max() <= 40
    assert (b == 0).sum() > (a == 0).sum()


def test_train_config_round_trips_and_old_configs_get_defaults():
    from dataclasses import asdict

    from diffeval.detectors.train import DetectorTrainConfig, train_config_from_dict

    cfg = DetectorTrainConfig(["sd1", "dit@ddpm:100"], 10, 5, augment=AugmentConfig(dark_p=0.5))
    assert train_config_from_dict(json.loads(json.dumps(asdict(cfg)))) == cfg
    old = asdict(DetectorTrainConfig())
    del old["augment"]["dark_p"], old["augment"]["dark_max"], old["detector"]["local_block"]
    back = train_config_from_dict(old)
    assert back.augment == AugmentConfig() and back.detector.local_block == 0
