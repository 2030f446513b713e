"""Packaging: one import name, a normal (non-editable) install beside PyPI's ``watermark``, the layers,
lint-free code, thin CLI commands, and a ``--help`` that imports no torch."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("diffeval", "generators", "watermark", "detectors", "audits")
OLD_NAMES = {"generators", "watermark", "detectors", "audits"}


def _sources(*folders: str):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_module_imports_a_folder_by_its_old_top_level_name():
    """Every import of the project goes through the one name ``diffeval`` (the folders install under it)."""
    bad = []
    for path in _sources(*FOLDERS, "tests", "benchmarks"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            bad += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in OLD_NAMES]
    assert not bad, bad


def _function_lengths():
    for path in _sources(*FOLDERS):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]  # the docstring
                is_command = any("command" in ast.unparse(d) for d in node.decorator_list)
                body_lines = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1, \
                    is_command, body_lines


def test_no_function_over_60_lines_and_no_click_command_over_8():
    """Outside tests and benchmarks: functions fit on a screen; a CLI command only turns options into a run."""
    long = [(name, n) for name, n, _, _ in _function_lengths() if n > 60]
    fat = [(name, b) for name, _, is_command, b in _function_lengths() if is_command and b > 8]
    assert not long and not fat, (long, fat)
    assert sum(1 for _, _, is_command, _ in _function_lengths() if is_command) >= 14  # the check sees the commands


COMMANDS = [[], ["train"], ["sample"], ["quality"], ["benchmark"], ["stats"], ["watermark"], ["watermark", "keygen"],
            ["watermark", "embed"], ["watermark", "detect"], ["watermark", "robustness"], ["detect"],
            ["detect", "train"], ["detect", "eval"], ["detect", "predict"], ["audit"], ["audit", "score-error"],
            ["audit", "bias"]]


def test_every_help_imports_no_torch():
    """``diffeval [GROUP] [COMMAND] --help`` prints its help without importing torch, numpy or pandas."""
    code = ("import sys\nfrom diffeval.cli import main\n"
            f"for args in {COMMANDS!r}:\n"
            "    try:\n        main(args + ['--help'], obj={})\n"
            "    except SystemExit as e:\n        assert e.code == 0, args\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'pandas') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout and out.stdout.count("Usage:") == len(COMMANDS)


def test_doctests_run():
    """The examples in the package docstrings are real doctests."""
    import doctest

    import diffeval.benchmark
    import diffeval.generators

    for module in (diffeval.generators, diffeval.benchmark):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted >= 2, (module.__name__, result)


@pytest.mark.slow
def test_normal_install_beside_pypi_watermark(tmp_path):
    """A non-editable install puts only ``diffeval`` on the path, and PyPI's ``watermark`` (a Jupyter extension
    with a top-level ``watermark`` package) installs beside it: both import, neither overwrites the other."""
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site")]
    wheel = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp_path / "dl"),
                            "watermark"], capture_output=True, text=True, timeout=300)
    if wheel.returncode != 0:
        pytest.skip(f"PyPI's watermark cannot be downloaded here: {wheel.stderr.strip().splitlines()[-1:]}")
    subprocess.run([*pip, str(ROOT)], check=True, timeout=600, cwd=tmp_path)
    with_deps = [a for a in pip if a != "--no-deps"]  # PyPI's watermark imports IPython
    subprocess.run([*with_deps, *map(str, (tmp_path / "dl").glob("*.whl"))], check=True, timeout=600)
    for name in ("diffeval", "watermark"):
        assert (tmp_path / "site" / name / "__init__.py").is_file(), name
    assert not any((tmp_path / "site" / name).exists() for name in ("generators", "detectors", "audits"))
    code = ("import watermark, diffeval, diffeval.watermark, diffeval.generators, diffeval.detectors, diffeval.audits\n"
            "from diffeval.watermark import make_key\nfrom diffeval.generators import bundled_names\n"
            "assert hasattr(watermark, 'watermark') and not hasattr(watermark, 'make_key')\n"
            f"assert diffeval.__file__.startswith({str(tmp_path)!r}), diffeval.__file__\n"
            "assert bundled_names() == ['ddpm', 'sd1', 'sd2', 'dit', 'sd3', 'sd3-reflow']\n"
            "from diffeval.generators.autoencoder import load_autoencoder\n"
            "assert load_autoencoder().latent_shape == (3, 14, 14)\nprint('ok')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.slow
def test_the_layer_contract_fails_on_an_upward_import(tmp_path):
    """lint-imports keeps the contract on the package as it is, and breaks it when the bottom layer (diffeval.io)
    imports the CLI: the check in .ci/lint can fail."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(ROOT)],
                   check=True, timeout=600, cwd=tmp_path)
    lint = [str(Path(sys.executable).parent / "lint-imports"), str(ROOT / "pyproject.toml")]
    env = {**os.environ, "PYTHONPATH": str(site)}
    kept = subprocess.run(lint, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert kept.returncode == 0 and "1 kept, 0 broken" in kept.stdout, kept.stdout + kept.stderr
    with open(site / "diffeval" / "io.py", "a") as f:
        f.write("\nimport diffeval.cli  # an upward import\n")
    broken = subprocess.run(lint, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert broken.returncode != 0 and "diffeval.io is not allowed to import diffeval.cli" in broken.stdout
