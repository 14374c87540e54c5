"""The CLI's limits: timing options, deadlines, simulator options, and where simulations go.

Every timer, timeout and deadline option refuses ``inf``, ``nan``, negative and absurd values in
one line with exit 2; ``check`` and ``wipe`` end at their overall deadline; ``simulate`` refuses
a bad serial or fault name in one line; simulated terminals are recorded in the simulated
ledger and certificate folder, never the depot's.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli, options

BAD_SECONDS = ["inf", "-inf", "nan", "-1", "0", "1e9", "86401", "soon"]
TIMING_OPTIONS = [
    ["check", "zvt+sim://fresh", "--deadline"],
    ["wipe", "zvt+sim://fresh", "--operator", "X", "--yes", "--deadline"],
    ["station", "--simulate", "1", "--deadline"],
    ["station", "--simulate", "1", "--poll"],
    ["simulate", "zvt", "--time-scale"],
]


@pytest.fixture(autouse=True)
def home(cli_home: Path) -> Path:
    return cli_home


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


def one_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("posdiag: error: ")
    return lines[0]


@pytest.mark.parametrize("value", BAD_SECONDS)
@pytest.mark.parametrize("command", TIMING_OPTIONS, ids=lambda c: f"{c[0]}-{c[-1]}")
def test_timing_options_refuse_odd_values_in_one_line(command: list[str], value: str) -> None:
    if command[-1] == "--time-scale" and value == "0":
        return  # a time scale of 0 means "as fast as possible"
    line = one_line(invoke(*command, value))
    assert command[-1] in line


def test_seconds_type_accepts_sane_values() -> None:
    seconds = options.SECONDS
    assert seconds.convert("2.5", None, None) == 2.5
    assert seconds.convert(86_400, None, None) == 86_400.0
    assert options.TIME_SCALE.convert("0", None, None) == 0.0


def test_simulate_count_is_bounded() -> None:
    assert "--simulate" in one_line(invoke("station", "--simulate", "100000"))
    assert "--max-parallel" in one_line(invoke("station", "--simulate", "1", "--max-parallel", "0"))


def test_check_ends_at_its_deadline() -> None:
    started = time.monotonic()
    # time_scale=1: the terminal keeps saying "please wait" at a realistic pace
    result = invoke("check", "zvt+sim://activated?endless_status=1&time_scale=1", "--deadline", "1")
    assert time.monotonic() - started < 20
    assert result.exit_code == 3, result.output
    assert "did not finish in time (1 s)" in result.stdout


def test_wipe_ends_at_its_deadline(tmp_path: Path) -> None:
    started = time.monotonic()
    result = invoke(
        "wipe",
        "zvt+sim://activated?endless_status=1&time_scale=1",
        "--operator",
        "X",
        "--yes",
        "--deadline",
        "1",
        "--ledger",
        f"sqlite:///{tmp_path / 'l.db'}",
        "--out",
        str(tmp_path),
    )
    assert time.monotonic() - started < 30
    assert result.exit_code in (3, 5), result.output  # nothing answered in time / aborted
    assert not list(tmp_path.glob("*.json"))


# --- simulate ----------------------------------------------------------------------------------


@pytest.mark.parametrize("serial", ["", "bad serial", "\x1b[2J", "x" * 40, "../../etc"])
def test_simulate_refuses_an_invalid_serial(serial: str) -> None:
    line = one_line(invoke("simulate", "zvt", "--serial", serial))
    assert "--serial" in line


@pytest.mark.parametrize("family", ["zvt", "adb"])
def test_simulate_refuses_an_unknown_fault_listing_the_valid_ones(family: str) -> None:
    line = one_line(invoke("simulate", family, "--fault", "corupt_crc=1", "--tcp", "127.0.0.1:0"))
    assert "unknown fault 'corupt_crc'" in line
    assert ("corrupt_crc" if family == "zvt" else "bad_checksum") in line.split("corupt_crc'")[1]


# --- simulated records -------------------------------------------------------------------------


def data(home: Path) -> Path:
    return home / "data" / "posdiag"


def test_a_simulated_wipe_goes_to_the_simulated_ledger_and_folder(home: Path) -> None:
    result = invoke("wipe", "zvt+sim://activated", "--operator", "X", "--yes")
    assert result.exit_code == 0, result.output
    assert "simulated-ledger.sqlite3" in result.stderr  # one line says where it went
    assert not (data(home) / "ledger.sqlite3").exists()
    assert not (data(home) / "certificates").exists()
    assert list((data(home) / "simulated-certificates").glob("*.json"))
    with closing(sqlite3.connect(data(home) / "simulated-ledger.sqlite3")) as db:
        runs = db.execute("SELECT simulated FROM wipe_runs").fetchall()
        inspections = db.execute("SELECT simulated FROM inspections").fetchall()
    assert runs and all(flag == 1 for (flag,) in runs)
    assert inspections and all(flag == 1 for (flag,) in inspections)


def test_an_explicit_ledger_is_used_for_simulated_terminals(home: Path, tmp_path: Path) -> None:
    chosen = tmp_path / "mine.db"
    result = invoke(
        "wipe",
        "zvt+sim://fresh",
        "--operator",
        "X",
        "--yes",
        "--ledger",
        f"sqlite:///{chosen}",
        "--out",
        str(tmp_path / "certs"),
    )
    assert result.exit_code in (0, 1), result.output
    assert chosen.exists() and not (data(home) / "simulated-ledger.sqlite3").exists()


def test_a_station_on_simulator_addresses_keeps_out_of_the_depot_ledger(home: Path) -> None:
    result = invoke("station", "zvt+sim://fresh", "adb+sim://fresh?model=sunmi-p2")
    assert result.exit_code == 0, result.output
    assert (data(home) / "simulated-ledger.sqlite3").exists()
    assert not (data(home) / "ledger.sqlite3").exists()
    with closing(sqlite3.connect(data(home) / "simulated-ledger.sqlite3")) as db:
        flags = db.execute("SELECT simulated FROM inspections").fetchall()
    assert len(flags) == 2 and all(flag == 1 for (flag,) in flags)


def test_a_station_refuses_simulated_and_real_terminals_together() -> None:
    line = one_line(invoke("station", "zvt+sim://fresh", "zvt+tcp://127.0.0.1:9"))
    assert "simulated and real" in line
