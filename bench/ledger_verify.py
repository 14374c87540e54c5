"""Figure 6: ``posdiag verify --ledger`` against recomputing the documented hashes by hand.

``report`` and the station verify the whole ledger before they trust a row, so a year of a
depot's records must verify in seconds and in constant memory. The ledger is a realistic one,
built through the ``Ledger`` API as wipes write it: per terminal a device, an inspection, a wipe
run with four steps started and finished, its certificate (22 rows with their audit entries).

The floor is the work any verifier must do, whatever its language or library: read every audit
entry and every sealed row once (stdlib ``sqlite3``, the same index for each row's newest seal),
and recompute the hashes the chain's documentation defines (canonical JSON, SHA-256) with the
stdlib alone. Nothing of posdiag runs in it. The ratio verify ÷ floor is what posdiag adds: the
SQLAlchemy layer (so the same code serves PostgreSQL), the problem collection and the per-row
checks. Goal ≤ 1.5: the floor does every byte of the essential work, so more than half again on
top of it would be overhead worth removing. Also shown for scale: a bare scan of every table
(reading alone, no hashing).

Memory: the peak Python allocation (``tracemalloc``) of a verification of the large ledger
divided by that of one a quarter its size. A streaming pass keeps it flat: goal ≤ 1.25.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from .stats import Goal, Row, Sample, Settings, ratios, side_by_side

FIGURE = "6 Ledger verify"
TIME_GOAL = Goal("<=", 1.5)
MEMORY_GOAL = Goal("<=", 1.25)
STEPS = ("end_of_day", "logoff", "reset", "verify")
SIZES = (250, 1000)  # terminals
QUICK_SIZES = (25, 100)

_ROW_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
_AUDIT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def build(path: Path, terminals: int) -> None:
    """A ledger with ``terminals`` wiped terminals, written the way wipes write it."""
    from posdiag.agent.ledger import Ledger, sqlite_url

    report = {"schema": "posdiag.report/1", "verdict": {"status": "wipe_required"}}
    with Ledger(sqlite_url(path)) as ledger:
        for index in range(terminals):
            device = ledger.record_device("zvt", f"BENCH{index:06d}", vendor="Feig", model="cVEND")
            ledger.record_inspection(device, "zvt+tcp://bench", report, operator="bench")
            run = ledger.start_wipe_run(device, "zvt+tcp://bench", "bench", {"batch": "B"})
            for step in STEPS:
                ledger.step_started(run, step)
                ledger.step_finished(run, step, "done", "ok")
            ledger.finish_wipe_run(run, "erased", [], certificate={"report_id": str(index)})
            ledger.record_certificate(run, uuid.uuid4(), f"/c/{index}.json", "ab" * 32)


def posdiag_verify(path: Path) -> float:
    """Seconds ``Ledger.verify`` takes (the pass ``verify --ledger`` and ``report`` run)."""
    from posdiag.agent.ledger import Ledger, sqlite_url

    with Ledger(sqlite_url(path)) as ledger:
        started = time.perf_counter()
        result = ledger.verify()
        took = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"the bench ledger does not verify: {result.problems[:1]}")
    return took


def _sealed_tables(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    from posdiag.agent.ledger.schema import SEALED_TABLES, primary_key

    return [(table.name, primary_key(table).name) for table in SEALED_TABLES]


def floor_verify(path: Path) -> float:
    """Seconds the stdlib alone takes to recompute and compare every documented hash."""
    conn = sqlite3.connect(path)
    try:
        tables = _sealed_tables(conn)
        started = time.perf_counter()
        prev = "0" * 64
        for row in conn.execute(
            "SELECT id, at, event, data_json, prev_hash, row_table, row_key, row_hash, hash "
            "FROM audit_log ORDER BY id"
        ):
            fields = ["posdiag.audit/2" if row[5] is not None else "posdiag.audit/1", *row[:5]]
            if row[5] is not None:
                fields.extend(row[5:8])
            entry = _AUDIT_JSON.encode(fields).encode("utf-8", "surrogatepass")
            if row[4] != prev or hashlib.sha256(entry).hexdigest() != row[8]:
                raise RuntimeError(f"floor: audit row {row[0]} does not verify")
            prev = row[8]
        for name, key in tables:
            cursor = conn.execute(
                f"SELECT t.*, (SELECT row_hash FROM audit_log WHERE row_table = ? AND "
                f"row_key = CAST(t.{key} AS TEXT) ORDER BY id DESC LIMIT 1) FROM {name} t "
                f"ORDER BY t.{key}",
                (name,),
            )
            columns = [column[0] for column in cursor.description][:-1]
            for row in cursor:
                content = {c: v for c, v in zip(columns, row, strict=False) if v is not None}
                text = _ROW_JSON.encode(["posdiag.row/1", name, content])
                digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
                if digest != row[-1]:
                    raise RuntimeError(f"floor: {name} row {row[0]} does not verify")
        return time.perf_counter() - started
    finally:
        conn.close()


def bare_scan(path: Path) -> float:
    """Seconds to read every row of every table, nothing else."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        started = time.perf_counter()
        for name in names:
            for _ in conn.execute(f"SELECT * FROM {name}"):
                pass
        return time.perf_counter() - started
    finally:
        conn.close()


def peak_bytes(path: Path) -> int:
    """Peak Python allocation during one verification."""
    from posdiag.agent.ledger import Ledger, sqlite_url

    with Ledger(sqlite_url(path)) as ledger:
        tracemalloc.start()
        try:
            ledger.verify()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def run(settings: Settings) -> list[Row]:
    """Both sizes built once; the large one timed side by side with its floor."""
    small, large = QUICK_SIZES if settings.quick else SIZES
    rounds = settings.runs
    with tempfile.TemporaryDirectory(prefix="posdiag-bench-ledger-") as tmp:
        paths = {size: Path(tmp) / f"ledger-{size}.sqlite3" for size in (small, large)}
        for size, path in paths.items():
            build(path, size)
        path = paths[large]
        with sqlite3.connect(path) as conn:
            rows_total = sum(
                conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            )
        samples = side_by_side(
            {
                "posdiag": lambda: posdiag_verify(path),
                "floor": lambda: floor_verify(path),
                "scan": lambda: bare_scan(path),
            },
            rounds,
        )
        peaks = {size: peak_bytes(p) for size, p in paths.items()}

    per_row = samples["posdiag"].scaled(1e6 / rows_total)
    memory = Sample.of([peaks[large] / peaks[small]])
    return [
        Row(
            FIGURE,
            f"verify {large} wiped terminals ({rows_total:,} rows)",
            samples["posdiag"].scaled(1000.0),
            "ms",
            ratio=ratios(samples["posdiag"], samples["floor"]),
            ratio_label="÷ stdlib recomputation of the documented hashes",
            goal=TIME_GOAL,
            note=(
                f"floor {samples['floor'].median * 1000:.0f} ms; bare scan of every table "
                f"{samples['scan'].median * 1000:.0f} ms; {per_row.median:.1f} µs a row; "
                f"{rounds} rounds"
            ),
            extra={"rows": rows_total, "terminals": large},
        ),
        Row(
            FIGURE,
            f"verify memory, {large} ÷ {small} terminals",
            Sample.of([peaks[large] / 2**20]),
            "MiB peak",
            ratio=memory,
            ratio_label="peak ÷ peak at a quarter the size",
            goal=MEMORY_GOAL,
            note=f"peak at {small} terminals {peaks[small] / 2**20:.2f} MiB (tracemalloc)",
        ),
    ]
