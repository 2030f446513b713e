"""The bad-input table: hostile and careless inputs through every command, each outcome classified.

    .venv/bin/python benchmarks/bad_inputs.py      # about 40 s on 2 cores

``tests/test_bad_input_table.py`` runs the same suite and asserts the last four counts are 0.

Each case is a command line with an expectation: ``error`` (it must be refused) or ``ok`` (it must be read as
it is, optionally with a check of the result). Every case runs in-process (click's CliRunner) in a fresh
output folder, and is classified as

- clear error: refused, exit status != 0, one ``error:`` line (warnings aside), no traceback;
- accepted: exit 0 where that is right, and the check of the result (if any) holds;
- traceback: a Python traceback or an exception escaping the CLI;
- silent wrong: exit 0 where a refusal was due, or a failed check of the result;
- outside --out: a file created beside the output folder, in the working folder or in the workspace (the
  files of the whole workspace, the working folder and diffeval's cache are listed before and after);
- lost: a refusal that left a half-written file in the output folder.

Writes benchmarks/results/bad_inputs.{csv,md}: one row per case and the counts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from click.testing import CliRunner
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffeval.cli import main  # noqa: E402
from diffeval.data.fashion import cache_dir  # noqa: E402
from diffeval.generators.checkpoints import save_checkpoint  # noqa: E402
from diffeval.io import write_table  # noqa: E402
from tests.helpers import tiny_generator  # noqa: E402


@dataclass
class Case:
    """``args`` with {w} for the workspace and {out} for the case's output folder."""

    group: str
    what: str
    args: list[str]
    expect: str  # "error" or "ok"
    check: Callable[[Path, str], bool] | None = None
    reports: bool = False  # a refusal that writes a complete table of its failed rows (benchmark), by design


def _checkpoint(w: Path, name: str, kind: str = "ddpm", edit: Callable[[dict], None] | None = None) -> Path:
    folder = w / "ckpt" / name.replace("/", "_").strip("_.") or "x"
    g = tiny_generator(kind, image_size=28)
    save_checkpoint(folder, g.model, "tiny", kind, g.defaults)
    config = json.loads((folder / "config.json").read_text())
    config["name"] = name
    if edit:
        edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _pickled_checkpoint(w: Path) -> Path:
    """A checkpoint whose weights are a pickle that, if unpickled unsafely, creates a marker file."""
    folder = w / "ckpt" / "pickled"
    g = tiny_generator("ddpm", image_size=28)
    save_checkpoint(folder, g.model, "tiny", "ddpm", g.defaults)
    (folder / "model.safetensors").unlink()

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {w / 'PWNED'}",))

    torch.save({"weights": Payload()}, folder / "model.pt")
    return folder


def _diffusers_pipelines(w: Path) -> None:
    import diffusers

    from tests.pipelines import save_tiny_sd

    save_tiny_sd(w / "pipe-sd")
    shutil.copytree(w / "pipe-sd", w / "pipe-nounet")
    shutil.rmtree(w / "pipe-nounet" / "unet")
    shutil.copytree(w / "pipe-sd", w / "pipe-class")
    index = json.loads((w / "pipe-class" / "model_index.json").read_text())
    (w / "pipe-class" / "model_index.json").write_text(json.dumps({**index, "_class_name": "NoSuchPipeline"}))

    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4, down_block_types=("DownBlock2D",) * 2,
                                 up_block_types=("UpBlock2D",) * 2)
    pipe = diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=100))
    pipe.save_pretrained(w / "pipe-bin", safe_serialization=False)
    pipe.save_pretrained(w / "pipe-huge")
    config = json.loads((w / "pipe-huge" / "unet" / "config.json").read_text())
    config["block_out_channels"] = [8, 20000]
    (w / "pipe-huge" / "unet" / "config.json").write_text(json.dumps(config))
    pipe.save_pretrained(w / "pipe-remote")
    index = json.loads((w / "pipe-remote" / "model_index.json").read_text())
    index["_class_name"] = ["my_module", "MyPipeline"]  # custom code: needs trust_remote_code, never passed
    (w / "pipe-remote" / "model_index.json").write_text(json.dumps(index))


def _images(w: Path) -> None:
    rng = np.random.default_rng(0)
    base = (rng.random((6, 28, 28)) * 255).astype(np.uint8)
    for name, convert in {"u8": lambda a: Image.fromarray(a), "u16": lambda a: Image.fromarray(
            (a.astype(np.uint16) * 257)), "palette": lambda a: Image.fromarray(a).convert("P"),
            "alpha": lambda a: Image.fromarray(a).convert("LA")}.items():
        (w / "img" / name).mkdir(parents=True)
        for i, a in enumerate(base):
            convert(a).save(w / "img" / name / f"{i}.png")
    (w / "img" / "cmyk").mkdir()
    for i, a in enumerate(base):
        Image.fromarray(a).convert("CMYK").save(w / "img" / "cmyk" / f"{i}.tiff")  # lossless, unlike JPEG
    shutil.copytree(w / "img" / "u8", w / "img" / "corrupt")
    (w / "img" / "corrupt" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (w / "img" / "corrupt" / "text.png").write_text("not an image")
    (w / "img" / "corrupt" / "empty.png").write_bytes(b"")
    (w / "img" / "bomb").mkdir()
    Image.new("1", (40000, 40000)).save(w / "img" / "bomb" / "bomb.png")  # 1.6 G pixels, a few KB on disk
    (w / "img" / "empty").mkdir()
    np.savez(w / "ok.npz", images=base[..., None])
    np.savez(w / "labels11.npz", images=base[..., None], labels=np.full(6, 11))
    np.savez(w / "float2.npz", images=base[..., None] / 100.0)
    np.savez(w / "shape.npz", images=base[:, 0])
    np.save(w / "object.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    os.replace(w / "object.npy", w / "object.npz")
    hostile = ["../../../escape", "/abs/path", "a\0b", "x" * 500, "\u00e9\u00e8 shoe \U0001f45f"]
    (w / "prompts.txt").write_text("\n".join(hostile) + "\n")


def _stats_equal(a: str, b: str) -> Callable[[Path, str], bool]:
    """The features of the folder read through one mode equal those of the 8-bit original."""
    def check(out: Path, _: str) -> bool:
        x, y = np.load(out / a), np.load(out.parent.parent / b)
        return bool(np.allclose(x["mu"], y["mu"], atol=1e-4))
    return check


def _cases(w: Path) -> list[Case]:
    g, sd1 = "{w}/ckpt/ddpm", "{w}/ckpt/sd1"
    cases = [
        Case("names", "checkpoint named ../../escape/X: quality", ["quality", "-g", "{w}/ckpt/escape_X", "--n", "2",
                                                                  "--out", "{out}"], "ok"),
        Case("names", "checkpoint named an absolute path: detect train",
             ["detect", "train", "--train-generators", "{w}/ckpt/abs", "--n-per-generator", "2", "--steps", "1",
              "--batch-size", "2", "--cache", "{out}/c", "--out", "{out}"], "ok"),
        Case("names", "checkpoint named ../../escape/X: watermark robustness",
             ["watermark", "robustness", "--keys", "1", "-g", "{w}/ckpt/escape_X", "--n", "2", "--attacks", "clean",
              "--no-quality", "--steps", "2", "--inv-steps", "2", "--no-progress", "--out", "{out}"], "ok"),
        Case("names", "checkpoint named ../../escape/X: benchmark",
             ["benchmark", "{w}/ckpt/escape_X", "--n", "8", "--steps", "2", "--reference", "{w}/ok.npz",
              "--device", "cpu", "--no-progress", "--out", "{out}"], "ok"),
        Case("names", "prompt file with ../, absolute, NUL, 500-char and Unicode prompts: audit bias",
             ["audit", "bias", "-g", sd1, "--prompts", "{w}/prompts.txt", "--n-per-prompt", "1", "--steps", "2",
              "--n-boot", "10", "--out", "{out}"], "ok"),
        Case("configs", "2.4 G-parameter config", ["sample", "-g", "{w}/ckpt/huge", "--out", "{out}/g.png"], "error"),
        Case("configs", "4096 px DiT (16 TiB of attention)", ["sample", "-g", "{w}/ckpt/wide", "--out", "{out}/g.png"],
             "error"),
        Case("configs", "config.json not JSON", ["sample", "-g", "{w}/ckpt/notjson", "--out", "{out}/g.png"],
             "error"),
        Case("configs", "config without a model", ["sample", "-g", "{w}/ckpt/nomodel", "--out", "{out}/g.png"],
             "error"),
        Case("configs", "unknown backbone", ["sample", "-g", "{w}/ckpt/backbone", "--out", "{out}/g.png"], "error"),
        Case("configs", "unknown config field", ["sample", "-g", "{w}/ckpt/field", "--out", "{out}/g.png"], "error"),
        Case("configs", "weights missing", ["sample", "-g", "{w}/ckpt/noweights", "--out", "{out}/g.png"], "error"),
        Case("configs", "weights of another shape", ["sample", "-g", "{w}/ckpt/shape", "--out", "{out}/g.png"],
             "error"),
        Case("configs", "pickled weights, untrusted", ["sample", "-g", "{w}/ckpt/pickled", "--out", "{out}/g.png"],
             "error"),
        Case("configs", "malicious pickle, trusted (weights_only refuses it)",
             ["sample", "-g", "{w}/ckpt/pickled", "--trust-pickle", "--out", "{out}/g.png"], "error",
             lambda out, _: not (out.parent / "PWNED").exists()),
        Case("configs", "unknown generator name", ["sample", "-g", "nonexistent", "--out", "{out}/g.png"], "error"),
        Case("configs", "diffusers folder with pickled .bin weights",
             ["sample", "-g", "{w}/pipe-bin", "--n", "2", "--steps", "2", "--out", "{out}/g.png"], "error"),
        Case("configs", "diffusers UNet config edited to 3 G parameters",
             ["sample", "-g", "{w}/pipe-huge", "--n", "2", "--steps", "2", "--out", "{out}/g.png"], "error"),
        Case("configs", "diffusers pipeline asking for custom code",
             ["sample", "-g", "{w}/pipe-remote", "--n", "2", "--steps", "2", "--out", "{out}/g.png"], "error"),
        Case("configs", "diffusers folder missing its unet",
             ["sample", "-g", "{w}/pipe-nounet", "--prompt", "a shoe", "--n", "1", "--steps", "1",
              "--out", "{out}/g.png"], "error"),
        Case("configs", "diffusers folder naming a pipeline class diffusers does not have",
             ["sample", "-g", "{w}/pipe-class", "--prompt", "a shoe", "--n", "1", "--steps", "1",
              "--out", "{out}/g.png"], "error"),
        Case("configs", "quality on a pipeline folder (the judge reads 28 px grey)",
             ["quality", "-g", "{w}/pipe-sd", "--n", "2", "--out", "{out}"], "error"),
        Case("configs", "audit score-error on a pipeline folder (no pixel-space denoiser)",
             ["audit", "score-error", "-g", "{w}/pipe-sd", "--data", "fashion", "--out", "{out}"], "error"),
        Case("configs", "--dtype float16 on a bundled-style checkpoint",
             ["sample", "-g", g, "--dtype", "float16", "--n", "1", "--steps", "1", "--out", "{out}/g.png"], "error"),
        Case("configs", "--height on a fixed-size checkpoint",
             ["sample", "-g", g, "--height", "32", "--n", "1", "--steps", "1", "--out", "{out}/g.png"], "error"),
        Case("names", "a prompt over CLIP's 77 tokens: truncated with one warning",
             ["sample", "-g", "{w}/pipe-sd", "--prompt", "a very long shoe " * 40, "--n", "1", "--steps", "1",
              "--out", "{out}/g.png"], "ok",
             lambda out, said: (out / "g.png").is_file() and said.count("exceed the tokenizer's 77 tokens") == 1),
        Case("images", "watermark detect against a pipeline: 28x28 RGB and grey files beside 16x16 ones get their rows",
             ["watermark", "detect", "-g", "{w}/pipe-sd", "--key", "{w}/pipe-key.safetensors", "--inv-steps", "1",
              "{w}/rgb28.png", "{w}/img/u8/0.png", "{w}/pipe-img", "--out", "{out}/d.csv"], "ok",
             lambda out, _: list(pd.read_csv(out / "d.csv")["error"].fillna("")) == [
                 "size 28x28; the generator makes 16x16 images",
                 "1-channel image; the generator makes 3-channel images", "", ""]),
        Case("images", "detect train on a folder of 6 px images",
             ["detect", "train", "--train-generators", "", "--real", "{w}/img/tiny6", "--fake", "{w}/img/tiny6",
              "--steps", "1", "--out", "{out}"], "error"),
        Case("configs", "detector config naming vit_h_14", ["detect", "predict", "{w}/img/u8/0.png", "--detector",
                                                             "{w}/det-vit"], "error"),
    ]
    for mode in ("u16", "palette", "alpha", "cmyk"):
        cases.append(Case("images", f"{mode} images read as their 8-bit grey values: stats",
                          ["stats", f"{{w}}/img/{mode}", "--device", "cpu", "--out", "{out}/s.npz"], "ok",
                          _stats_equal("s.npz", "u8.npz")))
    cases += [
        Case("images", "a folder with truncated, text and empty .png files: benchmark reports them",
             ["benchmark", "{w}/img/corrupt", "--n", "6", "--reference", "{w}/ok.npz", "--device", "cpu",
              "--no-progress", "--out", "{out}"], "ok",
             lambda out, _: int(pd.read_csv(out / "benchmark.csv")["n_skipped"].iloc[0]) == 3),
        Case("images", "the same folder: watermark detect reports them in rows",
             ["watermark", "detect", "-g", sd1, "--key", "{w}/key.safetensors", "--inv-steps", "2",
              "{w}/img/corrupt", "--out", "{out}/d.csv"], "ok",
             lambda out, _: int((pd.read_csv(out / "d.csv")["error"].fillna("") != "").sum()) == 3),
        Case("images", "a 1.6 G-pixel PNG bomb: detect predict reports it",
             ["detect", "predict", "{w}/img/bomb/bomb.png", "--detector", "{w}/det", "--out", "{out}/p.csv"], "ok",
             lambda out, _: pd.read_csv(out / "p.csv")["error"].notna().all()),
        Case("images", "an empty folder", ["stats", "{w}/img/empty", "--out", "{out}/s.npz"], "error"),
        Case("images", ".npz with an object (pickle) array", ["stats", "{w}/object.npz", "--out", "{out}/s.npz"],
             "error"),
        Case("images", ".npz labels outside 0-9: benchmark (its table records the failed row)",
             ["benchmark", "{w}/labels11.npz", "--n", "6", "--reference", "{w}/ok.npz", "--device", "cpu", "--out",
              "{out}"], "error", reports=True),
        Case("images", ".npz floats outside [0, 1]", ["stats", "{w}/float2.npz", "--out", "{out}/s.npz"], "error"),
        Case("images", ".npz of the wrong rank", ["stats", "{w}/shape.npz", "--out", "{out}/s.npz"], "error"),
        Case("keys", "a key file that is not a key", ["watermark", "detect", "-g", sd1, "--key", "{w}/ok.npz",
                                                        "{w}/img/u8/0.png"], "error"),
        Case("keys", "a key of another shape", ["watermark", "detect", "-g", "{w}/ckpt/small", "--key",
                                                "{w}/key.safetensors", "{w}/img/u8/0.png"], "error"),
        Case("paths", "--out below a file", ["quality", "-g", g, "--n", "2", "--out", "{w}/ok.npz/x"], "error"),
        Case("paths", "--out under /dev/null", ["watermark", "detect", "-g", sd1, "--key", "{w}/key.safetensors",
                                                "{w}/img/u8/0.png", "--out", "/dev/null/x/d.csv"], "error"),
        Case("paths", "--out is an existing file", ["detect", "eval", "--detector", "{w}/det", "--generators", g,
                                                     "--n", "2", "--out", "{w}/ok.npz"], "error"),
    ]
    cases += _option_cases(g, sd1)
    return cases


def _option_cases(g: str, sd1: str) -> list[Case]:
    """Out-of-range, non-finite and malformed values, a few per command."""
    base = {
        "sample": ["sample", "-g", sd1, "--prompt", "a shoe", "--n", "2", "--out", "{out}/g.png"],
        "quality": ["quality", "-g", g, "--n", "2", "--out", "{out}"],
        "benchmark": ["benchmark", g, "--n", "6", "--reference", "{w}/ok.npz", "--device", "cpu", "--out", "{out}"],
        "keygen": ["watermark", "keygen", "-g", sd1, "--out", "{out}/k.safetensors"],
        "embed": ["watermark", "embed", "-g", sd1, "--key", "{w}/key.safetensors", "--n", "2", "--out", "{out}"],
        "wdetect": ["watermark", "detect", "-g", sd1, "--key", "{w}/key.safetensors", "{w}/img/u8/0.png", "--out",
                    "{out}/d.csv"],
        "robustness": ["watermark", "robustness", "--keys", "1", "-g", sd1, "--n", "2", "--attacks", "clean",
                       "--no-quality", "--out", "{out}"],
        "forgery": ["watermark", "forgery", "-g", sd1, "--keys", "1", "--known", "1", "--targets", "1", "--steps", "2",
                    "--inv-steps", "1", "--out", "{out}"],
        "dtrain": ["detect", "train", "--train-generators", g, "--n-per-generator", "2", "--steps", "1",
                   "--batch-size", "2", "--cache", "{out}/c", "--out", "{out}"],
        "deval": ["detect", "eval", "--detector", "{w}/det", "--generators", g, "--n", "2", "--cache", "{out}/c",
                  "--out", "{out}"],
        "score": ["audit", "score-error", "--data", "gmm2d", "-g", "exact", "--analyses", "error", "--levels", "0,1",
                  "--n", "20", "--n-boot", "10", "--out", "{out}"],
        "bias": ["audit", "bias", "-g", sd1, "--n-per-prompt", "1", "--out", "{out}"],
        "train": ["train", "--preset", "ddpm", "--device", "cpu", "--out", "{out}"],
        "stats": ["stats", "{w}/img/u8", "--out", "{out}/s.npz"],
    }
    bad = {
        "sample": [("--steps", "0"), ("--guidance", "-1"), ("--guidance", "nan"), ("--eta", "-1"), ("--eta", "2"),
                   ("--n", "0"), ("--seed", "-1"), ("--seed", str(2**32)), ("--sampler", "bogus")],
        "quality": [("--n", "0"), ("--seed", "-1")],
        "benchmark": [("--steps", "0"), ("--fid-resamples", "-1"), ("--n", "1"), ("--batch-size", "0"),
                      ("--seed", str(2**32)), ("--guidance", "inf")],
        "keygen": [("--radius", "0"), ("--radius", "100"), ("--inner-radius", "9"), ("--count", "0"),
                   ("--channel", "3"), ("--seed", "-1")],
        "embed": [("--n", "0"), ("--steps", "0"), ("--guidance", "nan"), ("--seed", "-1")],
        "wdetect": [("--alpha", "0"), ("--alpha", "1"), ("--inv-steps", "0"), ("--fixed-point", "-1")],
        "robustness": [("--n", "0"), ("--n-unmarked", "0"), ("--keys", "0"), ("--key-seed", "-1"), ("--radius", "-1"),
                       ("--attacks", "bogus:1"),
                       ("--baselines", "nope"), ("--alpha", "2")],
        "forgery": [("--known", "0"), ("--known", "1,x"), ("--known", ""), ("--targets", "0"), ("--keys", "0"),
                    ("--radius", "100"), ("--seed", "104729"), ("--alpha", "nan")],
        "dtrain": [("--steps", "0"), ("--batch-size", "1"), ("--lr", "0"), ("--lr", "nan"), ("--dark-p", "2"),
                   ("--stem-stride", "3"), ("--local-block", "5"), ("--seed", "-1")],
        "deval": [("--n", "0"), ("--perturbations", "bogus"), ("--seed", "-1")],
        "score": [("--n", "1"), ("--n-boot", "0"), ("--levels", "1:0:1"), ("--seed", "-1"),
                  ("--analyses", "bogus")],
        "bias": [("--n-per-prompt", "0"), ("--q", "0"), ("--q", "1"), ("--n-boot", "0"), ("--min-confidence", "2"),
                 ("--steps", "0"), ("--guidance", "-1"), ("--batch-size", "0"), ("--attributes", "bogus"),
                 ("--correct", "judge=bag:2:2"), ("--prompts", "nope")],
        "train": [("--steps", "0"), ("--steps", "-5")],
        "stats": [("--batch-size", "0"), ("--features", "bogus")],
    }
    return [Case("options", f"{c} {flag} {value}", [*base[c], flag, value], "error")
            for c in bad for flag, value in bad[c]]


def _prepare(w: Path) -> None:
    for kind in ("ddpm", "sd1"):
        _checkpoint(w, kind, kind)
    _checkpoint(w, f"../../{w.name}-escape/X").rename(w / "ckpt" / "escape_X")
    _checkpoint(w, str(Path(tempfile.gettempdir()) / "diffeval-absolute" / "X")).rename(w / "ckpt" / "abs")
    edits = {
        "huge": lambda c: c["model"]["backbone_config"].update(base_channels=2000),
        "field": lambda c: c["model"].update(surprise=1),
        "backbone": lambda c: c["model"].update(backbone="transformer-xl"),
        "nomodel": lambda c: c.pop("model"),
    }
    for name, edit in edits.items():
        _checkpoint(w, "tiny", edit=edit).rename(w / "ckpt" / name)
    _checkpoint(w, "tiny", "dit", lambda c: c["model"].update(image_size=4096)).rename(w / "ckpt" / "wide")
    (_checkpoint(w, "tiny").rename(w / "ckpt" / "notjson") / "config.json").write_text("{not json")
    (_checkpoint(w, "tiny").rename(w / "ckpt" / "noweights") / "model.safetensors").unlink()
    shape = _checkpoint(w, "tiny").rename(w / "ckpt" / "shape")
    shutil.copy(w / "ckpt" / "sd1" / "model.safetensors", shape / "model.safetensors")
    small = w / "ckpt" / "small"
    g = tiny_generator("sd1")
    save_checkpoint(small, g.model, "small", "sd1", g.defaults)
    _pickled_checkpoint(w)
    _diffusers_pipelines(w)
    _images(w)
    runner = CliRunner()
    for args in (["watermark", "keygen", "-g", str(w / "ckpt" / "sd1"), "--seed", "1", "--out",
                  str(w / "key.safetensors")],
                 ["watermark", "keygen", "-g", str(w / "pipe-sd"), "--seed", "1", "--out",
                  str(w / "pipe-key.safetensors")],
                 ["sample", "-g", str(w / "pipe-sd"), "--n", "2", "--steps", "1", "--prompt", "a bag", "--out",
                  str(w / "pipe-grid.png"), "--npz", str(w / "pipe-img.npz")],
                 ["detect", "train", "--train-generators", str(w / "ckpt" / "ddpm"), "--n-per-generator", "4",
                  "--steps", "1", "--batch-size", "4", "--cache", str(w / "dcache"), "--out", str(w / "det")],
                 ["stats", str(w / "img" / "u8"), "--device", "cpu", "--out", str(w / "u8.npz")]):
        r = runner.invoke(main, args, obj={})
        assert r.exit_code == 0, r.output
    (w / "pipe-img").mkdir()
    for i, a in enumerate(np.load(w / "pipe-img.npz")["images"]):
        Image.fromarray(a).save(w / "pipe-img" / f"{i}.png")
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(w / "rgb28.png")
    (w / "img" / "tiny6").mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(w / "img" / "tiny6" / f"{i}.png")
    shutil.copytree(w / "det", w / "det-vit")
    config = json.loads((w / "det-vit" / "config.json").read_text())
    config["model"]["resnet"] = "vit_h_14"
    (w / "det-vit" / "config.json").write_text(json.dumps(config))


def _listing(roots: list[Path], skip: Path) -> set[Path]:
    return {p for r in roots if r.is_dir() for p in r.rglob("*") if p.is_file() and not p.is_relative_to(skip)}


def classify(case: Case, w: Path, runner: CliRunner) -> dict:
    out = w / "runs" / f"case{len(list((w / 'runs').glob('case*'))):03d}"
    roots = [w, Path.cwd(), cache_dir(), Path(tempfile.gettempdir()) / "diffeval-absolute",
             w.parent / f"{w.name}-escape"]
    before = _listing(roots, out)
    args = [a.format(w=w, out=out) for a in case.args]
    with warnings.catch_warnings(record=True) as caught:  # what the CLI prints as "warning: ..." lines
        warnings.simplefilter("always")
        result = runner.invoke(main, args, obj={})
    warned = [str(x.message) for x in caught if not issubclass(x.category, DeprecationWarning)]
    added = sorted(str(p) for p in _listing(roots, out) - before if not p.is_relative_to(cache_dir()))
    lines = [x for x in result.output.splitlines() if x.strip() and not x.startswith("warning:")
             and "it/s" not in x and "img/s" not in x]
    traceback = "Traceback" in result.output or (result.exception is not None
                                                  and not isinstance(result.exception, SystemExit))
    refused = result.exit_code != 0
    one_line = refused and len(lines) >= 1 and lines[-1].startswith("error:") and sum(
        x.startswith("error:") for x in lines) == 1
    said = result.output + "".join(f"warning: {x}\n" for x in warned)
    checked = case.check is None or (refused == (case.expect == "error") and _safe_check(case.check, out, said))
    half = refused and not case.reports and out.exists() and any(
        p.is_file() and not p.name.startswith(".") for p in out.rglob("*"))
    if traceback:
        outcome = "traceback"
    elif (case.expect == "error") != refused or not checked:
        outcome = "silent wrong" if not refused else "refused wrongly"
    else:
        outcome = "clear error" if refused and one_line else "accepted" if not refused else "unclear error"
    return {"group": case.group, "case": case.what, "expect": case.expect, "exit": result.exit_code,
            "outcome": outcome, "outside_out": len(added), "lost": bool(half),
            "message": (lines[-1] if lines else "")[:160], "warning": (warned[0] if warned else "")[:160],
            "outside_files": "; ".join(added[:3])}


def _safe_check(check, out: Path, output: str) -> bool:
    try:
        return bool(check(out, output))
    except Exception:  # noqa: BLE001 - a check that cannot read its files failed
        return False


def run_suite() -> pd.DataFrame:
    """Every case in a fresh temporary workspace (and working folder): one row per case."""
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp) / "ws"
        (w / "runs").mkdir(parents=True)
        os.chdir(Path(tmp))
        try:
            _prepare(w)
            runner = CliRunner()
            return pd.DataFrame([classify(case, w, runner) for case in _cases(w)])
        finally:
            os.chdir(here)


def counts_of(table: pd.DataFrame) -> dict[str, int]:
    """The bad-input table's counts: tried, clear error, accepted, and the four that must be 0."""
    return {
        "tried": len(table), "clear error": int((table["outcome"] == "clear error").sum()),
        "accepted (read as it is)": int((table["outcome"] == "accepted").sum()),
        "traceback": int((table["outcome"] == "traceback").sum()),
        "unclear error": int((table["outcome"] == "unclear error").sum()),
        "silent wrong": int(table["outcome"].isin(["silent wrong", "refused wrongly"]).sum()),
        "outside --out": int((table["outside_out"] > 0).sum()), "lost": int(table["lost"].sum())}


def main_() -> None:
    table = run_suite()
    counts = pd.DataFrame([counts_of(table)])
    results = ROOT / "benchmarks" / "results"
    write_table(table, results, "bad_inputs", {"script": "benchmarks/bad_inputs.py"})
    write_table(counts, results, "bad_inputs_counts", {"script": "benchmarks/bad_inputs.py"})
    print(counts.to_string(index=False))
    wrong = table[~table["outcome"].isin(["clear error", "accepted"]) | (table["outside_out"] > 0) | table["lost"]]
    print(wrong.to_string(index=False) if len(wrong) else "every case: a clear error or read as it is")


if __name__ == "__main__":
    main_()
