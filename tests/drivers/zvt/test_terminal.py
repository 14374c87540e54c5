"""ZvtTerminal (the Terminal contract for ZVT) against every simulated scenario.

Terminals are built the way the CLI builds them, ``open_terminal(parse_address("zvt+sim://NAME"))``,
so each test runs the real serial code path through pyserial's ``possim://`` handler. The
simulator behind a possim port lives as long as the port is open: state changes (a wipe) are
visible until ``close()``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator

import pytest

from posdiag.agent.connect import open_terminal
from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.policy import decide, load_policy
from posdiag.agent.report import VerdictStatus
from posdiag.drivers.address import parse_address
from posdiag.drivers.catalogue import Catalogue, load_catalogue
from posdiag.drivers.errors import TransportError, UnsupportedError
from posdiag.drivers.model import ActivationState, Terminal
from posdiag.drivers.zvt.terminal import ZvtTerminal

TID = "52502000"
SCENARIOS = ("fresh", "activated", "unsettled", "no-network", "low-battery", "tampered")
ACTIVATION = {
    "fresh": ActivationState.NOT_ACTIVATED,
    "activated": ActivationState.ACTIVATED,
    "unsettled": ActivationState.ACTIVATED,
    "no-network": ActivationState.NOT_ACTIVATED,
    "low-battery": ActivationState.NOT_ACTIVATED,
    "tampered": ActivationState.PARTIAL,
}
BOUND = {"activated", "unsettled", "tampered"}
WIPE_STEPS = ["settle", "reset_terminal_id", "log_off", "factory_reset"]

Open = Callable[[str], ZvtTerminal]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    assert [t.name for t in threading.enumerate() if t not in threads_before] == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


@pytest.fixture
def open_zvt() -> Iterator[Open]:
    """Open terminals by address; every one is closed when the test ends."""
    opened: list[ZvtTerminal] = []

    def make(text: str) -> ZvtTerminal:
        terminal = open_terminal(parse_address(text))
        assert isinstance(terminal, ZvtTerminal)
        opened.append(terminal)
        return terminal

    yield make
    for terminal in opened:
        terminal.close()


@pytest.fixture(scope="module")
def checked() -> dict[str, ZvtTerminal]:
    """One session per scenario, closed at once: probes read the facts it gathered."""
    terminals: dict[str, ZvtTerminal] = {}
    for name in SCENARIOS:
        terminal = open_terminal(parse_address(f"zvt+sim://{name}"))
        assert isinstance(terminal, ZvtTerminal)
        try:
            terminal.facts()
        finally:
            terminal.close()
        terminals[name] = terminal
    return terminals


@pytest.fixture(params=SCENARIOS)
def scenario(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_is_a_terminal(open_zvt: Open) -> None:
    terminal = open_zvt("zvt+sim://fresh")
    assert isinstance(terminal, Terminal)
    assert terminal.family == "zvt"
    assert terminal.address == "zvt+sim://fresh"


def test_identify(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    identity = checked[scenario].identify()
    assert identity.vendor == "FEIG ELECTRONIC"
    assert identity.model == "cVEND plug"
    assert identity.serial == "17F59B1F"
    assert identity.device_name == "cVEND plug"
    assert identity.hardware == "cVEND plug"


def test_one_session_answers_every_probe(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    terminal = checked[scenario]
    facts = terminal.facts()
    assert facts.errors == []
    assert facts.entry is not None and facts.entry.id == "feig-cvend-plug"
    assert terminal.facts() is facts  # gathered once per terminal object


def test_activation_state(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    activation = checked[scenario].activation()
    assert activation.state is ACTIVATION[scenario]
    facts = [e.fact for e in activation.evidence]
    assert all(TID not in fact for fact in facts)
    if scenario in BOUND:
        assert activation.terminal_id == TID
        assert "terminal ID ****2000 assigned" in facts
        assert "merchant name/address configured" in facts
        assert activation.host_registered is True
    else:
        assert activation.terminal_id is None
        assert "no terminal ID assigned" in facts
        assert (
            "terminal status 51: initialisation required (no merchant configuration loaded)"
            in facts
        )
        assert "device state: initialisation needed" in facts
        assert activation.keys_loaded is False
        assert activation.host_registered is False


def test_activated_evidence(checked: dict[str, ZvtTerminal]) -> None:
    activation = checked["activated"].activation()
    assert activation.keys_loaded is True
    assert activation.device_state == "ready"
    assert (activation.status_code, activation.status_text) == (0x00, "ready")
    assert [e.fact for e in activation.evidence] == [
        "terminal ID ****2000 assigned",
        "terminal status 00: ready",
        "device state: ready",
        "merchant name/address configured",
    ]
    assert {e.source for e in activation.evidence} == {"status enquiry", "printout"}


def test_tampered_unit_is_partial_without_keys(checked: dict[str, ZvtTerminal]) -> None:
    activation = checked["tampered"].activation()
    assert activation.state is ActivationState.PARTIAL
    assert activation.keys_loaded is False
    assert "device state: fraud (tamper)" in [e.fact for e in activation.evidence]


def test_firmware_components(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    components = checked[scenario].firmware().components
    # The status enquiry's SW version equals the printout's, so it is listed once.
    assert components["Terminal application"] == "GER-APP-v2.0.9"
    assert "ZVT application" not in components
    assert components["Firmware"] == "cR02.01.01-00.09-2-2"
    assert components["SDK"] == "02.01.01.09"
    assert components["PIN pad software"] == "SeW-700.02"
    assert "FECLR-02.06.00" in components.values()


def test_network(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    network = checked[scenario].network()
    interfaces = {i.name: i for i in network.interfaces}
    assert set(interfaces) == {"eth0", "usb0"}
    assert interfaces["usb0"].up is False
    assert interfaces["eth0"].mac == "00:1C:9B:0F:E1:CC"
    assert network.modem == "none"
    assert network.tms == "wss://tms.example.invalid:443/location-publisher/api/v1"
    if scenario == "no-network":
        assert network.host_reachable is False
        assert interfaces["eth0"].up is False
        assert network.details == ("diagnosis: communication error (host not reached)",)
    else:
        assert network.host_reachable is True
        assert interfaces["eth0"].up is True
        assert (interfaces["eth0"].ip, interfaces["eth0"].mode) == ("192.168.23.51", "DHCP")
        assert network.details == ("diagnosis: host reached",)
    assert network.host == ("203.0.113.105:30101" if scenario in BOUND else None)


def test_battery(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    battery = checked[scenario].battery()
    assert battery.present is True
    assert battery.voltage_mv == (2410 if scenario == "low-battery" else 3120)
    assert battery.temperature_c is None  # the printout's temperature is the module's
    assert battery.level_pct is None  # ZVT reports volts only


def test_merchant_data(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    merchant = checked[scenario].merchant_data()
    pending = merchant.pending_transactions
    assert pending is not None
    if scenario == "unsettled":
        assert (pending.count, pending.total_cents, pending.currency) == (3, 4757, "EUR")
    else:
        assert (pending.count, pending.total_cents) == (0, 0)
    if scenario in BOUND:
        assert merchant.notes == (
            "merchant name/address printed (3 lines)",
            "terminal ID ****2000",
            "payment host configured",
        )
    else:
        assert merchant.notes == ()
    assert TID not in repr(merchant)


def test_tamper(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    tamper = checked[scenario].tamper()
    if scenario == "tampered":
        assert tamper.tampered is True
        assert tamper.details == ("security module reports fraud (device state 03)",)
    else:
        assert tamper.tampered is False
        assert tamper.details == ()


def test_health(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    health = checked[scenario].health()
    assert health.temperature_c == 46.8  # the module temperature from the printout
    if scenario == "tampered":
        # A tampered unit is out of order (status DF), not "ready" as the simulator once said.
        assert health.status == "out of order"
        assert health.faults == ("terminal status DF: out of order",)
        return
    assert health.faults == ()
    expected = "initialisation required (no merchant configuration loaded)"
    assert health.status == ("ready" if scenario in BOUND else expected)


def test_wipe_plan_steps(checked: dict[str, ZvtTerminal], scenario: str) -> None:
    plan = checked[scenario].wipe_plan()
    assert [step.name for step in plan] == WIPE_STEPS
    assert [step.optional for step in plan] == [False, False, False, True]
    assert all(step.erases for step in plan)
    assert "End-of-Day" in plan[0].erases
    assert "factory reset" in plan[3].erases
    # the operator confirms these and the certificate lists them: no opcodes, no protocol words
    assert not any(re.search(r"\b[0-9A-F]{2} [0-9A-F]{2}\b|TLV", step.erases) for step in plan)


def test_running_the_wipe_plan_on_an_unsettled_terminal(open_zvt: Open) -> None:
    terminal = open_zvt("zvt+sim://unsettled")
    pending = terminal.merchant_data().pending_transactions
    assert pending is not None and pending.count == 3
    settle, reset_tid, log_off, factory_reset = terminal.wipe_plan()

    assert settle.done() is False
    settle.run()
    assert settle.done() is True
    settle.run()  # safe to repeat: nothing left to settle
    assert settle.done() is True

    assert reset_tid.done() is False
    reset_tid.run()
    assert reset_tid.done() is True

    log_off.run()
    assert log_off.done() is True
    factory_reset.run()
    assert factory_reset.done() is True

    terminal.refresh()
    activation = terminal.activation()
    assert activation.state is ActivationState.NOT_ACTIVATED
    assert activation.terminal_id is None
    pending = terminal.merchant_data().pending_transactions
    assert pending is not None and pending.count == 0
    assert terminal.merchant_data().notes == ()
    # The same unit, checked again, is now ready for its next merchant.
    report = inspect_terminal(terminal, load_policy(), simulated=True)
    assert report.errors == []
    assert report.verdict.status is VerdictStatus.READY


def test_generic_catalogue_entry_when_the_model_is_unknown(open_zvt: Open) -> None:
    terminal = open_zvt("zvt+sim://activated")
    generic = load_catalogue().generic("zvt")
    terminal.catalogue = Catalogue(models=(generic,), adapters=())
    identity = terminal.identify()
    assert identity.vendor is None
    assert identity.model == "cVEND plug"  # the name the terminal reported
    assert identity.serial == "17F59B1F"
    assert terminal.facts().vendor_info is None  # no Feig vendor commands for an unknown model
    assert [step.name for step in terminal.wipe_plan()] == WIPE_STEPS[:3]


# --- a link that dies mid-session -----------------------------------------------------------------


def test_link_dying_mid_session_is_recorded_not_raised(open_zvt: Open) -> None:
    terminal = open_zvt("zvt+sim://unsettled?disconnect_after=2")
    facts = terminal.facts()
    assert len(facts.errors) == 1  # the first failure ends the session; nothing else is tried
    assert facts.errors[0].startswith("print system configuration:")
    assert terminal.identify().serial == "17F59B1F"  # the status enquiry still answered
    assert terminal.activation().state is ActivationState.ACTIVATED
    assert terminal.merchant_data().pending_transactions is None  # unknown, not "zero"
    with pytest.raises(UnsupportedError):
        terminal.network()
    with pytest.raises(UnsupportedError):
        terminal.battery()


def test_link_dying_mid_session_gives_a_report_with_errors(open_zvt: Open) -> None:
    terminal = open_zvt("zvt+sim://fresh?disconnect_after=2")
    report = inspect_terminal(terminal, load_policy(), simulated=True)
    assert report.identity is not None and report.identity.serial == "17F59B1F"
    assert len(report.errors) == 1 and "print system configuration" in report.errors[0]
    assert report.network is None and report.battery is None
    assert any(u.startswith("network:") for u in report.unsupported)
    # Unread merchant data must never certify the unit as ready.
    assert report.verdict.status is VerdictStatus.SERVICE_REQUIRED
    assert decide(report, load_policy()).status is not VerdictStatus.READY


def test_link_dying_after_registration_leaves_identity_unknown(open_zvt: Open) -> None:
    report = inspect_terminal(open_zvt("zvt+sim://activated?disconnect_after=1"), load_policy())
    assert report.errors and report.errors[0].startswith("status enquiry:")
    assert report.verdict.status is VerdictStatus.QUARANTINE


def test_link_dying_at_once_is_unreachable(open_zvt: Open) -> None:
    terminal = open_zvt("zvt+sim://activated?disconnect_after=0")
    with pytest.raises(TransportError):
        terminal.facts()
    report = inspect_terminal(open_zvt("zvt+sim://activated?disconnect_after=0"), load_policy())
    assert report.verdict.status is VerdictStatus.UNREACHABLE
    assert report.identity is None


def test_silent_terminal_is_unreachable_quickly(open_zvt: Open) -> None:
    report = inspect_terminal(open_zvt("zvt+sim://fresh?silent=1&t2=0.1"), load_policy())
    assert report.verdict.status is VerdictStatus.UNREACHABLE
    assert "Registration" in report.errors[0]  # the protocol's words: JSON and --debug only
    assert "Registration" not in report.verdict.reasons[0]
