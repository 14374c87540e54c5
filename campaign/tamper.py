"""Section 4: every table of a real ledger tampered with, and ``verify`` must notice.

A ledger with real content (checks, two wipes, a refused wipe; see ``fixtures.py``) is copied
afresh for every tamper, changed with plain ``sqlite3`` as an attacker with the file would, and
handed to ``Ledger(url).verify()`` (``.ok`` false means detected; a PosdiagError on open counts
as detected too, the CLI turns it into a one-line error). For every table (read from the file,
so new tables are tampered with as soon as they exist) and every row: each column modified
(full; quick samples), the row deleted, a forged copy inserted, two rows' keys swapped, the
table's tail cut off. The issue's own example (a refused run's outcome set to ``erased``) is
tried by name. A sample of the copies also goes through ``posdiag verify --ledger`` as a
subprocess, whose exit status must agree. SQLite only (no PostgreSQL server needed).

Defects:
    missed: the tamper went unnoticed.
    crash: verify (or opening the ledger) raised something other than a posdiag error.
    cli disagrees: ``posdiag verify --ledger`` exit status said otherwise than ``verify()``.
"""

from __future__ import annotations

import itertools
import random
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from posdiag.agent.ledger import Ledger, sqlite_url
from posdiag.drivers.errors import PosdiagError

from .common import (
    Outputs,
    SectionResult,
    Settings,
    isolated_env,
    posdiag_cmd,
    run_process,
    scratch,
)
from .fixtures import make_records

KEY = "tamper"
TITLE = "4 Ledger tampering"
COLUMNS = ("missed", "crash", "cli disagrees")

Tamper = Callable[[sqlite3.Connection], bool]
"""Changes the copy; False when the change cannot be made (a constraint refused it)."""


def detect(url: str) -> tuple[bool, str]:
    """Whether the ledger says it was tampered with, and how (``crash:`` for a raw exception)."""
    try:
        with Ledger(url) as ledger:
            verify = getattr(ledger, "verify", None)
            if callable(verify):
                found = verify()
                problems = getattr(found, "problems", ())
                first = str(problems[0]) if problems else getattr(found.chain, "reason", "")
                return (not found.ok), first
            chain = ledger.verify_chain()
            return (not chain.ok), chain.reason or ""
    except PosdiagError as exc:
        return True, f"refused to open: {exc}"
    except Exception as exc:
        return True, f"crash: {type(exc).__name__}: {exc}"


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    )
    return [name for (name,) in rows]


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, bool]]:
    """(name, is primary key) of each column."""
    return [(row[1], bool(row[5])) for row in conn.execute(f'PRAGMA table_info("{table}")')]


def _rowids(conn: sqlite3.Connection, table: str) -> list[int]:
    return [rowid for (rowid,) in conn.execute(f'SELECT rowid FROM "{table}" ORDER BY rowid')]


def _changed(value: Any, attempt: int) -> Any:
    """A different value of the same kind; later attempts try other kinds (for CHECKs)."""
    if attempt == 0:
        if isinstance(value, bool | int):
            return value + 1
        if isinstance(value, float):
            return value + 0.5
        if isinstance(value, str):
            if not value:
                return "x"
            last = value[-1]
            return value[:-1] + ("0" if last != "0" else "1")
        if isinstance(value, bytes):
            return value + b"\x00"
        return "forged"
    return (None, "erased", "finished", "done", "running", 0, "x")[min(attempt - 1, 6)]


def modify(table: str, rowid: int, column: str) -> Tamper:
    """Change one cell to a different value the schema accepts."""

    def tamper(conn: sqlite3.Connection) -> bool:
        (value,) = conn.execute(
            f'SELECT "{column}" FROM "{table}" WHERE rowid = ?', (rowid,)
        ).fetchone()
        for attempt in range(8):
            new = _changed(value, attempt)
            if new == value and type(new) is type(value):
                continue
            try:
                conn.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?', (new, rowid))
                return True
            except sqlite3.DatabaseError:
                continue
        return False

    return tamper


def delete(table: str, rowid: int) -> Tamper:
    """Remove one row."""

    def tamper(conn: sqlite3.Connection) -> bool:
        return conn.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,)).rowcount == 1

    return tamper


def insert_copy(table: str, rowid: int) -> Tamper:
    """Insert a forged row: a copy of a real one under a new key, unique texts made unique."""

    def tamper(conn: sqlite3.Connection) -> bool:
        columns = _columns(conn, table)
        row = conn.execute(f'SELECT * FROM "{table}" WHERE rowid = ?', (rowid,)).fetchone()
        (top,) = conn.execute(f'SELECT coalesce(max(rowid), 0) FROM "{table}"').fetchone()
        values = []
        for (name, primary), value in zip(columns, row, strict=True):
            if primary and isinstance(value, int):
                value = top + 1
            elif primary or name in ("serial", "report_id", "name", "key"):
                value = f"{value}-forged" if isinstance(value, str) else value
            values.append(value)
        marks = ", ".join("?" for _ in values)
        names = ", ".join(f'"{name}"' for name, _ in columns)
        for attempt in range(2):
            try:
                conn.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)
                return True
            except sqlite3.DatabaseError:
                if attempt:
                    return False
                # a unique (run, seq)-like pair: shift every integer that is not a key
                values = [
                    v + 1000 if isinstance(v, int) and not p else v
                    for v, (_, p) in zip(values, columns, strict=True)
                ]
        return False

    return tamper


def swap(table: str, first: int, second: int) -> Tamper:
    """Swap two rows' keys (reordering them), or their contents where the key is text."""

    def tamper(conn: sqlite3.Connection) -> bool:
        columns = _columns(conn, table)
        keys = [name for name, primary in columns if primary]
        others = [name for name, primary in columns if not primary]
        if not keys or not others:
            return False
        a = conn.execute(f'SELECT * FROM "{table}" WHERE rowid = ?', (first,)).fetchone()
        b = conn.execute(f'SELECT * FROM "{table}" WHERE rowid = ?', (second,)).fetchone()
        if a is None or b is None or a == b:
            return False
        names = [name for name, _ in columns]
        sets = ", ".join(f'"{name}" = ?' for name in others)
        try:
            # Contents swapped under the keys: to a reader, the two rows swapped places.
            conn.execute("PRAGMA defer_foreign_keys = ON")
            conn.execute(
                f'UPDATE "{table}" SET {sets} WHERE rowid = ?',
                [b[names.index(n)] for n in others] + [first],
            )
            conn.execute(
                f'UPDATE "{table}" SET {sets} WHERE rowid = ?',
                [a[names.index(n)] for n in others] + [second],
            )
        except sqlite3.DatabaseError:
            return False
        return True

    return tamper


def truncate(table: str, keep: int) -> Tamper:
    """Cut the table's tail: every row after the first ``keep``."""

    def tamper(conn: sqlite3.Connection) -> bool:
        rowids = _rowids(conn, table)
        gone = rowids[keep:]
        for rowid in gone:
            conn.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))
        return bool(gone)

    return tamper


def issue_example(conn: sqlite3.Connection) -> bool:
    """The issue's own: ``UPDATE wipe_runs SET outcome='erased'`` on the refused run."""
    try:
        changed = conn.execute(
            "UPDATE wipe_runs SET outcome = 'erased' WHERE outcome = 'refused'"
        ).rowcount
    except sqlite3.DatabaseError:
        return False
    return changed > 0


def plan(
    conn: sqlite3.Connection, rng: random.Random, quick: bool
) -> list[tuple[str, str, Tamper]]:
    """(table, what, tamper) for every table: the full list, or a sample of it (quick)."""
    tampers: list[tuple[str, str, Tamper]] = [("wipe_runs", "issue example", issue_example)]
    for table in _tables(conn):
        rowids = _rowids(conn, table)
        columns = [name for name, _ in _columns(conn, table)]
        picked = rowids if not quick else sorted(rng.sample(rowids, min(2, len(rowids))))
        for rowid in picked:
            cols = columns if not quick else rng.sample(columns, min(2, len(columns)))
            tampers.extend(
                (table, f"modify row {rowid} {col}", modify(table, rowid, col)) for col in cols
            )
            tampers.append((table, f"delete row {rowid}", delete(table, rowid)))
            tampers.append((table, f"insert a copy of row {rowid}", insert_copy(table, rowid)))
        pairs = list(itertools.pairwise(rowids))
        if quick:
            pairs = pairs[:1]
        tampers.extend((table, f"swap rows {a} and {b}", swap(table, a, b)) for a, b in pairs)
        for keep in sorted({len(rowids) - 1, len(rowids) // 2} - {len(rowids)}):
            if keep >= 0 and rowids:
                tampers.append((table, f"truncate after {keep} rows", truncate(table, keep)))
    return tampers


def _cli_detects(url: str, home: Path, outputs: Outputs) -> bool:
    proc = run_process(
        [*posdiag_cmd(), "verify", "--ledger", url], env=isolated_env(home), timeout=60
    )
    outputs.text("posdiag verify --ledger (stdout)", proc.stdout)
    outputs.text("posdiag verify --ledger (stderr)", proc.stderr)
    return proc.returncode != 0


def run(settings: Settings, outputs: Outputs) -> SectionResult:
    """Tamper with every table of a real ledger, one change per fresh copy."""
    rng = settings.rng(KEY)
    result = SectionResult(KEY, TITLE, COLUMNS)
    started = time.monotonic()
    with scratch(settings, "tamper") as folder:
        records = make_records(folder / "records", outputs)
        pristine = folder / "pristine.sqlite3"
        with sqlite3.connect(records.db) as src, sqlite3.connect(pristine) as dst:
            src.backup(dst)  # one clean file, WAL folded in
        clean, why = detect(sqlite_url(pristine))
        if clean:
            raise RuntimeError(f"the untouched ledger does not verify: {why}")
        with sqlite3.connect(pristine) as conn:
            tampers = plan(conn, rng, settings.quick)
        cli_every = 12 if settings.quick else 8
        detected: dict[str, int] = {}
        copy = folder / "copy.sqlite3"
        for number, (table, what, tamper) in enumerate(tampers):
            for leftover in folder.glob("copy.sqlite3*"):
                leftover.unlink()
            shutil.copyfile(pristine, copy)
            conn = sqlite3.connect(copy, isolation_level=None)
            try:
                conn.execute("BEGIN")
                made = tamper(conn)
                conn.execute("COMMIT" if made else "ROLLBACK")
            finally:
                conn.close()
            if not made:
                continue
            label = table if what != "issue example" else "wipe_runs: refused set to erased (issue)"
            row = result.row(label)
            row.tried += 1
            url = sqlite_url(copy)
            found, reason = detect(url)
            if reason.startswith("crash:"):
                row.defect("crash", f"{table} {what}: {reason}")
            if not found:
                row.defect("missed", f"{table} {what}")
            else:
                detected[label] = detected.get(label, 0) + 1
                row.info = f"detected {detected[label]}"
            if number % cli_every == 0 and _cli_detects(url, folder / "home", outputs) != found:
                row.defect("cli disagrees", f"{table} {what}: verify() says {found}")
    result.seconds = time.monotonic() - started
    return result
