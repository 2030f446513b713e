"""Forgery attacks (watermark/forgery.py) and the vae attack: the averaging estimate's closed form, the pixel
estimate, the config's refusals, and ``diffeval watermark forgery`` end to end (files, rows, resume from the
cache, one-line errors)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from diffeval.cli import main
from diffeval.generators import load_generator
from diffeval.watermark.attacks import Attack, parse_attack
from diffeval.watermark.forgery import ForgeryConfig, average_forgery_latents, forgery_summary, pixel_forgery
from diffeval.watermark.robustness import autoencode_fn


def _run(args):
    return CliRunner().invoke(main, args, obj={})


def test_average_forgery_latents_closed_form():
    known = torch.randn(1, 3, 14, 14, generator=torch.Generator().manual_seed(0))
    assert torch.equal(average_forgery_latents(known, 3, seed=5), known.expand(3, -1, -1, -1))  # N = 1: reprompting
    four = torch.randn(4, 3, 14, 14, generator=torch.Generator().manual_seed(1))
    a, b = average_forgery_latents(four, 2, seed=5), average_forgery_latents(four, 6, seed=5)
    assert torch.equal(a, b[:2])  # sample i depends on (seed, i), not on n
    assert not torch.equal(a, average_forgery_latents(four, 2, seed=6))
    eps = (a - four.mean(0)) / math.sqrt(1 - 1 / 4)
    assert abs(float(eps.std()) - 1) < 0.1  # the attacker's own N(0, I) noise
    # white known latents: the forged ones are white again (variance 1/N + (1 - 1/N)), the key's part is kept
    key = torch.zeros(3, 14, 14)
    key[0, :2] = 3.0
    marked = torch.randn(16, 3, 14, 14, generator=torch.Generator().manual_seed(2))
    marked[:, 0, :2] = 3.0
    forged = average_forgery_latents(marked, 400, seed=0)
    free = forged[:, 1:]
    assert abs(float(free.var()) - 1) < 0.02 and abs(float(free.mean())) < 0.02
    assert torch.allclose(forged[:, 0, :2].mean(0), key[0, :2], atol=0.1)
    with pytest.raises(ValueError, match="N >= 1"):
        average_forgery_latents(torch.zeros(0, 3, 4, 4), 2, seed=0)


def test_pixel_forgery_adds_the_mean_difference_and_clips():
    clean = torch.full((3, 1, 4, 4), 0.4)
    marked = clean + torch.linspace(-0.1, 0.3, 16).reshape(1, 1, 4, 4)
    targets = torch.tensor([0.0, 0.5, 0.9]).reshape(3, 1, 1, 1).expand(3, 1, 4, 4)
    forged = pixel_forgery(marked, clean, targets)
    assert torch.allclose(forged, (targets + (marked[0] - clean[0])).clamp(0, 1))
    assert float(forged.min()) == 0.0 and float(forged.max()) == 1.0


@pytest.mark.parametrize("bad, match", [
    ({"known": ()}, "at least one"), ({"known": (0, 4)}, "known"), ({"known": (1.5,)}, "known"),
    ({"keys": 0}, "keys"), ({"targets": 0}, "targets"), ({"schemes": ("tree-rings",)}, "tree-rings"),
    ({"attacks": ("mean",)}, "mean"), ({"schemes": ()}, "at least one"),
])
def test_config_refuses(bad, match):
    with pytest.raises(ValueError, match=match):
        ForgeryConfig(**bad)


def test_forgery_end_to_end_resumes_from_its_cache(tmp_path):
    out = tmp_path / "forgery"
    args = ["watermark", "forgery", "-g", "sd3-reflow", "--keys", "2", "--known", "1,2", "--targets", "3",
            "--steps", "4", "--inv-steps", "2", "--no-progress", "--out", str(out)]
    r = _run(args)
    assert r.exit_code == 0, r.output
    for name in ("forgery.csv", "forgery.md", "forgery.json", "forged_acceptance.png"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "forgery.csv")
    # per scheme and key: marked, clean, and 3 attacks x 2 values of N
    assert len(table) == 2 * 2 * (2 + 3 * 2)
    assert set(table["attack"]) == {"marked", "clean", "latent-average", "latent-sign", "pixel-average"}
    ref = table[table["n_known"] == 0]
    assert (ref.loc[ref.attack == "marked", "n_images"] == 2).all()  # max(known) marked images per key
    forged = table[table["n_known"] > 0]
    assert (forged["n_images"] == 3).all() and forged["accepted"].between(0, 1).all()
    assert table.groupby("scheme")["key_fingerprint"].nunique().eq(2).all()
    summary = forgery_summary(table)
    assert len(summary) == 2 * (2 + 3 * 2) and (summary["keys"] == 2).all()
    cached = sorted(p.name for p in (out / "cache").iterdir())
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cache").iterdir()}
    r = _run(args)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "cache").iterdir()) == cached  # nothing regenerated
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in (out / "cache").iterdir())
    pd.testing.assert_frame_equal(pd.read_csv(out / "forgery.csv"), table)


@pytest.mark.parametrize("args, match", [
    (["--known", "1,x"], "--known"), (["--known", "0"], "known"), (["--keys", "0"], "keys"),
    (["--seed", "104729"], "attacker"), (["--radius", "9"], "radius"), (["--alpha", "2"], "alpha"),
])
def test_bad_forgery_options_are_one_line_errors(tmp_path, args, match):
    out = tmp_path / "f"
    r = _run(["watermark", "forgery", "-g", "sd3-reflow", "--keys", "1", "--known", "1", "--targets", "1",
              "--steps", "2", "--inv-steps", "1", "--no-progress", "--out", str(out), *args])
    assert r.exit_code != 0 and match in r.output and "Traceback" not in r.output, r.output
    assert not out.exists() or not any(out.rglob("*.pt")), "a refused run left work behind"


def test_vae_attack_round_trips():
    g = load_generator("sd3")
    x = g.sample(2, steps=2, seed=0, prompts=["a shirt", "a boot"])
    attacked = Attack("vae", 1)(x, autoencode=autoencode_fn(g))
    assert attacked.shape == x.shape and 0 < float((attacked - x).abs().mean()) < 0.05
    assert torch.equal(attacked * 255, (attacked * 255).round())  # 8-bit levels, as every attack returns
    twice = parse_attack("vae:2")(x, autoencode=autoencode_fn(g))
    assert not torch.equal(twice, attacked)
    pixel = load_generator("ddpm")  # a pixel model: the bundled autoencoder
    y = pixel.sample(2, steps=2, seed=0)
    assert Attack("vae", 1)(y, autoencode=autoencode_fn(pixel)).shape == y.shape
    with pytest.raises(ValueError, match="whole number"):
        Attack("vae", 1.5)(x, autoencode=autoencode_fn(g))
    with pytest.raises(ValueError, match="autoencoder"):
        Attack("vae", 1)(x)
    combo = parse_attack("vae:1+jpeg:50")(x, autoencode=autoencode_fn(g))
    assert combo.shape == x.shape


def test_sign_forgery_keeps_the_mean_sign_with_unit_variance():
    from diffeval.watermark.forgery import attacker_noise, sign_forgery_latents

    signs = torch.where(torch.rand(3, 14, 14, generator=torch.Generator().manual_seed(0)) < 0.5, -1.0, 1.0)
    known = signs * (0.2 + torch.rand(4, 3, 14, 14, generator=torch.Generator().manual_seed(1)))
    forged = sign_forgery_latents(known, 300, seed=3)
    assert torch.equal(forged.sign(), signs.expand_as(forged))  # the pattern, all Gaussian Shading embeds
    assert torch.equal(forged.abs(), attacker_noise((3, 14, 14), 300, 3).abs())
    assert abs(float(forged.abs().pow(2).mean()) - 1) < 0.02  # half-normal magnitudes: unit second moment
    known[:, 0, 0, 0] = 0.0  # no sign to copy: the attacker's own
    own = attacker_noise((3, 14, 14), 2, 3)[:, 0, 0, 0]
    assert torch.equal(sign_forgery_latents(known, 2, seed=3)[:, 0, 0, 0], own)
