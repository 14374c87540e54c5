"""Figure 6 (report): ``posdiag report`` over a year of checks in bounded memory.

A depot exports the manifest of everything it checked; the ledger grows by the day while the
station's laptop does not. The command verifies the ledger, then writes one CSV row per
inspection as it reads them, so its peak memory must not grow with the ledger.

Measured: the peak resident memory (``VmHWM``, the whole process: the interpreter, every
module, SQLite's caches) of ``posdiag report --kind checks`` over a ledger of
100,000 inspections (built in bulk and cached, :mod:`bench.ledger_build`), output to
``/dev/null``. Goal ≤ 64 MiB. For scale: the same command on an empty ledger (what importing
and opening cost; the floor no streaming can go under), and the wall time.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .stats import AbsoluteGoal, Row, Sample, Settings

FIGURE = "6 Ledger"
MEMORY_GOAL = AbsoluteGoal("<=", 64.0, unit="MiB")
INSPECTIONS = 100_000
QUICK_INSPECTIONS = 5_000


_CHILD = """
import atexit, sys

def peak():
    # VmHWM: this process's own high-water mark (ru_maxrss would carry the forking parent's)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write("posdiag-bench-peak-kib " + line.split()[1] + "\\n")

atexit.register(peak)
from posdiag.agent.launch import main
sys.argv = ["posdiag", *sys.argv[1:]]
main()
"""


def report_peak(ledger: Path) -> tuple[float, float]:
    """(peak resident MiB, wall seconds) of one ``posdiag report --kind checks`` process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, "report", "--ledger", str(ledger), "--kind", "checks"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"posdiag report ended with status {done.returncode}: {done.stderr}")
    kib = [line.split()[1] for line in done.stderr.splitlines() if "posdiag-bench-peak-kib" in line]
    if not kib:
        raise RuntimeError("the report process did not say its peak memory")
    return int(kib[-1]) / 1024.0, took


def run(settings: Settings) -> list[Row]:
    """The large ledger's peak and time over the rounds, beside the empty ledger's peak."""
    from .ledger_build import cached_path

    count = QUICK_INSPECTIONS if settings.quick else INSPECTIONS
    ledger = cached_path(count, inspections_only=True)
    peaks: list[float] = []
    walls: list[float] = []
    for _ in range(settings.runs):
        peak, wall = report_peak(ledger)
        peaks.append(peak)
        walls.append(wall)
    with tempfile.TemporaryDirectory(prefix="posdiag-bench-report-") as tmp:
        empty_peak, _wall = report_peak(Path(tmp) / "empty.sqlite3")
    peak_sample = Sample.of(peaks)
    return [
        Row(
            FIGURE,
            f"report --kind checks, {count:,} inspections: peak memory",
            peak_sample,
            "MiB",
            goal=MEMORY_GOAL,
            floor=Sample.of([empty_peak]),
            id="ledger.report.peak_memory",
            note=(
                f"peak resident memory of the whole process; floor: the same command on an "
                f"empty ledger (imports and opening); wall "
                f"{Sample.of(walls).median:.2f} s incl. verifying {2 * count:,} rows; "
                f"{settings.runs} runs"
            ),
            extra={"inspections": count, "empty_mib": empty_peak, "wall_s": walls},
        )
    ]
