"""The simulated bus stays below the agent: its discovery records come from the drivers.

Layers: simulators may import drivers, never the agent. The bus reports plugged-in terminals as
:class:`posdiag.drivers.found.Found`, the same record the agent's discovery of real ports uses
(and still exports as ``posdiag.agent.discovery.Found`` for its callers).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import posdiag.simulators
from posdiag.drivers.found import Found
from posdiag.simulators.bus import SimulatedBus

SIMULATORS = Path(posdiag.simulators.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at any depth (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_simulator_module_imports_the_agent() -> None:
    offenders = {
        str(path.relative_to(SIMULATORS)): sorted(
            m for m in imported_modules(path) if m.startswith("posdiag.agent")
        )
        for path in SIMULATORS.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_bus_discovers_without_loading_the_agent() -> None:
    code = (
        "import sys\n"
        "from posdiag.simulators.bus import SimulatedBus\n"
        "with SimulatedBus() as bus:\n"
        "    bus.add('zvt+sim://fresh')\n"
        "    assert len(bus.discover()) == 1\n"
        "assert not [m for m in sys.modules if m.startswith('posdiag.agent')], 'agent loaded'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_bus_and_discovery_share_one_record() -> None:
    from posdiag.agent.discovery import Found as AgentFound

    assert AgentFound is Found
    with SimulatedBus() as bus:
        address = bus.add("adb+sim://fresh?model=sunmi-p2")
        (found,) = bus.discover()
    assert isinstance(found, Found)
    assert (found.address, found.family, found.kind) == (address, "adb", "simulator")
