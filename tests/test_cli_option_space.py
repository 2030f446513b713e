"""Property-based runs (hypothesis) of the numeric option space of every command but ``sample`` and
``benchmark`` (those are in test_cli_properties.py), table-driven: each option has a range, each draw takes a
valid value, except in one or two options of half the draws, which take anything (negative, NaN, inf, 1e400,
text, empty); the command must exit 0 with complete output exactly when every value is valid, and otherwise
print one ``error:`` line and leave no file in its output folder; and no run writes a file outside it (beside
it, in the working folder, or, unless it finished, in diffeval's cache folder)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from diffeval.cli import main
from diffeval.generators.checkpoints import save_checkpoint

from .helpers import tiny_generator
from .test_cli_properties import COUNTS, NUMBERS, _as_number, _check, _is_int, _text, in_empty_cwd, snapshot


@dataclass(frozen=True)
class Opt:
    """One option: its flag, valid values to draw, whether a text is valid, and a cap on drawn valid integers
    (a larger valid value is replaced by the cap, to keep runs short)."""

    flag: str
    draw: st.SearchStrategy
    ok: Callable[[str], bool]
    cap: int | None = None


def integer(flag: str, lo: int, draw_hi: int, hi: int | None = None) -> Opt:
    return Opt(flag, st.integers(lo, draw_hi), lambda t: _is_int(t) and lo <= int(t) <= (hi if hi is not None
                                                                                           else math.inf), draw_hi)


def seed(flag: str = "--seed") -> Opt:
    return integer(flag, 0, 3, 2**32 - 1)


def number(flag: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False,
           draw: st.SearchStrategy | None = None) -> Opt:
    def ok(text: str) -> bool:
        v = _as_number(text)
        return (v is not None and math.isfinite(v) and (v > lo if lo_open else v >= lo)
                and (v < hi if hi_open else v <= hi))

    return Opt(flag, draw or st.floats(lo, min(hi, 5.0), exclude_min=lo_open, exclude_max=hi_open), ok)


@dataclass(frozen=True)
class Command:
    """A command line with placeholders {w} (the workspace) and {out} (a fresh output folder), the options
    drawn, what a complete output is, and how many draws."""

    name: str
    args: tuple[str, ...]
    options: tuple[Opt, ...]
    complete: Callable[[Path], bool]
    examples: int
    valid_extra: Callable[[dict], bool] = lambda values: True  # rules across options


def _files(*names: str) -> Callable[[Path], bool]:
    return lambda out: all((out / n).is_file() for n in names)


COMMANDS = [
    Command("quality", ("quality", "-g", "{w}/ddpm", "--out", "{out}"),
            (integer("--n", 1, 3), seed()), _files("quality.csv", "grid_tiny-ddpm.png"), 30),
    Command("stats", ("stats", "{w}/images", "--features", "fashion", "--device", "cpu", "--out", "{out}/s.npz"),
            (integer("--batch-size", 1, 8),), _files("s.npz"), 30),
    Command("watermark keygen", ("watermark", "keygen", "-g", "{w}/sd1", "--pattern", "rings", "--out",
                                 "{out}/key.safetensors"),
            (number("--radius", 0, 14, lo_open=True, hi_open=True), number("--inner-radius", 0, 14, hi_open=True),
             integer("--channel", 0, 0, 0), seed(), integer("--count", 1, 2), integer("--subkeys", 1, 2)),
            lambda out: any(out.glob("key*.safetensors")), 100,
            lambda v: float(v["--inner-radius"]) < float(v["--radius"])),
    Command("watermark embed", ("watermark", "embed", "-g", "{w}/sd1", "--key", "{w}/key.safetensors",
                                "--out", "{out}"),
            (integer("--n", 1, 2), integer("--steps", 1, 3), number("--guidance", 0, math.inf), seed()),
            _files("embed.json", "00000.png"), 25),
    Command("watermark detect", ("watermark", "detect", "-g", "{w}/sd1", "--key", "{w}/key.safetensors",
                                 "{w}/images/00000.png", "--out", "{out}/d.csv"),
            (integer("--inv-steps", 1, 3), integer("--fixed-point", 0, 2), number("--alpha", 0, 1, True, True)),
            _files("d.csv"), 25),
    Command("watermark robustness", ("watermark", "robustness", "--keys", "1", "-g", "{w}/sd1", "--pattern", "rings",
                                     "--attacks", "clean", "--no-quality", "--no-progress", "--out", "{out}"),
            (number("--radius", 0, 14, lo_open=True, hi_open=True), integer("--n", 1, 2), integer("--keys", 1, 2),
             integer("--subkeys", 1, 2), integer("--n-unmarked", 1, 2), integer("--steps", 1, 2),
             integer("--inv-steps", 1, 2),
             integer("--fixed-point", 0, 1), number("--alpha", 0, 1, True, True), seed()),
            _files("robustness.csv"), 25),
    Command("watermark forgery", ("watermark", "forgery", "-g", "{w}/sd1", "--scheme", "tree-ring", "--attack",
                                  "latent-average", "--known", "1", "--no-progress", "--out", "{out}"),
            (number("--radius", 0, 14, lo_open=True, hi_open=True), integer("--keys", 1, 2),
             integer("--subkeys", 1, 2), integer("--targets", 1, 2), integer("--steps", 1, 2),
             integer("--inv-steps", 1, 2),
             integer("--fixed-point", 0, 1), number("--alpha", 0, 1, True, True), seed()),
            _files("forgery.csv", "forgery.md", "forged_acceptance.png"), 20),
    Command("detect train", ("detect", "train", "--train-generators", "{w}/ddpm,{w}/dit", "--cache", "{out}/cache",
                             "--out", "{out}"),
            (integer("--n-per-generator", 1, 4), integer("--steps", 1, 2), integer("--batch-size", 2, 4),
             number("--lr", 0, math.inf, lo_open=True), integer("--stem-stride", 1, 2, 2),
             Opt("--local-block", st.sampled_from([0, 2, 4, 7]), lambda t: _is_int(t) and int(t) in (0, 1, 2, 4, 7,
                                                                                                    14, 28)),
             number("--dark-p", 0, 1), seed()),
            _files("model.safetensors", "config.json", "train_log.csv"), 25),
    Command("detect eval", ("detect", "eval", "--detector", "{w}/detector", "--generators", "{w}/ddpm",
                            "--perturbations", "none", "--cache", "{out}/cache", "--out", "{out}"),
            (integer("--n", 1, 4), seed()), _files("eval.csv"), 30),
    Command("audit score-error", ("audit", "score-error", "--data", "gmm2d", "-g", "exact", "--analyses", "error",
                                  "--levels", "0,1", "--out", "{out}"),
            (integer("--n", 2, 20), integer("--n-boot", 1, 10), seed()), _files("score_error.json"), 30),
    Command("audit bias", ("audit", "bias", "-g", "{w}/sd1", "--prompts", "fashion", "--out", "{out}"),
            (integer("--n-per-prompt", 1, 1), integer("--steps", 1, 2), number("--guidance", 0, math.inf), seed(),
             integer("--batch-size", 1, 4), number("--q", 0, 1, True, True), integer("--n-boot", 1, 10),
             number("--min-confidence", 0, 1)),
            _files("report.html", "summary.json", "images.csv"), 25),
    Command("audit bias --plan", ("audit", "bias", "-g", "{w}/sd1", "--plan", "--out", "{out}"),
            (number("--plan-p0", 0, 1, True, True), number("--plan-p1", 0, 1),
             number("--plan-margin", 0, 1, True, True), number("--plan-power", 0, 1, True, True),
             number("--q", 0, 1, True, True)),
            lambda out: True, 40, lambda v: float(v["--plan-p0"]) != float(v["--plan-p1"])),
    Command("train", ("train", "--preset", "ddpm", "--device", "cpu", "--out", "{out}"),
            (integer("--steps", 1, 2),), _files("config.json", "model.safetensors"), 10),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Tiny 28 px ddpm, sd1 and dit checkpoints, a key for sd1, two PNGs, and a detector trained one step."""
    with in_empty_cwd(tmp_path_factory):
        yield _workspace(tmp_path_factory.mktemp("option-space"))


def _workspace(root: Path) -> Path:
    for kind in ("ddpm", "sd1", "dit"):
        g = tiny_generator(kind, image_size=28)
        save_checkpoint(root / kind, g.model, f"tiny-{kind}", kind, g.defaults)
    runner = CliRunner()
    key = str(root / "key.safetensors")
    for args in (["watermark", "keygen", "-g", str(root / "sd1"), "--seed", "1", "--out", key],
                 ["watermark", "embed", "-g", str(root / "sd1"), "--key", str(root / "key.safetensors"), "--n", "2",
                  "--steps", "2", "--out", str(root / "images")],
                 ["detect", "train", "--train-generators", f"{root}/ddpm,{root}/dit", "--n-per-generator", "4",
                  "--steps", "1", "--batch-size", "4", "--cache", str(root / "cache"), "--out",
                  str(root / "detector")]):
        result = runner.invoke(main, args, obj={})
        assert result.exit_code == 0, result.output
    (root / "images" / "grid.png").unlink()
    (root / "images" / "embed.json").unlink()
    return root


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_option_space(workspace, command):
    draws = settings(max_examples=command.examples, deadline=None, derandomize=True)(
        given(data=st.data())(lambda data: _one_draw(workspace, command, data)))
    draws()
    tally = COUNTS[command.name]
    print(f"option space | {command.name} | {tally}")
    assert tally["examples"] >= command.examples * 2 // 3 and tally["ok"] >= 2 and tally["refused"] >= 2, tally


def _one_draw(workspace: Path, command: Command, data) -> None:
    out = workspace / f"out-{command.name.replace(' ', '-')}"
    shutil.rmtree(out, ignore_errors=True)
    flags = [opt.flag for opt in command.options]
    broken = data.draw(st.one_of(st.just(set()), st.sets(st.sampled_from(flags), min_size=1, max_size=2)),
                       label="broken options")  # half the draws are whole valid command lines
    values = {}
    for opt in command.options:
        text = _text(data.draw(NUMBERS if opt.flag in broken else opt.draw, label=opt.flag))
        if opt.cap is not None and _is_int(text) and int(text) > opt.cap and opt.ok(text):
            text = str(opt.cap)  # keep the run short; the value's validity is that of the cap
        values[opt.flag] = text
    valid = all(opt.ok(values[opt.flag]) for opt in command.options)
    valid = valid and command.valid_extra(values)
    args = [a.format(w=workspace, out=out) for a in command.args]
    args += [x for flag, text in values.items() for x in (flag, text)]
    before = snapshot(out)
    result = CliRunner().invoke(main, args, obj={})
    _check(result, out, lambda: command.complete(out), valid, command.name, before)
