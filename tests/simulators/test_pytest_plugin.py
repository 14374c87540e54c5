"""The pytest plugin as a CI user meets it: how to reach a simulated terminal, strict fault names.

The fixtures are the product here, so the tests use them as a consuming project would: connect
to ``host``/``port`` with a plain socket, open ``path`` with pyserial, hand ``address`` to
posdiag's own address parser, and misspell a fault to see it refused.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import AddressError
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.framing import encode_serial_frame
from posdiag.simulators import registry
from posdiag.simulators.adb.state import AdbScenarioError
from posdiag.simulators.backend.pytest_fixtures import SimulatedBackend, backend_faults
from posdiag.simulators.pytest_plugin import (
    ADB_ATTACH_MODES,
    ATTACH_MODES,
    SimulatedAdb,
    SimulatedZvt,
    UnknownFaultError,
)
from posdiag.simulators.stock_adb import StockAdb, find_stock_adb

ZvtFactory = Callable[..., SimulatedZvt]
AdbFactory = Callable[..., SimulatedAdb]
BackendFactory = Callable[..., SimulatedBackend]

STATUS_ENQUIRY = bytes.fromhex("05 01 03 00 00 00")  # password 000000
ACK_APDU = bytes.fromhex("80 00 00")


def test_a_tcp_terminal_is_reached_at_host_and_port(zvt_terminal: ZvtFactory) -> None:
    terminal = zvt_terminal("activated", attach="tcp")
    assert terminal.host == "127.0.0.1"
    assert isinstance(terminal.port, int) and 0 < terminal.port < 65536
    assert terminal.path is None and terminal.url is None
    assert terminal.address == f"zvt+tcp://{terminal.host}:{terminal.port}"
    parsed = parse_address(terminal.address)
    assert (parsed.family, parsed.link, parsed.target) == (
        "zvt",
        "tcp",
        f"{terminal.host}:{terminal.port}",
    )
    with socket.create_connection((terminal.host, terminal.port), timeout=2) as ecr:
        ecr.sendall(STATUS_ENQUIRY)
        assert ecr.recv(3) == ACK_APDU


def test_a_pty_terminal_is_a_serial_port_at_path(zvt_terminal: ZvtFactory) -> None:
    terminal = zvt_terminal("activated", attach="pty")
    assert terminal.path is not None and terminal.path.startswith("/dev/")
    assert stat.S_ISCHR(os.stat(terminal.path).st_mode)
    assert terminal.host is None and terminal.port is None
    assert terminal.address == f"zvt+serial://{terminal.path}"
    assert parse_address(terminal.address).target == terminal.path
    with serial.Serial(terminal.path, 9600, timeout=2) as port:
        port.write(encode_serial_frame(STATUS_ENQUIRY))
        assert port.read(1) == b"\x06"


@pytest.mark.parametrize("attach", ["memory", "url"])
def test_links_no_address_can_name_have_none(zvt_terminal: ZvtFactory, attach: str) -> None:
    terminal = zvt_terminal("fresh", attach=attach)
    assert (terminal.host, terminal.port, terminal.path, terminal.address) == (None,) * 4
    assert (terminal.url is not None) == (attach == "url")


def test_every_attach_mode_is_covered() -> None:
    assert set(ATTACH_MODES) == {"memory", "pty", "tcp", "url"}
    assert set(ADB_ATTACH_MODES) == {"memory", "tcp", "usb"}


@pytest.mark.parametrize(("attach", "link"), [("tcp", Link.SERIAL), ("pty", Link.TCP)])
def test_no_address_when_the_framing_is_not_the_one_it_implies(
    zvt_terminal: ZvtFactory, attach: str, link: Link
) -> None:
    terminal = zvt_terminal("fresh", attach=attach, link=link)
    assert terminal.address is None  # posdiag would speak the wrong framing to it
    assert (terminal.port is not None) == (attach == "tcp")
    assert (terminal.path is not None) == (attach == "pty")


def test_an_adb_terminal_on_tcp_has_host_port_and_address(adb_terminal: AdbFactory) -> None:
    terminal = adb_terminal("activated", attach="tcp")
    assert terminal.host == "127.0.0.1" and terminal.port
    assert terminal.address == f"adb+tcp://{terminal.host}:{terminal.port}"
    assert parse_address(terminal.address).target == f"{terminal.host}:{terminal.port}"
    assert terminal.path is None
    with socket.create_connection((terminal.host, terminal.port), timeout=2):
        pass


@pytest.mark.parametrize("attach", ["memory", "usb"])
def test_adb_links_without_an_address(adb_terminal: AdbFactory, attach: str) -> None:
    terminal = adb_terminal("fresh", attach=attach)
    assert (terminal.host, terminal.port, terminal.path, terminal.address) == (None,) * 4


def test_a_backend_has_host_and_port(backend_simulator: BackendFactory) -> None:
    backend = backend_simulator("generic")
    assert backend.host == "127.0.0.1" and backend.port
    assert backend.url.startswith(f"http://{backend.host}:{backend.port}")


# --- fault names --------------------------------------------------------------------------------


def test_zvt_unknown_fault_names_it_suggests_and_lists(zvt_terminal: ZvtFactory) -> None:
    with pytest.raises(UnknownFaultError) as caught:
        zvt_terminal("activated", drop_akc=1)
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown fault 'drop_akc'" in message
    assert "did you mean 'drop_ack'" in message
    for name in registry.fault_names("zvt"):
        assert name in message
    assert caught.value.name == "drop_akc"
    assert set(caught.value.valid) == set(registry.fault_names("zvt"))
    assert isinstance(caught.value, AddressError)  # what possim:// URLs raise for the same typo


@pytest.mark.parametrize("option", ["t3", "currency", "auth", "bus", "tms"])
def test_zvt_options_the_fixture_would_ignore_are_refused(
    zvt_terminal: ZvtFactory, option: str
) -> None:
    # Accepted in addresses for other layers, but a zvt_terminal given them would not change.
    with pytest.raises(UnknownFaultError, match=f"unknown fault '{option}'"):
        zvt_terminal("activated", **{option: "1"})


def test_zvt_options_it_honours_still_work(zvt_terminal: ZvtFactory) -> None:
    terminal = zvt_terminal("fresh", password="123456", serial="5a000001", latency=0, baud=19200)
    assert (terminal.state.password, terminal.state.serial) == ("123456", "5A000001")
    assert terminal.state.timing.baud == 19200


def test_adb_unknown_fault_names_it_suggests_and_lists(adb_terminal: AdbFactory) -> None:
    with pytest.raises(UnknownFaultError) as caught:
        adb_terminal("activated", vanish_afer=1)
    message = str(caught.value)
    assert "unknown fault or device option 'vanish_afer'" in message
    assert "did you mean 'vanish_after'" in message
    for name in registry.fault_names("adb"):
        assert name in message
    assert isinstance(caught.value, AdbScenarioError)


def test_adb_device_options_and_tms_still_work(
    adb_terminal: AdbFactory, backend_simulator: BackendFactory
) -> None:
    tms = backend_simulator("paxstore", "0820533061=bound")
    terminal = adb_terminal("activated", model="pax-a920", tms=tms.url, auth=True, stall="0")
    assert terminal.state.tms_url == tms.url and terminal.state.auth_required
    assert tms.simulator.counts.get("calls", 0) == 0  # the enrolment sync is not an API call
    assert "0820533061" in tms.simulator.terminals


@pytest.mark.parametrize("kind", ["paxstore", "adyen", "generic"])
def test_backend_unknown_fault_names_it_and_lists_the_kinds_faults(
    backend_simulator: BackendFactory, kind: str
) -> None:
    with pytest.raises(UnknownFaultError) as caught:
        backend_simulator(kind, rate_limt="not even a number")  # the name is checked first
    message = str(caught.value)
    assert "unknown backend fault 'rate_limt'" in message
    assert "did you mean 'rate_limit'" in message
    for name in backend_faults(kind):
        assert name in message


def test_backend_faults_accept_booleans(backend_simulator: BackendFactory) -> None:
    backend = backend_simulator("paxstore", bad_signature=True, release_pending=2)
    assert backend.simulator.faults == {"bad_signature": 1.0, "release_pending": 2.0}


def test_an_unknown_backend_kind_still_lists_the_kinds(backend_simulator: BackendFactory) -> None:
    with pytest.raises(AddressError, match=r"unknown backend kind 'paxstor'.*paxstore"):
        backend_simulator("paxstor")


def test_the_stock_adb_client_reaches_the_fixture_at_host_and_port(
    adb_terminal: AdbFactory, tmp_path: Path
) -> None:
    binary = find_stock_adb()
    if binary is None:
        pytest.skip("no stock adb client (the test extra's adbutils ships one)")
    terminal = adb_terminal("activated", model="pax-a920", attach="tcp")
    serial_name = f"{terminal.host}:{terminal.port}"
    client = StockAdb(binary, tmp_path)  # a private server on a free port, a throwaway key
    try:
        assert client.connect(serial_name).returncode == 0
        assert client.wait_for_state(serial_name, "device") == "device"
        result = client.shell(serial_name, "getprop", "ro.fac.sn")
        assert result.stdout.strip() == terminal.state.vendor_serial
    finally:
        client.close()


@pytest.mark.parametrize(
    ("options", "auth", "accept"),
    [({"auth": "0"}, False, True), ({"auth": "1", "accept_keys": "0"}, True, False)],
)
def test_adb_text_switches_read_as_posdiag_simulate_reads_them(
    adb_terminal: AdbFactory, options: dict[str, str], auth: bool, accept: bool
) -> None:
    state = adb_terminal("activated", **options).state
    assert (state.auth_required, state.accept_new_keys) == (auth, accept)
