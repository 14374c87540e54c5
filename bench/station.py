"""Figure 3: station scaling, from one terminal to a depot's 64.

Fleets of mixed simulated terminals (``simulated_fleet``: ZVT and Android scenarios and models)
at realistic timing, ZVT at 9600 baud 8N2 with the simulator's latencies and Android at
``ADB_LATENCY`` a command, are checked by one ``Station`` with a worker per terminal
(``max_parallel`` = fleet size, as a station with that many ports). Each fleet size runs in a
fresh subprocess, so its peak RSS is its own; the sizes take turns in every round, so the ratio
fleet wall / single-terminal wall compares runs taken side by side.

The single terminal is the fleet's first, ``zvt+sim://activated``, one of the slowest kinds (a
ZVT check is bound by its 9600-baud line), so a ratio above 1 is contention in the station, not
the mix: with perfect scaling a fleet takes as long as its slowest member alone.

Run as ``python -m bench.station N TIME_SCALE`` it is the worker: it checks one fleet and prints
its numbers as one JSON line.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .simserver import ADB_LATENCY, ROOT
from .stats import Goal, Row, Sample, Settings, ratios

FIGURE = "3 Station scaling"
GOAL = Goal("<=", 1.3)
SIZES = (1, 8, 32, 64)
QUICK_SIZES = (1, 8)


def fleet(size: int, time_scale: float) -> list[str]:
    """The first ``size`` addresses of the simulated fleet, at realistic timing (scaled)."""
    from posdiag.agent.station import simulated_fleet

    addresses = []
    for address in simulated_fleet(size):
        joiner = "&" if "?" in address else "?"
        if address.startswith("adb+"):
            address += f"{joiner}latency={ADB_LATENCY}&time_scale={time_scale}"
        else:
            address += f"{joiner}time_scale={time_scale}"
        addresses.append(address)
    return addresses


def worker(size: int, time_scale: float) -> dict[str, Any]:
    """Check one fleet with a station; wall, CPU and peak RSS of this process."""
    from posdiag.agent.logs import configure_logging
    from posdiag.agent.policy import load_policy
    from posdiag.agent.station import Station

    configure_logging("console", "error")
    addresses = fleet(size, time_scale)
    policy = load_policy(None)
    with tempfile.TemporaryDirectory(prefix="posdiag-bench-station-") as tmp:
        station = Station(
            "check",
            policy,
            operator="bench",
            assume_yes=True,
            ledger_url=f"sqlite:///{tmp}/ledger.db",
            out_dir=Path(tmp) / "certificates",
            max_parallel=size,
            on_event=None,
        )
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        results = station.run(addresses)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    verdicts: dict[str, int] = {}
    for result in results:
        key = result.verdict_or_outcome or "none"
        verdicts[key] = verdicts.get(key, 0) + 1
    return {
        "size": size,
        "wall_s": wall,
        "cpu_s": cpu,
        "maxrss_kb": after.ru_maxrss,
        "results": len(results),
        "verdicts": verdicts,
        "slowest_s": max((r.elapsed_s for r in results), default=0.0),
        "median_slot_s": statistics.median([r.elapsed_s for r in results]) if results else 0.0,
    }


def _spawn(size: int, time_scale: float) -> dict[str, Any]:
    """One fleet in a fresh interpreter (its peak RSS is then the fleet's own)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.station", str(size), str(time_scale)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the fleet of {size} failed: {done.stderr.strip()[-500:]}")
    numbers: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if numbers["results"] != size:
        raise RuntimeError(f"the fleet of {size} returned {numbers['results']} results")
    unreachable = numbers["verdicts"].get("unreachable", 0)
    if unreachable:
        raise RuntimeError(f"{unreachable} of {size} terminals were unreachable: {numbers}")
    return numbers


def run(settings: Settings) -> list[Row]:
    """Every size once per round, alternating; ratios per round against the single terminal."""
    sizes = QUICK_SIZES if settings.quick else SIZES
    time_scale = 0.1 if settings.quick else 1.0
    runs = min(settings.runs, 3)  # a round of all sizes takes half a minute at realistic timing
    rounds: list[dict[int, dict[str, Any]]] = []
    for index in range(runs):
        order = sizes if index % 2 == 0 else tuple(reversed(sizes))
        rounds.append({size: _spawn(size, time_scale) for size in order})
    single = Sample.of([r[1]["wall_s"] for r in rounds])
    rows: list[Row] = []
    quick_note = "; QUICK: time_scale 0.1, fleets of 1 and 8" if settings.quick else ""
    for size in sizes:
        walls = Sample.of([r[size]["wall_s"] for r in rounds])
        cpu_per = Sample.of([r[size]["cpu_s"] / size for r in rounds])
        rss_mb = Sample.of([r[size]["maxrss_kb"] / 1024 for r in rounds])
        per_hour = Sample.of([size * 3600 / r[size]["wall_s"] for r in rounds])
        last = rounds[-1][size]
        rows.append(
            Row(
                FIGURE,
                f"fleet of {size}: wall vs one terminal",
                walls,
                "s",
                ratio=ratios(walls, single),
                ratio_label=f"fleet of {size} / fleet of 1",
                goal=GOAL if size > 1 else None,
                note=(
                    f"{per_hour.median:,.0f} terminals/h; CPU {cpu_per.median:.3f} s a terminal "
                    f"(simulators included); peak RSS {rss_mb.median:.0f} MB; verdicts "
                    f"{last['verdicts']}{quick_note}"
                ),
                extra={
                    "terminals_per_hour": per_hour.to_json(),
                    "cpu_s_per_terminal": cpu_per.to_json(),
                    "peak_rss_mb": rss_mb.to_json(),
                    "verdicts": last["verdicts"],
                    "slowest_slot_s": last["slowest_s"],
                },
            )
        )
    largest = sizes[-1]
    biggest = rows[-1].extra
    rows.append(
        Row(
            FIGURE,
            f"fleet of {largest}: terminals per hour",
            Sample.of(biggest["terminals_per_hour"]["values"]),
            "terminals/h",
            note=f"{largest} ports checked at once by one station process",
        )
    )
    rows.append(
        Row(
            FIGURE,
            f"fleet of {largest}: CPU per terminal",
            Sample.of(biggest["cpu_s_per_terminal"]["values"]),
            "s",
            note="user + system CPU of the station process (its in-process simulators included)",
        )
    )
    rows.append(
        Row(
            FIGURE,
            f"fleet of {largest}: peak RSS",
            Sample.of(biggest["peak_rss_mb"]["values"]),
            "MB",
            note="ru_maxrss of the fleet's own process (interpreter and imports included)",
        )
    )
    return rows


if __name__ == "__main__":
    print(json.dumps(worker(int(sys.argv[1]), float(sys.argv[2]))))
