"""The station on a simulated bus: hotplug in and out, a terminal pulled mid-wipe, fleet files,
and the README's main job (`posdiag station --simulate 16 --mode wipe --yes --operator NAME`)
checked against single wipes, certificates and the manifest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from posdiag.agent import cli
from posdiag.agent.certificate import verify_certificate
from posdiag.agent.connect import open_terminal
from posdiag.agent.fleet import FleetPlayer, fleet_of
from posdiag.agent.ledger import Ledger, RunStatus, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.station import SlotResult, Station, simulated_fleet, summarise
from posdiag.agent.wipe import WipeOptions, WipeSession
from posdiag.drivers.address import parse_address
from posdiag.simulators.bus import SimulatedBus

pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "ledger.sqlite3")


@pytest.fixture
def bus() -> Iterator[SimulatedBus]:
    with SimulatedBus() as simulated:
        yield simulated


def wipe_station(ledger_url: str, out: Path, **kwargs: Any) -> Station:
    return Station(
        "wipe",
        load_policy(None),
        operator="Dana Depot",
        assume_yes=True,
        ledger_url=ledger_url,
        out_dir=out,
        **kwargs,
    )


def watch_in_thread(
    station: Station, bus: SimulatedBus, until: Any
) -> tuple[threading.Thread, list[SlotResult]]:
    results: list[SlotResult] = []
    thread = threading.Thread(
        target=lambda: results.extend(
            station.watch(0.05, discover_fn=bus.discover, until=until)
        ),
        daemon=True,
    )
    thread.start()
    return thread, results


def test_hotplug_in_and_out_during_a_run(bus: SimulatedBus, ledger_url: str) -> None:
    events: list[SlotResult] = []
    station = Station("check", load_policy(None), ledger_url=ledger_url, on_event=events.append)
    first = bus.add("zvt+sim://fresh")
    late = bus.add("adb+sim://activated?model=pax-a920", plugged=False)
    pulled = bus.add("zvt+sim://activated?silent=1")  # never answers: pulled out while waiting
    finished = threading.Event()
    thread, results = watch_in_thread(station, bus, finished.is_set)
    try:
        _wait(lambda: any(e.address == first and e.stage == "done" for e in events))
        _wait(lambda: any(e.address == pulled and e.stage == "inspecting" for e in events))
        bus.unplug(pulled)
        station.notify_change()
        bus.plug(late)
        station.notify_change()
        _wait(lambda: any(e.address == late and e.stage == "done" for e in events))
        finished.set()
        thread.join(10)
    finally:
        station.stop_event.set()
        thread.join(10)
    assert not thread.is_alive()
    by = {r.address: r for r in results}
    assert by[first].verdict_or_outcome == "ready"
    assert by[late].verdict_or_outcome == "wipe_required"
    assert by[pulled].verdict_or_outcome == "unreachable"
    assert by[pulled].stage in ("unplugged", "failed")
    assert len(results) == 3  # the first one stayed plugged in: worked once, not per poll


def test_a_terminal_pulled_mid_wipe_resumes_when_plugged_back(
    bus: SimulatedBus, ledger_url: str, tmp_path: Path
) -> None:
    address = bus.add("zvt+sim://activated")
    pulled = threading.Event()

    def on_event(update: SlotResult) -> None:
        # the cable comes out after the first wipe step, in the middle of the run
        if update.stage == "wiping" and update.steps_done >= 1 and not pulled.is_set():
            pulled.set()
            bus.unplug(address)

    station = wipe_station(ledger_url, tmp_path / "certs", on_event=on_event)
    replugged = threading.Event()
    thread, results = watch_in_thread(station, bus, replugged.is_set)
    try:
        _wait(lambda: pulled.is_set() and bool(station._slots) and station._slots[0].final)
        assert station._slots[0].final is not None
        first = station._slots[0].final
        assert first.verdict_or_outcome == "aborted"
        bus.plug(address)
        station.notify_change()
        _wait(lambda: len(station._slots) == 2 and station._slots[1].final is not None)
        replugged.set()
        thread.join(10)
    finally:
        station.stop_event.set()
        thread.join(10)
    assert [r.verdict_or_outcome for r in results] == ["aborted", "erased"]
    summary = summarise(results)
    assert summary["terminals"] == 1 and summary["counts"] == {"erased": 1} and summary["ok"]
    with Ledger(ledger_url) as ledger:
        runs = ledger.runs(limit=10)
        assert ledger.verify_chain().ok
    real_runs = [r for r in runs if not r.options.get("refused")]
    assert len(real_runs) == 1  # resumed, not started again
    run = real_runs[0]
    assert run.status is RunStatus.FINISHED and run.outcome == "erased"
    statuses = [s.status for s in run.steps]
    assert "verified" in statuses or "interrupted" in statuses or len(run.steps) >= 2
    assert results[1].certificate is not None
    document = Path(results[1].certificate).read_text(encoding="utf-8")
    assert verify_certificate(document).ok


def test_cli_fleet_file_with_a_late_and_a_flaky_terminal(ledger_url: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        """
[[terminal]]
scenario = "fresh"
count = 2

[[terminal]]
name = "late"
family = "adb"
model = "sunmi-p2"
scenario = "fresh"
plug_at = 0.4
"""
    )
    result = CliRunner().invoke(
        cli.main, ["station", "--fleet", str(fleet), "--json", "--ledger", ledger_url]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["terminals"] == 3 and summary["counts"] == {"ready": 3}
    assert any("adb+sim://fresh?model=sunmi-p2" in r["address"] for r in summary["results"])


def test_cli_bad_fleet_file_is_a_usage_error(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text("[[terminal]]\nscenario = 'fresh'\ncount = 'many'\n")
    result = CliRunner().invoke(cli.main, ["station", "--fleet", str(fleet)])
    assert result.exit_code == 2
    assert "count must be a whole number" in result.output
    result = CliRunner().invoke(cli.main, ["station", "--simulate", "2", "--fleet", str(fleet)])
    assert result.exit_code == 2


def _expected_outcome(address: str, tmp_path: Path) -> str:
    """What one wipe of a fresh simulator of this address ends with (no station involved)."""
    terminal = open_terminal(parse_address(address))
    options = WipeOptions(operator="Dana Depot", assume_yes=True, out_dir=tmp_path / "single")
    return WipeSession(terminal, load_policy(None), options, simulated=True).run().outcome.value


def test_readme_main_job_simulate_16_wipe(ledger_url: str, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = CliRunner().invoke(
        cli.main,
        [
            "station", "--simulate", "16", "--mode", "wipe", "--yes", "--operator", "Dana Depot",
            "--json", "--ledger", ledger_url, "--out", str(out),
        ],
    )
    summary = json.loads(result.output.splitlines()[-1])
    assert result.exit_code == (0 if summary["ok"] else 1)
    assert summary["terminals"] == 16
    results = summary["results"]
    # every terminal ends as one wipe of the same scenario alone ends
    for row, plain in zip(results, sorted(simulated_fleet(16)), strict=True):
        assert row["address"].split("bus=")[0].rstrip("?&") == plain
        assert row["verdict_or_outcome"] == _expected_outcome(plain, tmp_path), plain
    wiped = [r for r in results if r["verdict_or_outcome"] in ("erased", "erased_with_exceptions")]
    assert wiped and len(list(out.glob("*.json"))) == len(wiped)
    for row in wiped:
        assert verify_certificate(Path(row["certificate"]).read_text(encoding="utf-8")).ok
    manifest = CliRunner().invoke(
        cli.main,
        [
            "report",
            "--ledger",
            ledger_url,
            "--batch",
            summary["batch"],
            "--format",
            "json",
            "--include-simulated",
        ],
    )
    assert manifest.exit_code == 0, manifest.output
    rows = json.loads(manifest.output)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert len(rows) == 16
    by_serial = {r["serial"]: r for r in rows}
    for row in results:
        entry = by_serial[row["serial"]]
        assert entry["outcome"] == row["verdict_or_outcome"]
        assert entry["operator"] == "Dana Depot"
        if row["certificate"]:
            assert entry["certificate_id"] == Path(row["certificate"]).stem


def test_plain_fleet_player_and_station(bus: SimulatedBus, ledger_url: str) -> None:
    station = Station("check", load_policy(None), ledger_url=ledger_url, max_parallel=8)
    player = FleetPlayer(bus, fleet_of(simulated_fleet(12)), on_change=station.notify_change)
    player.start()
    started = time.monotonic()
    try:
        results = station.watch(5.0, discover_fn=bus.discover, until=player.done)
    finally:
        player.stop()
    assert len(results) == 12 and all(r.stage == "done" for r in results)
    assert time.monotonic() - started < 4.5  # the last worker ends the watch, not the poll


def _wait(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_watching_station_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    script = Path(sys.executable).with_name("posdiag")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "posdiag.agent"]
    proc = subprocess.Popen(
        [*command, "station", "--json", "--ledger", sqlite_url(tmp_path / "l.sqlite3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.stderr is not None
    try:
        line = ""
        while "Watching for terminals" not in line:
            line = proc.stderr.readline()
            assert line, "the station ended without watching"
        assert any(source in line for source in ("pyudev", "netlink", "polling"))
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["terminals"] == 0 and summary["ok"]


def test_simulated_fleets_keep_out_of_the_depot_ledger(isolated_home: Path) -> None:
    result = CliRunner().invoke(
        cli.main, ["station", "--simulate", "2", "--mode", "wipe", "--yes", "--operator", "J"]
    )
    assert result.exit_code in (0, 1), result.output
    data = isolated_home / "data" / "posdiag"
    assert (data / "simulated-ledger.sqlite3").exists()
    assert not (data / "ledger.sqlite3").exists()
    assert any((data / "simulated-certificates").glob("*.json"))
    with Ledger(sqlite_url(data / "simulated-ledger.sqlite3")) as ledger:
        assert len(ledger.runs()) == 2
