"""``posdiag check`` and ``posdiag simulate adb`` for Android smart POS.

In-process through click's CliRunner against ``adb+sim://SCENARIO?model=M`` (memory, or a
simulated USB device with ``via=usb``), then as real processes: ``posdiag simulate adb`` on a
loopback port and ``posdiag check adb+tcp://…`` against it. Exit codes: 0 ready, 1 not ready,
2 usage error (including a refused key), 3 unreachable.

Every test runs with ``HOME`` and ``XDG_CONFIG_HOME`` in a temporary directory, so the ADB host
key a check may create never touches the real one.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.drivers.transport import usbbulk

POSDIAG = Path(sys.executable).with_name("posdiag")
ACCOUNT_NAME = "merchant-0042@example.invalid"
PROMPT = "allow USB debugging on its screen"

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _isolate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain_cli: None
) -> Iterator[None]:
    """Plain wide consoles, a private key directory, logging restored afterwards."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = logging.getLogger()
    saved_level = root.level
    yield
    for handler in list(root.handlers):
        if handler.get_name() == "posdiag":
            root.removeHandler(handler)
    root.setLevel(saved_level)
    structlog.reset_defaults()


@pytest.fixture
def invoke() -> Invoke:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli.main, list(args))

    return run


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def error_line(result: Result) -> str:
    """The last stderr line, which must be posdiag's one-line error; never a traceback."""
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("posdiag: error: "), lines
    return lines[-1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- check: verdicts -----------------------------------------------------------------------------


def test_activated_pax_needs_a_wipe_with_its_evidence(invoke: Invoke) -> None:
    result = invoke("check", "adb+sim://activated?model=pax-a920")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "WIPE REQUIRED" in out
    assert "PAX A920 serial 0820533061" in out
    assert "(simulated)" in out
    assert "activated: still bound to a merchant" in out
    assert "- device owner com.pax.market.android.app: a device owner (MDM/TMS)" in out
    assert "- 1 account(s) of type com.pax.market.android.app.account" in out
    assert "- 1 item(s) in /sdcard/PAX/" in out
    assert "network profile: Caf…" in out
    assert "Tamper           not available on this terminal" in out
    assert ACCOUNT_NAME not in result.output
    assert "Cafe-Beispiel" not in result.output
    assert "82617703" not in out  # ro.serialno: the vendor serial is the one on the label


def test_activated_pax_json(invoke: Invoke) -> None:
    result = invoke("check", "--json", "adb+sim://activated?model=pax-a920")
    assert result.exit_code == 1
    data = as_json(result)
    assert data["schema"] == "posdiag.report/1"
    assert data["family"] == "adb"
    assert data["simulated"] is True
    device = data["device"]
    assert (device["vendor"], device["model"], device["serial"]) == ("PAX", "A920", "0820533061")
    activation = data["activation"]
    assert activation["state"] == "activated"
    assert activation["host_registered"] is True
    evidence = activation["evidence"]
    assert isinstance(evidence, list) and evidence
    assert all(set(e) == {"source", "fact"} for e in evidence)
    assert "device policy" in {e["source"] for e in evidence}
    battery = data["battery"]
    assert battery["level_pct"] == 87
    assert battery["voltage_mv"] == 4105
    assert battery["temperature_c"] == pytest.approx(28.1)
    assert battery["health"] == "good"
    network = data["network"]
    assert network["sim_state"] == "READY"
    assert network["registration"] == "IN_SERVICE"
    assert network["operator"] == "Telekom.de"
    assert network["interfaces"][0]["name"] == "wlan0"
    assert data["firmware"]["components"]["Android"] == "8.1.0"
    assert data["tamper"] is None
    assert any(u.startswith("tamper:") for u in data["unsupported"])
    assert data["verdict"]["status"] == "wipe_required"
    assert data["errors"] == []
    assert ACCOUNT_NAME not in result.stdout


@pytest.mark.parametrize("model", ["pax-a920", "sunmi-p2", "android-generic"])
def test_fresh_is_ready(invoke: Invoke, model: str) -> None:
    result = invoke("check", f"adb+sim://fresh?model={model}")
    assert result.exit_code == 0, result.output
    assert "READY" in result.stdout
    assert "no merchant data found; healthy" in result.stdout
    assert "not activated" in result.stdout


@pytest.mark.parametrize("model", ["pax-a920", "sunmi-p2"])
def test_unsettled_shows_the_open_batch(invoke: Invoke, model: str) -> None:
    result = invoke("check", f"adb+sim://unsettled?model={model}")
    assert result.exit_code == 1
    assert "3 unsettled transactions (€47.57): settle (End-of-Day) before wiping" in (
        result.stdout
    )
    assert "3 UNSETTLED transactions, €47.57" in result.stdout
    data = as_json(invoke("check", "--json", f"adb+sim://unsettled?model={model}"))
    pending = data["merchant_data"]["pending_transactions"]
    assert (pending["count"], pending["total_cents"], pending["currency"]) == (3, 4757, "EUR")


def test_low_battery_needs_service(invoke: Invoke) -> None:
    result = invoke("check", "adb+sim://low-battery?model=pax-a920")
    assert result.exit_code == 1
    assert "SERVICE REQUIRED" in result.stdout
    assert "battery at 7% and not charging" in result.stdout
    assert "612 cycles" in result.stdout
    data = as_json(invoke("check", "--json", "adb+sim://low-battery?model=pax-a920"))
    assert data["verdict"]["status"] == "service_required"
    assert data["battery"]["level_pct"] == 7
    assert data["battery"]["charging"] is False
    assert data["battery"]["cycle_count"] == 612


@pytest.mark.parametrize(
    ("scenario", "line"),
    [("activated", "cellular in service"), ("no-network", "cellular out of service")],
)
def test_human_output_says_whether_the_cellular_network_serves(
    invoke: Invoke, scenario: str, line: str
) -> None:
    result = invoke("check", f"adb+sim://{scenario}?model=sunmi-p2")
    assert line in result.stdout


def test_via_usb_gives_the_same_verdict_and_device(invoke: Invoke) -> None:
    memory = as_json(invoke("check", "--json", "adb+sim://activated?model=pax-a920"))
    result = invoke("check", "--json", "adb+sim://activated?model=pax-a920&via=usb")
    assert result.exit_code == 1, result.output
    usb = as_json(result)
    assert usb["device"]["serial"] == "0820533061"
    assert usb["verdict"] == memory["verdict"]
    assert usb["activation"] == memory["activation"]
    assert usb["errors"] == []


def test_several_android_terminals_get_a_summary(invoke: Invoke) -> None:
    result = invoke("check", "adb+sim://fresh?model=sunmi-p2", "adb+sim://activated?model=pax-a920")
    assert result.exit_code == 1
    assert "posdiag check" in result.stdout
    assert result.stdout.count("(simulated)") >= 4


# --- check: authentication -----------------------------------------------------------------------


def test_a_new_key_prompts_the_operator_and_the_check_succeeds(
    invoke: Invoke, tmp_path: Path
) -> None:
    result = invoke("check", "adb+sim://fresh?model=pax-a920&auth=1")
    assert result.exit_code == 0, result.output
    assert PROMPT in result.stderr
    assert "READY" in result.stdout
    assert (tmp_path / "config" / "posdiag" / "adbkey").is_file()
    assert not (Path.home() / ".android").exists()  # the stock client's key is not written


def test_auth_required_scenario_is_checked_after_the_prompt(invoke: Invoke) -> None:
    result = invoke("check", "--json", "adb+sim://auth-required?model=sunmi-p2")
    assert result.exit_code == 1, result.output
    assert PROMPT in result.stderr
    assert as_json(result)["activation"]["state"] == "activated"


def test_key_never_accepted_is_a_usage_error(invoke: Invoke) -> None:
    started = time.monotonic()
    result = invoke(
        "check", "adb+sim://activated?model=pax-a920&accept_keys=0&auth=1&auth_timeout=0.5"
    )
    assert time.monotonic() - started < 5
    assert result.exit_code == 2
    assert PROMPT in result.stderr
    line = error_line(result)
    assert "did not accept posdiag's key within 0.5 s" in line
    assert "allow USB debugging" in line
    assert result.stdout == ""


# --- check: usage errors and unreachable ---------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("adb+sim://nosuch?model=pax-a920", "unknown simulated Android scenario 'nosuch'"),
        ("adb+sim://fresh?model=nosuch", "unknown Android model profile 'nosuch'"),
        ("adb+sim://fresh?model=pax-a920&via=serial", "via='serial'"),
        ("adb+usb://2fb8:zz", "is not a USB VID:PID in hex"),
    ],
)
def test_bad_android_addresses_are_usage_errors(invoke: Invoke, address: str, message: str) -> None:
    result = invoke("check", address)
    assert result.exit_code == 2
    assert message in error_line(result)
    assert result.stdout == ""


def test_unknown_scenario_lists_the_available_ones(invoke: Invoke) -> None:
    line = error_line(invoke("check", "adb+sim://nosuch?model=pax-a920"))
    assert "activated" in line and "fresh" in line


def test_closed_tcp_port_is_unreachable(invoke: Invoke) -> None:
    port = closed_port()
    result = invoke("check", f"adb+tcp://127.0.0.1:{port}")
    assert result.exit_code == 3
    assert "UNREACHABLE" in result.stdout
    assert f"127.0.0.1:{port}" in result.stdout
    assert "Traceback" not in result.output
    data = as_json(invoke("check", "--json", f"adb+tcp://127.0.0.1:{port}"))
    assert data["verdict"]["status"] == "unreachable"
    assert data["family"] == "adb"


@pytest.fixture
def no_usb_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without any USB bus (a CI runner, a container), whatever this host has."""
    monkeypatch.setattr(usbbulk.usb.core, "find", lambda **_: iter(()))
    monkeypatch.setattr(usbbulk, "_linux_without_usb", lambda: True)
    monkeypatch.setattr(usbbulk, "get_backend", lambda: object())
    monkeypatch.setattr(usbbulk, "_unavailable_logged", set())


@pytest.mark.usefixtures("no_usb_bus")
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("adb+usb://", "no ADB device attached"),
        ("adb+usb://2fb8:2201", "no ADB device 2fb8:2201 attached"),
        ("adb+usb://0820533061", "no ADB device with serial 0820533061 attached"),
    ],
)
def test_usb_without_a_bus_is_unreachable_in_one_clear_line(
    invoke: Invoke, address: str, reason: str
) -> None:
    result = invoke("check", address)
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "UNREACHABLE" in result.stdout
    assert "No terminal was found on USB: plug it in with a data cable" in result.stdout
    assert "no USB bus on this machine" in result.stderr  # the why, logged once
    assert reason in invoke("--debug", "check", address).stdout  # the detail, with --debug


# --- real processes ------------------------------------------------------------------------------


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR",)}
    env.update(
        NO_COLOR="1",
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    return env


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        pytest.fail(f"posdiag simulate printed no address within {timeout} s")


@pytest.fixture
def simulate_adb(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start ``posdiag simulate adb``; every process is killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [str(POSDIAG), "simulate", "adb", *args],
            stdout=subprocess.PIPE,
            stderr=(tmp_path / f"simulate-{len(started)}.err").open("w"),
            text=True,
            env=_env(tmp_path),
        )
        started.append(process)
        return process, _first_line(process, 10)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(5)
        if process.stdout:
            process.stdout.close()


@pytest.mark.skipif(not POSDIAG.exists(), reason=f"{POSDIAG} is not installed")
def test_simulate_adb_then_check_it_over_tcp(
    simulate_adb: Callable[..., tuple[subprocess.Popen[str], str]], tmp_path: Path
) -> None:
    process, address = simulate_adb(
        "--scenario", "activated", "--model", "pax-a920", "--tcp", "127.0.0.1:0",
        "--time-scale", "0",
    )  # fmt: skip
    assert address.startswith("adb+tcp://127.0.0.1:")
    port = int(address.rpartition(":")[2])
    assert port > 0
    check = subprocess.run(
        [str(POSDIAG), "check", address, "--json"],
        capture_output=True,
        text=True,
        timeout=20,
        env=_env(tmp_path),
    )
    assert check.returncode == 1, check.stderr
    data = json.loads(check.stdout)
    assert data["verdict"]["status"] == "wipe_required"
    assert data["device"]["serial"] == "0820533061"
    assert data["address"] == address
    assert ACCOUNT_NAME not in check.stdout
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(3) == 0
    assert time.monotonic() - started < 3


@pytest.mark.skipif(not POSDIAG.exists(), reason=f"{POSDIAG} is not installed")
def test_simulate_adb_rejects_an_unknown_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(POSDIAG), "simulate", "adb", "--model", "nosuch", "--tcp", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=20,
        env=_env(tmp_path),
    )
    assert result.returncode == 2
    assert "unknown Android model profile 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr
