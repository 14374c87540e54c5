"""The one transport contract, checked on every kind of link.

Protocol drivers are written against ``Transport`` and tested mostly on the memory link, so the
memory link must behave like the real ones: these tests run the same expectations over a memory
pair, TCP, a serial ``socket://`` URL and a real pty.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from serial.urlhandler import protocol_socket

from posdiag.drivers.errors import TransportClosed, TransportOpenError, TransportTimeout
from posdiag.drivers.transport.base import ReadExactTimeout, Transport
from posdiag.drivers.transport.memory import MemoryTransport
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.simulators.attach import FdTransport

KINDS = ["memory", "tcp", "serial-socket", "serial-pty"]
# How long a write may take to become readable on the other side (loopback, pty).
SETTLE = 0.05


@dataclass
class Link:
    """A connected pair: ``host`` is the cash-register side, ``device`` the terminal side."""

    kind: str
    host: Transport
    device: Transport
    # A serial line has no "closed" state the far end could see; ptys drop unread bytes on
    # hang-up, like a real cable being pulled.
    device_sees_host_close: bool = True
    host_drains_before_close: bool = True


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = set(os.listdir("/proc/self/fd"))
    yield
    leaked_threads = [t for t in threading.enumerate() if t not in threads_before]
    assert not leaked_threads
    assert len(os.listdir("/proc/self/fd")) <= len(fds_before)


def _loopback_listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(5)
    return listener


def _accept_pair(client: Transport, listener: socket.socket) -> tuple[Transport, Transport]:
    port = listener.getsockname()[1]
    try:
        client.open()
        conn, _ = listener.accept()
    finally:
        listener.close()
    conn.settimeout(None)
    device = TcpTransport.from_socket(conn, f"tcp server side of {port}")
    return client, device


def make_link(kind: str) -> tuple[Link, Callable[[], None]]:
    """Build a connected pair of the given kind and its extra cleanup."""
    if kind == "memory":
        host, device = MemoryTransport.pair()
        return Link(kind, host, device), lambda: None
    if kind == "tcp":
        listener = _loopback_listener()
        port = listener.getsockname()[1]
        host, device = _accept_pair(TcpTransport("127.0.0.1", port), listener)
        return Link(kind, host, device), lambda: None
    if kind == "serial-socket":
        listener = _loopback_listener()
        port = listener.getsockname()[1]
        host, device = _accept_pair(SerialTransport(f"socket://127.0.0.1:{port}"), listener)
        return Link(kind, host, device), lambda: None
    if kind == "serial-pty":
        master, slave = os.openpty()
        tty.setraw(slave)
        host = SerialTransport(os.ttyname(slave))
        host.open()
        device = FdTransport(master, "pty master")
        link = Link(
            kind, host, device, device_sees_host_close=False, host_drains_before_close=False
        )
        return link, lambda: os.close(slave)
    raise AssertionError(kind)


class _NoSleep:
    """Stand-in for ``time`` in pyserial's socket handler, whose close() sleeps 0.3 s."""

    @staticmethod
    def sleep(seconds: float) -> None:
        del seconds


@pytest.fixture(params=KINDS)
def link(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Link]:
    monkeypatch.setattr(protocol_socket, "time", _NoSleep)
    pair, cleanup = make_link(request.param)
    try:
        yield pair
    finally:
        pair.host.close()
        pair.device.close()
        cleanup()


def _write_later(transport: Transport, chunks: list[bytes], gap: float) -> threading.Thread:
    def run() -> None:
        for chunk in chunks:
            time.sleep(gap)
            transport.write(chunk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_pair_starts_open(link: Link) -> None:
    assert link.host.is_open
    assert link.device.is_open
    assert link.host.description
    assert link.device.description


def test_round_trip_both_directions(link: Link) -> None:
    link.host.write(b"\x06hello")
    assert link.device.read_exact(6, 2.0) == b"\x06hello"
    link.device.write(b"\x80\x00world")
    assert link.host.read_exact(7, 2.0) == b"\x80\x00world"


def test_all_byte_values_pass_unchanged(link: Link) -> None:
    # XON/XOFF, CR/LF and other control characters must not be eaten or translated.
    payload = bytes(range(256)) * 2
    link.host.write(payload)
    assert link.device.read_exact(len(payload), 2.0) == payload
    link.device.write(payload)
    assert link.host.read_exact(len(payload), 2.0) == payload


def test_read_returns_empty_exactly_on_timeout(link: Link) -> None:
    for end in (link.host, link.device):
        started = time.monotonic()
        assert end.read(16, 0.15) == b""
        elapsed = time.monotonic() - started
        assert 0.14 <= elapsed < 0.5


def test_read_zero_timeout_polls(link: Link) -> None:
    started = time.monotonic()
    assert link.host.read(16, 0) == b""
    assert time.monotonic() - started < 0.1
    link.device.write(b"x")
    time.sleep(SETTLE)
    assert link.host.read(16, 0) == b"x"


def test_read_returns_as_soon_as_data_arrives(link: Link) -> None:
    writer = _write_later(link.device, [b"ab"], gap=0.1)
    started = time.monotonic()
    data = link.host.read(100, 3.0)
    elapsed = time.monotonic() - started
    writer.join()
    assert elapsed < 1.0
    assert data in (b"a", b"ab")
    assert data + link.host.read_exact(2 - len(data), 1.0) == b"ab"


def test_read_respects_max_bytes(link: Link) -> None:
    link.device.write(b"0123456789")
    time.sleep(SETTLE)
    first = link.host.read(3, 1.0)
    assert 1 <= len(first) <= 3
    assert first + link.host.read_exact(10 - len(first), 1.0) == b"0123456789"


def test_read_exact_across_chunks(link: Link) -> None:
    writer = _write_later(link.device, [b"ab", b"cd", b"ef"], gap=0.05)
    assert link.host.read_exact(6, 2.0) == b"abcdef"
    writer.join()


def test_read_exact_timeout_says_how_much_arrived(link: Link) -> None:
    link.device.write(b"abc")
    started = time.monotonic()
    with pytest.raises(TransportTimeout, match=r"expected 5 bytes.*got 3") as info:
        link.host.read_exact(5, 0.2)
    assert time.monotonic() - started < 1.0
    assert isinstance(info.value, ReadExactTimeout)
    assert info.value.received == b"abc"
    assert info.value.expected == 5


def test_host_sees_device_close(link: Link) -> None:
    link.device.write(b"bye")
    time.sleep(SETTLE)
    link.device.close()
    received = b""
    with pytest.raises(TransportClosed):
        for _ in range(10):
            received += link.host.read(16, 1.0)
    if link.host_drains_before_close:
        assert received == b"bye"


def test_device_sees_host_close(link: Link) -> None:
    if not link.device_sees_host_close:
        pytest.skip(f"{link.kind}: a serial line cannot tell that the host closed the port")
    link.host.write(b"bye")
    time.sleep(SETTLE)
    link.host.close()
    received = b""
    with pytest.raises(TransportClosed):
        for _ in range(10):
            received += link.device.read(16, 1.0)
    assert received == b"bye"


def test_closed_end_refuses_io(link: Link) -> None:
    link.host.close()
    assert not link.host.is_open
    with pytest.raises(TransportClosed):
        link.host.write(b"x")
    with pytest.raises(TransportClosed):
        link.host.read(1, 0.1)
    with pytest.raises(TransportClosed):
        link.host.reset_input()


def test_open_and_close_are_idempotent(link: Link) -> None:
    link.host.open()
    assert link.host.is_open
    link.host.close()
    link.host.close()
    assert not link.host.is_open


def test_reset_input_discards_received_bytes(link: Link) -> None:
    link.device.write(b"stale")
    time.sleep(SETTLE)
    link.host.reset_input()
    assert link.host.read(16, 0.1) == b""
    link.device.write(b"fresh")
    assert link.host.read_exact(5, 1.0) == b"fresh"


def test_read_rejects_zero_max_bytes(link: Link) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        link.host.read(0, 0.1)


def test_context_manager_closes(link: Link) -> None:
    with link.host as entered:
        assert entered is link.host
        assert link.host.is_open
    assert not link.host.is_open


def _unused_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda port: TcpTransport("127.0.0.1", port), r"connection to 127\.0\.0\.1:\d+ refused"),
        (
            lambda port: SerialTransport(f"socket://127.0.0.1:{port}"),
            r"cannot open socket://127\.0\.0\.1:\d+: connection refused",
        ),
        (
            lambda port: SerialTransport("/dev/ttyNOPE"),
            r"^cannot open /dev/ttyNOPE: no such file or directory$",
        ),
    ],
    ids=["tcp", "serial-socket", "serial-device"],
)
def test_open_failure_is_one_readable_line(make: Callable[[int], Transport], message: str) -> None:
    transport = make(_unused_loopback_port())
    with pytest.raises(TransportOpenError, match=message) as info:
        transport.open()
    assert "\n" not in str(info.value)
    assert not transport.is_open
    transport.close()
