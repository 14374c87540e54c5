"""A pyusb backend that presents simulated USB devices, so USB code runs without hardware.

pyusb reaches hardware through a backend object (``usb.backend.IBackend``); everything above it
(descriptor parsing, interface claiming, ``usb.util.get_string``, ``Device.read``/``write``) is
plain Python. Plugging this backend in therefore runs the real ``usbbulk`` transport code
unchanged in CI, which has no USB bus, while a simulator engine plays the terminal.

The simulation models the USB behaviour ADB depends on, so driver bugs show up here rather than
on the bench:

* **Host → device:** the device reads fixed-size transfers (16 KiB, like adbd) and only sees a
  host transfer end at a short packet or a zero-length packet. A write that fills whole packets
  without a following ZLP is held back (the real link stalls) and merged with the next one.
  ZLPs, missing ZLPs and stray ones (an empty write for an empty message) are counted.
* **Device → host:** the device sends no ZLPs, so a host read larger than a whole-packet message
  waits for more data until its timeout and then returns what it got (pyusb's libusb-1.0
  behaviour); a host buffer that ends inside a packet gets an overflow error.
* Errors carry the same codes and errno values as pyusb's libusb-1.0 backend (timeout, no
  device, access denied, busy), so error mapping is exercised too.

Each device runs its engine on an in-process memory link (:class:`MemoryAttachment`): bulk OUT
data is written to the host end, bulk IN transfers read what the engine wrote.
"""

from __future__ import annotations

import array
import itertools
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import structlog
import usb.backend
import usb.core
from usb.backend.libusb1 import (
    LIBUSB_ERROR_ACCESS,
    LIBUSB_ERROR_BUSY,
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_NOT_FOUND,
    LIBUSB_ERROR_OVERFLOW,
    LIBUSB_ERROR_PIPE,
    LIBUSB_ERROR_TIMEOUT,
)

from posdiag.drivers.errors import TransportClosed
from posdiag.drivers.transport.memory import MemoryTransport
from posdiag.drivers.transport.usbbulk import ADB_INTERFACE
from posdiag.simulators.attach import DeviceEngine, MemoryAttachment
from posdiag.simulators.usb_descriptors import (
    _DESC_TYPE_CONFIG,
    _DESC_TYPE_DEVICE,
    _DESC_TYPE_ENDPOINT,
    _DESC_TYPE_INTERFACE,
    _DESC_TYPE_STRING,
    _ENDPOINT_TYPE_BULK,
    _LANGID_EN_US,
    _REQUEST_GET_DESCRIPTOR,
    _SPEED_FULL,
    _SPEED_HIGH,
    _SPEED_SUPER,
    _STRING_MANUFACTURER,
    _STRING_PRODUCT,
    _STRING_SERIAL,
    TransferRecord,
    _ConfigurationDescriptor,
    _DeviceDescriptor,
    _EndpointDescriptor,
    _InterfaceDescriptor,
    usb_error,
)

log = structlog.get_logger(__name__)

ADB_ENDPOINT_OUT = 0x01
ADB_ENDPOINT_IN = 0x81
DEVICE_READ_SIZE = 16384
"""Size of the device's fixed bulk OUT reads (adbd reads 16 KiB transfers)."""
TRANSFER_LOG_SIZE = 10_000
"""Transfers remembered per device for tests; older ones are dropped."""
POLL_INTERVAL = 0.05
"""Seconds a waiting bulk read sleeps between checks for unplug and interface release."""
MTP_INTERFACE = (0xFF, 0xFF, 0x00)
"""MTP as Android declares it (vendor class and subclass, protocol 0; AOSP
``MtpDescriptors.cpp``): what a unit whose USB debugging is off still offers."""


class _Handle:
    """What ``open_device`` returns: one opened handle and the interfaces it claimed."""

    def __init__(self, device: SimulatedUsbDevice) -> None:
        self.device = device
        self.closed = False
        self.claimed: set[int] = set()


class SimulatedUsbDevice:
    """A USB device with an ADB interface whose other end is a simulator engine.

    Args:
        vid: vendor id.
        pid: product id.
        serial: serial number string, or None for a device without one.
        manufacturer: manufacturer string, or None.
        product: product string, or None.
        engine: the simulator serving the ADB interface; started at the first bulk transfer
            (enumeration alone, which opens devices to read strings, does not start it).
        max_packet_size: wMaxPacketSize of both bulk endpoints (64 full speed, 512 high
            speed, 1024 SuperSpeed); also sets the reported speed.
        bus: bus number; None lets the backend choose.
        address: device address; None lets the backend assign the next free one.
        interface_class: (class, subclass, protocol) of the ADB interface; ``(0xDC, 2, 1)``
            simulates a DbC link, anything else a look-alike that must not match.
        extra_interfaces: class triples of further interfaces placed *before* the ADB one
            (e.g. MTP ``(6, 1, 1)``), each with its own pair of bulk endpoints that do not
            carry data. The ADB interface number is their count.
        kernel_driver_active: whether a kernel driver is bound to the ADB interface (claiming
            fails with "busy" until it is detached).
        access_denied: opening the device fails with "access denied", as without a udev rule;
            descriptors stay readable, string descriptors do not.

    While the engine's state says ``usb_debugging = False`` (a production-locked unit) the ADB
    interface is gone, as Android drops the ADB function from its USB configuration: only the
    extra interfaces remain, or :data:`MTP_INTERFACE` when there are none. After the engine
    reboots (``engine.reboots`` grows), the device drops off the bus and re-enumerates by
    itself, at a new address, once the engine is back (``engine.offline_until``).
        device_read_size: size of the device's bulk OUT reads; None delivers every write
            immediately and disables the stall a missing ZLP causes.
    """

    def __init__(
        self,
        vid: int,
        pid: int,
        serial: str | None,
        manufacturer: str | None,
        product: str | None,
        engine: DeviceEngine,
        max_packet_size: int = 512,
        *,
        bus: int | None = None,
        address: int | None = None,
        interface_class: tuple[int, int, int] = ADB_INTERFACE,
        extra_interfaces: Sequence[tuple[int, int, int]] = (),
        kernel_driver_active: bool = False,
        access_denied: bool = False,
        device_read_size: int | None = DEVICE_READ_SIZE,
    ) -> None:
        if max_packet_size not in (8, 16, 32, 64, 512, 1024):
            raise ValueError(f"max_packet_size {max_packet_size} is not a valid bulk size")
        self.vid = vid
        self.pid = pid
        self.serial = serial
        self.manufacturer = manufacturer
        self.product = product
        self.engine = engine
        self.max_packet_size = max_packet_size
        self.bus = bus
        self.address = address
        self.interface_class = interface_class
        self.extra_interfaces = tuple(extra_interfaces)
        self.access_denied = access_denied
        self.device_read_size = device_read_size
        self.adb_interface = len(self.extra_interfaces)
        self.kernel_driver: dict[int, bool] = {
            number: False for number in range(self.adb_interface + 1)
        }
        self.kernel_driver[self.adb_interface] = kernel_driver_active

        self._lock = threading.RLock()  # reentrant: pyusb finalizers may close handles anytime
        self._in_lock = threading.Lock()
        self._attachment: MemoryAttachment | None = None
        self._unplugged = False
        self._configuration = 1
        self._claims: dict[int, _Handle] = {}
        self._out_pending = bytearray()
        self._awaiting_zlp = False
        self._in_chunks: deque[bytes] = deque()
        self._backend: SimulatedUsbBackend | None = None  # set by add(): who re-enumerates it
        self._reboots_seen = self._engine_reboots() or 0
        self._replug: threading.Timer | None = None

        self.transfers: deque[TransferRecord] = deque(maxlen=TRANSFER_LOG_SIZE)
        """Bulk transfers on the ADB endpoints, oldest first."""
        self.zlp_count = 0
        """Zero-length packets the host sent."""
        self.missing_zlp_count = 0
        """Whole-packet writes that were followed by data instead of a ZLP."""
        self.stray_zlp_count = 0
        """Zero-length packets that did not follow a whole-packet write (empty writes)."""
        self.detach_count = 0
        """Times a kernel driver was detached."""

    def __repr__(self) -> str:
        state = "unplugged" if self._unplugged else "attached"
        return (
            f"<SimulatedUsbDevice {self.vid:04x}:{self.pid:04x} serial={self.serial!r} "
            f"bus={self.bus} address={self.address} {state}>"
        )

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """Whether the device is plugged in (listed by enumeration, transfers work)."""
        self._notice_reboot()
        return not self._unplugged

    @property
    def adb_enabled(self) -> bool:
        """Whether the ADB interface is offered: while the engine's USB debugging is on."""
        state = getattr(self.engine, "state", None)
        return bool(getattr(state, "usb_debugging", True))

    @property
    def rebooting(self) -> bool:
        """Whether the device is off the bus for a reboot and will re-enumerate by itself."""
        return self._replug is not None

    @property
    def engine_running(self) -> bool:
        """Whether the engine thread is serving (it starts at the first open)."""
        attachment = self._attachment
        return attachment is not None and attachment.running

    def unplug(self) -> None:
        """Pull the cable: pending and later transfers fail with "no device" (ENODEV).

        Enumeration stops listing the device and its engine is stopped.
        """
        self.cancel_replug()
        with self._lock:
            if self._unplugged:
                return
            self._unplugged = True
            self._claims.clear()
        log.info("simulated usb device unplugged", device=repr(self))
        self.stop()

    def plug(self) -> None:
        """Plug the device (back) in; the engine gets a fresh link at the next open.

        Called by :meth:`SimulatedUsbBackend.add`; a re-plugged device gets a new address there.
        """
        self.cancel_replug()
        self.stop()
        with self._lock:
            self._reboots_seen = self._engine_reboots() or 0
            self._unplugged = False
            self._configuration = 1
            self._claims.clear()
            self._out_pending.clear()
            self._awaiting_zlp = False
            self._in_chunks.clear()

    def stop(self) -> None:
        """Stop the engine thread and drop its link; safe to call more than once."""
        with self._lock:
            attachment, self._attachment = self._attachment, None
        if attachment is not None:
            attachment.stop()

    def _host_end(self) -> MemoryTransport:
        """Return the host end of the engine's link, starting the engine on first use."""
        with self._lock:
            self._check_attached()
            if self._attachment is None:
                attachment = MemoryAttachment(
                    self.engine,
                    description=f"usb sim {self.vid:04x}:{self.pid:04x} {self.serial}",
                )
                attachment.start()
                self._attachment = attachment
            return self._attachment.host

    def _check_attached(self) -> None:
        if self._unplugged:
            raise usb_error(LIBUSB_ERROR_NO_DEVICE)

    def _went_away(self, reason: str) -> usb.core.USBError:
        """The engine closed its end: the device disconnects, as when adbd dies.

        When the engine closed it for a reboot, the device comes back by itself once the
        engine is up again (see :meth:`_schedule_replug`); otherwise it stays unplugged.
        """
        log.info("simulated usb device lost its engine", device=repr(self), reason=reason)
        with self._lock:
            self._unplugged = True
            self._claims.clear()
        self._schedule_replug()
        return usb_error(LIBUSB_ERROR_NO_DEVICE)

    # -- reboots ------------------------------------------------------------------------

    def _engine_reboots(self) -> int | None:
        """The engine's reboot count, None for an engine that cannot reboot."""
        reboots = getattr(self.engine, "reboots", None)
        return reboots if isinstance(reboots, int) else None

    def _notice_reboot(self) -> None:
        """A reboot the engine started takes the device off the bus at once.

        A real unit disconnects when it reboots, whether or not the host is reading; without
        this, enumeration would list a rebooting device until a transfer failed on it.
        """
        reboots = self._engine_reboots()
        if not self._unplugged and reboots is not None and reboots > self._reboots_seen:
            self._went_away("reboot")

    def _schedule_replug(self) -> None:
        """Re-enumerate after a reboot, at the engine's ``offline_until``, on a timer thread.

        Only for a reboot started since the device was last plugged (a power loss or a
        vanish fault leaves it unplugged), and only on a backend, which hands out the new
        address. The timer is cancelled by :meth:`cancel_replug` (unplug, backend close).
        """
        reboots = self._engine_reboots()
        with self._lock:
            backend = self._backend
            if reboots is None or reboots <= self._reboots_seen or backend is None:
                return
            self._reboots_seen = reboots
            if self._replug is not None:
                return
            back_at = float(getattr(self.engine, "offline_until", 0.0))
            delay = max(0.0, back_at - time.monotonic())
            timer = threading.Timer(delay, self._replug_now, args=(backend,))
            timer.name = f"posdiag-sim-usb-replug {self.vid:04x}:{self.pid:04x}"
            timer.daemon = True
            self._replug = timer
        log.info("simulated usb device rebooting", device=repr(self), back_in=round(delay, 3))
        timer.start()

    def _replug_now(self, backend: SimulatedUsbBackend) -> None:
        with self._lock:
            if self._replug is None:  # cancelled after the timer fired
                return
            self._replug = None
        backend.add(self)

    def cancel_replug(self) -> None:
        """Forget a pending re-enumeration after a reboot; safe to call at any time."""
        with self._lock:
            timer, self._replug = self._replug, None
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join(1.0)

    # -- descriptors --------------------------------------------------------------------

    @property
    def _speed(self) -> int:
        if self.max_packet_size >= 1024:
            return _SPEED_SUPER
        return _SPEED_HIGH if self.max_packet_size == 512 else _SPEED_FULL

    def _strings(self) -> dict[int, str]:
        table = {
            _STRING_MANUFACTURER: self.manufacturer,
            _STRING_PRODUCT: self.product,
            _STRING_SERIAL: self.serial,
        }
        return {index: text for index, text in table.items() if text is not None}

    def device_descriptor(self) -> _DeviceDescriptor:
        """The device descriptor, with the bus position fields pyusb's Device reads."""
        strings = self._strings()
        return _DeviceDescriptor(
            bLength=18,
            bDescriptorType=_DESC_TYPE_DEVICE,
            bcdUSB=0x0300 if self._speed >= _SPEED_SUPER else 0x0200,
            bDeviceClass=0,
            bDeviceSubClass=0,
            bDeviceProtocol=0,
            bMaxPacketSize0=9 if self._speed >= _SPEED_SUPER else 64,  # 2**9 on SuperSpeed
            idVendor=self.vid,
            idProduct=self.pid,
            bcdDevice=0x0100,
            iManufacturer=_STRING_MANUFACTURER if _STRING_MANUFACTURER in strings else 0,
            iProduct=_STRING_PRODUCT if _STRING_PRODUCT in strings else 0,
            iSerialNumber=_STRING_SERIAL if _STRING_SERIAL in strings else 0,
            bNumConfigurations=1,
            bus=self.bus or 0,
            address=self.address or 0,
            port_number=self.address or 0,
            port_numbers=(self.address or 0,),
            speed=self._speed,
        )

    def _interface_triples(self) -> list[tuple[int, int, int]]:
        if not self.adb_enabled:  # debugging off: Android drops the ADB function
            return list(self.extra_interfaces) or [MTP_INTERFACE]
        return [*self.extra_interfaces, self.interface_class]

    def configuration_descriptor(self, config: int) -> _ConfigurationDescriptor:
        """The only configuration (index 0); other indexes raise IndexError like libusb1."""
        if config != 0:
            raise IndexError(f"Invalid configuration index {config}")
        interfaces = len(self._interface_triples())
        return _ConfigurationDescriptor(
            bLength=9,
            bDescriptorType=_DESC_TYPE_CONFIG,
            wTotalLength=9 + interfaces * (9 + 2 * 7),
            bNumInterfaces=interfaces,
            bConfigurationValue=1,
            iConfiguration=0,
            bmAttributes=0x80,  # bus powered, as phones report
            bMaxPower=250,
        )

    def interface_descriptor(self, intf: int, alt: int, config: int) -> _InterfaceDescriptor:
        """One interface; pyusb walks alternate settings until IndexError, so raise it."""
        self.configuration_descriptor(config)
        triples = self._interface_triples()
        if not 0 <= intf < len(triples):
            raise IndexError(f"Invalid interface index {intf}")
        if alt != 0:
            raise IndexError(f"Invalid alternate setting index {alt}")
        cls, subclass, protocol = triples[intf]
        return _InterfaceDescriptor(
            bLength=9,
            bDescriptorType=_DESC_TYPE_INTERFACE,
            bInterfaceNumber=intf,
            bAlternateSetting=0,
            bNumEndpoints=2,
            bInterfaceClass=cls,
            bInterfaceSubClass=subclass,
            bInterfaceProtocol=protocol,
            iInterface=0,
        )

    def _endpoint_addresses(self, intf: int) -> tuple[int, int]:
        """(OUT, IN) addresses: 0x01/0x81 for ADB, 0x02/0x82 and up for extra interfaces."""
        if intf == self.adb_interface and self.adb_enabled:
            return ADB_ENDPOINT_OUT, ADB_ENDPOINT_IN
        return 0x02 + intf, 0x82 + intf

    def endpoint_descriptor(self, ep: int, intf: int, alt: int, config: int) -> _EndpointDescriptor:
        """Endpoint ``ep`` (0 = OUT, 1 = IN) of an interface."""
        self.interface_descriptor(intf, alt, config)
        if ep not in (0, 1):
            raise IndexError(f"Invalid endpoint index {ep}")
        return _EndpointDescriptor(
            bLength=7,
            bDescriptorType=_DESC_TYPE_ENDPOINT,
            bEndpointAddress=self._endpoint_addresses(intf)[ep],
            bmAttributes=_ENDPOINT_TYPE_BULK,
            wMaxPacketSize=self.max_packet_size,
            bInterval=0,
            bRefresh=0,
            bSynchAddress=0,
        )

    def _descriptor_bytes(self, kind: int, index: int) -> bytes:
        """Raw descriptor bytes for GET_DESCRIPTOR; a stall (PIPE) for what we do not have."""
        if kind == _DESC_TYPE_STRING:
            if index == 0:
                return struct.pack("<BBH", 4, _DESC_TYPE_STRING, _LANGID_EN_US)
            text = self._strings().get(index)
            if text is None:
                raise usb_error(LIBUSB_ERROR_PIPE)
            encoded = text.encode("utf-16-le")[:252]
            return bytes((2 + len(encoded), _DESC_TYPE_STRING)) + encoded
        if kind == _DESC_TYPE_DEVICE and index == 0:
            d = self.device_descriptor()
            return struct.pack(
                "<BBHBBBBHHHBBBB",
                d.bLength,
                d.bDescriptorType,
                d.bcdUSB,
                d.bDeviceClass,
                d.bDeviceSubClass,
                d.bDeviceProtocol,
                d.bMaxPacketSize0,
                d.idVendor,
                d.idProduct,
                d.bcdDevice,
                d.iManufacturer,
                d.iProduct,
                d.iSerialNumber,
                d.bNumConfigurations,
            )
        raise usb_error(LIBUSB_ERROR_PIPE)

    # -- handles, configuration, interfaces ---------------------------------------------

    def open(self) -> _Handle:
        """Open a handle; fails like a device node without permission when access is denied."""
        with self._lock:
            self._check_attached()
            if self.access_denied:
                raise usb_error(LIBUSB_ERROR_ACCESS)
        return _Handle(self)

    def close_handle(self, handle: _Handle) -> None:
        """Close a handle and drop its claims; tolerant, as pyusb calls it from finalizers."""
        with self._lock:
            handle.closed = True
            for number in handle.claimed:
                if self._claims.get(number) is handle:
                    del self._claims[number]
            handle.claimed.clear()

    def _check_handle(self, handle: _Handle) -> None:
        self._check_attached()
        if handle.closed:
            raise usb_error(LIBUSB_ERROR_IO)

    def _check_interface(self, intf: int) -> None:
        if not 0 <= intf < len(self._interface_triples()):
            raise usb_error(LIBUSB_ERROR_NOT_FOUND)

    def get_configuration(self, handle: _Handle) -> int:
        """The active bConfigurationValue (1, or 0 when set unconfigured)."""
        with self._lock:
            self._check_handle(handle)
            return self._configuration

    def set_configuration(self, handle: _Handle, value: int) -> None:
        """Select configuration 1 or 0; busy while an interface is claimed, as on Linux."""
        with self._lock:
            self._check_handle(handle)
            if value not in (0, 1):
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)
            if self._claims:
                raise usb_error(LIBUSB_ERROR_BUSY)
            self._configuration = value

    def claim(self, handle: _Handle, intf: int) -> None:
        """Claim an interface; busy when a kernel driver or another handle holds it."""
        with self._lock:
            self._check_handle(handle)
            self._check_interface(intf)
            if self._configuration == 0:
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)
            holder = self._claims.get(intf)
            if self.kernel_driver[intf] or (holder is not None and holder is not handle):
                raise usb_error(LIBUSB_ERROR_BUSY)
            self._claims[intf] = handle
            handle.claimed.add(intf)

    def release(self, handle: _Handle, intf: int) -> None:
        """Release a claimed interface; a transfer waiting on it ends with an I/O error."""
        with self._lock:
            self._check_handle(handle)
            if self._claims.get(intf) is not handle:
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)
            del self._claims[intf]
            handle.claimed.discard(intf)

    def set_altsetting(self, handle: _Handle, intf: int, alt: int) -> None:
        """Only alternate setting 0 exists."""
        with self._lock:
            self._check_handle(handle)
            self._check_interface(intf)
            if alt != 0:
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)

    def kernel_driver_active(self, handle: _Handle, intf: int) -> bool:
        """Whether a kernel driver is bound to interface ``intf``."""
        with self._lock:
            self._check_handle(handle)
            self._check_interface(intf)
            return self.kernel_driver[intf]

    def detach_kernel_driver(self, handle: _Handle, intf: int) -> None:
        """Unbind the kernel driver; NOT_FOUND when none is bound, as in libusb."""
        with self._lock:
            self._check_handle(handle)
            self._check_interface(intf)
            if not self.kernel_driver[intf]:
                raise usb_error(LIBUSB_ERROR_NOT_FOUND)
            self.kernel_driver[intf] = False
            self.detach_count += 1

    def attach_kernel_driver(self, handle: _Handle, intf: int) -> None:
        """Rebind the kernel driver; busy while the interface is claimed."""
        with self._lock:
            self._check_handle(handle)
            self._check_interface(intf)
            if intf in self._claims:
                raise usb_error(LIBUSB_ERROR_BUSY)
            self.kernel_driver[intf] = True

    def reset(self, handle: _Handle) -> None:
        """A port reset: half-sent transfers in both directions are lost."""
        with self._lock:
            self._check_handle(handle)
            self._out_pending.clear()
            self._awaiting_zlp = False
        with self._in_lock:
            self._in_chunks.clear()

    def control(
        self, handle: _Handle, request_type: int, request: int, value: int, buff: Any
    ) -> int:
        """Answer standard GET_DESCRIPTOR requests; stall everything else."""
        self._check_handle(handle)
        if request_type != 0x80 or request != _REQUEST_GET_DESCRIPTOR:
            raise usb_error(LIBUSB_ERROR_PIPE)
        descriptor = self._descriptor_bytes(value >> 8, value & 0xFF)
        size = min(len(descriptor), len(buff))
        buff[:size] = array.array("B", descriptor[:size])
        return size

    # -- bulk transfers -----------------------------------------------------------------

    def _check_endpoint(self, handle: _Handle, ep: int, intf: int, expected: int) -> None:
        self._check_handle(handle)
        if intf != self.adb_interface or ep != expected or not self.adb_enabled:
            raise usb_error(LIBUSB_ERROR_PIPE)  # endpoints of other interfaces carry nothing
        if self._claims.get(intf) is not handle:
            raise usb_error(LIBUSB_ERROR_IO)

    def bulk_out(self, handle: _Handle, ep: int, intf: int, data: Any) -> int:
        """Take one host transfer; deliver it to the engine when the device read would end."""
        payload = bytes(data)
        with self._lock:
            self._check_endpoint(handle, ep, intf, ADB_ENDPOINT_OUT)
            self.transfers.append(TransferRecord("out", ep, len(payload)))
            deliver = self._accept_out(payload)
        if deliver:
            host = self._host_end()
            try:
                for chunk in deliver:
                    host.write(chunk)
            except TransportClosed as exc:
                raise self._went_away(str(exc)) from exc
        return len(payload)

    def _accept_out(self, payload: bytes) -> list[bytes]:
        """Update the ZLP bookkeeping and return the chunks the device's reads now complete.

        The device's read ends at a short packet, a ZLP, or when its buffer is full; data of a
        whole-packet write without ZLP waits in ``_out_pending`` for whatever comes next.
        """
        whole_packets = len(payload) % self.max_packet_size == 0
        if not payload:
            self.zlp_count += 1
            if not self._awaiting_zlp:
                self.stray_zlp_count += 1
                log.debug("stray zero-length packet", device=repr(self))
        elif self._awaiting_zlp:
            self.missing_zlp_count += 1
            log.debug("missing zero-length packet", device=repr(self))
        self._awaiting_zlp = bool(payload) and whole_packets
        self._out_pending += payload
        read_size = self.device_read_size
        chunks: list[bytes] = []
        if read_size is None:
            if self._out_pending:
                chunks.append(bytes(self._out_pending))
            self._out_pending.clear()
            return chunks
        while len(self._out_pending) >= read_size:
            chunks.append(bytes(self._out_pending[:read_size]))
            del self._out_pending[:read_size]
        if not whole_packets or not payload:
            if self._out_pending:
                chunks.append(bytes(self._out_pending))
            self._out_pending.clear()
        return chunks

    def bulk_in(self, handle: _Handle, ep: int, intf: int, buff: Any, timeout_ms: int) -> int:
        """Fill ``buff`` from what the engine wrote, as one host transfer would.

        The transfer ends at a short packet or when ``buff`` is full; a message made of whole
        packets does not end it (the device sends no ZLP), so the read goes on waiting and
        returns the partial data at the timeout, as pyusb does with libusb-1.0. ``timeout_ms``
        0 waits forever, as in libusb.
        """
        with self._lock:
            self._check_endpoint(handle, ep, intf, ADB_ENDPOINT_IN)
        host = self._host_end()
        capacity = len(buff)
        deadline = None if timeout_ms == 0 else time.monotonic() + timeout_ms / 1000
        got = bytearray()
        with self._in_lock:
            while True:
                if not self._in_chunks:
                    remaining = POLL_INTERVAL if deadline is None else deadline - time.monotonic()
                    if remaining <= 0:
                        if got:
                            break
                        raise usb_error(LIBUSB_ERROR_TIMEOUT)
                    try:
                        chunk = host.read(1 << 30, min(remaining, POLL_INTERVAL))
                    except TransportClosed as exc:
                        if self._unplugged:
                            raise usb_error(LIBUSB_ERROR_NO_DEVICE) from exc
                        raise self._went_away(str(exc)) from exc
                    with self._lock:
                        self._check_endpoint(handle, ep, intf, ADB_ENDPOINT_IN)
                    if chunk:
                        self._in_chunks.append(chunk)
                    continue
                chunk = self._in_chunks[0]
                room = capacity - len(got)
                if len(chunk) > room:
                    if room % self.max_packet_size:
                        self._in_chunks.popleft()
                        raise usb_error(LIBUSB_ERROR_OVERFLOW)
                    got += chunk[:room]
                    self._in_chunks[0] = chunk[room:]
                    break
                got += self._in_chunks.popleft()
                if len(chunk) % self.max_packet_size or len(got) == capacity:
                    break
        buff[: len(got)] = array.array("B", got)
        with self._lock:
            self.transfers.append(TransferRecord("in", ep, len(got)))
        return len(got)


class SimulatedUsbBackend(usb.backend.IBackend):
    """pyusb backend listing :class:`SimulatedUsbDevice` objects instead of real hardware.

    Pass it as ``backend=`` to ``usb.core.find`` (or to posdiag's USB functions). Devices can
    be added and removed while in use to simulate hotplug. Use it as a context manager, or
    call :meth:`close`, so engine threads stop.

    Args:
        devices: devices plugged in from the start.
        bus: bus number given to devices that do not choose one.
    """

    def __init__(self, devices: Iterable[SimulatedUsbDevice] = (), *, bus: int = 1) -> None:
        self.bus = bus
        self._lock = threading.Lock()
        self._devices: list[SimulatedUsbDevice] = []
        self._addresses = itertools.count(2)  # address 1 is the root hub
        for device in devices:
            self.add(device)

    def add(self, device: SimulatedUsbDevice) -> SimulatedUsbDevice:
        """Plug a device in; a new or re-plugged device gets the next free address."""
        with self._lock:
            if device in self._devices and device.attached:
                return device
            device.plug()
            device._backend = self
            if device.bus is None:
                device.bus = self.bus
            if device.address is None or device in self._devices:
                device.address = next(self._addresses)
            if device not in self._devices:
                self._devices.append(device)
        log.info("simulated usb device plugged", device=repr(device))
        return device

    def remove(self, device: SimulatedUsbDevice) -> None:
        """Unplug a device and forget it."""
        device.unplug()
        device._backend = None
        with self._lock:
            if device in self._devices:
                self._devices.remove(device)

    @property
    def devices(self) -> tuple[SimulatedUsbDevice, ...]:
        """Devices currently plugged in."""
        with self._lock:
            return tuple(device for device in self._devices if device.attached)

    @property
    def zlp_count(self) -> int:
        """Zero-length packets sent to any device of this backend."""
        with self._lock:
            return sum(device.zlp_count for device in self._devices)

    @property
    def transfers(self) -> list[TransferRecord]:
        """Bulk transfers of every device, device by device."""
        with self._lock:
            return [record for device in self._devices for record in device.transfers]

    def close(self) -> None:
        """Stop every device's engine thread and reboot timer.

        Devices stay listed and restart on next open; one that was rebooting stays off the bus.
        """
        with self._lock:
            devices = list(self._devices)
        for device in devices:
            device.cancel_replug()
            device.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _finalize_object(self) -> None:
        self.close()

    # -- usb.backend.IBackend -----------------------------------------------------------

    def enumerate_devices(self) -> list[SimulatedUsbDevice]:
        """The plugged-in devices (unplugged ones are no longer listed)."""
        return list(self.devices)

    def get_parent(self, dev: SimulatedUsbDevice) -> None:
        """Simulated devices hang off no hub pyusb could inspect."""
        return None

    def get_device_descriptor(self, dev: SimulatedUsbDevice) -> _DeviceDescriptor:
        """See :meth:`SimulatedUsbDevice.device_descriptor`."""
        return dev.device_descriptor()

    def get_configuration_descriptor(
        self, dev: SimulatedUsbDevice, config: int
    ) -> _ConfigurationDescriptor:
        """See :meth:`SimulatedUsbDevice.configuration_descriptor`."""
        return dev.configuration_descriptor(config)

    def get_interface_descriptor(
        self, dev: SimulatedUsbDevice, intf: int, alt: int, config: int
    ) -> _InterfaceDescriptor:
        """See :meth:`SimulatedUsbDevice.interface_descriptor`."""
        return dev.interface_descriptor(intf, alt, config)

    def get_endpoint_descriptor(
        self, dev: SimulatedUsbDevice, ep: int, intf: int, alt: int, config: int
    ) -> _EndpointDescriptor:
        """See :meth:`SimulatedUsbDevice.endpoint_descriptor`."""
        return dev.endpoint_descriptor(ep, intf, alt, config)

    def open_device(self, dev: SimulatedUsbDevice) -> _Handle:
        """See :meth:`SimulatedUsbDevice.open`."""
        return dev.open()

    def close_device(self, dev_handle: _Handle) -> None:
        """See :meth:`SimulatedUsbDevice.close_handle`."""
        dev_handle.device.close_handle(dev_handle)

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        """See :meth:`SimulatedUsbDevice.set_configuration`."""
        dev_handle.device.set_configuration(dev_handle, config_value)

    def get_configuration(self, dev_handle: _Handle) -> int:
        """See :meth:`SimulatedUsbDevice.get_configuration`."""
        return dev_handle.device.get_configuration(dev_handle)

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, altsetting: int) -> None:
        """See :meth:`SimulatedUsbDevice.set_altsetting`."""
        dev_handle.device.set_altsetting(dev_handle, intf, altsetting)

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        """See :meth:`SimulatedUsbDevice.claim`."""
        dev_handle.device.claim(dev_handle, intf)

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        """See :meth:`SimulatedUsbDevice.release`."""
        dev_handle.device.release(dev_handle, intf)

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: Any, timeout: int) -> int:
        """See :meth:`SimulatedUsbDevice.bulk_out` (the engine's link never blocks)."""
        return dev_handle.device.bulk_out(dev_handle, ep, intf, data)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        """See :meth:`SimulatedUsbDevice.bulk_in`."""
        return dev_handle.device.bulk_in(dev_handle, ep, intf, buff, timeout)

    def ctrl_transfer(
        self,
        dev_handle: _Handle,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> int:
        """See :meth:`SimulatedUsbDevice.control`."""
        return dev_handle.device.control(dev_handle, bmRequestType, bRequest, wValue, data)

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        """See :meth:`SimulatedUsbDevice.kernel_driver_active`."""
        return dev_handle.device.kernel_driver_active(dev_handle, intf)

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """See :meth:`SimulatedUsbDevice.detach_kernel_driver`."""
        dev_handle.device.detach_kernel_driver(dev_handle, intf)

    def attach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        """See :meth:`SimulatedUsbDevice.attach_kernel_driver`."""
        dev_handle.device.attach_kernel_driver(dev_handle, intf)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        """Simulated endpoints never halt; accepted for code that clears halts on open."""
        dev_handle.device._check_handle(dev_handle)

    def reset_device(self, dev_handle: _Handle) -> None:
        """See :meth:`SimulatedUsbDevice.reset`."""
        dev_handle.device.reset(dev_handle)
