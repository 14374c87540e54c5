r"""Hotplug: wake the station the moment a serial adapter or USB device comes or goes.

Polling alone makes a technician wait up to a poll interval after plugging a terminal in, and
makes the station re-enumerate every port all day. Linux announces every device change as a
*uevent*; listening to them lets the station re-enumerate at once and poll only as a backstop.

Sources, best first:

1. **pyudev** (optional, ``pip install 'posdiag[udev]'``): udev's events arrive after udev's
   rules ran, so the ``/dev`` node exists and has its permissions when we look.
2. **The kernel's uevent socket** (``AF_NETLINK``/``NETLINK_KOBJECT_UEVENT``, multicast group 1),
   no dependency: events arrive before udev's rules ran, so a change is reported only after a
   short settle delay.
3. **Polling** where neither is available (macOS, Windows, containers without netlink).

Kernel uevent datagram (one per event), all ASCII, fields separated by NUL::

    add@/devices/pci0000:00/.../ttyUSB0\0ACTION=add\0DEVPATH=/devices/...\0SUBSYSTEM=tty\0...

udev's own datagrams on group 2 start with ``libudev\0`` and a binary header; they are
ignored here (pyudev reads those).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger(__name__)

NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1
WATCHED_SUBSYSTEMS = frozenset({"tty", "usb", "usb-serial"})
WATCHED_ACTIONS = frozenset({"add", "remove", "bind", "unbind"})
SETTLE_S = 0.3
"""Pause after a kernel event before re-enumerating: udev names and permissions the node."""


@dataclass(frozen=True)
class UEvent:
    """One kernel device event."""

    action: str
    devpath: str
    subsystem: str
    properties: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def relevant(self) -> bool:
        """Whether the event can change the set of attached terminals."""
        return self.action in WATCHED_ACTIONS and self.subsystem in WATCHED_SUBSYSTEMS


def parse_uevent(datagram: bytes) -> UEvent | None:
    """A kernel uevent from its datagram; None for udev's binary messages and for junk.

    Never raises: the socket is shared with every device on the machine and a malformed
    datagram must not stop the station.
    """
    if datagram.startswith(b"libudev\0"):
        return None
    fields = datagram.split(b"\0")
    header = fields[0].decode("ascii", "replace")
    if "@" not in header:
        return None
    properties: dict[str, str] = {}
    for item in fields[1:]:
        key, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep:
            properties[key] = value
    action, _, devpath = header.partition("@")
    return UEvent(
        properties.get("ACTION", action),
        properties.get("DEVPATH", devpath),
        properties.get("SUBSYSTEM", ""),
        properties,
    )


def open_kernel_socket() -> socket.socket:
    """The kernel's uevent multicast socket.

    Raises:
        OSError: no netlink here (not Linux, or a sandbox without it).
    """
    family = getattr(socket, "AF_NETLINK", None)
    if family is None:
        raise OSError("no AF_NETLINK on this system")
    sock = socket.socket(family, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
    try:
        sock.bind((0, KERNEL_GROUP))
    except OSError:
        sock.close()
        raise
    return sock


class HotplugMonitor:
    """Calls ``on_change`` (from its own thread) after terminals may have come or gone.

    Args:
        on_change: what to do; the station re-enumerates (it must be quick and thread-safe).
        socket_factory: the kernel socket (tests hand in one end of a socket pair).
        use_pyudev: try pyudev first when it is installed.
        settle_s: delay after a kernel event, coalescing bursts (one plug is several events).
    """

    def __init__(
        self,
        on_change: Callable[[], None],
        *,
        socket_factory: Callable[[], socket.socket] = open_kernel_socket,
        use_pyudev: bool = True,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.on_change = on_change
        self.socket_factory = socket_factory
        self.use_pyudev = use_pyudev
        self.settle_s = settle_s
        self.source = "polling"
        self.events = 0
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._observer: Any = None

    def start(self) -> str:
        """Start listening; returns the source in use: ``pyudev``, ``netlink`` or ``polling``."""
        if self.use_pyudev and self._start_pyudev():
            self.source = "pyudev"
        else:
            try:
                self._sock = self.socket_factory()
            except OSError as exc:
                log.info("hotplug.unavailable", reason=str(exc), fallback="polling")
                return self.source
            self._sock.settimeout(0.2)
            self._thread = threading.Thread(
                target=self._listen, name="posdiag-hotplug", daemon=True
            )
            self._thread.start()
            self.source = "netlink"
        log.info("hotplug.listening", source=self.source)
        return self.source

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> HotplugMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_pyudev(self) -> bool:
        try:
            import pyudev  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return False
        try:
            context = pyudev.Context()
            monitor = pyudev.Monitor.from_netlink(context)
            for subsystem in sorted(WATCHED_SUBSYSTEMS):
                monitor.filter_by(subsystem)

            def handle(device: Any) -> None:
                if device.action in WATCHED_ACTIONS:
                    self.events += 1
                    self.on_change()

            self._observer = pyudev.MonitorObserver(monitor, callback=handle, daemon=True)
            self._observer.start()
        except Exception as exc:  # no libudev, no udev daemon: fall back to the kernel socket
            log.info("hotplug.pyudev_unavailable", reason=str(exc))
            self._observer = None
            return False
        return True

    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                datagram = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():
                    log.warning("hotplug.socket_failed", error=str(exc), fallback="polling")
                return
            if not datagram:
                return
            event = parse_uevent(datagram)
            if event is None or not event.relevant:
                continue
            log.debug("hotplug.event", action=event.action, subsystem=event.subsystem)
            self.events += 1
            # a plug is a burst (usb device, interface, tty): settle, drain, report once
            if self._stop.wait(self.settle_s):
                return
            self._drain(sock)
            self.on_change()

    def _drain(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            while True:
                sock.recv(65536)
        except (BlockingIOError, OSError):
            pass
        finally:
            sock.settimeout(0.2)
