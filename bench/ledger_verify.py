"""Figure 6: the ledger. ``posdiag verify --ledger`` against recomputing the hashes by hand.

``report`` and the station verify the whole ledger before they trust a row, so a year of a
depot's records must verify in seconds and in constant memory. The ledger holds wiped terminals
as the API writes them: per terminal a device, an inspection, a wipe run with four steps started
and finished, its certificate (22 rows with their audit entries). The full figure verifies
45,455 terminals, a million rows; it is built in bulk with the chain's own hash functions and
cached in the temporary folder (:mod:`bench.ledger_build`), since a million rows through the API
would take minutes of commits.

The floor is the work any verifier must do, whatever its language or library: read every audit
entry and every sealed row once (stdlib ``sqlite3``, the same index for each row's newest seal),
and recompute the hashes the chain's documentation defines (canonical JSON, SHA-256) with the
stdlib alone, spelling the canonical text with json's own C string encoder as fast as the stdlib
allows. Nothing of posdiag runs in it. The ratio verify ÷ floor is what posdiag adds: the
SQLAlchemy layer (so the same code serves PostgreSQL), the problem collection and the per-row
checks. Goal ≤ 1.5. Also shown for scale: a bare scan of every table (reading alone, no hashing).
The million rows must verify in ≤ 6 s wall (goal of its own row).

Memory: the peak Python allocation (``tracemalloc``) of a verification of the large ledger
divided by that of one a quarter its size. A streaming pass keeps it flat: goal ≤ 1.25.

The write figure (:mod:`bench.ledger_write`) and the report figure (:mod:`bench.ledger_report`)
run with this one (``--only ledger``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import time
import traceback
import tracemalloc
from pathlib import Path
from typing import Any

from .stats import AbsoluteGoal, Goal, Row, Sample, Settings, ratios, side_by_side

FIGURE = "6 Ledger"
TIME_GOAL = Goal("<=", 1.5)
WALL_GOAL = AbsoluteGoal("<=", 6.0, unit="s")
MEMORY_GOAL = Goal("<=", 1.25)
STEPS = ("end_of_day", "logoff", "reset", "verify")
SIZES = (11364, 45455)  # terminals: a quarter million rows and a million
QUICK_SIZES = (250, 1000)

_ENC = json.encoder.encode_basestring  # the C string encoder json.dumps uses


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


def _audit_text(row: tuple[Any, ...]) -> str:
    sealed = row[5] is not None
    fields = [
        f'"posdiag.audit/{2 if sealed else 1}"',
        str(row[0]),
        *(_ENC(value) for value in row[1:5]),
        *((_ENC(value) for value in row[5:8]) if sealed else ()),
    ]
    return "[" + ",".join(fields) + "]"


def floor_verify(path: Path) -> float:
    """Seconds the stdlib alone takes to recompute and compare every documented hash."""
    conn = sqlite3.connect(path)
    try:
        tables = _sealed_tables(conn)
        started = time.perf_counter()
        prev = "0" * 64
        sha256 = hashlib.sha256
        for row in conn.execute(
            "SELECT id, at, event, data_json, prev_hash, row_table, row_key, row_hash, hash "
            "FROM audit_log ORDER BY id"
        ):
            entry = _audit_text(row).encode("utf-8", "surrogatepass")
            if row[4] != prev or sha256(entry).hexdigest() != row[8]:
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
            order = sorted(range(len(columns)), key=lambda index: columns[index])
            head = f'["posdiag.row/1",{_ENC(name)},{{'
            for row in cursor:
                parts = []
                for index in order:
                    value = row[index]
                    if value is None:
                        continue
                    text = _ENC(value) if isinstance(value, str) else str(value)
                    parts.append(f"{_ENC(columns[index])}:{text}")
                content = head + ",".join(parts) + "}]"
                digest = sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
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
    """Verify, then the write and report figures (each may fail alone, as a row saying why)."""
    rows = verify_rows(settings)
    for module in ("bench.ledger_write", "bench.ledger_report"):
        started = time.perf_counter()
        try:
            figure = __import__(module, fromlist=["run"])
            rows.extend(figure.run(settings))
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            note = f"{module}: {type(exc).__name__}: {exc}"
            rows.append(Row(FIGURE, "FAILED", None, "", note=note, id=f"{module}.failed"))
        took = time.perf_counter() - started
        print(f"bench: {module} took {took:.1f} s", file=sys.stderr, flush=True)
    return rows


def verify_rows(settings: Settings) -> list[Row]:
    """Both sizes built (or taken from the cache); the large one timed beside its floor."""
    from .ledger_build import cached_path

    small, large = QUICK_SIZES if settings.quick else SIZES
    rounds = settings.runs
    paths = {size: cached_path(size) for size in (small, large)}
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
            f"verify {large:,} wiped terminals ({rows_total:,} rows)",
            samples["posdiag"].scaled(1000.0),
            "ms",
            ratio=ratios(samples["posdiag"], samples["floor"]),
            ratio_label="÷ stdlib recomputation of the documented hashes",
            goal=TIME_GOAL,
            floor=samples["floor"].scaled(1000.0),
            id="ledger.verify.time",
            note=(
                f"floor {samples['floor'].median * 1000:.0f} ms; bare scan of every table "
                f"{samples['scan'].median * 1000:.0f} ms; {per_row.median:.1f} µs a row; "
                f"{rounds} rounds"
            ),
            extra={"rows": rows_total, "terminals": large},
        ),
        Row(
            FIGURE,
            f"verify --ledger wall, {rows_total:,} rows",
            samples["posdiag"],
            "s",
            goal=WALL_GOAL,
            floor=samples["floor"],
            note=(
                "the goal is for the full figure's million rows"
                + ("; quick: a small ledger" if settings.quick else "")
            ),
            id="ledger.verify.wall",
        ),
        Row(
            FIGURE,
            f"verify memory, {large} ÷ {small} terminals",
            Sample.of([peaks[large] / 2**20]),
            "MiB peak",
            ratio=memory,
            ratio_label="peak ÷ peak at a quarter the size",
            goal=MEMORY_GOAL,
            id="ledger.verify.memory",
            note=f"peak at {small} terminals {peaks[small] / 2**20:.2f} MiB (tracemalloc)",
        ),
    ]
