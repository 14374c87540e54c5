"""Tests for posdiag.agent.connect: password precedence, timers, and the transport per link."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import serial

from posdiag.agent.connect import (
    DEFAULT_PASSWORD,
    PASSWORD_ENV,
    open_terminal,
    zvt_password,
    zvt_timers,
    zvt_transport,
)
from posdiag.drivers.address import Address, parse_address
from posdiag.drivers.errors import AddressError, AuthenticationError
from posdiag.drivers.model import Terminal
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import ZvtTimers
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.attach import URL_HANDLER_PACKAGE


@pytest.fixture(autouse=True)
def no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


# --- password ------------------------------------------------------------------------------------


def test_default_password() -> None:
    assert DEFAULT_PASSWORD == "000000"
    assert zvt_password(parse_address("zvt+sim://fresh")) == "000000"


def test_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "222222")
    assert zvt_password(parse_address("zvt+sim://fresh")) == "222222"


def test_address_option_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "222222")
    assert zvt_password(parse_address("zvt+sim://fresh?password=333333")) == "333333"


def test_command_line_beats_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "222222")
    address = parse_address("zvt+sim://fresh?password=333333")
    assert zvt_password(address, "444444") == "444444"


def test_empty_values_fall_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "")
    assert zvt_password(parse_address("zvt+sim://fresh?password="), "") == DEFAULT_PASSWORD


@pytest.mark.parametrize("bad", ["12345", "1234567", "abcdef", "12 456", "１２３４５６"])
def test_bad_password_from_any_source_is_an_address_error(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    address = parse_address("zvt+sim://fresh")
    with pytest.raises(AddressError, match="exactly 6 digits"):
        zvt_password(address, bad)
    monkeypatch.setenv(PASSWORD_ENV, bad)
    with pytest.raises(AddressError, match="exactly 6 digits"):
        zvt_password(address)
    with pytest.raises(AddressError, match="exactly 6 digits"):
        zvt_password(Address("zvt", "sim", "fresh", {"password": bad}))


def test_bad_password_is_reported_by_open_terminal() -> None:
    with pytest.raises(AddressError):
        open_terminal(parse_address("zvt+sim://fresh"), password="12")


def test_password_is_never_in_the_terminal_address() -> None:
    terminal = open_terminal(parse_address("zvt+sim://fresh?password=123456"))
    assert "123456" not in terminal.address


# --- password, end to end against the simulator (its password is 000000) -------------------------


def check_identity(text: str, password: str | None = None) -> str | None:
    terminal = open_terminal(parse_address(text), password=password)
    try:
        return terminal.identify().serial
    finally:
        terminal.close()


def test_wrong_password_in_the_address_is_rejected_by_the_terminal() -> None:
    with pytest.raises(AuthenticationError):
        check_identity("zvt+sim://fresh?password=123456")


def test_wrong_password_in_the_environment_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "123456")
    with pytest.raises(AuthenticationError):
        check_identity("zvt+sim://fresh")


def test_right_command_line_password_wins_over_wrong_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "123456")
    assert check_identity("zvt+sim://fresh?password=654321", "000000") == "17F59B1F"


# --- timers --------------------------------------------------------------------------------------


def test_default_timers() -> None:
    assert zvt_timers(parse_address("zvt+sim://fresh")) == ZvtTimers()


def test_timers_from_address_options() -> None:
    timers = zvt_timers(parse_address("zvt+tcp://10.0.0.5:20007?t1=0.5&t2=0.3&t3=10&t4=60"))
    assert timers == ZvtTimers(t1=0.5, t2=0.3, t3=10.0, t4=60.0)


def test_some_timers_keep_their_defaults() -> None:
    timers = zvt_timers(parse_address("zvt+serial:///dev/ttyUSB0?t2=1.5"))
    assert timers.t2 == 1.5
    assert (timers.t1, timers.t3, timers.t4) == (ZvtTimers().t1, ZvtTimers().t3, ZvtTimers().t4)


def test_bad_timer_is_an_address_error() -> None:
    with pytest.raises(AddressError, match="t2"):
        zvt_timers(parse_address("zvt+sim://fresh?t2=soon"))


def test_open_terminal_applies_timers_and_currency() -> None:
    terminal = open_terminal(parse_address("zvt+sim://fresh?t2=0.3&t3=2&currency=756"))
    assert isinstance(terminal, ZvtTerminal)
    assert terminal.driver.timers.t2 == 0.3
    assert terminal.driver.timers.t3 == 2.0
    assert terminal.driver.currency == 756


# --- transports ----------------------------------------------------------------------------------


def test_tcp_address_gets_a_tcp_transport_and_bare_apdus() -> None:
    transport, link = zvt_transport(parse_address("zvt+tcp://10.0.0.5:22000"))
    assert isinstance(transport, TcpTransport)
    assert (transport.host, transport.port) == ("10.0.0.5", 22000)
    assert link is Link.TCP


def test_tcp_default_port_and_ipv6() -> None:
    transport, _ = zvt_transport(parse_address("zvt+tcp://[::1]"))
    assert isinstance(transport, TcpTransport)
    assert (transport.host, transport.port) == ("::1", 20007)


def test_serial_address_gets_a_serial_transport_at_9600() -> None:
    transport, link = zvt_transport(parse_address("zvt+serial:///dev/ttyUSB0"))
    assert isinstance(transport, SerialTransport)
    assert (transport.url, transport.baudrate, transport.stopbits) == ("/dev/ttyUSB0", 9600, 2)
    assert link is Link.SERIAL


def test_serial_baud_option_and_bare_device() -> None:
    transport, link = zvt_transport(parse_address("zvt+serial:///dev/ttyACM0?baud=19200"))
    assert isinstance(transport, SerialTransport)
    assert transport.baudrate == 19200
    bare, bare_link = zvt_transport(parse_address("/dev/ttyUSB1"))
    assert isinstance(bare, SerialTransport)
    assert bare.url == "/dev/ttyUSB1"
    assert link is bare_link is Link.SERIAL


def test_bad_baud_is_an_address_error() -> None:
    with pytest.raises(AddressError, match="baud"):
        zvt_transport(parse_address("zvt+serial:///dev/ttyUSB0?baud=fast"))


def test_sim_address_goes_through_the_possim_serial_url() -> None:
    address = parse_address("zvt+sim://activated?silent=1&password=123456&t2=0.3&currency=978")
    transport, link = zvt_transport(address)
    assert isinstance(transport, SerialTransport)
    assert link is Link.SERIAL
    url = urlsplit(transport.url)
    assert (url.scheme, url.netloc, url.path) == ("possim", "zvt", "/activated")
    # Faults and timing go to the simulator; password and timers stay with the driver.
    assert parse_qs(url.query) == {"silent": ["1"], "time_scale": ["0"]}
    assert URL_HANDLER_PACKAGE in serial.protocol_handler_packages


def test_sim_time_scale_can_be_chosen() -> None:
    transport, _ = zvt_transport(parse_address("zvt+sim://fresh?time_scale=0.5"))
    assert isinstance(transport, SerialTransport)
    assert parse_qs(urlsplit(transport.url).query) == {"time_scale": ["0.5"]}


def test_unknown_scenario_is_an_address_error_naming_the_known_ones() -> None:
    with pytest.raises(AddressError, match=r"unknown simulated scenario 'nope'.*activated"):
        zvt_transport(parse_address("zvt+sim://nope"))


def test_bad_simulator_option_is_an_address_error() -> None:
    with pytest.raises(AddressError, match="disconnect_after"):
        zvt_transport(parse_address("zvt+sim://fresh?disconnect_after=soon"))


def test_other_families_have_no_driver_yet() -> None:
    with pytest.raises(AddressError, match="no driver"):
        open_terminal(Address("sdi", "usb", "serial123"))


def test_open_terminal_is_lazy_and_fits_the_contract() -> None:
    # Opening a nonexistent device only fails at the first probe, not here.
    terminal = open_terminal(parse_address("zvt+serial:///dev/ttyNOPE"))
    assert isinstance(terminal, Terminal)
    assert isinstance(terminal, ZvtTerminal)
    assert terminal.address == "zvt+serial:///dev/ttyNOPE"
    assert terminal.family == "zvt"
    assert terminal.driver.link is Link.SERIAL
    assert terminal.driver.transport.is_open is False
    terminal.close()


@pytest.mark.parametrize(
    ("text", "link", "kind"),
    [
        ("zvt+tcp://127.0.0.1:20007", Link.TCP, TcpTransport),
        ("zvt+serial:///dev/ttyS0", Link.SERIAL, SerialTransport),
        ("zvt+sim://fresh", Link.SERIAL, SerialTransport),
    ],
)
def test_open_terminal_uses_the_link_of_the_address(text: str, link: Link, kind: type) -> None:
    terminal = open_terminal(parse_address(text))
    assert isinstance(terminal, ZvtTerminal)
    assert terminal.driver.link is link
    assert isinstance(terminal.driver.transport, kind)
