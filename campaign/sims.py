"""Simulated terminals in-process, reached through the real drivers, with their state at hand.

The campaign judges outcomes against what the *simulator* holds, so it builds the simulator
itself (as ``simulators/pytest_plugin.py`` does for the tests) instead of going through an
address, which would hide the state. Each call of :meth:`SimTerminal.terminal` lays a new memory
link to the same simulator: its state survives the link, as a real terminal's survives a cable.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from posdiag.drivers.adb.auth import AdbKey
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.drivers.catalogue import Catalogue, load_catalogue
from posdiag.drivers.model import Terminal
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import ZvtDriver, ZvtTimers
from posdiag.simulators import registry
from posdiag.simulators.adb.state import AndroidState, load_android
from posdiag.simulators.attach import MemoryAttachment
from posdiag.simulators.zvt.state import TerminalState

TIMERS = ZvtTimers(t1=0.2, t2=0.5, t3=1.0, t4=5.0)
"""Short ZVT timers (as the tests use): a silent or lost answer costs a second, not minutes."""

ADB_TIMEOUT = 2.0
ADB_AUTH_TIMEOUT = 1.0


@functools.cache
def adb_key() -> AdbKey:
    """One RSA host key for the whole run (generating one is slow); never written to disk."""
    return AdbKey.generate()


@functools.cache
def catalogue() -> Catalogue:
    """The shipped catalogue, loaded once."""
    return load_catalogue()


@dataclass
class SimTerminal:
    """A running simulator and a way to reach it again and again.

    Attributes:
        family: ``zvt`` or ``adb``.
        scenario: the shipped scenario it started in.
        model: the ADB model profile (``""`` for ZVT).
        simulator: the engine; ``simulator.state`` is the live truth.
        address: the ``zvt+sim://``/``adb+sim://`` address the reports carry.
    """

    family: str
    scenario: str
    model: str
    simulator: Any
    address: str
    password: str = "000000"
    _attachments: list[MemoryAttachment] = field(default_factory=list)

    @property
    def state(self) -> Any:
        """The simulator's live state (TerminalState or AndroidState)."""
        return self.simulator.state

    def terminal(self) -> Terminal:
        """A Terminal on a fresh memory link to this simulator (not yet connected)."""
        attachment = MemoryAttachment(self.simulator, description=f"campaign {self.address}")
        transport = attachment.start()
        self._attachments.append(attachment)
        if self.family == "zvt":
            driver = ZvtDriver(transport, Link.SERIAL, password=self.password, timers=TIMERS)
            from posdiag.drivers.zvt.terminal import ZvtTerminal

            return ZvtTerminal(driver, self.address, catalogue())
        adb = AdbDriver(
            transport, key_loader=adb_key, timeout=ADB_TIMEOUT, auth_timeout=ADB_AUTH_TIMEOUT
        )
        return AdbTerminal(adb, self.address, catalogue())

    def stop(self) -> None:
        """Stop every link's simulator thread."""
        for attachment in self._attachments:
            attachment.stop()
        self._attachments.clear()


def zvt(scenario: str, options: dict[str, str] | None = None) -> SimTerminal:
    """A simulated Feig cVEND (ZVT over a serial-framed memory link), no simulated delays."""
    opts = {"time_scale": "0", **(options or {})}
    simulator = registry.create_zvt(scenario, opts, Link.SERIAL)
    state: TerminalState = simulator.state
    return SimTerminal("zvt", scenario, "", simulator, f"zvt+sim://{scenario}", state.password)


def adb(scenario: str, model: str, options: dict[str, str] | None = None) -> SimTerminal:
    """A simulated Android POS of ``model`` (ADB over a memory link), no simulated delays."""
    opts = {"time_scale": "0", **(options or {})}
    simulator = registry.create_adb(scenario, model, opts)
    return SimTerminal("adb", scenario, model, simulator, f"adb+sim://{scenario}?model={model}")


def android_baseline(model: str) -> AndroidState:
    """The model's factory-fresh state: what a wipe may leave behind on it."""
    return load_android("fresh", model)
