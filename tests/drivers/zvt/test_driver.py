"""The ZVT driver against the simulated Feig cVEND, over every way of reaching it.

One suite, run over memory, a pty (real serial code path), loopback TCP with bare APDUs, and a
``possim://`` pyserial URL. Every expectation is read from the simulator's live state, so a
driver that decodes the wrong field, or a simulator that stops changing state, fails here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.drivers.zvt.apdu import Apdu
from posdiag.drivers.zvt.bcd import decode_bcd, decode_bcd_int
from posdiag.drivers.zvt.bmp import bmp_map
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import DIAGNOSTIC_CONFIG_BYTE, ZvtDriver
from posdiag.drivers.zvt.errors import (
    ZvtCommandError,
    ZvtNotSupportedError,
    ZvtPasswordError,
)
from posdiag.drivers.zvt.messages import Message, UnknownMessage
from posdiag.drivers.zvt.printout import parse_printout
from posdiag.simulators.pytest_plugin import ATTACH_MODES, SimulatedZvt

UNSETTLED_AMOUNTS = (2500, 958, 1299)
TID = "52502000"


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    # Autouse fixtures are set up first and torn down last: terminals and drivers are gone.
    assert [t.name for t in threading.enumerate() if t not in threads_before] == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


@pytest.fixture(params=ATTACH_MODES)
def attach(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Connect = Callable[..., tuple[SimulatedZvt, ZvtDriver]]


@pytest.fixture
def connect(
    zvt_terminal: Callable[..., SimulatedZvt],
    zvt_driver: Callable[..., ZvtDriver],
    attach: str,
) -> Connect:
    """A simulated terminal in a scenario, reached over ``attach``, and an open driver to it."""

    def make(
        scenario: str = "activated", *, password: str | None = None, **options: object
    ) -> tuple[SimulatedZvt, ZvtDriver]:
        terminal = zvt_terminal(scenario, attach=attach, **options)
        return terminal, zvt_driver(terminal, password=password)

    return make


# --- the fixture itself ------------------------------------------------------------------------


def test_terminal_describes_its_attachment(connect: Connect, attach: str) -> None:
    terminal, driver = connect()
    assert terminal.attach == attach
    assert terminal.link is (Link.TCP if attach == "tcp" else Link.SERIAL)
    assert driver.link is terminal.link
    if attach == "pty":
        assert terminal.address is not None
        assert terminal.address.startswith("zvt+serial:///dev/")
        assert isinstance(driver.transport, SerialTransport)
        assert parse_address(terminal.address).target == driver.transport.url
        assert terminal.url is None
    elif attach == "tcp":
        assert terminal.address is not None
        assert terminal.address.startswith("zvt+tcp://127.0.0.1:")
        assert isinstance(driver.transport, TcpTransport)
        address = parse_address(terminal.address)
        assert address.host_port == (driver.transport.host, driver.transport.port)
    elif attach == "url":
        assert terminal.address is None
        assert terminal.url is not None
        assert terminal.url.startswith("possim://zvt/activated?")
        assert isinstance(driver.transport, SerialTransport)
        assert driver.transport.url == terminal.url
    else:
        assert terminal.address is None
        assert terminal.url is None
    assert driver.transport.is_open


# --- registration and status -------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["activated", "fresh"])
def test_register(connect: Connect, scenario: str) -> None:
    terminal, driver = connect(scenario)
    assert not terminal.state.registered

    completion = driver.register()

    bmps = bmp_map(completion.bmps())
    assert decode_bcd_int(bmps[0x49].data) == terminal.state.currency_code == 978
    flags = bmps[0x19].data[0]
    assert flags & 0x10  # vending mode: a cVEND
    if scenario == "activated":
        assert decode_bcd(bmps[0x29].data) == terminal.state.terminal_id == TID
        assert not flags & 0x01
    else:
        assert 0x29 not in bmps
        assert flags & 0x01  # initialisation necessary
    assert terminal.state.registered
    assert terminal.state.config_byte == DIAGNOSTIC_CONFIG_BYTE
    assert terminal.state.tlv_enabled


@pytest.mark.parametrize("scenario", ["activated", "fresh"])
def test_status_enquiry(connect: Connect, scenario: str) -> None:
    terminal, driver = connect(scenario)
    driver.register()

    report = driver.status_enquiry()

    state = terminal.state
    assert report.terminal_id == state.terminal_id
    assert report.device_name == state.device_name == "cVEND plug"
    assert report.serial == state.serial == "17F59B1F"
    assert report.sw_version == state.sw_version
    assert report.device_state == state.device_state
    assert report.terminal_status == state.status_byte
    if scenario == "activated":
        assert (report.terminal_id, report.terminal_status, report.device_state) == (TID, 0, 0)
    else:
        assert (report.terminal_id, report.terminal_status, report.device_state) == (
            None,
            0x51,
            0x01,
        )


def test_same_command_twice_is_answered_twice(connect: Connect) -> None:
    terminal, driver = connect()
    driver.register()
    first = driver.status_enquiry()
    second = driver.status_enquiry()
    assert first == second
    assert terminal.simulator.model.commands_seen.count("Status-Enquiry") == 2


# --- printout, diagnosis, totals ---------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["activated", "fresh"])
def test_print_system_configuration(connect: Connect, scenario: str) -> None:
    terminal, driver = connect(scenario)
    driver.register()

    lines = driver.print_system_configuration()

    facts = parse_printout(lines)
    state = terminal.state
    assert facts.vendor_labels == "feig"
    assert facts.serial == state.serial
    assert facts.battery_voltage_mv == state.battery_voltage_mv == 3120
    assert facts.temperature_c == state.temperature_c
    if scenario == "activated":
        assert facts.terminal_id == state.terminal_id == TID
        assert facts.host_operator == state.host_operator
    else:
        assert facts.terminal_id is None
        assert facts.host_operator is None


def test_print_system_configuration_without_tlv_comes_as_print_lines(connect: Connect) -> None:
    # Unregistered (config byte 86, TLV off) the PT sends 06 D1 lines instead of 06 D3 blocks.
    terminal, driver = connect()
    assert terminal.state.config_byte == 0x86
    assert not terminal.state.tlv_enabled

    facts = parse_printout(driver.print_system_configuration())

    assert facts.serial == terminal.state.serial
    assert facts.terminal_id == terminal.state.terminal_id


@pytest.mark.parametrize(("scenario", "reachable"), [("activated", True), ("no-network", False)])
def test_diagnosis(connect: Connect, scenario: str, reachable: bool) -> None:
    terminal, driver = connect(scenario)
    driver.register()

    result = driver.diagnosis()

    assert result.host_reachable is reachable is terminal.state.host_reachable
    if reachable:
        assert result.result_code is None
        assert any("erreichbar" in line for line in result.print_lines)
    else:
        assert result.result_code == 0x7D
        assert result.print_lines == ()


@pytest.mark.parametrize("scenario", ["activated", "unsettled"])
def test_turnover_totals(connect: Connect, scenario: str) -> None:
    terminal, driver = connect(scenario)
    driver.register()

    totals = driver.turnover_totals()

    assert totals is not None
    state = terminal.state
    assert totals.count == len(state.transactions)
    assert totals.total_cents == sum(tx.amount_cents for tx in state.transactions)
    assert totals.per_scheme == state.totals_by_scheme()
    if scenario == "unsettled":
        assert totals.count == 3
        assert totals.total_cents == sum(UNSETTLED_AMOUNTS) == 4757
        assert (totals.receipt_first, totals.receipt_last) == (1, 3)
    else:
        assert (totals.count, totals.total_cents) == (0, 0)
    assert len(state.transactions) == totals.count  # reading totals settles nothing


# --- state-changing commands -------------------------------------------------------------------


def test_end_of_day_empties_the_store(connect: Connect) -> None:
    terminal, driver = connect("unsettled")
    driver.register()
    assert len(terminal.state.transactions) == 3

    result = driver.end_of_day()

    assert result.totals is not None
    assert result.totals.count == 3
    assert result.totals.total_cents == 4757
    assert result.result_code == 0
    assert any("Kassenschnitt" in line for line in result.print_lines)
    assert terminal.state.transactions == []
    after = driver.turnover_totals()
    assert after is not None
    assert (after.count, after.total_cents) == (0, 0)


def test_end_of_day_without_terminal_id_is_refused(connect: Connect) -> None:
    terminal, driver = connect("fresh")
    driver.register()
    with pytest.raises(ZvtCommandError) as caught:
        driver.end_of_day()
    assert caught.value.code == 0x6B  # function deactivated: no merchant to settle for
    assert terminal.state.terminal_id is None


def test_terminal_id_reset_needs_an_empty_store(connect: Connect) -> None:
    terminal, driver = connect("unsettled")
    driver.register()

    with pytest.raises(ZvtCommandError) as caught:
        driver.set_terminal_id(None)
    assert caught.value.code == 0x83
    assert not isinstance(caught.value, ZvtNotSupportedError)
    assert terminal.state.terminal_id == TID
    assert len(terminal.state.transactions) == 3

    driver.end_of_day()
    driver.set_terminal_id(None)

    assert terminal.state.terminal_id is None
    report = driver.status_enquiry()
    assert report.terminal_id is None
    assert report.terminal_status == terminal.state.status_byte == 0x51
    facts = parse_printout(driver.print_system_configuration())
    assert facts.terminal_id is None
    assert facts.host_operator is None


def test_set_terminal_id(connect: Connect) -> None:
    terminal, driver = connect("fresh")
    driver.register()
    driver.set_terminal_id("29001006")
    assert terminal.state.terminal_id == "29001006"
    assert driver.status_enquiry().terminal_id == "29001006"


def test_log_off(connect: Connect) -> None:
    terminal, driver = connect()
    driver.register()
    assert terminal.state.config_byte == DIAGNOSTIC_CONFIG_BYTE

    driver.log_off()

    state = terminal.state
    assert state.config_byte == 0x86
    assert not state.tlv_enabled
    assert not state.registered
    assert driver.status_enquiry().terminal_id == TID  # still answers after Log-Off


def test_feig_system_info(connect: Connect) -> None:
    terminal, driver = connect()
    info = driver.feig_system_info()
    state = terminal.state
    assert info.serial == state.serial
    assert info.sw_version == state.sw_version
    assert info.terminal_id == state.terminal_id == TID
    assert info.temperature_c == state.temperature_c


def test_feig_factory_reset(connect: Connect) -> None:
    terminal, driver = connect("activated")
    driver.register()
    driver.feig_factory_reset()
    state = terminal.state
    assert state.terminal_id is None
    assert state.config_byte == 0x86
    assert not state.keys_present


# --- refusals ----------------------------------------------------------------------------------


def test_wrong_password(connect: Connect) -> None:
    terminal, driver = connect(password="123456")
    with pytest.raises(ZvtPasswordError) as caught:
        driver.register()
    assert caught.value.code == 0x37
    assert isinstance(caught.value, PosdiagError)
    assert not terminal.state.registered
    with pytest.raises(ZvtPasswordError):
        driver.end_of_day()


def test_password_option_changes_the_terminal_password(
    zvt_terminal: Callable[..., SimulatedZvt],
    zvt_driver: Callable[..., ZvtDriver],
    attach: str,
) -> None:
    terminal = zvt_terminal("activated", attach=attach, password="424242")
    assert terminal.state.password == "424242"
    wrong = zvt_driver(terminal, password="000000")
    with pytest.raises(ZvtPasswordError):
        wrong.register()
    wrong.close()  # a terminal talks to one cash register at a time
    zvt_driver(terminal).register()  # the fixture defaults to the terminal's own password
    assert terminal.state.registered


@dataclass(frozen=True)
class RawCommand(Message):
    """Any APDU, sent as is."""

    CMD = (0x00, 0x00)
    NAME = "raw command"
    apdu: Apdu

    def to_apdu(self) -> Apdu:
        return self.apdu


@pytest.mark.parametrize("wrap", [RawCommand, UnknownMessage], ids=["raw", "unknown"])
def test_unknown_command_is_not_supported(
    connect: Connect, wrap: Callable[[Apdu], Message]
) -> None:
    terminal, driver = connect()
    with pytest.raises(ZvtNotSupportedError) as caught:
        driver.transact(wrap(Apdu(0x06, 0xEE)))
    assert caught.value.code == 0x83
    # The link is still in step: the next command works.
    assert driver.status_enquiry().serial == terminal.state.serial


def test_vendor_commands_off_are_not_supported(connect: Connect) -> None:
    terminal, driver = connect()
    terminal.state.vendor_commands = False
    with pytest.raises(ZvtNotSupportedError):
        driver.feig_system_info()


# --- a whole de-provisioning run ---------------------------------------------------------------


def test_deprovisioning_sequence(connect: Connect) -> None:
    terminal, driver = connect("unsettled")
    driver.register()
    before = driver.status_enquiry()
    assert before.terminal_id == TID
    inventory = parse_printout(driver.print_system_configuration())
    assert inventory.serial == before.serial
    assert driver.end_of_day().totals is not None
    driver.set_terminal_id(None)
    driver.log_off()
    state = terminal.state
    assert (state.terminal_id, state.transactions, state.config_byte) == (None, [], 0x86)
    assert [
        name
        for name in terminal.simulator.model.commands_seen
        if name not in ("Status-Enquiry", "Print System Configuration")
    ] == ["Registration", "End-of-Day", "Set/Reset Terminal-ID", "Log-Off"]


def test_second_connection_sees_the_same_terminal(
    zvt_terminal: Callable[..., SimulatedZvt],
    zvt_driver: Callable[..., ZvtDriver],
    attach: str,
) -> None:
    terminal = zvt_terminal("unsettled", attach=attach)
    first = zvt_driver(terminal)
    first.register()
    first.end_of_day()
    first.close()

    second = zvt_driver(terminal)
    totals = second.turnover_totals()
    assert totals is not None
    assert totals.count == 0
