"""An in-process null modem with fault injection.

Protocol drivers must survive lost, corrupted and fragmented bytes and pulled cables. Provoking
those on real hardware is slow and unrepeatable, so this transport connects two ends inside the
process and lets a test decide, write by write, what actually arrives on the other side.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import structlog

from ..errors import TransportClosed, TransportOpenError
from .base import Transport, check_read_args

log = structlog.get_logger(__name__)

Manipulator = Callable[[bytes], Iterable[bytes]]
"""Fault hook applied to every ``write()`` on one end.

It receives the written bytes and returns the chunks actually delivered to the peer: nothing
drops the write, different bytes corrupt it, several chunks split it (the reader sees each chunk
arrive separately).
"""


class _Link:
    """State shared by both ends; one condition guards all of it so waits never race."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.inbox: tuple[deque[bytes], deque[bytes]] = (deque(), deque())
        self.end_open = [True, True]
        self.disconnected = False


class MemoryTransport(Transport):
    """One end of an in-process null modem; create both ends with :meth:`pair`.

    Ends are created open. Data written on one end is readable on the other, chunk by chunk (a
    read never merges two writes, so fragmentation produced by a manipulator stays visible).
    A closed end cannot be reopened, just like a socket.
    """

    def __init__(
        self,
        link: _Link,
        side: int,
        manipulator: Manipulator | None,
        description: str,
    ) -> None:
        super().__init__(description)
        self._link = link
        self._side = side
        self._manipulator = manipulator
        # Serialises writes on this end so a stateful manipulator sees them in order, without
        # holding the shared condition (a manipulator may be slow, e.g. to simulate latency).
        self._write_lock = threading.Lock()

    @classmethod
    def pair(
        cls,
        manipulator_a: Manipulator | None = None,
        manipulator_b: Manipulator | None = None,
        description: str = "memory",
    ) -> tuple[MemoryTransport, MemoryTransport]:
        """Create two connected, already open ends.

        Args:
            manipulator_a: fault hook applied to writes on the first end.
            manipulator_b: fault hook applied to writes on the second end.
            description: common prefix of both ends' descriptions (suffixed ``[a]``/``[b]``).

        Returns:
            ``(a, b)``: by convention ``a`` is the host (cash register) side.
        """
        link = _Link()
        return (
            cls(link, 0, manipulator_a, f"{description} [a]"),
            cls(link, 1, manipulator_b, f"{description} [b]"),
        )

    @property
    def _peer(self) -> int:
        return 1 - self._side

    @property
    def is_open(self) -> bool:
        """Whether this end has not been closed."""
        with self._link.cond:
            return self._link.end_open[self._side]

    @property
    def connected(self) -> bool:
        """Whether both ends are open and the cable has not been pulled."""
        link = self._link
        with link.cond:
            return all(link.end_open) and not link.disconnected

    @property
    def pending(self) -> int:
        """Number of received bytes waiting to be read on this end."""
        with self._link.cond:
            return sum(len(chunk) for chunk in self._link.inbox[self._side])

    def open(self) -> None:
        """Do nothing on an open end; a closed end cannot be reopened.

        Raises:
            TransportOpenError: this end was closed before.
        """
        if not self.is_open:
            raise TransportOpenError(f"{self.description} was closed and cannot be reopened")

    def close(self) -> None:
        """Close this end; the peer reads what is still buffered, then gets TransportClosed."""
        link = self._link
        with link.cond:
            if not link.end_open[self._side]:
                return
            link.end_open[self._side] = False
            link.inbox[self._side].clear()
            link.cond.notify_all()
        log.debug("memory transport closed", transport=self.description)

    def disconnect(self) -> None:
        """Simulate a pulled cable.

        Both ends can still read what had already arrived; after that, reads raise
        TransportClosed. Writes on either end raise TransportClosed immediately.
        """
        link = self._link
        with link.cond:
            link.disconnected = True
            link.cond.notify_all()
        log.debug("memory transport disconnected", transport=self.description)

    def inject(self, data: bytes) -> None:
        """Put ``data`` into this end's receive buffer, as if line noise had arrived."""
        if not data:
            return
        link = self._link
        with link.cond:
            link.inbox[self._side].append(bytes(data))
            link.cond.notify_all()

    def write(self, data: bytes) -> None:
        """Deliver ``data`` (after the manipulator, if any) to the peer's receive buffer.

        Raises:
            TransportClosed: this end is closed, the peer is closed, or the cable was pulled.
        """
        with self._write_lock:
            self._check_writable()
            if not data:
                return
            chunks = (
                [bytes(data)]
                if self._manipulator is None
                else [bytes(c) for c in self._manipulator(bytes(data))]
            )
            link = self._link
            with link.cond:
                self._check_writable()
                link.inbox[self._peer].extend(chunk for chunk in chunks if chunk)
                link.cond.notify_all()

    def _check_writable(self) -> None:
        link = self._link
        with link.cond:
            if not link.end_open[self._side]:
                raise TransportClosed(f"{self.description} is not open")
            if link.disconnected:
                raise TransportClosed(f"{self.description}: cable disconnected")
            if not link.end_open[self._peer]:
                raise TransportClosed(f"{self.description}: the other end closed the link")

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Return bytes from the oldest received chunk; see :meth:`Transport.read`."""
        timeout = check_read_args(max_bytes, timeout)
        link = self._link
        inbox = link.inbox[self._side]
        deadline = time.monotonic() + timeout
        with link.cond:
            while True:
                if not link.end_open[self._side]:
                    raise TransportClosed(f"{self.description} is not open")
                if inbox:
                    chunk = inbox.popleft()
                    if len(chunk) > max_bytes:
                        inbox.appendleft(chunk[max_bytes:])
                        chunk = chunk[:max_bytes]
                    return chunk
                if link.disconnected:
                    raise TransportClosed(f"{self.description}: cable disconnected")
                if not link.end_open[self._peer]:
                    raise TransportClosed(f"{self.description}: the other end closed the link")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                link.cond.wait(remaining)

    def reset_input(self) -> None:
        """Discard everything buffered for reading on this end."""
        with self._link.cond:
            if not self._link.end_open[self._side]:
                raise TransportClosed(f"{self.description} is not open")
            self._link.inbox[self._side].clear()
