"""``run_benchmark``: rows of (source, sampler, steps, guidance) -> one table of metrics.

Per row, images are made (or read) in chunks of ``batch_size``; each chunk's uint8 images, features,
logits and judged classes are cached as ``<out>/cache/<row>/chunks/NNNNN.npz``, and a finished row as
``<out>/cache/<row>/row.json``. A re-run skips finished rows and finished chunks. Under torchrun,
chunk c is made by rank c mod world size, with the same chunk boundaries, seeds and sample indices
as a single process, so the merged features (and therefore every metric) match a one-process run.
"""

from __future__ import annotations

import json
import math
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from diffeval.generators.devices import pick_device as resolve_device
from diffeval.io import atomic_savez, atomic_write_text, safe_path

from ..data import class_prompt
from ..features import FeatureExtractor, get_extractor
from ..images import quantize_uint8, save_grid
from ..metrics import (
    GaussianStats,
    density_coverage,
    fid_interval,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)
from ..quality import class_conditions, wilson_interval
from ..quality import nfe as count_nfe
from .distributed import World, broadcast_from_main, gather_to_main
from .reference import Reference
from .sources import FixedImages, GeneratorSource, Source
from .spec import BenchmarkConfig, RowSpec, row_key

COLUMNS = [
    "generator", "family", "parameterization", "sampler", "steps", "nfe", "guidance", "n_samples",
    "fid", "fid_lo", "fid_hi", "kid", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage",
    "clip_score", "cmmd", "lpips_diversity", "cond_accuracy", "cond_accuracy_lo", "cond_accuracy_hi",
    "samples_per_s", "peak_mem_mb", "feature_space", "reference", "n_skipped", "source", "seed", "error",
]
"""Columns of the benchmark table.

generator/family/parameterization: the source's name and kind ("real" for data sets, "images" for
folders and archives); sampler, steps, nfe (network evaluations per image, CFG counted twice), guidance;
n_samples: images evaluated; fid with a 95% interval [fid_lo, fid_hi] for the samples' noise (half-sampling);
kid, kid_std (x1, not x1000; 100 subsets of min(1000, n/2) so the subsets differ; std across subsets);
is_mean, is_std (10 splits, over the feature network's classes);
precision, recall (k=3), density, coverage (k=5) against a reference subset of n_samples images;
clip_score (100 max(cos, 0) per sample, mean), cmmd (x1000): NaN unless a CLIP model is set;
lpips_diversity: mean LPIPS between samples of the same class/prompt, NaN unless LPIPS is set;
cond_accuracy [Wilson 95%]: requested class = class judged by the bundled judge (conditional sources);
samples_per_s: images generated per second per process (generation only); peak_mem_mb: peak CUDA
memory during generation, or the process's peak resident memory on CPU; feature_space, reference;
n_skipped: unreadable files in a folder; error: why a row failed (its metrics are then NaN).
"""


def _guarded(out: dict, key: str, names: tuple[str, ...], compute) -> None:
    """``out[names] = compute()``; a metric that cannot be computed at this sample size (a ValueError: IS with
    fewer samples than splits, k-NN with k + 1 or fewer) is NaN with a warning, and the row's other metrics stand."""
    try:
        values = compute()
    except ValueError as e:
        warnings.warn(f"{key}: {', '.join(names)} left empty: {e}", stacklevel=2)
        values = (np.nan,) * len(names)
    out.update(zip(names, values))


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RowRunner:
    """Makes/loads one row's chunks and computes its metrics (metrics on rank 0 only)."""

    def __init__(self, config: BenchmarkConfig, world: World, extractor: FeatureExtractor, judge: FeatureExtractor,
                 reference: Reference, clip=None, lpips_model=None) -> None:
        self.config, self.world, self.extractor, self.judge = config, world, extractor, judge
        self.reference, self.clip, self.lpips = reference, clip, lpips_model
        self._reference_clip: np.ndarray | None = None  # CLIP embeddings of the reference subset, made once
        self._loaded: tuple[str, object] | None = None  # the last generator loaded: grid rows reuse it
        self.device = resolve_device(config.device)
        self.cache = Path(config.out) / "cache"

    # ---- chunks -------------------------------------------------------------------------------
    def _chunk_arrays(
        self, images_u8: torch.Tensor, labels: torch.Tensor | None, gen_s: float
    ) -> dict[str, np.ndarray]:
        feats = self.extractor.features(images_u8)
        judge_feats = feats if self.judge is self.extractor else self.judge.features(images_u8)
        out = {
            "images": images_u8.numpy(),
            "features": feats.numpy().astype(np.float32),
            "judged": self.judge.logits_from_features(judge_feats).argmax(1).numpy(),
            "labels": (labels if labels is not None else torch.full((len(images_u8),), -1)).numpy().astype(np.int64),
            "gen_s": np.array(gen_s),
        }
        if self.extractor.num_logits:
            out["logits"] = self.extractor.logits_from_features(feats).numpy().astype(np.float32)
        if self.clip is not None:
            out["clip"] = self.clip.features(images_u8).numpy().astype(np.float32)
        return out

    def _make_chunk(self, g, resolved: dict, start: int, stop: int) -> dict[str, np.ndarray]:
        want = torch.arange(start, stop) % max(1, g.info.num_classes or 10)
        cond = class_conditions(g, want)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        x = g.sample(stop - start, steps=resolved["steps"], sampler=resolved["sampler"], guidance=resolved["guidance"],
                     seed=self.config.seed, first_index=start, batch_size=stop - start, **cond)
        gen_s = time.perf_counter() - t0
        bad = (~torch.isfinite(x)).flatten(1).any(1)
        if bad.any():
            raise FloatingPointError(
                f"{g.info.name} produced NaN/inf in {int(bad.sum())} of {len(x)} images (indices from {start})"
            )
        arrays = self._chunk_arrays(quantize_uint8(x), want if g.info.conditioning != "none" else None, gen_s)
        arrays["peak_mem_mb"] = np.array(_peak_mem_mb(self.device))
        return arrays

    def _chunks(self, key: str, n: int, make) -> dict[int, dict[str, np.ndarray]]:
        """All chunks of the row on rank 0 (None elsewhere); each rank makes or loads its share."""
        bs = self.config.batch_size
        count = math.ceil(n / bs)
        mine = {}
        todo = [c for c in range(count) if c % self.world.size == self.world.rank]
        folder = self.cache / key / "chunks"
        bar = tqdm(todo, desc=key, disable=not (self.config.progress and self.world.is_main), leave=False)
        for c in bar:
            path = folder / f"{c:05d}.npz"
            if path.is_file():
                with np.load(path) as data:
                    mine[c] = {k: data[k] for k in data.files}
                continue
            arrays = make(c * bs, min(n, (c + 1) * bs))
            atomic_savez(path, arrays)
            mine[c] = arrays
        gathered = gather_to_main(mine, self.world)
        if not self.world.is_main:
            return {}
        merged: dict[int, dict[str, np.ndarray]] = {}
        for part in gathered:
            merged.update(part)
        for c, arrays in merged.items():  # rank 0 keeps every chunk, so it alone can resume
            if not (folder / f"{c:05d}.npz").is_file():
                atomic_savez(folder / f"{c:05d}.npz", arrays)
        return dict(sorted(merged.items()))

    # ---- rows ---------------------------------------------------------------------------------
    def _generator(self, source: GeneratorSource):
        """The source's generator, loaded once for consecutive rows of the same source."""
        if self._loaded is None or self._loaded[0] != source.text:
            self._loaded = None  # let the previous one go before loading the next
            self._loaded = (source.text, source.load(str(self.device), self.config.trust_pickle))
        return self._loaded[1]

    def run(self, row: RowSpec, source: Source) -> dict | None:
        """The row's table entry on rank 0 (None on other ranks); ``source`` is ``row.source`` resolved."""
        if isinstance(source, GeneratorSource):
            g = self._generator(source)
            steps, sampler, guidance, _, _ = g.resolve_settings(row.steps, row.sampler, row.guidance)
            resolved = {"sampler": sampler, "steps": steps, "guidance": guidance}
            info = {"generator": g.info.name, "family": g.info.family, "parameterization": g.info.parameterization,
                    "sampler": sampler, "steps": steps, "guidance": guidance,
                    "nfe": count_nfe(sampler, steps, guidance, g.info.conditioning != "none")}
            key = row_key(row, resolved, source.fingerprint(), self.config)
            n, skipped = self.config.n, []
            done = self._finished(key)
            if done is not None:
                return done
            chunks = self._chunks(key, n, lambda a, b: self._make_chunk(g, resolved, a, b))
        else:
            fixed = self._fixed_images(source)
            kind = "real" if source.kind == "dataset" else "images"
            info = {"generator": row.source, "family": kind, "parameterization": None, "sampler": None, "steps": None,
                    "guidance": None, "nfe": None}
            key = row_key(row, {}, source.fingerprint(), self.config)
            n, skipped = len(fixed.images), fixed.skipped
            done = self._finished(key)
            if done is not None:
                return done
            chunks = self._chunks(key, n, lambda a, b: self._chunk_arrays(
                fixed.images[a:b], fixed.labels[a:b] if fixed.labels is not None else None, 0.0))
        if not self.world.is_main:
            return None
        result = {**info, **self._metrics(chunks, key), "n_samples": n, "n_skipped": len(skipped), "source": row.source,
                  "seed": self.config.seed, "feature_space": self.extractor.name, "reference": self.reference.name,
                  "error": None}
        record = {"metrics_settings": self._metrics_settings(), "row": result}
        atomic_write_text(self.cache / key / "row.json", json.dumps(record, indent=1, default=_json_default))
        return result

    def _metrics_settings(self) -> dict:
        """What the metrics (not the samples) depend on: a finished row is reused only if these match."""
        c = self.config
        return {"reference": self.reference.name, "reference_n": self.reference.n, "kid_subsets": c.kid_subsets,
                "kid_subset_size": c.kid_subset_size, "fid_resamples": c.fid_resamples, "seed": c.seed,
                "grid_images": c.grid_images, "clip": c.clip, "lpips": c.lpips}

    def _finished(self, key: str) -> dict | None:
        """The cached row on rank 0 if it was finished with the same metric settings ({} on other ranks)."""
        done = None
        if self.world.is_main:
            path = self.cache / key / "row.json"
            record = json.loads(path.read_text()) if path.is_file() else {}
            if record.get("metrics_settings") == json.loads(json.dumps(self._metrics_settings())):
                done = record["row"]
        done = broadcast_from_main(done, self.world)
        return done if self.world.is_main else ({} if done is not None else None)

    def _fixed_images(self, source) -> FixedImages:
        fixed = source.read()
        if source.kind == "dataset" and len(fixed.images) > self.config.n:
            # The floor row: n real images, a seeded subset disjoint in seed from the reference subset.
            idx = np.sort(
                np.random.default_rng(self.config.seed + 1).choice(len(fixed.images), self.config.n, replace=False)
            )
            t = torch.from_numpy(idx)
            fixed = FixedImages(fixed.images[t], fixed.labels[t] if fixed.labels is not None else None, fixed.skipped)
        return fixed

    def _metrics(self, chunks: dict[int, dict[str, np.ndarray]], key: str) -> dict:
        cat = {k: np.concatenate([c[k] for c in chunks.values()]) for k in ("features", "judged", "labels", "images")}
        feats, ref = cat["features"].astype(np.float64), self.reference
        stats = GaussianStats(feats.shape[1])
        for c in chunks.values():
            stats.update(c["features"])
        if stats.n <= feats.shape[1]:
            warnings.warn(
                f"{key}: {stats.n} samples for {feats.shape[1]} features: the covariance has rank "
                f"{stats.rank()} < {feats.shape[1]}, so FID is strongly biased; use more samples",
                stacklevel=2,
            )
        out = {"fid": frechet_distance(stats.mean, stats.cov, ref.mu, ref.sigma)}
        out["fid_lo"], out["fid_hi"] = self._fid_interval(feats, out["fid"])
        if ref.subset is not None:
            # Subsets of at most half the samples, so that the subsets differ and kid_std means something;
            # the estimator is unbiased at any subset size, so the mean stays comparable.
            m = min(self.config.kid_subset_size, max(2, len(feats) // 2), max(2, len(ref.subset) // 2))
            _guarded(out, key, ("kid", "kid_std"), lambda: kernel_inception_distance(
                ref.subset, feats, self.config.kid_subsets, m, seed=self.config.seed))
            _guarded(out, key, ("precision", "recall"), lambda: precision_recall(ref.subset, feats, k=3))
            _guarded(out, key, ("density", "coverage"), lambda: density_coverage(ref.subset, feats, k=5))
        if "logits" in next(iter(chunks.values())):
            logits = np.concatenate([c["logits"] for c in chunks.values()])
            _guarded(out, key, ("is_mean", "is_std"), lambda: inception_score(logits))
        labels = cat["labels"]
        if (labels >= 0).all():
            k = int((cat["judged"] == labels).sum())
            out["cond_accuracy"] = k / len(labels)
            out["cond_accuracy_lo"], out["cond_accuracy_hi"] = wilson_interval(k, len(labels))
        images = torch.from_numpy(cat["images"])
        if self.clip is not None:
            out.update(self._clip_metrics(chunks, labels))
        if self.lpips is not None:
            from ..features.lpips_net import mean_pairwise_lpips

            groups = labels.tolist() if (labels >= 0).all() else None
            out["lpips_diversity"] = mean_pairwise_lpips(self.lpips, images, groups, seed=self.config.seed)
        gen_s = sum(float(c["gen_s"]) for c in chunks.values())
        out["samples_per_s"] = len(labels) / gen_s if gen_s > 0 else np.nan
        out["peak_mem_mb"] = max(
            (float(c["peak_mem_mb"]) for c in chunks.values() if "peak_mem_mb" in c), default=np.nan
        )
        grid = safe_path(Path(self.config.out) / "grids", f"{key}.png")
        save_grid(images[: self.config.grid_images].float() / 255, grid)
        return out

    def _fid_interval(self, feats: np.ndarray, fid: float) -> tuple[float, float]:
        """The half-sampling 95% interval of ``metrics.frechet.fid_interval`` against the reference."""
        return fid_interval(feats, self.reference.mu, self.reference.sigma, fid, self.config.fid_resamples,
                            self.config.seed)

    def _clip_metrics(self, chunks, labels: np.ndarray) -> dict:
        from ..metrics import clip_score_mean, cmmd

        emb = np.concatenate([c["clip"] for c in chunks.values()])
        out = {}
        if (labels >= 0).all():
            prompts = [class_prompt(int(c)) for c in labels]
            out["clip_score"] = clip_score_mean(emb, self.clip.encode_text(prompts).numpy())
        if self.reference.images is not None:
            if self._reference_clip is None:
                self._reference_clip = self.clip.features(self.reference.images).numpy()
            out["cmmd"] = cmmd(self._reference_clip, emb)
        return out


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(type(x))


def build_models(config: BenchmarkConfig):
    """(feature extractor, judge extractor, CLIP extractor or None, LPIPS model or None) per the config."""
    device = str(resolve_device(config.device))
    extractor = get_extractor(config.features, weights=config.feature_weights, device=device)
    judge = extractor if extractor.name == "fashion" else get_extractor("fashion", device=device)
    clip = (
        get_extractor(f"clip:{config.clip}" if not config.clip.startswith("clip") else config.clip, device=device)
        if config.clip
        else None
    )
    lpips_model = None
    if config.lpips:
        from ..features.lpips_net import load_lpips

        lpips_model = load_lpips(config.lpips, config.lpips_weights, device=device)
    return extractor, judge, clip, lpips_model
