"""The bundled checkpoints and the bundled judge: present, small, loadable, working."""

from __future__ import annotations

import pytest

from diffeval.data import class_prompt, fashion, load_fashion_mnist
from diffeval.generators import BUNDLED_DIR, bundled_names, load_generator
from diffeval.generators.presets import PRESET_NAMES
from diffeval.judge import JUDGE_DIR, load_judge

MB = 1024 * 1024


def test_every_preset_is_bundled_and_small():
    assert bundled_names() == list(PRESET_NAMES)
    sizes = {n: sum(f.stat().st_size for f in (BUNDLED_DIR / n).iterdir()) for n in PRESET_NAMES}
    assert max(sizes.values()) <= 12 * MB, sizes  # a latent checkpoint carries its 1.9 MB autoencoder
    judge = sum(f.stat().st_size for f in JUDGE_DIR.iterdir())
    autoencoder = sum(f.stat().st_size for f in (BUNDLED_DIR / "autoencoder").iterdir())
    assert sum(sizes.values()) + judge + autoencoder <= 60 * MB


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_bundled_generator_samples(name):
    g = load_generator(name, device="cpu")
    assert g.info.name == name and g.info.resolution == 28 and g.info.channels == 1
    kind = g.info.conditioning
    cond = (
        {"labels": [7, 9]}
        if kind == "class"
        else {"prompts": [class_prompt(7), class_prompt(9)]}
        if kind == "text"
        else {}
    )
    x = g.sample(2, steps=2, seed=0, **cond)
    assert x.shape == (2, 1, 28, 28) and 0 <= x.min() and x.max() <= 1 and x.std() > 0.05
    provenance = load_generator(name).model.config  # config round-trips
    assert provenance.image_size == 28


def test_judge_accuracy_matches_its_record():
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    judge = load_judge()
    x, y = load_fashion_mnist("test")
    acc = (judge.predict(x[:2000]) == y[:2000]).float().mean().item()
    assert abs(acc - judge.meta["test_accuracy"]) < 0.02  # the first 2,000 test images vs all 10,000
    assert judge.meta["test_accuracy"] >= 0.88
    assert judge.features(x[:4]).shape == (4, 128)
