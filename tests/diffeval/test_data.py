"""Data sets: Fashion-MNIST location and errors, captions, tokenizer, toy sets."""

from __future__ import annotations

import pytest
import torch

from diffeval.data import (
    CLASS_WORDS,
    DataNotFoundError,
    caption_class_shares,
    caption_corpus,
    captions_per_class,
    class_prompt,
    fashion,
    gmm_random,
    gmm_ring,
    load_digits_images,
    load_fashion_mnist,
)
from diffeval.generators.tokenizer import UNK, WordTokenizer


def test_missing_fashion_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIFFEVAL_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(DataNotFoundError) as err:
        load_fashion_mnist("train", data_dir=tmp_path / "given")
    text = str(err.value)
    for place in ("given", "env", "debian", "--download", "dataset-fashion-mnist"):
        assert place in text


def test_damaged_file_rejected(tmp_path, monkeypatch):
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    import gzip
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    for name, _ in fashion.FashionMNIST.resources:
        shutil.copy(fashion.DEBIAN_DIR / name, src / name)
    with gzip.open(src / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\x00" * 100)
    monkeypatch.setenv("DIFFEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "none")
    with pytest.raises(DataNotFoundError, match="SHA-256 mismatch"):
        load_fashion_mnist("test", data_dir=src)


def test_fashion_mnist_from_debian_package():
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.bincount(y).tolist() == [1000] * 10


def test_two_processes_staging_at_once(tmp_path):
    """Two processes that stage the files into an empty cache at the same time both succeed."""
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    import os
    import subprocess
    import sys

    code = "from diffeval.data import load_fashion_mnist; print(load_fashion_mnist('test')[0].shape[0])"
    env = {**os.environ, "DIFFEVAL_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [o.strip() for o, _ in outputs] == ["10000", "10000"]


def test_captions_and_prompts():
    caps = captions_per_class()
    assert len(caps) == 10
    assert "a photo of a sneaker" in caps[7] and "a shoe" in caps[7] and "a shoe" not in caps[1]
    assert class_prompt(9) == "a photo of an ankle boot"
    assert class_prompt(1) == "a photo of a pair of trousers"
    skewed = captions_per_class(skew={"a shoe": {7: 0.8}})
    shares = caption_class_shares(skewed, "a shoe")  # P(class | "a shoe"), not the copy counts
    assert shares == pytest.approx({5: 0.1, 7: 0.8, 9: 0.1}, abs=1e-12)
    assert caption_class_shares(captions_per_class(), "a shoe") == pytest.approx({5: 1 / 3, 7: 1 / 3, 9: 1 / 3})
    garment = caption_class_shares(caps, "a garment")  # classes with "a top" as well have longer lists
    assert garment[0] == pytest.approx(2 / 13) and garment[1] == pytest.approx(7 / 39)
    assert caption_class_shares(captions_per_class(skew={"a shoe": {7: 1.0}}), "a shoe") == {7: 1.0}
    with pytest.raises(ValueError, match="does not cover"):
        captions_per_class(skew={"a shoe": {1: 0.5}})


def test_tokenizer_vocab_and_unknown():
    tok = WordTokenizer.from_texts(caption_corpus(), max_len=12)
    assert all(w in tok.index for word in CLASS_WORDS for w in word.split())
    ids, mask = tok.encode(["a photo of a t-shirt", "", "a purple astronaut"])
    assert ids.shape == (3, 12) and mask[1].sum() == 2  # <bos> <eos> for the empty prompt
    assert (ids[2] == tok.index[UNK]).sum() == 2
    assert tok.unknown_words(["a purple astronaut"]) == ["astronaut", "purple"]
    long_ids, long_mask = tok.encode(["a " * 40])
    assert long_mask.all() and long_ids[0, -1] == tok.index["<eos>"]


def test_toy_sets():
    x, y = load_digits_images(16)
    assert x.shape == (1797, 1, 16, 16) and 0 <= x.min() and x.max() <= 1 and y.max() == 9
    ring = gmm_ring(8)
    pts, comp = ring.sample(4000, seed=1)
    assert pts.shape == (4000, 2) and torch.allclose(
        pts.norm(dim=1).mean(), torch.tensor(2.0, dtype=torch.float64), atol=0.02
    )
    mix = gmm_random(5, 3, seed=2)
    lp = mix.log_prob(pts.new_zeros(3, 5))
    assert lp.shape == (3,) and torch.isfinite(lp).all()
    a, _ = mix.sample(10, seed=5)
    b, _ = mix.sample(10, seed=5)
    assert torch.equal(a, b)
