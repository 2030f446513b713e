"""Image attacks on watermarked images, each with one strength parameter.

Every attack maps float (N, C, H, W) images in [0, 1] to the same shape and range, and returns the
values a PNG of the result would hold (rounded to 8-bit levels). Random attacks (crop, jitter,
erasing, noise) draw image i's randomness from (seed, first_index + i), so results do not depend on
batch size. Parameter conventions follow the Tree-Ring paper's code (Wen et al. 2023) and WAVES:

=============  ==============================================  ===========================
attack         strength                                        paper setting
=============  ==============================================  ===========================
rotation       angle in degrees (fixed, nearest, black fill)   75
jpeg           JPEG quality 1-100 (PIL, 4:2:0 off for grey)    25
crop           area scale of a random resized crop (ratio      0.75 (ratio 0.75)
               fixed by ``ratio``), resized back to full size
blur           PIL GaussianBlur radius (its standard deviation, 4 (paper-scaled: 4 at
               in pixels; option reference_size scales it      512 px, 0.22 at 28 px)
               to the image width)
noise          std of added Gaussian noise in [0, 1] units,    0.1
               clipped to [0, 1], never wrapped
brightness     jitter b: factor ~ U[max(0, 1 - b), 1 + b]      6
contrast       jitter b: factor ~ U[max(0, 1 - b), 1 + b]      -
erase          area fraction of one random rectangle set to 0  -
regen          noise level t in (0, 1] of an SDEdit-style     -
               re-generation with a bundled generator
vae            round trips through an autoencoder (encode to   - (WAVES: the SD VAE)
               the posterior mean, decode): regeneration by
               the autoencoder alone, no diffusion
=============  ==============================================  ===========================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from diffeval.images import levels
from diffeval.images.degrade import blur, brightness, contrast, crop, erase, jpeg, noise, rotation

ATTACK_KINDS = ("none", "rotation", "jpeg", "crop", "blur", "noise", "brightness", "contrast", "erase", "regen",
                "vae")


_FUNCS: dict[str, Callable[..., torch.Tensor]] = {
    "rotation": rotation, "jpeg": jpeg, "crop": crop, "blur": blur, "noise": noise,
    "brightness": brightness, "contrast": contrast, "erase": erase,
}


@dataclass(frozen=True)
class Attack:
    """One attack or a chain of them. ``kind`` in ATTACK_KINDS or "combo" (apply ``parts`` in order).

    ``options``: extra settings (crop ``ratio``; regen ``generator``, ``steps``).
    """

    kind: str
    strength: float = 0.0
    options: tuple[tuple[str, object], ...] = ()
    parts: tuple[Attack, ...] = field(default=())

    @property
    def regenerates(self) -> bool:
        """True if this attack or one of its parts is the regeneration attack (it needs a ``regen`` callable)."""
        return self.kind == "regen" or any(p.regenerates for p in self.parts)

    @property
    def name(self) -> str:
        if self.kind == "combo":
            return "+".join(p.name for p in self.parts)
        if self.kind == "none":
            return "clean"
        at = dict(self.options).get("reference_size")
        return f"{self.kind}({self.strength:g}@{at:g}px)" if at else f"{self.kind}({self.strength:g})"

    def __call__(self, x: torch.Tensor, seed: int = 0, first_index: int = 0, regen=None,
                 autoencode=None) -> torch.Tensor:
        """Attack float (N, C, H, W) images in [0, 1]; returns 8-bit levels in [0, 1].

        ``regen``: a callable (images, t, seed, first_index) -> images for the regeneration attack;
        ``autoencode``: a callable images -> images (one encode-decode round trip) for the vae attack.
        """
        if x.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got {tuple(x.shape)}")
        x = x.float().clamp(0, 1)
        if self.kind == "none":
            return levels(x)
        if self.kind == "combo":
            for k, part in enumerate(self.parts):
                x = part(x, seed + 7919 * (k + 1), first_index, regen, autoencode)
            return x
        if self.kind == "vae":
            trips = int(self.strength)
            if trips < 1 or trips != self.strength:
                raise ValueError(f"vae: the strength is a whole number of round trips >= 1, got {self.strength:g}")
            if autoencode is None:
                raise ValueError("the vae attack needs an autoencoder (pass autoencode=...)")
            for _ in range(trips):
                x = levels(autoencode(x))
            return x
        if self.kind == "regen":
            if regen is None:
                raise ValueError("the regen attack needs a generator (pass regen=...)")
            return levels(regen(x, float(self.strength), seed, first_index))
        if self.kind not in _FUNCS:
            raise ValueError(f"unknown attack {self.kind!r}; choose one of {', '.join(ATTACK_KINDS)} or a combo")
        out = _FUNCS[self.kind](x, self.strength, seed=seed, first_index=first_index, **dict(self.options))
        return levels(out)


CLEAN = Attack("none")

PAPER = (
    Attack("rotation", 75),
    Attack("jpeg", 25),
    Attack("crop", 0.75, (("ratio", 0.75),)),
    Attack("blur", 4),
    Attack("noise", 0.1),
    Attack("brightness", 6),
)

PAPER_SCALED = tuple(
    Attack("blur", 4, (("reference_size", 512),)) if a.kind == "blur" else a for a in PAPER
)

SWEEP = (
    *(Attack("rotation", d) for d in (5, 15, 30, 45)),
    *(Attack("jpeg", q) for q in (90, 70, 50, 30, 10)),
    *(Attack("crop", s) for s in (0.9, 0.75, 0.6, 0.5)),
    *(Attack("blur", r) for r in (0.5, 1, 2)),
    *(Attack("noise", s) for s in (0.02, 0.05, 0.1, 0.2)),
    *(Attack("brightness", b) for b in (0.2, 0.5, 1.0)),
    *(Attack("contrast", b) for b in (0.2, 0.5, 1.0)),
    *(Attack("erase", f) for f in (0.05, 0.1, 0.25)),
    *(Attack("regen", t) for t in (0.1, 0.2, 0.4)),
    Attack("vae", 1),
    Attack("combo", parts=(Attack("rotation", 15), Attack("jpeg", 50))),
    Attack("combo", parts=(Attack("crop", 0.75), Attack("blur", 1), Attack("jpeg", 70))),
    Attack("combo", parts=(Attack("brightness", 0.5), Attack("contrast", 0.5), Attack("noise", 0.05))),
)

PRESETS: dict[str, tuple[Attack, ...]] = {
    "clean": (CLEAN,),
    "paper": (CLEAN, *PAPER),
    "paper-scaled": (CLEAN, *PAPER_SCALED),
    "sweep": (CLEAN, *SWEEP),
    "all": (CLEAN, *PAPER, *SWEEP),
}


def parse_attack(text: str) -> Attack:
    """'jpeg:25', 'crop:0.75:ratio=0.75', 'rotation:15+jpeg:50', 'clean' -> Attack."""
    if "+" in text:
        return Attack("combo", parts=tuple(parse_attack(p) for p in text.split("+")))
    bits = text.strip().split(":")
    kind = bits[0]
    if kind in ("clean", "none"):
        return CLEAN
    if kind not in ATTACK_KINDS:
        raise ValueError(f"unknown attack {kind!r}; choose one of {', '.join(ATTACK_KINDS[1:])}")
    if len(bits) < 2:
        raise ValueError(f"attack {kind!r} needs a strength, e.g. {kind}:0.5")
    try:
        strength = float(bits[1])
        options = tuple((k, float(v) if k != "generator" else v) for k, v in (b.split("=", 1) for b in bits[2:]))
    except ValueError:
        raise ValueError(f"cannot read attack {text!r}; write KIND:STRENGTH[:OPTION=VALUE]") from None
    return Attack(kind, strength, options)


def attacks_from(spec: str) -> tuple[Attack, ...]:
    """A preset name (clean, paper, paper-scaled, sweep, all) or a comma-separated list of attacks
    (see parse_attack)."""
    if spec in PRESETS:
        return PRESETS[spec]
    return tuple(parse_attack(s) for s in spec.split(",") if s.strip())
