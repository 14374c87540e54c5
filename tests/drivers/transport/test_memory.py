"""Memory link specifics: fault injection (drop, corrupt, split, noise, pulled cable)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator

import pytest

from posdiag.drivers.errors import TransportClosed, TransportOpenError
from posdiag.drivers.transport.memory import MemoryTransport


@pytest.fixture
def pair() -> Iterator[tuple[MemoryTransport, MemoryTransport]]:
    a, b = MemoryTransport.pair(description="test link")
    yield a, b
    a.close()
    b.close()


def drop_all(data: bytes) -> Iterable[bytes]:
    return []


def flip_last_bit(data: bytes) -> Iterable[bytes]:
    return [data[:-1] + bytes([data[-1] ^ 0x01])]


def split_bytewise(data: bytes) -> Iterable[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_pair_descriptions_name_both_ends(pair: tuple[MemoryTransport, MemoryTransport]) -> None:
    a, b = pair
    assert a.description == "test link [a]"
    assert b.description == "test link [b]"
    assert "open" in repr(a)


def test_writes_are_not_merged(pair: tuple[MemoryTransport, MemoryTransport]) -> None:
    a, b = pair
    a.write(b"one")
    a.write(b"two")
    assert b.pending == 6
    assert b.read(100, 0.1) == b"one"
    assert b.read(100, 0.1) == b"two"


def test_long_chunk_is_returned_in_max_bytes_pieces(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    a.write(b"abcdefg")
    assert b.read(3, 0.1) == b"abc"
    assert b.read(3, 0.1) == b"def"
    assert b.read(3, 0.1) == b"g"


def test_empty_write_delivers_nothing(pair: tuple[MemoryTransport, MemoryTransport]) -> None:
    a, b = pair
    a.write(b"")
    assert b.read(10, 0) == b""


def test_manipulator_drops_writes() -> None:
    a, b = MemoryTransport.pair(manipulator_a=drop_all)
    try:
        a.write(b"lost")
        assert b.read(10, 0.05) == b""
        b.write(b"not manipulated")
        assert a.read(100, 0.1) == b"not manipulated"
    finally:
        a.close()
        b.close()


def test_manipulator_corrupts_writes() -> None:
    a, b = MemoryTransport.pair(manipulator_b=flip_last_bit)
    try:
        b.write(b"\x10\x03")
        assert a.read(10, 0.1) == b"\x10\x02"
    finally:
        a.close()
        b.close()


def test_manipulator_splits_writes_into_separate_arrivals() -> None:
    a, b = MemoryTransport.pair(manipulator_a=split_bytewise)
    try:
        a.write(b"abc")
        assert [b.read(10, 0.1) for _ in range(3)] == [b"a", b"b", b"c"]
        assert b.read_exact(0, 0.1) == b""
    finally:
        a.close()
        b.close()


def test_stateful_manipulator_sees_every_write_in_order() -> None:
    seen: list[bytes] = []

    def drop_second(data: bytes) -> Iterable[bytes]:
        seen.append(data)
        return [] if len(seen) == 2 else [data]

    a, b = MemoryTransport.pair(manipulator_a=drop_second)
    try:
        for word in (b"1", b"2", b"3"):
            a.write(word)
        assert b.read(10, 0.1) + b.read(10, 0.1) == b"13"
        assert seen == [b"1", b"2", b"3"]
    finally:
        a.close()
        b.close()


def test_inject_puts_noise_before_real_data(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    b.inject(b"\xff\xfe")
    a.write(b"\x06")
    assert b.read(10, 0.1) == b"\xff\xfe"
    assert b.read(10, 0.1) == b"\x06"


def test_disconnect_delivers_pending_then_closes_both_ends(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    a.write(b"last words")
    a.disconnect()
    assert not a.connected
    assert a.is_open  # the cable is gone, the port is still open
    with pytest.raises(TransportClosed, match="disconnected"):
        a.write(b"x")
    with pytest.raises(TransportClosed, match="disconnected"):
        b.write(b"x")
    assert b.read(100, 0.1) == b"last words"
    with pytest.raises(TransportClosed, match="disconnected"):
        b.read(100, 0.1)
    with pytest.raises(TransportClosed, match="disconnected"):
        a.read(100, 0.1)


@pytest.mark.parametrize("how", ["close", "disconnect"])
def test_blocked_reader_wakes_promptly(
    pair: tuple[MemoryTransport, MemoryTransport], how: str
) -> None:
    a, b = pair
    timer = threading.Timer(0.05, getattr(a, how))
    timer.start()
    started = time.monotonic()
    with pytest.raises(TransportClosed):
        b.read(10, 5.0)
    assert time.monotonic() - started < 1.0
    timer.join()


def test_closing_one_end_lets_peer_drain_first(
    pair: tuple[MemoryTransport, MemoryTransport],
) -> None:
    a, b = pair
    a.write(b"one")
    a.write(b"two")
    a.close()
    assert b.read(10, 0) == b"one"
    assert b.read(10, 0) == b"two"
    with pytest.raises(TransportClosed, match="other end closed"):
        b.read(10, 0)
    with pytest.raises(TransportClosed, match="other end closed"):
        b.write(b"x")


def test_closed_end_cannot_be_reopened(pair: tuple[MemoryTransport, MemoryTransport]) -> None:
    a, _ = pair
    a.open()  # open end: no-op
    a.close()
    with pytest.raises(TransportOpenError, match="cannot be reopened"):
        a.open()


def test_concurrent_writers_lose_nothing(pair: tuple[MemoryTransport, MemoryTransport]) -> None:
    a, b = pair
    per_thread = 200

    def hammer(tag: bytes) -> None:
        for _ in range(per_thread):
            a.write(tag)

    threads = [threading.Thread(target=hammer, args=(bytes([t]),)) for t in range(4)]
    for thread in threads:
        thread.start()
    received = b.read_exact(4 * per_thread, 5.0)
    for thread in threads:
        thread.join()
    assert sorted(received) == sorted(bytes(range(4)) * per_thread)


def test_negative_timeout_polls(pair: tuple[MemoryTransport, MemoryTransport]) -> None:
    a, b = pair
    assert b.read(10, -1.0) == b""
    a.write(b"x")
    assert b.read(10, -1.0) == b"x"
