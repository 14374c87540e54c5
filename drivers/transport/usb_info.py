"""What the USB transport reports about devices on the bus: ADB interfaces and locked units.

Plain data, kept apart from :mod:`.usbbulk` (which re-exports both classes) so that module stays
about moving bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UsbDeviceInfo:
    """One ADB interface found on the bus, with everything needed to open it again.

    Attributes:
        vid: USB vendor id.
        pid: USB product id.
        serial: the serial number string (the adb serial), or None when the device has none
            or it could not be read (typically missing permissions on the device node).
        bus: bus number, or None when the backend cannot tell.
        address: device address on that bus, or None when the backend cannot tell.
        manufacturer: manufacturer string, None when absent or unreadable.
        product: product string, None when absent or unreadable.
        interface: bInterfaceNumber of the ADB interface.
        alt_setting: bAlternateSetting that carries the ADB endpoints.
        configuration: bConfigurationValue of the configuration holding the interface.
        interface_class: (class, subclass, protocol) of the interface, ADB or DbC.
        endpoint_in: address of the bulk IN endpoint (bit 0x80 set).
        endpoint_out: address of the bulk OUT endpoint.
        max_packet_size: wMaxPacketSize of the OUT endpoint, which decides when a ZLP is due.
        max_packet_size_in: wMaxPacketSize of the IN endpoint, the unit of read transfers.
    """

    vid: int
    pid: int
    serial: str | None
    bus: int | None
    address: int | None
    manufacturer: str | None
    product: str | None
    interface: int
    alt_setting: int
    configuration: int
    interface_class: tuple[int, int, int]
    endpoint_in: int
    endpoint_out: int
    max_packet_size: int
    max_packet_size_in: int

    @property
    def description(self) -> str:
        """Text naming the device in logs, e.g. ``usb 2fb8:2208 serial 0123456789``."""
        ids = f"usb {self.vid:04x}:{self.pid:04x}"
        if self.serial:
            return f"{ids} serial {self.serial}"
        return f"{ids} bus {self.bus} address {self.address}"


@dataclass(frozen=True)
class LockedUsbDevice:
    """A device that may be a terminal but offers no ADB interface: its USB debugging is off.

    Android drops the ADB interface while USB debugging is disabled, so a production-locked
    unit enumerates with its MTP/PTP or charging interface only. Listed so the operator hears
    "locked, ask its backend" instead of "nothing attached".
    """

    vid: int
    pid: int
    serial: str | None
    bus: int | None
    address: int | None

    @property
    def description(self) -> str:
        """Text naming the device, as :attr:`UsbDeviceInfo.description` does."""
        ids = f"usb {self.vid:04x}:{self.pid:04x}"
        if self.serial:
            return f"{ids} serial {self.serial}"
        return f"{ids} bus {self.bus} address {self.address}"
