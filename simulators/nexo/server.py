"""The HTTPS side of a simulated Adyen terminal: ``POST /nexo`` on a thread per connection.

A real terminal is the HTTPS server of a local integration (reference §1): the POS POSTs one
JSON message to ``https://<terminal>:8443/nexo`` and reads the answer from the same response.
The official Node library posts to ``/nexo/`` with ``Transfer-Encoding: chunked`` and
``Connection: close``; .NET and httpx post to ``/nexo`` with a ``Content-Length`` and keep the
connection open. This server takes all of them, on the standard library only
(``http.server`` + ``ssl``):

* paths ``/nexo`` and ``/nexo/`` (a query string is ignored: the Node library's port trick
  sends ``/nexo?:8443/nexo/``), ``POST`` only (405 otherwise), every other path 404;
* request bodies chunked or by Content-Length, at most :data:`MAX_BODY` bytes (413 beyond),
  read within :data:`READ_DEADLINE_S` whatever the client trickles (408 past it), chunk-size
  lines and trailers bounded;
* TLS with the simulator's leaf certificate; the handshake runs in the connection's own thread
  with the same deadline, so a client that never finishes it holds nothing but its thread;
* at most :data:`MAX_REQUESTS_PER_CONNECTION` requests on one kept-alive connection, idle
  connections closed after :data:`IDLE_TIMEOUT_S`, at most :data:`MAX_CONNECTIONS` at once;
* :meth:`NexoHttpsServer.cut_connections` severs every open connection at once (a pulled
  network cable, for the simulated bus), whatever request it is in the middle of.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from posdiag.drivers.nexo.http_body import BodyError, read_body

from .engine import Answer, NexoEngine

__all__ = ["MAX_BODY", "NexoHttpsServer"]

log = structlog.get_logger(__name__)

MAX_BODY = 1 << 20
"""Largest request body (1 MiB, the codec's message bound)."""
READ_DEADLINE_S = 10.0
"""Seconds a client has to send a whole request (headers and body) once it started."""
IDLE_TIMEOUT_S = 15.0
"""Seconds a kept-alive connection may sit idle between requests."""
MAX_REQUESTS_PER_CONNECTION = 1000
MAX_CONNECTIONS = 64
"""Connections served at once; more wait in the listen backlog (a terminal is one device)."""
LINGER_BYTES = 4 * MAX_BODY
LINGER_S = 1.0
"""After refusing a body unread, read and discard at most this much, this long, before closing:
closing with unread data resets the connection, and the client would lose the refusal."""
PATHS = ("/nexo", "/nexo/")


class _Deadline:
    """A per-request deadline that also bounds each blocking socket read."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self.sock = sock
        self.end = time.monotonic() + seconds

    def arm(self) -> None:
        left = self.end - time.monotonic()
        if left <= 0:
            raise BodyError(408, "request took too long")
        self.sock.settimeout(left)


class _Handler(BaseHTTPRequestHandler):
    """One connection; ``server`` is the :class:`NexoHttpsServer`."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "posdiag-sim-nexo"
    sys_version = ""
    timeout = READ_DEADLINE_S  # the TLS handshake and the first request line
    server: NexoHttpsServer

    def setup(self) -> None:
        """Finish the TLS handshake here, in this connection's thread, within the deadline."""
        sock = self.request
        sock.settimeout(READ_DEADLINE_S)
        if isinstance(sock, ssl.SSLSocket):
            sock.do_handshake()
        super().setup()
        self.served = 0

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are logged through structlog at debug level."""

    def handle_one_request(self) -> None:
        """Serve one request; keep-alive connections idle out after IDLE_TIMEOUT_S."""
        if self.served:
            self.connection.settimeout(IDLE_TIMEOUT_S)
        self.served += 1
        if self.served > MAX_REQUESTS_PER_CONNECTION:
            self.close_connection = True
            return
        super().handle_one_request()

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        if body or status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _not_here(self) -> None:
        path = self.path.split("?", 1)[0]
        self.close_connection = True
        if path in PATHS:
            self.send_response(405)
            self.send_header("Allow", "POST")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        self._send(404, b'{"errors": ["Not Found"]}')

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_here

    def _linger(self) -> None:
        """Discard what the client still sends (bounded) so it can read the refusal."""
        with contextlib.suppress(OSError, ValueError):
            self.wfile.flush()
            end = time.monotonic() + LINGER_S
            left = LINGER_BYTES
            while left > 0 and (wait := end - time.monotonic()) > 0:
                self.connection.settimeout(wait)
                piece = self.rfile.read1(min(left, 65536))
                if not piece:
                    break
                left -= len(piece)

    def do_POST(self) -> None:
        """``POST /nexo``: read the body, let the engine answer, send it (or drop the line)."""
        if self.path.split("?", 1)[0] not in PATHS:
            self._not_here()
            return
        deadline = _Deadline(self.connection, READ_DEADLINE_S)
        try:
            body = read_body(
                self.rfile, self.headers, max_body=MAX_BODY, strict=False, arm=deadline.arm
            )
        except BodyError as exc:
            log.debug("sim.nexo.http.bad_body", status=exc.status, reason=exc.reason)
            self.close_connection = True
            self._send(exc.status, b'{"errors": ["' + exc.reason.encode() + b'"]}')
            if exc.status != 408:  # a client too slow to send is not waited for again
                self._linger()
            return
        self.connection.settimeout(READ_DEADLINE_S)  # for writing the answer
        answer: Answer = self.server.engine.respond(body)
        log.debug("sim.nexo.http", status=answer.status, size=len(body), drop=answer.drop)
        if answer.drop:
            self.close_connection = True
            self.server.drop(self.connection)
            return
        self._send(answer.status, answer.body, answer.content_type)


class NexoHttpsServer(ThreadingHTTPServer):
    """HTTPS on a thread per connection, serving one :class:`NexoEngine`.

    Args:
        address: (host, port) to listen on; port 0 picks a free one.
        engine: what answers the bodies.
        context: the server-side TLS context (None: plain HTTP, for tests of the framing).
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], engine: NexoEngine, context: ssl.SSLContext | None
    ) -> None:
        self.engine = engine
        self.context = context
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        """Accept, and wrap in TLS without handshaking (the connection's thread does that)."""
        sock, client = self.socket.accept()
        if self.context is not None:
            sock = self.context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, client

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start the connection's thread once a slot is free (at most MAX_CONNECTIONS)."""
        self._slots.acquire()
        with self._open_lock:  # before its thread starts: a cut right after stop() sees it
            self._open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._open_lock:
                self._open.discard(request)
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve the connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)
            self._slots.release()

    def cut_connections(self) -> int:
        """Sever every open connection now (no TLS close_notify); how many were open.

        The socket is shut down below TLS, so a connection thread blocked reading or writing
        returns with an error and the client sees its line die mid-request.
        """
        with self._open_lock:
            connections = list(self._open)
        for sock in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        return len(connections)

    def drop(self, sock: socket.socket) -> None:
        """Close a connection at once, without a TLS close_notify (the ``drop`` fault)."""
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up, failed TLS or stalled is normal for a terminal: log at debug."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | ssl.SSLError | TimeoutError | OSError):
            log.debug("sim.nexo.http.connection_error", error=type(error).__name__)
            return
        log.warning("sim.nexo.http.handler_error", error=repr(error)[:200])

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sim-nexo-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket (safe when never started)."""
        if self._thread is not None:
            self.shutdown()
            self._thread = None
        self.server_close()
