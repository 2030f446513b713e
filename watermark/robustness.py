"""Robustness evaluation: marked and unmarked images, attacked, inverted, scored; one row per
(generator, pattern, key, attack).

Every pattern is evaluated with ``keys`` independent keys (seeds ``key_seed`` .. ``key_seed + keys - 1``), each
marking ``n`` images of its own: key k marks the images of seed indices k n .. (k + 1) n - 1, so with
``n_unmarked >= keys * n`` every marked image has its unmarked twin (same initial noise before the key, same
condition). The unmarked images are pooled: each key is tested on all of them. Per key and attack the row
also gives the wrong-key false-positive rate (marked images of the pattern's other keys that pass this key's
p-value rule) and the identification accuracy (the key's marked images whose highest-scoring key among the
pattern's keys is their own). With ``identify`` = (m, ...), also ``identification_m``: the share of the key's marked
images whose highest-scoring key among m candidates is their own, the candidates being the key and m - 1 others of
its pattern (the first of the evaluation keys, then decoy keys from the seeds after them: ``identify_candidates``),
so identification among 256 keys needs only K marked sets. ``report.over_keys`` summarises the rows over keys
(median, 10th percentile, worst).

With ``subkeys`` = S > 1 every key is a key set of S members (``watermark.keyset``): each marked image carries one
member, and the test takes the best member.

With ``calibrate`` = N > 0 the test is calibrated (``null.calibrated_test``, ``detect.null_method``) on N unmarked
images of their own seed (``calibrate.CALIBRATION_SEED``), inverted without attack: the detector of a deployment,
which knows the generator but not the attack. ``calibrate_attacks`` (an attack list like ``attacks``) adds the same
images under those attacks as references (``null.NoiseNull.conditions``): the rule then holds under each of them.

Every expensive result (generated images, recovered noise per attack) is cached under
``out/cache`` with a hash of everything it depends on, so an interrupted run resumes where it stopped
and a rerun with other attacks reuses the images.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from tqdm.auto import tqdm

from diffeval.checks import require_ints, require_seeds
from diffeval.generators import Generator, load_generator
from diffeval.generators.autoencoder import load_autoencoder
from diffeval.io import safe_path

from .attacks import CLEAN, Attack, attacks_from
from .cache import TensorCache
from .calibrate import CALIBRATION_SEED, calibration_attacks, calibration_images
from .detect import DetectSettings, recover_noise, test_key
from .embed import EmbedSettings, generate
from .gaussian_shading import ShadingKey
from .keys import WatermarkKey, key_geometry
from .keyset import KeySet, is_shading, make_any_key, region_key
from .null import NoiseNull, estimate_null, key_coordinates

ROBUSTNESS_COLUMNS = [
    "generator", "pattern", "key", "key_fingerprint", "attack", "kind", "strength", "auc", "tpr_at_1pct_fpr",
    "tpr_at_0_1pct_fpr", "accuracy", "tpr_at_alpha", "fpr_at_alpha", "wrong_key_fpr", "identification", "alpha",
    "n_marked", "n_unmarked", "detect_s_per_image",
]
JUDGE_SHAPE = (1, 28, 28)  # the images the bundled judge (the quality features) reads
GAUSSIAN_SHADING = "gaussian-shading"  # the pattern name of Gaussian Shading's rows
SCORE_COLUMNS = ["generator", "pattern", "key", "attack", "marked", "index", "score", "p_value"]


@dataclass
class RobustnessConfig:
    """``keys`` keys per pattern, n marked images per (generator, pattern, key) and n_unmarked unmarked ones per
    generator (default keys * n), generated from seeds ``embed.seed`` (marked and unmarked share their initial
    noise before the key is injected). Key k comes from seed ``key_seed + k`` (evaluation keys, not secrets).
    ``radius`` None / ``channels`` () take each generator's ``keys.default_geometry``. ``regen_generator`` "auto":
    the bundled ddpm for the bundled models, the generator itself otherwise ("self" asks for that anywhere).
    ``quality`` is measured in the bundled judge's feature space, so only for 28 px grayscale generators (skipped
    with a warning otherwise)."""

    generators: tuple[str, ...] = ("sd3",)
    patterns: tuple[str, ...] = ("rings", "rand")
    radius: float | None = None
    inner_radius: float = 0.0
    channels: tuple[int, ...] = ()
    layout: str = "centred"
    n: int = 50
    n_unmarked: int | None = None
    keys: int = 20
    subkeys: int = 1
    calibrate: int = 0
    calibrate_attacks: str = ""
    attacks: str = "paper"
    key_seed: int = 0
    attack_seed: int = 0
    regen_generator: str = "auto"
    regen_steps: int = 20
    identify: tuple[int, ...] = ()
    quality: bool = True
    baselines: tuple[str, ...] = ()
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    detect: DetectSettings = field(default_factory=DetectSettings)
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        require_ints({"n": (self.n, 1), "n_unmarked": (1 if self.n_unmarked is None else self.n_unmarked, 1),
                      "keys": (self.keys, 1), "subkeys": (self.subkeys, 1), "calibrate": (self.calibrate, 0),
                      "regen_steps": (self.regen_steps, 1)})
        if self.calibrate_attacks and not self.calibrate:
            raise ValueError("--calibrate-attacks: give --calibrate N (the calibration images to attack)")
        if self.calibrate and self.detect.test != "cosine":
            raise ValueError(f"--calibrate goes with the cosine test, not {self.detect.test!r}")
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 2 for m in self.identify):
            raise ValueError(f"--identify: numbers of candidate keys >= 2, got {list(self.identify)}")
        require_seeds(key_seed=self.key_seed, last_key_seed=self.key_seed + max(self.keys, *self.identify, 0) - 1)
        if not self.generators or not self.patterns:
            raise ValueError("--generator and --pattern: name at least one of each")


def robustness_columns(cfg: RobustnessConfig) -> list[str]:
    """ROBUSTNESS_COLUMNS with ``identification_m`` for each m of ``cfg.identify`` after ``identification``."""
    at = ROBUSTNESS_COLUMNS.index("identification") + 1
    return [*ROBUSTNESS_COLUMNS[:at], *(f"identification_{m}" for m in cfg.identify), *ROBUSTNESS_COLUMNS[at:]]


def identify_candidates(k: int, m: int) -> list[int]:
    """Indices into [evaluation keys..., decoys...] of the m candidates for key k's images: 0 .. m - 1 when
    k < m, else k and 0 .. m - 2."""
    return list(range(m)) if k < m else [k, *range(m - 1)]


def tpr_at_fpr(neg: np.ndarray, pos: np.ndarray, fpr: float) -> float:
    """Largest TPR of a threshold on the scores (higher = marked) whose empirical FPR is <= ``fpr``.
    With fewer than 1/fpr negatives this is the TPR above the largest negative score."""
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    f, t, _ = roc_curve(y, np.r_[neg, pos])
    ok = f <= fpr + 1e-12
    return float(t[ok].max()) if ok.any() else 0.0


def detection_metrics(neg_score, pos_score, neg_p, pos_p, alpha: float) -> dict:
    """AUC and TPR at fixed FPR of the detection score (larger = marked); accuracy, TPR and FPR of the
    p-value rule p < alpha on the balanced pool of marked and unmarked images."""
    neg, pos = np.asarray(neg_score, float), np.asarray(pos_score, float)
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    tp, fp = float(np.mean(np.asarray(pos_p) < alpha)), float(np.mean(np.asarray(neg_p) < alpha))
    return {
        "auc": float(roc_auc_score(y, np.r_[neg, pos])),
        "tpr_at_1pct_fpr": tpr_at_fpr(neg, pos, 0.01),
        "tpr_at_0_1pct_fpr": tpr_at_fpr(neg, pos, 0.001),
        "accuracy": (tp * len(pos) + (1 - fp) * len(neg)) / (len(pos) + len(neg)),
        "tpr_at_alpha": tp,
        "fpr_at_alpha": fp,
    }


def regen_generator_name(name: str, g: Generator) -> str | None:
    """The regeneration attack's generator for ``g``: None means ``g`` itself ("self", or "auto" for a
    generator that is not bundled); "auto" is the bundled ddpm for the bundled models."""
    if name == "self" or (name == "auto" and g.info.family == "diffusers"):
        return None
    return "ddpm" if name == "auto" else name


@functools.cache
def _bundled_autoencoder():
    return load_autoencoder()


def autoencode_fn(own: Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The vae attack's round trip: ``own``'s autoencoder for a latent model, else the bundled one (28 px grey
    images only; the attack raises ValueError for other pixel models)."""

    def autoencode(images: torch.Tensor) -> torch.Tensor:
        if own.autoencoder is not None:
            return own.decode(own.encode(images))
        if tuple(images.shape[1:]) != JUDGE_SHAPE:
            raise ValueError(f"the vae attack on a pixel model needs {JUDGE_SHAPE} images for the bundled "
                             f"autoencoder, got {tuple(images.shape[1:])}")
        ae = _bundled_autoencoder()
        with torch.no_grad():
            return ae.decode(ae.encode(images)).clamp(0, 1)

    return autoencode


def attack_tools(g: Generator, regen_generator: str = "auto", regen_steps: int = 20) -> dict:
    """The ``regen`` and ``autoencode`` callables an ``Attack`` on ``g``'s images needs."""
    return {"regen": _regen_fn(regen_generator_name(regen_generator, g), regen_steps, g),
            "autoencode": autoencode_fn(g)}


def _regen_fn(name: str | None, steps: int, own: Generator) -> Callable:
    state: dict = {}

    def regen(images: torch.Tensor, t: float, seed: int, first_index: int) -> torch.Tensor:
        if "g" not in state:
            state["g"] = own if name is None else load_generator(name)
        return state["g"].regenerate(images, t, steps=steps, seed=seed, first_index=first_index)

    return regen


def run_robustness(
    cfg: RobustnessConfig, out: str | Path, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """-> (table, scores, quality).

    table: ROBUSTNESS_COLUMNS, one row per (generator, pattern, attack). scores: one row per image
    and attack (SCORE_COLUMNS). quality: per (generator, pattern) the watermark's cost in the bundled
    feature space (``watermark_quality``), empty when cfg.quality is False.
    """
    out = Path(out)
    cache = TensorCache(out / "cache")
    attacks: tuple[Attack, ...] = attacks_from(cfg.attacks)
    rows, scores, quality = [], [], []
    for gname in cfg.generators:
        g = load_generator(gname, trust_pickle=cfg.trust_pickle)
        regen_name = regen_generator_name(cfg.regen_generator, g)
        regen = attack_tools(g, cfg.regen_generator, cfg.regen_steps)["regen"]
        base = {"g": g.fingerprint(), "embed": asdict(cfg.embed)}
        keys = _make_keys(g, cfg)
        decoys = _decoy_keys(g, cfg)
        null = _calibration_null(g, cfg, cache, base, keys, progress) if cfg.calibrate else None
        images = _marked_images(g, cfg, keys, cache, base, progress)
        pooled = {None: images[None], **{p: torch.cat([images[(p, k)] for k in range(cfg.keys)]) for p in keys}}
        _save_samples({None: images[None], **{p: images[(p, 0)] for p in keys}},
                      safe_path(out, f"samples_{g.info.name}.png"))
        if cfg.quality and g.image_shape == JUDGE_SHAPE:
            quality.append(watermark_quality(g.info.name, pooled, cfg))
        elif cfg.quality:
            warnings.warn(f"{g.info.name}: the watermark's FID/KID cost is measured in the bundled judge's features "
                          f"of {JUDGE_SHAPE} images, not {g.image_shape}; skipped", stacklevel=2)
        bar = tqdm(total=len(attacks) * (1 + len(keys) * cfg.keys), desc=f"robustness {g.info.name}",
                   disable=not progress)
        for attack in attacks:
            recovered, timing = _recover(g, attack, images, keys, cfg, cache, base, regen, regen_name, bar)
            for p, pattern_keys in keys.items():
                new_rows, parts = _pattern_rows(g.info.name, p, pattern_keys, attack, recovered, timing, cfg, null,
                                                decoys.get(p, []))
                rows += new_rows
                scores += parts
        bar.close()
        for method in cfg.baselines:
            b_rows, b_scores = _baseline_rows(method, g.info.name, images[None][: cfg.n], attacks, cfg, cache, base)
            rows += b_rows
            scores += b_scores
    table = pd.DataFrame(rows, columns=robustness_columns(cfg))
    score_df = pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(columns=SCORE_COLUMNS)
    return table, score_df, pd.concat(quality, ignore_index=True) if quality else pd.DataFrame()


def _marked_parts(cfg: RobustnessConfig, key: WatermarkKey, k: int) -> dict:
    """What a key's marked images depend on beyond the generator: their count, the key, their first seed index."""
    return {"n": cfg.n, "key": key.fingerprint, **({"first_index": k * cfg.n} if k else {})}


def evaluation_key(g: Generator, pattern: str, seed: int, name: str, radius: float | None = None,
                   channels: tuple[int, ...] = (), inner_radius: float = 0.0, layout: str = "centred",
                   subkeys: int = 1) -> WatermarkKey | ShadingKey | KeySet:
    """A key for ``g``'s noise: Gaussian Shading for the pattern "gaussian-shading", else a Tree-Ring key of
    ``pattern`` at ``radius`` / ``channels`` (None / (): ``keys.default_geometry``); ``subkeys`` > 1: a key set of
    that many members drawn from ``seed`` (``keyset.make_any_key``)."""
    r, ch = key_geometry(g, radius, channels)
    return make_any_key(g.noise_shape, pattern, seed, name, r, ch, inner_radius, layout, subkeys)


def _make_keys(g: Generator, cfg: RobustnessConfig, first: int = 0, count: int | None = None
               ) -> dict[str, list[WatermarkKey | ShadingKey]]:
    """The keys by pattern, ``cfg.keys`` each (key k from seed ``key_seed + k``, ``evaluation_key``).
    ``first`` / ``count``: keys k = first .. first + count - 1 instead."""
    ks = range(first, first + (cfg.keys if count is None else count))
    return {p: [evaluation_key(g, p, cfg.key_seed + k, p if cfg.keys == 1 else f"{p}-{k}", cfg.radius, cfg.channels,
                               cfg.inner_radius, cfg.layout, cfg.subkeys) for k in ks] for p in cfg.patterns}


def _decoy_keys(g: Generator, cfg: RobustnessConfig) -> dict[str, list[WatermarkKey | ShadingKey]]:
    """The decoys of ``identify`` by pattern: keys cfg.keys .. max(identify) - 1 (none when K covers them)."""
    extra = max(cfg.identify, default=0) - cfg.keys
    return _make_keys(g, cfg, cfg.keys, extra) if extra > 0 else {}


def _marked_images(g: Generator, cfg: RobustnessConfig, keys: dict[str, list[WatermarkKey]], cache: TensorCache,
                   base: dict, progress: bool) -> dict:
    """The images (cached): unmarked under None, the marked images of key k of pattern p under (p, k)."""
    n_un = cfg.n_unmarked or cfg.n * cfg.keys
    images = {None: cache.get(f"{g.info.name}-unmarked", {**base, "n": n_un},
                              functools.partial(generate, g, None, n_un, cfg.embed, progress=progress))}
    for p, pattern_keys in keys.items():
        for k, key in enumerate(pattern_keys):
            images[(p, k)] = cache.get(f"{g.info.name}-{p}", {**base, **_marked_parts(cfg, key, k)},
                                       functools.partial(generate, g, key, cfg.n, cfg.embed, first_index=k * cfg.n,
                                                         progress=progress))
    return images


def calibration_noise(g: Generator, cfg: RobustnessConfig, cache: TensorCache, base: dict,
                      progress: bool = False, attack: Attack | None = None, tools: dict | None = None
                      ) -> torch.Tensor:
    """Noise (cfg.calibrate, *noise_shape) recovered from ``cfg.calibrate`` unmarked images of seed
    CALIBRATION_SEED as 8-bit images (``attack`` None: no attack; else the reference images after the first
    ``null.fit_count`` under that attack, seeded CALIBRATION_SEED, with ``tools``), inverted with ``cfg.detect``'s
    settings (images and noise cached)."""
    embed = replace(cfg.embed, seed=CALIBRATION_SEED)
    parts = {**base, "embed": asdict(embed), "n": cfg.calibrate}
    images = cache.get(f"{g.info.name}-calibration", parts,
                       functools.partial(generate, g, None, cfg.calibrate, embed, progress=progress))
    attack = attack or CLEAN
    inv = {**cfg.detect.inversion_parts(), "attack": attack.name, "seed": CALIBRATION_SEED}
    if attack.regenerates:
        inv["regen"] = [cfg.regen_generator, cfg.regen_steps]
    if attack.kind != "none":
        inv["rows"] = "reference"  # calibration_images: the reference images only

    def invert() -> torch.Tensor:
        return recover_noise(g, calibration_images(images, attack, tools), cfg.detect, progress)

    return cache.get(f"{g.info.name}-calibration-noise", {**parts, **inv}, invert)


def _calibration_null(g: Generator, cfg: RobustnessConfig, cache: TensorCache, base: dict, keys: dict,
                      progress: bool) -> NoiseNull | None:
    """The null of the Tree-Ring keys' geometry from ``calibration_noise``; None without Tree-Ring keys."""
    tree_ring = [key for pattern_keys in keys.values() for key in pattern_keys if not is_shading(key)]
    if not tree_ring:
        return None
    first = region_key(tree_ring[0])
    m = int(key_coordinates(torch.zeros(1, *first.shape), first).shape[1])
    if cfg.calibrate < m + 2:
        raise ValueError(f"--calibrate: the key region has {m} coordinates; calibrate on at least {m + 2} images")
    noise = calibration_noise(g, cfg, cache, base, progress)
    tools = attack_tools(g, cfg.regen_generator, cfg.regen_steps)
    attacked = {a.name: calibration_noise(g, cfg, cache, base, progress, a, tools)
                for a in calibration_attacks(cfg.calibrate_attacks)}
    null = estimate_null(noise, first, g.fingerprint(), {"n": cfg.calibrate, "embed_seed": CALIBRATION_SEED,
                                                         "levels": 8, "attacks": list(attacked)}, attacked)
    for key in tree_ring:
        null.check(key)  # every pattern's keys share the geometry
    return null


def _attacked_noise(g: Generator, attack: Attack, images: torch.Tensor, seed: int, regen: Callable,
                    cfg: RobustnessConfig, timing: dict, p: str | None) -> torch.Tensor:
    """Attack the images, invert them to noise, and note the inversion's seconds per image in timing[p]."""
    attacked = attack(images, seed=seed, regen=regen, autoencode=autoencode_fn(g))
    t0 = time.perf_counter()
    noise = recover_noise(g, attacked, cfg.detect)
    timing[p] = (time.perf_counter() - t0) / len(attacked)
    return noise


def _recover(g: Generator, attack: Attack, images: dict, keys: dict, cfg: RobustnessConfig, cache: TensorCache,
             base: dict, regen: Callable, regen_name: str | None, bar) -> tuple[dict, dict]:
    """Noise recovered from the attacked unmarked (None) and marked images, and the inversion time per image
    (NaN where a cached noise has no cached timing)."""
    inv = cfg.detect.inversion_parts()
    att = {"attack": attack.name, "seed": cfg.attack_seed, "regen": [regen_name or "self", cfg.regen_steps]}
    recovered, timing = {}, {}
    for p in [None, *((p, k) for p in keys for k in range(cfg.keys))]:
        mark = {"n": len(images[p]), "key": None} if p is None else _marked_parts(cfg, keys[p[0]][p[1]], p[1])
        parts = {**base, **inv, **att, **mark}
        seed = cfg.attack_seed + (0 if p is None else 1 + p[1])
        make = functools.partial(_attacked_noise, g, attack, images[p], seed, regen, cfg, timing, p)
        stem = f"{g.info.name}-{'unmarked' if p is None else p[0]}"
        recovered[p] = cache.get(f"{stem}-noise", parts, make)
        if p in timing:  # computed just now: keep the timing beside the noise for reruns
            cache.put(f"{stem}-seconds", parts, torch.tensor(timing[p], dtype=torch.float64))
        seconds = cache.load(f"{stem}-seconds", parts)
        timing[p] = float(seconds) if seconds is not None else np.nan
        bar.update(1)
    return recovered, timing


def _identified(scores: np.ndarray, k: int, m: int) -> float:
    """Share of the columns of ``scores`` (candidate keys x images of key k) whose best among key k's m
    candidates is key k."""
    cand = identify_candidates(k, m)
    return float(np.mean(np.asarray(cand)[scores[cand].argmax(0)] == k))


def _pattern_rows(gname: str, p: str, keys: list[WatermarkKey], attack: Attack, recovered: dict, timing: dict,
                  cfg: RobustnessConfig, null: NoiseNull | None = None, decoys: list | None = None
                  ) -> tuple[list[dict], list[pd.DataFrame]]:
    """The table rows of one (pattern, attack), one per key, and their per-image score frames (the unmarked images
    against each key, each key's marked images against it); with ``null``, the calibrated test; ``decoys``: the
    extra candidate keys of ``cfg.identify``."""
    marked = torch.cat([recovered[(p, k)] for k in range(len(keys))])
    owner = np.repeat(np.arange(len(keys)), cfg.n)  # the key that marked each row of ``marked``
    tested = [[t.numpy() for t in test_key(noise, key, cfg.detect, null)]
              for key in keys for noise in (recovered[None], marked)]
    unmarked_tests, marked_tests = tested[0::2], tested[1::2]  # per key: (scores, p-values)
    all_scores = np.stack([s for s, _ in marked_tests])  # (keys, keys * n): every marked image against every key
    if cfg.identify and decoys:
        all_scores = np.concatenate([all_scores, np.stack([test_key(marked, d, cfg.detect, null)[0].numpy()
                                                           for d in decoys])])
    rows, frames = [], []
    for k, key in enumerate(keys):
        (ns, nps), (scores_k, p_k) = unmarked_tests[k], marked_tests[k]
        own = owner == k
        ms, mps = scores_k[own], p_k[own]
        other = ~own
        row = {"generator": gname, "pattern": p, "key": k, "key_fingerprint": key.fingerprint, "attack": attack.name,
               "kind": attack.kind, "strength": attack.strength if attack.kind not in ("none", "combo") else np.nan,
               **detection_metrics(ns, ms, nps, mps, cfg.detect.alpha),
               "wrong_key_fpr": float(np.mean(p_k[other] < cfg.detect.alpha)) if other.any() else np.nan,
               "identification": float(np.mean(all_scores[:len(keys), own].argmax(0) == k)) if len(keys) > 1
               else np.nan,
               **{f"identification_{m}": _identified(all_scores[:, own], k, m) for m in cfg.identify},
               "alpha": cfg.detect.alpha, "n_marked": len(ms), "n_unmarked": len(ns),
               "detect_s_per_image": timing[(p, k)]}
        rows.append(row)
        first = k * cfg.n
        frames += [pd.DataFrame({"generator": gname, "pattern": p, "key": k, "attack": attack.name, "marked": is_marked,
                                 "index": index, "score": score, "p_value": pv})
                   for is_marked, index, score, pv in ((False, np.arange(len(ns)), ns, nps),
                                                       (True, np.arange(first, first + len(ms)), ms, mps))]
    return rows, frames


def _save_samples(images: dict, path: Path, per_row: int = 10) -> None:
    """A grid: the first ``per_row`` unmarked images, then the same seeds marked with each pattern."""
    from diffeval.images import save_grid

    save_grid(torch.cat([x[:per_row] for x in images.values()]), path, nrow=per_row, scale=3)


def watermark_quality(gname: str, images: dict, cfg: RobustnessConfig) -> pd.DataFrame:
    """Per pattern: FID of marked and of unmarked images against the Fashion-MNIST training statistics
    shipped with diffeval (same n, so the same small-sample bias; their difference is the watermark's
    cost; ``fid_unmarked_lo``/``_hi``: the unmarked FID's half-sampling 95% interval, the yardstick for that
    cost) and KID (unbiased, x1000; mean and spread over 100 subsets of half the images) of marked against
    unmarked images, in the bundled judge's features."""
    from diffeval.feature_stats import shipped_stats_path
    from diffeval.features import get_extractor
    from diffeval.metrics import fid_interval, frechet_distance, kernel_inception_distance, load_stats_npz

    ext = get_extractor("fashion")
    mu_ref, sigma_ref = load_stats_npz(shipped_stats_path("fashion-mnist:train", "fashion"))
    feats = {p: ext.features(x).numpy().astype(np.float64) for p, x in images.items()}

    def fid(f: np.ndarray) -> float:
        return frechet_distance(f.mean(0), np.cov(f, rowvar=False), mu_ref, sigma_ref)

    rows = []
    for p in cfg.patterns:
        m = len(feats[p])
        # subsets of half the images (at most 1,000): with all m images every subset is the same set
        # and the spread would be 0
        kid, kid_std = kernel_inception_distance(
            feats[None], feats[p], subsets=100, subset_size=min(1000, max(2, m // 2))
        )
        unmarked = fid(feats[None][:m])
        lo, hi = fid_interval(feats[None][:m], mu_ref, sigma_ref, unmarked)
        rows.append({"generator": gname, "pattern": p, "n": m, "fid_unmarked_vs_train": unmarked,
                     "fid_unmarked_lo": lo, "fid_unmarked_hi": hi, "fid_marked_vs_train": fid(feats[p]),
                     "kid_marked_vs_unmarked_x1000": 1000 * kid, "kid_std_x1000": 1000 * kid_std})
    return pd.DataFrame(rows)


def _baseline_scores(method: str, attack: Attack, images: torch.Tensor, seed: int, bits) -> torch.Tensor:
    """(N, 3): bit accuracy, p-value and decoding seconds per image of the attacked baseline carriers."""
    from .baselines import decode_scores

    attacked = attack(images, seed=seed)
    t0 = time.perf_counter()
    acc, p = decode_scores(method, attacked, bits)
    return torch.tensor(np.c_[acc, p, np.full(len(acc), (time.perf_counter() - t0) / len(acc))])


def _baseline_rows(
    method: str, gname: str, covers: torch.Tensor, attacks, cfg: RobustnessConfig, cache: TensorCache, base: dict
):
    """Rows for an invisible-watermark baseline on the first n unmarked images (``watermark.baselines``)."""
    from .baselines import embed_baseline, message_bits, to_carrier

    bits = message_bits(cfg.key_seed)
    carriers = to_carrier(covers)
    marked = cache.get(f"{gname}-{method}", {**base, "n": len(covers), "bits": bits},
                       functools.partial(embed_baseline, method, carriers, bits))
    rows, scores = [], []
    for attack in attacks:
        if attack.regenerates:
            continue  # the regeneration attack needs the generator's own resolution
        res = {}
        for is_marked, imgs in ((False, carriers), (True, marked)):
            make = functools.partial(_baseline_scores, method, attack, imgs, cfg.attack_seed + int(is_marked), bits)
            res[is_marked] = cache.get(
                f"{gname}-{method}-{'marked' if is_marked else 'unmarked'}-scores",
                {**base, "attack": attack.name, "seed": cfg.attack_seed, "bits": bits, "n": len(covers)},
                make,
            ).numpy()
        neg, pos = res[False], res[True]
        rows.append({"generator": gname, "pattern": method, "key": 0, "key_fingerprint": "", "attack": attack.name,
                     "kind": attack.kind,
                     "strength": attack.strength if attack.kind not in ("none", "combo") else np.nan,
                     **detection_metrics(neg[:, 0], pos[:, 0], neg[:, 1], pos[:, 1], cfg.detect.alpha),
                     "alpha": cfg.detect.alpha, "n_marked": len(pos), "n_unmarked": len(neg),
                     "detect_s_per_image": float(pos[0, 2])})
        for is_marked, r in ((False, neg), (True, pos)):
            scores.append(
                pd.DataFrame(
                    {
                        "generator": gname,
                        "pattern": method,
                        "key": 0,
                        "attack": attack.name,
                        "marked": is_marked,
                        "index": np.arange(len(r)),
                        "score": r[:, 0],
                        "p_value": r[:, 1],
                    }
                )
            )
    return rows, scores
