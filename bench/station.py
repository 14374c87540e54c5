"""Figure 3: a depot station of 1, 64 and 256 terminals on two cores, checking and wiping.

Every terminal is simulated **outside the station's process** (``bench.rack``: ZVT units behind
their own pseudo terminals at 9600 baud with their stated latencies, Android units on their own
TCP ports at ``ADB_LATENCY`` a command), so the station shares only cables with them and its
CPU and memory are its own, as with real terminals. Fleets are homogeneous (ZVT only: Feig
cVEND ``activated``; Android only: PAX A920 ``activated``) and mixed (the two alternating), in
``check`` and ``wipe`` mode (a wipe erases, verifies, signs and writes the certificate).

The floor of a fleet is **one terminal of its kind measured alone** by the same station, in the
same round: with perfect scaling a fleet takes as long as its slowest member alone, and nothing
the station does for the others can lower that. For the mixed fleet the single terminal is the
slower kind's (ZVT, bound by its line). Ratio = fleet wall / single wall, goal ≤ 1.3 at 256 on
2 cores. Also terminals per hour and the station's own CPU per terminal.

Run as ``python -m bench.station MODE ADDRESS...`` it is the worker: it runs one station over
the addresses and prints its numbers as one JSON line (CPU: the station's process and the worker
processes it shards into). ``BENCH_STATION_PROCESSES=N`` fixes the station's worker processes
instead of letting it choose: how ``station_shards.SLOTS_PER_PROCESS`` was measured.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .rack import racks
from .simserver import ADB_LATENCY, ROOT
from .stats import Goal, Row, Sample, Settings, ratios

FIGURE = "3 Station"
GOAL = Goal("<=", 1.3)
SIZES = (64, 256)
QUICK_SIZES = (8,)
KINDS = ("zvt", "adb", "mixed")
MODES = ("check", "wipe")
ZVT_UNIT = "zvt+sim://activated"
ADB_UNIT = "adb+sim://activated?model=pax-a920"


def fleet(kind: str, size: int, time_scale: float) -> list[str]:
    """``size`` distinct simulated terminals of ``kind`` (each its own serial), realistic timing."""
    from posdiag.agent.fleet import fleet_serial

    addresses = []
    for position in range(size):
        family = kind if kind != "mixed" else ("zvt" if position % 2 == 0 else "adb")
        if family == "zvt":
            address = f"{ZVT_UNIT}?time_scale={time_scale}"
        else:
            address = f"{ADB_UNIT}&latency={ADB_LATENCY}&time_scale={time_scale}"
        addresses.append(f"{address}&serial={fleet_serial(family, position)}")
    return addresses


def worker(mode: str, addresses: list[str]) -> dict[str, Any]:
    """Run one station over ``addresses``; wall, CPU and peak RSS of this process alone."""
    from posdiag.agent.logs import configure_logging
    from posdiag.agent.policy import load_policy
    from posdiag.agent.station import Station

    configure_logging("console", "error")
    policy = load_policy(None)
    with tempfile.TemporaryDirectory(prefix="posdiag-bench-station-") as tmp:
        station = Station(
            "wipe" if mode == "wipe" else "check",
            policy,
            operator="bench",
            assume_yes=True,
            settle=True,
            ledger_url=f"sqlite:///{tmp}/ledger.db",
            out_dir=Path(tmp) / "certificates",
            max_parallel=len(addresses),
            on_event=None,
            processes=int(os.environ["BENCH_STATION_PROCESSES"])
            if os.environ.get("BENCH_STATION_PROCESSES")
            else None,
        )
        # the station's own process and the worker processes it shards into (waited for)
        before = [
            resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        ]
        started = time.perf_counter()
        results = station.run(addresses)
        wall = time.perf_counter() - started
        after = [
            resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        ]
    cpu = sum(
        (a.ru_utime - b.ru_utime) + (a.ru_stime - b.ru_stime)
        for a, b in zip(after, before, strict=True)
    )
    outcomes: dict[str, int] = {}
    for result in results:
        key = result.verdict_or_outcome or "none"
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "size": len(addresses),
        "wall_s": wall,
        "cpu_s": cpu,
        "maxrss_kb": max(after[0].ru_maxrss, after[1].ru_maxrss),
        "results": len(results),
        "outcomes": outcomes,
        "slowest_s": max((r.elapsed_s for r in results), default=0.0),
        "median_slot_s": statistics.median([r.elapsed_s for r in results]) if results else 0.0,
    }


EXPECTED = {"check": {"wipe_required"}, "wipe": {"erased", "erased_with_exceptions"}}
"""What every unit of these fleets must end as: an activated unit needs (or gets) its wipe."""


def _spawn(kind: str, mode: str, size: int, time_scale: float) -> dict[str, Any]:
    """One fleet: fresh racks of terminals, a fresh station process over them."""
    with racks(fleet(kind, size, time_scale)) as addresses:
        done = subprocess.run(
            [sys.executable, "-m", "bench.station", mode, *addresses],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {mode} of {size} failed: {done.stderr.strip()[-800:]}")
    numbers: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if numbers["results"] != size:
        raise RuntimeError(f"{kind} {mode} of {size} returned {numbers['results']} results")
    wrong = {k: v for k, v in numbers["outcomes"].items() if k not in EXPECTED[mode]}
    if wrong:
        raise RuntimeError(f"{kind} {mode} of {size}: unexpected outcomes {numbers['outcomes']}")
    return numbers


def _rows(
    kind: str, mode: str, sizes: tuple[int, ...], rounds: int, time_scale: float, quick: bool
) -> list[Row]:
    """One fleet kind in one mode: the single terminal and each size, alternating per round."""
    single_kind = "zvt" if kind == "mixed" else kind
    measured: list[dict[int, dict[str, Any]]] = []
    for index in range(rounds):
        order = (0, *sizes) if index % 2 == 0 else (*reversed(sizes), 0)
        measured.append(
            {
                size: _spawn(single_kind if size == 0 else kind, mode, size or 1, time_scale)
                for size in order
            }
        )
    single = Sample.of([r[0]["wall_s"] for r in measured])
    quick_note = (
        f"; QUICK: time_scale {time_scale}, fleets of {', '.join(map(str, sizes))}" if quick else ""
    )
    rows = []
    for size in sizes:
        walls = Sample.of([r[size]["wall_s"] for r in measured])
        cpu_per = Sample.of([r[size]["cpu_s"] / size for r in measured])
        rss_mb = Sample.of([r[size]["maxrss_kb"] / 1024 for r in measured])
        per_hour = Sample.of([size * 3600 / r[size]["wall_s"] for r in measured])
        rows.append(
            Row(
                FIGURE,
                f"{kind} {mode}, {size} terminals vs one alone",
                walls,
                "s",
                ratio=ratios(walls, single),
                ratio_label=f"{size} terminals / one {single_kind} terminal alone",
                goal=GOAL,
                id=f"station.{kind}.{mode}.{size}",
                floor=single,
                note=(
                    f"{per_hour.median:,.0f} terminals/h; station CPU {cpu_per.median * 1000:.0f} "
                    f"ms a terminal; peak RSS {rss_mb.median:.0f} MB; "
                    f"{measured[-1][size]['outcomes']}; simulators in 2 rack processes"
                    f"{quick_note}"
                ),
                extra={
                    "terminals_per_hour": per_hour.to_json(),
                    "cpu_s_per_terminal": cpu_per.to_json(),
                    "peak_rss_mb": rss_mb.to_json(),
                    "slowest_slot_s": measured[-1][size]["slowest_s"],
                },
            )
        )
    return rows


def run(settings: Settings) -> list[Row]:
    """Every fleet kind in every mode, each size against one terminal of its kind alone."""
    sizes = QUICK_SIZES if settings.quick else SIZES
    time_scale = 0.1 if settings.quick else 1.0
    rounds = 1 if settings.quick else min(settings.runs, 3)
    rows: list[Row] = []
    for mode in MODES:
        for kind in KINDS:
            rows.extend(_rows(kind, mode, sizes, rounds, time_scale, settings.quick))
    return rows


if __name__ == "__main__":
    print(json.dumps(worker(sys.argv[1], sys.argv[2:])))
