"""Simulated fleets for the station: which terminals, and when they are plugged in and pulled out.

A depot's day is terminals coming and going; CI and demos need that without hardware. A fleet
puts simulated terminals on a :class:`~posdiag.simulators.bus.SimulatedBus` and plays their
plug schedule, so the station's hotplug code runs exactly as with real ports. The fleet file
(TOML) can also be edited while the station runs: flipping ``plugged`` plugs or pulls a
terminal, a new entry plugs a new one in, a removed entry is pulled out.

Fleet file::

    [[terminal]]
    scenario = "activated"       # required: a simulator scenario
    family = "zvt"               # zvt (default), adb or nexo
    model = "pax-a920"           # adb or nexo: the model profile (nexo: V400m, P400Plus, S1F2)
    count = 2                    # this many such terminals (default 1)
    name = "counter-a"           # names the entry (default terminal-N); count adds -K
    options = { time_scale = "1" }   # simulator options: timing, faults
                                 # adb, nexo: tms = "URL" syncs with a simulated TMS or
                                 # Adyen backend (posdiag simulate backend), so --release
                                 # shows on it
    plugged = true               # plugged in at the start (default true)
    plug_at = 3.0                # or: plugged in this many seconds after the start
    unplug_at = 5.0              # pulled out at this time…
    replug_at = 9.0              # …and plugged back in at this one

A nexo (Adyen) terminal is a network device: each one gets an HTTPS simulator on a loopback
port, found at its real ``nexo+https://127.0.0.1:PORT?poiid=…&ca=…&key=…`` address. Pulling it
out stops the server and cuts its open connections; plugging it back serves the same state on
the same port. Its scenarios: fresh, activated, unsettled, no-network, low-battery,
printer-fault, tampered, busy. Every unit gets a serial of its own (a nexo serial is letters
and digits only: it is half of the POIID).
"""

from __future__ import annotations

import math
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import structlog

from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.i18n import _

log = structlog.get_logger(__name__)

_KEYS = frozenset(
    {
        "scenario",
        "family",
        "model",
        "count",
        "name",
        "options",
        "plugged",
        "plug_at",
        "unplug_at",
        "replug_at",
    }
)
MAX_TERMINALS = 1024
"""Terminals in one fleet, per entry and in total: a simulated rack, not a memory test.

Checked before an entry is expanded, so ``count = 1000000000`` is one line, not an exhausted
station."""
MAX_SECONDS = 86_400.0
"""The latest plug schedule time (one day): later is a typo, and inf/nan never come."""
TIMING_OPTIONS = frozenset({"time_scale", "scale", "latency"})
"""Simulator options that are numbers of seconds or time factors (finite, 0..one day)."""
FOLLOW_INTERVAL_S = 0.5
FAMILIES = ("zvt", "adb", "nexo")
"""Fleet families: ``nexo`` units are put on the bus as ``nexo+sim://SCENARIO`` (bus-only)."""


class FleetError(PosdiagError):
    """The fleet file cannot be used (the message names the file and the entry)."""


@dataclass(frozen=True)
class FleetTerminal:
    """One simulated terminal and its plug schedule (seconds after the start)."""

    name: str
    address: str
    plugged: bool = True
    plug_at: float | None = None
    unplug_at: float | None = None
    replug_at: float | None = None

    def events(self) -> list[tuple[float, str]]:
        """(time, ``plug``/``unplug``) in order."""
        timeline = [
            (self.plug_at, "plug"),
            (self.unplug_at, "unplug"),
            (self.replug_at, "plug"),
        ]
        return sorted((at, action) for at, action in timeline if at is not None)


def _number(raw: Any, what: str) -> float | None:
    """A schedule time: finite seconds from 0 to one day (TOML also spells inf and nan)."""
    if raw is None:
        return None
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or not math.isfinite(raw)
        or not 0 <= raw <= MAX_SECONDS
    ):
        raise FleetError(
            _("{what} must be a number of seconds from 0 to {maximum}, not {value}").format(
                what=what, maximum=f"{MAX_SECONDS:.0f}", value=repr(raw)
            )
        )
    return float(raw)


def _options(raw: Any, where: str) -> dict[str, str]:
    """Simulator options as text; timing options must be finite numbers from 0 to one day."""
    if not isinstance(raw, dict):
        raise FleetError(
            _("{where}: options must be a table of simulator options").format(where=where)
        )
    options: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            raise FleetError(
                _("{where}: option {key} must be a string, number or true/false").format(
                    where=where, key=key
                )
            )
        if key in TIMING_OPTIONS:
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number) or not 0 <= number <= MAX_SECONDS:
                raise FleetError(
                    _("{where}: option {key} must be a number from 0 to {maximum}, not {value}")
                    .format(where=where, key=key, maximum=f"{MAX_SECONDS:.0f}", value=repr(value))
                )
        options[str(key)] = text
    return options


def _check_nexo(where: str, model: str | None, options: dict[str, str]) -> None:
    """A nexo entry's model profile and serial, refused here with the entry named."""
    from posdiag.simulators.nexo.state import available_profiles
    from posdiag.simulators.registry import validate_serial

    models = available_profiles()
    if model is not None and model not in models:
        raise FleetError(
            _("{where}: unknown nexo model {model} (available: {models})").format(
                where=where, model=repr(model), models=", ".join(models)
            )
        )
    serial = options.get("serial")
    if serial is not None:
        try:
            validate_serial(serial, "nexo")
        except ValueError:
            raise FleetError(
                _(
                    "{where}: a nexo serial is half of the POIID: use 1 to 32 letters or "
                    "digits, not {serial}"
                ).format(where=where, serial=repr(serial))
            ) from None


def _address(family: str, scenario: str, model: str | None, options: dict[str, str]) -> str:
    query = dict(options)
    if model:
        query = {"model": model, **query}
    return f"{family}+sim://{scenario}" + (f"?{urlencode(query)}" if query else "")


def parse_fleet(data: dict[str, Any], source: str = "fleet") -> list[FleetTerminal]:
    """The terminals a fleet document describes.

    Raises:
        FleetError: unknown keys, wrong types, impossible schedules, too many terminals.
    """
    entries = data.get("terminal")
    unknown_top = set(data) - {"terminal"}
    if unknown_top:
        raise FleetError(
            _("{source}: unknown section(s) {names} (use [[terminal]])").format(
                source=source, names=sorted(unknown_top)
            )
        )
    if not isinstance(entries, list) or not entries:
        raise FleetError(_("{source}: no [[terminal]] entries").format(source=source))
    terminals: list[FleetTerminal] = []
    for index, entry in enumerate(entries, start=1):
        where = _("{source}, terminal {index}").format(source=source, index=index)
        if not isinstance(entry, dict):
            raise FleetError(_("{where}: must be a table").format(where=where))
        unknown = set(entry) - _KEYS
        if unknown:
            raise FleetError(
                _("{where}: unknown key(s) {keys}").format(where=where, keys=sorted(unknown))
            )
        scenario = entry.get("scenario")
        if not isinstance(scenario, str) or not scenario:
            raise FleetError(
                _('{where}: scenario is required (e.g. scenario = "activated")').format(
                    where=where
                )
            )
        family = entry.get("family", "zvt")
        if family not in FAMILIES:
            raise FleetError(
                _("{where}: family must be zvt, adb or nexo, not {family}").format(
                    where=where, family=repr(family)
                )
            )
        model = entry.get("model")
        if model is not None and (family == "zvt" or not isinstance(model, str)):
            raise FleetError(
                _("{where}: model is an adb or nexo option and must be a string").format(
                    where=where
                )
            )
        text_options = _options(entry.get("options", {}), where)
        if family == "nexo":
            _check_nexo(where, model, text_options)
        count = entry.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_TERMINALS:
            raise FleetError(
                _("{where}: count must be a whole number from 1 to {maximum}, not {count}").format(
                    where=where, maximum=MAX_TERMINALS, count=repr(count)
                )
            )
        if len(terminals) + count > MAX_TERMINALS:
            raise FleetError(
                _("{source}: more than {maximum} terminals (at terminal {index})").format(
                    source=source, maximum=MAX_TERMINALS, index=index
                )
            )
        plugged = entry.get("plugged", True)
        if not isinstance(plugged, bool):
            raise FleetError(_("{where}: plugged must be true or false").format(where=where))
        plug_at = _number(entry.get("plug_at"), f"{where}: plug_at")
        unplug_at = _number(entry.get("unplug_at"), f"{where}: unplug_at")
        replug_at = _number(entry.get("replug_at"), f"{where}: replug_at")
        if replug_at is not None and (unplug_at is None or replug_at <= unplug_at):
            raise FleetError(_("{where}: replug_at needs an earlier unplug_at").format(where=where))
        if plug_at is not None and unplug_at is not None and unplug_at <= plug_at:
            raise FleetError(_("{where}: unplug_at must come after plug_at").format(where=where))
        name = entry.get("name", f"terminal-{index}")
        if not isinstance(name, str) or not name:
            raise FleetError(_("{where}: name must be a non-empty string").format(where=where))
        for unit in range(count):
            unit_options = dict(text_options)
            if count > 1:
                unit_options["unit"] = str(unit + 1)
            terminals.append(
                FleetTerminal(
                    name=name if count == 1 else f"{name}-{unit + 1}",
                    address=_address(family, scenario, model, unit_options),
                    plugged=plugged and plug_at is None,
                    plug_at=plug_at,
                    unplug_at=unplug_at,
                    replug_at=replug_at,
                )
            )
    names = [t.name for t in terminals]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FleetError(
            _("{source}: duplicate terminal name(s) {names}").format(
                source=source, names=duplicates
            )
        )
    return terminals


def load_fleet(path: Path) -> list[FleetTerminal]:
    """Read a fleet file.

    Raises:
        FleetError: missing, unreadable, not TOML, or not a fleet.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetError(
            _("cannot read fleet file {file}: {error}").format(
                file=path, error=exc.strerror or exc
            )
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FleetError(
            _("fleet file {file} is not valid TOML: {error}").format(file=path, error=exc)
        ) from None
    return parse_fleet(data, str(path))


def fleet_of(addresses: Iterable[str]) -> list[FleetTerminal]:
    """A fleet of simulator addresses, all plugged in from the start (``--simulate N``)."""
    return [FleetTerminal(f"terminal-{i}", a) for i, a in enumerate(addresses, start=1)]


@dataclass
class FleetPlayer:
    """Puts a fleet on a bus and plays its plug schedule (and, with a file, its edits).

    Args:
        bus: a :class:`~posdiag.simulators.bus.SimulatedBus`.
        terminals: the fleet.
        on_change: called after every plug or unplug (the station's ``notify_change``).
        path: the fleet file to follow for edits (None: no following).
    """

    bus: Any
    terminals: list[FleetTerminal]
    on_change: Callable[[], None] = lambda: None
    path: Path | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    """Fleet name → bus address."""
    _events: list[tuple[float, str, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _started: float = 0.0
    _mtime: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Add every terminal to the bus and start the schedule."""
        self._started = time.monotonic()
        self._add(self.terminals, offset=0.0)
        if self.path is not None:
            self._mtime = self._stat()
        self._thread = threading.Thread(target=self._play, name="posdiag-fleet", daemon=True)
        self._thread.start()

    def done(self) -> bool:
        """Whether the schedule has run out (the station may end once its workers are done)."""
        with self._lock:
            return not self._events

    def stop(self) -> None:
        """Stop playing (the bus keeps its terminals until it is closed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _add(self, terminals: list[FleetTerminal], offset: float) -> None:
        for terminal in terminals:
            address = self.bus.add(terminal.address, plugged=terminal.plugged)
            self.addresses[terminal.name] = address
            with self._lock:
                self._events.extend(
                    (offset + at, action, terminal.name) for at, action in terminal.events()
                )
                self._events.sort()
        self.on_change()

    def _play(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic() - self._started
            with self._lock:
                due = [e for e in self._events if e[0] <= now]
            for _due_at, action, name in due:
                self._apply(action, name)
            with self._lock:  # only now: done() must not be true before the last plug happened
                self._events = [e for e in self._events if e not in due]
            if self.path is not None:
                self._follow()

    def _apply(self, action: str, name: str) -> None:
        address = self.addresses.get(name)
        if address is None:
            return
        if action == "plug":
            self.bus.plug(address)
        else:
            self.bus.unplug(address)
        log.info("fleet." + action, terminal=name, address=address)
        self.on_change()

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime if self.path is not None else None
        except OSError:
            return None

    def _follow(self) -> None:
        """Apply edits of the fleet file: plugged flags, new entries, removed entries."""
        mtime = self._stat()
        if mtime is None or mtime == self._mtime:
            return
        self._mtime = mtime
        assert self.path is not None
        try:
            edited = load_fleet(self.path)
        except FleetError as exc:
            log.warning("fleet.edit_ignored", error=str(exc))
            return
        known = {t.name: t for t in self.terminals}
        now = time.monotonic() - self._started
        new = [t for t in edited if t.name not in known]
        for terminal in edited:
            old = known.get(terminal.name)
            if old is not None and old.plugged != terminal.plugged:
                self._apply("plug" if terminal.plugged else "unplug", terminal.name)
        for name in sorted(set(known) - {t.name for t in edited}):
            self._apply("unplug", name)
        self.terminals = edited
        if new:
            self._add(new, offset=now)


# Simulated fleet: a fixed round-robin of ZVT scenarios and Android scenario×model combinations.
# auth-required is left out: it waits for a tap on the terminal's screen that never comes.
_ZVT = ("activated", "fresh", "unsettled", "tampered", "low-battery", "no-network")
_ADB = ("activated", "fresh", "unsettled", "low-battery", "no-network", "no-sim")
_MODELS = ("pax-a920", "sunmi-p2", "android-generic", "newland-n910")


def _fleet_pattern() -> list[str]:
    pattern: list[str] = []
    for index in range(max(len(_ZVT), len(_ADB) * len(_MODELS))):
        if index < len(_ZVT):
            pattern.append(f"zvt+sim://{_ZVT[index]}")
        if index < len(_ADB) * len(_MODELS):
            scenario = _ADB[index % len(_ADB)]
            model = _MODELS[(index + index // len(_ADB)) % len(_MODELS)]  # every pair once
            pattern.append(f"adb+sim://{scenario}?model={model}")
    return pattern


def fleet_serial(family: str, position: int) -> str:
    """The serial number of the fleet's unit at ``position`` (distinct per family and position).

    Every simulator of a scenario otherwise reports the scenario's one serial, and the station
    (rightly) treats equal family+serial as one terminal: one wipe at a time, one ledger
    history, "already erased in this batch". A fleet of 64 must therefore be 64 serials. The
    prefixes differ from the simulated bus's own numbering (``5A…``, ``SIM…``) so a fleet's
    units never collide with terminals the bus numbers itself.
    """
    if position < 0:
        raise ValueError("a fleet position is 0 or more")
    return f"{0x5B000000 + position:08X}" if family == "zvt" else f"SIMF{position:08d}"


def simulated_fleet(n: int, seed: int = 0) -> list[str]:
    """N distinct simulated addresses mixing families and scenarios, deterministically.

    Every address names its own serial number (``serial=``, from :func:`fleet_serial`), so the
    units are distinct terminals on every path: worked directly (a station's ``run``, each
    address builds its own simulator) or put on a simulated bus. The same ``n`` and ``seed``
    always give the same addresses, so a continued batch (``--batch``) finds the same serials.
    """
    pattern = _fleet_pattern()
    fleet = []
    for index in range(n):
        position = seed + index
        address = pattern[position % len(pattern)]
        family = address.split("+", 1)[0]
        address += ("&" if "?" in address else "?") + f"serial={fleet_serial(family, position)}"
        fleet.append(address)
    return fleet
