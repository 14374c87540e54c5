"""TCP transport: terminals on the LAN, and the device side of simulated terminals.

ZVT over TCP is the same byte stream as over serial, so this class only has to make socket
failures look like the shared transport contract (readable open errors, ``TransportClosed`` on
EOF) and switch off Nagle so short protocol frames are not delayed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time

import structlog

from ..errors import ConnectionRefused, TransportClosed, TransportOpenError, TransportTimeout
from .base import Transport, check_read_args, wait_fd

log = structlog.get_logger(__name__)

DEFAULT_WRITE_TIMEOUT = 10.0
"""Seconds a write may wait for the peer to drain its window before we give up on the link."""

_UNREACHABLE = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN)


def _format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_error_reason(exc: OSError, host: str, port: int, timeout: float) -> str:
    """Turn a connect failure into the line shown to the person at the bench."""
    where = _format_host_port(host, port)
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host!r}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused"
    if isinstance(exc, TimeoutError):
        return f"connection to {where} timed out after {timeout:g} s"
    if exc.errno in _UNREACHABLE:
        return f"{where} is unreachable: {os.strerror(exc.errno).lower()}"
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return f"connection to {where} failed: {reason}"


class TcpTransport(Transport):
    """A TCP connection to a terminal (client side) or from a cash register (device side).

    Args:
        host: terminal address or name.
        port: TCP port (ZVT terminals commonly listen on 20007).
        connect_timeout: seconds to wait for the connection to be established.
        write_timeout: seconds a write may block before TransportTimeout.
        description: overrides the default ``tcp host:port`` description.
    """

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout: float = 5.0,
        *,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
        description: str | None = None,
    ) -> None:
        super().__init__(description or f"tcp {_format_host_port(host, port)}")
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self._sock: socket.socket | None = None

    @classmethod
    def from_socket(
        cls,
        sock: socket.socket,
        description: str,
        *,
        write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    ) -> TcpTransport:
        """Wrap an already connected socket (e.g. from ``accept()``); the result is open.

        The transport takes ownership of ``sock`` and closes it on ``close()``.
        """
        try:
            host, port = sock.getpeername()[:2]
        except (OSError, ValueError):  # peer already gone, or not an IP socket
            host, port = "?", 0
        transport = cls(host, port, write_timeout=write_timeout, description=description)
        transport._adopt(sock)
        return transport

    @property
    def is_open(self) -> bool:
        """Whether the socket is connected as far as we know (the peer may be gone)."""
        return self._sock is not None

    def open(self) -> None:
        """Connect to the terminal; does nothing when already connected.

        Raises:
            ConnectionRefused: nothing listens on the port (a TransportOpenError).
            TransportOpenError: timed out, unreachable or unresolvable host.
        """
        if self._sock is not None:
            return
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            reason = _connect_error_reason(exc, self.host, self.port, self.connect_timeout)
            if isinstance(exc, ConnectionRefusedError):
                raise ConnectionRefused(reason) from exc
            raise TransportOpenError(reason) from exc
        self._adopt(sock)
        log.debug("tcp transport open", transport=self.description)

    def _adopt(self, sock: socket.socket) -> None:
        # Non-blocking for good: every wait is an explicit poll with its own timeout, so a
        # reader and a writer in different threads never fight over the socket's timeout.
        sock.setblocking(False)
        # OSError: not a TCP socket (e.g. a socketpair in a test); Nagle is moot then.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def close(self) -> None:
        """Shut the connection down so the peer sees EOF at once; never raises."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        log.debug("tcp transport closed", transport=self.description)

    def _require_socket(self) -> socket.socket:
        if self._sock is None:
            raise TransportClosed(f"{self.description} is not open")
        return self._sock

    def write(self, data: bytes) -> None:
        """Send all of ``data``; see :meth:`Transport.write`."""
        sock = self._require_socket()
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout
        try:
            while view:
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    if not wait_fd(sock.fileno(), True, deadline - time.monotonic()):
                        raise TransportTimeout(
                            f"{self.description}: peer did not accept data "
                            f"for {self.write_timeout:g} s"
                        ) from None
        except OSError as exc:
            raise TransportClosed(f"{self.description}: connection lost: {exc}") from exc

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Receive what is available; see :meth:`Transport.read`."""
        timeout = check_read_args(max_bytes, timeout)
        sock = self._require_socket()
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    data = sock.recv(max_bytes)
                except BlockingIOError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not wait_fd(sock.fileno(), False, remaining):
                        return b""
                    continue
                if not data:
                    raise TransportClosed(f"{self.description}: connection closed by peer")
                return data
        except OSError as exc:
            raise TransportClosed(f"{self.description}: connection lost: {exc}") from exc

    def reset_input(self) -> None:
        """Drop whatever the socket has already received; EOF is left for the next read."""
        sock = self._require_socket()
        try:
            while sock.recv(4096):
                pass
        except BlockingIOError:
            pass
        except OSError as exc:
            raise TransportClosed(f"{self.description}: connection lost: {exc}") from exc
