"""The bias-audit pipeline: prompts x seeds -> generator (or image files) -> attribute classifiers ->
one row per image -> representation statistics per prompt and attribute.

Per-image table (``images.csv``) columns: image_id, prompt, prompt_index, seed (the sample index
within its prompt; for files, the file's position), source_file (files only; empty for generated
images), error (why a file could not be read; empty otherwise), then every classifier's label
columns (``classifiers.py``) and measurements.

The run is resumable: each chunk of images is classified and written to ``cache/<key>/`` before the
next starts; ``key`` hashes the generator's weights, the sampling settings and the classifiers, so a
changed setting never mixes with old rows. Generated images are kept as ``.npz`` beside them for the
report's sample grids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from diffeval.images import IMAGE_SUFFIXES, read_image
from diffeval.io import atomic_savez, atomic_write_text, digest

from .classifiers import AttributeClassifier, to_uint8_images
from .prompts import PromptSet


@dataclass
class SamplingSettings:
    """Generator settings of an audit (None: the generator's defaults)."""

    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int = 0
    batch_size: int = 50


def _classify(images: list[np.ndarray], classifiers: Sequence[AttributeClassifier]) -> pd.DataFrame:
    frames = [c.classify(images).reset_index(drop=True) for c in classifiers]
    return pd.concat(frames, axis=1) if frames else pd.DataFrame(index=range(len(images)))


def audit_generator(generator, prompts: PromptSet, classifiers: Sequence[AttributeClassifier], n_per_prompt: int,
                    settings: SamplingSettings, cache_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """Generate ``n_per_prompt`` images per prompt, classify them, return the per-image table."""
    if n_per_prompt < 1:
        raise ValueError("n_per_prompt must be >= 1")
    if generator.info.conditioning != "text":
        raise ValueError(f"generator {generator.info.name!r} is {generator.info.conditioning}-conditioned; "
                         "a prompt audit needs a text-conditional generator")
    steps, sampler, guidance, _, _ = generator.resolve_settings(settings.steps, settings.sampler, settings.guidance)
    fingerprint = generator.fingerprint()  # hashes every weight: once per audit
    key = digest((fingerprint, sampler, steps, guidance, settings.seed, [c.describe() for c in classifiers]), 12)
    cache = Path(cache_dir) / key
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache / "settings.json", json.dumps({
        "generator": generator.info.name, "fingerprint": fingerprint, "sampler": sampler, "steps": steps,
        "guidance": guidance, "seed": settings.seed, "classifiers": [c.describe() for c in classifiers]}, indent=1))
    chunk = max(1, settings.batch_size)
    jobs = [(p, start) for p in range(len(prompts)) for start in range(0, n_per_prompt, chunk)]
    frames = []
    bar = tqdm(total=len(prompts) * n_per_prompt, desc=f"audit {generator.info.name}", unit="img", disable=not progress)
    for p, start in jobs:
        n = min(chunk, n_per_prompt - start)
        rows_file = cache / f"rows_p{p:04d}_{start:06d}_{n}.csv"
        if not rows_file.is_file():
            x = generator.sample(n, prompts=[prompts.prompts[p]] * n, steps=steps, sampler=sampler, guidance=guidance,
                                 seed=settings.seed, first_index=start)
            images = to_uint8_images(x)
            atomic_savez(cache / f"images_p{p:04d}_{start:06d}_{n}.npz", {"images": np.stack(images)}, compressed=True)
            df = _classify(images, classifiers)
            df.insert(0, "image_id", [f"p{p:04d}-s{start + i:06d}" for i in range(n)])
            df.insert(1, "prompt", prompts.prompts[p])
            df.insert(2, "prompt_index", p)
            df.insert(3, "seed", np.arange(start, start + n))
            df.insert(4, "source_file", "")
            df.insert(5, "error", "")
            atomic_write_text(rows_file, df.to_csv(index=False))
        frames.append(
            pd.read_csv(rows_file, dtype={"source_file": str, "error": str}).fillna({"source_file": "", "error": ""})
        )
        bar.update(n)
    bar.close()
    out = pd.concat(frames, ignore_index=True)
    out.attrs["cache"] = str(cache)  # this audit's own cache folder (cached_images reads its samples there)
    return out


def cached_images(cache_dir: str | Path, prompt_index: int, limit: int = 16) -> np.ndarray | None:
    """Up to ``limit`` generated images (N, H, W, C) uint8 of one prompt from one audit's cache folder (the
    ``attrs["cache"]`` of ``audit_generator``'s table: other audits in the same --out are not mixed in)."""
    files = sorted(Path(cache_dir).glob(f"images_p{prompt_index:04d}_*.npz"))
    parts, total = [], 0
    for f in files:
        with np.load(f) as z:
            parts.append(z["images"])
        total += len(parts[-1])
        if total >= limit:
            break
    return np.concatenate(parts)[:limit] if parts else None


def list_image_files(paths: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """(prompt, file) pairs: a folder's images get the folder's name as prompt (its subfolders theirs)."""
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                    rel = f.parent.relative_to(path)
                    out.append((path.name if str(rel) == "." else f"{path.name}/{rel}", f))
        elif path.is_file():
            out.append((path.parent.name or "images", path))
        else:
            raise FileNotFoundError(f"no such image file or folder: {path}")
    if not out:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, paths))}")
    return out


def audit_files(paths: Sequence[str | Path], classifiers: Sequence[AttributeClassifier],
                progress: bool = True) -> pd.DataFrame:
    """Classify image files; an unreadable file gets a row with its error and abstains on everything."""
    pairs = list_image_files(paths)
    prompts = list(dict.fromkeys(p for p, _ in pairs))
    rows = []
    for i, (prompt, f) in enumerate(tqdm(pairs, desc="audit files", unit="img", disable=not progress)):
        base = {"image_id": f"f{i:06d}", "prompt": prompt, "prompt_index": prompts.index(prompt), "seed": i,
                "source_file": str(f), "error": ""}
        try:
            img, _ = read_image(f)
        except Exception as error:  # noqa: BLE001 - any decoder failure is reported per file
            reason = f"unreadable image: {type(error).__name__}: {error}".splitlines()[0]
            row = {**base, "error": reason}
            for c in classifiers:
                row.update(c.abstain_row(c.attributes, reason))
            rows.append(row)
            continue
        df = _classify([img], classifiers)
        rows.append({**base, **df.iloc[0].to_dict()})
    return pd.DataFrame(rows)


def attribute_names(classifiers: Sequence[AttributeClassifier]) -> list[str]:
    names = [a for c in classifiers for a in c.attributes]
    dupes = {a for a in names if names.count(a) > 1}
    if dupes:
        raise ValueError(f"two classifiers report the same attribute: {', '.join(sorted(dupes))}")
    return names
