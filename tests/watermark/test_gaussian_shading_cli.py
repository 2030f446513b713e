"""Gaussian Shading through the commands: keygen --scheme, embed and detect with its key file, robustness with both
schemes on the same unmarked images, and the refusals (a calibrated null is Tree-Ring's)."""

from __future__ import annotations

import pandas as pd
import torch
from click.testing import CliRunner

from diffeval.cli import main
from diffeval.generators import load_generator
from diffeval.watermark.embed import EmbedSettings, default_conditions, generate
from diffeval.watermark.gaussian_shading import load_shading_key, make_shading_key, shade
from diffeval.watermark.keyfiles import load_any_key
from diffeval.watermark.keys import WatermarkKey


def _run(args):
    return CliRunner().invoke(main, args, obj={})


def test_generate_draws_the_shaded_latent():
    g = load_generator("sd3-reflow")
    key = make_shading_key(g.noise_shape, seed=2)
    x = generate(g, key, 2, EmbedSettings(seed=4), first_index=3)
    z = shade(key, 2, 4, first_index=3)
    y = g.sample(2, sampler=g.ode_sampler, eta=0.0, noise=z, **default_conditions(g, 2, 3))
    assert torch.allclose(x, y)


def test_keygen_embed_detect_with_a_gaussian_shading_key(tmp_path):
    key_path = tmp_path / "gs.safetensors"
    r = _run(["watermark", "keygen", "-g", "sd3-reflow", "--scheme", "gaussian-shading", "--seed", "3",
              "--out", str(key_path)])
    assert r.exit_code == 0 and "Gaussian Shading key, 147 message bits x 4 copies" in r.output, r.output
    assert load_shading_key(key_path).bits == 147 and not isinstance(load_any_key(key_path), WatermarkKey)
    r = _run(["watermark", "embed", "-g", "sd3-reflow", "--key", str(key_path), "--n", "4", "--unmarked",
              "--out", str(tmp_path / "img")])
    assert r.exit_code == 0, r.output
    r = _run(["watermark", "detect", str(tmp_path / "img"), "-g", "sd3-reflow", "--key", str(key_path),
              "--gs-statistic", "raw", "--inv-steps", "4", "--out", str(tmp_path / "d.csv")])
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(tmp_path / "d.csv", keep_default_na=False)
    marked = ~rows["image"].str.contains("unmarked")
    assert rows.loc[marked, "detected"].all() and not rows.loc[~marked, "detected"].any()
    assert (rows.loc[marked, "score"] > 0.55).all()  # bit accuracy of the signs
    r = _run(["watermark", "calibrate", "-g", "sd3-reflow", "--key", str(key_path), "--n", "20",
              "--out", str(tmp_path / "null.safetensors")])
    assert r.exit_code == 1 and "Gaussian Shading key" in r.output and "Traceback" not in r.output


def test_robustness_compares_both_schemes_on_the_same_unmarked_images(tmp_path):
    r = _run(["watermark", "robustness", "-g", "sd3-reflow", "--scheme", "tree-ring", "--scheme", "gaussian-shading",
              "--pattern", "rand", "--keys", "2", "--n", "2", "--attacks", "clean,jpeg:50", "--inv-steps", "2",
              "--calibrate", "16", "--no-progress", "--out", str(tmp_path / "rob")])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "rob" / "robustness.csv")
    assert sorted(set(table["pattern"])) == ["gaussian-shading", "rand"] and len(table) == 2 * 2 * 2
    assert (table["n_unmarked"] == 4).all()
    quality = pd.read_csv(tmp_path / "rob" / "quality.csv")
    assert set(quality["pattern"]) == {"rand", "gaussian-shading"}
    r = _run(["watermark", "robustness", "-g", "sd3-reflow", "--scheme", "gaussian-shading", "--keys", "1",
              "--n", "2", "--attacks", "clean", "--inv-steps", "2", "--no-quality", "--no-progress",
              "--out", str(tmp_path / "gs")])
    assert r.exit_code == 0, r.output
    assert list(pd.read_csv(tmp_path / "gs" / "robustness.csv")["pattern"]) == ["gaussian-shading"]


def test_robustness_identifies_among_decoy_keys_of_both_schemes(tmp_path):
    r = _run(["watermark", "robustness", "-g", "sd3-reflow", "--scheme", "tree-ring", "--scheme", "gaussian-shading",
              "--pattern", "rand", "--keys", "2", "--n", "2", "--identify", "2,4", "--attacks", "clean",
              "--inv-steps", "2", "--no-quality", "--no-progress", "--out", str(tmp_path / "id")])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "id" / "robustness.csv")
    assert table[["identification_2", "identification_4"]].apply(lambda c: c.between(0, 1)).all().all()
    assert len(table) == 4 and "identification_4_median" in (tmp_path / "id" / "robustness.md").read_text()
    for bad in ("1", "2,x"):
        r = _run(["watermark", "robustness", "-g", "sd3-reflow", "--identify", bad, "--out", str(tmp_path / "b")])
        assert r.exit_code == 1 and "--identify" in r.output and "Traceback" not in r.output, r.output
