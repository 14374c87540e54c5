"""Find attached terminals: serial ports whose USB IDs the catalogue knows, and ADB devices.

Only ports that the catalogue names as a terminal or as a common USB-serial adapter are offered:
writing to an unknown tty (a modem, a GPS, a console) could upset it, so posdiag never probes
ports it has no reason to believe are terminals.
"""

from __future__ import annotations

from serial.tools import list_ports

from posdiag.drivers.found import Found

from .logs import get_logger

# The catalogue, pyusb and structlog are imported when discovery runs, not when the CLI starts:
# `posdiag --version` and `posdiag check ADDRESS` never need them.

__all__ = ["LOCKED_KIND", "Found", "discover", "discover_serial", "discover_usb"]  # Found: drivers

LOCKED_KIND = "android (USB debugging off)"
"""``Found.kind`` of a terminal on USB without an ADB interface (a production-locked unit)."""


def discover_serial() -> list[Found]:
    """Serial ports that are terminals or typical terminal cables."""
    from posdiag.drivers.catalogue import AdapterEntry, ModelEntry, load_catalogue

    catalogue = load_catalogue()
    found: list[Found] = []
    for port in list_ports.comports():
        if port.vid is None or port.pid is None:
            continue
        entry = catalogue.by_usb(port.vid, port.pid)
        if entry is None:
            continue
        usb_id = f"{port.vid:04x}:{port.pid:04x}"
        if isinstance(entry, ModelEntry):
            if entry.family != "zvt":
                continue  # an Android unit's serial gadget: it is found over ADB, not probed here
            kind, guess = "terminal", f"{entry.vendor} {entry.model}".strip()
        else:
            assert isinstance(entry, AdapterEntry)
            kind, guess = "serial adapter", f"ZVT terminal behind {entry.name}?"
        found.append(
            Found(
                address=f"zvt+serial://{port.device}",
                family="zvt",
                kind=kind,
                model_guess=guess,
                serial=port.serial_number,
                usb_id=usb_id,
            )
        )
    get_logger(__name__).debug("discovery.serial", found=len(found))
    return found


def discover_usb() -> list[Found]:
    """Android terminals on USB (none, and a log line, without a bus).

    Those with an ADB interface, then units of a known terminal vendor without one: their USB
    debugging is off (production-locked). They are listed, kind ``android (USB debugging off)``,
    rather than missing: checking one says that its binding can be checked through its backend.
    """
    from posdiag.drivers.catalogue import ModelEntry, load_catalogue
    from posdiag.drivers.transport.usbbulk import find_adb_devices, find_locked_devices

    from .connect import adb_usb_vendors

    catalogue = load_catalogue()
    found = []
    for device in find_adb_devices():
        entry = catalogue.by_usb(device.vid, device.pid)
        guess = (
            f"{entry.vendor} {entry.model}".strip()
            if isinstance(entry, ModelEntry)
            else " ".join(p for p in (device.manufacturer, device.product) if p) or "Android device"
        )
        target = device.serial or f"{device.vid:04x}:{device.pid:04x}"
        found.append(
            Found(
                address=f"adb+usb://{target}",
                family="adb",
                kind="android (adb)",
                model_guess=guess,
                serial=device.serial,
                usb_id=f"{device.vid:04x}:{device.pid:04x}",
            )
        )
    for unit in find_locked_devices(adb_usb_vendors(catalogue)):
        entry = catalogue.by_usb(unit.vid, unit.pid)
        target = unit.serial or f"{unit.vid:04x}:{unit.pid:04x}"
        found.append(
            Found(
                address=f"adb+usb://{target}",
                family="adb",
                kind=LOCKED_KIND,
                model_guess=f"{entry.vendor} {entry.model}".strip()
                if isinstance(entry, ModelEntry)
                else "Android terminal",
                serial=unit.serial,
                usb_id=f"{unit.vid:04x}:{unit.pid:04x}",
            )
        )
    get_logger(__name__).debug("discovery.usb", found=len(found))
    return found


def discover() -> list[Found]:
    """Every attached terminal: serial ports the catalogue knows, then ADB devices on USB."""
    return [*discover_serial(), *discover_usb()]
