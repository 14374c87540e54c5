"""The simulated ZVT terminal's busy time: the protocol floor the benchmark measures checks against.

Busy time is every delay the simulator models: 11 bit times per byte at the line speed for what
it sends and what it receives (serial only), its latency before each answer, and the delays of
its replies. It must add up exactly, and a session can never be faster than it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.simulators.pytest_plugin import SimulatedZvt
from posdiag.simulators.zvt.engine import ZvtSimulator


def settled(simulator: ZvtSimulator) -> tuple[float, int, int]:
    """Busy time and byte counts once the simulator has read the ECR's last ACK."""
    last = (-1.0, -1, -1)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        now = (simulator.busy_time, simulator.bytes_sent, simulator.bytes_received)
        if now == last:
            return now
        last = now
        time.sleep(0.05)
    return last


def test_serial_busy_time_is_line_time_both_ways_plus_latency(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    scale, latency, baud = 0.01, 0.05, 9600
    terminal = zvt_terminal("activated", time_scale=scale, latency=latency, baud=baud)
    driver = zvt_driver(terminal)
    simulator = terminal.simulator
    simulator.reset_busy_time()

    driver.log_off()  # one command, answered by 80 00 alone: no sequence, no host delay

    busy, sent, received = settled(simulator)
    assert sent >= 9 + 1  # the 80 00 00 frame and the ACK for the ECR's frame
    assert received >= 9 + 1  # the Log-Off frame and the ECR's ACK for our 80 00
    line = (sent + received) * 11 / baud * scale
    assert busy == pytest.approx(line + latency * scale)


def test_tcp_busy_time_has_no_line_time(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    terminal = zvt_terminal("activated", attach="tcp", time_scale=0.01, latency=0.05)
    driver = zvt_driver(terminal)
    terminal.simulator.reset_busy_time()

    driver.log_off()

    busy, sent, received = settled(terminal.simulator)
    assert sent > 0 and received > 0
    assert busy == pytest.approx(0.05 * 0.01)


def test_busy_time_is_a_floor_for_the_session(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    terminal = zvt_terminal("activated", time_scale=0.05, baud=9600)
    driver = zvt_driver(terminal)
    terminal.simulator.reset_busy_time()
    started = time.monotonic()

    driver.register()
    driver.status_enquiry()
    driver.print_system_configuration()

    wall = time.monotonic() - started
    busy = terminal.simulator.busy_time
    assert busy > 0
    assert busy <= wall  # nothing reaches the ECR faster than the wire and the terminal allow


def test_time_scale_zero_counts_bytes_but_no_time(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    terminal = zvt_terminal("activated")  # the fixture's default time_scale is 0
    driver = zvt_driver(terminal)
    driver.register()
    busy, sent, received = settled(terminal.simulator)
    assert busy == 0.0
    assert sent > 0 and received > 0


def test_reset_busy_time_starts_afresh(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    terminal = zvt_terminal("activated", time_scale=0.01)
    driver = zvt_driver(terminal)
    driver.register()
    settled(terminal.simulator)
    assert terminal.simulator.busy_time > 0

    terminal.simulator.reset_busy_time()

    simulator = terminal.simulator
    assert (simulator.busy_time, simulator.bytes_sent, simulator.bytes_received) == (0.0, 0, 0)
