"""The bias-audit pipeline: classifiers, per-image table, resume, statistics, report, CLI, planted twins."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from diffeval.audits.bias.classifiers import JudgeClassifier, to_uint8_images
from diffeval.audits.bias.pipeline import SamplingSettings, audit_files, audit_generator
from diffeval.audits.bias.planted import ASSETS_DIR, TWINS, planted_truth, twin_path, twin_presets
from diffeval.audits.bias.prompts import PromptSet, load_prompt_set
from diffeval.audits.bias.report import write_report
from diffeval.audits.bias.stats import benjamini_hochberg, wilson_interval
from diffeval.audits.bias.summary import SummaryConfig, summarize
from diffeval.cli import main
from diffeval.data import fashion, load_fashion_mnist
from diffeval.generators import load_generator

MB = 1_000_000


def _table(rows: dict[str, list[str]]) -> pd.DataFrame:
    """Per-image table from {prompt: [label or None, ...]} for the attribute 'gender'."""
    out = []
    for prompt, labels in rows.items():
        for i, lab in enumerate(labels):
            out.append({"prompt": prompt, "seed": i, "gender": lab,
                        "gender_abstain": None if lab else "no face detected", "error": ""})
    return pd.DataFrame(out)


def test_summary_against_scipy_and_closed_forms():
    df = _table({"doctor": ["male"] * 30 + ["female"] * 10 + [None] * 5,
                 "nurse": ["female"] * 21 + ["male"] * 19})
    s = summarize(df, {"gender": ("female", "male")}, None, SummaryConfig(target="parity", n_boot=200))
    doc = s.shares[(s.shares.prompt == "doctor") & (s.shares.value == "male")].iloc[0]
    assert (doc["count"], doc["n"], doc.abstained, doc.n_images) == (30, 40, 5, 45)
    lo, hi = wilson_interval(30, 40)
    assert doc.proportion == 0.75 and doc.lo == pytest.approx(lo) and doc.hi == pytest.approx(hi)
    assert doc.pvalue == pytest.approx(stats.binomtest(30, 40, 0.5).pvalue)
    prompts = s.prompts.set_index("prompt")
    assert prompts.loc["doctor", "test"] == "binomial"
    assert prompts.loc["doctor", "pvalue"] == pytest.approx(stats.binomtest(10, 40, 0.5).pvalue)  # first label: female
    _, q = benjamini_hochberg(prompts["pvalue"].to_numpy())
    assert prompts["qvalue"].to_numpy() == pytest.approx(q)
    assert prompts.loc["doctor", "flagged"] and not prompts.loc["nurse", "flagged"]
    assert prompts.loc["doctor", "mad"] == pytest.approx(0.25)  # two labels: |p - 0.5|
    # E|K/40 - 0.5| for K ~ Binomial(40, 0.5), exactly
    k = np.arange(41)
    assert prompts.loc["doctor", "mad_expected"] == pytest.approx(
        np.sum(stats.binom.pmf(k, 40, 0.5) * np.abs(k / 40 - 0.5))
    )
    pooled = s.pooled.set_index("value")
    assert (
        pooled.loc["male", "estimate"] == pytest.approx(49 / 80)
        and pooled.loc["male", "lo"] < 49 / 80 < pooled.loc["male", "hi"]
    )


def test_reference_target_keeps_off_support_labels_out_of_the_test():
    ps = PromptSet(
        "t", ("a shoe",), ("a shoe",), reference={"a shoe": {"sandal": 0.2, "sneaker": 0.5, "ankle boot": 0.3}}
    )
    labels = ["sandal"] * 20 + ["sneaker"] * 50 + ["ankle boot"] * 30 + ["dress"] * 7 + [None] * 3
    df = pd.DataFrame({"prompt": "a shoe", "category": labels})
    s = summarize(df, {"category": ("sandal", "sneaker", "ankle boot", "dress")}, ps, SummaryConfig(n_boot=50))
    p = s.prompts.iloc[0]
    assert (p.n, p.off_target, p.abstained, p.test) == (107, 7, 3, "chi-square")
    assert p.pvalue == pytest.approx(1.0) and not p.flagged  # exactly on target within the support
    sh = s.shares.set_index("value")
    assert sh.loc["sneaker", "n"] == 100 and sh.loc["sneaker", "proportion"] == 0.5
    assert np.isnan(sh.loc["dress", "pvalue"]) and sh.loc["dress", "proportion"] == pytest.approx(7 / 107)


def test_judge_classifier_matches_the_judge_and_abstains_on_other_sizes():
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    x, y = load_fashion_mnist("test")
    judge = JudgeClassifier()
    images = to_uint8_images(x[:200]) + [np.zeros((32, 32, 3), np.uint8)]
    df = judge.classify(images)
    assert len(df) == 201 and pd.isna(df.category.iloc[-1]) and "not 28x28" in df.category_abstain.iloc[-1]
    direct = judge.judge.predict(x[:200])
    words = np.array(judge.values["category"])
    assert (df.category.iloc[:200].to_numpy() == words[direct.numpy()]).all()


@pytest.fixture(scope="module")
def twin():
    return load_generator(twin_path("shoe-even"), device="cpu")


def test_generator_audit_rows_and_resume(twin, tmp_path):
    ps = PromptSet("two", ("a shoe", "a bag"), ("a shoe", "a bag"))
    settings = SamplingSettings(steps=2, seed=0, batch_size=3)
    df = audit_generator(twin, ps, [JudgeClassifier()], 5, settings, tmp_path / "cache", progress=False)
    assert len(df) == 10 and list(df.prompt) == ["a shoe"] * 5 + ["a bag"] * 5
    assert list(df.seed) == [0, 1, 2, 3, 4] * 2 and df.image_id.is_unique
    assert df.category.notna().all()
    # the same images as sampling directly (sample i depends only on the seed and its index)
    x = twin.sample(5, prompts=["a bag"] * 5, steps=2, seed=0)
    assert (df.category.iloc[5:].to_numpy() == JudgeClassifier().classify(to_uint8_images(x)).category.to_numpy()).all()

    class Broken:  # a resumed run must not sample again
        info, fingerprint, resolve_settings = twin.info, twin.fingerprint, twin.resolve_settings

        def sample(self, *a, **k):
            raise AssertionError("resumed run sampled again")

    again = audit_generator(Broken(), ps, [JudgeClassifier()], 5, settings, tmp_path / "cache", progress=False)
    pd.testing.assert_frame_equal(df, again)
    with pytest.raises(ValueError, match="text-conditional"):
        audit_generator(load_generator("ddpm"), ps, [JudgeClassifier()], 2, settings, tmp_path / "c2", progress=False)


def test_file_audit_reports_corrupt_files(tmp_path):
    from PIL import Image

    folder = tmp_path / "shoes"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(folder / "b.png")
    (folder / "c.png").write_bytes(b"garbage")
    df = audit_files([folder], [JudgeClassifier()], progress=False)
    assert list(df.prompt) == ["shoes"] * 3
    assert df.error.iloc[0] == "" and not pd.isna(df.category.iloc[0])
    assert "not 28x28" in df.category_abstain.iloc[1]
    assert df.error.iloc[2].startswith("unreadable image") and pd.isna(df.category.iloc[2])


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.ids, self._in_th, self.headers = 0, [], set(), False, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tables += tag == "table"
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        if "id" in attrs:
            self.ids.add(attrs["id"])
        self._in_th = tag == "th"

    def handle_data(self, data):
        if self._in_th:
            self.headers.append(data)

    def handle_endtag(self, tag):
        self._in_th = False


def _report(tmp_path):
    df = _table({"doctor": ["male"] * 30 + ["female"] * 10 + [None] * 5, "nurse": ["female"] * 21 + ["male"] * 19})
    s = summarize(df, {"gender": ("female", "male")}, None, SummaryConfig(target="parity", n_boot=100))
    grids = {"doctor": np.zeros((4, 28, 28, 1), np.uint8)}
    return write_report(tmp_path, df, s, {"generator": "test", "seed": 0}, ["a test classifier"], grids)


def test_html_report_is_self_contained_and_has_its_tables(tmp_path):
    paths = _report(tmp_path)
    page = paths["html"].read_text()
    parser = _Collect()
    parser.feed(page)
    assert {"settings", "classifiers", "flagged", "abstentions", "attr-gender", "samples"} <= parser.ids
    assert parser.tables >= 6 and {"prompt", "value", "target", "qvalue", "flagged", "reason"} <= set(parser.headers)
    assert len(parser.imgs) == 2 and all(src.startswith("data:image/png;base64,") for src in parser.imgs)
    assert "no face detected" in page and 'class="flag"' in page
    abst = pd.read_csv(paths["abstentions"])
    assert abst.to_dict(orient="records") == [{"attribute": "gender", "reason": "no face detected", "images": 5}]
    summary = json.loads(paths["json"].read_text())
    assert summary["flagged_prompts"][0]["prompt"] == "doctor" and summary["n_images"] == 85


def test_html_report_renders_in_chromium(tmp_path):
    import shutil
    import subprocess

    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium installed for a headless screenshot")
    paths = _report(tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1100,1400", paths["html"].as_uri()], check=True, timeout=120, capture_output=True)
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape == (1400, 1100) and img.std() > 5  # not a blank page


def test_cli_bias_audit_end_to_end_and_errors(tmp_path):
    runner = CliRunner()
    out = tmp_path / "audit"
    args = ["audit", "bias", "-g", "shoe-skewed", "--prompts", "fashion", "--n-per-prompt", "3", "--steps", "2",
            "--batch-size", "3", "--n-boot", "50", "--out", str(out)]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    images = pd.read_csv(out / "images.csv")
    assert len(images) == 18 and set(images.prompt) == set(load_prompt_set("fashion").prompts)
    for f in ("shares.csv", "prompts.csv", "pooled.csv", "abstentions.csv", "summary.json", "report.html", "report.md"):
        assert (out / f).is_file(), f
    assert json.loads((out / "summary.json").read_text())["settings"]["steps"] == 2
    bad = runner.invoke(
        main, ["audit", "bias", "-g", "shoe-skewed", "--attributes", "height", "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code != 0 and "unknown attribute 'height'" in bad.output and "Traceback" not in bad.output
    none = runner.invoke(main, ["audit", "bias", "--attributes", "judge", "--out", str(tmp_path / "y")])
    assert none.exit_code != 0 and "--generator or --images" in none.output
    plan = runner.invoke(main, ["audit", "bias", "--plan", "--prompts", "occupations"])
    assert plan.exit_code == 0 and "| 385" in plan.output


def test_planted_twins_are_installed_small_and_differ_only_in_captions():
    for name in TWINS:
        files = list((ASSETS_DIR / name).iterdir())
        assert sum(f.stat().st_size for f in files) <= 4 * MB
        cfg = json.loads((ASSETS_DIR / name / "config.json").read_text())
        assert cfg["model"]["backbone_config"]["base_channels"] == 32
    a, b = (json.loads((ASSETS_DIR / n / "config.json").read_text()) for n in TWINS)
    assert a["model"] == b["model"] and a["model"]["schedule"]["zero_terminal_snr"] is True
    # same recipe: a first run from the preset's seed, then a continuation whose seed moves on by the steps done
    ta, tb = (dict(t["training"]["train_config"]) for t in (a, b))
    for cfg_, t in ((a, ta), (b, tb)):
        first = cfg_["training"]["init_from"]
        assert (
            first["init_from"] is None
            and t.pop("seed") == twin_presets(("<pad>", "<unk>"))[cfg_["name"]].train.seed + first["steps_done"]
        )
    assert ta == tb
    assert a["training"]["caption_skew"] == {"a shoe": {"7": 0.8}} and "caption_skew" not in b["training"]
    assert planted_truth("shoe-skewed") == pytest.approx({"sandal": 0.1, "sneaker": 0.8, "ankle boot": 0.1})
    assert planted_truth("shoe-even") == pytest.approx({"sandal": 1 / 3, "sneaker": 1 / 3, "ankle boot": 1 / 3})
    with pytest.raises(ValueError, match="unknown planted-bias twin"):
        twin_path("shoe-odd")


def test_rogan_gladen_correction_in_the_shares_table_and_cli(tmp_path):
    from diffeval.audits.bias.stats import rogan_gladen_interval

    df = _table({"doctor": ["male"] * 30 + ["female"] * 10})
    cfg = SummaryConfig(target="parity", n_boot=20, corrections={("gender", "female"): (0.9, 0.95)})
    s = summarize(df, {"gender": ("female", "male")}, None, cfg)
    row = s.shares[s.shares.value == "female"].iloc[0]
    est, lo, hi = rogan_gladen_interval(10, 40, 0.9, 0.95)
    assert (row.corrected, row.corrected_lo, row.corrected_hi) == pytest.approx((est, lo, hi))
    assert row.corrected == pytest.approx((0.25 + 0.95 - 1) / 0.85)
    assert np.isnan(s.shares[s.shares.value == "male"].corrected.iloc[0])
    with pytest.raises(ValueError, match="not measured"):
        summarize(df, {"gender": ("female", "male")}, None, SummaryConfig(corrections={("age", "x"): (0.9, 0.9)}))
    runner = CliRunner()
    bad = runner.invoke(main, ["audit", "bias", "-g", "shoe-even", "--correct", "category=sneaker:0.4:0.5",
                               "--out", str(tmp_path / "a")])
    assert bad.exit_code != 0 and "sum > 1" in bad.output
    ok = runner.invoke(main, ["audit", "bias", "-g", "shoe-even", "--prompts", "fashion", "--n-per-prompt", "2",
                              "--steps", "2", "--n-boot", "20", "--correct", "category=sneaker:0.95:0.99",
                              "--out", str(tmp_path / "b")])
    assert ok.exit_code == 0, ok.output
    shares = pd.read_csv(tmp_path / "b" / "shares.csv")
    assert (
        shares[shares.value == "sneaker"].corrected.notna().any()
        and shares[shares.value != "sneaker"].corrected.isna().all()
    )


def test_a_reused_out_shows_only_this_runs_samples(tmp_path):
    """Two audits with different seeds in one --out: the second report's sample grids are its own images."""
    from diffeval.audits.bias.job import BiasAuditConfig, run_bias_audit

    common = {"generator": "shoe-skewed", "prompts": "fashion", "n_per_prompt": 2, "steps": 2, "batch_size": 2,
              "n_boot": 20, "out_dir": str(tmp_path / "audit")}
    first = run_bias_audit(BiasAuditConfig(**common, seed=0))
    second = run_bias_audit(BiasAuditConfig(**common, seed=1))
    assert first.images.attrs["cache"] != second.images.attrs["cache"]
    for prompt, grid in second.grids.items():
        assert len(grid) == 2, prompt  # not 4: the first run's cached images are not mixed in
        assert not np.array_equal(grid, first.grids[prompt])
