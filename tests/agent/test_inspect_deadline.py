"""A check ends by its deadline, whatever the terminal does: ``unreachable``, with the reason.

Real drivers against simulators that never finish (ZVT intermediate status forever, an ADB
device that never answers a shell or floods it): the check returns within about a second of
its deadline, and the verdict says in words what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from posdiag.agent.inspect import DEFAULT_DEADLINE_S, inspect_terminal
from posdiag.agent.policy import load_policy
from posdiag.agent.report import VerdictStatus
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.drivers.errors import AddressError
from posdiag.drivers.zvt.driver import ZvtDriver, ZvtLimits
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.pytest_plugin import (
    TEST_TIMERS,
    AdbDriverFactory,
    SimulatedAdb,
    SimulatedZvt,
)


def _zvt(sim: SimulatedZvt) -> ZvtTerminal:
    driver = ZvtDriver(
        sim.transport(),
        sim.link,
        password=sim.state.password,
        timers=TEST_TIMERS,
        limits=ZvtLimits(max_intermediate=10**9),  # only the deadline can end it
    )
    return ZvtTerminal(driver, f"zvt+sim://{sim.scenario}")


def test_defaults_per_family() -> None:
    assert DEFAULT_DEADLINE_S == {"zvt": 120.0, "adb": 90.0, "nexo": 120.0}


def test_endless_zvt_terminal_is_unreachable_at_the_deadline(
    zvt_terminal: Callable[..., SimulatedZvt],
) -> None:
    terminal = _zvt(zvt_terminal("activated", endless_status=True))
    started = time.monotonic()
    report = inspect_terminal(terminal, load_policy(), simulated=True, deadline_s=0.5)
    assert time.monotonic() - started < 1.5
    assert report.verdict is not None
    assert report.verdict.status is VerdictStatus.UNREACHABLE
    assert report.verdict.reasons == (
        "the terminal did not finish in time (0.5 s): restart it and try again",
    )


@pytest.mark.parametrize("fault", ["hang", "flood_output"])
def test_stuck_adb_device_is_unreachable_at_the_deadline(
    adb_terminal: Callable[..., SimulatedAdb], adb_driver: AdbDriverFactory, fault: str
) -> None:
    sim = adb_terminal("activated", **{fault: True})
    driver = adb_driver(sim, open=False, timeout=60, max_response=1 << 40)
    terminal = AdbTerminal(driver, "adb+sim://activated")
    started = time.monotonic()
    report = inspect_terminal(terminal, load_policy(), simulated=True, deadline_s=0.5)
    assert time.monotonic() - started < 1.5
    assert report.verdict is not None
    assert report.verdict.status is VerdictStatus.UNREACHABLE
    assert report.verdict.reasons == (
        "the terminal did not finish in time (0.5 s): restart it and try again",
    )


def test_a_healthy_check_is_unaffected_and_keep_open_lifts_the_deadline(
    zvt_terminal: Callable[..., SimulatedZvt],
) -> None:
    terminal = _zvt(zvt_terminal("activated"))
    report = inspect_terminal(terminal, load_policy(), keep_open=True, deadline_s=30)
    try:
        assert report.verdict is not None
        assert report.verdict.status is not VerdictStatus.UNREACHABLE
        assert terminal.driver.deadline.at is None  # the wipe sets its own
    finally:
        terminal.close()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_absurd_deadline_is_refused(
    zvt_terminal: Callable[..., SimulatedZvt], value: float
) -> None:
    terminal = _zvt(zvt_terminal("activated"))
    with pytest.raises(AddressError, match="deadline"):
        inspect_terminal(terminal, load_policy(), deadline_s=value)
