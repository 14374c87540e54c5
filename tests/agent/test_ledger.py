"""Tests for posdiag.agent.ledger: schema, lifecycle, crash safety, the audit chain, redaction.

Every database lives under tmp_path, and XDG_DATA_HOME/HOME point into tmp_path too, so the
user's real ledger is never touched. The crash tests run real child processes and SIGKILL them.
"""

from __future__ import annotations

import gc
import hashlib
import json
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from posdiag.agent.ledger import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    ChainReport,
    Ledger,
    LedgerError,
    Outcome,
    RunStatus,
    StepStatus,
    audit_row_hash,
    default_path,
    default_url,
    sqlite_url,
)
from posdiag.drivers.errors import PosdiagError

TID = "52502000"
PASSWORD = "hunter2-do-not-store"
CHILD_TIMEOUT = 10.0
TABLES = {
    "devices",
    "inspections",
    "wipe_runs",
    "wipe_steps",
    "certificates",
    "audit_log",
    "audit_head",
    "ledger_meta",
}


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test does, the default ledger location is inside tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def url(db_path: Path) -> str:
    return sqlite_url(db_path)


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    with Ledger(url) as opened:
        yield opened


def report(status: str = "ready", terminal_id: str = TID) -> dict[str, Any]:
    """A minimal posdiag.report/1 shaped dict, with an unmasked terminal id to test redaction."""
    return {
        "schema": "posdiag.report/1",
        "address": "tcp://127.0.0.1:20007",
        "family": "zvt",
        "activation": {"state": "active", "terminal_id": terminal_id, "merchant_id": "123456789"},
        "verdict": {"status": status, "reasons": ["terminal is activated"]},
    }


def raw(db_path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, as an attacker (or a curious admin) would use."""
    return sqlite3.connect(db_path, isolation_level=None)


def audit_events(db_path: Path) -> list[str]:
    with raw(db_path) as conn:
        return [row[0] for row in conn.execute("SELECT event FROM audit_log ORDER BY id")]


def run_child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(process: subprocess.Popen[str]) -> str:
    """One stdout line from a child, failing with its stderr if it died instead."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(CHILD_TIMEOUT)
        stderr = process.stderr.read() if process.stderr else ""
        pytest.fail(f"child exited early ({process.returncode}): {stderr}")
    return line.strip()


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(CHILD_TIMEOUT)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


# -- opening, schema, settings -------------------------------------------------------------------


def test_ledger_error_is_a_posdiag_error() -> None:
    assert issubclass(LedgerError, PosdiagError)


def test_tables_created_with_an_empty_valid_chain(ledger: Ledger) -> None:
    names = set(sa.inspect(ledger.engine).get_table_names())
    assert names >= TABLES
    head = ledger.head()
    # The only entry of a new ledger seals its metadata row (the schema version).
    assert (head.last_id, head.rows) == (1, 1)
    assert head.hash != GENESIS_HASH
    assert ledger.verify_chain() == ChainReport(ok=True, rows=1, first_bad_id=None, reason="")
    assert ledger.verify().ok
    with ledger.engine.connect() as conn:
        version = conn.exec_driver_sql(
            "SELECT value FROM ledger_meta WHERE key = 'schema_version'"
        ).scalar()
    assert version == str(SCHEMA_VERSION)


def test_reopening_keeps_data_and_creates_nothing_twice(url: str) -> None:
    with Ledger(url) as first:
        device = first.record_device("zvt", "SN1")
    with Ledger(url) as second:
        assert second.record_device("zvt", "SN1") == device
        assert second.verify_chain().rows == 3  # ledger.created and two device.seen


def test_sqlite_pragmas_are_in_effect_on_every_connection(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_default_url_lives_in_xdg_data_home_with_a_private_folder(tmp_path: Path) -> None:
    expected = tmp_path / "xdg" / "posdiag" / "ledger.sqlite3"
    assert default_path() == expected
    assert sa.make_url(default_url()).database == str(expected)
    assert stat.S_IMODE(expected.parent.stat().st_mode) == 0o700
    with Ledger() as ledger:
        ledger.audit("opened")
    assert expected.is_file()


def test_default_url_falls_back_to_home_when_xdg_is_unset_or_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = tmp_path / "home" / ".local" / "share" / "posdiag" / "ledger.sqlite3"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_path() == expected
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert default_path() == expected
    assert stat.S_IMODE(expected.parent.stat().st_mode) == 0o700


def test_sqlite_url_survives_awkward_file_names(tmp_path: Path) -> None:
    path = tmp_path / "odd name?#%.sqlite3"
    with Ledger(sqlite_url(path)) as ledger:
        ledger.audit("x")
    assert path.is_file()


@pytest.mark.parametrize(
    ("bad_url", "words"),
    [
        ("not a url://x", "could not be understood"),
        ("nosuchdb://host/db", "unknown database type"),
        ("sqlite:////nonexistent-posdiag-dir/sub/ledger.sqlite3", "folder does not exist"),
    ],
)
def test_bad_url_gives_a_readable_ledger_error(bad_url: str, words: str) -> None:
    with pytest.raises(LedgerError, match=words):
        Ledger(bad_url)


def test_a_plain_file_path_is_a_sqlite_ledger(tmp_path: Path) -> None:
    """What the settings file accepts, --ledger accepts too: a path, not only a URL."""
    path = tmp_path / "depot ledger.sqlite3"
    with Ledger(str(path)) as ledger:
        ledger.audit("x")
    assert path.is_file()


def test_missing_driver_error_hides_the_url_password() -> None:
    url = "postgresql+nosuchdriver://user:s3cr3t@localhost/posdiag"
    with pytest.raises(LedgerError) as caught:
        Ledger(url)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a database\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4096],
    ids=["text", "bad-header"],
)
def test_corrupt_file_gives_a_readable_ledger_error(db_path: Path, garbage: bytes) -> None:
    db_path.write_bytes(garbage)
    with pytest.raises(LedgerError, match="corrupt or is not a posdiag ledger") as caught:
        Ledger(sqlite_url(db_path))
    assert str(db_path) in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_locked_database_gives_a_readable_ledger_error(db_path: Path, url: str) -> None:
    Ledger(url).close()
    holder = raw(db_path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # Opening a ready ledger only reads, so it works while another process writes.
        with Ledger(url, busy_timeout=0.2) as ledger:
            started = time.monotonic()
            with pytest.raises(LedgerError, match="locked by another posdiag process"):
                ledger.audit("blocked")
            assert time.monotonic() - started < 5
            holder.execute("ROLLBACK")
            ledger.audit("unblocked")
            assert audit_events(db_path) == ["ledger.created", "unblocked"]
    finally:
        holder.close()


def test_foreign_database_with_clashing_tables_is_refused(db_path: Path) -> None:
    with raw(db_path) as conn:
        conn.execute("CREATE TABLE devices (name TEXT)")
    with pytest.raises(LedgerError, match="not a posdiag ledger"):
        Ledger(sqlite_url(db_path))


def test_ledger_from_a_newer_posdiag_is_refused(db_path: Path, url: str) -> None:
    Ledger(url).close()
    with raw(db_path) as conn:
        conn.execute("UPDATE ledger_meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match="newer posdiag"):
        Ledger(url)


def test_closed_ledger_refuses_work(url: str) -> None:
    ledger = Ledger(url)
    ledger.close()
    ledger.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        ledger.audit("late")


# -- devices and inspections ---------------------------------------------------------------------


def test_record_device_upserts_and_keeps_known_details(ledger: Ledger) -> None:
    first = ledger.record_device("zvt", "SN1", vendor="Ingenico")
    again = ledger.record_device("zvt", "SN1", model="Move/5000")
    other_family = ledger.record_device("adb", "SN1")
    assert again == first
    assert other_family != first
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM devices ORDER BY id")).mappings().all()
    assert len(rows) == 2
    assert rows[0]["vendor"] == "Ingenico"
    assert rows[0]["model"] == "Move/5000"
    assert rows[0]["last_seen"] > rows[0]["first_seen"]
    with pytest.raises(ValueError):
        ledger.record_device("zvt", "")


def test_inspection_is_stored_redacted_and_readable(ledger: Ledger, db_path: Path) -> None:
    device = ledger.record_device("zvt", "SN1")
    first = ledger.record_inspection(device, "tcp://127.0.0.1:20007", report("wipe_required"))
    second = ledger.record_inspection(device, "tcp://127.0.0.1:20007", report("ready"))
    listed = ledger.inspections()
    assert [item.id for item in listed] == [second, first]
    assert listed[1].verdict == "wipe_required"
    assert listed[1].family == "zvt"
    assert listed[1].serial == "SN1"
    assert listed[1].report["activation"]["terminal_id"] == "****2000"
    assert listed[1].report["activation"]["merchant_id"] == "****6789"
    assert ledger.inspections(limit=1)[0].id == second
    with raw(db_path) as conn:
        stored = "".join(row[0] for row in conn.execute("SELECT report_json FROM inspections"))
    assert TID not in stored


def test_inspection_needs_a_verdict_and_a_known_device(ledger: Ledger) -> None:
    device = ledger.record_device("zvt", "SN1")
    with pytest.raises(ValueError, match=r"verdict\.status"):
        ledger.record_inspection(device, "tcp://x", {"schema": "posdiag.report/1"})
    with pytest.raises(LedgerError, match="no device 999"):
        ledger.record_inspection(999, "tcp://x", report())


# -- wipe runs -----------------------------------------------------------------------------------


def test_wipe_run_lifecycle(ledger: Ledger) -> None:
    device = ledger.record_device("zvt", "SN1")
    run = ledger.start_wipe_run(device, "tcp://x", "alice", {"password": PASSWORD, "dry": False})
    ledger.step_started(run, "connect")
    ledger.step_finished(run, "connect", StepStatus.DONE)
    ledger.step_started(run, "erase")
    ledger.step_finished(run, "erase", "done", "3 records erased")
    ledger.step_finished(run, "erase", "verified")  # a done step may later be verified
    ledger.step_finished(run, "print_receipt", "skipped", "no printer")  # never started
    ledger.finish_wipe_run(run, Outcome.ERASED, ["all merchant data erased"])

    steps = ledger.steps(run)
    assert [(s.name, s.seq, s.status) for s in steps] == [
        ("connect", 1, StepStatus.DONE),
        ("erase", 2, StepStatus.VERIFIED),
        ("print_receipt", 3, StepStatus.SKIPPED),
    ]
    assert steps[1].detail == ""
    assert steps[2].started_at is None
    assert steps[2].finished_at is not None
    assert ledger.open_wipe_run("zvt", "SN1") is None

    (listed,) = ledger.runs()
    assert listed.id == run
    assert listed.status is RunStatus.FINISHED
    assert listed.outcome is Outcome.ERASED
    assert listed.reasons == ("all merchant data erased",)
    assert listed.options == {"password": "[redacted]", "dry": False}
    assert listed.finished_at is not None and listed.finished_at >= listed.started_at
    assert listed.steps == tuple(steps)

    report_id = uuid.uuid4()
    ledger.record_certificate(run, report_id, "/tmp/cert.pdf", "ab" * 32)
    with pytest.raises(LedgerError, match="already recorded"):
        ledger.record_certificate(run, str(report_id), "/tmp/again.pdf", "cd" * 32)
    with pytest.raises(ValueError, match="UUID"):
        ledger.record_certificate(run, "not-a-uuid", "/tmp/cert.pdf", "ab" * 32)
    with pytest.raises(ValueError, match="64 hex"):
        ledger.record_certificate(run, uuid.uuid4(), "/tmp/cert.pdf", "xyz")


def test_finished_runs_are_frozen_and_one_open_run_per_device(ledger: Ledger) -> None:
    device = ledger.record_device("zvt", "SN1")
    run = ledger.start_wipe_run(device, "tcp://x", "alice", {})
    with pytest.raises(LedgerError, match="unfinished wipe run"):
        ledger.start_wipe_run(device, "tcp://x", "bob", {})
    with pytest.raises(LedgerError, match="still running"):
        ledger.record_certificate(run, uuid.uuid4(), "/tmp/c.pdf", "00" * 32)
    with pytest.raises(ValueError):
        ledger.step_finished(run, "erase", "started")
    with pytest.raises(ValueError):
        ledger.finish_wipe_run(run, "mostly_erased", [])
    ledger.finish_wipe_run(run, "aborted", ["operator cancelled"])
    for change in (
        lambda: ledger.step_started(run, "erase"),
        lambda: ledger.step_finished(run, "erase", "done"),
        lambda: ledger.finish_wipe_run(run, "erased", []),
    ):
        with pytest.raises(LedgerError, match="already finished"):
            change()
    with pytest.raises(LedgerError, match="no wipe run 999"):
        ledger.step_started(999, "erase")
    second = ledger.start_wipe_run(device, "tcp://x", "bob", {})
    assert [r.id for r in ledger.runs()] == [second, run]
    assert [r.id for r in ledger.runs(limit=1)] == [second]


def test_interrupted_run_is_found_by_a_new_ledger(url: str) -> None:
    ledger = Ledger(url)
    device = ledger.record_device("zvt", "SN1")
    run = ledger.start_wipe_run(device, "tcp://x", "alice", {"mode": "full"})
    ledger.step_started(run, "connect")
    ledger.step_finished(run, "connect", "done")
    ledger.step_started(run, "erase")
    del ledger  # "crash": no finish, no close
    gc.collect()

    with Ledger(url) as reopened:
        found = reopened.open_wipe_run("zvt", "SN1")
        assert found is not None
        assert found.id == run
        assert found.status is RunStatus.RUNNING
        assert found.outcome is None
        assert found.options == {"mode": "full"}
        assert [(s.name, s.status) for s in found.steps] == [
            ("connect", StepStatus.DONE),
            ("erase", StepStatus.STARTED),
        ]
        assert reopened.open_wipe_run("zvt", "OTHER") is None

        # Resuming: mark the interrupted step, restart it; it keeps its place in the order.
        reopened.step_finished(run, "erase", "interrupted", "process died")
        reopened.step_started(run, "erase")
        erase = reopened.steps(run)[1]
        assert (erase.name, erase.seq, erase.status, erase.detail) == ("erase", 2, "started", "")
        assert erase.finished_at is None
        assert reopened.verify_chain().ok


def test_every_method_appends_exactly_one_audit_row(ledger: Ledger, db_path: Path) -> None:
    device = ledger.record_device("zvt", "SN1")
    ledger.record_inspection(device, "tcp://x", report())
    run = ledger.start_wipe_run(device, "tcp://x", "alice", {})
    ledger.step_started(run, "erase")
    ledger.step_finished(run, "erase", "done")
    ledger.finish_wipe_run(run, "erased", [])
    ledger.record_certificate(run, uuid.uuid4(), "/tmp/c.pdf", "00" * 32)
    ledger.audit("custom.event", note="hello")
    assert audit_events(db_path) == [
        "ledger.created",
        "device.seen",
        "inspection.recorded",
        "wipe_run.started",
        "wipe_step.started",
        "wipe_step.finished",
        "wipe_run.finished",
        "certificate.recorded",
        "custom.event",
    ]
    # Refused operations leave no audit row behind: the whole transaction rolled back.
    with pytest.raises(LedgerError):
        ledger.finish_wipe_run(run, "erased", [])
    assert len(audit_events(db_path)) == 9


# -- redaction -----------------------------------------------------------------------------------


def test_audit_data_is_redacted(ledger: Ledger, db_path: Path) -> None:
    ledger.audit("x", terminal_id=TID, password="123456", nested={"merchant_id": "987654321"})
    with raw(db_path) as conn:
        (data_json,) = conn.execute("SELECT data_json FROM audit_log WHERE event = 'x'").fetchone()
    data = json.loads(data_json)
    assert data["terminal_id"] == "****2000"
    assert data["nested"]["merchant_id"] == "****4321"
    assert data["password"] == "[redacted]"
    assert TID not in data_json
    assert "123456" not in data_json


def test_no_secret_reaches_the_database_files(ledger: Ledger, db_path: Path) -> None:
    device = ledger.record_device("zvt", "SN1")
    ledger.record_inspection(device, "tcp://x", {**report(), "key": PASSWORD})
    ledger.start_wipe_run(device, "tcp://x", "alice", {"password": PASSWORD, "pin": PASSWORD})
    ledger.audit("login", password=PASSWORD, terminal_id=TID)
    ledger.close()
    blob = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert PASSWORD.encode() not in blob
    assert TID.encode() not in blob


# -- the audit chain -----------------------------------------------------------------------------


def filled(url: str, rows: int = 6) -> None:
    with Ledger(url) as ledger:
        for i in range(rows):
            ledger.audit("step", i=i)
        assert ledger.verify_chain().ok


def verify(url: str) -> ChainReport:
    with Ledger(url) as ledger:
        return ledger.verify_chain()


def test_hash_follows_the_documented_encoding(ledger: Ledger, db_path: Path) -> None:
    ledger.audit("first", a=1)
    ledger.audit("second", b="ü")
    with raw(db_path) as conn:
        # Entry 1 (ledger.created) seals a row and hashes as posdiag.audit/2: see the row tests.
        prev = conn.execute("SELECT hash FROM audit_log WHERE id = 1").fetchone()[0]
        rows = conn.execute(
            "SELECT id, at, event, data_json, prev_hash, hash FROM audit_log WHERE id > 1"
        )
        for row_id, at, event, data_json, prev_hash, row_hash in rows:
            encoded = json.dumps(
                ["posdiag.audit/1", row_id, at, event, data_json, prev_hash],
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
            assert prev_hash == prev
            assert row_hash == hashlib.sha256(encoded).hexdigest()
            assert row_hash == audit_row_hash(row_id, at, event, data_json, prev_hash)
            prev = row_hash
    head = ledger.head()
    assert (head.last_id, head.hash, head.rows) == (3, prev, 3)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("at", "'2000-01-01T00:00:00.000000+00:00'"),
        ("event", "'nothing.happened'"),
        ("data_json", """'{"i":99}'"""),
        ("prev_hash", "'" + "1" * 64 + "'"),
        ("hash", "'" + "2" * 64 + "'"),
    ],
)
def test_chain_detects_an_edited_row(url: str, db_path: Path, column: str, value: str) -> None:
    filled(url)
    with raw(db_path) as conn:
        conn.execute(f"UPDATE audit_log SET {column} = {value} WHERE id = 3")
    result = verify(url)
    assert not result.ok
    assert result.first_bad_id == 3
    assert result.reason


def test_chain_detects_an_edited_row_whose_hash_was_recomputed(url: str, db_path: Path) -> None:
    filled(url)
    with raw(db_path) as conn:
        at, prev = conn.execute("SELECT at, prev_hash FROM audit_log WHERE id = 3").fetchone()
        forged = audit_row_hash(3, at, "step", '{"i":99}', prev)
        conn.execute(
            "UPDATE audit_log SET data_json = ?, hash = ? WHERE id = 3", ('{"i":99}', forged)
        )
    result = verify(url)
    assert (result.ok, result.first_bad_id) == (False, 4)


def test_chain_detects_a_changed_id(url: str, db_path: Path) -> None:
    filled(url)
    with raw(db_path) as conn:
        conn.execute("UPDATE audit_log SET id = 100 WHERE id = 3")
    result = verify(url)
    assert (result.ok, result.first_bad_id) == (False, 4)


@pytest.mark.parametrize(("deleted", "first_bad"), [(3, 4), (1, 2)], ids=["middle", "first"])
def test_chain_detects_a_deleted_row(url: str, db_path: Path, deleted: int, first_bad: int) -> None:
    filled(url)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE id = ?", (deleted,))
    result = verify(url)
    assert (result.ok, result.first_bad_id) == (False, first_bad)
    assert "missing" in result.reason


@pytest.mark.parametrize("cut", [1, 2])
def test_chain_detects_truncation_through_the_head(url: str, db_path: Path, cut: int) -> None:
    filled(url, rows=6)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE id > ?", (6 - cut,))
    result = verify(url)
    assert not result.ok
    assert result.first_bad_id == 6 - cut + 1
    assert "truncated" in result.reason


def test_appending_after_truncation_keeps_the_evidence(url: str, db_path: Path) -> None:
    filled(url, rows=6)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM audit_log WHERE id = 6")
    with Ledger(url) as ledger:
        ledger.audit("after")
        result = ledger.verify_chain()
    assert (result.ok, result.first_bad_id) == (False, 7)


def test_chain_detects_a_swapped_pair(url: str, db_path: Path) -> None:
    filled(url)
    with raw(db_path) as conn:
        conn.execute("BEGIN")
        conn.execute("UPDATE audit_log SET id = -1 WHERE id = 3")
        conn.execute("UPDATE audit_log SET id = 3 WHERE id = 4")
        conn.execute("UPDATE audit_log SET id = 4 WHERE id = -1")
        conn.execute("COMMIT")
    result = verify(url)
    assert (result.ok, result.first_bad_id) == (False, 3)


def test_chain_detects_rows_added_behind_the_heads_back(url: str, db_path: Path) -> None:
    filled(url)
    with raw(db_path) as conn:
        at, last = conn.execute("SELECT at, hash FROM audit_log WHERE id = 7").fetchone()
        forged = audit_row_hash(8, at, "forged", "{}", last)
        conn.execute(
            "INSERT INTO audit_log (id, at, event, data_json, prev_hash, hash)"
            " VALUES (8, ?, 'forged', '{}', ?, ?)",
            (at, last, forged),
        )
    result = verify(url)
    assert (result.ok, result.first_bad_id) == (False, 8)


def test_missing_head_is_reported_and_blocks_writes(url: str, db_path: Path) -> None:
    filled(url)
    with raw(db_path) as conn:
        conn.execute("DELETE FROM audit_head")
    with Ledger(url) as ledger:
        assert not ledger.verify_chain().ok
        with pytest.raises(LedgerError, match="lost its audit head"):
            ledger.audit("more")


# -- crash safety --------------------------------------------------------------------------------

LOOP_CHILD = """
import sys
from posdiag.agent.ledger import Ledger

ledger = Ledger(sys.argv[1])
device = ledger.record_device("zvt", "SN-CRASH")
i = 0
while True:
    run = ledger.start_wipe_run(device, "tcp://sim", "op", {"i": i, "password": sys.argv[2]})
    ledger.step_started(run, "erase")
    ledger.step_finished(run, "erase", "done", f"pass {i}")
    ledger.finish_wipe_run(run, "erased", [f"pass {i}"])
    ledger.audit("loop", i=i)
    sys.stdout.write(f"{i}\\n")
    sys.stdout.flush()
    i += 1
"""

HOLD_INSIDE_TRANSACTION_CHILD = """
import sys, time
import sqlalchemy as sa
from posdiag.agent.ledger import Ledger, fast

ledger = Ledger(sys.argv[1])
device = ledger.record_device("zvt", "SN-KILL")
real_execute = fast.FastSql.execute

def hold(self, statement, params):
    # The wipe_runs row is already written; the audit row is being written: freeze right here.
    if isinstance(statement, sa.Insert) and statement.table.name == "audit_log":
        sys.stdout.write("inside\\n")
        sys.stdout.flush()
        time.sleep(60)
    return real_execute(self, statement, params)

fast.FastSql.execute = hold
ledger.start_wipe_run(device, "tcp://sim", "op", {})
"""


def count(conn: sqlite3.Connection, sql: str, *args: Any) -> int:
    return int(conn.execute(sql, args).fetchone()[0])


def test_sigkill_in_a_write_loop_loses_nothing_committed(db_path: Path, url: str) -> None:
    process = run_child(LOOP_CHILD, url, PASSWORD)
    try:
        seen = -1
        while seen < 15:
            seen = int(read_line(process))
    finally:
        kill(process)
    assert process.returncode == -signal.SIGKILL

    with Ledger(url) as ledger:
        assert ledger.verify_chain().ok
        loops = [r for r in ledger.runs(limit=10_000) if r.status is RunStatus.FINISHED]
        running = [r for r in ledger.runs(limit=10_000) if r.status is RunStatus.RUNNING]
        ledger.audit("after.crash")  # and the ledger is writable again
    assert len(loops) >= seen + 1  # every reported iteration survived
    assert len(running) <= 1  # at most the run the kill interrupted
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        audit = "SELECT count(*) FROM audit_log WHERE event = ?"
        # Each table row was committed together with its audit row, or neither was.
        assert count(conn, "SELECT count(*) FROM wipe_runs") == count(
            conn, audit, "wipe_run.started"
        )
        assert count(conn, "SELECT count(*) FROM wipe_runs WHERE status = 'finished'") == count(
            conn, audit, "wipe_run.finished"
        )
        assert count(conn, "SELECT count(*) FROM wipe_steps") == count(
            conn, audit, "wipe_step.started"
        )
        assert count(conn, "SELECT count(*) FROM wipe_steps WHERE status = 'done'") == count(
            conn, audit, "wipe_step.finished"
        )
        # No half-written rows: every required column of every row is filled in.
        assert (
            count(
                conn,
                "SELECT count(*) FROM wipe_runs WHERE address IS NULL OR operator IS NULL"
                " OR options_json IS NULL OR (status = 'finished' AND outcome IS NULL)",
            )
            == 0
        )
        assert (
            count(
                conn,
                "SELECT count(*) FROM wipe_steps WHERE run_id NOT IN (SELECT id FROM wipe_runs)",
            )
            == 0
        )
    blob = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert PASSWORD.encode() not in blob


def test_sigkill_inside_a_transaction_leaves_no_partial_rows(db_path: Path, url: str) -> None:
    process = run_child(HOLD_INSIDE_TRANSACTION_CHILD, url)
    try:
        assert read_line(process) == "inside"
    finally:
        kill(process)

    with Ledger(url) as ledger:
        result = ledger.verify_chain()
        assert (result.ok, result.rows) == (True, 2)  # ledger.created, device.seen: committed
        assert ledger.runs() == []
        assert ledger.open_wipe_run("zvt", "SN-KILL") is None
        device = ledger.record_device("zvt", "SN-KILL")
        assert ledger.start_wipe_run(device, "tcp://sim", "op", {}) > 0
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- concurrency ---------------------------------------------------------------------------------

APPEND_CHILD = """
import sys
from posdiag.agent.ledger import Ledger

with Ledger(sys.argv[1]) as ledger:
    for i in range(int(sys.argv[3])):
        ledger.audit("append", who=sys.argv[2], i=i)
"""


def check_appends(url: str, db_path: Path, writers: list[str], per_writer: int) -> None:
    assert verify(url) == ChainReport(True, len(writers) * per_writer + 1, None, "")
    with raw(db_path) as conn:
        rows = [
            json.loads(r[0])
            for r in conn.execute("SELECT data_json FROM audit_log WHERE id > 1 ORDER BY id")
        ]
    for who in writers:
        assert [r["i"] for r in rows if r["who"] == who] == list(range(per_writer))


def test_threads_appending_at_once_keep_a_valid_chain(url: str, db_path: Path) -> None:
    per_thread = 25
    shared, separate = Ledger(url), Ledger(url)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def append(ledger: Ledger, who: str) -> Callable[[], None]:
        def work() -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    ledger.audit("append", who=who, i=i)
            except BaseException as error:  # surfaced below; a thread cannot fail the test
                errors.append(error)

        return work

    threads = [
        threading.Thread(target=append(ledger, who))
        for ledger, who in ((shared, "a"), (shared, "b"), (separate, "c"), (separate, "d"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CHILD_TIMEOUT)
    shared.close()
    separate.close()
    assert errors == []
    check_appends(url, db_path, ["a", "b", "c", "d"], per_thread)


def test_processes_appending_at_once_keep_a_valid_chain(url: str, db_path: Path) -> None:
    per_process = 40
    Ledger(url).close()
    processes = [run_child(APPEND_CHILD, url, who, str(per_process)) for who in ("p", "q", "r")]
    for process in processes:
        _, stderr = process.communicate(timeout=CHILD_TIMEOUT * 2)
        assert process.returncode == 0, stderr
    check_appends(url, db_path, ["p", "q", "r"], per_process)


WIPING_CHILD = """
import sys, time
from posdiag.agent.ledger import Ledger

ledger = Ledger(sys.argv[1])
device = ledger.record_device("zvt", "SN-SHARED")
run = ledger.open_wipe_run("zvt", "SN-SHARED")
run_id = run.id if run else ledger.start_wipe_run(device, "tcp://x", "alice", {})
ledger.step_started(run_id, "erase")
print(run_id, flush=True)
time.sleep(60)  # wiping, until killed
"""


def test_two_processes_never_drive_one_terminal_on_sqlite(tmp_path: Path) -> None:
    """A second process meeting a terminal another is wiping waits, then says so; once the
    first is gone (even by SIGKILL) its run is resumable at once."""
    url = sqlite_url(tmp_path / "ledger.sqlite3")
    Ledger(url).close()
    first = run_child(WIPING_CHILD, url)
    try:
        run_id = int(read_line(first))
        with Ledger(url, busy_timeout=0.3) as second:
            with pytest.raises(LedgerError, match="being wiped by another posdiag session"):
                second.open_wipe_run("zvt", "SN-SHARED")
            assert second.open_wipe_run("zvt", "SN-OTHER") is None  # others are not held up
        first.send_signal(signal.SIGKILL)
        first.wait(CHILD_TIMEOUT)
        with Ledger(url, busy_timeout=0.3) as second:
            resumed = second.open_wipe_run("zvt", "SN-SHARED")
            assert resumed is not None and resumed.id == run_id
            assert resumed.status is RunStatus.RUNNING
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    lock_dir = tmp_path / ".ledger.sqlite3.locks"
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in lock_dir.iterdir())
