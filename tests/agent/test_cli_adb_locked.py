"""``posdiag check`` and ``posdiag list`` with a production-locked Android unit attached.

A unit whose USB debugging is off shows on USB without an ADB interface; checked alone it ends
in one line sending the operator to its backend and exit code 2, as a never-allowed key does;
in a pile of terminals it is one unreachable report with that line, and the others are still
checked. Discovery lists it instead of leaving it out. Over TCP its closed port is unreachable
(3), with a reason that says only what a refused connect tells.
"""

from __future__ import annotations

import socket
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from posdiag.drivers.transport import usbbulk
from posdiag.drivers.transport.base import Transport
from posdiag.simulators.attach import TcpAttachment
from posdiag.simulators.registry import create_adb
from posdiag.simulators.usb_backend import SimulatedUsbBackend, SimulatedUsbDevice

Invoke = Callable[..., Result]
PAX, PID, SERIAL = 0x2FB8, 0x2201, "0820533061"
LOCKED_LINE = (
    f"a terminal is attached (usb 2fb8:2201 serial {SERIAL}), but its USB debugging is off"
)
BACKEND_HINT = "check its binding through its backend instead"


class LockedEngine:
    """A unit with USB debugging off: no ADB interface, so never served."""

    state = types.SimpleNamespace(usb_debugging=False)

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        raise AssertionError("a locked unit's engine must not be reached")


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> None:
    """A private home and key directory, plain consoles, logging restored (``cli_home``)."""


@pytest.fixture
def locked_on_usb(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatedUsbBackend]:
    """This machine's USB bus holds one locked PAX unit (a catalogue vendor) and nothing else."""
    device = SimulatedUsbDevice(PAX, PID, SERIAL, "PAX", "A920", LockedEngine())
    with SimulatedUsbBackend([device]) as backend:
        monkeypatch.setattr(usbbulk, "get_backend", lambda: backend)
        yield backend


def error_line(result: Result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("posdiag: error: "), lines
    return lines[-1]


@pytest.mark.usefixtures("locked_on_usb")
@pytest.mark.parametrize("address", [f"adb+usb://{SERIAL}", "adb+usb://", "adb+usb://2fb8:2201"])
def test_checking_a_locked_usb_unit_says_so_and_exits_2(invoke: Invoke, address: str) -> None:
    result = invoke("check", address)
    assert result.exit_code == 2
    line = error_line(result)
    assert LOCKED_LINE in line
    assert BACKEND_HINT in line
    assert result.stdout == ""


@pytest.mark.usefixtures("locked_on_usb")
def test_a_locked_unit_in_a_pile_is_one_unreachable_report(invoke: Invoke) -> None:
    result = invoke("check", f"adb+usb://{SERIAL}", "adb+sim://activated?model=pax-a920")
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "UNREACHABLE" in result.stdout
    assert "its USB debugging is off" in result.stdout  # the report's reason: the locked line
    assert "WIPE REQUIRED" in result.stdout  # the other one was still checked


@pytest.mark.usefixtures("locked_on_usb")
def test_discovery_lists_the_locked_unit(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    from posdiag.agent import discovery

    monkeypatch.setattr(discovery.list_ports, "comports", lambda: [])
    found = discovery.discover()
    assert [(f.address, f.kind, f.serial, f.usb_id) for f in found] == [
        (f"adb+usb://{SERIAL}", discovery.LOCKED_KIND, SERIAL, "2fb8:2201")
    ]
    result = invoke("list")
    assert result.exit_code == 0
    assert "USB debugging off" in result.stdout


def test_memory_unit_with_debugging_disabled_exits_2(invoke: Invoke) -> None:
    result = invoke("check", "adb+sim://debugging-disabled")
    assert result.exit_code == 2
    line = error_line(result)
    assert "the terminal's debugging is locked" in line
    assert BACKEND_HINT in line


def test_closed_adb_port_of_a_locked_unit_is_unreachable_with_what_is_known(
    invoke: Invoke,
) -> None:
    attachment = TcpAttachment(create_adb("debugging-disabled", "pax-a920", {}), "127.0.0.1", 0)
    host, port = attachment.start()
    try:
        with socket.socket() as probe:  # refused, as a real locked unit's port 5555
            assert probe.connect_ex((host, port)) != 0
        result = invoke("check", f"adb+tcp://{host}:{port}")
    finally:
        attachment.stop()
    assert result.exit_code == 3
    assert "UNREACHABLE" in result.stdout
    assert "Nothing answers on the terminal's ADB port" in result.stdout
    assert "if the address and port are right" in result.stdout
