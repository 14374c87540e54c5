"""The ledger on PostgreSQL: many stations (processes × threads) sharing one database.

The server is started by the session fixture ``postgres_url`` (tests/conftest.py); every test
gets a database of its own. The API tests run on SQLite too (``backend_url``), so the two backends
are held to the same behaviour. Schema upgrades from the first layout are tested here as well,
on a SQLite file written with that layout's DDL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from posdiag.agent import cli
from posdiag.agent.ledger import (
    GENESIS_HASH,
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    Outcome,
    RunStatus,
    StepStatus,
    audit_row_hash,
    sqlite_url,
)
from posdiag.agent.ledger import engine as engine_module
from posdiag.agent.ledger.claims import device_lock_key
from posdiag.agent.manifest import CHECK_COLUMNS, check_rows

TID = "52502000"
PASSWORD = "hunter2-do-not-store"
CHILD_TIMEOUT = 60.0

postgres = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _private_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default ledger, certificates and station key never touch the real user folders."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / "config"))
    monkeypatch.delenv("POSDIAG_ZVT_PASSWORD", raising=False)


def admin(url: str) -> Any:
    """A plain psycopg connection (autocommit), as a database administrator would use."""
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped afterwards."""
    name = f"ledger_{uuid.uuid4().hex[:12]}"
    with admin(postgres_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    with admin(postgres_url) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "ledger.sqlite3")
    return str(request.getfixturevalue("pg_url"))


def report(status: str = "ready", terminal_id: str = TID) -> dict[str, Any]:
    """A minimal posdiag.report/1 shaped dict, with an unmasked terminal id to test redaction."""
    return {
        "schema": "posdiag.report/1",
        "address": "tcp://127.0.0.1:20007",
        "family": "zvt",
        "activation": {"state": "active", "terminal_id": terminal_id, "merchant_id": "123456789"},
        "verdict": {"status": status, "reasons": ["terminal is activated"]},
    }


def events(ledger: Ledger) -> list[str]:
    with ledger.engine.connect() as conn:
        # the creation entry every ledger starts with is left out: tests name what they wrote
        query = "SELECT event FROM audit_log WHERE event != 'ledger.created' ORDER BY id"
        return list(conn.execute(sa.text(query)).scalars())


def env_for(home: Path) -> dict[str, str]:
    """A child's environment: its own home, data and config folders; no colours."""
    env = {k: v for k, v in os.environ.items() if k not in ("POSDIAG_ZVT_PASSWORD", "FORCE_COLOR")}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        NO_COLOR="1",
    )
    home.mkdir(parents=True, exist_ok=True)
    return env


# -- URL, driver, errors -------------------------------------------------------------------------


def test_missing_psycopg_gives_one_line_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    with pytest.raises(LedgerError) as caught:
        Ledger("postgresql://station:s3cr3t-pw@127.0.0.1:5432/posdiag")
    message = str(caught.value)
    assert "pip install 'posdiag[postgres]'" in message
    assert "s3cr3t-pw" not in message and "\n" not in message
    result = CliRunner().invoke(
        cli.main, ["verify", "--ledger", "postgres://station:s3cr3t-pw@db.invalid/posdiag"]
    )
    assert result.exit_code == 1
    assert "pip install 'posdiag[postgres]'" in result.stderr
    assert "s3cr3t-pw" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@postgres
def test_plain_postgresql_url_uses_psycopg_and_hides_the_password(pg_url: str) -> None:
    with_password = pg_url.replace("posdiag@", "posdiag:s3cr3t-pw@")  # trust auth ignores it
    with Ledger(with_password) as ledger:
        assert ledger.engine.dialect.driver == "psycopg"
        assert "s3cr3t-pw" not in ledger.url and "***" in ledger.url
        assert ledger.url.startswith("postgresql+psycopg://")
        ledger.audit("opened")
        assert ledger.verify_chain().ok


@postgres
@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda url: url.rsplit("/", 1)[0] + "/no_such_db", "does not exist"),
        (lambda url: "postgresql://posdiag@127.0.0.1:1/x", "cannot reach"),
    ],
    ids=["no-database", "no-server"],
)
def test_connection_errors_are_one_readable_line_without_the_password(
    postgres_url: str, change: Any, words: str
) -> None:
    url = change(postgres_url)
    for secret_url in (
        url.replace("posdiag@", "posdiag:s3cr3t-pw@"),
        url + "?password=s3cr3t-pw",
    ):
        with pytest.raises(LedgerError, match=words) as caught:
            Ledger(secret_url, busy_timeout=2)
        message = str(caught.value)
        assert "s3cr3t-pw" not in message
        assert "\n" not in message and "Traceback" not in message


# -- the API, on both backends -------------------------------------------------------------------


def test_schema_is_created_with_an_empty_valid_chain(backend_url: str) -> None:
    with Ledger(backend_url) as ledger:
        head = ledger.head()
        assert (head.last_id, head.rows) == (1, 1)  # ledger.created, sealing the metadata
        assert head.hash != GENESIS_HASH
        assert ledger.verify_chain().ok and ledger.verify().ok
        with ledger.engine.connect() as conn:
            version = conn.execute(
                sa.text("SELECT value FROM ledger_meta WHERE key = 'schema_version'")
            ).scalar()
            columns = {c["name"] for c in sa.inspect(conn).get_columns("inspections")}
    assert version == str(SCHEMA_VERSION)
    assert "operator" in columns
    with Ledger(backend_url) as again:  # reopening creates nothing twice
        assert again.verify_chain().rows == 1


def test_full_api(backend_url: str) -> None:
    with Ledger(backend_url) as ledger:
        first = ledger.record_device("zvt", "SN1", vendor="Ingenico")
        assert ledger.record_device("zvt", "SN1", model="Move/5000") == first
        assert ledger.record_device("adb", "SN1") != first

        older = ledger.record_inspection(first, "zvt+tcp://x", report("wipe_required"))
        newer = ledger.record_inspection(first, "zvt+tcp://x", report(), operator="Jana")
        listed = ledger.inspections()
        assert [(i.id, i.operator) for i in listed] == [(newer, "Jana"), (older, None)]
        assert listed[1].verdict == "wipe_required" and listed[1].serial == "SN1"
        assert listed[1].report["activation"]["terminal_id"] == "****2000"
        with pytest.raises(LedgerError, match="no device 999"):
            ledger.record_inspection(999, "tcp://x", report())

        run = ledger.start_wipe_run(first, "zvt+tcp://x", "alice", {"password": PASSWORD})
        with pytest.raises(LedgerError, match="unfinished wipe run"):
            ledger.start_wipe_run(first, "zvt+tcp://x", "bob", {})
        ledger.step_started(run, "connect")
        ledger.step_finished(run, "connect", StepStatus.DONE)
        ledger.step_started(run, "erase")
        ledger.step_finished(run, "erase", "done", "3 records erased")
        ledger.step_finished(run, "erase", "verified")
        ledger.step_finished(run, "print_receipt", "skipped", "no printer")
        found = ledger.open_wipe_run("zvt", "SN1")
        assert found is not None and found.id == run and found.status is RunStatus.RUNNING
        with pytest.raises(LedgerError, match="still running"):
            ledger.record_certificate(run, uuid.uuid4(), "/tmp/c.json", "00" * 32)
        ledger.finish_wipe_run(run, Outcome.ERASED, ["all merchant data erased"])
        with pytest.raises(LedgerError, match="already finished"):
            ledger.step_started(run, "erase")
        assert ledger.open_wipe_run("zvt", "SN1") is None

        (listed_run,) = ledger.runs()
        assert listed_run.outcome is Outcome.ERASED
        assert listed_run.options == {"password": "[redacted]"}
        assert [(s.name, s.seq, s.status) for s in listed_run.steps] == [
            ("connect", 1, StepStatus.DONE),
            ("erase", 2, StepStatus.VERIFIED),
            ("print_receipt", 3, StepStatus.SKIPPED),
        ]
        report_id = uuid.uuid4()
        ledger.record_certificate(run, report_id, "/tmp/cert.json", "ab" * 32)
        with pytest.raises(LedgerError, match="already recorded"):
            ledger.record_certificate(run, str(report_id), "/tmp/again.json", "cd" * 32)
        ledger.audit("custom.event", terminal_id=TID, password=PASSWORD)

        assert events(ledger) == [
            "device.seen",
            "device.seen",
            "device.seen",
            "inspection.recorded",
            "inspection.recorded",
            "wipe_run.started",
            "wipe_step.started",
            "wipe_step.finished",
            "wipe_step.started",
            "wipe_step.finished",
            "wipe_step.finished",
            "wipe_step.finished",
            "wipe_run.finished",
            "certificate.recorded",
            "custom.event",
        ]
        chain = ledger.verify_chain()
        assert (chain.ok, chain.rows) == (True, 16)
        assert ledger.head().rows == 16
        assert ledger.verify().ok
        with ledger.engine.connect() as conn:
            dump = json.dumps([list(r) for r in conn.execute(sa.text("SELECT * FROM audit_log"))])
            dump += json.dumps([list(r) for r in conn.execute(sa.text("SELECT * FROM wipe_runs"))])
        assert PASSWORD not in dump and TID not in dump


def test_odd_terminal_text_is_stored_alike_on_every_backend(backend_url: str) -> None:
    """PostgreSQL enforces VARCHAR lengths and refuses NUL; a garbled serial must still land."""
    long_serial = "S" * 300
    with Ledger(backend_url) as ledger:
        device = ledger.record_device("zvt", long_serial, vendor="FEIG\x00junk")
        assert ledger.record_device("zvt", long_serial) == device
        nul = ledger.record_device("zvt", "AB\x00CD")
        assert ledger.record_device("zvt", "AB\x00CD") == nul  # the look-up finds the same row
        run = ledger.start_wipe_run(nul, "zvt+sim://x", "op\x00", {})
        ledger.step_finished(run, "erase\x00", "failed", "stderr: \x00\x01garbage")
        ledger.finish_wipe_run(run, "not_erased", ["step erase failed"])
        assert ledger.verify_chain().ok
        with pytest.raises(ValueError, match="NUL"):
            ledger.audit("bad\x00event")


def test_operator_on_checks_reaches_the_manifest(backend_url: str) -> None:
    with Ledger(backend_url) as ledger:
        device = ledger.record_device("zvt", "SN-CHECK", "FEIG", "cVEND")
        ledger.record_inspection(device, "zvt+tcp://10.0.0.5:20007?password=123456", report())
        ledger.record_inspection(device, "zvt+sim://activated", report("wipe_required"), "Jana")
        ledger.record_inspection(device, "zvt+sim://activated", report(), operator="")
        rows = check_rows(ledger)
    assert [row["operator"] for row in rows] == [None, "Jana", None]
    assert CHECK_COLUMNS.index("operator") < CHECK_COLUMNS.index("checked_at")
    result = CliRunner().invoke(
        cli.main,
        ["report", "--ledger", backend_url, "--kind", "checks", "--format", "csv"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout_bytes.decode("utf-8-sig").split("\r\n")
    assert lines[0] == ",".join(CHECK_COLUMNS)
    assert lines[2].split(",")[CHECK_COLUMNS.index("operator")] == "Jana"
    assert "123456" not in result.stdout


def test_verify_does_not_false_alarm_while_others_write(backend_url: str) -> None:
    """Reads are one snapshot: the log and its head never come from two different moments."""
    stop = threading.Event()
    reports = []
    with Ledger(backend_url) as writer, Ledger(backend_url) as reader:

        def keep_writing() -> None:
            i = 0
            while not stop.is_set():
                writer.audit("busy", i=i)
                i += 1

        thread = threading.Thread(target=keep_writing)
        thread.start()
        try:
            deadline = time.monotonic() + 0.7
            while time.monotonic() < deadline:
                reports.append(reader.verify_chain())
        finally:
            stop.set()
            thread.join(CHILD_TIMEOUT)
    assert reports and all(r.ok for r in reports), [r for r in reports if not r.ok][:1]
    assert reports[-1].rows > 0


class FakeDriverError(Exception):
    """What psycopg raises for a rolled-back transaction: an error with a SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"simulated {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"], ids=["serialization", "deadlock"])
def test_rolled_back_writes_are_retried_not_surfaced(
    backend_url: str, monkeypatch: pytest.MonkeyPatch, sqlstate: str
) -> None:
    with Ledger(backend_url) as ledger:
        real = ledger._write_once
        failures = iter([sqlstate, sqlstate])

        def flaky(work: Any) -> Any:
            state = next(failures, None)
            if state is not None:
                raise sa.exc.OperationalError("UPDATE audit_head", {}, FakeDriverError(state))
            return real(work)

        monkeypatch.setattr(ledger, "_write_once", flaky)
        ledger.audit("after.two.rollbacks")
        assert events(ledger) == ["after.two.rollbacks"]
        assert ledger.verify_chain().ok


def test_retries_are_bounded_and_other_errors_are_not_retried(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Ledger(backend_url) as ledger:
        calls: list[str] = []

        def always(state: str) -> Any:
            def fail(work: Any) -> Any:
                calls.append(state)
                raise sa.exc.OperationalError("UPDATE audit_head", {}, FakeDriverError(state))

            return fail

        monkeypatch.setattr(ledger, "_write_once", always("40001"))
        with pytest.raises(LedgerError):
            ledger.audit("never")
        assert len(calls) == engine_module._WRITE_ATTEMPTS  # bounded, however long the conflict
        calls.clear()
        monkeypatch.setattr(ledger, "_write_once", always("23505"))  # unique_violation
        with pytest.raises(LedgerError):
            ledger.audit("never")
        assert len(calls) == 1


@postgres
def test_a_write_blocked_past_busy_timeout_says_so(pg_url: str) -> None:
    Ledger(pg_url).close()
    holder = admin(pg_url)
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT * FROM audit_head FOR UPDATE")  # another station, stuck mid-write
        with Ledger(pg_url, busy_timeout=0.3) as ledger:
            started = time.monotonic()
            with pytest.raises(LedgerError, match="busy") as caught:
                ledger.audit("blocked")
            assert time.monotonic() - started < 5
            assert "\n" not in str(caught.value)
            holder.execute("ROLLBACK")
            ledger.audit("unblocked")
            assert events(ledger) == ["unblocked"]
    finally:
        holder.close()


# -- schema upgrade from the first layout --------------------------------------------------------

SCHEMA_1_SQLITE = """
CREATE TABLE audit_head (id INTEGER NOT NULL, last_id INTEGER NOT NULL, hash VARCHAR(64) NOT NULL,
    row_count INTEGER NOT NULL, PRIMARY KEY (id),
    CONSTRAINT ck_audit_head_single_row CHECK (id = 1));
CREATE TABLE audit_log (id INTEGER NOT NULL, at VARCHAR(32) NOT NULL, event VARCHAR(128) NOT NULL,
    data_json TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL,
    PRIMARY KEY (id));
CREATE TABLE devices (id INTEGER NOT NULL, family VARCHAR(64) NOT NULL,
    serial VARCHAR(128) NOT NULL, vendor TEXT, model TEXT, first_seen VARCHAR(32) NOT NULL,
    last_seen VARCHAR(32) NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_devices_family_serial UNIQUE (family, serial));
CREATE TABLE ledger_meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE inspections (id INTEGER NOT NULL, device_id INTEGER NOT NULL, address TEXT NOT NULL,
    at VARCHAR(32) NOT NULL, verdict VARCHAR(32) NOT NULL, report_json TEXT NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(device_id) REFERENCES devices (id));
CREATE INDEX ix_inspections_device_id ON inspections (device_id);
CREATE TABLE wipe_runs (id INTEGER NOT NULL, device_id INTEGER NOT NULL, address TEXT NOT NULL,
    operator TEXT NOT NULL, started_at VARCHAR(32) NOT NULL, finished_at VARCHAR(32),
    status VARCHAR(16) NOT NULL, outcome VARCHAR(32), reasons_json TEXT NOT NULL,
    options_json TEXT NOT NULL, PRIMARY KEY (id),
    CONSTRAINT ck_wipe_runs_status CHECK (status IN ('running', 'finished')),
    CONSTRAINT ck_wipe_runs_outcome CHECK (outcome IS NULL OR outcome IN ('erased',
        'erased_with_exceptions', 'not_erased', 'aborted', 'refused')),
    CONSTRAINT ck_wipe_runs_lifecycle CHECK ((status = 'running' AND outcome IS NULL AND
        finished_at IS NULL) OR (status = 'finished' AND outcome IS NOT NULL AND
        finished_at IS NOT NULL)),
    FOREIGN KEY(device_id) REFERENCES devices (id));
CREATE INDEX ix_wipe_runs_device_status ON wipe_runs (device_id, status);
CREATE TABLE certificates (id INTEGER NOT NULL, run_id INTEGER NOT NULL,
    report_id VARCHAR(36) NOT NULL, path TEXT NOT NULL, sha256 VARCHAR(64) NOT NULL,
    created_at VARCHAR(32) NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES wipe_runs (id), UNIQUE (report_id));
CREATE INDEX ix_certificates_run_id ON certificates (run_id);
CREATE TABLE wipe_steps (id INTEGER NOT NULL, run_id INTEGER NOT NULL, name VARCHAR(128) NOT NULL,
    seq INTEGER NOT NULL, started_at VARCHAR(32), finished_at VARCHAR(32),
    status VARCHAR(16) NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (id),
    CONSTRAINT ck_wipe_steps_status CHECK (status IN ('started', 'done', 'failed', 'skipped',
        'verified', 'interrupted')),
    CONSTRAINT uq_wipe_steps_run_name UNIQUE (run_id, name),
    CONSTRAINT uq_wipe_steps_run_seq UNIQUE (run_id, seq),
    FOREIGN KEY(run_id) REFERENCES wipe_runs (id));
"""
"""The first layout's DDL exactly as posdiag 0.1 (schema 1) created it in SQLite."""


SCHEMA_2_EXTRA = "ALTER TABLE inspections ADD COLUMN operator TEXT;"
"""What schema 2 added to the first layout."""


def _old_rows() -> tuple[list[tuple[str, str, tuple[object, ...]]], list[tuple[object, ...]]]:
    """Rows of an old ledger (a device, an inspection, a finished wipe with a step and a
    certificate) and the audit chain the old posdiag wrote over them."""
    at = [f"2026-05-09T07:35:{second:02d}.000001+00:00" for second in range(20, 26)]
    tables: list[tuple[str, str, tuple[object, ...]]] = [
        ("devices", "(1, 'zvt', 'OLD1', NULL, NULL, ?, ?)", (at[0], at[0])),
        (
            "inspections",
            "(id, device_id, address, at, verdict, report_json) VALUES (1, 1, 'zvt+sim://fresh',"
            " ?, 'ready', ?)",
            (at[1], json.dumps({"verdict": {"status": "ready"}})),
        ),
        (
            "wipe_runs",
            "(1, 1, 'zvt+sim://fresh', 'Jana', ?, ?, 'finished', 'erased', '[]', '{}')",
            (at[2], at[4]),
        ),
        ("wipe_steps", "(1, 1, 'erase', 1, ?, ?, 'done', '')", (at[3], at[3])),
        (
            "certificates",
            "(1, 1, '2f1b7c1e-5d1e-4a53-9d0e-2b7a0c1d2e3f', '/tmp/c.json', ?, ?)",
            ("ab" * 32, at[5]),
        ),
    ]
    chain: list[tuple[object, ...]] = []
    prev = GENESIS_HASH
    events_ = [
        "device.seen",
        "inspection.recorded",
        "wipe_run.started",
        "wipe_step.finished",
        "wipe_run.finished",
        "certificate.recorded",
    ]
    for index, event in enumerate(events_, start=1):
        data = json.dumps({"i": index})
        row_hash = audit_row_hash(index, at[index - 1], event, data, prev)
        chain.append((index, at[index - 1], event, data, prev, row_hash))
        prev = row_hash
    return tables, chain


def write_old_ledger(conn: Any, version: int, placeholder: str = "?") -> None:
    """Fill an empty database with the schema-``version`` layout and rows, as old posdiag did."""
    ddl = SCHEMA_1_SQLITE + (SCHEMA_2_EXTRA if version >= 2 else "")
    postgres = placeholder != "?"
    serial_tables = ("devices", "inspections", "wipe_runs", "certificates", "wipe_steps")
    if postgres:  # SQLAlchemy created these keys as SERIAL there
        for table in serial_tables:
            ddl = ddl.replace(
                f"CREATE TABLE {table} (id INTEGER", f"CREATE TABLE {table} (id SERIAL"
            )
    for statement in ddl.split(";"):
        if statement.strip():
            conn.execute(statement)
    tables, chain = _old_rows()
    conn.execute(f"INSERT INTO ledger_meta VALUES ('schema_version', '{version}')")
    for table, values, args in tables:
        head = values if values.startswith("(id") else f"VALUES {values}"
        conn.execute(f"INSERT INTO {table} {head}".replace("?", placeholder), args)
    for row in chain:
        conn.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?)".replace("?", placeholder), row
        )
    conn.execute(
        "INSERT INTO audit_head VALUES (1, ?, ?, ?)".replace("?", placeholder),
        (len(chain), chain[-1][5], len(chain)),
    )
    if postgres:  # rows inserted by posdiag moved the sequences on
        for table in serial_tables:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)")


OLD_ROWS = 6  # audit entries of the old ledger
SEALED_AT_UPGRADE = (
    5  # one row in each of devices, inspections, wipe_runs, wipe_steps, certificates
)


@pytest.mark.parametrize("version", [1, 2])
def test_old_ledger_upgrades_seals_every_row_and_verifies(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        write_old_ledger(conn, version)
    conn.close()
    with Ledger(sqlite_url(path)) as ledger:
        (old,) = ledger.inspections()
        assert (old.serial, old.operator) == ("OLD1", None)
        (run,) = ledger.runs()
        assert (run.outcome, [s.name for s in run.steps]) == (Outcome.ERASED, ["erase"])
        ledger.record_inspection(1, "zvt+sim://fresh", report(), operator="Jana")
        assert [row["operator"] for row in check_rows(ledger)] == [None, "Jana"]
        expected_rows = OLD_ROWS + 1 + SEALED_AT_UPGRADE + 1  # old, upgrade, seals, new row
        chain = ledger.verify_chain()
        assert (chain.ok, chain.rows) == (True, expected_rows)
        assert ledger.verify().ok
        assert events(ledger)[OLD_ROWS] == "ledger.upgraded"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM ledger_meta").fetchall() == [(str(SCHEMA_VERSION),)]
        columns = [row[1] for row in conn.execute("PRAGMA table_info(inspections)")]
        upgrade = conn.execute(
            "SELECT data_json FROM audit_log WHERE id = ?", (OLD_ROWS + 1,)
        ).fetchone()[0]
        # the rebuilt wipe_runs keeps its foreign keys and rows
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT count(*) FROM wipe_runs").fetchone()[0] == 1
    conn.close()
    assert columns[-2:] == ["operator", "simulated"]
    assert json.loads(upgrade) == {"from_schema": version, "to_schema": SCHEMA_VERSION}
    with Ledger(sqlite_url(path)) as again:  # upgraded once only
        assert again.verify_chain().rows == expected_rows
        # an edit made after the upgrade is caught in the old rows too
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE wipe_runs SET outcome = 'not_erased'")
    conn.close()
    with Ledger(sqlite_url(path)) as again:
        result = again.verify()
        assert not result.ok
        assert [(p.table, p.key) for p in result.problems] == [("wipe_runs", "1")]


def test_old_ledger_with_a_broken_chain_is_not_sealed(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        write_old_ledger(conn, 2)
        conn.execute("UPDATE audit_log SET data_json = '{}' WHERE id = 2")
    conn.close()
    with pytest.raises(LedgerError, match="cannot be upgraded: its audit chain is broken"):
        Ledger(sqlite_url(path))


def test_a_version_edited_back_is_refused_not_resealed(tmp_path: Path) -> None:
    db_path = tmp_path / "ledger.sqlite3"
    url = sqlite_url(db_path)
    with Ledger(url) as ledger:
        ledger.record_device("zvt", "SN1")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE devices SET serial = 'FORGED'")
        conn.execute("UPDATE ledger_meta SET value = '2'")
    conn.close()
    with pytest.raises(LedgerError, match="tampered"):
        Ledger(url)


@postgres
def test_old_ledger_upgrades_on_postgres(pg_url: str) -> None:
    with admin(pg_url) as conn:  # the first layout, created as posdiag 0.1 created it
        write_old_ledger(conn, 1, placeholder="%s")
    with Ledger(pg_url) as ledger:
        device = ledger.record_device("zvt", "SN1")
        ledger.record_inspection(device, "zvt+sim://x", report(), operator="Jana")
        assert ledger.inspections()[0].operator == "Jana"
        assert events(ledger)[OLD_ROWS : OLD_ROWS + 2] == ["ledger.upgraded", "row.sealed"]
        assert events(ledger)[-2:] == ["device.seen", "inspection.recorded"]
        assert ledger.verify().ok
        run = ledger.start_wipe_run(device, "zvt+sim://x", "Jana", {})
        ledger.finish_wipe_run(run, "erased", [], certificate={"report_id": "x"})
        assert [p.run_id for p in ledger.awaiting_certificate()] == [run]


# -- many writers --------------------------------------------------------------------------------

STATION_CHILD = """
import sys, threading
from posdiag.agent.ledger import Ledger

url, who, threads, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
errors = []
barrier = threading.Barrier(threads)
sys.stdin.readline()  # everyone imported: go

def worker(t):
    name = f"{who}{t}"
    try:
        with Ledger(url) as ledger:
            barrier.wait()
            for i in range(rounds):
                # every writer upserts the same few devices: the look-up and insert must not race
                device = ledger.record_device("zvt", f"SHARED{i % 3}", vendor=name)
                ledger.record_inspection(device, "zvt+sim://x", {"verdict": {"status": "ready"}},
                                         operator=name)
                ledger.audit("append", who=name, i=i)
            own = ledger.record_device("adb", f"OWN-{name}")
            run = ledger.start_wipe_run(own, "adb+sim://x", name, {})
            ledger.step_started(run, "erase")
            ledger.step_finished(run, "erase", "done")
            ledger.finish_wipe_run(run, "erased", [])
    except BaseException as error:
        errors.append(f"{name}: {error!r}")

workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print("\\n".join(errors) or "ok")
sys.exit(1 if errors else 0)
"""


def start_children(script: str, args: list[list[str]]) -> list[subprocess.Popen[str]]:
    """Start every child, then release them together (each waits for a line on stdin)."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *child_args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for child_args in args
    ]
    time.sleep(0.5)  # the imports; the go line is what lines them up
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    return children


def finish_children(children: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for child in children:
        stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT)
        assert child.returncode == 0, stdout + stderr
        outputs.append(stdout)
    return outputs


@postgres
@pytest.mark.slow
def test_two_stations_with_many_threads_keep_one_valid_chain(pg_url: str) -> None:
    threads, rounds = 4, 12
    Ledger(pg_url).close()
    finish_children(
        start_children(
            STATION_CHILD, [[pg_url, who, str(threads), str(rounds)] for who in ("p", "q")]
        )
    )
    writers = [f"{who}{t}" for who in ("p", "q") for t in range(threads)]
    per_writer = rounds * 3 + 1 + 4  # the loop; own device; start, step ×2, finish
    with Ledger(pg_url) as ledger:
        chain = ledger.verify_chain()
        assert (chain.ok, chain.rows) == (True, len(writers) * per_writer + 1), chain.reason
        with ledger.engine.connect() as conn:
            appends = [
                json.loads(text)
                for text in conn.execute(
                    sa.text("SELECT data_json FROM audit_log WHERE event = 'append' ORDER BY id")
                ).scalars()
            ]
            shared = conn.execute(
                sa.text("SELECT count(*) FROM devices WHERE serial LIKE 'SHARED%'")
            ).scalar()
        runs = ledger.runs(limit=1000)
        inspected = ledger.inspections(limit=1000)
    for who in writers:  # each writer's rows in its own order, none lost
        assert [row["i"] for row in appends if row["who"] == who] == list(range(rounds))
    assert shared == 3
    assert len(inspected) == len(writers) * rounds
    assert {i.operator for i in inspected} == set(writers)
    assert sorted(run.operator for run in runs) == sorted(writers)
    assert all(run.outcome is Outcome.ERASED for run in runs)


SCHEMA_CHILD = """
import sys
from posdiag.agent.ledger import Ledger

sys.stdin.readline()
with Ledger(sys.argv[1]) as ledger:
    ledger.audit("opened", who=sys.argv[2])
print("ok")
"""


@postgres
def test_stations_starting_at_once_on_an_empty_database_create_one_schema(
    postgres_url: str,
) -> None:
    for round_ in range(3):  # the race needs a few tries to be sure to happen
        name = f"empty_{round_}_{uuid.uuid4().hex[:8]}"
        with admin(postgres_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = postgres_url.rsplit("/", 1)[0] + "/" + name
        try:
            finish_children(start_children(SCHEMA_CHILD, [[url, str(i)] for i in range(4)]))
            with Ledger(url) as ledger:
                chain = ledger.verify_chain()
                assert (chain.ok, chain.rows) == (True, 5)
                with ledger.engine.connect() as conn:
                    meta = conn.execute(sa.text("SELECT key, value FROM ledger_meta")).all()
            assert [tuple(row) for row in meta] == [("schema_version", str(SCHEMA_VERSION))]
        finally:
            with admin(postgres_url) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# -- tampering -----------------------------------------------------------------------------------


def filled(url: str, rows: int = 6) -> None:
    with Ledger(url) as ledger:
        for i in range(rows):
            ledger.audit("step", i=i)
        assert ledger.verify_chain().ok


@postgres
@pytest.mark.parametrize(
    ("sql", "first_bad", "words"),
    [
        ("UPDATE audit_log SET data_json = '{\"i\":99}' WHERE id = 3", 3, "changed"),
        ("UPDATE audit_log SET at = '2000-01-01T00:00:00.000000+00:00' WHERE id = 2", 2, "changed"),
        ("DELETE FROM audit_log WHERE id = 3", 4, "missing"),
        ("DELETE FROM audit_log WHERE id > 4", 5, "truncated"),
        ("UPDATE audit_head SET hash = repeat('1', 64)", 7, "head"),
    ],
    ids=["edited-data", "edited-time", "deleted", "truncated", "head"],
)
def test_tampering_is_detected(pg_url: str, sql: str, first_bad: int, words: str) -> None:
    filled(pg_url)
    with admin(pg_url) as conn:
        conn.execute(sql)
    with Ledger(pg_url) as ledger:
        result = ledger.verify_chain()
    assert (result.ok, result.first_bad_id) == (False, first_bad)
    assert words in result.reason
    verified = CliRunner().invoke(cli.main, ["verify", "--ledger", pg_url])
    assert verified.exit_code == 1


@postgres
def test_lost_head_blocks_writes(pg_url: str) -> None:
    filled(pg_url)
    with admin(pg_url) as conn:
        conn.execute("DELETE FROM audit_head")
    with Ledger(pg_url) as ledger:
        assert not ledger.verify_chain().ok
        with pytest.raises(LedgerError, match="lost its audit head"):
            ledger.audit("more")


# -- a terminal is wiped by one session at a time ------------------------------------------------

INTERRUPTED_CHILD = """
import sys, time
from posdiag.agent.ledger import Ledger

ledger = Ledger(sys.argv[1])
device = ledger.record_device("zvt", "SN-CUT")
run = ledger.start_wipe_run(device, "zvt+sim://x", "A", {})
ledger.step_started(run, "erase")
print(run, flush=True)
time.sleep(60)
"""


@postgres
def test_a_live_run_is_not_resumed_by_another_station(pg_url: str) -> None:
    with Ledger(pg_url) as station_a, Ledger(pg_url, busy_timeout=0.3) as station_b:
        device = station_a.record_device("zvt", "SN-TWICE")
        assert station_a.open_wipe_run("zvt", "SN-TWICE") is None
        run = station_a.start_wipe_run(device, "zvt+sim://a", "A", {})
        station_a.step_started(run, "erase")
        # Station B meets a terminal with the same serial: it must not journal into A's run.
        started = time.monotonic()
        with pytest.raises(LedgerError, match="being wiped by another posdiag session"):
            station_b.open_wipe_run("zvt", "SN-TWICE")
        assert time.monotonic() - started < 3
        with pytest.raises(LedgerError, match="being wiped by another posdiag session"):
            station_b.start_wipe_run(device, "zvt+sim://b", "B", {})
        # B waits for A's run to end, then starts its own.
        waited: list[Any] = []
        patient = Ledger(pg_url, busy_timeout=10)
        thread = threading.Thread(
            target=lambda: waited.append(patient.open_wipe_run("zvt", "SN-TWICE"))
        )
        thread.start()
        time.sleep(0.3)
        assert waited == []
        station_a.step_finished(run, "erase", "done")
        station_a.finish_wipe_run(run, "erased", [])
        thread.join(CHILD_TIMEOUT)
        assert waited == [None]
        second = patient.start_wipe_run(device, "zvt+sim://b", "B", {})
        patient.finish_wipe_run(second, "erased", [])
        patient.close()
        assert [r.operator for r in station_a.runs()] == ["B", "A"]
        assert station_a.verify_chain().ok


def test_a_look_that_starts_nothing_leaves_the_terminal_free(backend_url: str) -> None:
    """Looking for a pending certificate or an open run marks a terminal only while it matters.

    Two stations that each kept the mark of a unit they then refused waited 30 s for each
    other's mark and aborted a wipe.
    """
    with Ledger(backend_url) as station_a, Ledger(backend_url, busy_timeout=0.2) as station_b:
        device = station_a.record_device("zvt", "SN-LOOK")
        assert station_a.awaiting_certificate(family="zvt", serial="SN-LOOK") == []
        assert station_b.open_wipe_run("zvt", "SN-LOOK") is None  # A's look did not keep it
        station_b.release_terminal("zvt", "SN-LOOK")
        # A looks for an open run and then refuses: releasing frees the mark it took.
        assert station_a.open_wipe_run("zvt", "SN-LOOK") is None
        station_a.release_terminal("zvt", "SN-LOOK")
        assert station_b.open_wipe_run("zvt", "SN-LOOK") is None
        station_b.release_terminal("zvt", "SN-LOOK")
        # A run keeps its mark: releasing the terminal does not let another session in.
        assert station_a.open_wipe_run("zvt", "SN-LOOK") is None
        run = station_a.start_wipe_run(device, "zvt+sim://a", "A", {})
        station_a.release_terminal("zvt", "SN-LOOK")
        with pytest.raises(LedgerError, match="being wiped by another posdiag session"):
            station_b.open_wipe_run("zvt", "SN-LOOK")
        station_a.finish_wipe_run(run, "erased", [])
        assert station_b.open_wipe_run("zvt", "SN-LOOK") is None


@postgres
def test_a_closed_session_leaves_no_lock_on_the_shared_pool(pg_url: str) -> None:
    """Ledgers of one process share an engine: closing one must not pool its advisory locks."""
    with Ledger(pg_url, busy_timeout=0.2) as station_b:
        assert station_b.open_wipe_run("zvt", "SN-OTHER") is None  # B has its lock connection
        for attempt in range(8):  # whether the pool keeps that connection open varies
            serial = f"SN-POOL-{attempt}"
            station_a = Ledger(pg_url)
            assert station_a.open_wipe_run("zvt", serial) is None
            station_a.close()  # its lock connection goes back to the process's pool
            key = device_lock_key("zvt", serial) & 0xFFFFFFFF
            with station_b.engine.connect() as conn:
                held = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"
                    ),
                    {"k": key},
                ).scalar_one()
            assert held == 0, serial
            assert station_b.open_wipe_run("zvt", serial) is None


@postgres
def test_a_run_whose_station_died_resumes_elsewhere(pg_url: str) -> None:
    Ledger(pg_url).close()
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_CHILD, pg_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        run = int(child.stdout.readline())
        with Ledger(pg_url, busy_timeout=0.3) as other, pytest.raises(LedgerError):
            other.open_wipe_run("zvt", "SN-CUT")  # still alive: not interrupted
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(CHILD_TIMEOUT)
        if child.stdout is not None:
            child.stdout.close()
    with Ledger(pg_url, busy_timeout=10) as other:  # the server drops the dead session's locks
        found = other.open_wipe_run("zvt", "SN-CUT")
        assert found is not None and found.id == run
        assert [(s.name, s.status) for s in found.steps] == [("erase", StepStatus.STARTED)]
        other.step_finished(run, "erase", "interrupted", "resumed")
        other.finish_wipe_run(run, "aborted", ["resumed elsewhere"])
        assert other.verify_chain().ok


# -- two real stations on one ledger -------------------------------------------------------------


def run_posdiag(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posdiag.agent", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT * 2,
        check=False,
    )


@postgres
@pytest.mark.slow
def test_two_stations_on_one_ledger(pg_url: str, tmp_path: Path) -> None:
    """Two ``posdiag station`` processes wiping at once, with the same serials in both fleets."""
    stations: dict[str, Any] = {}
    for operator in ("A", "B"):
        out = tmp_path / f"certificates-{operator}"
        command = [
            sys.executable, "-m", "posdiag.agent", "station", "--simulate", "8", "--mode", "wipe",
            "--yes", "--operator", operator, "--settle", "--ledger", pg_url, "--out", str(out),
            "--json",
        ]  # fmt: skip
        stations[operator] = subprocess.Popen(
            command,
            env=env_for(tmp_path / f"home-{operator}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    summaries: dict[str, dict[str, Any]] = {}
    for operator, process in stations.items():
        stdout, stderr = process.communicate(timeout=CHILD_TIMEOUT * 2)
        summary = json.loads(stdout.strip().splitlines()[-1])
        assert summary["schema"] == "posdiag.station/1", stderr
        # Exit codes: 0 when every terminal is ready/erased, else 1 (this fleet has refusals).
        assert process.returncode == (0 if summary["ok"] else 1), stderr
        assert summary["terminals"] == 8
        summaries[operator] = summary

    # Same fleet, same outcomes: no terminal lost to the other station's same-serial wipe.
    def outcomes(summary: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted(
            (re.sub(r"[?&]bus=[^&]*", "", r["address"]), r["verdict_or_outcome"])
            for r in summary["results"]
        )

    both = json.dumps({operator: s["failures"] for operator, s in summaries.items()}, indent=1)
    assert outcomes(summaries["A"]) == outcomes(summaries["B"]), both
    for summary in summaries.values():
        assert "aborted" not in summary["counts"], both
    serials_a = {r["serial"] for r in summaries["A"]["results"]}
    assert serials_a & {r["serial"] for r in summaries["B"]["results"]}  # the conflict was real

    env = env_for(tmp_path / "home-reader")
    verified = run_posdiag("verify", "--ledger", pg_url, env=env)
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout
    everything = json.loads(
        run_posdiag(
            "report",
            "--ledger",
            pg_url,
            "--include-open",
            "--include-simulated",
            "--format",
            "json",
            env=env,
        ).stdout
    )
    assert len(everything) == 16
    assert all(row["outcome"] != "in_progress" for row in everything)  # no run left open
    with Ledger(pg_url) as ledger:
        runs = ledger.runs(limit=100)
    assert len({run.id for run in runs}) == len(runs) == 16  # one run per terminal, no duplicates

    for operator, summary in summaries.items():
        result = run_posdiag(
            "report",
            "--ledger",
            pg_url,
            "--batch",
            summary["batch"],
            "--format",
            "json",
            "--include-simulated",
            env=env,
        )
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        assert len(rows) == summary["terminals"]
        assert {row["batch"] for row in rows} == {summary["batch"]}
        assert {row["operator"] for row in rows} == {operator}
        assert sorted((row["serial"], row["outcome"]) for row in rows) == sorted(
            (r["serial"], r["verdict_or_outcome"]) for r in summary["results"]
        )
        certificates = {r["certificate"] for r in summary["results"] if r["certificate"]}
        assert certificates
        assert {row["certificate_path"] for row in rows if row["certificate_path"]} == certificates
        for row in rows:
            if row["certificate_id"]:
                assert Path(row["certificate_path"]).stem == row["certificate_id"]

    checks = json.loads(
        run_posdiag(
            "report",
            "--ledger",
            pg_url,
            "--kind",
            "checks",
            "--format",
            "json",
            "--include-simulated",
            env=env,
        ).stdout
    )
    by_operator: dict[str | None, int] = {}
    for row in checks:
        by_operator[row["operator"]] = by_operator.get(row["operator"], 0) + 1
    assert set(by_operator) == {"A", "B"}
    assert by_operator["A"] >= 8 and by_operator["B"] >= 8  # before (and after) every wipe
