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
    "3 Station",
    "4 Codecs",
    "5 Start-up",
    "6 Ledger",
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def quick() -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_quick_run_describes_itself(quick: list[dict[str, Any]]) -> None:
    assert isinstance(quick, list) and quick
    for row in quick:
        assert row["quick"] is True
        machine = row["machine"]
        assert machine["cores"] >= 1 and machine["python"] and machine["date"]
    ids = [row["figure"] for row in quick]
    assert len(ids) == len(set(ids)), "figure ids must be unique to be tracked from run to run"


@pytest.mark.slow
@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_produced_a_row_with_numbers(
    quick: list[dict[str, Any]], figure: str
) -> None:
    rows = [row for row in quick if row["title"].startswith(figure + ":")]
    assert rows, f"figure {figure!r} produced no row"
    assert not [row for row in rows if "FAILED" in row["title"]], rows
    measured = [row for row in rows if row["value"] is not None]
    assert measured, f"figure {figure!r} measured nothing: {rows}"
    for row in measured:
        assert _number(row["value"]) and row["runs"] >= 1, row
        spread = row["spread"]["value"]
        assert spread["min"] <= spread["median"] <= spread["max"], row
        for key in ("figure", "unit", "floor", "ratio", "goal", "met", "note"):
            assert key in row, (key, row)
    with_goal = [row for row in rows if row["goal"] is not None and row["ratio"] is not None]
    assert with_goal, f"figure {figure!r} has no ratio with a goal beside it"
    for row in with_goal:
        assert _number(row["ratio"]) and _number(row["goal"]), row
        assert isinstance(row["met"], bool), row
