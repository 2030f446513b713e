"""How long ``diffeval --help`` (and each command's ``--help``) takes, side by side with ``python -c pass``.

    python benchmarks/bench_cli_startup.py [--repeats 15]

Each command runs ``--repeats`` times in a fresh process (after one untimed warm-up that fills the OS file
cache); the table gives the median and best wall seconds and the ratio of the median to that of
``python -c pass`` in the same run, plus ``import torch`` for what a help text would cost if the CLI loaded
torch. Writes benchmarks/results/cli_startup.{csv,md} (atomic).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffeval.io import write_table  # noqa: E402

DIFFEVAL = str(Path(sys.executable).parent / "diffeval")
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "diffeval --help": [DIFFEVAL, "--help"],
    "diffeval benchmark --help": [DIFFEVAL, "benchmark", "--help"],
    "diffeval watermark robustness --help": [DIFFEVAL, "watermark", "robustness", "--help"],
    "diffeval audit bias --help": [DIFFEVAL, "audit", "bias", "--help"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def wall_seconds(cmd: list[str], repeats: int) -> list[float]:
    subprocess.run(cmd, check=True, capture_output=True)  # warm-up: the file cache, not the interpreter
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    rows = []
    for name, cmd in CASES.items():
        t = wall_seconds(cmd, args.repeats)
        rows.append({"command": name, "median_s": statistics.median(t), "best_s": min(t), "repeats": args.repeats})
    table = pd.DataFrame(rows)
    base = float(table.loc[table.command == "python -c pass", "median_s"].iloc[0])
    table["ratio_to_python"] = table["median_s"] / base
    load = os.getloadavg()[0]
    note = (f"Wall seconds of a fresh process, {args.repeats} runs after a warm-up; ratio = median / median of "
            f"`python -c pass` in the same run. {os.cpu_count()} cores, load average {load:.2f} at the end.")
    md = "# CLI start-up\n\n" + table.to_markdown(index=False, floatfmt=".3f") + "\n\n" + note
    write_table(table, args.out, "cli_startup", {"repeats": args.repeats, "load_average": load}, markdown=md)
    print(md)


if __name__ == "__main__":
    main()
