"""Realistic timing for simulated Android terminals: ``latency`` and ``time_scale`` options.

Named as for ZVT, so ``adb+sim://activated?latency=0.03&time_scale=1`` (and ``posdiag simulate
adb --time-scale``) set how long the device thinks before each command's answer.
"""

from __future__ import annotations

import time

from posdiag.drivers.adb.driver import AdbDriver
from posdiag.simulators.attach import MemoryAttachment
from posdiag.simulators.registry import create_adb


def test_latency_and_time_scale_options_set_the_timing() -> None:
    state = create_adb("activated", "pax-a920", {"latency": "0.03", "time_scale": "0.5"}).state
    assert (state.latency, state.scale) == (0.03, 0.5)
    default = create_adb("activated", "pax-a920").state
    assert (default.latency, default.scale) == (0.0, 1.0)  # as fast as possible unless asked


def test_each_command_waits_the_scaled_latency() -> None:
    simulator = create_adb("activated", "pax-a920", {"latency": "0.2", "time_scale": "0.25"})
    attachment = MemoryAttachment(simulator)
    driver = AdbDriver(attachment.start())
    try:
        driver.open()
        started = time.monotonic()
        for _ in range(3):
            driver.shell("getprop ro.serialno")
        took = time.monotonic() - started
    finally:
        driver.close()
        attachment.stop()
    assert took >= 3 * 0.2 * 0.25 * 0.9  # a lower bound only: a loaded machine is never faster
