"""The backend_simulator fixture, and simulated terminals syncing with their simulated TMS."""

from __future__ import annotations

import stat
from collections.abc import Callable

import pytest

from posdiag.drivers.backend.config import load_backends
from posdiag.drivers.backend.model import Binding, TerminalKey
from posdiag.drivers.backend.registry import open_backend
from posdiag.drivers.errors import AddressError
from posdiag.simulators.backend.pytest_fixtures import SimulatedBackend
from posdiag.simulators.registry import create_adb

Factory = Callable[..., SimulatedBackend]


@pytest.mark.parametrize("kind", ["paxstore", "adyen", "generic"])
def test_the_fixture_gives_a_backend_a_stock_connector_can_use(
    backend_simulator: Factory, kind: str
) -> None:
    tms = backend_simulator(kind, "ABC00000001=bound", "ABC00000002=unbound")
    assert stat.S_IMODE(tms.backends_file.stat().st_mode) == 0o600
    (config,) = load_backends(tms.backends_file)
    backend = open_backend(config)
    try:
        bound = backend.lookup(TerminalKey(serial="ABC00000001"))
        free = backend.lookup(TerminalKey(serial="ABC00000002"))
    finally:
        backend.close()
    assert (bound.binding, free.binding) == (Binding.BOUND, Binding.UNBOUND)


def test_a_terminal_enrols_at_start_and_drops_its_device_owner_after_a_release(
    backend_simulator: Factory,
) -> None:
    tms = backend_simulator("paxstore", "1170000001=bound")
    simulator = create_adb("activated", "pax-a920", {"tms": tms.url, "time_scale": "0"})
    state = simulator.state
    serial = state.vendor_serial
    assert serial in tms.simulator.terminals  # registered, bound, as an enrolled unit is
    assert state.device_owner
    shell = simulator.shell
    assert "Device Owner" in shell.run("dumpsys device_policy").stdout
    with tms.simulator.lock:
        tms.simulator.begin_release(tms.simulator.terminals[serial])
    assert "Device Owner" not in shell.run("dumpsys device_policy").stdout
    assert not any(a[1].startswith("com.pax.market") for a in state.accounts)


def test_a_tms_that_is_down_changes_nothing_on_the_terminal() -> None:
    simulator = create_adb("activated", "pax-a920", {"tms": "http://127.0.0.1:9"})
    assert simulator.state.device_owner
    assert "Device Owner" in simulator.shell.run("dumpsys device_policy").stdout


def test_a_tms_option_that_is_not_a_url_is_refused() -> None:
    with pytest.raises(AddressError):
        create_adb("activated", "pax-a920", {"tms": "file:///etc/passwd"})
