"""The simulated bus: terminals keep their state across plugs, and a pull kills open links."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posdiag.agent.connect import open_terminal
from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.policy import load_policy
from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import AddressError, PosdiagError, TransportError
from posdiag.simulators.bus import SimulatedBus


@pytest.fixture
def bus() -> Iterator[SimulatedBus]:
    with SimulatedBus() as simulated:
        yield simulated


def check(address: str) -> str:
    try:
        terminal = open_terminal(parse_address(address))
    except TransportError:
        return "unreachable"  # the ADB link is made when the terminal object is built
    return inspect_terminal(terminal, load_policy(None)).verdict.status.value


@pytest.mark.parametrize(
    "address", ["zvt+sim://activated", "adb+sim://activated?model=sunmi-p2"]
)
def test_unplugged_terminal_is_not_listed_and_cannot_be_opened(
    bus: SimulatedBus, address: str
) -> None:
    on_bus = bus.add(address)
    assert [f.address for f in bus.discover()] == [on_bus]
    assert check(on_bus) == "wipe_required"
    bus.unplug(on_bus)
    assert bus.discover() == [] and not bus.plugged(on_bus)
    assert check(on_bus) == "unreachable"
    bus.plug(on_bus)
    assert check(on_bus) == "wipe_required"


def test_state_survives_a_replug(bus: SimulatedBus) -> None:
    on_bus = bus.add("zvt+sim://activated")
    terminal = open_terminal(parse_address(on_bus))
    for step in terminal.wipe_plan():
        if step.name != "settle":
            step.run()
    terminal.close()
    bus.unplug(on_bus)
    bus.plug(on_bus)
    assert check(on_bus) == "ready"  # the same simulator, wiped: not a fresh activated one


def test_pulling_the_cable_breaks_an_open_link(bus: SimulatedBus) -> None:
    on_bus = bus.add("adb+sim://activated?model=pax-a920")
    terminal = open_terminal(parse_address(on_bus))
    assert terminal.identify().serial
    bus.unplug(on_bus)
    with pytest.raises(TransportError):
        terminal.identify()
        terminal.wipe_plan()[0].run()
    terminal.close()


def test_every_terminal_is_its_own(bus: SimulatedBus) -> None:
    first = bus.add("zvt+sim://fresh")
    second = bus.add("zvt+sim://fresh")
    assert first != second and bus.engine(first) is not bus.engine(second)
    assert bus.addresses() == [first, second]


def test_bad_addresses_are_refused(bus: SimulatedBus) -> None:
    with pytest.raises(AddressError, match="not a simulated terminal"):
        bus.add("zvt+tcp://127.0.0.1:20007")
    with pytest.raises(AddressError, match="unknown simulated scenario"):
        bus.add("zvt+sim://no-such-scenario")
    with pytest.raises(PosdiagError, match="not on this bus"):
        bus.unplug("zvt+sim://fresh?bus=00000000")


def test_closing_the_bus_forgets_its_terminals() -> None:
    bus = SimulatedBus()
    on_bus = bus.add("zvt+sim://fresh")
    bus.close()
    assert bus.discover() == []
    assert check(on_bus) == "unreachable"
