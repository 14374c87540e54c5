"""A terminal on USB whose debugging is off: attached, but without an ADB interface.

The transport must say so (a typed UsbDebuggingOff, also a DeviceNotFound) instead of "no ADB
device attached", for a device the caller named and, with no filter, for a device of a terminal
vendor; anything else on the bus without ADB (a phone, a mouse) stays none of its business.
"""

from __future__ import annotations

import threading
import types

import pytest

from posdiag.drivers.errors import DebuggingLockedError, DeviceNotFound, UsbDebuggingOff
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.usbbulk import (
    LockedUsbDevice,
    UsbBulkTransport,
    find_adb_devices,
    find_locked_devices,
)
from posdiag.simulators.usb_backend import SimulatedUsbBackend, SimulatedUsbDevice

PAX, PID, SERIAL = 0x2FB8, 0x2201, "0820533061"
PHONE = 0x18D1


class LockedEngine:
    """Never served: a unit whose debugging is off has no ADB interface to reach it by."""

    def __init__(self, usb_debugging: bool = False) -> None:
        self.state = types.SimpleNamespace(usb_debugging=usb_debugging)

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        raise AssertionError("a locked unit's engine must not be reached")


def locked(vid: int = PAX, serial: str | None = SERIAL) -> SimulatedUsbDevice:
    return SimulatedUsbDevice(vid, PID, serial, "PAX", "A920", LockedEngine())


def open_error(backend: SimulatedUsbBackend, **selection: object) -> BaseException:
    transport = UsbBulkTransport(backend=backend, **selection)  # type: ignore[arg-type]
    with pytest.raises(DeviceNotFound) as info:
        transport.open()
    assert not transport.is_open
    return info.value


@pytest.mark.parametrize(
    "selection",
    [
        {"serial": SERIAL},
        {"vid": PAX, "pid": PID},
        {"bus": 1, "address": 2},
    ],
    ids=["serial", "vid:pid", "bus+address"],
)
def test_a_named_unit_without_adb_is_reported_as_debugging_off(
    selection: dict[str, object],
) -> None:
    with SimulatedUsbBackend([locked()]) as backend:
        error = open_error(backend, **selection)
    assert isinstance(error, UsbDebuggingOff)
    assert isinstance(error, DebuggingLockedError)
    assert error.device == f"usb 2fb8:2201 serial {SERIAL}"
    message = str(error)
    assert "\n" not in message
    assert "offers no ADB interface: its USB debugging is off" in message
    assert "binding can still be checked through its backend" in message


def test_another_serial_is_not_taken_for_the_locked_unit() -> None:
    with SimulatedUsbBackend([locked()]) as backend:
        error = open_error(backend, serial="SOMETHING-ELSE")
    assert not isinstance(error, UsbDebuggingOff)
    assert "no ADB device with serial SOMETHING-ELSE attached" in str(error)


def test_without_a_filter_only_terminal_vendors_count() -> None:
    with SimulatedUsbBackend([locked(vid=PHONE)]) as backend:
        error = open_error(backend)  # a phone without debugging is nobody's terminal
        assert not isinstance(error, UsbDebuggingOff)
        assert str(error) == "no ADB device attached"
        error = open_error(backend, terminal_vendors={PHONE})
    assert isinstance(error, UsbDebuggingOff)


def test_a_device_with_adb_is_opened_even_beside_a_locked_unit() -> None:
    unlocked = SimulatedUsbDevice(
        PAX, PID, "OTHER", "PAX", "A920", LockedEngine(usb_debugging=True)
    )
    with SimulatedUsbBackend([locked(), unlocked]) as backend:
        transport = UsbBulkTransport(backend=backend, terminal_vendors={PAX})
        transport.open()
        try:
            assert transport.info is not None and transport.info.serial == "OTHER"
        finally:
            transport.close()


def test_find_locked_devices_lists_terminal_vendors_only() -> None:
    devices = [locked(), locked(vid=PHONE, serial="PHONE1")]
    with SimulatedUsbBackend(devices) as backend:
        assert find_adb_devices(backend=backend) == []
        found = find_locked_devices({PAX}, backend=backend)
        assert found == [LockedUsbDevice(PAX, PID, SERIAL, 1, 2)]
        assert found[0].description == f"usb 2fb8:2201 serial {SERIAL}"
        assert find_locked_devices((), backend=backend) == []


def test_switching_debugging_on_makes_it_an_adb_device_again() -> None:
    device = locked()
    with SimulatedUsbBackend([device]) as backend:
        assert find_adb_devices(backend=backend) == []
        device.engine.state.usb_debugging = True  # type: ignore[attr-defined]
        assert [info.serial for info in find_adb_devices(backend=backend)] == [SERIAL]
        assert find_locked_devices({PAX}, backend=backend) == []
