"""Attach a simulated terminal to a pty, a TCP port or an in-process memory link.

Simulator engines speak a protocol over a :class:`Transport` and know nothing about how the
host reaches them. This module supplies the reaching: a pseudo terminal that ``posdiag`` can
open like a USB serial adapter, a TCP listener that behaves like a LAN terminal, and a memory
link for fast tests. It deliberately holds no protocol logic so every protocol family reuses it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
import tty
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, Self

import serial
import structlog

from posdiag.drivers.errors import TransportClosed, TransportOpenError, TransportTimeout
from posdiag.drivers.transport.base import Transport, check_read_args, wait_fd
from posdiag.drivers.transport.memory import Manipulator, MemoryTransport
from posdiag.drivers.transport.tcp import TcpTransport

log = structlog.get_logger(__name__)

URL_HANDLER_PACKAGE = "posdiag.simulators.urlhandler"
POLL_INTERVAL = 0.1
"""Seconds between checks of the stop flag in the accept loop."""
STOP_JOIN_TIMEOUT = 2.0
"""Seconds stop() waits for a serving thread before forcing its transport closed."""
_RESTART_DELAY = 0.05
"""Pause before re-serving after an engine returned or failed, so a broken engine cannot spin."""

_register_lock = threading.Lock()


class DeviceEngine(Protocol):
    """A simulated terminal: answers a host over whatever transport it is attached to.

    An engine may also have an ``online`` attribute (read as a bool, True when absent): while it
    is false the unit has no server listening (debugging disabled, rebooting), and a TCP
    attachment refuses connections as the real unit's closed port does.
    """

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        """Serve one connection until the transport closes or stop is set.

        Implementations must poll ``stop`` at least every ~0.1 s by using short read
        timeouts, so attachments can shut down promptly.
        """


def register_url_handler() -> None:
    """Make ``serial.serial_for_url("possim://family/scenario?opt=v")`` open a simulator.

    pyserial looks URL schemes up in ``serial.protocol_handler_packages``; adding our package
    once (idempotent, thread-safe) lets every serial code path reach simulators unchanged.
    """
    with _register_lock:
        if URL_HANDLER_PACKAGE not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(URL_HANDLER_PACKAGE)


def _serve_once(engine: DeviceEngine, transport: Transport, stop: threading.Event) -> None:
    """Run ``engine.serve`` once; log failures instead of letting the thread die."""
    try:
        engine.serve(transport, stop)
    except TransportClosed as exc:
        log.debug("simulator connection closed", transport=transport.description, reason=str(exc))
    except Exception:
        log.exception("simulator engine failed", transport=transport.description)


def _engine_online(engine: DeviceEngine) -> bool:
    """Whether the engine takes connections now (see :class:`DeviceEngine`)."""
    return bool(getattr(engine, "online", True))


def _start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def _join(thread: threading.Thread | None, what: str) -> bool:
    """Wait for a serving thread; return False (and log) if it ignored the stop flag."""
    if thread is None or thread is threading.current_thread():
        return True
    thread.join(STOP_JOIN_TIMEOUT)
    if thread.is_alive():
        log.warning("simulator thread did not stop in time", attachment=what)
        return False
    return True


class FdTransport(Transport):
    """Transport over the master side of a pseudo terminal held by a simulator.

    A pty master reports EIO while no process has the slave open. For a simulated serial
    line that simply means "no cash register connected right now", so it reads as silence
    (``b""`` after the timeout) rather than as a closed link. Bytes written while nobody
    listens pile up in the slave's input queue; a client flushes them when it opens the port.

    Args:
        fd: the master file descriptor; the transport owns it and closes it on ``close()``.
        description: text for logs.
        write_timeout: seconds a write may wait for room in the pty buffer.
    """

    def __init__(self, fd: int, description: str, *, write_timeout: float = 2.0) -> None:
        super().__init__(description)
        os.set_blocking(fd, False)
        self._fd: int | None = fd
        self.write_timeout = write_timeout

    @property
    def is_open(self) -> bool:
        """Whether the fd has not been closed."""
        return self._fd is not None

    def open(self) -> None:
        """Nothing to do: the fd is open from the start and cannot be reopened once closed.

        Raises:
            TransportOpenError: the transport was closed before.
        """
        if self._fd is None:
            raise TransportOpenError(f"{self.description} was closed and cannot be reopened")

    def close(self) -> None:
        """Close the fd; a client reading the slave then sees the line hang up."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _require_fd(self) -> int:
        if self._fd is None:
            raise TransportClosed(f"{self.description} is not open")
        return self._fd

    def write(self, data: bytes) -> None:
        """Write all of ``data`` into the pty; see :meth:`Transport.write`."""
        fd = self._require_fd()
        view = memoryview(data)
        deadline = time.monotonic() + self.write_timeout
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not wait_fd(fd, True, remaining):
                    raise TransportTimeout(
                        f"{self.description}: nobody read the line for {self.write_timeout:g} s"
                    ) from None
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:  # no client: bytes on an unplugged line vanish
                    return
                raise TransportClosed(f"{self.description}: write failed: {exc}") from exc
            view = view[written:]

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Read what the client wrote; EIO (no client) counts as silence until the timeout."""
        timeout = check_read_args(max_bytes, timeout)
        fd = self._require_fd()
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                if wait_fd(fd, False, remaining):
                    data = os.read(fd, max_bytes)
                    if data:
                        return data
                    raise TransportClosed(f"{self.description}: end of file")
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise TransportClosed(f"{self.description}: read failed: {exc}") from exc
                # Hung up (no client): poll would report ready again at once, so wait
                # out the rest of the timeout instead of spinning.
                time.sleep(max(0.0, deadline - time.monotonic()))
                return b""
            if time.monotonic() >= deadline:
                return b""

    def reset_input(self) -> None:
        """Drop whatever the client has written and we have not read yet."""
        fd = self._require_fd()
        try:
            while os.read(fd, 4096):
                pass
        except OSError:  # EAGAIN: drained; EIO: no client, nothing to drop
            pass


class _Attachment:
    """Shared lifecycle: a stop flag, one daemon thread, context-manager use."""

    def __init__(self, engine: DeviceEngine) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _check_not_started(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} was already started")

    def start(self) -> object:
        """Start serving; subclasses return what a client needs to connect."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving and release every resource; safe to call more than once."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PtyAttachment(_Attachment):
    """Expose a simulator as a pseudo terminal that behaves like a USB serial adapter.

    The simulator keeps its own fd to the slave open for its whole life. Without it, each
    client that opens and closes the slave (every ``posdiag check`` does) would leave the
    master hung up, and the next open could find a line in a half-closed state.
    """

    def __init__(self, engine: DeviceEngine) -> None:
        super().__init__(engine)
        self._transport: FdTransport | None = None
        self._slave_fd: int | None = None
        self._path: str | None = None

    @property
    def path(self) -> str:
        """The slave device path (``/dev/pts/N``) clients open."""
        if self._path is None:
            raise RuntimeError("PtyAttachment has not been started")
        return self._path

    def start(self) -> str:
        """Create the pty, start serving on it, and return the slave path."""
        self._check_not_started()
        master, slave = os.openpty()
        try:
            # Raw mode: no echo, no CR/LF translation, no signal characters: a clean 8-bit
            # line like a real UART, whatever the client does (or forgets) to configure.
            tty.setraw(slave)
            path = os.ttyname(slave)
            transport = FdTransport(master, f"pty {path} (simulator side)")
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._slave_fd, self._path, self._transport = slave, path, transport
        self._thread = _start_thread(self._run, f"posdiag-sim-pty {path}")
        log.info("simulator attached to pty", path=path)
        return path

    def _run(self) -> None:
        transport = self._transport
        assert transport is not None
        while not self._stop.is_set() and transport.is_open:
            _serve_once(self.engine, transport, self._stop)
            self._stop.wait(_RESTART_DELAY)

    def stop(self) -> None:
        """Stop serving and close both pty fds."""
        self._stop.set()
        if not _join(self._thread, f"pty {self._path}") and self._transport is not None:
            self._transport.close()
            _join(self._thread, f"pty {self._path}")
        if self._transport is not None:
            self._transport.close()
        slave, self._slave_fd = self._slave_fd, None
        if slave is not None:
            with contextlib.suppress(OSError):
                os.close(slave)


class TcpAttachment(_Attachment):
    """Expose a simulator on a TCP port, like a terminal on the LAN.

    Connections are served one at a time, as a real payment terminal talks to one cash register:
    a second client waits in the listen backlog until the first disconnects.

    While the engine is not ``online`` (see :class:`DeviceEngine`) the port is closed: the
    socket stays bound, so the port stays ours, but does not listen, and the kernel refuses
    connects (RST, "connection refused") as it does for a locked unit's ADB port 5555. Accepting
    and then dropping would look like a unit that let the host in and hung up, which a real
    one whose adbd is not running never does.
    """

    def __init__(self, engine: DeviceEngine, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(engine)
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._listening = False
        self._bound: tuple[int, int, int, tuple[Any, ...]] | None = None
        self._current: TcpTransport | None = None
        self._current_lock = threading.Lock()

    def start(self) -> tuple[str, int]:
        """Bind, listen (when the engine is online) and start accepting; return (host, port)."""
        self._check_not_started()
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = self._bind(family, kind, proto, address)
        host, port = listener.getsockname()[:2]
        self._bound = (family, kind, proto, tuple(listener.getsockname()))
        self._listener = listener
        if _engine_online(self.engine):  # else: bound, not listening, so connects are refused
            self._listen(listener)
        self._thread = _start_thread(self._accept_loop, f"posdiag-sim-tcp {host}:{port}")
        log.info("simulator listening", host=host, port=port, online=self._listening)
        return host, port

    @staticmethod
    def _bind(family: int, kind: int, proto: int, address: tuple[Any, ...]) -> socket.socket:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def _listen(self, listener: socket.socket) -> None:
        listener.listen(4)
        self._listening = True

    def _follow_engine(self) -> socket.socket | None:
        """Open or close the port as the engine comes online or goes offline.

        A listening socket cannot stop listening, so going offline closes it and binds a fresh,
        non-listening one to the same port (SO_REUSEADDR). Returns the socket to accept on,
        or None while the port is closed.
        """
        online = _engine_online(self.engine)
        listener = self._listener
        if online and listener is not None and not self._listening:
            self._listen(listener)
            log.debug("simulator port open again", port=listener.getsockname()[1])
        elif not online and self._listening and self._bound is not None:
            family, kind, proto, address = self._bound
            self._listening = False
            self._listener = None
            if listener is not None:
                listener.close()  # connects queued in the backlog are reset, as at a reboot
            try:
                self._listener = self._bind(family, kind, proto, address)
            except OSError as exc:  # the port was taken meanwhile: retried at the next poll
                log.warning("simulator cannot hold its closed port", error=str(exc))
            log.debug("simulator port closed", port=address[1])
        elif listener is None and self._bound is not None and not self._listening:
            family, kind, proto, address = self._bound
            with contextlib.suppress(OSError):
                self._listener = self._bind(family, kind, proto, address)
        return self._listener if self._listening else None

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                listener = self._follow_engine()
                if listener is None:
                    self._stop.wait(POLL_INTERVAL)
                    continue
                if not wait_fd(listener.fileno(), False, POLL_INTERVAL):
                    continue
                conn, peer = listener.accept()
            except (OSError, ValueError):  # listener closed under us by stop()
                if self._stop.is_set():
                    return
                log.exception("simulator accept failed")
                self._stop.wait(_RESTART_DELAY)
                continue
            transport = TcpTransport.from_socket(conn, f"tcp {peer[0]}:{peer[1]} (simulator side)")
            with self._current_lock:
                self._current = transport
            log.debug("simulator connection accepted", peer=f"{peer[0]}:{peer[1]}")
            try:
                _serve_once(self.engine, transport, self._stop)
            finally:
                with self._current_lock:
                    self._current = None
                transport.close()

    def stop(self) -> None:
        """Stop accepting, end the current connection and close the listening socket."""
        self._stop.set()
        if not _join(self._thread, f"tcp {self.host}:{self.port}"):
            with self._current_lock:
                if self._current is not None:
                    self._current.close()
            _join(self._thread, f"tcp {self.host}:{self.port}")
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()


class MemoryAttachment(_Attachment):
    """Run a simulator on one end of an in-process memory link (fast, fault-injectable tests).

    Args:
        engine: the simulator.
        manipulator_host: fault hook on what the host writes.
        manipulator_device: fault hook on what the simulator writes.
        description: prefix of both ends' descriptions.
    """

    def __init__(
        self,
        engine: DeviceEngine,
        manipulator_host: Manipulator | None = None,
        manipulator_device: Manipulator | None = None,
        description: str = "memory simulator",
    ) -> None:
        super().__init__(engine)
        self.manipulator_host = manipulator_host
        self.manipulator_device = manipulator_device
        self.description = description
        self._host: MemoryTransport | None = None
        self._device: MemoryTransport | None = None

    @property
    def host(self) -> MemoryTransport:
        """The host (cash register) end, also returned by :meth:`start`."""
        if self._host is None:
            raise RuntimeError("MemoryAttachment has not been started")
        return self._host

    @property
    def device(self) -> MemoryTransport:
        """The simulator's end, for tests that want to pull the cable or inject noise."""
        if self._device is None:
            raise RuntimeError("MemoryAttachment has not been started")
        return self._device

    def start(self) -> MemoryTransport:
        """Create the link, start the simulator on its device end, return the open host end."""
        self._check_not_started()
        self._host, self._device = MemoryTransport.pair(
            self.manipulator_host, self.manipulator_device, description=self.description
        )
        self._thread = _start_thread(self._run, f"posdiag-sim-{self.description}")
        return self._host

    def _run(self) -> None:
        device = self._device
        assert device is not None
        # Re-serve only while the link is intact: once the host has gone, this link is over.
        while not self._stop.is_set() and device.connected:
            _serve_once(self.engine, device, self._stop)
            self._stop.wait(_RESTART_DELAY)

    def stop(self) -> None:
        """Stop the simulator and close both ends."""
        self._stop.set()
        if not _join(self._thread, self.description) and self._device is not None:
            self._device.close()
            _join(self._thread, self.description)
        for end in (self._device, self._host):
            if end is not None:
                end.close()
