"""Attribute classifiers for bias audits: each turns images into one row per image.

Every classifier states what it measures and when it abstains. Its ``classify`` returns a DataFrame
with one row per input image, in input order, and for each attribute ``a`` it names three columns:

- ``a``: the label (str), or missing (None) when the classifier abstained on that image;
- ``a_confidence``: the classifier's probability for the label in [0, 1] (nan on abstention);
- ``a_abstain``: the reason for abstaining (str), or missing when it gave a label.

It may add measurement columns (``face_box``, ``age_years``, ``ita``, ...). Images are RGB or gray
``uint8`` arrays of shape (H, W, 3) or (H, W, 1); sizes may differ within a batch.

Here: the bundled judge (Fashion-MNIST categories) and CLIP zero-shot over any label list.
Faces (detection, perceived gender and age, skin tone) are in ``faces.py``.
"""

from __future__ import annotations

import abc
import os

import numpy as np
import pandas as pd
import torch

from diffeval.data.captions import CLASS_WORDS
from diffeval.images import quantize_uint8


def to_uint8_images(images: torch.Tensor | np.ndarray) -> list[np.ndarray]:
    """(N, C, H, W) float in [0, 1] (C = 1 or 3) -> list of (H, W, C) uint8 arrays."""
    x = torch.as_tensor(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 1 or 3, H, W) images, got {tuple(x.shape)}")
    x = quantize_uint8(x)
    return [img.permute(1, 2, 0).contiguous().numpy() for img in x]


def gray(img: np.ndarray) -> np.ndarray:
    """(H, W, 1 or 3) uint8 -> (H, W) float in [0, 1] (ITU-R 601 luma for RGB)."""
    x = img.astype(np.float64) / 255.0
    if x.shape[-1] == 1:
        return x[..., 0]
    return x @ np.array([0.299, 0.587, 0.114])


def label_columns(attr: str) -> list[str]:
    return [attr, f"{attr}_confidence", f"{attr}_abstain"]


class AttributeClassifier(abc.ABC):
    """Base class. Subclasses set ``name``, ``attributes`` and implement ``describe`` and ``_classify``."""

    name: str = "classifier"
    attributes: tuple[str, ...] = ()
    values: dict[str, tuple[str, ...]] = {}  # every label each attribute can take (parity is 1/len)

    @abc.abstractmethod
    def describe(self) -> str:
        """What it measures, from which weights, and when it abstains (one paragraph for the report)."""

    @abc.abstractmethod
    def _classify(self, images: list[np.ndarray]) -> list[dict]:
        """One dict of columns per image (see the module docstring)."""

    def columns(self) -> list[str]:
        return [c for a in self.attributes for c in label_columns(a)]

    def classify(self, images: list[np.ndarray]) -> pd.DataFrame:
        """One row per image, in order; the label columns of every attribute always present."""
        rows = self._classify(images) if len(images) else []
        if len(rows) != len(images):
            raise RuntimeError(f"{self.name} returned {len(rows)} rows for {len(images)} images")
        df = pd.DataFrame(rows)
        for col in self.columns():
            if col not in df:
                df[col] = np.nan if col.endswith("_confidence") else None
        return df

    @staticmethod
    def abstain_row(attributes: tuple[str, ...], reason: str, **extra) -> dict:
        row = dict(extra)
        for a in attributes:
            row.update({a: None, f"{a}_confidence": np.nan, f"{a}_abstain": reason})
        return row


def softmax_rows(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.float(), dim=1).numpy()


def label_rows(attr: str, labels: list[str], probs: np.ndarray, min_confidence: float) -> list[dict]:
    """Top label per row; abstain when its probability is below ``min_confidence``."""
    top = probs.argmax(1)
    rows = []
    for i, j in enumerate(top):
        conf = float(probs[i, j])
        if conf < min_confidence:
            rows.append({attr: None, f"{attr}_confidence": np.nan,
                         f"{attr}_abstain": f"top probability {conf:.2f} < {min_confidence:.2f} ({labels[j]})"})
        else:
            rows.append({attr: labels[j], f"{attr}_confidence": conf, f"{attr}_abstain": None})
    return rows


class JudgeClassifier(AttributeClassifier):
    """The bundled Fashion-MNIST judge: attribute ``category`` with the ten class words as values.

    Abstains on images that are not 28x28 (it is never resized: a resized photo is not what it was
    trained on) and, when ``min_confidence`` > 0, where its softmax top probability is lower.
    RGB input is converted to gray (ITU-R 601 luma).
    """

    name = "judge"
    attributes = ("category",)
    values = {"category": tuple(CLASS_WORDS)}

    def __init__(self, min_confidence: float = 0.0, judge=None) -> None:
        from diffeval.judge import load_judge

        self.judge = judge or load_judge()
        self.min_confidence = float(min_confidence)

    def describe(self) -> str:
        accuracy = self.judge.meta.get("test_accuracy")
        record = f" (test accuracy {accuracy:.3f})" if accuracy is not None else ""
        return (f"bundled Fashion-MNIST judge{record}: category = one of {', '.join(CLASS_WORDS)}; "
                f"abstains on images that are not 28x28"
                + (f" or whose top probability is below {self.min_confidence:.2f}" if self.min_confidence else ""))

    def _classify(self, images: list[np.ndarray]) -> list[dict]:
        rows: list[dict | None] = [None] * len(images)
        ok = [i for i, img in enumerate(images) if img.shape[:2] == (28, 28)]
        for i in set(range(len(images))) - set(ok):
            rows[i] = self.abstain_row(
                self.attributes, f"image is {images[i].shape[1]}x{images[i].shape[0]}, not 28x28"
            )
        if ok:
            x = torch.tensor(np.stack([gray(images[i]) for i in ok]), dtype=torch.float32)[:, None]
            probs = softmax_rows(self.judge.logits(x))
            for i, row in zip(ok, label_rows("category", CLASS_WORDS, probs, self.min_confidence)):
                rows[i] = row
        return rows  # type: ignore[return-value]


class ClipZeroShot(AttributeClassifier):
    """CLIP zero-shot over any label list: attribute ``attribute`` with ``labels`` as values.

    Text prompts are ``template.format(label)``; probabilities are the softmax of the model's scaled
    cosine similarities (its own logit scale). Abstains where the top probability is below
    ``min_confidence`` (default 0: never). Weights: ``weights`` file, $DIFFEVAL_CLIP_WEIGHTS, or an
    open_clip tag from the local cache (see ``diffeval.features.ClipExtractor``).
    """

    name = "clip"

    def __init__(self, attribute: str, labels: list[str], template: str = "a photo of {}", arch: str = "ViT-B-32",
                 pretrained: str = "openai", weights: str | os.PathLike | None = None, min_confidence: float = 0.0,
                 device: str = "cpu") -> None:
        from diffeval.features import ClipExtractor

        if len(labels) < 2:
            raise ValueError(f"CLIP zero-shot needs at least two labels for {attribute!r}, got {labels}")
        self.attributes = (attribute,)
        self.values = {attribute: tuple(labels)}
        self.labels, self.template, self.min_confidence = list(labels), template, float(min_confidence)
        self.extractor = ClipExtractor(arch, pretrained, weights, device)
        self.text = self.extractor.encode_text([template.format(lab) for lab in self.labels])
        self.scale = float(self.extractor.model.logit_scale.exp().item())

    def describe(self) -> str:
        return (
            f"CLIP zero-shot ({self.extractor.name}, weights {self.extractor.weights_source}): "
            f"{self.attributes[0]} = one of {', '.join(self.labels)} by the prompts '{self.template}'; "
            + (f"abstains below top probability {self.min_confidence:.2f}" if self.min_confidence else "never abstains")
        )

    def _classify(self, images: list[np.ndarray]) -> list[dict]:
        rows = []
        for img in images:  # sizes may differ; the extractor resizes each to the model's input
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
            feat = self.extractor.features(x).float().cpu()
            probs = softmax_rows(self.scale * feat @ self.text.T)
            rows.append(label_rows(self.attributes[0], self.labels, probs, self.min_confidence)[0])
        return rows
