"""Every record a manifest or certificate is built from is sealed in the audit chain.

These tests tamper with a real ledger file the way someone with the file (and sqlite3) would, one
change at a time on a fresh copy, and require ``Ledger.verify`` to name the table and row; then
they check what ``posdiag verify --ledger`` and ``posdiag report`` make of it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from posdiag.agent import cli
from posdiag.agent.ledger import (
    Ledger,
    LedgerError,
    Outcome,
    RunStatus,
    row_content_hash,
    sqlite_url,
)

SEALED = ("ledger_meta", "devices", "inspections", "wipe_runs", "wipe_steps", "certificates")


def report(status: str = "ready") -> dict[str, Any]:
    return {"schema": "posdiag.report/1", "family": "zvt", "verdict": {"status": status}}


@pytest.fixture(autouse=True)
def _private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger with a row in every table: checks, an erased run with its certificate, a refused
    run, and a run still waiting for its certificate."""
    path = tmp_path_factory.mktemp("template") / "ledger.sqlite3"
    with Ledger(sqlite_url(path)) as ledger:
        first = ledger.record_device("zvt", "SN-ONE", vendor="Feig", model="cVEND")
        second = ledger.record_device("adb", "SN-TWO")
        ledger.record_inspection(first, "zvt+tcp://x", report("wipe_required"), operator="Jana")
        ledger.record_inspection(second, "adb+tcp://y", report())
        run = ledger.start_wipe_run(first, "zvt+tcp://x", "Jana", {"batch": "B1"})
        ledger.step_started(run, "reset")
        ledger.step_finished(run, "reset", "done", "TID cleared")
        ledger.step_finished(run, "logoff", "skipped", "not needed")
        ledger.finish_wipe_run(run, "erased", [], certificate={"report_id": "r1"})
        ledger.record_certificate(run, uuid.uuid4(), "/tmp/c1.json", "ab" * 32)
        ledger.record_finished_run(second, "adb+tcp://y", "Jana", {}, "refused", ["unsettled"])
        third = ledger.record_device("zvt", "SN-THREE")
        pending = ledger.start_wipe_run(third, "zvt+tcp://z", "Jana", {"batch": "B1"})
        ledger.finish_wipe_run(pending, "erased", [], certificate={"report_id": "r2"})
        assert ledger.verify().ok
    return path


@pytest.fixture
def copy(template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.sqlite3"
    shutil.copyfile(template, target)
    return target


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def keys(path: Path, table: str) -> list[str]:
    key = "key" if table == "ledger_meta" else "id"
    with raw(path) as conn:
        return [str(row[0]) for row in conn.execute(f"SELECT {key} FROM {table} ORDER BY 1")]


def problems(path: Path) -> set[tuple[str, str | None]]:
    with Ledger(sqlite_url(path)) as ledger:
        result = ledger.verify()
    assert not result.ok
    return {(p.table, p.key) for p in result.problems}


def editable_columns(path: Path, table: str) -> list[str]:
    with raw(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})") if not row[5]]


def cases(template_rows: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
    for table in SEALED:
        for key in template_rows[table]:
            yield table, key


def test_every_column_of_every_row_of_every_table_is_sealed(template: Path, tmp_path: Path) -> None:
    tried = 0
    for table in SEALED:
        key_column = "key" if table == "ledger_meta" else "id"
        for key in keys(template, table):
            for column in editable_columns(template, table):
                path = tmp_path / f"{table}-{key}-{column}.sqlite3"
                shutil.copyfile(template, path)
                try:
                    with raw(path) as conn:
                        conn.execute(
                            f"UPDATE {table} SET {column} = CASE WHEN typeof({column}) = "
                            f"'integer' THEN {column} + 1 ELSE coalesce({column}, '') || 'x' END "
                            f"WHERE {key_column} = ?",
                            (key,),
                        )
                except sqlite3.IntegrityError:  # the schema itself refuses this edit
                    path.unlink()
                    continue
                if table == "ledger_meta":
                    # an edited schema version is refused on open rather than verified
                    with pytest.raises(LedgerError):
                        Ledger(sqlite_url(path)).verify()
                else:
                    assert problems(path) == {(table, key)}, (table, key, column)
                tried += 1
                path.unlink()
    assert tried > 40


def test_a_deleted_metadata_row_is_refused_not_recreated(copy: Path) -> None:
    with raw(copy) as conn:
        conn.execute("DELETE FROM ledger_meta")
    with pytest.raises(LedgerError, match="lost its metadata"):
        Ledger(sqlite_url(copy))
    result = CliRunner().invoke(cli.main, ["verify", "--ledger", sqlite_url(copy)])
    assert result.exit_code != 0


@pytest.mark.parametrize("table", SEALED[1:])
def test_a_deleted_row_is_named(copy: Path, table: str) -> None:
    victim = keys(copy, table)[-1]
    with raw(copy) as conn:
        conn.execute(f"DELETE FROM {table} WHERE id = ?", (int(victim),))
    found = problems(copy)
    assert (table, victim) in found
    with Ledger(sqlite_url(copy)) as ledger:
        reasons = [p.reason for p in ledger.verify().problems if p.table == table]
    assert any("deleted" in reason for reason in reasons)


@pytest.mark.parametrize("table", ["devices", "inspections", "wipe_runs", "certificates"])
def test_a_forged_row_is_named(copy: Path, table: str) -> None:
    with raw(copy) as conn:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        last = conn.execute(f"SELECT * FROM {table} ORDER BY id DESC LIMIT 1").fetchone()
        forged = list(last)
        forged[0] = 999
        if "report_id" in columns:
            forged[columns.index("report_id")] = str(uuid.uuid4())
        if "serial" in columns:
            forged[columns.index("serial")] = "FORGED"
        marks = ", ".join("?" for _ in forged)
        conn.execute(f"INSERT INTO {table} VALUES ({marks})", forged)
    assert problems(copy) == {(table, "999")}


def test_renumbered_rows_are_named(copy: Path) -> None:
    with raw(copy) as conn:
        conn.execute("UPDATE devices SET id = -1 WHERE id = 1")
        conn.execute("UPDATE devices SET id = 1 WHERE id = 2")
        conn.execute("UPDATE devices SET id = 2 WHERE id = -1")
    assert problems(copy) == {("devices", "1"), ("devices", "2")}


def test_a_row_rolled_back_to_an_earlier_sealed_version_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with Ledger(sqlite_url(path)) as ledger:
        device = ledger.record_device("zvt", "SN1")
        run = ledger.start_wipe_run(device, "zvt+tcp://x", "Jana", {})
    with raw(path) as conn:
        running = conn.execute("SELECT * FROM wipe_runs WHERE id = ?", (run,)).fetchone()
    with Ledger(sqlite_url(path)) as ledger:
        ledger.finish_wipe_run(run, "refused", ["tampered terminal"])
    with raw(path) as conn:  # the old row was genuinely sealed once: put it back
        conn.execute("DELETE FROM wipe_runs WHERE id = ?", (run,))
        conn.execute(f"INSERT INTO wipe_runs VALUES ({', '.join('?' * len(running))})", running)
    assert problems(path) == {("wipe_runs", str(run))}


def test_the_seal_is_the_documented_hash_of_the_stored_row(template: Path) -> None:
    with raw(template) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM devices WHERE id = 1").fetchone()
        sealed = conn.execute(
            "SELECT row_hash FROM audit_log WHERE row_table = 'devices' AND row_key = '1' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
    assert sealed == row_content_hash("devices", dict(row))


def test_verify_and_report_name_the_tampered_row(copy: Path) -> None:
    url = sqlite_url(copy)
    runner = CliRunner()
    intact = runner.invoke(cli.main, ["verify", "--ledger", url])
    assert intact.exit_code == 0, intact.output
    assert "ledger intact" in intact.output
    with raw(copy) as conn:  # the refused wipe becomes an erased one
        conn.execute("UPDATE wipe_runs SET outcome = 'erased' WHERE outcome = 'refused'")
        refused_id = conn.execute("SELECT id FROM wipe_runs WHERE device_id = 2").fetchone()[0]
    checked = runner.invoke(cli.main, ["verify", "--ledger", url])
    assert checked.exit_code == 1
    assert f"wipe_runs row {refused_id}" in checked.output
    exported = runner.invoke(cli.main, ["report", "--ledger", url, "--format", "json"])
    assert exported.exit_code == 1
    import json

    rows = json.loads(exported.stdout)
    by_serial = {row["serial"]: row for row in rows}
    assert by_serial["SN-TWO"]["integrity"].startswith("TAMPERED: the wipe run record")
    assert by_serial["SN-ONE"]["integrity"] == "verified"
    assert "marked TAMPERED" in exported.stderr


def test_a_tampered_simulated_row_left_out_of_the_report_is_still_announced(
    tmp_path: Path,
) -> None:
    """The issue's own sequence: a refused simulated wipe turned into an erased one. The report
    leaves simulated rows out by default, so the warning must say where the tampered row went."""
    url = sqlite_url(tmp_path / "d1.db")
    runner = CliRunner()
    wiped = runner.invoke(
        cli.main,
        ["wipe", "adb+sim://unsettled?model=sunmi-p2", "--yes", "--operator", "X", "--ledger", url],
    )
    assert wiped.exit_code == 6, wiped.output
    with raw(tmp_path / "d1.db") as conn:
        conn.execute("UPDATE wipe_runs SET outcome = 'erased'")
    hidden = runner.invoke(cli.main, ["report", "--ledger", url])
    assert hidden.exit_code == 1
    assert hidden.stdout.strip().count("\n") == 0  # the header only
    assert "--include-simulated" in hidden.stderr
    shown = runner.invoke(cli.main, ["report", "--ledger", url, "--include-simulated"])
    assert shown.exit_code == 1
    assert "TAMPERED: the wipe run record" in shown.stdout
    assert "1 row is marked TAMPERED;" in shown.stderr


def test_a_broken_chain_marks_every_row(copy: Path) -> None:
    with raw(copy) as conn:
        conn.execute("UPDATE audit_log SET data_json = '{}' WHERE id = 3")
    result = CliRunner().invoke(cli.main, ["report", "--ledger", sqlite_url(copy)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()[1:]
    assert lines and all("audit chain is broken" in line for line in lines)


# -- the certificate lifecycle -------------------------------------------------------------------


def test_a_certified_outcome_waits_for_its_certificate(tmp_path: Path) -> None:
    with Ledger(sqlite_url(tmp_path / "l.sqlite3")) as ledger:
        device = ledger.record_device("zvt", "SN1")
        run = ledger.start_wipe_run(device, "zvt+tcp://x", "Jana", {"batch": "B7"})
        ledger.finish_wipe_run(run, "erased", ["ok"], certificate={"report_id": "r", "n": 1})
        (pending,) = ledger.awaiting_certificate()
        assert (pending.run_id, pending.outcome, pending.content) == (
            run,
            Outcome.ERASED,
            {"report_id": "r", "n": 1},
        )
        assert ledger.awaiting_certificate(batch="B7") and not ledger.awaiting_certificate(
            batch="other"
        )
        assert ledger.runs()[0].status is RunStatus.CERTIFYING
        with pytest.raises(LedgerError, match="unfinished wipe run"):
            ledger.start_wipe_run(device, "zvt+tcp://x", "Jana", {})
        report_id = uuid.uuid4()
        ledger.record_certificate(run, report_id, "/tmp/c.json", "cd" * 32)
        assert ledger.runs()[0].status is RunStatus.FINISHED
        assert ledger.awaiting_certificate() == []
        # the same certificate recorded again (another station's re-issue) changes nothing
        head = ledger.head()
        ledger.record_certificate(run, report_id, "/tmp/c.json", "cd" * 32)
        assert ledger.head() == head
        with pytest.raises(LedgerError, match="already recorded"):
            ledger.record_certificate(run, report_id, "/tmp/c.json", "ef" * 32)
        record = ledger.certificate_by_report_id(str(report_id))
        assert record is not None and (record.run_id, record.sha256) == (run, "cd" * 32)
        assert ledger.certificate_by_report_id("not-a-uuid") is None
        assert ledger.verify().ok


def test_a_refusal_is_one_transaction(tmp_path: Path) -> None:
    with Ledger(sqlite_url(tmp_path / "l.sqlite3")) as ledger:
        device = ledger.record_device("zvt", "SN1")
        run = ledger.record_finished_run(
            device, "zvt+tcp://x", "Jana", {}, "refused", ["tampered"], simulated=True
        )
        (listed,) = ledger.runs()
        assert (listed.id, listed.status, listed.outcome, listed.simulated) == (
            run,
            RunStatus.FINISHED,
            Outcome.REFUSED,
            True,
        )
        with pytest.raises(TypeError):
            ledger.record_finished_run(device, "x", "J", {}, "refused", "one string")  # type: ignore[arg-type]


# -- privacy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_ledger_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = tmp_path / "elsewhere" / "ledger.sqlite3"
        path.parent.mkdir()
        with Ledger(sqlite_url(path)) as ledger:
            device = ledger.record_device("zvt", "SN1")
            ledger.start_wipe_run(device, "zvt+tcp://x", "Jana", {})  # takes a lock file
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
            lock_dir = path.with_name(f".{path.name}.locks")
            assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o700
            for lock in lock_dir.iterdir():
                assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert modes.pop(".ledger.sqlite3.locks") == 0o700
        assert modes == dict.fromkeys(
            ["ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"], 0o600
        )
        default = Ledger()  # the default folder is created 0700
        default.close()
        folder = tmp_path / "home" / "data" / "posdiag"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        os.umask(old)


def test_a_station_on_a_tampered_ledger_does_not_end_ok(copy: Path) -> None:
    import json

    with raw(copy) as conn:
        conn.execute("UPDATE devices SET serial = 'FORGED' WHERE id = 1")
    result = CliRunner().invoke(
        cli.main,
        ["station", "--simulate", "1", "--mode", "check", "--json", "--ledger", sqlite_url(copy)],
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ledger"]["verified"] is False
    assert "devices row 1" in summary["ledger"]["problem"]
    assert summary["ok"] is False and result.exit_code == 1
