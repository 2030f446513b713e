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
