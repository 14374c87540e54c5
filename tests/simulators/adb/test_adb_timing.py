"""Realistic timing for simulated Android terminals: ``latency`` and ``time_scale`` options.

Named as for ZVT, so ``adb+sim://activated?latency=0.03&time_scale=1`` (and ``posdiag simulate
adb --time-scale``) set how long the device thinks before each command's answer. The latency is
adbd's fork+exec of a shell: paid once per shell stream (one command line, however many
``;``-separated commands it holds), not for sync, and concurrently for streams opened together.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from posdiag.drivers.adb.codec import AdbConnection, Role, StreamClosed, StreamData
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.adb.errors import AdbCommandError
from posdiag.drivers.adb.protocol import NEED_DATA, build_banner
from posdiag.drivers.transport.memory import MemoryTransport
from posdiag.simulators.adb.engine import AdbSimulator
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


# --- what the latency stands for: adbd's fork+exec of a shell, once per stream ------------------

LATENCY = 0.15
"""Seconds of the simulated unit's shell start in the tests below (time_scale 1)."""


@pytest.fixture
def timed() -> Iterator[tuple[AdbSimulator, MemoryTransport]]:
    simulator = create_adb("activated", "pax-a920", {"latency": str(LATENCY), "time_scale": "1"})
    attachment = MemoryAttachment(simulator)
    yield simulator, attachment.start()
    attachment.stop()


def test_a_command_line_pays_the_latency_once_not_per_command(
    timed: tuple[AdbSimulator, MemoryTransport],
) -> None:
    simulator, transport = timed
    driver = AdbDriver(transport)
    driver.open()
    line = "; ".join(["getprop ro.serialno", "dumpsys battery", "pm list packages"] * 4)
    started = time.monotonic()
    output = driver.shell(line)
    took = time.monotonic() - started
    assert output.text.count("package:") > 0
    assert LATENCY * 0.9 <= took < 2 * LATENCY  # one shell process, twelve commands
    assert simulator.opened["shell"] == 1


def test_sync_costs_no_shell_start(timed: tuple[AdbSimulator, MemoryTransport]) -> None:
    simulator, transport = timed
    driver = AdbDriver(transport)
    driver.open()
    started = time.monotonic()
    with pytest.raises(AdbCommandError):
        driver.read_file("/sdcard/no-such-file")
    assert time.monotonic() - started < LATENCY / 2  # adbd serves sync in a thread: no fork
    assert simulator.opened == {"sync": 1}


def test_shells_opened_together_start_together(
    timed: tuple[AdbSimulator, MemoryTransport],
) -> None:
    """Three streams opened at once: each waits its own latency, none behind another's."""
    simulator, transport = timed
    conn = AdbConnection(Role.HOST, features=("shell_v2",))
    conn.send_connect(build_banner("host", {}, ("shell_v2",)))
    transport.write(conn.data_to_send())
    while not conn.negotiated or conn.peer is None:
        conn.receive_data(transport.read(1 << 20, 1.0))
        while conn.next_event() is not NEED_DATA:
            pass
    started = time.monotonic()
    ids = [conn.open_stream(f"shell,v2,raw:echo {n}") for n in range(3)]
    transport.write(conn.data_to_send())
    finished: dict[int, float] = {}
    output: dict[int, bytes] = dict.fromkeys(ids, b"")
    while len(finished) < len(ids) and time.monotonic() - started < 5 * LATENCY:
        conn.receive_data(transport.read(1 << 20, 0.05))
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, StreamData):
                output[event.local_id] += event.data
            elif isinstance(event, StreamClosed):
                finished[event.local_id] = time.monotonic() - started
        transport.write(conn.data_to_send())
    assert sorted(finished) == sorted(ids)
    assert max(finished.values()) < 1.8 * LATENCY  # together, not 3 × LATENCY one after another
    assert min(finished.values()) >= 0.9 * LATENCY
    assert all(f"{n}\n".encode() in output[i] for n, i in enumerate(ids))
    assert simulator.opened["shell"] == 3


def test_a_stream_closed_before_its_shell_started_leaves_the_link_working(
    timed: tuple[AdbSimulator, MemoryTransport],
) -> None:
    simulator, transport = timed
    driver = AdbDriver(transport)
    driver.open()
    conn = driver._conn  # the driver's own connection, to abandon a stream it opened
    local_id = conn.open_stream("shell,v2,raw:getprop ro.serialno")
    transport.write(conn.data_to_send())
    time.sleep(LATENCY / 3)
    conn.receive_data(transport.read(1 << 20, 0.5))  # its OKAY
    while conn.next_event() is not NEED_DATA:
        pass
    conn.close_stream(local_id)
    transport.write(conn.data_to_send())
    assert driver.shell("echo still here").text == "still here\n"
    assert simulator.opened["shell"] == 2
