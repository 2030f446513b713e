"""Concurrent runs on one folder: the long commands that cache take a lock on ``--out`` (and ``--cache``) and
a second run is refused at once; ``benchmark`` takes none because two runs on one ``--out`` are safe (atomic,
deterministic chunks), which the last test shows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from diffeval.cli import main
from diffeval.generators.checkpoints import save_checkpoint
from diffeval.io import LOCK_NAME, folders_locked

from .helpers import tiny_generator

LOCKED = {
    "train": ["train", "--preset", "ddpm", "--steps", "1", "--out", "{out}"],
    "quality": ["quality", "-g", "ddpm", "--n", "2", "--out", "{out}"],
    "audit score-error": ["audit", "score-error", "--data", "fashion", "-g", "ddpm", "--n", "2", "--out", "{out}"],
    "audit bias": ["audit", "bias", "-g", "sd1", "--n-per-prompt", "2", "--out", "{out}"],
    "detect train": ["detect", "train", "--train-generators", "ddpm", "--n-per-generator", "2", "--steps", "1",
                     "--cache", "{out}/c", "--out", "{out}"],
    "detect eval": ["detect", "eval", "--detector", "{out}", "--generators", "ddpm", "--n", "2", "--cache",
                    "{out}/c", "--out", "{out}"],
    "watermark robustness": ["watermark", "robustness", "--keys", "1", "--n", "2", "--attacks", "clean", "--no-quality",
                             "--out", "{out}"],
    "watermark forgery": ["watermark", "forgery", "--keys", "1", "--known", "1", "--targets", "1", "--out", "{out}"],
}


@pytest.mark.parametrize("command", list(LOCKED))
def test_a_second_run_on_a_locked_folder_is_refused_at_once(tmp_path, command):
    """While the folder's lock is held, the command ends in one line naming the holder and writes nothing."""
    out = tmp_path / "out"
    with folders_locked(out, command="the first run"):
        before = sorted(p.name for p in out.rglob("*"))
        r = CliRunner().invoke(main, [a.format(out=out) for a in LOCKED[command]], obj={})
        assert sorted(p.name for p in out.rglob("*")) == before == [LOCK_NAME]
    assert r.exit_code == 1, r.output
    assert r.output.count("\n") == 1 and "is in use by another diffeval run" in r.output, r.output
    assert f"pid {os.getpid()}, the first run" in r.output


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    """A process holding the lock and killed with SIGKILL frees it: the kernel drops flock locks."""
    out = tmp_path / "out"
    code = ("import sys, time; from diffeval.io import folders_locked\n"
            f"with folders_locked({str(out)!r}, command='holder'):\n print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"in use by another diffeval run \(pid {holder.pid}, holder\)"):
            with folders_locked(out):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with folders_locked(out, tmp_path / "other", out):  # free again; a folder named twice is locked once
        assert (tmp_path / "other" / LOCK_NAME).is_file()


def test_two_concurrent_benchmarks_on_one_out_give_the_table_of_one(tmp_path):
    """Two benchmark processes started together on one --out (sharing its chunk cache) both finish, and both
    tables equal that of a run alone (timing columns aside)."""
    g = tiny_generator("ddpm")
    save_checkpoint(tmp_path / "g", g.model, "tiny", "ddpm", g.defaults)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref.npz", images=(rng.random((60, 8, 8, 1)) * 255).astype(np.uint8))

    def args(out):
        return ["benchmark", str(tmp_path / "g"), "--n", "16", "--steps", "2", "--batch-size", "2", "--reference",
                str(tmp_path / "ref.npz"), "--device", "cpu", "--no-progress", "--out", str(out)]

    alone = CliRunner().invoke(main, args(tmp_path / "alone"), obj={})
    assert alone.exit_code == 0, alone.output
    both = [subprocess.Popen([sys.executable, "-m", "diffeval", *args(tmp_path / "shared")], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT) for _ in range(2)]
    for p in both:
        output = p.communicate()[0].decode()
        assert p.returncode == 0, output
    alone, shared = (pd.read_csv(tmp_path / d / "benchmark.csv") for d in ("alone", "shared"))
    timing = [c for c in alone.columns if c.endswith("_s") or "per_s" in c or "mem" in c]
    pd.testing.assert_frame_equal(alone.drop(columns=timing), shared.drop(columns=timing))


def test_a_folder_the_lock_made_is_removed_when_left_empty(tmp_path):
    """A run refused after taking the lock (a missing detector, say) leaves no empty --out behind; a folder with
    results, or one that existed before, stays."""
    with folders_locked(tmp_path / "new" / "out", tmp_path / "kept", command="t"):
        (tmp_path / "kept" / "result.csv").write_text("x")
    assert not (tmp_path / "new" / "out").exists() and (tmp_path / "kept" / "result.csv").is_file()
    (tmp_path / "old").mkdir()
    with folders_locked(tmp_path / "old"):
        pass
    assert (tmp_path / "old").is_dir()
