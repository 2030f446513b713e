"""The benchmark runner end to end on tiny generators: table, files, resume, sharding equality, bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from diffeval.benchmark import COLUMNS, BenchmarkConfig, GridSpec, run_benchmark
from diffeval.cli import main
from diffeval.generators.checkpoints import save_checkpoint
from diffeval.generators.interface import Generator

from ...helpers import tiny_generator

ROOT = Path(__file__).resolve().parents[3]
METRICS = ["fid", "fid_lo", "fid_hi", "kid", "kid_std", "is_mean", "is_std", "precision", "recall", "density",
           "coverage", "cond_accuracy"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Two tiny checkpoints (class- and text-conditioned) and a 200-image real reference archive."""
    root = tmp_path_factory.mktemp("bench")
    for kind in ("dit", "sd3"):
        g = tiny_generator(kind)
        save_checkpoint(root / kind, g.model, f"tiny-{kind}", kind, g.defaults)
    rng = np.random.default_rng(0)
    ref = (rng.random((200, 8, 8, 1)) * 255).astype(np.uint8)
    np.savez(root / "ref.npz", images=ref, labels=rng.integers(0, 10, 200))
    return root


def small_config(ws: Path, out: Path, sources: list[str], **kw) -> BenchmarkConfig:
    settings = dict(out=str(out), n=24, batch_size=8, reference=str(ws / "ref.npz"), kid_subsets=10,
                    kid_subset_size=12, fid_resamples=20, grid_images=16, device="cpu", progress=False)
    settings.update(kw)
    return BenchmarkConfig([GridSpec(sources, steps=[2], guidance=[1.0])], **settings)


def test_table_files_and_columns(workspace, tmp_path):
    table = run_benchmark(
        small_config(workspace, tmp_path, [str(workspace / "dit"), str(workspace / "sd3"), str(workspace / "ref.npz")])
    )
    assert list(table.columns) == COLUMNS and len(table) == 3
    assert table["error"].isna().all()
    gen = table.iloc[0]
    assert gen["generator"] == "tiny-dit" and gen["sampler"] == "ddim" and gen["steps"] == 2 and gen["nfe"] == 2
    assert gen["n_samples"] == 24 and gen["feature_space"] == "fashion"
    assert np.isfinite(table.loc[:1, METRICS].to_numpy(float)).all()
    assert gen["fid_lo"] < gen["fid"] < gen["fid_hi"]
    assert 0 <= gen["precision"] <= 1 and 0 <= gen["coverage"] <= 1 and 1 <= gen["is_mean"] <= 10
    assert np.isnan(gen["clip_score"]) and np.isnan(gen["lpips_diversity"])  # not asked for
    real = table.iloc[2]  # the reference archive against itself: the floor
    assert real["family"] == "images" and real["fid"] < gen["fid"]
    for name in ("benchmark.csv", "benchmark.md", "benchmark.json", "fid_vs_nfe.png"):
        assert (tmp_path / name).is_file()
    assert len(list((tmp_path / "grids").glob("*.png"))) == 3
    saved = pd.read_csv(tmp_path / "benchmark.csv")
    np.testing.assert_allclose(saved["fid"], table["fid"], rtol=1e-12)
    assert json.loads((tmp_path / "benchmark.json").read_text())["settings"]["n"] == 24


def test_rerun_skips_finished_rows(workspace, tmp_path, monkeypatch):
    config = small_config(workspace, tmp_path, [str(workspace / "dit")])
    first = run_benchmark(config)

    def refuse(*a, **k):
        raise AssertionError("a finished row was generated again")

    monkeypatch.setattr(Generator, "sample", refuse)
    again = run_benchmark(config)
    pd.testing.assert_frame_equal(first, again)


def test_interrupted_row_resumes_from_cached_chunks(workspace, tmp_path, monkeypatch):
    reference = run_benchmark(small_config(workspace, tmp_path / "clean", [str(workspace / "sd3")]))
    calls = {"n": 0}
    real_sample = Generator.sample

    def flaky(self, *a, **k):  # the third chunk dies, as a killed process would
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_sample(self, *a, **k)

    monkeypatch.setattr(Generator, "sample", flaky)
    config = small_config(workspace, tmp_path / "run", [str(workspace / "sd3")])
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config)
    assert len(list((tmp_path / "run" / "cache").glob("*/chunks/*.npz"))) == 2
    calls["n"] = 10
    resumed = run_benchmark(config)
    assert calls["n"] == 11  # only the missing chunk was made
    np.testing.assert_allclose(resumed[METRICS].to_numpy(float), reference[METRICS].to_numpy(float), rtol=1e-12)


def test_metrics_do_not_depend_on_chunk_size(workspace, tmp_path):
    a = run_benchmark(small_config(workspace, tmp_path / "a", [str(workspace / "dit")], batch_size=8))
    b = run_benchmark(small_config(workspace, tmp_path / "b", [str(workspace / "dit")], batch_size=24))
    np.testing.assert_allclose(a[METRICS].to_numpy(float), b[METRICS].to_numpy(float), rtol=1e-5)


def test_nan_generator_is_an_error_row_and_others_still_run(workspace, tmp_path, monkeypatch):
    real_sample = Generator.sample

    def nan_for_dit(self, *a, **k):
        x = real_sample(self, *a, **k)
        if self.info.name == "tiny-dit":
            x[0, 0, 0, 0] = float("nan")
        return x

    monkeypatch.setattr(Generator, "sample", nan_for_dit)
    with pytest.warns(UserWarning, match="NaN"):
        table = run_benchmark(small_config(workspace, tmp_path, [str(workspace / "dit"), str(workspace / "sd3")]))
    assert "NaN/inf" in table.loc[0, "error"] and np.isnan(table.loc[0, "fid"])
    assert table.loc[1, "error"] is None or pd.isna(table.loc[1, "error"])
    assert np.isfinite(table.loc[1, "fid"])


def test_folder_with_corrupt_and_foreign_files(workspace, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(20):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("hello")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(folder / "odd.png")
    with pytest.warns(UserWarning, match="skipped 3"):
        table = run_benchmark(small_config(workspace, tmp_path / "out", [str(folder)]))
    row = table.iloc[0]
    assert row["n_samples"] == 20 and row["n_skipped"] == 3 and np.isfinite(row["fid"]) and pd.isna(row["error"])


def test_spec_file_grid(workspace, tmp_path):
    from diffeval.benchmark import load_spec

    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'n = 16\nbatch_size = 8\nkid_subset_size = 8\nkid_subsets = 5\nfid_resamples = 0\n'
        f'reference = "{workspace / "ref.npz"}"\n'
        f'device = "cpu"\nprogress = false\n[[grid]]\ngenerators = ["{workspace / "sd3"}"]\n'
        f'samplers = ["euler", "heun"]\nsteps = [1, 2]\nguidance = [1.0]\n'
    )
    config = load_spec(spec, out=str(tmp_path / "out"))
    table = run_benchmark(config)
    assert list(zip(table["sampler"], table["steps"], table["nfe"])) == [
        ("euler", 1, 1),
        ("euler", 2, 2),
        ("heun", 1, 1),
        ("heun", 2, 3),
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("n = 10\ncolour = 'red'\n[[grid]]\ngenerators=['x']\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_spec(bad)


def test_cli_benchmark_and_bad_input(workspace, tmp_path):
    runner = CliRunner()
    base = [
        "--n",
        "16",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--guidance",
        "1",
        "--reference",
        str(workspace / "ref.npz"),
        "--fid-resamples",
        "0",
        "--device",
        "cpu",
        "--no-progress",
    ]
    ok = runner.invoke(main, ["benchmark", str(workspace / "dit"), *base, "--out", str(tmp_path / "o")], obj={})
    assert ok.exit_code == 0, ok.output
    assert "tiny-dit" in ok.output and (tmp_path / "o" / "benchmark.md").is_file()
    unknown = runner.invoke(main, ["benchmark", "no-such-generator", *base, "--out", str(tmp_path / "u")], obj={})
    assert unknown.exit_code == 1 and unknown.output.startswith("error: 'no-such-generator' is not a bundled generator")
    assert unknown.output.strip().count("\n") == 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.full((4, 8, 8, 1), 2.0, np.float32))
    out_of_range = runner.invoke(main, ["benchmark", str(bad), *base, "--out", str(tmp_path / "b")], obj={})
    assert out_of_range.exit_code == 1 and "must lie in [0, 1]" in out_of_range.output


def test_cli_stats_interchange_with_pytorch_fid(workspace, tmp_path):
    from pytorch_fid.fid_score import calculate_frechet_distance

    from diffeval.metrics import frechet_distance

    out = tmp_path / "s.npz"
    result = CliRunner().invoke(
        main, ["stats", str(workspace / "ref.npz"), "--out", str(out), "--device", "cpu"], obj={}
    )
    assert result.exit_code == 0, result.output
    with np.load(out) as f:  # what pytorch-fid reads
        mu, sigma = f["mu"], f["sigma"]
    assert mu.shape == (128,) and sigma.shape == (128, 128) and int(np.load(out)["n"]) == 200
    shifted = mu + 0.1
    ours = frechet_distance(mu, sigma, shifted, sigma * 1.1)
    theirs = calculate_frechet_distance(mu, sigma, shifted, sigma * 1.1)
    assert math.isclose(ours, theirs, rel_tol=1e-6)


def _cli(args: list[str], env_extra: dict | None = None, launcher: list[str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    cmd = (launcher or [sys.executable, "-m", "diffeval"]) + ["benchmark", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _bench_args(ws: Path, out: Path) -> list[str]:
    return [
        str(ws / "dit"),
        str(ws / "sd3"),
        "--num-samples",
        "40",
        "--batch-size",
        "8",
        "--steps",
        "3",
        "--guidance",
        "2",
        "--reference",
        str(ws / "ref.npz"),
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
    ]


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(workspace, tmp_path):
    single = _cli(_bench_args(workspace, tmp_path / "one"))
    out, _ = single.communicate(timeout=600)
    assert single.returncode == 0, out
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "diffeval",
    ]
    multi = _cli(_bench_args(workspace, tmp_path / "two"), launcher=launcher)
    out, _ = multi.communicate(timeout=600)
    assert multi.returncode == 0, out
    one = pd.read_csv(tmp_path / "one" / "benchmark.csv")
    two = pd.read_csv(tmp_path / "two" / "benchmark.csv")
    assert len(one) == 2
    np.testing.assert_allclose(two[METRICS].to_numpy(float), one[METRICS].to_numpy(float), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_killed_process_resumes(workspace, tmp_path):
    out = tmp_path / "run"
    proc = _cli(_bench_args(workspace, out))
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("cache/*/chunks/*.npz"))) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "benchmark.csv").exists()
    done_before = len(list(out.glob("cache/*/chunks/*.npz")))
    assert done_before >= 3
    again = _cli(_bench_args(workspace, out))
    log, _ = again.communicate(timeout=600)
    assert again.returncode == 0, log
    fresh = _cli(_bench_args(workspace, tmp_path / "fresh"))
    log, _ = fresh.communicate(timeout=600)
    assert fresh.returncode == 0, log
    a, b = pd.read_csv(out / "benchmark.csv"), pd.read_csv(tmp_path / "fresh" / "benchmark.csv")
    np.testing.assert_allclose(a[METRICS].to_numpy(float), b[METRICS].to_numpy(float), rtol=1e-12)


def test_cli_missing_feature_weights_is_one_line(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("DIFFEVAL_INCEPTION_WEIGHTS", raising=False)
    result = CliRunner().invoke(main, ["benchmark", str(workspace / "ref.npz"), "--features", "inception", "--n", "8",
                                       "--reference", str(workspace / "ref.npz"), "--out", str(tmp_path / "o")], obj={})
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "pt_inception-2015-12-05-6726825d.pth" in result.output and "DIFFEVAL_INCEPTION_WEIGHTS" in result.output


def test_clip_score_cmmd_and_lpips_columns(workspace, tmp_path, monkeypatch):
    """With a (tiny, random) CLIP model and an LPIPS trunk given as files, the three columns are filled."""
    import open_clip
    from torchvision.models import alexnet

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    (tmp_path / "bench-tiny-vit.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "bench-tiny-vit.json")
    torch.manual_seed(0)
    torch.save(open_clip.create_model("bench-tiny-vit", pretrained=None).state_dict(), tmp_path / "clip.pt")
    torch.save(
        {f"features.{k}": v for k, v in alexnet(weights=None).features.state_dict().items()}, tmp_path / "alex.pth"
    )
    table = run_benchmark(
        small_config(
            workspace,
            tmp_path / "o",
            [str(workspace / "sd3")],
            clip=f"bench-tiny-vit:{tmp_path / 'clip.pt'}",
            lpips="alex",
            lpips_weights=str(tmp_path / "alex.pth"),
        )
    )
    row = table.iloc[0]
    assert pd.isna(row["error"]), row["error"]
    assert 0 <= row["clip_score"] <= 100 and np.isfinite(row["cmmd"]) and row["lpips_diversity"] > 0
