"""An interrupted wipe resumes: done steps are checked by reading state, the rest is run.

Each ZVT and Android wipe step is interrupted once by a power cut in the simulator
(``power_loss_at``): the terminal drops the link in the middle of the step, leaving part of its
effect, and the first :class:`WipeSession` ends ``aborted`` with its ledger run still open. A
second session on a new connection to the same, long-lived simulator (a loopback TCP listener in
this process) must resume that run: the steps finished before the cut are reported ``verified``
and their commands are *not* sent again; the interrupted step and the ones after it run.

The last test does the same across processes: ``posdiag wipe`` is SIGKILLed in the middle of a
step against a ``posdiag simulate`` subprocess, and running it again resumes and finishes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.certificate import StationKey, verify_certificate
from posdiag.agent.connect import open_terminal
from posdiag.agent.ledger import Ledger, RunStatus, StepStatus, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.wipe import Outcome, WipeOptions, WipeResult, WipeSession
from posdiag.drivers.adb.auth import AdbKey, default_key_path
from posdiag.drivers.address import parse_address
from posdiag.simulators.pytest_plugin import SimulatedAdb, SimulatedZvt

PASSWORD = "314159"
POLICY = load_policy()
SUNMI_PAYMENT = "com.sunmi.payment.service"

ZvtFactory = Callable[..., SimulatedZvt]
AdbFactory = Callable[..., SimulatedAdb]


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("POSDIAG_ZVT_PASSWORD", raising=False)


@pytest.fixture(scope="module")
def adb_pem() -> bytes:
    """One ADB host key for the module (RSA-2048 generation is slow)."""
    return AdbKey.generate().to_pem()


@pytest.fixture
def adb_key_file(adb_pem: bytes) -> Path:
    """The module's key as posdiag's own key in the isolated config folder (mode 0600)."""
    path = default_key_path()
    path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(adb_pem)
    return path


@dataclass
class Station:
    ledger: Ledger
    key: StationKey
    out: Path


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    key = StationKey.load_or_create(tmp_path / "station.pem")
    with Ledger(sqlite_url(tmp_path / "ledger.sqlite3")) as ledger:
        yield Station(ledger, key, tmp_path / "certificates")


def connect(address: str) -> Any:
    """A terminal by address through the agent's own connect path (a new TCP connection)."""
    return open_terminal(parse_address(address), password=PASSWORD)


def wipe(terminal: Any, station: Station, **options: Any) -> WipeResult:
    # the generic Android model has no batch-export recipe: the operator vouches for settlement
    options.setdefault("confirmed_settled", True)
    session = WipeSession(
        terminal,
        POLICY,
        WipeOptions(operator="Jana", assume_yes=True, out_dir=station.out, **options),
        ledger=station.ledger,
        key=station.key,
        simulated=True,
    )
    return session.run()


def cut_power_once_planned(terminal: Any, faults: Any, command: str) -> None:
    """Arm ``power_loss_at`` once the wipe has planned, i.e. after the inspection.

    The inspection ends with a Log-Off of its own; arming the fault only now makes it hit the
    wipe's step, not the inspection.
    """
    plan = terminal.wipe_plan

    def armed() -> Any:
        steps = plan()
        faults.power_loss_at = command
        return steps

    terminal.wipe_plan = armed


def interrupted(station: Station, result: WipeResult, family: str, serial: str) -> Any:
    """The first run ended aborted, resumable: its ledger run is open."""
    assert result.outcome is Outcome.ABORTED, result.reasons
    assert any("run posdiag wipe again to resume" in r for r in result.reasons)
    assert result.certificate is None
    run = station.ledger.open_wipe_run(family, serial)
    assert run is not None and run.id == result.run_id
    assert run.status is RunStatus.RUNNING
    return run


def finished(station: Station, result: WipeResult, run_id: int) -> None:
    """The resumed run is the same ledger run, finished, certified, with an intact chain."""
    assert result.resumed is True
    assert result.run_id == run_id
    run = next(r for r in station.ledger.runs() if r.id == run_id)
    assert run.status is RunStatus.FINISHED
    assert run.outcome is not None and run.outcome.value == result.outcome.value
    assert result.certificate is not None
    checked = verify_certificate(result.certificate.read_text(encoding="utf-8"))
    assert checked.ok and checked.content is not None
    assert [(s["name"], s["status"]) for s in checked.content["steps"]] == [
        (s.name, s.status) for s in result.steps
    ]
    assert station.ledger.verify_chain().ok


# --- ZVT -----------------------------------------------------------------------------------------

ZVT_STEPS = ["reset_terminal_id", "log_off", "factory_reset"]
ZVT_PLAN = ["settle", *ZVT_STEPS]
ZVT_CUTS = {
    # step: (the command during which power fails, its name in the simulator's command log)
    "settle": ("End-of-Day", "End-of-Day"),
    "reset_terminal_id": ("Set/Reset Terminal-ID", "Set/Reset Terminal-ID"),
    "log_off": ("Log-Off", "Log-Off"),
    "factory_reset": ("0FA10255", "Feig vendor request"),
}


@pytest.mark.parametrize("step", list(ZVT_CUTS))
def test_zvt_wipe_resumes_after_a_power_cut_in_each_step(
    zvt_terminal: ZvtFactory, station: Station, step: str
) -> None:
    # unsettled + --settle: the longest ZVT plan, End-of-Day first
    fault, command = ZVT_CUTS[step]
    sim = zvt_terminal("unsettled", attach="tcp", password=PASSWORD)
    assert sim.address is not None
    plan = ZVT_PLAN

    first_terminal = connect(sim.address)
    cut_power_once_planned(first_terminal, sim.state.faults, fault)
    first = wipe(first_terminal, station, settle=True)
    run = interrupted(station, first, "zvt", sim.state.serial)
    k = plan.index(step)
    assert [(s.name, s.status) for s in run.steps] == [
        *((name, StepStatus.DONE) for name in plan[:k]),
        (step, StepStatus.STARTED),
    ]
    assert sim.state.faults.power_loss_at == ""  # the cut happened

    seen = len(sim.simulator.model.commands_seen)
    second = wipe(connect(sim.address), station, settle=True)
    assert second.outcome is Outcome.ERASED, second.reasons
    assert [s.name for s in second.steps] == plan
    statuses = {s.name: (s.status, s.verified) for s in second.steps}
    for name in plan[:k]:
        assert statuses[name] == ("verified", True), name
    for name in plan[k:]:
        assert statuses[name] == ("done", True), name
    again = sim.simulator.model.commands_seen[seen:]
    if k > 0:
        assert "End-of-Day" not in again  # verified by reading the totals, not settled again
    if k > 1:
        assert "Set/Reset Terminal-ID" not in again
    assert command in again
    state = sim.state
    assert state.transactions == []
    assert state.terminal_id is None and state.merchant_lines == []
    assert state.status_byte == 0x51
    ledger_steps = {s.name: s.status for s in station.ledger.steps(run.id)}
    for name in plan[:k]:
        assert ledger_steps[name] is StepStatus.VERIFIED
    for name in plan[k:]:
        assert ledger_steps[name] is StepStatus.DONE
    finished(station, second, run.id)


def test_resume_is_refused_without_settle_and_the_run_stays_open(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_terminal("unsettled", attach="tcp", password=PASSWORD)
    assert sim.address is not None
    first_terminal = connect(sim.address)
    cut_power_once_planned(first_terminal, sim.state.faults, "End-of-Day")
    first = wipe(first_terminal, station, settle=True)
    run = interrupted(station, first, "zvt", sim.state.serial)
    assert len(sim.state.transactions) == 2  # the host took half the batch before the cut

    refused = wipe(connect(sim.address), station)
    assert refused.outcome is Outcome.REFUSED
    assert any("--settle" in r for r in refused.reasons)
    assert station.ledger.open_wipe_run("zvt", sim.state.serial) is not None  # still resumable

    resumed = wipe(connect(sim.address), station, settle=True)
    assert resumed.outcome is Outcome.ERASED
    finished(station, resumed, run.id)


# --- Android -------------------------------------------------------------------------------------

SUNMI_PLAN = [
    f"clear:{SUNMI_PAYMENT}",
    "clear:com.sunmi.mdm",  # the MDM client's data: the merchant's enrolment
    "forget_wifi",
    "delete:/sdcard/Sunmi/",
    "delete:/sdcard/Download/",
]
ADB_CUTS = {
    # step: (model, the command prefix during which power fails)
    f"clear:{SUNMI_PAYMENT}": ("sunmi-p2", "pm clear"),
    "forget_wifi": ("sunmi-p2", "cmd wifi forget-network"),
    "delete:/sdcard/Sunmi/": ("sunmi-p2", "rm -rf /sdcard/Sunmi/*"),
    "delete:/sdcard/Download/": ("sunmi-p2", "rm -rf /sdcard/Download/*"),
    "factory_reset": ("android-generic", "cmd testharness"),
}
GENERIC_PLAN = ["forget_wifi", "delete:/sdcard/Download/", "factory_reset"]
WIPE_PREFIXES = {
    "clear:": "pm clear",
    "forget_wifi": "cmd wifi forget-network",
    "delete:": "rm ",
    "factory_reset": "cmd testharness",
}


def _record_shell(sim: SimulatedAdb) -> list[str]:
    """Every command line the simulated device runs, from now on."""
    lines: list[str] = []
    shell = sim.simulator.shell
    run = shell.run

    def recording(command_line: str) -> Any:
        lines.append(command_line)
        return run(command_line)

    shell.run = recording
    return lines


def _command_of(step: str) -> str:
    for prefix, command in WIPE_PREFIXES.items():
        if step.startswith(prefix):
            if prefix == "delete:":
                return f"rm -rf {step.removeprefix('delete:').rstrip('/')}/*"
            if prefix == "clear:":
                return f"pm clear {step.removeprefix('clear:')}"
            return command
    raise AssertionError(step)


@pytest.mark.parametrize("step", list(ADB_CUTS))
def test_android_wipe_resumes_after_a_power_cut_in_each_step(
    adb_terminal: AdbFactory, adb_key_file: Path, station: Station, step: str
) -> None:
    model, fault = ADB_CUTS[step]
    plan = SUNMI_PLAN if model == "sunmi-p2" else GENERIC_PLAN
    sim = adb_terminal("activated", model=model, attach="tcp", power_loss_at=fault)
    assert sim.address is not None
    serial = sim.state.vendor_serial or sim.state.serial

    first = wipe(connect(sim.address), station)
    run = interrupted(station, first, "adb", serial)
    k = plan.index(step)
    assert [(s.name, s.status) for s in run.steps] == [
        *((name, StepStatus.DONE) for name in plan[:k]),
        (step, StepStatus.STARTED),
    ]
    assert sim.state.faults.power_loss_at == ""

    commands = _record_shell(sim)
    second = wipe(connect(sim.address), station)
    assert second.outcome is Outcome.ERASED_WITH_EXCEPTIONS, second.reasons
    assert second.reasons == []
    assert [s.name for s in second.steps] == plan
    statuses = {s.name: (s.status, s.verified) for s in second.steps}
    for name in plan[:k]:
        assert statuses[name] == ("verified", True), name
        assert not any(c.startswith(_command_of(name)) for c in commands), name
    for name in plan[k:]:
        assert statuses[name] == ("done", True), name
        assert any(c.startswith(_command_of(name)) for c in commands), name
    state = sim.state
    assert state.wifi.saved == []
    assert [p for p in state.files if p.startswith(("/sdcard/Sunmi/", "/sdcard/Download/"))] == []
    if model == "sunmi-p2":
        assert state.app(SUNMI_PAYMENT).data_files == {}
    finished(station, second, run.id)


# --- a killed process, across processes ----------------------------------------------------------


def _posdiag() -> list[str]:
    script = Path(sys.executable).with_name("posdiag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "posdiag.agent"]


def _step_status(db: Path, name: str) -> str | None:
    if not db.exists():
        return None
    try:
        # closing(): a sqlite3 connection's own context manager commits but never closes
        with contextlib.closing(
            sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        ) as conn:
            row = conn.execute("SELECT status FROM wipe_steps WHERE name = ?", (name,)).fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


@pytest.fixture
def simulator_process(tmp_path: Path) -> Iterator[Callable[..., tuple[str, subprocess.Popen[str]]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[str, subprocess.Popen[str]]:
        proc = subprocess.Popen(
            [*_posdiag(), "simulate", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
        )
        started.append(proc)
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith(("zvt+tcp://127.0.0.1:", "adb+tcp://127.0.0.1:")), address
        return address, proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_wipe_killed_mid_step_resumes_in_a_new_process(
    tmp_path: Path,
    simulator_process: Callable[..., tuple[str, subprocess.Popen[str]]],
) -> None:
    # Every answer takes 0.15 s, so the wipe is reliably inside a step when it is killed.
    address, _ = simulator_process(
        "zvt",
        "--scenario",
        "activated",
        "--tcp",
        "127.0.0.1:0",
        "--time-scale",
        "0",
        "--password",
        PASSWORD,
        "--fault",
        "answer_delay=0.15",
    )
    db = tmp_path / "ledger.sqlite3"
    out = tmp_path / "certificates"
    command = [
        *_posdiag(),
        "wipe",
        address,
        "--operator",
        "Jana",
        "--yes",
        "--json",
        "--password",
        PASSWORD,
        "--ledger",
        sqlite_url(db),
        "--out",
        str(out),
    ]
    victim = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 20
        while _step_status(db, "reset_terminal_id") != "started":
            assert victim.poll() is None, "the wipe ended before it could be killed"
            assert time.monotonic() < deadline, "the wipe never started its first step"
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait(10)
    assert victim.returncode == -signal.SIGKILL

    with Ledger(sqlite_url(db)) as ledger:
        (run,) = ledger.runs()
        assert run.status is RunStatus.RUNNING
        assert [(s.name, s.status) for s in run.steps] == [
            ("reset_terminal_id", StepStatus.STARTED)
        ]
        assert ledger.verify_chain().ok
    assert not out.exists() or not any(out.iterdir())

    again = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["outcome"] == "erased"
    assert result["resumed"] is True
    assert [s["name"] for s in result["steps"]] == ZVT_STEPS
    assert result["steps"][0]["status"] == "done"  # interrupted: run again
    assert Path(result["certificate"]).parent == out

    with Ledger(sqlite_url(db)) as ledger:
        (run,) = ledger.runs()
        assert run.status is RunStatus.FINISHED and run.outcome is not None
        assert run.outcome.value == "erased"
        assert ledger.verify_chain().ok
    verified = subprocess.run(
        [*_posdiag(), "verify", "--ledger", sqlite_url(db)],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout
