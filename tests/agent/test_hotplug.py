"""Hotplug events: the kernel's uevent datagrams, and a monitor that wakes the station once."""

from __future__ import annotations

import socket
import sys
import threading
import time
from typing import Any

import pytest

from posdiag.agent.hotplug import HotplugMonitor, open_kernel_socket, parse_uevent

# The datagrams a kernel sends when a USB serial adapter is plugged in (an FTDI cable):
# the USB device, its interface, the usb-serial port and the tty, in that order.
PLUG_BURST = [
    b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\0ACTION=add\0"
    b"DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\0SUBSYSTEM=usb\0MAJOR=189\0MINOR=3\0"
    b"DEVNAME=bus/usb/001/004\0DEVTYPE=usb_device\0PRODUCT=403/6001/600\0SEQNUM=4711\0",
    b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0\0ACTION=add\0"
    b"DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0\0SUBSYSTEM=usb\0"
    b"DEVTYPE=usb_interface\0SEQNUM=4712\0",
    b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0\0ACTION=add\0"
    b"DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0\0"
    b"SUBSYSTEM=tty\0MAJOR=188\0MINOR=0\0DEVNAME=ttyUSB0\0SEQNUM=4714\0",
]


def test_parse_kernel_uevent() -> None:
    event = parse_uevent(PLUG_BURST[2])
    assert event is not None and event.relevant
    assert (event.action, event.subsystem) == ("add", "tty")
    assert event.devpath.endswith("/tty/ttyUSB0")
    assert event.properties["DEVNAME"] == "ttyUSB0"


@pytest.mark.parametrize(
    "datagram",
    [
        b"libudev\0\xfe\xed\xca\xfe" + bytes(32),  # udev's own binary message
        b"",
        b"\xff\xfe garbage without a header",
    ],
)
def test_parse_ignores_what_is_not_a_kernel_uevent(datagram: bytes) -> None:
    assert parse_uevent(datagram) is None


def test_irrelevant_events_are_not_relevant() -> None:
    battery = b"change@/devices/LNXSYSTM:00/PNP0C0A:00/power_supply/BAT0\0ACTION=change\0"
    battery += b"DEVPATH=/devices/LNXSYSTM:00/PNP0C0A:00/power_supply/BAT0\0"
    battery += b"SUBSYSTEM=power_supply\0"
    event = parse_uevent(battery)
    assert event is not None and not event.relevant


def _monitor_with_pair(settle_s: float = 0.05) -> tuple[HotplugMonitor, socket.socket, list[int]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    calls: list[int] = []
    monitor = HotplugMonitor(
        lambda: calls.append(1), socket_factory=lambda: ours, use_pyudev=False, settle_s=settle_s
    )
    return monitor, theirs, calls


def _wait_for(condition: object, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_a_plug_burst_wakes_the_station_once() -> None:
    monitor, kernel, calls = _monitor_with_pair(settle_s=0.1)
    assert monitor.start() == "netlink"
    try:
        for datagram in PLUG_BURST:
            kernel.send(datagram)
        _wait_for(lambda: calls)
        time.sleep(0.2)
        assert calls == [1]
        kernel.send(PLUG_BURST[2].replace(b"add", b"remove"))
        _wait_for(lambda: len(calls) == 2)
        assert len(calls) == 2
    finally:
        monitor.stop()
        kernel.close()


def test_unrelated_events_and_junk_do_not_wake_it() -> None:
    monitor, kernel, calls = _monitor_with_pair()
    monitor.start()
    try:
        kernel.send(b"libudev\0" + bytes(40))
        kernel.send(b"change@/devices/virtual/net/lo\0ACTION=change\0SUBSYSTEM=net\0")
        kernel.send(b"\x00\x01\x02")
        time.sleep(0.3)
        assert calls == []
    finally:
        monitor.stop()
        kernel.close()


def test_without_netlink_the_station_polls() -> None:
    def no_netlink() -> socket.socket:
        raise OSError("no AF_NETLINK on this system")

    monitor = HotplugMonitor(lambda: None, socket_factory=no_netlink, use_pyudev=False)
    assert monitor.start() == "polling"
    monitor.stop()


def test_the_kernel_socket_opens_where_linux_allows_it() -> None:
    try:
        sock = open_kernel_socket()
    except OSError as exc:
        pytest.skip(f"no kernel uevent socket here: {exc}")
    sock.close()


def test_stop_returns_promptly() -> None:
    monitor, kernel, _ = _monitor_with_pair()
    monitor.start()
    started = time.monotonic()
    monitor.stop()
    assert time.monotonic() - started < 1.5
    assert not any(t.name == "posdiag-hotplug" for t in threading.enumerate())
    kernel.close()


class _FakeDevice:
    def __init__(self, action: str) -> None:
        self.action = action


class _FakePyudev:
    """The slice of pyudev's API the monitor uses (pyudev is optional, not a test dependency)."""

    def __init__(self) -> None:
        self.filters: list[str] = []
        self.callback: Any = None
        self.stopped = False
        fake = self

        class Context:
            pass

        class Monitor:
            @staticmethod
            def from_netlink(context: object) -> Monitor:
                return Monitor()

            def filter_by(self, subsystem: str) -> None:
                fake.filters.append(subsystem)

        class MonitorObserver:
            def __init__(self, monitor: object, callback: Any, daemon: bool) -> None:
                fake.callback = callback

            def start(self) -> None:
                pass

            def stop(self) -> None:
                fake.stopped = True

        self.Context, self.Monitor, self.MonitorObserver = Context, Monitor, MonitorObserver


def test_pyudev_is_used_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakePyudev()
    monkeypatch.setitem(sys.modules, "pyudev", fake)
    calls: list[int] = []
    monitor = HotplugMonitor(lambda: calls.append(1))
    assert monitor.start() == "pyudev"
    assert set(fake.filters) == {"tty", "usb", "usb-serial"}
    fake.callback(_FakeDevice("add"))
    fake.callback(_FakeDevice("change"))  # not a plug or a pull
    fake.callback(_FakeDevice("remove"))
    assert calls == [1, 1]
    monitor.stop()
    assert fake.stopped


def test_broken_pyudev_falls_back_to_the_kernel_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakePyudev()

    def no_libudev(context: object) -> None:
        raise ImportError("libudev.so.1: cannot open shared object file")

    fake.Monitor.from_netlink = staticmethod(no_libudev)  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "pyudev", fake)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    monitor = HotplugMonitor(lambda: None, socket_factory=lambda: ours)
    assert monitor.start() == "netlink"
    monitor.stop()
    theirs.close()
