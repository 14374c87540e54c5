"""A simulated USB/serial bus: terminals that are plugged in and pulled out while a station runs.

A plain ``zvt+sim://`` or ``adb+sim://`` address builds a fresh simulator every time it is
opened, which is right for one check but wrong for a depot: a terminal pulled out half-way
through its wipe must come back *half-wiped*. The bus keeps one simulator per terminal for its
whole life and hands out addresses carrying ``bus=ID``; opening such an address attaches to that
simulator (over the same in-process memory link and, for ZVT, the same pyserial code path), and
unplugging severs every open link at once, exactly as a pulled cable does, so the driver sees
the line die mid-exchange. Plugging it back in lets the next open reach the same state.

:meth:`SimulatedBus.discover` answers with the same :class:`~posdiag.drivers.found.Found`
records as the agent's discovery of real ports, so a station watching the bus runs the same
hotplug code as one watching real ports (and the simulators never import the agent).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import structlog

from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import AddressError, TransportOpenError
from posdiag.drivers.found import Found

from .attach import MemoryAttachment

log = structlog.get_logger(__name__)

BUS_OPTION = "bus"
"""The address option naming a bus terminal (``zvt+sim://activated?bus=3f2a…``)."""

_DRIVER_OPTIONS = frozenset({"password", "t1", "t2", "t3", "t4", "currency", "trace", "timeout"})


@dataclass
class _Unit:
    """One simulated terminal on the bus."""

    address: str
    family: str
    engine: Any
    plugged: bool = False
    links: list[MemoryAttachment] = field(default_factory=list)


_units: dict[str, _Unit] = {}
_units_lock = threading.Lock()
_serials = itertools.count(1)


def _unit_serial(family: str) -> str:
    """A serial number of its own for a bus terminal (a rack never holds two equal ones).

    Every simulator of a scenario otherwise reports the scenario's one serial, and the station
    (rightly) treats equal family+serial as the same terminal: one wipe at a time, one ledger
    history.
    """
    number = next(_serials)
    return f"{0x5A000000 + number:08X}" if family == "zvt" else f"SIM{number:09d}"


def _build_engine(family: str, scenario: str, options: dict[str, str]) -> Any:
    from .registry import create_adb, create_zvt, require_scenario

    if family not in ("zvt", "adb"):
        raise AddressError(f"no simulator for the {family!r} family")
    require_scenario(family, scenario)
    sim_options = {k: v for k, v in options.items() if k not in _DRIVER_OPTIONS}
    if family == "zvt":
        sim_options.setdefault("time_scale", "0")
        return create_zvt(scenario, sim_options)
    return create_adb(scenario, options.get("model", "android-generic"), sim_options)


def open_link(bus_id: str, family: str) -> MemoryAttachment:
    """Connect to a bus terminal: a started memory link to its simulator.

    Raises:
        TransportOpenError: no such terminal, or it is unplugged right now (what opening a
            port whose device was pulled out gives on real hardware).
    """
    with _units_lock:
        unit = _units.get(bus_id)
        if unit is None or unit.family != family:
            raise TransportOpenError(f"no simulated {family} terminal bus={bus_id} on this bus")
        if not unit.plugged:
            raise TransportOpenError(f"{unit.address} is unplugged")
        attachment = MemoryAttachment(unit.engine, description=unit.address)
        attachment.start()
        unit.links = [link for link in unit.links if link.running] + [attachment]
    return attachment


class SimulatedBus:
    """Simulated terminals a station can discover, with plug and unplug.

    Terminals stay registered until :meth:`close`; one bus per station run is the usual shape.
    """

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._lock = threading.Lock()

    def add(self, address: str, *, plugged: bool = True) -> str:
        """Create a simulated terminal from a ``zvt+sim://`` or ``adb+sim://`` address.

        Each gets a serial number of its own unless the address sets ``serial=``.

        Returns:
            The terminal's bus address (the given one plus ``bus=ID``), stable across plugs.

        Raises:
            AddressError: not a simulator address, or an unknown scenario.
        """
        parsed = parse_address(address)
        if parsed.link != "sim":
            raise AddressError(f"{address!r} is not a simulated terminal (zvt+sim://, adb+sim://)")
        options = dict(parsed.options)
        options.setdefault("serial", _unit_serial(parsed.family))
        engine = _build_engine(parsed.family, parsed.target, options)
        bus_id = secrets.token_hex(4)
        bus_address = address + ("&" if "?" in address else "?") + f"{BUS_OPTION}={bus_id}"
        with _units_lock:
            _units[bus_id] = _Unit(bus_address, parsed.family, engine, plugged)
        with self._lock:
            self._ids.append(bus_id)
        log.debug("bus.added", address=bus_address, plugged=plugged)
        return bus_address

    def plug(self, address: str) -> None:
        """Plug a terminal in: the next discovery lists it, opening it reaches its simulator."""
        unit = self._unit(address)
        with _units_lock:
            unit.plugged = True
        log.info("bus.plugged", address=address)

    def unplug(self, address: str) -> None:
        """Pull a terminal out: every open link to it dies now, and it is no longer listed."""
        unit = self._unit(address)
        with _units_lock:
            unit.plugged = False
            links, unit.links = unit.links, []
        for link in links:
            link.stop()
        log.info("bus.unplugged", address=address)

    def plugged(self, address: str) -> bool:
        """Whether the terminal is plugged in now."""
        return self._unit(address).plugged

    def engine(self, address: str) -> Any:
        """The terminal's simulator (its state is what a test inspects after a run)."""
        return self._unit(address).engine

    def addresses(self) -> list[str]:
        """Every terminal on the bus, plugged in or not, in the order they were added."""
        with self._lock:
            ids = list(self._ids)
        with _units_lock:
            return [_units[i].address for i in ids if i in _units]

    def discover(self) -> list[Found]:
        """The plugged-in terminals, as the agent's discovery reports real ones."""
        with self._lock:
            ids = list(self._ids)
        found = []
        with _units_lock:
            units = [_units[i] for i in ids if i in _units and _units[i].plugged]
        for unit in units:
            guess = "simulated ZVT terminal" if unit.family == "zvt" else "simulated Android POS"
            found.append(Found(unit.address, unit.family, "simulator", guess, None, None))
        return found

    def close(self) -> None:
        """Unplug everything and forget the terminals."""
        with self._lock:
            ids, self._ids = self._ids, []
        for bus_id in ids:
            with _units_lock:
                unit = _units.pop(bus_id, None)
            if unit is not None:
                for link in unit.links:
                    link.stop()

    def __enter__(self) -> SimulatedBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unit(self, address: str) -> _Unit:
        bus_id = parse_address(address).options.get(BUS_OPTION, "")
        with _units_lock:
            unit = _units.get(bus_id)
        if unit is None:
            raise AddressError(f"{address!r} is not on this bus")
        return unit
