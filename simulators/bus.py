"""A simulated USB/serial bus: terminals that are plugged in and pulled out while a station runs.

A plain ``zvt+sim://`` or ``adb+sim://`` address builds a fresh simulator every time it is
opened, which is right for one check but wrong for a depot: a terminal pulled out half-way
through its wipe must come back *half-wiped*. The bus keeps one simulator per terminal for its
whole life and hands out addresses carrying ``bus=ID``; opening such an address attaches to that
simulator (over the same in-process memory link and, for ZVT, the same pyserial code path), and
unplugging severs every open link at once, exactly as a pulled cable does, so the driver sees
the line die mid-exchange. Plugging it back in lets the next open reach the same state.

A nexo (Adyen) terminal is a network device, added as ``nexo+sim://SCENARIO?model=V400m&…``
(a bus-only spelling: no driver opens it). The bus starts its HTTPS simulator on a free loopback
port, and the unit's address is the simulator's real ``nexo+https://127.0.0.1:PORT?poiid=…&ca=…
&key=…`` one, which the normal nexo driver opens (``posdiag check`` takes it too). Plugged in
means the server listens; pulling it out stops the server and cuts every open connection
mid-request; plugging it back listens again on the same port with the same state, CA and key
files, so the address stays valid and a half-done wipe resumes. :meth:`SimulatedBus.close`
stops every server and removes its files.

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
from urllib.parse import parse_qsl, urlsplit

import structlog

from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import AddressError, PosdiagError, TransportOpenError
from posdiag.drivers.found import Found

from .attach import MemoryAttachment

log = structlog.get_logger(__name__)

BUS_OPTION = "bus"
"""The address option naming a bus terminal (``zvt+sim://activated?bus=3f2a…``)."""

_DRIVER_OPTIONS = frozenset({"password", "t1", "t2", "t3", "t4", "currency", "trace", "timeout"})
NEXO_PREFIX = "nexo+sim://"
"""How a nexo terminal is added to the bus (its address on the bus is its ``nexo+https://`` one)."""
NEXO_DEFAULT_MODEL = "V400m"


@dataclass
class _Unit:
    """One simulated terminal on the bus."""

    address: str
    family: str
    engine: Any
    plugged: bool = False
    links: list[MemoryAttachment] = field(default_factory=list)
    network: Any = None
    """A nexo unit's NexoSimulator (its HTTPS server is the "cable"); None for zvt and adb."""
    cable: threading.Lock = field(default_factory=threading.Lock)
    """Held while plugging or pulling: a replug waits until the pull has closed the server."""


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
    # adb and nexo alike: letters and digits only, as half of a nexo POIID must be
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


def _start_nexo(address: str) -> Any:
    """A started nexo simulator for ``nexo+sim://SCENARIO?model=…&options`` (bus-only spelling).

    Raises:
        AddressError: an unknown scenario, model, option or a bad serial.
        OSError: no loopback port to listen on.
    """
    from .registry import create_nexo, require_scenario

    parts = urlsplit(address)
    scenario = parts.netloc or parts.path.lstrip("/")
    require_scenario("nexo", scenario)
    options = {
        k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _DRIVER_OPTIONS
    }
    model = options.pop("model", NEXO_DEFAULT_MODEL)
    options.pop("unit", None)  # the fleet's unit number: identity comes from the serial
    options.setdefault("serial", _unit_serial("nexo"))
    options.setdefault("time_scale", "0")
    try:
        simulator = create_nexo(scenario, model, options)
    except AddressError:
        raise
    except PosdiagError as exc:  # an unknown model: NexoScenarioError lists the known ones
        raise AddressError(str(exc)) from None
    return simulator.start()


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
        """Create a simulated terminal from a ``zvt+sim://``, ``adb+sim://`` or ``nexo+sim://`` URL.

        Each gets a serial number of its own unless the address sets ``serial=``.

        Returns:
            The terminal's bus address, stable across plugs: the given one plus ``bus=ID``, or
            for nexo the simulator's ``nexo+https://`` address.

        Raises:
            AddressError: not a simulator address, or an unknown scenario (or nexo model).
        """
        if address.startswith(NEXO_PREFIX):
            return self._add_nexo(address, plugged)
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

    def _add_nexo(self, address: str, plugged: bool) -> str:
        simulator = _start_nexo(address)
        if not plugged:
            simulator.disconnect()
        bus_address = str(simulator.address)
        bus_id = secrets.token_hex(4)
        with _units_lock:
            _units[bus_id] = _Unit(bus_address, "nexo", simulator, plugged, network=simulator)
        with self._lock:
            self._ids.append(bus_id)
        log.debug("bus.added", family="nexo", port=simulator.port, plugged=plugged)
        return bus_address

    def plug(self, address: str) -> None:
        """Plug a terminal in: the next discovery lists it, opening it reaches its simulator.

        A nexo terminal listens again on its port; when another program took the port meanwhile
        it stays unplugged (logged), as a unit whose network never comes up.
        """
        unit = self._unit(address)
        with unit.cable:
            if unit.network is not None:
                try:
                    unit.network.reconnect()
                except (OSError, RuntimeError) as exc:
                    log.warning("bus.plug_failed", family="nexo", error=str(exc))
                    return
            with _units_lock:
                unit.plugged = True
        log.info("bus.plugged", address=_shown(unit))

    def unplug(self, address: str) -> None:
        """Pull a terminal out: every open link to it dies now, and it is no longer listed."""
        unit = self._unit(address)
        with unit.cable:
            with _units_lock:
                unit.plugged = False
                links, unit.links = unit.links, []
            for link in links:
                link.stop()
            if unit.network is not None:
                unit.network.disconnect()
        log.info("bus.unplugged", address=_shown(unit))

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
            guess = _GUESSES.get(unit.family, "simulated terminal")
            if unit.network is not None:
                guess += f" {unit.network.state.model}"
            found.append(Found(unit.address, unit.family, "simulator", guess, None, None))
        return found

    def close(self) -> None:
        """Unplug everything and forget the terminals (nexo: servers stopped, files removed)."""
        with self._lock:
            ids, self._ids = self._ids, []
        for bus_id in ids:
            with _units_lock:
                unit = _units.pop(bus_id, None)
            if unit is not None:
                for link in unit.links:
                    link.stop()
                if unit.network is not None:
                    with unit.cable:
                        unit.network.disconnect()
                        unit.network.stop()

    def __enter__(self) -> SimulatedBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unit(self, address: str) -> _Unit:
        with self._lock:
            ids = list(self._ids)
        with _units_lock:
            for bus_id in ids:  # a nexo unit's address is its real one, without bus=
                unit = _units.get(bus_id)
                if unit is not None and unit.network is not None and unit.address == address:
                    return unit
        if address.startswith("nexo+"):
            raise AddressError("this nexo terminal is not on this bus")
        bus_id = parse_address(address).options.get(BUS_OPTION, "")
        with _units_lock:
            unit = _units.get(bus_id)
        if unit is None:
            raise AddressError(f"{address!r} is not on this bus")
        return unit


_GUESSES = {
    "zvt": "simulated ZVT terminal",
    "adb": "simulated Android POS",
    "nexo": "simulated Adyen terminal",
}


def _shown(unit: _Unit) -> str:
    """A unit's address for the log (a nexo address names files: its POIID and port instead)."""
    if unit.network is not None:
        return f"nexo {unit.network.state.poiid} on port {unit.network.port}"
    return unit.address
