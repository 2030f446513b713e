"""The bad-input table (benchmarks/bad_inputs.py, about 110 hostile or careless inputs through every command):
no traceback, no unclear error, no silent wrong result, no file outside --out, nothing half-written."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bad_inputs.py"


def test_the_bad_input_table_has_zero_in_its_last_columns():
    spec = importlib.util.spec_from_file_location("bad_inputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    table = module.run_suite()
    counts = module.counts_of(table)
    print(counts)
    wrong = table[~table["outcome"].isin(["clear error", "accepted"]) | (table["outside_out"] > 0) | table["lost"]]
    assert wrong.empty, wrong.to_string()
    assert counts["tried"] >= 100 and counts["clear error"] >= 80 and counts["accepted (read as it is)"] >= 10
