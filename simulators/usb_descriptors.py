"""Descriptor records and libusb errors of the simulated pyusb backend.

Plain data for :mod:`.usb_backend` (which re-exports :func:`usb_error` and
:class:`TransferRecord`): the shapes pyusb reads from a backend and the exceptions its
libusb-1.0 backend raises, kept apart so the device model there stays readable.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Literal

import usb.core
from usb.backend.libusb1 import (
    LIBUSB_ERROR_ACCESS,
    LIBUSB_ERROR_BUSY,
    LIBUSB_ERROR_INVALID_PARAM,
    LIBUSB_ERROR_IO,
    LIBUSB_ERROR_NO_DEVICE,
    LIBUSB_ERROR_NOT_FOUND,
    LIBUSB_ERROR_OVERFLOW,
    LIBUSB_ERROR_PIPE,
    LIBUSB_ERROR_TIMEOUT,
)

_ENDPOINT_TYPE_BULK = 0x02
_DESC_TYPE_DEVICE = 0x01
_DESC_TYPE_CONFIG = 0x02
_DESC_TYPE_STRING = 0x03
_DESC_TYPE_INTERFACE = 0x04
_DESC_TYPE_ENDPOINT = 0x05
_REQUEST_GET_DESCRIPTOR = 0x06
_LANGID_EN_US = 0x0409
_STRING_MANUFACTURER, _STRING_PRODUCT, _STRING_SERIAL = 1, 2, 3
_SPEED_FULL, _SPEED_HIGH, _SPEED_SUPER = 2, 3, 4  # libusb_speed values

_ERRORS: dict[int, tuple[str, int]] = {
    LIBUSB_ERROR_IO: ("Input/Output Error", errno.EIO),
    LIBUSB_ERROR_INVALID_PARAM: ("Invalid parameter", errno.EINVAL),
    LIBUSB_ERROR_ACCESS: ("Access denied (insufficient permissions)", errno.EACCES),
    LIBUSB_ERROR_NO_DEVICE: ("No such device (it may have been disconnected)", errno.ENODEV),
    LIBUSB_ERROR_NOT_FOUND: ("Entity not found", errno.ENOENT),
    LIBUSB_ERROR_BUSY: ("Resource busy", errno.EBUSY),
    LIBUSB_ERROR_TIMEOUT: ("Operation timed out", errno.ETIMEDOUT),
    LIBUSB_ERROR_OVERFLOW: ("Overflow", errno.EOVERFLOW),
    LIBUSB_ERROR_PIPE: ("Pipe error", errno.EPIPE),
}


def usb_error(code: int) -> usb.core.USBError:
    """Build the exception pyusb's libusb-1.0 backend raises for libusb error ``code``.

    Code above the backend tells errors apart by class (``USBTimeoutError``) and by ``errno``,
    so both must match the real backend for error handling to be tested meaningfully.
    """
    text, code_errno = _ERRORS[code]
    cls = usb.core.USBTimeoutError if code == LIBUSB_ERROR_TIMEOUT else usb.core.USBError
    return cls(text, code, code_errno)


@dataclass(frozen=True)
class TransferRecord:
    """One bulk transfer as the simulated device saw it.

    Attributes:
        direction: ``"out"`` (host to device) or ``"in"`` (device to host).
        endpoint: endpoint address.
        length: bytes transferred; 0 for a zero-length packet.
    """

    direction: Literal["out", "in"]
    endpoint: int
    length: int


@dataclass(frozen=True)
class _DeviceDescriptor:
    bLength: int
    bDescriptorType: int
    bcdUSB: int
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    bMaxPacketSize0: int
    idVendor: int
    idProduct: int
    bcdDevice: int
    iManufacturer: int
    iProduct: int
    iSerialNumber: int
    bNumConfigurations: int
    bus: int
    address: int
    port_number: int
    port_numbers: tuple[int, ...]
    speed: int


@dataclass(frozen=True)
class _ConfigurationDescriptor:
    bLength: int
    bDescriptorType: int
    wTotalLength: int
    bNumInterfaces: int
    bConfigurationValue: int
    iConfiguration: int
    bmAttributes: int
    bMaxPower: int
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _InterfaceDescriptor:
    bLength: int
    bDescriptorType: int
    bInterfaceNumber: int
    bAlternateSetting: int
    bNumEndpoints: int
    bInterfaceClass: int
    bInterfaceSubClass: int
    bInterfaceProtocol: int
    iInterface: int
    extra_descriptors: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _EndpointDescriptor:
    bLength: int
    bDescriptorType: int
    bEndpointAddress: int
    bmAttributes: int
    wMaxPacketSize: int
    bInterval: int
    bRefresh: int
    bSynchAddress: int
    extra_descriptors: list[int] = field(default_factory=list)
