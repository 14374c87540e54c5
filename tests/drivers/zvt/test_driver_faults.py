"""The ZVT driver's timers and retries against a misbehaving simulated terminal.

PA00P016 §3: every frame is answered with ACK/NAK; a NAK, a frame stalled past T1 or no ACK
within T2 makes the sender repeat, at most twice; T3 bounds the wait for ``80 00`` and T4 the
wait for the completion, restarted by every ``04 FF``. The simulator injects the faults on its
side of the wire; memory manipulators corrupt, drop and record what the driver writes.

Timers are the fixture's short ones (T1 0.2 s, T2 0.5 s, T3 1 s, T4 5 s) so the suite stays
fast; elapsed times are asserted as lower bounds (never "fast enough" on a loaded machine) plus
generous upper bounds that only catch hangs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import pytest

from posdiag.drivers.errors import PosdiagError, TransportClosed
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.errors import (
    ZvtProtocolError,
    ZvtTimeoutError,
    ZvtTransmissionError,
)
from posdiag.drivers.zvt.framing import ACK, NAK, encode_serial_frame
from posdiag.drivers.zvt.messages import IntermediateStatus, PositiveAck, StatusEnquiry
from posdiag.simulators.pytest_plugin import TEST_TIMERS, SimulatedZvt

T1, T2, T3 = TEST_TIMERS.t1, TEST_TIMERS.t2, TEST_TIMERS.t3
HANG = 3.0  # beyond any expected wait: only a hang takes this long
POSITIVE_ACK_FRAME = encode_serial_frame(PositiveAck().encode())
STATUS_ENQUIRY_FRAME = encode_serial_frame(
    StatusEnquiry(password="000000", service_byte=0x04).encode()
)

Terminal = Callable[..., SimulatedZvt]
Driver = Callable[..., ZvtDriver]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    assert [t.name for t in threading.enumerate() if t not in threads_before] == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


class Recorder:
    """A memory manipulator that records every write and may rewrite it.

    Args:
        rewrite: called with the write's index among frames (writes starting with DLE STX)
            and its bytes; returns what is delivered. Single ACK/NAK bytes pass untouched.
    """

    def __init__(self, rewrite: Callable[[int, bytes], bytes] | None = None) -> None:
        self.writes: list[bytes] = []
        self.frames = 0
        self.rewrite = rewrite

    def __call__(self, data: bytes) -> Iterable[bytes]:
        self.writes.append(data)
        if self.rewrite is not None and data[:2] == b"\x10\x02":
            index, self.frames = self.frames, self.frames + 1
            return [self.rewrite(index, data)]
        return [data]

    def count(self, wire: bytes) -> int:
        """How many writes were exactly ``wire``."""
        return sum(1 for write in self.writes if write == wire)


def corrupt(frame: bytes) -> bytes:
    """Flip the CRC's high byte, as line noise would."""
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


def elapsed(since: float) -> float:
    return time.monotonic() - since


# --- frames from the terminal that arrive damaged ------------------------------------------------


@pytest.mark.parametrize("attach", ["memory", "pty"])
def test_corrupt_crc_once_is_nakked_and_repeated(
    zvt_terminal: Terminal, zvt_driver: Driver, attach: str
) -> None:
    device = Recorder()
    extra = {"manipulator_device": device} if attach == "memory" else {}
    terminal = zvt_terminal("activated", attach=attach, corrupt_crc=1, **extra)
    driver = zvt_driver(terminal)

    completion = driver.register()

    assert completion.bmps()
    assert terminal.state.faults.corrupt_crc == 0  # the fault fired
    assert terminal.state.registered
    if attach == "memory":
        # The 80 00 went out twice: once with a bad CRC, once repeated after our NAK.
        assert device.count(corrupt(POSITIVE_ACK_FRAME)) == 1
        assert device.count(POSITIVE_ACK_FRAME) == 1
    assert driver.status_enquiry().terminal_id == terminal.state.terminal_id


def test_corrupt_crc_every_time_ends_in_a_typed_error(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    # We NAK each bad frame; the PT repeats twice and both sides give up (PA00P016 §3.5): the
    # driver reports a transmission error at the third bad frame instead of waiting out T3.
    device = Recorder()
    terminal = zvt_terminal("activated", corrupt_crc=5, manipulator_device=device)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    with pytest.raises(PosdiagError) as caught:
        driver.register()

    assert type(caught.value) is ZvtTransmissionError
    assert "arrived corrupted" in str(caught.value)
    assert elapsed(started) < T3
    assert terminal.state.faults.corrupt_crc == 2  # three attempts: the first and two repeats
    assert device.count(corrupt(POSITIVE_ACK_FRAME)) == 3


def test_stall_mid_frame_past_t1_is_nakked_and_repeated(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    host = Recorder()
    terminal = zvt_terminal("activated", stall_mid_frame=T1 * 3, manipulator_host=host)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    driver.register()

    assert elapsed(started) >= T1 * 3 * 0.95
    assert terminal.state.faults.stall_mid_frame == 0
    assert bytes([NAK]) in host.writes  # T1 expired inside the frame
    assert terminal.state.registered


def test_stall_mid_frame_over_a_pty(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    terminal = zvt_terminal("activated", attach="pty", stall_mid_frame=T1 * 3)
    driver = zvt_driver(terminal)
    started = time.monotonic()
    assert driver.status_enquiry().serial == terminal.state.serial
    assert elapsed(started) >= T1 * 3 * 0.95
    assert terminal.state.faults.stall_mid_frame == 0


def test_stall_shorter_than_t1_is_just_slow(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    host = Recorder()
    terminal = zvt_terminal("activated", stall_mid_frame=T1 / 4, manipulator_host=host)
    driver = zvt_driver(terminal)
    driver.register()
    assert bytes([NAK]) not in host.writes


@pytest.mark.parametrize("attach", ["memory", "pty", "tcp"])
def test_split_writes(zvt_terminal: Terminal, zvt_driver: Driver, attach: str) -> None:
    device = Recorder()
    extra = {"manipulator_device": device} if attach == "memory" else {}
    terminal = zvt_terminal("unsettled", attach=attach, split_writes=1, **extra)
    driver = zvt_driver(terminal)
    driver.register()

    totals = driver.turnover_totals()
    lines = driver.print_system_configuration()

    assert totals is not None
    assert totals.total_cents == 4757
    assert any(terminal.state.serial in line for line in lines)
    if attach == "memory":
        assert device.writes
        assert max(len(write) for write in device.writes) <= 3


@pytest.mark.parametrize("attach", ["memory", "pty"])
def test_garbage_before_answers_is_skipped(
    zvt_terminal: Terminal, zvt_driver: Driver, attach: str
) -> None:
    terminal = zvt_terminal("unsettled", attach=attach, garbage="fe3f00aa5a")
    driver = zvt_driver(terminal)
    driver.register()
    assert driver.status_enquiry().terminal_id == terminal.state.terminal_id
    totals = driver.turnover_totals()
    assert totals is not None
    assert totals.count == 3


# --- acknowledgements that go missing --------------------------------------------------------


def test_dropped_ack_makes_the_driver_repeat_after_t2(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    # The PT answers late, so the driver hears nothing within T2 and must repeat its frame;
    # the PT recognises the repeat and runs the command once.
    host = Recorder()
    terminal = zvt_terminal("activated", drop_ack=1, answer_delay=T2 * 1.6, manipulator_host=host)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    report = driver.status_enquiry()

    assert elapsed(started) >= T2 * 0.95
    assert report.terminal_id == terminal.state.terminal_id
    assert host.count(STATUS_ENQUIRY_FRAME) == 2
    assert terminal.state.faults.drop_ack == 0
    assert terminal.simulator.model.commands_seen == ["Status-Enquiry"]
    # The link is in step afterwards: the same command again is answered again.
    assert driver.status_enquiry() == report
    assert terminal.simulator.model.commands_seen == ["Status-Enquiry"] * 2


def test_dropped_ack_with_a_prompt_answer_needs_no_repeat(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    # The 80 00 proves the frame arrived, so waiting out T2 would only waste time.
    host = Recorder()
    terminal = zvt_terminal("activated", drop_ack=1, manipulator_host=host)
    driver = zvt_driver(terminal)
    started = time.monotonic()
    driver.status_enquiry()
    assert elapsed(started) < T2
    assert host.count(STATUS_ENQUIRY_FRAME) == 1


@pytest.mark.parametrize("attach", ["memory", "pty"])
def test_silent_terminal_is_a_transmission_error_after_three_attempts(
    zvt_terminal: Terminal, zvt_driver: Driver, attach: str
) -> None:
    host = Recorder()
    extra = {"manipulator_host": host} if attach == "memory" else {}
    terminal = zvt_terminal("activated", attach=attach, silent=1, **extra)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    with pytest.raises(ZvtTransmissionError) as caught:
        driver.status_enquiry()

    assert isinstance(caught.value, PosdiagError)
    assert "3 attempts" in str(caught.value)
    assert 3 * T2 * 0.95 <= elapsed(started) < 3 * T2 + HANG
    if attach == "memory":
        assert host.count(STATUS_ENQUIRY_FRAME) == 3


# --- frames from the driver that arrive damaged or not at all ----------------------------------


def test_driver_repeats_its_frame_after_a_nak(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    host = Recorder(lambda index, frame: corrupt(frame) if index == 0 else frame)
    device = Recorder()
    terminal = zvt_terminal("activated", manipulator_host=host, manipulator_device=device)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    report = driver.status_enquiry()

    assert elapsed(started) < T2  # a NAK is answered at once, not after T2
    assert report.serial == terminal.state.serial
    assert host.count(STATUS_ENQUIRY_FRAME) == 2  # the original (corrupted on the wire) + repeat
    assert device.writes[0] == bytes([NAK])
    assert bytes([ACK]) in device.writes
    assert terminal.simulator.model.commands_seen == ["Status-Enquiry"]


def test_driver_gives_up_after_two_repeats(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    host = Recorder(lambda index, frame: corrupt(frame))
    terminal = zvt_terminal("activated", manipulator_host=host)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    with pytest.raises(ZvtTransmissionError, match="NAK"):
        driver.status_enquiry()

    assert elapsed(started) < T2
    assert host.count(STATUS_ENQUIRY_FRAME) == 3
    assert terminal.simulator.model.commands_seen == []


def test_driver_repeats_a_lost_frame_after_t2(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    host = Recorder(lambda index, frame: b"" if index == 0 else frame)
    terminal = zvt_terminal("activated", manipulator_host=host)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    driver.status_enquiry()

    assert elapsed(started) >= T2 * 0.95
    assert host.count(STATUS_ENQUIRY_FRAME) == 2
    assert terminal.simulator.model.commands_seen == ["Status-Enquiry"]


# --- application timers ----------------------------------------------------------------------


@pytest.mark.parametrize("attach", ["memory", "tcp"])
def test_answer_later_than_t3_is_a_timeout(
    zvt_terminal: Terminal, zvt_driver: Driver, attach: str
) -> None:
    terminal = zvt_terminal("activated", attach=attach, answer_delay=T3 + 1.0)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    with pytest.raises(ZvtTimeoutError, match="T3") as caught:
        driver.status_enquiry()

    assert isinstance(caught.value, PosdiagError)
    assert T3 * 0.95 <= elapsed(started) < T3 + 1.0


def test_answer_within_t3_is_fine(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    terminal = zvt_terminal("activated", answer_delay=T3 / 3)
    driver = zvt_driver(terminal)
    assert driver.status_enquiry().terminal_id == terminal.state.terminal_id


def _slow_host(terminal: SimulatedZvt, host_latency: float) -> None:
    """Make the host dial-up take ``host_latency`` real seconds (other delays stay tiny)."""
    timing = terminal.state.timing
    timing.scale = 1.0
    timing.latency = 0.0
    timing.baud = 115200
    timing.host_latency = host_latency


def test_t4_expires_when_the_host_takes_too_long(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    terminal = zvt_terminal("activated")
    driver = zvt_driver(terminal, t4=1.0)
    driver.register()
    _slow_host(terminal, 2.0)
    started = time.monotonic()

    with pytest.raises(ZvtTimeoutError, match="T4"):
        driver.diagnosis()

    assert 0.95 <= elapsed(started) < 2.0


def _delay_intermediate_status(seconds: float) -> Recorder:
    wire = encode_serial_frame(IntermediateStatus(0x17).encode())

    def rewrite(index: int, frame: bytes) -> bytes:
        if frame == wire:
            time.sleep(seconds)  # runs in the simulator's thread: the PT is busy meanwhile
        return frame

    return Recorder(rewrite)


def test_t4_restarts_on_intermediate_status(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    # 80 00 ... 0.6 s ... 04 FF ... 0.6 s ... 06 0F: 1.2 s in all, more than T4 = 1 s, but
    # never 1 s without a sign of life, so the diagnosis must succeed.
    device = _delay_intermediate_status(0.6)
    terminal = zvt_terminal("activated", manipulator_device=device)
    driver = zvt_driver(terminal, t4=1.0)
    driver.register()  # config byte 8E asks for intermediate status
    _slow_host(terminal, 0.6)
    started = time.monotonic()

    result = driver.diagnosis()

    assert elapsed(started) >= 1.1
    assert result.host_reachable


def test_t4_is_not_restarted_without_intermediate_status(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    # The control for the test above: same 1.2 s, but registered without 0x08, so no 04 FF.
    terminal = zvt_terminal("activated")
    driver = zvt_driver(terminal, t4=1.0)
    driver.register(0x86)
    _slow_host(terminal, 1.2)
    with pytest.raises(ZvtTimeoutError, match="T4"):
        driver.diagnosis()


# --- wrong peers and pulled cables ------------------------------------------------------------


@pytest.mark.parametrize("attach", ["memory", "pty"])
def test_babbling_terminal_is_a_protocol_error(
    zvt_terminal: Terminal, zvt_driver: Driver, attach: str
) -> None:
    terminal = zvt_terminal("activated", attach=attach, babble=1)
    driver = zvt_driver(terminal)
    started = time.monotonic()

    with pytest.raises(ZvtProtocolError, match="not ZVT") as caught:
        driver.status_enquiry()

    assert isinstance(caught.value, PosdiagError)
    assert elapsed(started) < T3 + HANG


@pytest.mark.parametrize("attach", ["memory", "pty", "tcp", "url"])
def test_pulled_cable_is_a_typed_error(
    zvt_terminal: Terminal, zvt_driver: Driver, attach: str
) -> None:
    terminal = zvt_terminal("activated", attach=attach, disconnect_after=1)
    driver = zvt_driver(terminal)
    assert driver.status_enquiry().serial == terminal.state.serial
    started = time.monotonic()

    with pytest.raises(PosdiagError) as caught:
        driver.status_enquiry()

    assert isinstance(caught.value, TransportClosed)
    assert not isinstance(caught.value, OSError)
    assert elapsed(started) < T3  # noticed at once, not when a timer runs out
    assert terminal.simulator.commands_received == 2


def test_split_writes_over_tcp_link_in_memory(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    # Bare APDUs cut at arbitrary points (PA00P016 §4: the receiver must reassemble).
    terminal = zvt_terminal("unsettled", link=Link.TCP, split_writes=1)
    driver = zvt_driver(terminal)
    driver.register()
    result = driver.end_of_day()
    assert result.totals is not None
    assert result.totals.total_cents == 4757
    assert terminal.state.transactions == []


def test_t3_expiry_over_tcp_closes_the_connection(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    # PA00P016 §5.2.5: no answer within T3 aborts the command and the ECR closes the socket.
    # Left open, the late 80 00 + completion would be taken as the answer to the next command.
    terminal = zvt_terminal("unsettled", attach="tcp", answer_delay=T3 + 0.3)
    driver = zvt_driver(terminal)
    with pytest.raises(ZvtTimeoutError):
        driver.status_enquiry()
    assert not driver.transport.is_open
    with pytest.raises(TransportClosed):
        driver.turnover_totals()

    terminal.state.faults.answer_delay = 0.0
    driver.open()  # a new connection: nothing of the aborted command is left on it
    totals = driver.turnover_totals()
    assert totals is not None
    assert totals.total_cents == 4757
