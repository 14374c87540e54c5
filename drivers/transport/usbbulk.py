"""USB bulk transport: Android smart POS reached over their ADB USB interface.

An Android terminal exposes ADB as a vendor-specific USB interface with one bulk OUT and one
bulk IN endpoint. This module finds such interfaces with pyusb, claims one, and turns the two
endpoints into the shared :class:`Transport` byte pipe, so the ADB protocol layer above never
touches USB details.

Two USB facts shape the code, because the ADB daemon relies on them:

* **Host → device, zero-length packets.** The device reads fixed-size transfers and only sees a
  host transfer end at a short packet. A write whose length is a non-zero multiple of the
  endpoint's ``wMaxPacketSize`` therefore has to be followed by a zero-length packet (ZLP), or
  the device keeps waiting (the link stalls) or merges it with the next message. Conversely an
  *empty* write must send nothing at all: a stray ZLP is read by the device as an empty message.
* **Device → host, no ZLPs.** A device message that fills whole packets does not end the host's
  transfer either, so a host read sized larger than the message waits for more data. ADB readers
  avoid this by reading the 24-byte header, then exactly the payload length; ``read`` keeps the
  transfer no larger than that (rounded up to whole packets, because a buffer ending inside a
  packet makes the controller report an overflow) and buffers any surplus.

The machine running the agent may have no USB at all (a CI runner, a container without USB
passthrough). Enumeration then returns an empty list and says once why, instead of failing.

Importing this module undoes pyusb's import-time muting of the stdlib ``usb`` logger, so
pyusb's own errors reach posdiag's log routing (see ``_unsilence_pyusb_logging``).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import errno
import functools
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import structlog
import usb.backend.libusb1
import usb.core
import usb.util

from ..errors import (
    DeviceNotFound,
    TransportClosed,
    TransportError,
    TransportOpenError,
    TransportTimeout,
    UsbDebuggingOff,
)
from ..text import clean_text
from .base import Transport, check_read_args
from .usb_info import LockedUsbDevice, UsbDeviceInfo

log = structlog.get_logger(__name__)

ADB_INTERFACE = (0xFF, 0x42, 0x01)
"""Class, subclass and protocol of the ADB interface (vendor specific, ADB, protocol 1)."""
DBC_ADB_INTERFACE = (0xDC, 0x02, 0x01)
"""ADB over a USB 3 debug class (DbC) link, which newer adb clients also accept."""
ADB_INTERFACE_CLASSES = frozenset({ADB_INTERFACE, DBC_ADB_INTERFACE})

DEFAULT_TIMEOUT = 5.0
"""Seconds a bulk write may wait for the device to accept the data."""
CLOSE_WAIT = 2.0
"""Seconds close() waits for a transfer running in another thread before freeing the handle."""
RESET_INPUT_MAX_TRANSFERS = 64
"""Upper bound of transfers reset_input() discards, so a chatty device cannot hold it forever."""

_MAX_LIBUSB_TIMEOUT_MS = 0x7FFFFFFF
_MAX_PACKET_SIZE_MASK = 0x7FF  # bits 11-12 are the high-bandwidth multiplier (not for bulk)
_DEVICE_GONE_ERRNOS = frozenset(
    code
    for code in (
        errno.ENODEV,
        errno.EIO,
        errno.EPIPE,
        errno.ENOENT,
        getattr(errno, "ESHUTDOWN", None),
    )
    if code is not None
)
_USB_LOOKUP_ERRORS = (usb.core.USBError, ValueError, NotImplementedError, IndexError)
"""What pyusb raises when a descriptor cannot be read (permissions, odd devices)."""

_unavailable_logged: set[str] = set()
_unavailable_lock = threading.Lock()

_PYUSB_SILENT_LEVEL = logging.CRITICAL + 10
"""The level pyusb gives its ``usb`` logger at import when PYUSB_DEBUG is not set."""


def _unsilence_pyusb_logging() -> None:
    """Undo pyusb's import-time muting of its ``usb`` logger.

    Without ``PYUSB_DEBUG``, importing pyusb sets the ``usb`` logger to a level above
    CRITICAL, which drops even "Error loading libusb 1.0 backend". posdiag routes stdlib
    records through its own logging setup and wants those visible, so the level goes back to
    NOTSET (inherit from the root). An explicit PYUSB_DEBUG configuration is left alone.
    """
    usb_logger = logging.getLogger("usb")
    if os.getenv("PYUSB_DEBUG") is None and usb_logger.level == _PYUSB_SILENT_LEVEL:
        usb_logger.setLevel(logging.NOTSET)


_unsilence_pyusb_logging()


def _log_unavailable_once(reason: str) -> None:
    """Say why USB enumeration found nothing, once per reason and process.

    A CI runner or a container without USB passthrough hits this on every scan; one line is
    enough for the person wondering why no terminal shows up, repeating it would be noise.
    """
    with _unavailable_lock:
        if reason in _unavailable_logged:
            return
        _unavailable_logged.add(reason)
    log.warning("no USB backend/bus", reason=reason)


def _load_system_backend() -> Any:
    """Return pyusb's libusb-1.0 backend from the system library, or None when not installed.

    Looking the library up first keeps pyusb from logging a loader error on machines that
    simply do not have it, where the wheel's copy is the expected fallback.
    """
    if not ctypes.util.find_library("usb-1.0"):
        return None
    return usb.backend.libusb1.get_backend()


def _load_packaged_backend() -> Any:
    """Return the libusb-1.0 backend built on the ``libusb_package`` wheel's library, or None.

    The wheel ships libusb-1.0 so a fresh machine needs no system package; it is optional, so
    a missing wheel is not an error.
    """
    try:
        import libusb_package
    except ImportError:
        return None
    return libusb_package.get_libusb1_backend()


@functools.cache
def get_backend() -> Any:
    """Return the pyusb libusb-1.0 backend, or None when libusb-1.0 cannot be loaded.

    The system library is preferred (it matches the kernel and the distribution's udev setup);
    the copy bundled in the ``libusb_package`` wheel is the fallback. The result is cached:
    loading involves a library search, and pyusb keeps one libusb context per process anyway.
    Call ``get_backend.cache_clear()`` to search again.

    Returns:
        A ``usb.backend.IBackend`` instance, or None.
    """
    for source, loader in (
        ("system", _load_system_backend),
        ("libusb_package", _load_packaged_backend),
    ):
        try:
            backend = loader()
        except Exception as exc:  # a broken library must not take the agent down
            log.debug("libusb backend failed to load", source=source, error=str(exc))
            continue
        if backend is not None:
            log.debug("libusb backend loaded", source=source)
            return backend
    return None


def _linux_without_usb() -> bool:
    """Whether this is a Linux machine with no USB bus visible at all (CI, plain containers)."""
    return sys.platform.startswith("linux") and not (
        os.path.isdir("/sys/bus/usb/devices") or os.path.isdir("/dev/bus/usb")
    )


def _is_bulk(endpoint: Any) -> bool:
    return bool(usb.util.endpoint_type(endpoint.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK)


def _is_in(endpoint: Any) -> bool:
    return bool(usb.util.endpoint_direction(endpoint.bEndpointAddress) == usb.util.ENDPOINT_IN)


def _adb_interface(device: Any) -> tuple[Any, Any, Any, Any] | None:
    """Find the first ADB interface of ``device`` with a bulk IN and a bulk OUT endpoint.

    Returns:
        ``(configuration, interface, endpoint_in, endpoint_out)`` or None. Interfaces with the
        ADB class triple but without both bulk endpoints are skipped, as adb itself does.
    """
    for configuration in device:
        for interface in configuration:
            triple = (
                interface.bInterfaceClass,
                interface.bInterfaceSubClass,
                interface.bInterfaceProtocol,
            )
            if triple not in ADB_INTERFACE_CLASSES:
                continue
            bulk = [ep for ep in interface if _is_bulk(ep)]
            ep_in = next((ep for ep in bulk if _is_in(ep)), None)
            ep_out = next((ep for ep in bulk if not _is_in(ep)), None)
            if ep_in is not None and ep_out is not None:
                return configuration, interface, ep_in, ep_out
    return None


def _read_strings(device: Any) -> tuple[str | None, str | None, str | None, bool]:
    """Read serial, manufacturer and product strings of ``device``.

    String descriptors need an open device handle, which fails without permission on the
    device node. pyusb then reports an empty language list and raises ValueError (not
    USBError), so both are caught. The device is still listed, without strings, because
    "found but not accessible" is exactly what the person at the bench needs to know.

    Returns:
        ``(serial, manufacturer, product, readable)``.
    """
    values: list[str | None] = []
    for index in (device.iSerialNumber, device.iManufacturer, device.iProduct):
        try:
            # Device text: cleaned before it names the device in listings, logs and errors.
            text = usb.util.get_string(device, index) if index else None
            values.append(clean_text(text, 128) if text is not None else None)
        except _USB_LOOKUP_ERRORS as exc:
            log.warning(
                "cannot read USB string descriptors (permissions? udev rule?)",
                device=f"{device.idVendor:04x}:{device.idProduct:04x}",
                bus=device.bus,
                address=device.address,
                error=str(exc),
            )
            return None, None, None, False
    serial, manufacturer, product = values
    return serial, manufacturer, product, True


def _describe(device: Any) -> UsbDeviceInfo | None:
    """Build the info of ``device`` if it has an ADB interface; None otherwise."""
    found = _adb_interface(device)
    if found is None:
        return None
    configuration, interface, ep_in, ep_out = found
    serial, manufacturer, product, _ = _read_strings(device)
    return UsbDeviceInfo(
        vid=device.idVendor,
        pid=device.idProduct,
        serial=serial,
        bus=device.bus,
        address=device.address,
        manufacturer=manufacturer,
        product=product,
        interface=interface.bInterfaceNumber,
        alt_setting=interface.bAlternateSetting,
        configuration=configuration.bConfigurationValue,
        interface_class=(
            interface.bInterfaceClass,
            interface.bInterfaceSubClass,
            interface.bInterfaceProtocol,
        ),
        endpoint_in=ep_in.bEndpointAddress,
        endpoint_out=ep_out.bEndpointAddress,
        max_packet_size=ep_out.wMaxPacketSize & _MAX_PACKET_SIZE_MASK,
        max_packet_size_in=ep_in.wMaxPacketSize & _MAX_PACKET_SIZE_MASK,
    )


@dataclass
class _Scan:
    """Result of one enumeration pass, kept together for error messages."""

    matches: list[tuple[Any, UsbDeviceInfo]]
    unavailable: str | None = None
    """Why enumeration could not see any device (no bus, no backend), for the error message."""
    unreadable: int = 0
    """ADB devices left out of a serial match because their serial could not be read."""
    locked: list[LockedUsbDevice] = field(default_factory=list)
    """Devices matching the selection (or of a terminal vendor) but without an ADB interface."""


def _locked_device(device: Any, serial: str | None) -> LockedUsbDevice | None:
    """``device`` (without ADB interface) as a locked unit, or None when its serial differs."""
    found_serial, _, _, _ = _read_strings(device)
    if serial is not None and found_serial != serial:
        return None
    return LockedUsbDevice(
        device.idVendor, device.idProduct, found_serial, device.bus, device.address
    )


def _scan(
    backend: Any,
    *,
    default_backend: bool,
    vid: int | None = None,
    pid: int | None = None,
    serial: str | None = None,
    bus: int | None = None,
    address: int | None = None,
    terminal_vendors: Collection[int] = (),
) -> _Scan:
    """Enumerate ADB interfaces on ``backend`` that match every given filter.

    A device without ADB interface is noted in ``locked`` when it matches the filters and at
    least one filter was given (the operator named it), or when none was and its vendor is in
    ``terminal_vendors`` (a POS maker, not any phone or mouse on the bus).

    Every device handle opened to read strings is released again, so a scan never keeps a
    terminal busy for other programs.
    """
    named = any(f is not None for f in (vid, pid, serial, bus, address))
    result = _Scan(matches=[])
    try:
        devices = list(usb.core.find(find_all=True, backend=backend))
    except (usb.core.USBError, usb.core.NoBackendError, OSError, NotImplementedError) as exc:
        result.unavailable = f"USB enumeration failed: {exc}"
        _log_unavailable_once(result.unavailable)
        return result
    if not devices and default_backend and _linux_without_usb():
        result.unavailable = (
            "no USB bus on this machine (/sys/bus/usb and /dev/bus/usb are missing; "
            "a container without USB passthrough?)"
        )
        _log_unavailable_once(result.unavailable)
    for device in devices:
        try:
            if (vid is not None and device.idVendor != vid) or (
                pid is not None and device.idProduct != pid
            ):
                continue
            if (bus is not None and device.bus != bus) or (
                address is not None and device.address != address
            ):
                continue
            info = _describe(device)
            if info is None and (named or device.idVendor in terminal_vendors):
                locked = _locked_device(device, serial)
                if locked is not None:
                    result.locked.append(locked)
        except _USB_LOOKUP_ERRORS as exc:
            log.debug("skipping unreadable USB device", error=str(exc))
            continue
        finally:
            with contextlib.suppress(*_USB_LOOKUP_ERRORS):
                usb.util.dispose_resources(device)
        if info is None:
            continue
        if serial is not None and info.serial != serial:
            if info.serial is None:
                result.unreadable += 1
            continue
        result.matches.append((device, info))
    return result


def find_adb_devices(
    vid: int | None = None,
    pid: int | None = None,
    serial: str | None = None,
    backend: Any = None,
) -> list[UsbDeviceInfo]:
    """List attached USB devices that expose an ADB interface.

    Args:
        vid: only devices with this vendor id.
        pid: only devices with this product id.
        serial: only the device with this serial number (devices whose serial cannot be read
            never match).
        backend: a pyusb backend; None uses :func:`get_backend` (real USB).

    Returns:
        One entry per device, in enumeration order; empty (never an exception) when there is
        no USB backend or no USB bus, which is logged once.
    """
    default_backend = backend is None
    if backend is None:
        backend = get_backend()
        if backend is None:
            _log_unavailable_once(
                "libusb-1.0 not found (neither a system library nor the libusb_package wheel)"
            )
            return []
    scan = _scan(backend, default_backend=default_backend, vid=vid, pid=pid, serial=serial)
    return [info for _, info in scan.matches]


def find_locked_devices(
    terminal_vendors: Collection[int], backend: Any = None
) -> list[LockedUsbDevice]:
    """List attached devices of ``terminal_vendors`` that offer no ADB interface.

    A terminal maker's device without ADB is a unit whose USB debugging is off (a
    production-locked one); discovery lists it so it is not silently missing. Empty, never an
    exception, without a USB backend or bus.
    """
    backend = backend if backend is not None else get_backend()
    if backend is None or not terminal_vendors:
        return []
    return _scan(backend, default_backend=False, terminal_vendors=terminal_vendors).locked


def _read_size(max_bytes: int, packet_size: int) -> int:
    """Bulk IN transfer size for a caller wanting ``max_bytes``: whole packets, at least one.

    A buffer ending inside a packet overflows when the device sends a full packet; a buffer
    larger than needed waits for data the device may never send (it sends no ZLP).
    """
    return max(-(-max_bytes // packet_size) * packet_size, packet_size)


def _to_ms(seconds: float) -> int:
    """Convert a timeout to libusb milliseconds, never 0 (which libusb reads as "forever")."""
    if not math.isfinite(seconds):
        return _MAX_LIBUSB_TIMEOUT_MS
    return min(max(1, math.ceil(seconds * 1000)), _MAX_LIBUSB_TIMEOUT_MS)


def _selection(vid: int | None, pid: int | None, serial: str | None) -> str:
    """Describe what a transport was asked to open, for messages before a device is found."""
    parts = ["usb"]
    if vid is not None or pid is not None:
        vid_text = f"{vid:04x}" if vid is not None else "*"
        pid_text = f"{pid:04x}" if pid is not None else "*"
        parts.append(f"{vid_text}:{pid_text}")
    if serial is not None:
        parts.append(f"serial {serial}")
    if len(parts) == 1:
        parts.append("any ADB device")
    return " ".join(parts)


class UsbBulkTransport(Transport):
    """The ADB bulk endpoint pair of one USB device, as a :class:`Transport`.

    Writes add the zero-length packet ADB devices need; reads size transfers in whole packets
    and buffer surplus bytes, so ``read_exact(24)`` followed by ``read_exact(n)`` returns a
    header and its payload even when the device sent both in one transfer.

    Reads and writes may run in different threads (one reader, one writer); ``close`` from a
    third thread releases the interface first, which ends a transfer in flight.

    Args:
        vid: vendor id to match, or None for any.
        pid: product id to match, or None for any.
        serial: serial number to match; needed when several ADB devices are attached.
        bus: bus number to match, for devices that share a serial (cheap terminals often
            report ``0123456789ABCDEF``).
        address: device address to match, with ``bus``.
        backend: pyusb backend; None uses :func:`get_backend` (real USB).
        timeout: seconds a write may wait for the device to accept the data.
        terminal_vendors: USB vendor ids of terminal makers: with no filter given, an attached
            device of one of them that offers no ADB interface raises
            :class:`UsbDebuggingOff` instead of "no ADB device attached".
    """

    def __init__(
        self,
        vid: int | None = None,
        pid: int | None = None,
        serial: str | None = None,
        *,
        bus: int | None = None,
        address: int | None = None,
        backend: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        terminal_vendors: Collection[int] = (),
    ) -> None:
        super().__init__(_selection(vid, pid, serial))
        self.terminal_vendors = frozenset(terminal_vendors)
        self.vid = vid
        self.pid = pid
        self.serial = serial
        self.bus = bus
        self.address = address
        self.timeout = timeout
        self._backend = backend
        self._device: Any = None
        self._info: UsbDeviceInfo | None = None
        self._reattach_kernel_driver = False
        self._gone: str | None = None
        self._buffer = bytearray()
        self._state_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()

    @classmethod
    def from_info(
        cls, info: UsbDeviceInfo, *, backend: Any = None, timeout: float = DEFAULT_TIMEOUT
    ) -> UsbBulkTransport:
        """Create a transport for a device returned by :func:`find_adb_devices`.

        Matches on bus and address as well as ids and serial, so the very device that was
        listed is opened even when another one reports the same serial.
        """
        return cls(
            info.vid,
            info.pid,
            info.serial,
            bus=info.bus,
            address=info.address,
            backend=backend,
            timeout=timeout,
        )

    @property
    def info(self) -> UsbDeviceInfo | None:
        """The opened device, or None while closed."""
        return self._info

    @property
    def is_open(self) -> bool:
        """Whether ``open()`` succeeded and ``close()`` has not been called since."""
        return self._device is not None

    def open(self) -> None:
        """Find the device, claim its ADB interface and get the endpoints ready.

        Raises:
            UsbDebuggingOff: no ADB device, but a matching one without ADB interface (a unit
                whose USB debugging is off).
            TransportOpenError: no backend, no (or more than one) matching device, access
                denied, or the interface is claimed by another program.
        """
        with self._state_lock:
            if self._device is not None:
                return
            backend = self._backend if self._backend is not None else get_backend()
            if backend is None:
                raise TransportOpenError(
                    f"{self.description}: no USB backend: libusb-1.0 is not available "
                    "(install libusb-1.0-0 or the libusb-package wheel)"
                )
            scan = _scan(
                backend,
                default_backend=self._backend is None,
                vid=self.vid,
                pid=self.pid,
                serial=self.serial,
                bus=self.bus,
                address=self.address,
                terminal_vendors=self.terminal_vendors,
            )
            device, info = self._choose(scan)
            try:
                self._claim(device, info)
            except (usb.core.USBError, NotImplementedError, ValueError) as exc:
                with contextlib.suppress(*_USB_LOOKUP_ERRORS):
                    usb.util.dispose_resources(device)
                raise TransportOpenError(_open_error_message(info, exc)) from exc
            self._device, self._info = device, info
            self._gone = None
            self._buffer.clear()
            self.description = info.description
        log.info(
            "usb transport opened",
            transport=self.description,
            interface=info.interface,
            max_packet_size=info.max_packet_size,
        )

    def _choose(self, scan: _Scan) -> tuple[Any, UsbDeviceInfo]:
        """Pick the one matching device, or explain in one line why there is none."""
        if len(scan.matches) == 1:
            return scan.matches[0]
        if not scan.matches and scan.locked:
            names = ", ".join(unit.description for unit in scan.locked)
            raise UsbDebuggingOff(
                f"{names}: attached, but offers no ADB interface: its USB debugging is off "
                "(a production-locked unit); its binding can still be checked through its "
                "backend (posdiag check with its TMS backend configured)",
                names,
            )
        if not scan.matches:
            if self.serial is not None:
                message = f"no ADB device with serial {self.serial} attached"
            elif self.vid is not None or self.pid is not None:
                message = f"no ADB device {self.description.removeprefix('usb ')} attached"
            else:
                message = "no ADB device attached"
            if scan.unavailable:
                message += f": {scan.unavailable}"
            if scan.unreadable:
                message += (
                    f" ({scan.unreadable} other ADB device(s) could not be read: "
                    "USB access denied (udev rule?))"
                )
            raise DeviceNotFound(message)
        serials = [info.serial for _, info in scan.matches]
        if self.serial is not None:
            where = ", ".join(f"bus {i.bus} address {i.address}" for _, i in scan.matches)
            raise TransportOpenError(
                f"{len(serials)} ADB devices report serial {self.serial} ({where}); "
                "choose one by bus and address"
            )
        listed = ", ".join(s if s is not None else "(unreadable)" for s in serials)
        raise TransportOpenError(
            f"{len(serials)} ADB devices attached ({listed}); choose one by serial"
        )

    def _claim(self, device: Any, info: UsbDeviceInfo) -> None:
        """Configure the device if needed, detach a kernel driver, and claim the interface.

        The active configuration is only set when the device has none: setting it again
        resets the device's other functions (MTP, tethering) that the user may be relying on.
        """
        try:
            active = device.get_active_configuration().bConfigurationValue
        except usb.core.USBError as exc:
            if exc.errno is not None:  # a real failure (access, gone), not "unconfigured"
                raise
            device.set_configuration(info.configuration)
            active = info.configuration
        if active != info.configuration:
            raise ValueError(
                f"the ADB interface is in configuration {info.configuration}, "
                f"but the device uses configuration {active}"
            )
        self._reattach_kernel_driver = False
        try:
            if device.is_kernel_driver_active(info.interface):
                device.detach_kernel_driver(info.interface)
                self._reattach_kernel_driver = True
                log.info("detached kernel driver", interface=info.interface)
        except NotImplementedError:
            pass  # platforms without kernel drivers on USB interfaces (Windows, macOS)
        usb.util.claim_interface(device, info.interface)
        if info.alt_setting:
            device.set_interface_altsetting(info.interface, info.alt_setting)

    def close(self) -> None:
        """Release the interface and the device handle; never raises.

        Releasing the interface first ends a transfer another thread may be blocked in; the
        handle is freed only once that transfer has returned (or ``CLOSE_WAIT`` has passed),
        because libusb must not free a handle with a transfer in flight.
        """
        with self._state_lock:
            device, info = self._device, self._info
            self._device = None
            if device is None or info is None:
                return
        _quietly("release interface", lambda: usb.util.release_interface(device, info.interface))
        got_read = self._read_lock.acquire(timeout=CLOSE_WAIT)
        got_write = self._write_lock.acquire(timeout=CLOSE_WAIT)
        try:
            if not (got_read and got_write):
                log.warning("usb transfer still running at close", transport=self.description)
            self._buffer.clear()
            if self._reattach_kernel_driver:
                _quietly(
                    "reattach kernel driver", lambda: device.attach_kernel_driver(info.interface)
                )
                self._reattach_kernel_driver = False
            _quietly("dispose device", lambda: usb.util.dispose_resources(device))
        finally:
            if got_write:
                self._write_lock.release()
            if got_read:
                self._read_lock.release()
        log.info("usb transport closed", transport=self.description)

    def _require_open(self) -> tuple[Any, UsbDeviceInfo]:
        device, info = self._device, self._info
        if device is None or info is None:
            raise TransportClosed(f"{self.description} is not open")
        return device, info

    def _check_present(self) -> None:
        if self._gone is not None:
            raise TransportClosed(self._gone)

    def _transfer_error(self, exc: usb.core.USBError, what: str) -> TransportError:
        """Map a failed transfer to the transport contract.

        No device, I/O errors and stalls all mean the cable was pulled or the device
        re-enumerated (a reboot into recovery, a USB mode switch): the link is over. Anything
        else also leaves the link unusable, so it maps to TransportClosed as well.
        """
        if self._device is None:
            return TransportClosed(f"{self.description} was closed during the {what}")
        if exc.errno in _DEVICE_GONE_ERRNOS:
            self._gone = f"{self.description}: USB device went away ({exc.strerror})"
            return TransportClosed(self._gone)
        return TransportClosed(f"{self.description}: USB {what} failed: {exc}")

    def write(self, data: bytes) -> None:
        """Send ``data`` in one bulk transfer, then a ZLP when it ends on a packet boundary.

        Empty ``data`` sends nothing: an empty transfer would reach the device as an empty
        message.

        Raises:
            TransportClosed: not open, or the device went away.
            TransportTimeout: the device did not accept everything within ``timeout``.
        """
        with self._write_lock:
            device, info = self._require_open()
            self._check_present()
            if not data:
                return
            self._bulk_out(device, info, bytes(data))
            if len(data) % info.max_packet_size == 0:
                self._bulk_out(device, info, b"")

    def _bulk_out(self, device: Any, info: UsbDeviceInfo, payload: bytes) -> None:
        try:
            sent = device.write(info.endpoint_out, payload, _to_ms(self.timeout))
        except usb.core.USBTimeoutError as exc:
            raise TransportTimeout(
                f"{self.description}: device did not accept {len(payload)} bytes "
                f"within {self.timeout:g} s"
            ) from exc
        except usb.core.USBError as exc:
            raise self._transfer_error(exc, "write") from exc
        if sent != len(payload):
            # pyusb returns the partial count when libusb times out mid-transfer.
            raise TransportTimeout(
                f"{self.description}: device accepted {sent} of {len(payload)} bytes "
                f"within {self.timeout:g} s"
            )

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Return 1..``max_bytes`` bytes, from the surplus buffer or one bulk IN transfer.

        See :meth:`Transport.read`. The transfer asks for ``max_bytes`` rounded up to whole
        packets (at least one packet); bytes beyond ``max_bytes`` are kept for the next read.
        """
        timeout = check_read_args(max_bytes, timeout)
        with self._read_lock:
            device, info = self._require_open()
            if self._buffer:
                return self._take(max_bytes)
            self._check_present()
            deadline = time.monotonic() + timeout
            size = _read_size(max_bytes, info.max_packet_size_in)
            while True:
                remaining = deadline - time.monotonic()
                try:
                    data = device.read(info.endpoint_in, size, _to_ms(max(0.0, remaining)))
                except usb.core.USBTimeoutError:
                    return b""
                except usb.core.USBError as exc:
                    raise self._transfer_error(exc, "read") from exc
                if len(data):
                    self._buffer += data.tobytes()
                    return self._take(max_bytes)
                # A zero-length packet from the device carries nothing; keep waiting.
                if time.monotonic() >= deadline:
                    return b""

    def _take(self, max_bytes: int) -> bytes:
        chunk = bytes(self._buffer[:max_bytes])
        del self._buffer[:max_bytes]
        return chunk

    def reset_input(self) -> None:
        """Drop buffered bytes and whatever the device has already queued on its IN endpoint.

        A device can hold data from an earlier session (an answer nobody read before the host
        side was restarted); reading it now would be taken for the answer to a new request.
        """
        with self._read_lock:
            device, info = self._require_open()
            self._buffer.clear()
            self._check_present()
            size = _read_size(1, info.max_packet_size_in) * 32
            for _ in range(RESET_INPUT_MAX_TRANSFERS):
                try:
                    data = device.read(info.endpoint_in, size, 1)
                except usb.core.USBTimeoutError:
                    return
                except usb.core.USBError as exc:
                    raise self._transfer_error(exc, "read") from exc
                if not len(data):
                    return
                log.debug("discarded stale usb input", transport=self.description, size=len(data))


def _open_error_message(info: UsbDeviceInfo, exc: Exception) -> str:
    """Turn a failure while claiming the device into the line shown at the bench."""
    where = info.description
    code = getattr(exc, "errno", None)
    if code == errno.EACCES:
        return f"{where}: USB access denied (udev rule?)"
    if code == errno.EBUSY:
        return (
            f"{where}: USB interface {info.interface} is busy, claimed by another program "
            "(an adb server? try `adb kill-server`)"
        )
    if code == errno.ENODEV:
        return f"{where}: USB device went away while opening"
    if isinstance(exc, ValueError):
        return f"{where}: {exc}"
    return f"{where}: cannot open USB device: {exc}"


def _quietly(what: str, action: Callable[[], object]) -> None:
    """Run a cleanup step; log instead of raising, since close() must never raise."""
    try:
        action()
    except Exception as exc:
        log.debug("usb cleanup step failed", step=what, error=str(exc))
