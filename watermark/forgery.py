"""Forgery attacks on inversion-based watermarks: estimate a key from marked images, put it on new ones.

Attacker (Kerckhoffs, open weights as for Stable Diffusion): has the public generator and ``n_known`` images
marked with the victim's key, not the key, and knows the scheme's family but needs neither its mask nor its
secret. Two attacks, each run for every ``n_known``:

- ``latent-average``: invert the marked images with the detector's own inversion, average the recovered latents
  (what the key fixes is common to them, the rest shrinks as 1 / sqrt(N)), and sample new images of other
  classes or prompts from z = mean + sqrt(1 - 1/N) eps, eps the attacker's own N(0, I) noise, so every
  coordinate has unit variance again. At N = 1 this is the reprompting forgery (Mueller et al. 2025: the inverted
  latent of one marked image, sampled with another prompt); for N > 1 the averaging estimate of Yang et al. 2024.
- ``latent-sign``: the same inverted latents, but the forged latent keeps only the sign of their mean and takes
  its magnitudes from the attacker's noise, z = sign(mean) |eps|: every coordinate is N(0, 1) again, and the sign
  pattern, all that Gaussian Shading embeds, is the estimate's (the attack a Gaussian Shading-aware forger makes).
- ``pixel-average`` (no model): the mean of the N marked images minus the mean of N clean images of the
  attacker's, added to each of the attacker's clean images and clipped to [0, 1] (Yang et al.'s image-space
  estimate).

Forged acceptance is the fraction of forged images the victim's detector calls marked (one key, p < alpha, the
detector's settings, no calibrated null). Reference rows per key: ``marked`` (the victim's own marked images: the
detector's power) and ``clean`` (the attacker's clean images: its false-positive rate).

Every image set and recovered noise is cached under ``out/cache`` (``cache.TensorCache``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from diffeval.checks import require_ints, require_seeds
from diffeval.generators import Generator, load_generator

from .cache import TensorCache
from .detect import DetectSettings, recover_noise, test_key
from .embed import EmbedSettings, default_conditions, generate
from .gaussian_shading import ShadingKey
from .keys import WatermarkKey
from .robustness import evaluation_key

FORGERY_ATTACKS = ("latent-average", "latent-sign", "pixel-average")
SCHEMES = ("tree-ring", "gaussian-shading")
ATTACKER_SEED = 104_729  # the attacker's own images and noise (victim: embed seed; calibration: 7,919)
STRICT_ALPHA = 1e-6  # the second decision threshold reported (Gaussian Shading's operating point)
CONDITION_SHIFT = 5  # forged images get the condition of index i + 5: other classes than the known images
FORGERY_COLUMNS = [
    "generator", "scheme", "key", "key_fingerprint", "attack", "n_known", "n_images", "accepted",
    "accepted_strict", "median_p", "mean_score", "alpha",
]


@dataclass
class ForgeryConfig:
    """``keys`` victim keys per scheme (seeds ``key_seed`` ..); for each, the victim marks ``max(known)`` images
    (seed ``embed.seed``, key k: indices k * max(known) ..), and the attacker forges ``targets`` images per attack
    and N in ``known`` (the first N marked images). Tree-Ring keys: ``pattern`` at ``radius`` / ``channels``
    (None / (): ``keys.default_geometry``). ``subkeys`` > 1: every victim key is a key set of that many members
(``watermark.keyset``)."""

    generator: str = "sd3"
    schemes: tuple[str, ...] = SCHEMES
    pattern: str = "rand"
    radius: float | None = None
    inner_radius: float = 0.0
    channels: tuple[int, ...] = ()
    keys: int = 5
    subkeys: int = 1
    known: tuple[int, ...] = (1, 4, 16)
    targets: int = 50
    key_seed: int = 0
    attacks: tuple[str, ...] = FORGERY_ATTACKS
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    detect: DetectSettings = field(default_factory=DetectSettings)
    trust_pickle: bool = False

    def __post_init__(self) -> None:
        if not self.known:
            raise ValueError("--known: give at least one number of known marked images")
        require_ints({"keys": (self.keys, 1), "subkeys": (self.subkeys, 1), "targets": (self.targets, 1),
                      "known": (min(self.known, key=_order), 1)})
        require_seeds(key_seed=self.key_seed, last_key_seed=self.key_seed + self.keys - 1, seed=self.embed.seed)
        if self.embed.seed == ATTACKER_SEED:
            raise ValueError(f"--seed: {ATTACKER_SEED} is the attacker's seed; the victim's must differ")
        bad = [s for s in self.schemes if s not in SCHEMES] + [a for a in self.attacks if a not in FORGERY_ATTACKS]
        if bad or not self.schemes or not self.attacks:
            raise ValueError(f"schemes from {', '.join(SCHEMES)} and attacks from {', '.join(FORGERY_ATTACKS)}, "
                             f"at least one of each; got {', '.join(bad) or 'none'}")


def _order(value: object) -> float:
    """Sort key that puts non-integers first, so ``require_ints`` sees them."""
    return -math.inf if isinstance(value, bool) or not isinstance(value, int) else value


def attacker_noise(shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    """(n, *shape) float32 N(0, I) noise of the attacker; sample i from (seed, i), independent of n."""
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))
                        for i in range(n)])


def _known_mean(known: torch.Tensor) -> torch.Tensor:
    if known.ndim != 4 or len(known) < 1:
        raise ValueError(f"known latents must be (N, C, H, W) with N >= 1, got {tuple(known.shape)}")
    return known.float().mean(0)


def average_forgery_latents(known: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Recovered latents of N known marked images (N, C, H, W) -> n forged initial latents (n, C, H, W) float32:
    mean + sqrt(1 - 1/N) eps, eps = ``attacker_noise``."""
    mean = _known_mean(known)
    return mean + math.sqrt(1.0 - 1.0 / len(known)) * attacker_noise(tuple(mean.shape), n, seed)


def sign_forgery_latents(known: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Recovered latents of N known marked images (N, C, H, W) -> n forged initial latents: sign(mean) |eps|, eps =
    ``attacker_noise`` (a zero mean coordinate keeps eps's own sign)."""
    mean = _known_mean(known)
    eps = attacker_noise(tuple(mean.shape), n, seed)
    return torch.where(mean == 0, eps, mean.sign() * eps.abs())


def pixel_forgery(marked: torch.Tensor, clean_reference: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1]: targets + mean(marked) - mean(clean_reference), clipped to [0, 1] (same shapes)."""
    pattern = marked.float().mean(0) - clean_reference.float().mean(0)
    return (targets.float() + pattern).clamp(0, 1)


def _victim_key(g: Generator, cfg: ForgeryConfig, scheme: str, k: int) -> WatermarkKey | ShadingKey:
    pattern = "gaussian-shading" if scheme == "gaussian-shading" else cfg.pattern
    return evaluation_key(g, pattern, cfg.key_seed + k, f"{scheme}-{k}", cfg.radius, cfg.channels, cfg.inner_radius,
                          subkeys=cfg.subkeys)


def _row(gname: str, scheme: str, key, attack: str, n_known: int, score: torch.Tensor, p: torch.Tensor,
         alpha: float) -> dict:
    p = p.numpy()
    return {"generator": gname, "scheme": scheme, "key": key.label, "key_fingerprint": key.fingerprint,
            "attack": attack, "n_known": n_known, "n_images": len(p), "accepted": float(np.mean(p < alpha)),
            "accepted_strict": float(np.mean(p < STRICT_ALPHA)), "median_p": float(np.median(p)),
            "mean_score": float(score.double().mean()), "alpha": alpha}


def run_forgery(cfg: ForgeryConfig, out: str | Path, progress: bool = True) -> pd.DataFrame:
    """-> FORGERY_COLUMNS, one row per (scheme, key, attack, n_known) plus the ``marked`` and ``clean`` reference
    rows (n_known 0) per key."""
    cache = TensorCache(Path(out) / "cache")
    g = load_generator(cfg.generator, trust_pickle=cfg.trust_pickle)
    base = {"g": g.fingerprint(), "embed": asdict(cfg.embed)}
    inv = cfg.detect.inversion_parts()
    n_max, t = max(cfg.known), cfg.targets
    attacker = replace(cfg.embed, seed=ATTACKER_SEED)
    a_base = {**base, "embed": asdict(attacker)}
    target_cond = default_conditions(g, t, CONDITION_SHIFT)
    victim_keys = {s: [_victim_key(g, cfg, s, k) for k in range(cfg.keys)] for s in cfg.schemes}  # checked first

    def images(name: str, parts: dict, make) -> torch.Tensor:
        return cache.get(f"{g.info.name}-forgery-{name}", parts, make)

    def noise_of(name: str, parts: dict, imgs: torch.Tensor) -> torch.Tensor:
        return cache.get(f"{g.info.name}-forgery-{name}-noise", {**parts, **inv},
                         functools.partial(recover_noise, g, imgs, cfg.detect))

    reference = images("reference", {**a_base, "n": n_max}, functools.partial(generate, g, None, n_max, attacker))
    targets_parts = {**a_base, "n": t, "first_index": n_max}
    targets = images("targets", targets_parts,
                     functools.partial(generate, g, None, t, attacker, first_index=n_max, conditions=target_cond))
    clean_noise = noise_of("targets", targets_parts, targets)
    rows = []
    total = len(cfg.schemes) * cfg.keys * len(cfg.known) * len(cfg.attacks)
    bar = tqdm(total=total, desc=f"forgery {g.info.name}", disable=not progress)
    for scheme in cfg.schemes:
        for k, key in enumerate(victim_keys[scheme]):
            m_parts = {**base, "n": n_max, "key": key.fingerprint, "first_index": k * n_max}
            marked = images(f"{scheme}-marked", m_parts,
                            functools.partial(generate, g, key, n_max, cfg.embed, first_index=k * n_max))
            marked_noise = noise_of(f"{scheme}-marked", m_parts, marked)
            rows.append(_row(g.info.name, scheme, key, "marked", 0, *test_key(marked_noise, key, cfg.detect),
                             cfg.detect.alpha))
            rows.append(_row(g.info.name, scheme, key, "clean", 0, *test_key(clean_noise, key, cfg.detect),
                             cfg.detect.alpha))
            for n in cfg.known:
                for attack in cfg.attacks:
                    parts = {**m_parts, "attack": attack, "n_known": n, "targets": t, "attacker": ATTACKER_SEED}
                    if attack in ("latent-average", "latent-sign"):
                        forge = functools.partial(_latent_forgery, g, marked_noise[:n], t, cfg.embed, target_cond,
                                                  attack)
                    else:
                        forge = functools.partial(pixel_forgery, marked[:n], reference[:n], targets)
                    forged = images(f"{scheme}-forged", parts, forge)
                    score, p = test_key(noise_of(f"{scheme}-forged", parts, forged), key, cfg.detect)
                    rows.append(_row(g.info.name, scheme, key, attack, n, score, p, cfg.detect.alpha))
                    bar.update(1)
    bar.close()
    return pd.DataFrame(rows, columns=FORGERY_COLUMNS)


def generate_from(g: Generator, latents: torch.Tensor, settings: EmbedSettings, conditions: dict) -> torch.Tensor:
    """Images (n, C, H, W) in [0, 1] sampled from the given initial latents (n, *noise_shape) with the embed
    path's deterministic sampler, steps and guidance."""
    return g.sample(len(latents), steps=settings.steps, sampler=settings.sampler or g.ode_sampler,
                    guidance=settings.guidance, eta=0.0, noise=latents, batch_size=settings.batch_size, **conditions)


def _latent_forgery(g: Generator, known: torch.Tensor, n: int, settings: EmbedSettings, conditions: dict,
                    attack: str = "latent-average") -> torch.Tensor:
    make = sign_forgery_latents if attack == "latent-sign" else average_forgery_latents
    return generate_from(g, make(known, n, ATTACKER_SEED), settings, conditions)


def forgery_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (generator, scheme, attack, n_known) over keys: keys, accepted median / min / max (max: the key the
    forgery fools most often) and accepted_strict median / max."""
    g = table.groupby(["generator", "scheme", "attack", "n_known"], sort=False)
    out = g.agg(keys=("key", "nunique"), accepted_median=("accepted", "median"), accepted_min=("accepted", "min"),
                accepted_max=("accepted", "max"), accepted_strict_median=("accepted_strict", "median"),
                accepted_strict_max=("accepted_strict", "max"))
    return out.reset_index()
