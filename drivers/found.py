"""The record of an attached device that may be a terminal.

Discovery (the agent, over real serial ports and USB) and the simulated bus (simulators) both
report what is plugged in, and a station must not care which one answered. The record lives
here, below both, because simulators may not import the agent and the agent may not depend on a
simulator's types; ``posdiag.agent.discovery.Found`` re-exports it for existing callers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Found"]


@dataclass(frozen=True)
class Found:
    """An attached device that may be a terminal.

    Attributes:
        address: the address to open it at (``zvt+serial:///dev/ttyUSB0``, ``adb+usb://SERIAL``).
        family: protocol family (``zvt``, ``adb``).
        kind: what it looked like (``terminal``, ``serial adapter``, ``android (adb)``,
            ``simulator``).
        model_guess: what the catalogue (or the USB descriptors) say it probably is.
        serial: the USB serial number, when the device reports one.
        usb_id: ``vid:pid`` in hex, when on USB.
    """

    address: str
    family: str
    kind: str
    model_guess: str
    serial: str | None
    usb_id: str | None
