"""Receive the EventNotifications nexo terminals POST, and record them per terminal.

An Adyen terminal reports what happens to it (``SecurityAlarm``, ``OutOfOrder``,
``NetworkDisconnected``…) by POSTing an EventNotification to the URLs configured for it
(Management API ``nexo.eventUrls``: ``eventLocalUrls`` for the shop network), encrypted with its
shared key when it has one; it expects no response body and never retries (reference nexo.md
§1, §4). A terminal that raised a SecurityAlarm and then restarted may report
``SecurityOKFlag`` true at the bench: the alarm is only known to whoever received it. So the
station receives them: :class:`EventReceiver` is a small threaded HTTP server
(``http://HOST:PORT/events``) that

1. reads one bounded body (:data:`MAX_BODY`, ``Content-Length`` or chunked, as the Node library
   sends) within a deadline (:data:`READ_TIMEOUT_S` per read, :data:`CONNECTION_DEADLINE_S` for
   the whole request) and serves at most :data:`MAX_CONNECTIONS` at once;
2. decrypts and authenticates it with the station's nexo key, resolved as for a check (the
   settings' ``[nexo]`` table, else ``POSDIAG_NEXO_*``): an event under another key, with a
   failed HMAC, or in clear text while the station has a key is dropped (403) and logged without
   any secret; without a key (TEST terminals) clear events are accepted and marked so;
3. checks it is an EventNotification (``MessageClass`` Event, ``MessageType`` Notification) from
   a POIID, and records it (:class:`~posdiag.drivers.nexo.event_log.NexoEventLog`), where a later
   check's tamper probe reads it;
4. answers 200 with an empty body (terminals expect none); 400 for a body that is not an
   event, 403 for one dropped, 411/413 for a body without a length or too large, 404/405 for
   another path or method. Every answer is bodiless, and the connection is closed.

Plain HTTP, on purpose for now: Adyen's local event URLs may be ``http://`` on the shop LAN, and
the shared-key encryption is what authenticates an event; a TLS listener can be added later
without changing the rest. Nothing here prints; the CLI (``posdiag nexo-events``,
``posdiag station --nexo-events``) announces the URL.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from posdiag.drivers.i18n import _
from posdiag.drivers.nexo.http_body import BodyError, read_body
from posdiag.drivers.text import clean_text

from .logs import get_logger

if TYPE_CHECKING:
    from posdiag.drivers.nexo.crypto import NexoKey
    from posdiag.drivers.nexo.event_log import NexoEventLog, RecordedEvent
    from posdiag.drivers.nexo.readers import Event

__all__ = [
    "CONNECTION_DEADLINE_S",
    "EVENT_PATH",
    "MAX_BODY",
    "MAX_CONNECTIONS",
    "READ_TIMEOUT_S",
    "EventReceiver",
    "parse_listen",
]

log = get_logger(__name__)

MAX_BODY = 256 * 1024
"""Largest event body accepted: an encrypted EventNotification is about a kilobyte."""
READ_TIMEOUT_S = 10.0
"""Seconds one read from a peer may wait."""
CONNECTION_DEADLINE_S = 30.0
"""Seconds one request may take from connection to answer (a slow peer is cut off)."""
MAX_CONNECTIONS = 32
"""Requests served at once; more are closed unanswered (a terminal sends one at a time)."""
EVENT_PATH = "/events"
"""The path announced; ``/events/`` and ``/`` are accepted too (a URL typed without it)."""
_PATHS = frozenset({EVENT_PATH, EVENT_PATH + "/", "/"})
MAX_CHUNKS = 4096
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]|[0-9A-Fa-f:.]{2,45}")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``; port 0 picks a free one.

    Raises:
        ValueError: a sentence naming the value and the expected form.
    """
    wrong = ValueError(
        _("{value!r} is not HOST:PORT (for example 0.0.0.0:8090; a port from 0 to 65535)").format(
            value=clean_text(text, limit=80)
        )
    )
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise wrong
    if not _HOST.fullmatch(host) or int(port_text) > 65535:
        raise wrong
    if ":" in host.strip("[]") and not host.startswith("["):
        raise wrong  # an IPv6 address needs brackets: "::1:8090" is ambiguous
    return host.strip("[]"), int(port_text)


def lan_address(family: int) -> str:
    """This machine's address on the network its default route leads to (no packet is sent).

    A terminal cannot POST to ``0.0.0.0``: the URL it is given must name the station's address.
    """
    probe = ("2001:db8::1", 9) if family == socket.AF_INET6 else ("192.0.2.1", 9)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect(probe)  # a UDP "connect" only chooses the route
            return str(udp.getsockname()[0])
    except OSError:
        return socket.gethostname()


class EventReceiver:
    """The HTTP server receiving EventNotifications, recording them in the event log.

    Args:
        host, port: where to listen (port 0: a free port, see :attr:`url`).
        key: the station's nexo key (None: no key, clear events accepted).
        event_log: where events are recorded (default: the user's data folder).
        on_event: called with each newly recorded event, from a handler thread (the CLI prints
            it); its exceptions are logged, never answered to the terminal.
        clock: the wall clock, for the time received.

    Use as a context manager, or :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        key: NexoKey | None,
        event_log: NexoEventLog | None = None,
        on_event: Callable[[RecordedEvent], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from posdiag.drivers.nexo.event_log import NexoEventLog

        self.host = host
        self.port = port
        self.key = key
        self.event_log = event_log or NexoEventLog(clock=clock)
        self.on_event = on_event
        self.clock = clock
        self.counts: Counter[str] = Counter()
        """Outcomes so far: ``recorded``, ``duplicate``, ``dropped``, ``refused``, ``failed``."""
        self._counts_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life -----------------------------------------------------------------------------------

    def start(self) -> EventReceiver:
        """Bind and serve from a background thread.

        Raises:
            OSError: the address cannot be bound (in use, not this machine's).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server((self.host, self.port), self, family)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.25},
            name="nexo-events",
            daemon=True,
        )
        self._thread.start()
        log.info("nexo.events_listening", url=self.url, encrypted=self.key is not None)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (requests in flight finish on their own)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        log.info("nexo.events_stopped", **dict(self.counts))

    def __enter__(self) -> EventReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def bound(self) -> tuple[str, int]:
        """The address actually listened on (the real port when 0 was asked)."""
        if self._server is None:
            return self.host, self.port
        address = self._server.server_address
        return str(address[0]), int(address[1])

    @property
    def url(self) -> str:
        """The URL to give the terminals (``http://10.0.0.5:8090/events``).

        A wildcard listen address (``0.0.0.0``, ``::``) is shown as this machine's LAN address.
        """
        host, port = self.bound
        if host in ("0.0.0.0", "::", ""):
            host = lan_address(socket.AF_INET6 if host == "::" else socket.AF_INET)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}{EVENT_PATH}"

    # --- one event (no HTTP here) ---------------------------------------------------------------

    def receive(self, body: bytes, peer: str = "?") -> int:
        """Handle one POSTed body; returns the HTTP status to answer.

        200: recorded (or already recorded); 400: not a readable EventNotification from a
        POIID; 403: not authenticated by the station's key (dropped); 500: it could not be
        written down.
        """
        from posdiag.drivers.nexo.errors import (
            NexoCryptoError,
            NexoDecodeError,
            NexoUnknownKeyError,
        )
        from posdiag.drivers.nexo.failures import NexoConfigError
        from posdiag.drivers.nexo.jsonwire import loads
        from posdiag.drivers.private_files import POIID_FILE_NAME

        try:
            wire = loads(body)
        except NexoDecodeError as exc:
            return self._refuse(peer, "not a nexo message", detail=exc.detail)
        from posdiag.drivers.nexo.crypto import decrypt_message, is_encrypted

        claimed = _claimed_poiid(wire)
        encrypted = is_encrypted(wire)
        if encrypted:
            if self.key is None:
                return self._drop(peer, claimed, "encrypted, but the station has no nexo key")
            try:
                message, _plain = decrypt_message(wire, self.key)
            except NexoUnknownKeyError as exc:  # identifier and version travel in clear
                return self._drop(
                    peer, claimed, "unknown key", key=exc.identifier, version=exc.version
                )
            except NexoCryptoError:
                return self._drop(peer, claimed, "authentication failed (wrong shared key)")
            except NexoDecodeError as exc:
                return self._refuse(peer, "not a nexo message", detail=exc.detail)
        else:
            message = wire  # read first: a body that is no event at all is a 400 either way
        try:
            event, poiid = _read_notification(message)
        except NexoDecodeError as exc:
            return self._refuse(peer, "not an event notification", detail=exc.detail)
        if poiid is None or not POIID_FILE_NAME.fullmatch(poiid):
            return self._refuse(peer, "no POIID in the header", poiid=claimed)
        if not encrypted and self.key is not None:  # anyone on the LAN could have written it
            return self._drop(peer, claimed, "unencrypted, but the station has a nexo key")
        try:
            recorded = self.event_log.record(
                poiid, event, received_at=self.clock(), encrypted=encrypted
            )
        except NexoConfigError as exc:
            self._count("failed")
            log.error("nexo.event_not_recorded", poiid=poiid, kind=event.kind, error=str(exc))
            return 500
        if recorded is None:
            self._count("duplicate")
            log.info("nexo.event_duplicate", poiid=poiid, kind=event.kind)
            return 200
        self._count("recorded")
        log.info(
            "nexo.event_recorded", poiid=poiid, kind=recorded.kind, encrypted=encrypted, peer=peer
        )
        if self.on_event is not None:
            try:
                self.on_event(recorded)
            except Exception as exc:  # the caller's display: never the terminal's problem
                log.warning("nexo.event_callback_failed", error=type(exc).__name__)
        return 200

    def _count(self, outcome: str) -> None:
        with self._counts_lock:
            self.counts[outcome] += 1

    def _drop(self, peer: str, poiid: str | None, reason: str, **fields: Any) -> int:
        """An event the station's key does not authenticate: logged (no secrets), not recorded."""
        self._count("dropped")
        log.warning("nexo.event_dropped", reason=reason, peer=peer, poiid=poiid, **fields)
        return 403

    def _refuse(self, peer: str, reason: str, **fields: Any) -> int:
        self._count("refused")
        log.warning("nexo.event_refused", reason=reason, peer=peer, **fields)
        return 400


def _claimed_poiid(wire: dict[str, Any]) -> str | None:
    """The POIID the clear header claims (for logs only: not yet authenticated), cleaned."""
    inner = next(iter(wire.values()), None) if len(wire) == 1 else None
    header = inner.get("MessageHeader") if isinstance(inner, dict) else None
    poiid = header.get("POIID") if isinstance(header, dict) else None
    return clean_text(poiid, limit=40) if isinstance(poiid, str) else None


def _read_notification(message: dict[str, Any]) -> tuple[Event, str | None]:
    """The Event and POIID of an EventNotification; NexoDecodeError for anything else."""
    from posdiag.drivers.nexo.errors import NexoDecodeError
    from posdiag.drivers.nexo.messages import decode_message
    from posdiag.drivers.nexo.readers import read_event

    msg = decode_message(message)
    header = msg.header
    if (
        header.message_class != "Event"
        or header.message_category != "Event"
        or header.message_type != "Notification"
    ):
        raise NexoDecodeError(
            f"expected an Event notification, got {header.message_class} "
            f"{header.message_category} {header.message_type}",
            path=msg.top,
        )
    return read_event(msg), header.poiid


# --- HTTP --------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a bound on concurrent requests and quiet errors."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, address: tuple[str, int], receiver: EventReceiver, family: int) -> None:
        self.address_family = family
        self.receiver = receiver
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's name, which may hang on a shop LAN
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("nexo.events_busy", peer=str(client_address[0]))
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        log.debug(
            "nexo.events_connection_error",
            peer=str(client_address[0]),
            error=clean_text(repr(error), limit=200),
        )


class _Handler(BaseHTTPRequestHandler):
    """One connection: one POST, one bodiless answer, then close."""

    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "posdiag"
    sys_version = ""
    timeout = READ_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        self._timer = threading.Timer(CONNECTION_DEADLINE_S, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        """The request's time is up: cut the connection (a blocked read returns at once)."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self._timer.cancel()
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the base class's stderr lines: outcomes are logged by the receiver."""

    def do_POST(self) -> None:
        if urlsplit(self.path).path not in _PATHS:
            self._answer(404)
            return
        body = self._body()
        if isinstance(body, int):
            self._answer(body)
            return
        self._answer(self.server.receiver.receive(body, peer=str(self.client_address[0])))

    def do_GET(self) -> None:
        self._answer(405)

    do_HEAD = do_PUT = do_DELETE = do_GET

    def _answer(self, status: int) -> None:
        """A bodiless answer, and close: terminals expect no body and send one event a time."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(status)
            if status == 405:
                self.send_header("Allow", "POST")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

    def _body(self) -> bytes | int:
        """The request body, or the status that refuses it (411, 413, 400, 408)."""
        try:
            return read_body(
                self.rfile, self.headers, max_body=MAX_BODY, strict=True, max_chunks=MAX_CHUNKS
            )
        except BodyError as exc:
            return exc.status
        except OSError:  # the connection's deadline cut it, or the peer reset it
            return 408
