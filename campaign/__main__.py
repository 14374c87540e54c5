"""``python -m campaign``: the reliability campaign; one table of counts, exit 1 on any defect.

Not a timed test: every section tries many hostile things and counts what went wrong, per kind
of defect. ``--quick`` is the CI size (the whole run under 3 minutes on 2 cores); the default is
the full size the issue asks for. Everything derives from ``--seed``, and all traffic stays on
loopback or in memory.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .common import ROOT, Outputs, SectionResult, Settings, progress

SECTIONS: dict[str, str] = {
    "codecs": "campaign.codecs",
    "sessions": "campaign.sessions",
    "kills": "campaign.kills",
    "tamper": "campaign.tamper",
    "certificates": "campaign.certs",
    "hostile": "campaign.hostile",
    "backends": "campaign.backends",
    "secrets": "campaign.secretsgrep",  # last: it greps what every other section wrote
}


def run_section(key: str, settings: Settings, outputs: Outputs) -> SectionResult:
    """One section's table, or a table saying why the section itself broke (a defect)."""
    started = time.monotonic()
    title, columns = key, ("broken",)
    try:
        module = importlib.import_module(SECTIONS[key])
        title, columns = module.TITLE, module.COLUMNS
        progress(f"section {title}…")
        result: SectionResult = module.run(settings, outputs)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        result = SectionResult(key, title, columns, failed=f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - started
    progress(f"section {title} took {result.seconds:.1f} s")
    return result


def machine() -> dict[str, Any]:
    """What the campaign ran on: the results file's header."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            total_kb = int(meminfo.readline().split()[1])
        ram = f"{total_kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        ram = "unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        commit = f"{commit}{' (modified)' if dirty else ''}" or "unknown"
    except OSError:
        commit = "unknown"
    from posdiag.agent import __version__

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(),
        "nproc": os.cpu_count(),
        "ram": ram,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "posdiag": __version__,
        "commit": commit,
    }


def table_markdown(results: list[SectionResult]) -> str:
    """One Markdown table per section: tried, then the defect columns; examples below."""
    lines: list[str] = []
    for result in results:
        lines.append(f"### {result.title} ({result.seconds:.0f} s)")
        lines.append("")
        header = ["", "tried", *result.columns]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        if result.failed:
            lines.append(f"| SECTION FAILED: {result.failed} | | " + " | " * len(result.columns))
        for row in result.rows:
            cells = [row.label + (f" ({row.info})" if row.info else ""), str(row.tried)]
            cells += [str(row.defects.get(column, 0)) for column in result.columns]
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
        total = ["**total**", str(result.tried)]
        total += [
            str(sum(row.defects.get(column, 0) for row in result.rows)) for column in result.columns
        ]
        lines.append("| " + " | ".join(total) + " |")
        examples = [
            f"- {row.label} / {column}: {example}"
            for row in result.rows
            for column, kept in row.examples.items()
            for example in kept
        ]
        if examples:
            lines.append("")
            lines.append("Defect examples:")
            lines.extend(examples)
        lines.append("")
    return "\n".join(lines)


def render(results: list[SectionResult], info: dict[str, Any], quick: bool, seed: int) -> None:
    """The tables on stdout (rich), then the defect examples."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    mode = "QUICK" if quick else "full"
    console.print(
        escape(
            f"posdiag campaign, {mode}, seed {seed}: {info['date']}, {info['nproc']} cores, "
            f"{info['ram']}, Python {info['python']}, posdiag {info['posdiag']} {info['commit']}"
        ),
        highlight=False,
    )
    for result in results:
        table = Table(
            title=escape(f"{result.title} ({result.seconds:.0f} s)"), title_justify="left"
        )
        table.add_column("", overflow="fold")
        table.add_column("tried", justify="right")
        for column in result.columns:
            table.add_column(column, justify="right")
        if result.failed:
            table.add_row(
                escape(f"SECTION FAILED: {result.failed}"), "", *("" for _ in result.columns)
            )
        for row in result.rows:
            cells = [
                f"[red]{row.defects[c]}[/]" if row.defects.get(c) else "0" for c in result.columns
            ]
            label = row.label + (f" ({row.info})" if row.info else "")
            table.add_row(escape(label), str(row.tried), *cells)
        totals = [str(sum(row.defects.get(c, 0) for row in result.rows)) for c in result.columns]
        table.add_row("[bold]total[/]", f"[bold]{result.tried}[/]", *totals)
        console.print(table)
        for row in result.rows:
            for column, kept in row.examples.items():
                for example in kept:
                    console.print(
                        f"  {row.label} / {column}: {example}", markup=False, highlight=False
                    )
    defects = sum(result.defects for result in results)
    console.print(
        f"{'[red]' if defects else '[green]'}{defects} defect(s)[/] in "
        f"{sum(result.tried for result in results)} tries"
    )


def record(results: list[SectionResult], info: dict[str, Any], quick: bool, seed: int) -> Path:
    """Write ``campaign/results/YYYY-MM-DD-<host>.md`` (date, machine, the tables)."""
    folder = ROOT / "campaign" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = folder / f"{day}-{info['host']}.md"
    defects = sum(result.defects for result in results)
    text = "\n".join(
        [
            f"# posdiag campaign {'(quick)' if quick else '(full)'}, {info['date']}",
            "",
            f"- machine: {info['host']}, {info['nproc']} cores (nproc), {info['ram']} RAM, "
            f"{info['platform']}",
            f"- Python {info['python']}, posdiag {info['posdiag']}, commit {info['commit']}",
            f"- seed {seed}; command: `python -m campaign {' '.join(sys.argv[1:])}`",
            f"- **{defects} defect(s)** in {sum(r.tried for r in results)} tries",
            "",
            table_markdown(results),
        ]
    )
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the sections, print the tables; 1 when any defect was found."""
    parser = argparse.ArgumentParser(prog="python -m campaign", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI size: the whole run in < 3 min")
    parser.add_argument("--seed", type=int, default=20261122, help="every random choice's seed")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SECTIONS),
        metavar="SECTION",
        help=f"run only this section ({', '.join(SECTIONS)}); may repeat",
    )
    parser.add_argument(
        "--record", action="store_true", help="also write campaign/results/DATE-HOST.md"
    )
    args = parser.parse_args(argv)
    from posdiag.agent.logs import configure_logging

    configure_logging("console", "error")  # protocol logs would drown the table
    workdir = Path(tempfile.mkdtemp(prefix="posdiag-campaign-"))
    os.chmod(workdir, 0o700)
    try:
        settings = Settings(args.quick, args.seed, workdir)
        outputs = Outputs(workdir / "outputs")
        info = machine()
        keys = [key for key in SECTIONS if not args.only or key in args.only]
        if "secrets" in keys:  # it greps what the others produced: always last
            keys = [key for key in keys if key != "secrets"] + ["secrets"]
        results = [run_section(key, settings, outputs) for key in keys]
        render(results, info, args.quick, args.seed)
        if args.record:
            path = record(results, info, args.quick, args.seed)
            print(f"results written to {path}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(result.defects for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
