"""Build a simulated backend by kind, seeded with ``SERIAL=STATE`` terminals (CLI and fixtures)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping

from posdiag.drivers.errors import AddressError

from .server import BackendSimulator, SimTerminal

__all__ = ["KINDS", "create_backend_simulator", "parse_terminals"]

KINDS = {
    "paxstore": ("paxstore", "PaxstoreSimulator"),
    "adyen": ("adyen", "AdyenSimulator"),
    "generic": ("generic", "GenericPlatformSimulator"),
}
STATES = ("bound", "unbound", "disabled")
_SERIAL = re.compile(r"[A-Za-z0-9._-]{1,64}")
DEFAULT_TERMINALS = {
    "paxstore": ("1170000001=bound", "1170000002=unbound", "1170000003=disabled"),
    "adyen": ("000150183300032=bound", "000150183300033=unbound"),
    "generic": ("LKL00000001=bound", "LKL00000002=unbound"),
}
"""What a simulated backend knows when none is named (a user can try lookups at once)."""


def parse_terminals(specs: Iterable[str]) -> list[SimTerminal]:
    """``SERIAL=STATE`` (STATE bound|unbound|disabled, default bound) → terminals.

    Raises:
        AddressError: a malformed serial or an unknown state, one line.
    """
    terminals = []
    for spec in specs:
        serial, _, state = spec.partition("=")
        serial, state = serial.strip(), (state.strip() or "bound").lower()
        if not _SERIAL.fullmatch(serial):
            raise AddressError(f"--terminal {spec[:40]!r}: the serial is letters, digits, . _ -")
        if state not in STATES:
            raise AddressError(
                f"--terminal {spec[:40]!r}: state must be one of {', '.join(STATES)}"
            )
        terminal = SimTerminal(serial=serial, state=state)
        if state == "unbound":
            terminal.merchant = None
            terminal.store = None
        terminals.append(terminal)
    return terminals


def create_backend_simulator(
    kind: str,
    terminals: Iterable[str] = (),
    faults: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> BackendSimulator:
    """A simulated backend of ``kind`` (not started)."""
    if kind not in KINDS:
        raise AddressError(f"unknown backend kind {kind!r} (known: {', '.join(KINDS)})")
    module_name, class_name = KINDS[kind]
    module = importlib.import_module(f"{__package__}.{module_name}")
    cls: type[BackendSimulator] = getattr(module, class_name)
    specs = list(terminals) or list(DEFAULT_TERMINALS[kind])
    numbers: dict[str, float] = {}
    for name, value in (faults or {}).items():
        try:
            numbers[name] = float(value)
        except ValueError:
            raise AddressError(f"backend fault {name}={value!r}: a number is expected") from None
    return cls(terminals=parse_terminals(specs), faults=numbers, host=host, port=port)
