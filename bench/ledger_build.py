"""A large ledger for the verify and report figures, built in bulk and cached.

A million rows through the API would take minutes of commits; the rows are instead computed as
the API writes them (the same tables, the same audit events in the same order, each row sealed
with the chain's own hash functions, every intermediate state of a run and its steps sealed as
it was) and inserted in one transaction. The result verifies like a ledger the API wrote. The
file is kept in the temporary folder, keyed by schema version, size and this module's layout
version, so later runs reuse it.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any, Final

LAYOUT: Final = 1
"""Bump when the rows built here change, so cached files are rebuilt."""
STEPS: Final = ("end_of_day", "logoff", "reset", "verify")
ROWS_PER_TERMINAL: Final = 8 + 14  # table rows + audit entries
_BATCH: Final = 2000


def cached_path(terminals: int, inspections_only: bool = False) -> Path:
    """Where the cached ledger of this size lives (built if missing)."""
    from posdiag.agent.ledger import SCHEMA_VERSION

    kind = "checks" if inspections_only else "wipes"
    name = f"posdiag-bench-ledger-s{SCHEMA_VERSION}-l{LAYOUT}-{kind}-{terminals}.sqlite3"
    path = Path(tempfile.gettempdir()) / name
    if not path.exists():
        scratch = path.with_name(f".{path.name}.{os.getpid()}.building")
        for suffix in ("", "-wal", "-shm"):
            Path(str(scratch) + suffix).unlink(missing_ok=True)
        build(scratch, terminals, inspections_only=inspections_only)
        os.replace(scratch, path)
    return path


def _stamp(second: int) -> str:
    hours, rest = divmod(second, 3600)
    minutes, seconds = divmod(rest, 60)
    day = 1 + hours // 24
    return f"2026-05-{day % 28 + 1:02d}T{hours % 24:02d}:{minutes:02d}:{seconds:02d}.000000+00:00"


class _Chain:
    """Appends audit entries the way :class:`posdiag.agent.ledger.chain.WriteTx` does."""

    def __init__(self, last_id: int, last_hash: str, rows: int) -> None:
        self.last_id, self.hash, self.rows = last_id, last_hash, rows
        self.pending: list[tuple[Any, ...]] = []

    def audit(
        self, at: str, event: str, data: dict[str, Any], table: str, key: int, row: dict[str, Any]
    ) -> None:
        from posdiag.agent.ledger.chain import audit_row_hash, redacted_json, row_content_hash

        row_id = self.last_id + 1
        data_json = redacted_json(data)
        seal = (table, str(key), row_content_hash(table, row))
        entry = audit_row_hash(row_id, at, event, data_json, self.hash, seal)
        self.pending.append((row_id, at, event, data_json, self.hash, entry, *seal))
        self.last_id, self.hash, self.rows = row_id, entry, self.rows + 1


def build(path: Path, terminals: int, *, inspections_only: bool = False) -> None:
    """Create a ledger at ``path`` with ``terminals`` wiped (or only checked) terminals."""
    from posdiag.agent.ledger import Ledger, sqlite_url

    Ledger(sqlite_url(path)).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN IMMEDIATE")
        last_id, last_hash, rows = conn.execute(
            "SELECT last_id, hash, row_count FROM audit_head"
        ).fetchone()
        chain = _Chain(last_id, last_hash, rows)
        tables: dict[str, list[dict[str, Any]]] = {}
        for index in range(terminals):
            _terminal(chain, tables, index, inspections_only)
            if len(chain.pending) >= _BATCH:
                _flush(conn, chain, tables)
        _flush(conn, chain, tables)
        conn.execute(
            "UPDATE audit_head SET last_id = ?, hash = ?, row_count = ? WHERE id = 1",
            (chain.last_id, chain.hash, chain.rows),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _flush(
    conn: sqlite3.Connection, chain: _Chain, tables: dict[str, list[dict[str, Any]]]
) -> None:
    for table, rows in tables.items():
        if not rows:
            continue
        columns = list(rows[0])
        marks = ", ".join("?" for _ in columns)
        conn.executemany(
            f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [tuple(row[c] for c in columns) for row in rows],
        )
        rows.clear()
    conn.executemany(
        "INSERT INTO audit_log (id, at, event, data_json, prev_hash, hash, row_table, row_key, "
        "row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        chain.pending,
    )
    chain.pending.clear()


def _terminal(
    chain: _Chain, tables: dict[str, list[dict[str, Any]]], index: int, inspections_only: bool
) -> None:
    """One terminal's rows and audit entries, in the API's order."""
    from posdiag.agent.ledger.chain import dumps, redacted_json

    key = index + 1
    at = _stamp(index * 12)
    serial = f"BENCH{index:07d}"
    device = {
        "id": key,
        "family": "zvt",
        "serial": serial,
        "vendor": "Feig",
        "model": "cVEND",
        "first_seen": at,
        "last_seen": at,
    }
    tables.setdefault("devices", []).append(device)
    chain.audit(
        at,
        "device.seen",
        {
            "device_id": key,
            "family": "zvt",
            "serial": serial,
            "vendor": "Feig",
            "model": "cVEND",
            "new": True,
        },
        "devices",
        key,
        device,
    )
    report = {"schema": "posdiag.report/1", "verdict": {"status": "wipe_required"}}
    inspection = {
        "id": key,
        "device_id": key,
        "address": "zvt+tcp://bench",
        "at": at,
        "verdict": "wipe_required",
        "report_json": redacted_json(report),
        "operator": "bench",
    }
    tables.setdefault("inspections", []).append(inspection)
    chain.audit(
        at,
        "inspection.recorded",
        {
            "inspection_id": key,
            "device_id": key,
            "address": "zvt+tcp://bench",
            "verdict": "wipe_required",
            "operator": "bench",
            "report_sha256": "0" * 64,
            "simulated": False,
        },
        "inspections",
        key,
        inspection,
    )
    if inspections_only:
        return
    run: dict[str, Any] = {
        "id": key,
        "device_id": key,
        "address": "zvt+tcp://bench",
        "operator": "bench",
        "started_at": at,
        "status": "running",
        "reasons_json": "[]",
        "options_json": redacted_json({"batch": "B"}),
    }
    chain.audit(
        at,
        "wipe_run.started",
        {
            "run_id": key,
            "device_id": key,
            "address": "zvt+tcp://bench",
            "operator": "bench",
            "options": {"batch": "B"},
            "simulated": False,
        },
        "wipe_runs",
        key,
        run,
    )
    for seq, name in enumerate(STEPS, start=1):
        step_id = index * len(STEPS) + seq
        step: dict[str, Any] = {
            "id": step_id,
            "run_id": key,
            "name": name,
            "seq": seq,
            "started_at": at,
            "status": "started",
            "detail": "",
        }
        chain.audit(
            at,
            "wipe_step.started",
            {"run_id": key, "name": name, "seq": seq, "restart": False},
            "wipe_steps",
            step_id,
            step,
        )
        step = {**step, "status": "done", "finished_at": at, "detail": "ok"}
        chain.audit(
            at,
            "wipe_step.finished",
            {"run_id": key, "name": name, "seq": seq, "status": "done", "detail": "ok"},
            "wipe_steps",
            step_id,
            step,
        )
        tables.setdefault("wipe_steps", []).append({"finished_at": None, **step})
    run = {
        **run,
        "status": "certifying",
        "finished_at": at,
        "outcome": "erased",
        "certificate_json": dumps({"report_id": str(index)}),
    }
    chain.audit(
        at,
        "wipe_run.certifying",
        {"run_id": key, "outcome": "erased", "reasons": []},
        "wipe_runs",
        key,
        run,
    )
    report_id = str(uuid.UUID(int=index))
    certificate = {
        "id": key,
        "run_id": key,
        "report_id": report_id,
        "path": f"/c/{index}.json",
        "sha256": "ab" * 32,
        "created_at": at,
    }
    tables.setdefault("certificates", []).append(certificate)
    chain.audit(
        at,
        "certificate.recorded",
        {"run_id": key, "report_id": report_id, "path": f"/c/{index}.json", "sha256": "ab" * 32},
        "certificates",
        key,
        certificate,
    )
    run = {**run, "status": "finished"}
    chain.audit(
        at, "wipe_run.finished", {"table": "wipe_runs", "key": str(key)}, "wipe_runs", key, run
    )
    tables.setdefault("wipe_runs", []).append({"certificate_json": None, "simulated": None, **run})
