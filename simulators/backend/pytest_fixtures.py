"""pytest fixtures for simulated backends (registered as a pytest11 plugin with posdiag).

``backend_simulator``
    A factory: ``backend_simulator("paxstore", "1170000001=bound", release_pending=2)`` starts
    a simulated PAXSTORE (or ``adyen``, ``generic``) on a loopback port with those units and
    faults, and returns a :class:`SimulatedBackend`: its API URL, a ready backends file (0600)
    for ``--backends``, and the simulator itself to inspect its state.

Example::

    def test_release(backend_simulator, adb_terminal):
        tms = backend_simulator("paxstore", "0820533061=bound")
        # adb+sim://activated?model=pax-a920&tms={tms.url} syncs with it
        ...
        assert tms.simulator.terminals["0820533061"].state == "unbound"

Every simulator a factory starts is stopped when the test ends, including when it fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .catalog import create_backend_simulator
from .server import BackendSimulator

__all__ = ["SimulatedBackend", "backend_simulator"]


@dataclass(frozen=True)
class SimulatedBackend:
    """A running simulated backend and how to reach it."""

    kind: str
    url: str
    backends_file: Path
    simulator: BackendSimulator


@pytest.fixture
def backend_simulator(tmp_path: Path) -> Iterator[Callable[..., SimulatedBackend]]:
    """Factory of started simulated backends (see the module docstring)."""
    started: list[BackendSimulator] = []

    def start(kind: str, *terminals: str, **faults: Any) -> SimulatedBackend:
        simulator = create_backend_simulator(
            kind, terminals, {name: str(value) for name, value in faults.items()}
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
