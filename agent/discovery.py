"""Find attached terminals: serial ports whose USB IDs the catalogue knows.

Only ports that the catalogue names as a terminal or as a common USB-serial adapter are offered:
writing to an unknown tty (a modem, a GPS, a console) could upset it, so posdiag never probes
ports it has no reason to believe are terminals.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from serial.tools import list_ports

from posdiag.drivers.catalogue import AdapterEntry, ModelEntry, load_catalogue

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Found:
    """An attached device that may be a terminal."""

    address: str
    family: str
    kind: str
    model_guess: str
    serial: str | None
    usb_id: str | None


def discover_serial() -> list[Found]:
    """Serial ports that are terminals or typical terminal cables."""
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
    log.debug("discovery.serial", found=len(found))
    return found
