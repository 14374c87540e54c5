"""The depot station: many simulated terminals at once, in check and wipe mode.

Every test points ``HOME``, ``XDG_DATA_HOME`` and ``XDG_CONFIG_HOME`` into ``tmp_path``, so the
default ledger, certificates and station key never touch the real user folders.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from posdiag.agent import cli
from posdiag.agent import station as station_module
from posdiag.agent.certificate import verify_certificate
from posdiag.agent.connect import open_terminal
from posdiag.agent.inspect import deadline_text
from posdiag.agent.ledger import Ledger, RunStatus, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.station import SlotResult, Station, simulated_fleet, summarise


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "ledger.sqlite3")


def make(mode: str = "check", **kwargs: Any) -> Station:
    if mode == "wipe":
        kwargs.setdefault("operator", "Dana Depot")
        kwargs.setdefault("assume_yes", True)
    return Station(mode, load_policy(None), **kwargs)


def test_simulated_fleet_is_deterministic_mixed_and_distinct() -> None:
    fleet = simulated_fleet(8)
    assert fleet == simulated_fleet(8)
    assert fleet[0] == "zvt+sim://activated?serial=5B000000"
    assert {a.split("+")[0] for a in fleet} == {"zvt", "adb"}
    assert any("model=sunmi-p2" in a for a in fleet)
    big = simulated_fleet(40)
    assert len(set(big)) == 40
    assert simulated_fleet(4, seed=1)[0] == fleet[1]


def test_check_fleet_gives_the_verdicts_of_single_checks(ledger_url: str) -> None:
    fleet = simulated_fleet(8)
    results = make(ledger_url=ledger_url).run(fleet)
    assert [r.address for r in results] == fleet
    for result in results:
        single = cli.check_one(result.address, None, None)
        assert result.verdict_or_outcome == single.verdict.status.value, result.address
        assert result.serial == (single.identity.serial if single.identity else None)
        assert result.stage == "done"
    with Ledger(ledger_url) as ledger:
        assert len(ledger.inspections(limit=100)) == len(fleet)
        assert ledger.verify_chain().ok


def test_wipe_fleet_certifies_and_journals(ledger_url: str, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    fleet = simulated_fleet(8)
    events: list[SlotResult] = []
    results = make(
        "wipe", ledger_url=ledger_url, out_dir=out, settle=True, on_event=events.append
    ).run(fleet)
    plain = {r.address: r.address.partition("serial=")[0].rstrip("?&") for r in results}
    outcome = {plain[r.address]: r.verdict_or_outcome for r in results}
    assert outcome["zvt+sim://activated"] == "erased"
    assert outcome["zvt+sim://tampered"] == "refused"
    assert outcome["adb+sim://low-battery?model=newland-n910"] == "refused"
    wiped = [r for r in results if r.verdict_or_outcome in ("erased", "erased_with_exceptions")]
    assert len(wiped) >= 4
    for result in wiped:
        assert result.certificate is not None
        assert verify_certificate(Path(result.certificate).read_text(encoding="utf-8")).ok
    for result in results:
        if result.verdict_or_outcome == "refused":
            assert result.certificate is None and result.reasons
    stages = {e.stage for e in events if e.address == fleet[0]}
    assert {"queued", "connecting", "inspecting", "wiping", "done"} <= stages
    with Ledger(ledger_url) as ledger:
        runs = ledger.runs(limit=100)
        assert ledger.verify_chain().ok
    finished = [r for r in runs if r.status is RunStatus.FINISHED and not r.options.get("refused")]
    assert sorted(r.address for r in finished) == sorted(r.address for r in wiped)
    assert all(r.operator == "Dana Depot" for r in runs)
    assert not [r for r in runs if r.status is not RunStatus.FINISHED]


def test_max_parallel_bounds_concurrency(monkeypatch: pytest.MonkeyPatch, ledger_url: str) -> None:
    real = station_module.inspect_terminal
    lock = threading.Lock()
    now, peak = [0], [0]

    def counting(*args: Any, **kwargs: Any) -> Any:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        try:
            time.sleep(0.05)
            return real(*args, **kwargs)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(station_module, "inspect_terminal", counting)
    results = make(ledger_url=ledger_url, max_parallel=2).run(simulated_fleet(8))
    assert len(results) == 8
    assert peak[0] == 2


def test_silent_terminal_hits_its_deadline_and_does_not_hold_the_others(ledger_url: str) -> None:
    silent = "zvt+sim://activated?silent=1"
    started = time.monotonic()
    results = make(ledger_url=ledger_url, deadline_s=0.5, max_parallel=4).run(
        [silent, *simulated_fleet(4)[1:]]
    )
    assert time.monotonic() - started < 5
    by = {r.address: r for r in results}
    assert by[silent].verdict_or_outcome == "unreachable"
    assert by[silent].reasons == (deadline_text(0.5),)
    assert "did not finish in time (0.5 s)" in by[silent].reasons[0]
    assert by[silent].stage == "failed"
    assert all(r.stage == "done" for a, r in by.items() if a != silent)


def test_unexpected_exception_stays_with_its_terminal(ledger_url: str) -> None:
    fleet = simulated_fleet(6)
    broken = next(a for a in fleet if a.startswith("zvt+sim://fresh?"))

    def opener(address: Any, **kwargs: Any) -> Any:
        if str(address) == broken:
            raise RuntimeError("the cable caught fire")
        return open_terminal(address, **kwargs)

    results = make(ledger_url=ledger_url, opener=opener).run(fleet)
    by = {r.address: r for r in results}
    assert by[broken].stage == "failed"
    assert by[broken].reasons == ("RuntimeError: the cable caught fire",)
    assert all(r.stage == "done" for a, r in by.items() if a != broken)


def test_same_address_twice_is_worked_once(ledger_url: str) -> None:
    opened: list[str] = []

    def opener(address: Any, **kwargs: Any) -> Any:
        opened.append(str(address))
        return open_terminal(address, **kwargs)

    results = make(ledger_url=ledger_url, opener=opener).run(
        ["zvt+sim://fresh", "adb+sim://fresh?model=sunmi-p2", "zvt+sim://fresh"]
    )
    assert [r.address for r in results] == ["zvt+sim://fresh", "adb+sim://fresh?model=sunmi-p2"]
    assert sorted(opened) == sorted(set(opened)) and len(opened) == 2


def test_watch_starts_new_terminals_and_marks_unplugged(ledger_url: str) -> None:
    present = ["zvt+sim://fresh"]
    stop = threading.Event()
    events: list[SlotResult] = []

    def discover() -> list[Any]:
        return [station_module.Found(a, "zvt", "terminal", "sim", None, None) for a in present]

    worker = make(ledger_url=ledger_url, deadline_s=10, on_event=events.append)
    thread = threading.Thread(target=lambda: results.extend(worker.watch(0.05, stop, discover)))
    results: list[SlotResult] = []
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not any(e.stage == "done" for e in events) and time.monotonic() < deadline:
            time.sleep(0.02)
        present.append("zvt+sim://activated?silent=1")  # plugged in, never answers
        while not any(e.stage == "connecting" and "silent" in e.address for e in events):
            time.sleep(0.02)
        present.remove("zvt+sim://activated?silent=1")  # unplugged while its worker runs
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    by = {r.address: r for r in results}
    assert by["zvt+sim://fresh"].verdict_or_outcome == "ready"
    assert by["zvt+sim://activated?silent=1"].stage == "unplugged"
    assert len(results) == 2  # the fresh one stayed plugged in: worked once


def test_summary_counts_and_failures() -> None:
    results = [
        SlotResult("a", "zvt", stage="done", verdict_or_outcome="ready"),
        SlotResult("b", "zvt", stage="failed", verdict_or_outcome="unreachable", reasons=("x",)),
    ]
    summary = summarise(results)
    assert summary["counts"] == {"ready": 1, "unreachable": 1}
    assert summary["failures"] == [
        {"address": "b", "verdict_or_outcome": "unreachable", "reasons": ["x"]}
    ]
    assert summary["ok"] is False


def test_cli_station_simulate_json_summary(ledger_url: str) -> None:
    result = CliRunner().invoke(
        cli.main, ["station", "--simulate", "6", "--json", "--ledger", ledger_url]
    )
    lines = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    summary = lines[-1]
    assert summary["schema"] == "posdiag.station/1"
    assert summary["terminals"] == 6
    assert sum(summary["counts"].values()) == 6
    assert result.exit_code == (0 if summary["ok"] else 1)
    assert result.exit_code == 0  # every terminal was checked; needing a wipe is a verdict
    assert summary["counts"]["wipe_required"] >= 1 and summary["failures"] == []
    assert len({r["serial"] for r in summary["results"]}) == 6  # one serial per unit


def test_cli_station_event_stream_is_json_lines(ledger_url: str) -> None:
    result = CliRunner().invoke(
        cli.main, ["station", "--simulate", "3", "--ledger", ledger_url, "--max-parallel", "1"]
    )
    events = []
    for line in result.output.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    assert all(e["event"] == "slot" for e in events)
    stages = [e["stage"] for e in events if e["address"].startswith("zvt+sim://activated?serial=")]
    assert stages[0] == "queued" and stages[-1] == "done"
    assert "inspecting" in stages
    assert "3 terminals" in result.output


def test_cli_station_wipe_needs_operator_and_yes(ledger_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli.main, ["station", "--mode", "wipe", "--simulate", "2"])
    assert result.exit_code == 2
    result = runner.invoke(
        cli.main, ["station", "--mode", "wipe", "--simulate", "2", "--operator", "Dana"]
    )
    assert result.exit_code == 2


def test_cli_station_wipe_fresh_fleet_exits_zero(ledger_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main,
        [
            "station",
            "--mode",
            "wipe",
            "--simulate",
            "4",
            "--operator",
            "Dana",
            "--yes",
            "--settle",
            "--json",
            "--ledger",
            ledger_url,
            "--out",
            str(tmp_path / "c"),
        ],
    )
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["terminals"] == 4
    assert result.exit_code == (0 if summary["ok"] else 1)
