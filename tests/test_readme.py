"""The README's first lines give the two commands, and .ci/run runs exactly the test one."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    lines = ROOT.joinpath("README.md").read_text().splitlines()[:20]
    return [line.strip() for line in lines if "python3 -m venv" in line]


def test_readme_gives_two_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    main_job, test = commands
    assert "diffeval" in main_job and "pytest" in test
    ci = ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert test in [line.strip() for line in ci]


def test_the_pipeline_table_names_tests_that_exist():
    """Every test the README's families x commands table names is defined under tests/."""
    import re

    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("## Diffusers pipelines in every command"):text.index("## Tree-Ring watermarks")]
    names = set(re.findall(r"`(test_[a-z0-9_]+)`", section))
    sources = "".join(p.read_text() for p in ROOT.joinpath("tests").rglob("test_*.py"))
    assert len(names) >= 10 and not [n for n in names if f"def {n}(" not in sources]
