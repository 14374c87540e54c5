"""``python -m bench``: run the benchmark figures and print one table.

Each figure runs in turn; one that fails becomes a row saying why, so the table is always whole
and CI (``--quick``) sees which figure broke. Nothing here asserts a time: goals are printed
beside the ratios, for people to read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .stats import Row, Settings, fmt_sample

FAILED = "FAILED"
FIGURES: dict[str, tuple[str, str]] = {
    "zvt": ("bench.zvt_check", "1 ZVT check"),
    "adb": ("bench.adb_roundtrip", "2 ADB round trip"),
    "station": ("bench.station", "3 Station"),
    "codecs": ("bench.codecs", "4 Codecs"),
    "startup": ("bench.startup", "5 Start-up"),
    "ledger": ("bench.ledger_verify", "6 Ledger"),
}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "processor": platform.machine(),
    }


def run_figure(key: str, settings: Settings) -> list[Row]:
    """One figure's rows, or a row saying why it failed."""
    module_name, title = FIGURES[key]
    started = time.perf_counter()
    try:
        module = __import__(module_name, fromlist=["run"])
        runner: Callable[[Settings], list[Row]] = module.run
        rows = runner(settings)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        rows = [Row(title, FAILED, None, "", note=f"{type(exc).__name__}: {exc}")]
    took = time.perf_counter() - started
    print(f"bench: figure {title} took {took:.1f} s", file=sys.stderr, flush=True)
    return rows


def render(rows: list[Row], info: dict[str, Any], settings: Settings) -> None:
    """The table (rich), then the notes it refers to."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    mode = "QUICK (small sizes: not results)" if settings.quick else "full"
    table = Table(
        title=escape(
            f"posdiag bench, {mode}: {info['date']}, {info['cores']} cores, "
            f"Python {info['python']}, median [min–max] of {settings.runs} runs"
        ),
        title_justify="left",
    )
    for column in ("figure", "measured", "floor", "ratio", "goal", "met?"):
        table.add_column(column, overflow="fold")
    notes: list[str] = []
    for row in rows:
        ratio = "—"
        if row.ratio is not None:
            ratio = f"{fmt_sample(row.ratio)}\n{row.ratio_label}"
        measured = fmt_sample(row.measured, row.unit) if row.measured else "—"
        met = {None: "—", True: "[green]yes[/]", False: "[red]NO[/]"}[row.met]
        marker = ""
        if row.note:
            notes.append(row.note)
            marker = f" [{len(notes)}]"
        floor = fmt_sample(row.floor, row.floor_unit or row.unit) if row.floor else "—"
        table.add_row(
            escape(f"{row.figure}: {row.name}{marker}"),
            escape(measured),
            escape(floor),
            escape(ratio),
            str(row.goal) if row.goal else "—",
            met,
        )
    console.print(table)
    for number, note in enumerate(notes, start=1):
        console.print(f"[{number}] {note}", highlight=False, markup=False)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the figures, print the table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds (CI)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(FIGURES),
        metavar="FIGURE",
        help=f"run only this figure ({', '.join(FIGURES)}); may repeat",
    )
    parser.add_argument("--runs", type=int, help="runs per measurement (default 3 quick, 5 full)")
    parser.add_argument(
        "--json", action="store_true", help="a JSON array on stdout, one object per figure"
    )
    args = parser.parse_args(argv)
    settings = Settings.make(args.quick, args.runs)
    from posdiag.agent.logs import configure_logging

    configure_logging("console", "error")  # protocol logs would drown the figures (and cost time)
    info = machine()
    rows: list[Row] = []
    for key in args.only or list(FIGURES):
        rows.extend(run_figure(key, settings))
    if args.json:
        # One array, an object per figure, so a tracker can diff runs; the machine and the
        # mode are on every object (a quick figure must never be mistaken for a result).
        context = {"quick": settings.quick, "machine": info}
        print(json.dumps([{**row.to_json(), **context} for row in rows], indent=2))
    else:
        render(rows, info, settings)
    return 1 if any(row.name == FAILED for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
