"""A hostile ZVT terminal against the real driver and terminal: bounded memory and time.

The simulator's ``endless_status`` (intermediate status forever, each within T4),
``flood_print`` (print lines forever) and ``hostile_text`` faults play a terminal that never
finishes or says the worst CP437 can hold. Each command still ends, with a typed error past its
ceiling, cap or the terminal-wide deadline, and every record is clean text.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest

from posdiag.drivers.errors import (
    AddressError,
    DeadlineExceeded,
    ResponseTooLarge,
    TransportTimeout,
)
from posdiag.drivers.zvt.driver import ZvtDriver, ZvtLimits, ZvtTimers
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.pytest_plugin import TEST_TIMERS, SimulatedZvt

Terminal = Callable[..., SimulatedZvt]
HANG = 3.0  # only a hang takes this long


def _driver(sim: SimulatedZvt, limits: ZvtLimits | None = None, **timers: float) -> ZvtDriver:
    driver = ZvtDriver(
        sim.transport(),
        sim.link,
        password=sim.state.password,
        timers=dataclasses.replace(TEST_TIMERS, **timers),
        limits=limits,
    )
    driver.open()
    return driver


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in _strings(getattr(value, f.name))]
    if isinstance(value, tuple | list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    return []


def _is_clean(text: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


@pytest.mark.parametrize("attach", ["memory", "tcp"])
def test_endless_status_ends_at_the_status_count(zvt_terminal: Terminal, attach: str) -> None:
    sim = zvt_terminal("fresh", attach=attach, endless_status=True)
    driver = _driver(sim, ZvtLimits(max_intermediate=50))
    try:
        started = time.monotonic()
        with pytest.raises(TransportTimeout, match=r"kept reporting progress \(51 status"):
            driver.status_enquiry()
        assert time.monotonic() - started < HANG
        # The driver dropped the line: nothing more is read as this command's answer.
        assert not driver.transport.is_open
    finally:
        driver.close()


def test_endless_status_ends_at_the_command_ceiling(zvt_terminal: Terminal) -> None:
    sim = zvt_terminal("fresh", endless_status=True, time_scale="0.05")  # one status per 50 ms
    driver = _driver(sim, ZvtLimits(max_command_s=0.4))
    try:
        started = time.monotonic()
        with pytest.raises(TransportTimeout, match=r"did not finish Status-Enquiry within 0\.4 s"):
            driver.status_enquiry()
        elapsed = time.monotonic() - started
        assert 0.35 < elapsed < HANG
    finally:
        driver.close()


def test_deadline_ends_endless_status_within_a_second(zvt_terminal: Terminal) -> None:
    sim = zvt_terminal("fresh", endless_status=True)
    driver = _driver(sim, ZvtLimits(max_intermediate=10**9))
    try:
        driver.set_deadline(time.monotonic() + 0.3)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="the terminal did not finish in time"):
            driver.status_enquiry()
        assert time.monotonic() - started < 1.3
    finally:
        driver.close()


def test_flood_of_print_lines_ends_at_the_line_cap(zvt_terminal: Terminal) -> None:
    sim = zvt_terminal("fresh", flood_print=True)
    driver = _driver(sim, ZvtLimits(max_print_lines=200))
    try:
        with pytest.raises(ResponseTooLarge, match="printed more than 200 lines"):
            driver.print_system_configuration()
    finally:
        driver.close()


def test_flood_of_bytes_ends_at_the_byte_cap(zvt_terminal: Terminal) -> None:
    sim = zvt_terminal("fresh", flood_print=True)
    driver = _driver(sim, ZvtLimits(max_answer_bytes=8 * 1024))
    try:
        with pytest.raises(ResponseTooLarge, match="sent more than 8 KB for one command"):
            driver.print_system_configuration()
    finally:
        driver.close()


def test_default_limits() -> None:
    limits = ZvtLimits()
    assert (limits.max_command_s, limits.max_intermediate) == (300.0, 2_000)
    assert (limits.max_print_lines, limits.max_answer_bytes) == (10_000, 4 * 1024 * 1024)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -0.5, 86_401.0])
def test_timers_refuse_absurd_values(value: float) -> None:
    with pytest.raises(AddressError, match="t4"):
        ZvtTimers(t4=value)
    with pytest.raises(AddressError, match="max_command_s"):
        ZvtLimits(max_command_s=value)


def test_hostile_text_reaches_the_agent_clean(zvt_terminal: Terminal) -> None:
    sim = zvt_terminal("activated", hostile_text=True)
    terminal = ZvtTerminal(_driver(sim), "zvt+sim://activated")
    try:
        records = [
            terminal.identify(),
            terminal.activation(),
            terminal.firmware(),
            terminal.network(),
            terminal.merchant_data(),
            terminal.health(),
        ]
        texts = [s for record in records for s in _strings(record)] + terminal.facts().errors
        assert texts
        bad = [t for t in texts if not _is_clean(t) or "[31m" in t or len(t) > 512]
        assert bad == []
        assert records[1].state.value == "activated"  # the meaning survived the dressing
        status = terminal.facts().status
        assert status is not None and "\x1b[2J" in (status.device_name or "")  # it did fire
    finally:
        terminal.close()


def test_deadline_passes_through_the_terminal(zvt_terminal: Terminal) -> None:
    sim = zvt_terminal("activated", endless_status=True)
    terminal = ZvtTerminal(_driver(sim, ZvtLimits(max_intermediate=10**9)), "zvt+sim://x")
    try:
        terminal.set_deadline(time.monotonic() + 0.3)
        with pytest.raises(DeadlineExceeded):
            terminal.identify()
    finally:
        terminal.close()
