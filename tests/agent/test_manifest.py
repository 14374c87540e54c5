"""The batch manifest (``posdiag report``) against the ledger it is read from.

Every test points ``HOME``, ``XDG_DATA_HOME`` and ``XDG_CONFIG_HOME`` into ``tmp_path``, so the
default ledger, certificates and station key never touch the real user folders.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.agent.certificate import verify_certificate
from posdiag.agent.ledger import Ledger, RunStatus, default_path, sqlite_url
from posdiag.agent.manifest import (
    CHECK_COLUMNS,
    WIPE_COLUMNS,
    ManifestError,
    parse_since,
    to_csv,
)
from posdiag.agent.report import VerdictStatus
from posdiag.agent.station import new_batch_id

WIPES = ("zvt+sim://activated", "adb+sim://activated?model=sunmi-p2")


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("POSDIAG_ZVT_PASSWORD", raising=False)
    yield home


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def report_csv(*args: str) -> list[dict[str, str]]:
    result = invoke("report", "--format", "csv", "--include-simulated", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
    text = result.stdout_bytes.decode("utf-8-sig")
    header = ",".join(WIPE_COLUMNS if "checks" not in args else CHECK_COLUMNS)
    assert text.startswith(header + "\r\n")  # RFC 4180: CRLF line ends; one BOM only
    return list(csv.DictReader(io.StringIO(text, newline="")))


def report_json(*args: str) -> list[dict[str, Any]]:
    result = invoke("report", "--format", "json", "--include-simulated", *args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def station_wipe(n: int) -> str:
    # --ledger: simulated fleets otherwise keep to a ledger of their own; here they join the
    # single wipes in the default one
    result = invoke(
        "station", "--simulate", str(n), "--mode", "wipe", "--yes", "--operator", "J", "--settle",
        "--json", "--ledger", sqlite_url(default_path()),
    )  # fmt: skip
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["terminals"] == n
    batch = summary["batch"]
    assert isinstance(batch, str) and len(batch) == len("20260509T073525Z-ab12")
    return batch


@pytest.fixture
def wiped() -> dict[str, Any]:
    """Two single wipes, then two station runs: a populated ledger."""
    for address in WIPES:
        # --ledger: a simulated terminal's wipe otherwise goes to the simulated ledger
        result = invoke(
            "wipe", address, "--operator", "Kim", "--yes", "--json",
            "--ledger", sqlite_url(default_path()),
        )  # fmt: skip
        assert result.exit_code in (0, 1), result.output
    return {"first": station_wipe(6), "second": station_wipe(3)}


def finished_runs() -> list[Any]:
    with Ledger() as ledger:
        return [run for run in ledger.runs(limit=1000) if run.status is RunStatus.FINISHED]


def test_csv_and_json_rows_match_the_ledger(wiped: dict[str, Any]) -> None:
    runs = finished_runs()
    rows = report_csv()
    assert rows == [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in report_json()]
    assert len(rows) == len(runs) == 2 + 6 + 3
    by_start = {run.started_at.isoformat(timespec="microseconds"): run for run in runs}
    for row in rows:
        run = by_start[row["started_at"]]
        assert row["serial"] == run.serial and row["family"] == run.family
        assert row["outcome"] == run.outcome.value
        assert row["operator"] == run.operator
        assert row["reasons"] == "; ".join(run.reasons)
        if row["certificate_id"]:
            path = Path(row["certificate_path"])
            assert path.name == row["certificate_id"] + ".json" and path.is_file()
            verified = verify_certificate(path.read_bytes())
            assert verified.ok, verified.reason
            assert verified.content is not None
            assert verified.content["report_id"] == row["certificate_id"]
    outcomes = [row["outcome"] for row in rows]
    assert "erased" in outcomes and "refused" in outcomes  # the fleet has both
    assert sum(1 for row in rows if row["certificate_id"]) >= 4
    assert [row["batch"] for row in rows[:2]] == ["", ""]  # single wipes have no batch


def test_batch_selects_one_station_run(wiped: dict[str, Any]) -> None:
    first = report_json("--batch", wiped["first"])
    second = report_csv("--batch", wiped["second"])
    assert len(first) == 6 and len(second) == 3
    assert {row["batch"] for row in first} == {wiped["first"]}
    assert {row["operator"] for row in first + second} == {"J"}
    assert report_json("--batch", "no-such-batch") == []


def test_since(wiped: dict[str, Any]) -> None:
    assert report_csv("--since", "2999-01-01") == []
    assert report_json("--since", "2999-01-01T00:00:00Z") == []
    assert len(report_json("--since", "2000-01-01")) == 11
    runs = sorted(finished_runs(), key=lambda run: run.started_at)
    cut = runs[-3].started_at.isoformat()
    assert len(report_json("--since", cut)) == 3


def test_checks_list_inspections(wiped: dict[str, Any]) -> None:
    with Ledger() as ledger:
        stored = ledger.inspections(limit=1000)
    rows = report_csv("--kind", "checks")
    assert len(rows) == len(stored) == len(report_json("--kind", "checks")) > 0
    assert {row["serial"] for row in rows} == {record.serial for record in stored}
    assert {row["verdict"] for row in rows} <= {status.value for status in VerdictStatus}
    assert all("password" not in row["address"] for row in rows)
    assert report_json("--kind", "checks", "--since", "2999-01-01") == []


def test_open_runs_only_when_asked(tmp_path: Path) -> None:
    with Ledger() as ledger:
        device = ledger.record_device("zvt", "OPEN1", "FEIG", "cVEND")
        ledger.start_wipe_run(device, "zvt+sim://activated", "Kim", {"batch": "b-1"})
    assert report_json() == []
    rows = report_json("--include-open", "--batch", "b-1")
    assert len(rows) == 1
    assert rows[0]["outcome"] == "in_progress" and rows[0]["finished_at"] is None


def test_empty_ledger_gives_header_only() -> None:
    result = invoke("report")
    assert result.exit_code == 0
    assert result.stdout_bytes == b"\xef\xbb\xbf" + (",".join(WIPE_COLUMNS) + "\r\n").encode()
    assert report_json() == []


@pytest.mark.parametrize("bad", ["bogus", "2026-13-01", "yesterday"])
def test_bad_since_is_a_usage_error(bad: str) -> None:
    result = invoke("report", "--since", bad)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_batch_with_checks_is_a_usage_error() -> None:
    assert invoke("report", "--kind", "checks", "--batch", "x").exit_code == 2


def test_parse_since_forms() -> None:
    assert parse_since("2026-05-09") == datetime(2026, 5, 9, tzinfo=UTC)
    assert parse_since("2026-05-09T07:30:00") == datetime(2026, 5, 9, 7, 30, tzinfo=UTC)
    assert parse_since("2026-05-09T09:30:00+02:00") == datetime(2026, 5, 9, 7, 30, tzinfo=UTC)
    assert parse_since("2026-05-09T07:30:00Z").tzinfo is UTC
    with pytest.raises(ManifestError):
        parse_since("2026/05/09")


def test_csv_quotes_per_rfc4180() -> None:
    text = to_csv([{"serial": 'a,"b"', "model": None}], ("serial", "model"), bom=False)
    assert text == 'serial,model\r\n"a,""b""",\r\n'


def test_batch_ids_are_distinct_and_shaped() -> None:
    ids = {new_batch_id() for _ in range(20)}
    assert len(ids) > 1
    for value in ids:
        stamp, suffix = value.split("-")
        datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
        assert len(suffix) == 4 and int(suffix, 16) >= 0


def test_simulated_terminals_stay_out_unless_asked(wiped: dict[str, Any]) -> None:
    result = invoke("report", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []  # every run in this ledger was a simulated terminal
    assert len(report_json()) == 11
