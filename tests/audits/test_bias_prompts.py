"""Bundled prompt sets and prompt files."""

import pytest

from diffeval.audits.bias.prompts import BUNDLED, OCCUPATIONS, load_prompt_set
from diffeval.data.captions import BROAD_WORDS, CLASS_WORDS


def test_bundled_sets_are_templated_with_correct_articles():
    occ = load_prompt_set("occupations")
    assert len(occ) == len(OCCUPATIONS) == 60 and len(set(occ.prompts)) == 60
    assert "a photo of the face of an architect" in occ.prompts
    assert "a photo of the face of a nurse" in occ.prompts
    desc = load_prompt_set("descriptors")
    assert "a photo of the face of an attractive person" in desc.prompts
    assert "a photo of the face of a poor person" in desc.prompts
    assert all(len(load_prompt_set(n)) > 0 for n in BUNDLED)


def test_fashion_reference_is_the_training_caption_share():
    fashion = load_prompt_set("fashion")
    assert set(fashion.prompts) == set(BROAD_WORDS)
    shoe = fashion.reference["a shoe"]
    assert shoe == {"sandal": pytest.approx(1 / 3), "sneaker": pytest.approx(1 / 3), "ankle boot": pytest.approx(1 / 3)}
    for prompt, shares in fashion.reference.items():
        assert sum(shares.values()) == pytest.approx(1.0)
        assert set(shares) == {CLASS_WORDS[c] for c in BROAD_WORDS[prompt]}
    # "a garment": T-shirts also carry "a top", so their list is longer (7 vs 6 entries): 1/7 : 1/6 weights
    garment = fashion.reference["a garment"]
    assert garment["t-shirt"] == pytest.approx(2 / 13) and garment["dress"] == pytest.approx(7 / 39)


def test_prompt_files(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("# my prompts\n\na shoe\n  a bag  \n")
    s = load_prompt_set(f)
    assert s.prompts == ("a shoe", "a bag") and s.name == "mine"
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="no prompts"):
        load_prompt_set(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("a shoe\na shoe\n")
    with pytest.raises(ValueError, match="repeated prompts"):
        load_prompt_set(tmp_path / "dup.txt")
    with pytest.raises(ValueError, match="neither a bundled set"):
        load_prompt_set(tmp_path / "missing.txt")
