"""The feature-space registry."""

from __future__ import annotations

import pickle

import pytest

from diffeval.features import FEATURE_SPACES, FashionExtractor, WeightsNotFoundError, get_extractor


def test_names():
    assert FEATURE_SPACES == ("fashion", "inception", "clip")
    assert isinstance(get_extractor("fashion"), FashionExtractor)


@pytest.mark.parametrize("name", ["foo", "inception:x", "fashion:y", ""])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError, match="valid: fashion, inception, clip"):
        get_extractor(name)


def test_clip_spec_needs_arch_and_tag():
    with pytest.raises(ValueError, match="clip:ARCH:TAG"):
        get_extractor("clip:ViT-B-32")


def test_weights_error_is_a_picklable_file_not_found_error():
    error = WeightsNotFoundError.missing("X weights", "x.pth", [("cache", "/c/x.pth does not exist")], "/c/x.pth")
    assert isinstance(error, FileNotFoundError)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert (
        str(error)
        == "X weights x.pth not found. Looked at: cache: /c/x.pth does not exist. "
        "Copy the file to /c/x.pth, or pass weights=PATH."
    )
