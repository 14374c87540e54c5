"""Figure 6 (write): records a second through the Ledger API from a station's worker threads.

A station runs up to 256 workers per process and journals every wipe step by step, so the
ledger's write rate bounds how many terminals a depot can wipe at once; and no worker may ever
fail with "ledger locked".

What is written is what a station writes for one wipe, through the ``Ledger`` API, one
``Ledger`` per worker and wipe as the station opens it: the device, its inspection, the wipe run,
four steps started and finished, the run finished with its certificate content, the certificate
recorded: 13 records (each a write call, committed before it returns).

The floor is the disk's raw commit rate for the same records: stdlib ``sqlite3`` on the same
disk, the same schema, the same rows (each record's table row, its audit entry, the head update)
with values of the same sizes, ``synchronous=FULL``, WAL, one transaction per record, one thread,
no reads, no hashing, no Python around it. Nothing posdiag does can make a record durable faster
one at a time; group commit lets many callers share a commit, which is how the ratio can reach
and pass 1. Goal ≥ 0.5: at least half the disk's raw rate, with the chain computed, every row
sealed, and every record checked as the API checks it.

Lock failures: four processes of 64 threads each (256 concurrent wipes) on one ledger, as a
station sharded over processes writes; any ``LedgerError`` at all is counted. Goal 0.

PostgreSQL: the same 64-thread run against ``$POSDIAG_BENCH_POSTGRES_URL`` when that names a
database (informational: a server's commit rate depends on its machine).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .stats import AbsoluteGoal, Goal, Row, Sample, Settings, ratios

FIGURE = "6 Ledger"
RATE_GOAL = Goal(">=", 0.5)
LOCK_GOAL = AbsoluteGoal("<=", 0, unit="failed wipes")
STEPS = ("end_of_day", "logoff", "reset", "verify")
RECORDS_PER_WIPE = 3 + 2 * len(STEPS) + 2
POSTGRES_ENV = "POSDIAG_BENCH_POSTGRES_URL"
REPORT = {"schema": "posdiag.report/1", "verdict": {"status": "wipe_required"}}


def one_wipe(url: str, index: int, tag: str) -> int:
    """What a station worker writes for one wipe; returns the number of records (write calls)."""
    from posdiag.agent.ledger import Ledger

    with Ledger(url, busy_timeout=30) as ledger:
        device = ledger.record_device("zvt", f"{tag}{index:07d}", vendor="Feig", model="cVEND")
        ledger.record_inspection(device, "zvt+tcp://bench", REPORT, operator="bench")
        run = ledger.start_wipe_run(device, "zvt+tcp://bench", "bench", {"batch": tag})
        for step in STEPS:
            ledger.step_started(run, step)
            ledger.step_finished(run, step, "done", "ok")
        ledger.finish_wipe_run(run, "erased", [], certificate={"report_id": str(index)})
        ledger.record_certificate(run, uuid.uuid4(), f"/c/{tag}{index}.json", "ab" * 32)
    return RECORDS_PER_WIPE


def threaded_wipes(url: str, threads: int, wipes: int, tag: str) -> dict[str, Any]:
    """``wipes`` wipes from ``threads`` threads at once: seconds, records and failures."""
    from posdiag.agent.ledger import LedgerError

    lock = threading.Lock()
    queue = iter(range(wipes))
    counts = {"records": 0, "failures": 0, "locked": 0}
    errors: list[str] = []
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        start.wait()
        while True:
            with lock:
                index = next(queue, None)
            if index is None:
                return
            try:
                done = one_wipe(url, index, tag)
            except LedgerError as error:
                with lock:
                    counts["failures"] += 1
                    counts["locked"] += "locked" in str(error) or "busy" in str(error)
                    errors.append(str(error))
                continue
            with lock:
                counts["records"] += done

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    took = time.perf_counter() - started
    return {"seconds": took, **counts, "errors": errors[:3]}


def fresh_ledger(folder: Path, name: str) -> str:
    """An empty ledger file (schema created), as its URL."""
    from posdiag.agent.ledger import Ledger, sqlite_url

    url = sqlite_url(folder / f"{name}.sqlite3")
    Ledger(url).close()
    return url


def ours(folder: Path, threads: int, wipes: int) -> float:
    """Records a second through the API from ``threads`` threads (a fresh ledger each round)."""
    from posdiag.agent.ledger import Ledger

    url = fresh_ledger(folder, f"ours-{uuid.uuid4().hex[:8]}")
    result = threaded_wipes(url, threads, wipes, "T")
    if result["failures"]:
        raise RuntimeError(f"{result['failures']} wipes failed: {result['errors']}")
    with Ledger(url) as ledger:
        if not ledger.verify_chain().ok:
            raise RuntimeError("the bench ledger's chain does not verify")
    return float(result["records"]) / float(result["seconds"])


# -- the floor: the same rows, raw ------------------------------------------------------------

_HASH = "0123456789abcdef" * 4
_AUDIT = (
    "INSERT INTO audit_log (id, at, event, data_json, prev_hash, hash, row_table, row_key, "
    "row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_HEAD = "UPDATE audit_head SET last_id = ?, hash = ?, row_count = ? WHERE id = 1"


def _now() -> str:
    return "2026-05-09T07:30:00.123456+00:00"


def raw_floor(folder: Path, wipes: int) -> float:
    """Records a second committing the same rows with stdlib sqlite3, one transaction each."""
    url = fresh_ledger(folder, f"raw-{uuid.uuid4().hex[:8]}")
    path = url.split("sqlite:///", 1)[1]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        last_id, rows = conn.execute("SELECT last_id, row_count FROM audit_head").fetchone()
        at = _now()
        state = {"last": last_id, "rows": rows}

        def record(statements: list[tuple[str, tuple[Any, ...]]], table: str, key: Any) -> None:
            conn.execute("BEGIN IMMEDIATE")
            for sql, args in statements:
                conn.execute(sql, args)
            state["last"] += 1
            state["rows"] += 1
            data = json.dumps({"table": table, "key": key, "detail": "x" * 120})
            conn.execute(
                _AUDIT, (state["last"], at, f"{table}.event", data, _HASH, _HASH, table, key, _HASH)
            )
            conn.execute(_HEAD, (state["last"], _HASH, state["rows"]))
            conn.execute("COMMIT")

        started = time.perf_counter()
        records = 0
        for index in range(wipes):
            serial = f"R{index:07d}"
            record(
                [
                    (
                        "INSERT INTO devices (id, family, serial, vendor, model, first_seen, "
                        "last_seen) VALUES (?, 'zvt', ?, 'Feig', 'cVEND', ?, ?)",
                        (index + 1, serial, at, at),
                    )
                ],
                "devices",
                index + 1,
            )
            record(
                [
                    (
                        "INSERT INTO inspections (id, device_id, address, at, verdict, "
                        "report_json, operator) VALUES (?, ?, 'zvt+tcp://bench', ?, "
                        "'wipe_required', ?, 'bench')",
                        (index + 1, index + 1, at, json.dumps(REPORT)),
                    )
                ],
                "inspections",
                index + 1,
            )
            record(
                [
                    (
                        "INSERT INTO wipe_runs (id, device_id, address, operator, started_at, "
                        "status, reasons_json, options_json) VALUES (?, ?, 'zvt+tcp://bench', "
                        "'bench', ?, 'running', '[]', '{\"batch\":\"R\"}')",
                        (index + 1, index + 1, at),
                    )
                ],
                "wipe_runs",
                index + 1,
            )
            for seq, step in enumerate(STEPS, start=1):
                step_id = index * len(STEPS) + seq
                record(
                    [
                        (
                            "INSERT INTO wipe_steps (id, run_id, name, seq, started_at, status, "
                            "detail) VALUES (?, ?, ?, ?, ?, 'started', '')",
                            (step_id, index + 1, step, seq, at),
                        )
                    ],
                    "wipe_steps",
                    step_id,
                )
                record(
                    [
                        (
                            "UPDATE wipe_steps SET status = 'done', finished_at = ?, "
                            "detail = 'ok' WHERE id = ?",
                            (at, step_id),
                        )
                    ],
                    "wipe_steps",
                    step_id,
                )
            record(
                [
                    (
                        "UPDATE wipe_runs SET status = 'certifying', finished_at = ?, "
                        "outcome = 'erased', certificate_json = ? WHERE id = ?",
                        (at, json.dumps({"report_id": str(index)}), index + 1),
                    )
                ],
                "wipe_runs",
                index + 1,
            )
            record(
                [
                    (
                        "INSERT INTO certificates (id, run_id, report_id, path, sha256, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (index + 1, index + 1, str(uuid.uuid4()), f"/c/R{index}.json", _HASH, at),
                    ),
                    ("UPDATE wipe_runs SET status = 'finished' WHERE id = ?", (index + 1,)),
                ],
                "certificates",
                index + 1,
            )
            records += RECORDS_PER_WIPE
        took = time.perf_counter() - started
    finally:
        conn.close()
    return records / took


# -- several processes on one ledger ------------------------------------------------------------

_CHILD = """
import json, sys
from posdiag.agent.logs import configure_logging
configure_logging("console", "error")
from bench.ledger_write import threaded_wipes
print(json.dumps(threaded_wipes(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
"""


def processes(folder: Path, count: int, threads: int, wipes: int) -> dict[str, Any]:
    """``count`` processes of ``threads`` threads each on one ledger: records/s and failures."""
    from posdiag.agent.ledger import Ledger

    url = fresh_ledger(folder, f"shared-{uuid.uuid4().hex[:8]}")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, url, str(threads), str(wipes), f"P{n}-"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=root,
        )
        for n in range(count)
    ]
    results = []
    for child in children:
        output, _ = child.communicate(timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"a writer process ended with status {child.returncode}")
        results.append(json.loads(output.strip().splitlines()[-1]))
    took = time.perf_counter() - started
    with Ledger(url) as ledger:
        chain_ok = ledger.verify_chain().ok
    return {
        "records_per_s": sum(r["records"] for r in results) / took,
        "failures": sum(r["failures"] for r in results),
        "locked": sum(r["locked"] for r in results),
        "errors": [e for r in results for e in r["errors"]][:3],
        "chain_ok": chain_ok,
    }


def postgres_rate(url: str, threads: int, wipes: int) -> float:
    """Records a second through the API on PostgreSQL (serials unique to this run)."""
    from posdiag.agent.ledger import Ledger

    Ledger(url).close()
    result = threaded_wipes(url, threads, wipes, f"PG{uuid.uuid4().hex[:6]}-")
    if result["failures"]:
        raise RuntimeError(f"{result['failures']} wipes failed: {result['errors']}")
    return float(result["records"]) / float(result["seconds"])


def run(settings: Settings) -> list[Row]:
    """64 and 256 threads against the raw floor, side by side; then processes; then PostgreSQL."""
    wipes64, wipes256, per_process = (64, 256, 32) if settings.quick else (512, 768, 192)
    rounds = settings.runs
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="posdiag-bench-write-") as tmp:
        folder = Path(tmp)
        floor_wipes = 40 if settings.quick else 200
        for threads, wipes in ((64, wipes64), (256, wipes256)):
            samples: dict[str, list[float]] = {"ours": [], "raw": []}
            for index in range(rounds + 1):  # the first round warms up
                order = ("ours", "raw") if index % 2 == 0 else ("raw", "ours")
                for name in order:
                    rate = (
                        ours(folder, threads, wipes)
                        if name == "ours"
                        else raw_floor(folder, floor_wipes)
                    )
                    if index:
                        samples[name].append(rate)
            ours_s, raw_s = Sample.of(samples["ours"]), Sample.of(samples["raw"])
            rows.append(
                Row(
                    FIGURE,
                    f"write {threads} threads, a wipe each ({RECORDS_PER_WIPE} records)",
                    ours_s,
                    "records/s",
                    ratio=ratios(ours_s, raw_s),
                    ratio_label="÷ raw sqlite3 commits of the same records (1 tx each)",
                    goal=RATE_GOAL,
                    floor=raw_s,
                    id=f"ledger.write.threads{threads}",
                    note=(
                        f"raw floor {raw_s.median:,.0f} records/s (synchronous=FULL, WAL); "
                        f"{wipes} wipes of {RECORDS_PER_WIPE} records from {threads} threads, "
                        f"one Ledger per wipe; {rounds} rounds"
                    ),
                    extra={"threads": threads, "wipes": wipes, "raw": raw_s.to_json()},
                )
            )
        shared = processes(folder, 4, 64, per_process)
    rows.append(
        Row(
            FIGURE,
            "lock failures, 4 processes × 64 threads (256 concurrent wipes)",
            Sample.of([shared["failures"]]),
            "failed wipes",
            goal=LOCK_GOAL,
            id="ledger.write.lock_failures",
            note=(
                f"{4 * per_process} wipes at {shared['records_per_s']:,.0f} records/s; "
                f"{shared['locked']} said locked/busy; chain "
                f"{'verifies' if shared['chain_ok'] else 'BROKEN'}"
                + (f"; {shared['errors']}" if shared["errors"] else "")
            ),
            extra=shared,
        )
    )
    pg_url = os.environ.get(POSTGRES_ENV, "")
    if pg_url:
        rate = postgres_rate(pg_url, 64, wipes64)
        rows.append(Row(FIGURE, "write 64 threads on PostgreSQL", Sample.of([rate]), "records/s"))
    else:
        rows.append(
            Row(
                FIGURE,
                "write 64 threads on PostgreSQL",
                None,
                "records/s",
                id="ledger.write.postgres",
                note=f"not measured: set {POSTGRES_ENV} to a database URL to include it",
            )
        )
    return rows
