"""The posdiag CLI in-process (click's CliRunner) against simulated terminals.

Exit codes: 0 ready, 1 checked but not ready, 2 usage error (bad address, bad policy, wrong
password), 3 unreachable. Simulated terminals are reached through ``zvt+sim://SCENARIO``.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result
from rich.console import Console

from posdiag.agent import __version__, cli
from posdiag.agent.connect import PASSWORD_ENV
from posdiag.agent.discovery import Found
from posdiag.agent.render import render_report, render_summary
from posdiag.agent.report import DeviceReport, Verdict, VerdictStatus
from posdiag.drivers.model import Identity
from posdiag.simulators import registry

TID = "52502000"
SCENARIOS = ["activated", "fresh", "low-battery", "no-network", "tampered", "unsettled"]
VERDICTS = {
    "activated": ("wipe_required", 1),
    "fresh": ("ready", 0),
    "low-battery": ("service_required", 1),
    "no-network": ("service_required", 1),
    "tampered": ("quarantine", 1),
    "unsettled": ("wipe_required", 1),
}

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, plain_cli: None) -> Iterator[None]:
    """Plain, wide consoles; no password from the environment; logging restored afterwards."""
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    root = logging.getLogger()
    saved_level = root.level
    yield
    # main() installs a log handler on the runner's stderr, which is gone after the test.
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


def one_error_line(result: Result) -> str:
    """The single stderr line of a usage or connection error, with no traceback."""
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("posdiag: error: ")
    return lines[0]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


# --- verdicts per scenario -----------------------------------------------------------------------


def test_activated_needs_a_wipe_and_masks_the_tid(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://activated")
    assert result.exit_code == 1
    assert "WIPE REQUIRED" in result.stdout
    assert "activated (terminal ID ****2000): still bound to a merchant" in result.stdout
    assert "terminal ID ****2000" in result.stdout
    assert "FEIG ELECTRONIC cVEND plug" in result.stdout
    assert "(simulated)" in result.stdout
    assert TID not in result.output


def test_activated_json_masks_the_tid(invoke: Invoke) -> None:
    result = invoke("check", "--json", "zvt+sim://activated")
    assert result.exit_code == 1
    assert TID not in result.output
    data = as_json(result)
    assert data["activation"]["terminal_id"] == "****2000"
    assert data["verdict"]["status"] == "wipe_required"


def test_fresh_is_ready(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://fresh")
    assert result.exit_code == 0
    assert "READY" in result.stdout
    assert "no merchant data found; healthy" in result.stdout
    assert result.stderr == ""


def test_unsettled_shows_the_pending_money(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://unsettled")
    assert result.exit_code == 1
    assert "WIPE REQUIRED" in result.stdout
    assert "3 unsettled transactions (€47.57): settle (End-of-Day) before wiping" in (
        result.stdout
    )
    assert "3 UNSETTLED transactions, €47.57" in result.stdout
    assert TID not in result.output


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("low-battery", "battery voltage 2.41 V below 2.70 V: replace it"),
        ("no-network", "payment host not reachable (diagnosis: communication error"),
    ],
)
def test_service_required_with_the_reason(invoke: Invoke, scenario: str, reason: str) -> None:
    result = invoke("check", f"zvt+sim://{scenario}")
    assert result.exit_code == 1
    assert "SERVICE REQUIRED" in result.stdout
    assert reason in result.stdout
    data = as_json(invoke("check", "--json", f"zvt+sim://{scenario}"))
    assert data["verdict"]["status"] == "service_required"
    assert any(r.startswith(reason) for r in data["verdict"]["reasons"])


def test_tampered_is_quarantined(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://tampered")
    assert result.exit_code == 1
    assert "QUARANTINE" in result.stdout
    assert "security module reports fraud (device state 03)" in result.stdout
    assert "never wipe" in result.stdout
    assert TID not in result.output


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_json_report(invoke: Invoke, scenario: str) -> None:
    result = invoke("check", "--json", f"zvt+sim://{scenario}")
    status, code = VERDICTS[scenario]
    assert result.exit_code == code
    assert TID not in result.output
    data = as_json(result)
    assert data["schema"] == "posdiag.report/1"
    assert data["simulated"] is True
    assert {"address", "family", "vendor", "model", "serial"} <= set(data["device"])
    assert data["device"]["address"] == f"zvt+sim://{scenario}"
    assert data["device"]["family"] == "zvt"
    assert data["device"]["vendor"] == "FEIG ELECTRONIC"
    assert data["device"]["model"] == "cVEND plug"
    assert data["device"]["serial"] == "17F59B1F"
    assert data["activation"]["state"] in ("activated", "not_activated", "partial")
    assert data["firmware"]["components"]["Terminal application"] == "GER-APP-v2.0.9"
    assert data["network"]["host_reachable"] is (scenario != "no-network")
    # Every shipped scenario reports a battery voltage (3.12 V, or 2.41 V when low).
    assert data["battery"]["voltage_mv"] == (2410 if scenario == "low-battery" else 3120)
    pending = data["merchant_data"]["pending_transactions"]
    assert pending == (
        {"count": 3, "total_cents": 4757, "currency": "EUR", "undelivered": False}
        if scenario == "unsettled"
        else {"count": 0, "total_cents": 0, "currency": "EUR", "undelivered": False}
    )
    assert data["verdict"]["status"] == status
    assert data["verdict"]["reasons"]
    assert data["errors"] == []


def test_json_battery_is_null_for_a_terminal_without_battery_data(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No shipped scenario lacks a battery, so take one away from the simulated terminal."""
    original = registry.load_scenario

    def without_battery(name: str, overrides: dict[str, Any] | None = None) -> Any:
        state = original(name, overrides)
        state.battery_voltage_mv = None
        return state

    monkeypatch.setattr(registry, "load_scenario", without_battery)
    data = as_json(invoke("check", "--json", "zvt+sim://fresh"))
    assert data["battery"] is None
    assert data["unsupported"] == ["battery: ZVT exposes no battery data for this terminal"]
    assert data["verdict"]["status"] == "ready"
    result = invoke("check", "zvt+sim://fresh")
    assert result.exit_code == 0
    assert "Battery          not available on this terminal" in result.stdout


# --- usage errors (exit 2) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("bogus", "is not a device address"),
        ("http://example.com", "unknown address scheme"),
        ("zvt+usb://x", "not reached over 'usb'"),
        ("zvt+tcp://127.0.0.1:99999", "invalid port"),
        ("zvt+sim://activated?t2=soon", "is not a number"),
        ("zvt+sim://activated?ack_delay=slow", "simulator option ack_delay='slow'"),
    ],
)
def test_bad_address_is_one_line_and_exit_2(invoke: Invoke, address: str, message: str) -> None:
    result = invoke("check", address)
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert result.stdout == ""


def test_unknown_scenario_is_exit_2(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://nope")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "unknown simulated scenario 'nope'" in line
    assert "activated" in line


def test_wrong_password_is_exit_2(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://activated", "--password", "123456")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "password" in line
    assert "123456" not in line


@pytest.mark.parametrize("password", ["12", "abcdef", "１２３４５６"])
def test_malformed_password_is_exit_2(invoke: Invoke, password: str) -> None:
    result = invoke("check", "zvt+sim://fresh", "--password", password)
    assert result.exit_code == 2
    assert "exactly 6 digits" in one_error_line(result)


def test_right_password_from_the_environment(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "123456")
    assert invoke("check", "zvt+sim://fresh").exit_code == 2
    assert invoke("check", "zvt+sim://fresh", "--password", "000000").exit_code == 0


# --- unreachable (exit 3) ------------------------------------------------------------------------


def test_silent_terminal_is_unreachable(invoke: Invoke) -> None:
    started = time.monotonic()
    result = invoke("check", "zvt+sim://activated?silent=1&t2=0.2")
    assert time.monotonic() - started < 5
    assert result.exit_code == 3
    assert "UNREACHABLE" in result.stdout
    assert "did not answer" in result.stdout  # what to try, in plain words
    assert "Registration" not in result.stdout  # the protocol's words are for --debug
    assert "Traceback" not in result.output
    debug = invoke("--debug", "check", "zvt+sim://activated?silent=1&t2=0.2")
    assert "did not acknowledge Registration" in debug.stdout


def test_babbling_terminal_is_unreachable(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://activated?babble=1&t2=0.2&t3=0.3")
    assert result.exit_code == 3
    assert "UNREACHABLE" in result.stdout
    assert "answered, but not in a way posdiag understands: restart it" in result.stdout
    assert "not ZVT frames" not in result.stdout
    debug = invoke("--debug", "check", "zvt+sim://activated?babble=1&t2=0.2&t3=0.3")
    assert "not ZVT frames" in debug.stdout


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_closed_tcp_port_is_refused(invoke: Invoke) -> None:
    port = closed_port()
    result = invoke("check", f"zvt+tcp://127.0.0.1:{port}")
    assert result.exit_code == 3
    assert "UNREACHABLE" in result.stdout
    assert "check that it is switched on, on the same network" in result.stdout
    assert "refused" in invoke("--debug", "check", f"zvt+tcp://127.0.0.1:{port}").stdout
    data = as_json(invoke("check", "--json", f"zvt+tcp://127.0.0.1:{port}"))
    assert data["verdict"]["status"] == "unreachable"
    assert data["battery"] is None
    assert data["device"]["serial"] is None
    assert any("refused" in e for e in data["errors"])


@pytest.mark.parametrize("address", ["zvt+serial:///dev/ttyNOPE", "/dev/ttyNOPE"])
def test_missing_serial_device_is_unreachable(invoke: Invoke, address: str) -> None:
    result = invoke("check", address)
    assert result.exit_code == 3
    assert "the cable is plugged in at both ends" in result.stdout
    debug = invoke("--debug", "check", address)
    assert "cannot open /dev/ttyNOPE: no such file or directory" in debug.stdout


def test_link_dying_mid_check_is_reported_not_ready(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://fresh?disconnect_after=2")
    assert result.exit_code == 1
    assert "SERVICE REQUIRED" in result.stdout
    assert "check incomplete (1 fact could not be read): check again" in result.stdout
    assert "System configuration printout: could not be read (details: --debug)" in result.stdout
    assert "went away" not in result.stdout
    debug = invoke("--debug", "check", "zvt+sim://fresh?disconnect_after=2")
    assert "print system configuration: serial device" in debug.stdout
    assert "unsettled transactions: not readable" in result.stdout
    assert "Traceback" not in result.output


def test_brackets_in_report_text_are_printed_verbatim() -> None:
    """Addresses ([fe80::1]) and messages are text, never rich markup."""
    report = DeviceReport(
        address="zvt+tcp://[fe80::1]:20007",
        family="zvt",
        checked_at="2026-01-01T00:00:00Z",
        identity=Identity(vendor="V", model="M", serial="S"),
        errors=["link [a] died [bold]x"],
        verdict=Verdict(VerdictStatus.SERVICE_REQUIRED, ("see [b]",)),
    )
    console = Console(width=200, color_system=None, record=True)
    console.print(render_report(report, debug=True))  # errors verbatim only with --debug
    console.print(render_summary([report]))
    text = console.export_text()
    assert text.count("zvt+tcp://[fe80::1]:20007") == 2
    assert "link [a] died [bold]x" in text
    assert text.count("see [b]") == 2


# --- several terminals ---------------------------------------------------------------------------


def test_several_addresses_get_a_summary_and_the_worst_exit_code(invoke: Invoke) -> None:
    result = invoke("check", "zvt+sim://fresh", "zvt+sim://activated")
    assert result.exit_code == 1
    assert "posdiag check" in result.stdout  # the summary table
    assert result.stdout.count("zvt+sim://fresh") == 2
    data = as_json(invoke("check", "--json", "zvt+sim://fresh", "zvt+sim://activated"))
    assert [r["verdict"]["status"] for r in data] == ["ready", "wipe_required"]
    port = closed_port()
    assert invoke("check", "zvt+sim://fresh", f"zvt+tcp://127.0.0.1:{port}").exit_code == 3


def test_no_address_and_no_hardware_checks_every_scenario(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "discover", lambda: [])
    result = invoke("check")
    assert result.exit_code == 0  # a demonstration, not a verdict on the user's terminals
    assert "No terminal attached: checking simulated terminals instead" in result.stderr
    for name in SCENARIOS:
        assert f"zvt+sim://{name}" in result.stdout
    assert "adb+sim://activated?model=pax-a920" in result.stdout
    assert "posdiag check" in result.stdout
    assert TID not in result.output
    data = as_json(invoke("check", "--json"))
    zvt = [r for r in data if r["family"] == "zvt"]
    assert [r["address"] for r in zvt] == [f"zvt+sim://{name}" for name in SCENARIOS]
    assert {r["verdict"]["status"] for r in zvt} == {v for v, _ in VERDICTS.values()}
    assert [r["verdict"]["status"] for r in data if r["family"] == "adb"] == [
        "wipe_required",
        "wipe_required",
        "ready",
        "wipe_required",  # the Chinese-market unit (CNY, Chinese merchant name)
    ]
    assert "¥" in result.stdout


def test_no_address_checks_discovered_terminals(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = Found("zvt+sim://activated", "zvt", "terminal", "FEIG cVEND plug", None, None)
    monkeypatch.setattr(cli, "discover", lambda: [found])
    result = invoke("check")
    assert result.exit_code == 1
    assert "No terminal attached" not in result.stderr
    assert "WIPE REQUIRED" in result.stdout


# --- policy files --------------------------------------------------------------------------------


def policy_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "depot.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_bad_toml_policy_is_exit_2(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("check", "zvt+sim://fresh", "--policy", policy_file(tmp_path, "nope = [\n"))
    assert result.exit_code == 2
    assert "is not valid TOML" in one_error_line(result)
    assert result.stdout == ""


def test_unknown_policy_key_is_exit_2(invoke: Invoke, tmp_path: Path) -> None:
    path = policy_file(tmp_path, "[battery]\nmin_voltsss = 1\n")
    result = invoke("check", "zvt+sim://fresh", "--policy", path)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert f"{path} [battery]: unknown policy key 'min_voltsss'" in line  # brackets kept


@pytest.mark.parametrize(
    "text",
    [
        '[battery]\nmin_voltage_mv = "3500"\n',
        '[verdict]\nprecedence = ["wipe", "ready"]\n',
        '[activation]\nwipe_states = ["activate"]\n',
    ],
)
def test_policy_that_would_misjudge_is_exit_2(invoke: Invoke, tmp_path: Path, text: str) -> None:
    result = invoke("check", "zvt+sim://activated", "--policy", policy_file(tmp_path, text))
    assert result.exit_code == 2
    one_error_line(result)


def test_missing_policy_file_is_exit_2(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("check", "zvt+sim://fresh", "--policy", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "cannot read policy file" in one_error_line(result)


def test_bad_policy_is_reported_before_any_io(invoke: Invoke, tmp_path: Path) -> None:
    path = policy_file(tmp_path, "nope = [\n")
    result = invoke("check", "zvt+sim://activated?silent=1", "--policy", path)
    assert result.exit_code == 2  # not 3: the silent terminal was never asked


def test_policy_override_turns_fresh_into_service_required(invoke: Invoke, tmp_path: Path) -> None:
    path = policy_file(tmp_path, "[battery]\nmin_voltage_mv = 3500\n")
    result = invoke("check", "zvt+sim://fresh", "--policy", path)
    assert result.exit_code == 1
    assert "SERVICE REQUIRED" in result.stdout
    assert "battery voltage 3.12 V below 3.50 V: replace it" in result.stdout


# --- --debug, logs, version ----------------------------------------------------------------------


def test_traceback_only_with_debug(invoke: Invoke) -> None:
    plain = invoke("check", "zvt+sim://activated", "--password", "123456")
    assert "Traceback" not in plain.output
    debug = invoke("--debug", "check", "zvt+sim://activated", "--password", "123456")
    assert debug.exit_code == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ZvtPasswordError" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1].startswith("posdiag: error: ")
    assert TID not in debug.output


def test_debug_logs_never_show_the_tid(invoke: Invoke) -> None:
    result = invoke("--debug", "check", "zvt+sim://unsettled")
    assert result.exit_code == 1
    assert "zvt.collected" in result.stderr
    assert TID not in result.output


def test_json_logs(invoke: Invoke) -> None:
    result = invoke("--log-format", "json", "--log-level", "info", "check", "zvt+sim://fresh")
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines
    events = [json.loads(line) for line in lines]
    assert all({"event", "level", "timestamp"} <= set(e) for e in events)
    done = [e for e in events if e["event"] == "check.done"]
    assert done and done[0]["verdict"] == "ready" and done[0]["level"] == "info"
    assert "READY" in result.stdout  # the report itself stays on stdout


def test_default_log_level_is_quiet(invoke: Invoke) -> None:
    assert invoke("check", "zvt+sim://fresh").stderr == ""


def test_bad_log_level_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("--log-level", "loud", "check", "zvt+sim://fresh")
    assert result.exit_code == 2
    assert "unknown log level 'loud'" in result.stderr


def test_version(invoke: Invoke) -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"posdiag, version {__version__}"


def test_help(invoke: Invoke) -> None:
    result = invoke("-h")
    assert result.exit_code == 0
    for command in ("check", "list", "simulate"):
        assert command in result.stdout


# --- simulate (paths that return before serving) and list ----------------------------------------


def test_simulate_lists_scenarios(invoke: Invoke) -> None:
    result = invoke("simulate", "zvt", "--list-scenarios")
    assert result.exit_code == 0
    assert result.stdout.split() == SCENARIOS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown ZVT scenario 'nope'"),
        (["--pty", "--tcp", "127.0.0.1:0"], "choose one of --pty and --tcp"),
        (["--tcp", "localhost"], "--tcp wants HOST:PORT"),
        (["--fault", "ack_delay=slow"], "bad fault option"),
    ],
)
def test_simulate_usage_errors(invoke: Invoke, args: list[str], message: str) -> None:
    result = invoke("simulate", "zvt", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_simulate_unknown_family(invoke: Invoke) -> None:
    assert invoke("simulate", "sdi").exit_code == 2


def fake_port(device: str, vid: int | None, pid: int | None) -> SimpleNamespace:
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number="SN1")


def test_list_shows_known_terminals_and_adapters(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = [
        fake_port("/dev/ttyACM0", 0x0B00, 0x0052),  # Ingenico Move/5000
        fake_port("/dev/ttyUSB0", 0x0403, 0x6001),  # FTDI adapter
        fake_port("/dev/ttyUSB1", 0x1234, 0x5678),  # unknown: never offered
        fake_port("/dev/ttyS0", None, None),  # no USB IDs: never offered
    ]
    monkeypatch.setattr("posdiag.agent.discovery.list_ports.comports", lambda: ports)
    data = as_json(invoke("list", "--json"))
    assert [(d["address"], d["kind"]) for d in data] == [
        ("zvt+serial:///dev/ttyACM0", "terminal"),
        ("zvt+serial:///dev/ttyUSB0", "serial adapter"),
    ]
    assert data[0]["model_guess"] == "Ingenico Move/5000"
    assert data[0]["usb_id"] == "0b00:0052"
    result = invoke("list")
    assert result.exit_code == 0
    assert "zvt+serial:///dev/ttyACM0" in result.stdout
    assert "FTDI FT232" in result.stdout


def test_list_with_nothing_attached(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("posdiag.agent.discovery.list_ports.comports", lambda: [])
    result = invoke("list")
    assert result.exit_code == 0
    assert "No terminal found" in result.stderr
    assert as_json(invoke("list", "--json")) == []
