"""A hostile Android POS against the real ADB driver and terminal: bounded memory and time.

The simulator's ``flood_output``, ``hang`` and ``hostile_text`` faults play a device that
streams without end, never answers, or dresses everything it says in escape sequences and odd
digits. Whatever it does, a command ends with a typed error past its cap or deadline, memory
stays small, and every record the terminal returns is clean text.
"""

from __future__ import annotations

import dataclasses
import time
import tracemalloc
from collections.abc import Callable

import pytest

from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.adb.errors import AdbTimeoutError
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.drivers.errors import DeadlineExceeded, ResponseTooLarge
from posdiag.drivers.text import REPLACEMENT
from posdiag.simulators.pytest_plugin import AdbDriverFactory, SimulatedAdb

Terminal = Callable[..., SimulatedAdb]
CAP = 256 * 1024
HANG = 3.0  # only a hang takes this long


BIDI_AND_INVISIBLE = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b")


def _is_clean(text: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in BIDI_AND_INVISIBLE for c in text)


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


@pytest.mark.parametrize("attach", ["memory", "usb"])
@pytest.mark.parametrize("v2", [True, False], ids=["shell_v2", "shell_v1"])
def test_flooding_shell_ends_at_the_cap_with_small_memory(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, v2: bool, attach: str
) -> None:
    features = ["shell_v2", "cmd"] if v2 else ["cmd"]
    sim = adb_terminal(
        flood_output=True, attach=attach, overrides={"device": {"features": features}}
    )
    driver = adb_driver(sim, max_response=CAP)
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge, match=r"sent more than 256 KB .*may be faulty"):
            driver.shell("getprop")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The cap plus one chunk in flight and the codec's buffer: a few MB at most, never the
    # unbounded growth of an endless stream.
    assert peak < 8 * 1024 * 1024
    # The stream was closed: the connection still serves the next command (which floods too).
    with pytest.raises(ResponseTooLarge):
        driver.shell("dumpsys battery")


def test_default_cap_bounds_a_flood_at_8_mb(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    # Issue 10: a flooding device took a check to 2.4 GB. With the default cap the command
    # ends past 8 MB of output and the peak stays a small multiple of it.
    driver = adb_driver(adb_terminal(flood_output=True), timeout=30)
    assert driver.max_response == 8 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge, match="sent more than 8 MB for the output of"):
            driver.shell("getprop")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 1024 * 1024


def test_file_larger_than_the_cap_is_refused(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    sim = adb_terminal(overrides={"files": {"/sdcard/big.bin": "x" * 300_000}})
    driver = adb_driver(sim, max_response=CAP)
    with pytest.raises(Exception, match="more than"):
        driver.read_file("/sdcard/big.bin")
    assert len(driver.read_file("/sdcard/big.bin", limit=400_000)) == 300_000


def test_hanging_shell_times_out(adb_terminal: Terminal, adb_driver: AdbDriverFactory) -> None:
    driver = adb_driver(adb_terminal(hang=True), timeout=0.3)
    started = time.monotonic()
    with pytest.raises(AdbTimeoutError):
        driver.shell("getprop")
    assert time.monotonic() - started < HANG


def test_deadline_cuts_a_hanging_device_short(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    driver = adb_driver(adb_terminal(hang=True), timeout=60)
    driver.set_deadline(time.monotonic() + 0.3)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="the terminal did not finish in time"):
        driver.shell("getprop")
    assert 0.25 < time.monotonic() - started < 1.3


def test_deadline_ends_a_flood_while_the_device_keeps_sending(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    driver = adb_driver(adb_terminal(flood_output=True), timeout=60, max_response=1 << 40)
    driver.set_deadline(time.monotonic() + 0.3)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        driver.shell("getprop")
    assert time.monotonic() - started < 1.3


def test_deadline_can_be_lifted(adb_terminal: Terminal, adb_driver: AdbDriverFactory) -> None:
    driver = adb_driver(adb_terminal())
    driver.set_deadline(time.monotonic() - 1)
    with pytest.raises(DeadlineExceeded):
        driver.shell("id")
    driver.set_deadline(None)
    assert "uid=2000" in driver.shell("id").text


def test_deadline_must_be_finite(adb_terminal: Terminal, adb_driver: AdbDriverFactory) -> None:
    driver = adb_driver(adb_terminal())
    with pytest.raises(ValueError, match="finite"):
        driver.set_deadline(float("nan"))


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 86_401.0])
def test_driver_refuses_absurd_timeouts(value: float, adb_terminal: Terminal) -> None:
    sim = adb_terminal()
    with pytest.raises(ValueError, match="timeout"):
        AdbDriver(sim.transport(), timeout=value)


def _terminal(sim: SimulatedAdb, driver: AdbDriver) -> AdbTerminal:
    return AdbTerminal(driver, "adb+sim://activated", usb_serial=sim.state.serial)


def test_hostile_text_reaches_the_agent_clean(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    sim = adb_terminal("activated", model="sunmi-p2", hostile_text=True)
    terminal = _terminal(sim, adb_driver(sim, open=False))
    records = [
        terminal.identify(),
        terminal.firmware(),
        terminal.network(),
        terminal.activation(),
        terminal.merchant_data(),
        terminal.health(),
    ]
    with pytest.raises(Exception, match="battery"):
        terminal.battery()  # "8²" is no battery level: unsupported, not a crash
    texts = [s for record in records for s in _strings(record)] + terminal.facts().errors
    assert texts
    assert all(_is_clean(t) and "\x1b" not in t and len(t) <= 512 for t in texts), [
        t for t in texts if not _is_clean(t)
    ][:3]
    # The fault did fire: the parsers' cleaning left its mark where bidi override and NUL were.
    assert terminal.facts().props["ro.product.model"] == f"P2_PRO{REPLACEMENT}x{REPLACEMENT}"
    identity = records[0]
    assert identity.model is not None and identity.model.startswith("P2")
    assert "pwned" not in identity.model and "[31m" not in identity.model


def test_hostile_network_ids_do_not_crash_the_wipe(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    # `cmd wifi list-networks` lists a network "²": str.isdigit() says yes, int() says no.
    sim = adb_terminal("activated", hostile_text=True)
    assert sim.state.wifi.saved, "the scenario needs saved networks to forget"
    terminal = _terminal(sim, adb_driver(sim, open=False))
    steps = {step.name: step for step in terminal.wipe_plan()}
    steps["forget_wifi"].run()
    assert steps["forget_wifi"].done()
    assert sim.state.wifi.saved == []
