"""The byte pipe every protocol driver talks through.

Protocol code (ZVT framing, retries, timeouts) must not care whether the terminal hangs off a
USB serial adapter, a LAN socket or an in-process simulator. This module fixes the one contract
all of those share, so a driver written and tested against the memory transport behaves the same
on a real cable.
"""

from __future__ import annotations

import abc
import math
import select
import time
from types import TracebackType
from typing import Self

from ..errors import TransportTimeout


class ReadExactTimeout(TransportTimeout):
    """``read_exact`` ran out of time; carries what did arrive so callers can log or resync.

    Attributes:
        expected: how many bytes were asked for.
        received: the bytes that arrived before the deadline (fewer than ``expected``).
    """

    def __init__(self, message: str, expected: int, received: bytes) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


class Transport(abc.ABC):
    """A bidirectional byte pipe to one terminal.

    The contract is deliberately small and strict, because protocol timing depends on it:

    * ``read`` returns as soon as *any* byte is available (never waits to fill a buffer), returns
      ``b""`` only when the timeout elapses with nothing, and raises ``TransportClosed`` when the
      other side is gone. Protocol code can therefore tell "terminal is silent" from "cable
      pulled" without guessing.
    * ``write`` delivers all bytes or raises; there are no short writes to handle.
    * ``close`` never raises, so it is safe in ``finally`` blocks and ``__exit__``.

    Attributes:
        description: human-readable line naming the link, for logs and error messages
            (e.g. ``serial /dev/ttyUSB0 9600 8N2`` or ``tcp 127.0.0.1:20007``).
    """

    description: str

    def __init__(self, description: str) -> None:
        self.description = description

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<{type(self).__name__} {self.description!r} {state}>"

    @abc.abstractmethod
    def open(self) -> None:
        """Open the link; does nothing when it is already open.

        Raises:
            TransportOpenError: the link cannot be opened; the message is one readable line
                such as ``cannot open /dev/ttyUSB9: no such file or directory``.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Close the link; does nothing when already closed and never raises."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Whether ``open()`` succeeded and ``close()`` has not been called since."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send all of ``data``.

        Raises:
            TransportClosed: the link is not open or the other side went away.
            TransportTimeout: the link did not accept the bytes in time (e.g. a serial line
                held back by flow control); some bytes may have been sent.
        """

    @abc.abstractmethod
    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Return 1..``max_bytes`` bytes as soon as any are available.

        Args:
            max_bytes: upper bound of the returned length; must be at least 1.
            timeout: seconds to wait for the first byte; 0 polls without waiting.

        Returns:
            The bytes received, or ``b""`` exactly when ``timeout`` elapsed with nothing.

        Raises:
            TransportClosed: the link is not open, or the other side went away and everything
                it sent before has already been returned.
        """

    @abc.abstractmethod
    def reset_input(self) -> None:
        """Discard bytes already received but not yet read.

        Used right after opening a serial port, which may still hold bytes from an earlier
        session that would otherwise be mistaken for an answer.
        """

    def read_exact(self, n: int, timeout: float) -> bytes:
        """Read exactly ``n`` bytes within a total deadline of ``timeout`` seconds.

        The deadline covers the whole read, not each chunk, so a terminal that trickles bytes
        cannot stretch a protocol timeout indefinitely.

        Raises:
            ReadExactTimeout: (a ``TransportTimeout``) fewer than ``n`` bytes arrived in time;
                the message says how many did and the exception carries them.
            TransportClosed: the other side went away first.
        """
        if n <= 0:
            return b""
        deadline = time.monotonic() + timeout
        buffer = bytearray()
        while len(buffer) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReadExactTimeout(
                    f"{self.description}: expected {n} bytes within {timeout:g} s, "
                    f"got {len(buffer)}",
                    expected=n,
                    received=bytes(buffer),
                )
            buffer += self.read(n - len(buffer), remaining)
        return bytes(buffer)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_read_args(max_bytes: int, timeout: float) -> float:
    """Validate read arguments and return the timeout to use.

    A zero ``max_bytes`` would make ``b""`` ambiguous (timeout, or nothing asked for), so it is
    refused. A negative timeout is an already expired deadline computed by the caller; it is
    treated as a poll (0) rather than an error, because that is what the caller meant.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, not {max_bytes}")
    return max(0.0, timeout)


def wait_fd(fd: int, writable: bool, timeout: float) -> bool:
    """Wait until ``fd`` is readable (or writable); return False when ``timeout`` elapses.

    Uses ``poll`` rather than ``select`` so descriptors above 1023 work in a long-running agent.
    Hang-up and error conditions count as ready: the following read or write then reports them.
    """
    poller = select.poll()
    poller.register(fd, select.POLLOUT if writable else select.POLLIN | select.POLLPRI)
    return bool(poller.poll(math.ceil(max(0.0, timeout) * 1000)))
