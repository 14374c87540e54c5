"""pytest fixtures for simulated backends (registered as a pytest11 plugin with posdiag).

``backend_simulator``
    A factory: ``backend_simulator("paxstore", "1170000001=bound", release_pending=2)`` starts
    a simulated PAXSTORE (or ``adyen``, ``generic``) on a loopback port with those units and
    faults, and returns a :class:`SimulatedBackend`: its API URL, host and port, a ready
    backends file (0600) for ``--backends``, and the simulator itself to inspect its state.

Example::

    def test_release(backend_simulator, adb_terminal):
        tms = backend_simulator("paxstore", "0820533061=bound")
        terminal = adb_terminal("activated", model="pax-a920", tms=tms.url)
        ...
        assert tms.simulator.terminals["0820533061"].state == "unbound"

Every simulator a factory starts is stopped when the test ends, including when it fails. A fault
name the kind does not know is an error naming it and listing the valid ones, never ignored.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ..pytest_support import check_names
from .catalog import KINDS, create_backend_simulator
from .server import BackendSimulator

__all__ = ["SimulatedBackend", "backend_faults", "backend_simulator"]


@dataclass(frozen=True)
class SimulatedBackend:
    """A running simulated backend and how to reach it.

    Attributes:
        kind: ``paxstore``, ``adyen`` or ``generic``.
        url: the API root a connector or SDK is configured with (``http://127.0.0.1:PORT…``);
            also what a simulated Android terminal takes as ``tms=`` to sync with it.
        backends_file: a ready backends file (mode 0600) for ``--backends``, with credentials.
        simulator: the running :class:`~posdiag.simulators.backend.server.BackendSimulator`
            (``terminals`` by serial, ``counts`` of calls and faults fired, ``requests``).
    """

    kind: str
    url: str
    backends_file: Path
    simulator: BackendSimulator

    @property
    def host(self) -> str:
        """The loopback address it listens on (``127.0.0.1``)."""
        return urlsplit(self.simulator.base_url).hostname or ""

    @property
    def port(self) -> int:
        """The TCP port it listens on (a free one, chosen at start)."""
        return urlsplit(self.simulator.base_url).port or 0


def backend_faults(kind: str) -> tuple[str, ...]:
    """The fault names a simulated backend of ``kind`` accepts (an unknown kind: none)."""
    if kind not in KINDS:
        return ()
    module_name, class_name = KINDS[kind]
    module = importlib.import_module(f"{__package__}.{module_name}")
    cls: type[BackendSimulator] = getattr(module, class_name)
    return tuple(cls.FAULTS)


def _fault_value(value: Any) -> str:
    """``True``/``False`` as 1/0 (``bad_signature=True``), anything else as text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@pytest.fixture
def backend_simulator(tmp_path: Path) -> Iterator[Callable[..., SimulatedBackend]]:
    """Factory of started simulated backends (see the module docstring).

    Call it as ``backend_simulator(kind, *terminals, **faults)``: ``kind`` is ``paxstore``,
    ``adyen`` or ``generic``; each terminal is ``"SERIAL=STATE"`` (bound, unbound, disabled;
    none: the kind's default units); faults are numbers (``release_pending=2``, ``slow=0.5``,
    ``bad_signature=True``). An unknown kind or fault raises ``AddressError`` (for a fault,
    :class:`~posdiag.simulators.pytest_support.UnknownFaultError`) listing the valid ones.
    """
    started: list[BackendSimulator] = []

    def start(kind: str, *terminals: str, **faults: Any) -> SimulatedBackend:
        if kind in KINDS:
            check_names(
                faults,
                backend_faults(kind),
                what=f"backend_simulator({kind!r})",
                lead="unknown backend fault",
            )
        simulator = create_backend_simulator(
            kind, terminals, {name: _fault_value(value) for name, value in faults.items()}
        )
        simulator.start()
        started.append(simulator)
        path = tmp_path / f"backends-{kind}-{len(started)}.toml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(simulator.backends_toml(kind))
        return SimulatedBackend(kind, simulator.api_url, path, simulator)

    yield start
    for simulator in started:
        simulator.stop()
