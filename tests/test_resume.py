"""Kill-and-resume: a long command stopped right after its K-th cached item and run again gives the table of an
uninterrupted run (timing columns aside), for several K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from diffeval.cli import main


class Killed(BaseException):
    """Stands in for SIGKILL: no ``except Exception`` handler of the code under test can swallow it."""


def _kill_after(monkeypatch, module, name: str, k: int) -> dict:
    real, calls = getattr(module, name), {"n": 0}

    def wrapper(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == k:
            raise Killed
        return out

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _max_diff(a: pd.DataFrame, b: pd.DataFrame, skip=()) -> float:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    worst = 0.0
    for c in a.columns:
        if c in skip:
            continue
        if a[c].dtype.kind in "fi":
            x, y = a[c].to_numpy(float), b[c].to_numpy(float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), c
            worst = max(worst, float(np.nanmax(np.abs(x - y), initial=0.0)))
        else:
            assert (a[c].fillna("").astype(str) == b[c].fillna("").astype(str)).all(), c
    return worst


def _same(command: str, k: int, diff: float) -> bool:
    """Print one row of the kill-and-resume table (``pytest -s`` shows them) and say whether it is exact."""
    print(f"resume | {command} | K={k} | max diff {diff:g}")
    return diff == 0.0


def _run(args):
    result = CliRunner().invoke(main, args, obj={})
    assert result.exit_code == 0, result.output
    return result


WATERMARK = {
    "robustness": ["watermark", "robustness", "-g", "sd3-reflow", "--n", "3", "--pattern", "rings", "--attacks",
                   "clean,jpeg:50", "--no-quality", "--inv-steps", "2", "--fixed-point", "0", "--no-progress",
                   "--keys", "1"],
    "forgery": ["watermark", "forgery", "-g", "sd3-reflow", "--keys", "1", "--known", "1,2", "--targets", "2",
                "--steps", "3", "--inv-steps", "2", "--fixed-point", "0", "--no-progress"],
}


@pytest.fixture(scope="module")
def watermark_reference(tmp_path_factory):
    """The table of an uninterrupted run, per watermark command (made on first use)."""
    made: dict[str, pd.DataFrame] = {}

    def get(command: str) -> pd.DataFrame:
        if command not in made:
            out = tmp_path_factory.mktemp(command) / "full"
            _run([*WATERMARK[command], "--out", str(out)])
            made[command] = pd.read_csv(out / f"{command}.csv")
        return made[command]

    return get


@pytest.mark.parametrize("command, k", [("robustness", 1), ("robustness", 3), ("robustness", 5), ("forgery", 1),
                                        ("forgery", 4), ("forgery", 9)])
def test_watermark_commands_resume(tmp_path, monkeypatch, watermark_reference, command, k):
    import diffeval.watermark.cache as cache

    reference = watermark_reference(command)
    out = tmp_path / "killed"
    _kill_after(monkeypatch, cache, "atomic_torch_save", k)
    with pytest.raises(Killed):
        CliRunner().invoke(main, [*WATERMARK[command], "--out", str(out)], obj={}, catch_exceptions=False)
    assert not (out / f"{command}.csv").exists() and len(list((out / "cache").glob("*.pt"))) == k
    monkeypatch.undo()
    _run([*WATERMARK[command], "--out", str(out)])
    resumed = pd.read_csv(out / f"{command}.csv")
    assert _same(f"watermark {command}", k, _max_diff(resumed, reference, skip=("detect_s_per_image",)))


SCORE_ERROR = ["audit", "score-error", "--data", "fashion", "-g", "sd3-reflow", "-g", "sd3", "--analyses",
               "memorisation", "--n", "6"]


@pytest.fixture(scope="module")
def score_error_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("score") / "full"
    _run([*SCORE_ERROR, "--out", str(out)])
    return pd.read_csv(out / "memorisation_samples.csv")


@pytest.mark.parametrize("k", [1, 2])
def test_score_error_resumes(tmp_path, monkeypatch, score_error_reference, k):
    import diffeval.audits.score_error.run as run

    out = tmp_path / "killed"
    _kill_after(monkeypatch, run, "atomic_write_text", k)
    with pytest.raises(Killed):
        CliRunner().invoke(main, [*SCORE_ERROR, "--out", str(out)], obj={}, catch_exceptions=False)
    monkeypatch.undo()
    _run([*SCORE_ERROR, "--out", str(out)])
    assert _same("audit score-error", k, _max_diff(pd.read_csv(out / "memorisation_samples.csv"),
                                                    score_error_reference))


DETECT = ["detect", "train", "--train-generators", "sd3-reflow,dit@ddim:2", "--n-per-generator", "8", "--steps", "2",
          "--batch-size", "4", "--stem-stride", "2"]


def test_detect_train_resumes_from_its_image_cache(tmp_path, monkeypatch):
    """Killed after the first generator's images were cached, a rerun reuses them and trains the same detector."""
    import json

    from safetensors.torch import load_file

    import diffeval.detectors.data as data

    _run([*DETECT, "--cache", str(tmp_path / "c-full"), "--out", str(tmp_path / "full")])
    _kill_after(monkeypatch, data, "atomic_savez", 1)
    with pytest.raises(Killed):
        CliRunner().invoke(main, [*DETECT, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "d")], obj={},
                           catch_exceptions=False)
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1 and not (tmp_path / "d" / "model.safetensors").exists()
    monkeypatch.undo()
    _run([*DETECT, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "d")])
    full, resumed = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("full", "d"))
    assert _same("detect train", 1, max(float((full[k] - resumed[k]).abs().max()) for k in full))
    val = [json.loads((tmp_path / d / "config.json").read_text())["info"]["validation"] for d in ("full", "d")]
    assert val[0] == val[1]


@pytest.fixture(scope="module")
def trained_detector(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector")
    _run([*DETECT, "--cache", str(root / "cache"), "--out", str(root / "detector")])
    return root / "detector"


EVAL = ["detect", "eval", "--generators", "sd3-reflow,dit@ddim:2,sd3@euler:2", "--n", "6", "--perturbations",
        "none,jpeg75"]


@pytest.mark.parametrize("k", [1, 2])
def test_detect_eval_resumes_from_its_image_cache(tmp_path, monkeypatch, trained_detector, k):
    """Killed after K of its 3 generators' images were cached, a rerun gives the uninterrupted run's table."""
    import diffeval.detectors.data as data

    args = [*EVAL, "--detector", str(trained_detector)]
    _run([*args, "--cache", str(tmp_path / "c-full"), "--out", str(tmp_path / "full")])
    _kill_after(monkeypatch, data, "atomic_savez", k)
    with pytest.raises(Killed):
        CliRunner().invoke(main, [*args, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "d")], obj={},
                           catch_exceptions=False)
    assert len(list((tmp_path / "c").glob("*.npz"))) == k and not (tmp_path / "d" / "eval.csv").exists()
    monkeypatch.undo()
    _run([*args, "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "d")])
    full, resumed = (pd.read_csv(tmp_path / d / "eval.csv") for d in ("full", "d"))
    assert _same("detect eval", k, _max_diff(resumed, full))


@pytest.fixture(scope="module")
def quality_generators(tmp_path_factory):
    from diffeval.generators.checkpoints import save_checkpoint

    from .helpers import tiny_generator

    root = tmp_path_factory.mktemp("quality")
    for kind in ("ddpm", "dit", "sd3"):  # tiny networks at the judge's 28 px
        g = tiny_generator(kind, image_size=28)
        save_checkpoint(root / kind, g.model, f"tiny-{kind}", kind, g.defaults)
    args = ["quality", "--n", "12", *(a for kind in ("ddpm", "dit", "sd3") for a in ("-g", str(root / kind)))]
    _run([*args, "--out", str(root / "full")])
    return args, root / "full"


@pytest.mark.parametrize("k", [1, 2])
def test_quality_resumes_from_its_row_cache(tmp_path, monkeypatch, quality_generators, k):
    """Killed after K of its 3 generators were cached, a rerun makes only the rest and gives the same table
    (the rate column aside) and the same grids."""
    from PIL import Image

    import diffeval.io as io

    args, reference = quality_generators
    out = tmp_path / "killed"
    _kill_after(monkeypatch, io, "atomic_savez", k)
    with pytest.raises(Killed):
        CliRunner().invoke(main, [*args, "--out", str(out)], obj={}, catch_exceptions=False)
    assert len(list((out / "cache").glob("*.npz"))) == k and not (out / "quality.csv").exists()
    monkeypatch.undo()
    calls = _kill_after(monkeypatch, io, "atomic_savez", 99)
    _run([*args, "--out", str(out)])
    assert calls["n"] == 3 - k
    table = pd.read_csv(out / "quality.csv")
    assert _same("quality", k, _max_diff(table, pd.read_csv(reference / "quality.csv"), skip=("samples_per_s",)))
    grids = sorted(p.name for p in reference.glob("grid_*.png"))
    assert len(grids) == 3 and grids == sorted(p.name for p in out.glob("grid_*.png"))
    for name in grids:
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(reference / name)))
