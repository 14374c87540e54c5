"""The benchmark suite runs: ``python -m bench --quick --json`` gives every figure a row of numbers.

It asserts that each figure ran and measured something, never how fast: times belong to the
suite's table and ``bench/README.md``, not to a test on a shared machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "1 ZVT check",
    "2 ADB round trip",
    "3 Station scaling",
    "4 Codecs",
    "5 Start-up",
    "6 Ledger verify",
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_quick_run_describes_itself(quick: dict[str, Any]) -> None:
    assert quick["schema"] == "posdiag.bench/1"
    assert quick["quick"] is True
    machine = quick["machine"]
    assert machine["cores"] >= 1 and machine["python"] and machine["date"]


@pytest.mark.slow
@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_produced_a_row_with_numbers(quick: dict[str, Any], figure: str) -> None:
    rows = [row for row in quick["rows"] if row["figure"] == figure]
    assert rows, f"figure {figure!r} produced no row"
    assert not [row for row in rows if row["name"] == "FAILED"], rows
    measured = [row for row in rows if row["measured"] is not None]
    assert measured, f"figure {figure!r} measured nothing: {rows}"
    for row in measured:
        sample = row["measured"]
        assert all(_number(sample[key]) for key in ("median", "min", "max")), row
        assert sample["min"] <= sample["median"] <= sample["max"], row
    with_goal = [row for row in rows if row["goal"] is not None and row["ratio"] is not None]
    assert with_goal, f"figure {figure!r} has no ratio with a goal beside it"
    for row in with_goal:
        assert _number(row["ratio"]["median"]), row
        assert isinstance(row["met"], bool), row
