"""Production-locked units as the driver meets them: USB debugging off, a closed ADB port.

Over USB a locked unit offers no ADB interface; over the network its port refuses; over a link
that is already there (memory) adbd hangs up without a word. Each ends in one typed error whose
message says what is known, and over USB and memory sends the operator to the unit's backend.
Also: a reboot over USB, after which the unit comes back by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from posdiag.drivers.adb.errors import (
    AdbDebuggingDisabledError,
    AdbDebuggingLockedError,
    AdbPortClosedError,
    AdbUsbDebuggingOffError,
)
from posdiag.drivers.errors import (
    ConnectionRefused,
    DebuggingLockedError,
    DeviceNotFound,
    TransportClosed,
)
from posdiag.simulators.pytest_plugin import AdbDriverFactory, SimulatedAdb

AdbTerminalFactory = Callable[..., SimulatedAdb]
BACKEND_HINT = "check its binding through its backend instead (posdiag check with its TMS backend"


def test_usb_unit_with_debugging_off_is_locked_not_missing(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("debugging-disabled", model="pax-a920", attach="usb")

    with pytest.raises(AdbUsbDebuggingOffError) as info:
        adb_driver(terminal)

    error = info.value
    assert isinstance(error, AdbDebuggingLockedError)  # as a never-allowed key: exit 2
    assert isinstance(error, DeviceNotFound)  # and what it is on the wire: no ADB device
    message = str(error)
    assert message.startswith("a terminal is attached (usb 2fb8:2201 serial ")
    assert "its USB debugging is off" in message
    assert BACKEND_HINT in message
    assert "\n" not in message
    assert terminal.usb_device is not None and not terminal.usb_device.engine_running


def test_tcp_unit_with_debugging_off_refuses_and_says_only_what_is_known(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("debugging-disabled", attach="tcp")

    with pytest.raises(AdbPortClosedError) as info:
        adb_driver(terminal)

    error = info.value
    assert isinstance(error, ConnectionRefused)
    assert not isinstance(error, DebuggingLockedError)  # a wrong port refuses just the same
    message = str(error)
    assert message.startswith(f"tcp 127.0.0.1:{terminal.port} refused the connection")
    assert "If it is the terminal and the port is right, its network debugging is off" in message
    assert "through its backend" in message


def test_memory_link_dropped_before_cnxn_is_the_locked_message(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("debugging-disabled")

    with pytest.raises(AdbDebuggingDisabledError) as info:
        adb_driver(terminal)

    assert isinstance(info.value, TransportClosed)
    assert BACKEND_HINT in str(info.value)


def test_reboot_over_usb_comes_back_by_itself(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("activated", attach="usb", reboot_seconds=0.3, scale=1.0)
    device = terminal.usb_device
    assert device is not None
    driver = adb_driver(terminal)
    terminal.state.tree.write("/data/local/tmp/kept", b"1")
    address = device.address

    driver._conn.open_stream("reboot:")  # adb reboot: accepted, then the unit goes down
    driver._flush()
    with pytest.raises(TransportClosed):
        driver.shell("echo still there?")
    assert terminal.simulator.reboots == 1
    assert not device.attached and device.rebooting

    deadline = time.monotonic() + 3.0
    while not device.attached and time.monotonic() < deadline:
        time.sleep(0.02)
    assert device.attached, "the unit did not re-enumerate after its reboot"
    assert device.address != address
    again = adb_driver(terminal)
    assert again.shell("cat /data/local/tmp/kept").text == "1"  # state kept
