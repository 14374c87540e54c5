"""Serial transport on top of pyserial's URL machinery.

Going through ``serial.serial_for_url`` instead of ``serial.Serial`` means one code path serves
real devices (``/dev/ttyUSB0``), remote ports (``socket://``, ``rfc2217://``), hex tracing of a
real device (``spy:///dev/ttyUSB0``), pyserial's ``loop://`` and any handler registered in
``serial.protocol_handler_packages`` (posdiag's own ``possim://`` simulators). Whatever the URL,
failures come out as the shared transport errors with a line a bench technician can act on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from typing import Any

import serial
import structlog

from ..errors import TransportClosed, TransportOpenError, TransportTimeout
from .base import Transport, check_read_args, wait_fd

log = structlog.get_logger(__name__)

# Reasons worded for the person at the bench rather than as raw strerror text.
_FRIENDLY_ERRNO = {
    errno.EAGAIN: "port is in use by another program",
    errno.EBUSY: "device is busy (in use by another program?)",
    errno.EACCES: "permission denied (is this user in the dialout group?)",
    errno.ECONNREFUSED: "connection refused",
}


def describe_error(exc: BaseException) -> str:
    """Find the most telling reason in an exception chain, as one lower-case phrase.

    pyserial wraps the OS error in a ``SerialException`` whose text repeats the port name and
    the Python errno repr; the errno itself (on the exception or on its cause) says it better.
    """
    if "readiness to read but returned no data" in str(exc):
        return "device disconnected"  # pyserial's wording for a hung-up tty
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "errno", None)
        if isinstance(code, int) and code > 0:
            return _FRIENDLY_ERRNO.get(code, os.strerror(code).lower())
        current = current.__cause__ or current.__context__
    return str(exc) or type(exc).__name__


def _set_read_timeout(port: Any, timeout: float) -> None:
    """Set the timeout pyserial's ``read`` uses, without reconfiguring the port.

    The public ``timeout`` setter calls ``_reconfigure_port()``, which on ``rfc2217://`` ports
    renegotiates every line setting with the remote server (several round trips) and on local
    devices re-locks and re-reads termios. Every pyserial backend, including URL handlers, reads
    ``_timeout`` afresh at the start of ``read()``, so setting it directly is exact and cheap.
    """
    port._timeout = timeout


def _native_fd(port: Any) -> int | None:
    """The file descriptor of a local POSIX port (``/dev/tty*``, a pty), else None.

    pyserial's POSIX backend waits in ``select()``, which refuses descriptors above 1023: a
    station with a few hundred ports (each also holding pyserial's two abort pipes) and its
    ledger connections crosses that, and every further port failed with "filedescriptor out of
    range in select()". On such a port the transport reads and writes the descriptor itself
    (pyserial opens it non-blocking) and waits with ``poll``. URL handlers keep pyserial's I/O.
    """
    if type(port).__module__ != "serial.serialposix":
        return None
    fd = getattr(port, "fd", None)
    return fd if isinstance(fd, int) and fd >= 0 else None


def _close_trace_file(port: Any) -> None:
    """Close the log file of a ``spy://...?file=PATH`` port.

    pyserial's spy handler opens that file when the URL is parsed and never closes it, which
    would leak one descriptor per reopen in a long-running agent.
    """
    output = getattr(getattr(port, "formatter", None), "output", None)
    if output is None or output in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        return
    with contextlib.suppress(Exception):
        output.close()


class SerialTransport(Transport):
    """A serial line (or anything pyserial can open from a URL).

    The defaults are the ZVT line: 9600 baud, 8 data bits, no parity, 2 stop bits, no
    handshake.

    Args:
        url: device path or pyserial URL.
        baudrate: line speed.
        bytesize: data bits (5..8).
        parity: ``N``, ``E``, ``O``, ``M`` or ``S``.
        stopbits: 1, 1.5 or 2.
        rtscts: hardware flow control.
        xonxoff: software flow control.
        write_timeout: seconds a write may block (pyserial would otherwise wait forever on a
            line held back by flow control).
        exclusive: take an advisory lock on local devices so two programs cannot talk to the
            same terminal at once (a second one gets "port is in use by another program").
    """

    def __init__(
        self,
        url: str,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 2,
        rtscts: bool = False,
        xonxoff: bool = False,
        *,
        write_timeout: float = 5.0,
        exclusive: bool = True,
    ) -> None:
        if write_timeout <= 0:
            raise ValueError("write_timeout must be positive (0 would allow short writes)")
        handshake = " rtscts" if rtscts else ""
        handshake += " xonxoff" if xonxoff else ""
        super().__init__(f"serial {url} {baudrate} {bytesize}{parity}{stopbits:g}{handshake}")
        self.url = url
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity = parity
        self.stopbits = stopbits
        self.rtscts = rtscts
        self.xonxoff = xonxoff
        self.write_timeout = write_timeout
        self.exclusive = exclusive
        self._port: Any = None

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._port is not None and bool(self._port.is_open)

    def open(self) -> None:
        """Open the port and raise RTS and DTR; does nothing when already open.

        Raises:
            TransportOpenError: e.g. ``cannot open /dev/ttyUSB9: no such file or directory``.
        """
        if self.is_open:
            return
        port: Any = None
        try:
            port = serial.serial_for_url(
                self.url,
                do_not_open=True,
                baudrate=self.baudrate,
                bytesize=self.bytesize,
                parity=self.parity,
                stopbits=self.stopbits,
                rtscts=self.rtscts,
                xonxoff=self.xonxoff,
                timeout=0,
                write_timeout=self.write_timeout,
                exclusive=self.exclusive,
            )
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            _close_trace_file(port)
            raise TransportOpenError(f"cannot open {self.url}: {describe_error(exc)}") from exc
        # Many terminals and USB adapters only talk once the host asserts these lines. URL
        # handlers and ptys may not implement them; that is fine, so errors are ignored.
        if not self.rtscts:
            with contextlib.suppress(Exception):
                port.rts = True
        with contextlib.suppress(Exception):
            port.dtr = True
        self._port = port
        log.debug("serial transport open", transport=self.description)

    def close(self) -> None:
        """Close the port; never raises."""
        port, self._port = self._port, None
        if port is None:
            return
        with contextlib.suppress(Exception):
            port.close()
        _close_trace_file(port)
        log.debug("serial transport closed", transport=self.description)

    def _require_port(self) -> Any:
        if not self.is_open:
            raise TransportClosed(f"{self.description} is not open")
        return self._port

    def _gone(self, exc: BaseException) -> TransportClosed:
        return TransportClosed(f"serial device {self.url} went away: {describe_error(exc)}")

    def write(self, data: bytes) -> None:
        """Send all of ``data``; see :meth:`Transport.write`."""
        port = self._require_port()
        fd = _native_fd(port)
        if fd is not None:
            self._write_fd(fd, data)
            return
        try:
            port.write(data)
        except serial.SerialTimeoutException as exc:
            raise TransportTimeout(
                f"{self.description}: line did not accept data for {self.write_timeout:g} s "
                "(flow control holding us back?)"
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise self._gone(exc) from exc

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Wait up to ``timeout`` for one byte, then take what else is already waiting.

        The second step is a non-blocking read rather than ``read(in_waiting)`` because some
        handlers (``socket://``) report ``in_waiting`` as 0/1 instead of a byte count.
        """
        timeout = check_read_args(max_bytes, timeout)
        port = self._require_port()
        fd = _native_fd(port)
        if fd is not None:
            return self._read_fd(fd, max_bytes, timeout)
        try:
            _set_read_timeout(port, timeout)
            first: bytes = port.read(1)
            if not first or max_bytes == 1:
                return first
            _set_read_timeout(port, 0)
            rest: bytes = port.read(max_bytes - 1)
        except (serial.SerialException, OSError) as exc:
            raise self._gone(exc) from exc
        return first + rest

    def _write_fd(self, fd: int, data: bytes) -> None:
        """Write all of ``data`` to a local port, waiting (poll) while its buffer is full."""
        deadline = None if self.write_timeout is None else time.monotonic() + self.write_timeout
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                raise self._gone(exc) from exc
            if not view:
                return
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0 or not wait_fd(fd, True, left):
                raise TransportTimeout(
                    f"{self.description}: line did not accept data for {self.write_timeout:g} s "
                    "(flow control holding us back?)"
                )

    def _read_fd(self, fd: int, max_bytes: int, timeout: float) -> bytes:
        """Up to ``max_bytes`` from a local port: what is there once one byte is (poll)."""
        if not wait_fd(fd, False, timeout):
            return b""
        try:
            data = os.read(fd, max_bytes)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise self._gone(exc) from exc
        if not data:  # ready but nothing: the other end hung up (pyserial says the same)
            raise TransportClosed(f"serial device {self.url} went away: device disconnected")
        return data

    def reset_input(self) -> None:
        """Discard received bytes held by the driver (stale answers from an earlier session)."""
        port = self._require_port()
        try:
            port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise self._gone(exc) from exc
