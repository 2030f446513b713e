"""Property-based runs of the CLI's option space (hypothesis): every draw either exits 0 with complete output,
or prints one ``error:`` line, exits non-zero and leaves nothing behind; a value outside its range is never
accepted silently."""

from __future__ import annotations

import contextlib
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from diffeval.cli import main
from diffeval.generators.checkpoints import save_checkpoint

from .helpers import tiny_generator

COUNTS: dict[str, dict[str, int]] = {}
EDGES = ["-1", "0", "-0.5", "0.5", "1", "2", str(2**32), "nan", "inf", "-inf", "1e400", "x", ""]
NUMBERS = st.one_of(st.sampled_from(EDGES), st.integers(-3, 6), st.floats(-3, 6))


def mostly(valid) -> st.SearchStrategy:
    """Three parts valid values to one part anything (so whole valid command lines are common too)."""
    return st.one_of(valid, valid, valid, NUMBERS)


COUNT = mostly(st.integers(1, 4))
SCALE = mostly(st.floats(0, 5))
UNIT = mostly(st.floats(0, 1))


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def snapshot(out: Path) -> set[Path]:
    """Every file beside ``out`` (its folder's other entries), in the working folder and in diffeval's cache
    folder: what a command must leave alone (a finished run may add to the cache folder only)."""
    from diffeval.data.fashion import cache_dir

    roots = [out.parent, Path.cwd(), cache_dir()]
    return {p for r in roots if r.is_dir() for p in r.rglob("*") if p.is_file() and not p.is_relative_to(out)}


def _check(result, out: Path, complete, valid: bool, command: str, before: set[Path] | None = None) -> None:
    """The draw's outcome is right (see the module docstring); with ``before`` (a ``snapshot``), nothing was
    written outside ``out`` either."""
    tally = COUNTS.setdefault(command, {"examples": 0, "ok": 0, "refused": 0})
    tally["examples"] += 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        tally["ok"] += 1
        assert valid, f"accepted silently: {result.output}"
        assert complete(), result.output
    else:
        tally["refused"] += 1
        assert not valid, result.output
        lines = [line for line in result.output.splitlines() if not line.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output
        assert not out.exists() or not any(p.is_file() and not p.name.startswith(".") for p in out.rglob("*"))
    if before is not None:
        from diffeval.data.fashion import cache_dir

        added = snapshot(out) - before
        assert not added if result.exit_code else all(p.is_relative_to(cache_dir()) for p in added), added


@contextlib.contextmanager
def in_empty_cwd(tmp_path_factory):
    """Run the block in a fresh, empty working folder (``snapshot`` watches it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    with in_empty_cwd(tmp_path_factory):
        yield _workspace(tmp_path_factory.mktemp("props"))


def _workspace(root: Path) -> Path:
    g = tiny_generator("sd1")
    save_checkpoint(root / "sd1", g.model, "tiny-sd1", "sd1", g.defaults)
    rng = np.random.default_rng(0)
    np.savez(root / "ref.npz", images=(rng.random((60, 8, 8, 1)) * 255).astype(np.uint8))
    return root


def _text(value) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def _assert_tally(command: str, examples: int, at_least: int) -> None:
    """The run saw ``examples`` draws, at least ``at_least`` of them accepted and as many refused."""
    tally = COUNTS[command]
    print(f"{command}: {tally}")
    assert tally["examples"] >= examples and tally["ok"] >= at_least and tally["refused"] >= at_least


def test_sample_option_space(workspace):
    _sample_draws(workspace)
    _assert_tally("sample", 150, 5)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(n=COUNT, steps=COUNT, guidance=SCALE, eta=UNIT, seed=mostly(st.integers(0, 3)))
def _sample_draws(workspace, n, steps, guidance, eta, seed):
    out = workspace / "sample-out"
    shutil.rmtree(out, ignore_errors=True)
    n, steps, guidance, eta, seed = map(_text, (n, steps, guidance, eta, seed))
    if _is_int(n) and int(n) > 6:
        n = "6"  # keep the run short; n's validity is then that of 6
    g, e = _as_number(guidance), _as_number(eta)
    valid = (_is_int(n) and int(n) >= 1 and _is_int(steps) and int(steps) >= 1
             and g is not None and math.isfinite(g) and g >= 0 and e is not None and math.isfinite(e) and 0 <= e <= 1
             and _is_int(seed) and 0 <= int(seed) < 2**32)
    args = ["sample", "-g", str(workspace / "sd1"), "--prompt", "a shoe", "--n", n, "--steps", steps,
            "--guidance", guidance, "--eta", eta, "--seed", seed, "--out", str(out / "grid.png"),
            "--npz", str(out / "x.npz")]
    before = snapshot(out)
    result = CliRunner().invoke(main, args, obj={})

    def complete() -> bool:
        with Image.open(out / "grid.png") as img:
            img.load()
        return np.load(out / "x.npz")["images"].shape[0] == int(n)

    _check(result, out, complete, valid, "sample", before)


def test_benchmark_option_space(workspace):
    _benchmark_draws(workspace)
    _assert_tally("benchmark", 40, 2)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=mostly(st.integers(2, 6)), steps=COUNT, batch=COUNT, resamples=mostly(st.integers(0, 3)))
def _benchmark_draws(workspace, n, steps, batch, resamples):
    out = workspace / "bench-out"
    shutil.rmtree(out, ignore_errors=True)
    n, steps, batch, resamples = map(_text, (n, steps, batch, resamples))
    ints = {k: int(v) if _is_int(v) else None for k, v in
            {"n": n, "steps": steps, "batch": batch, "resamples": resamples}.items()}
    valid = (ints["n"] is not None and ints["n"] >= 2 and ints["steps"] is not None and ints["steps"] >= 1
             and ints["batch"] is not None and ints["batch"] >= 1 and ints["resamples"] is not None
             and ints["resamples"] >= 0)
    args = ["benchmark", str(workspace / "sd1"), "--n", n, "--steps", steps, "--batch-size", batch,
            "--fid-resamples", resamples, "--guidance", "1", "--reference", str(workspace / "ref.npz"),
            "--device", "cpu", "--no-progress", "--out", str(out)]
    before = snapshot(out)
    result = CliRunner().invoke(main, args, obj={})
    _check(result, out, lambda: (out / "benchmark.csv").is_file() and (out / "benchmark.json").is_file(), valid,
           "benchmark", before)
