"""The HTTP side every simulated backend shares: a threaded server, state under one lock, faults.

A simulated backend is judged like a simulated terminal: unmodified third-party clients (the
official Adyen library, a PAXSTORE SDK, our own connectors) must work against it. Each kind
(``paxstore``, ``adyen``, ``generic``) subclasses :class:`BackendSimulator` and implements
``route`` with its real paths, envelope and error formats; this module owns what is common:

* the server (stdlib ``ThreadingHTTPServer`` on a chosen or free port), start and stop;
* the terminals the backend knows (:class:`SimTerminal`), shared state under one lock;
* **faults** that apply before the kind's routing, each counted so a test can see it happen:
  ``rate_limit=N`` (the first N API calls get 429 with ``Retry-After``), ``server_error=N``
  (the first N get 503), ``slow=S`` (every answer waits S seconds), ``garbage=N`` (the first N
  get a non-JSON 200), and kind-specific ones read by the subclass (``bad_signature``, ``skew``,
  ``release_pending=N`` — a release stays in progress for N lookups);
* the **device sync** endpoint ``/_sim/device/sync`` that simulated terminals poll as real ones
  poll their TMS: it registers the unit and tells it whether its device owner was released.
  It is not part of any vendor API and is answered before faults apply.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

from posdiag.drivers.errors import AddressError

from ..tms_sync import SYNC_PATH

__all__ = [
    "COMMON_FAULTS",
    "SYNC_PATH",
    "BackendSimulator",
    "Request",
    "Response",
    "SimTerminal",
]

COMMON_FAULTS = ("rate_limit", "server_error", "slow", "garbage")
MAX_BODY = 1024 * 1024


@dataclass
class SimTerminal:
    """One unit as a backend holds it; kinds read and change these fields."""

    serial: str
    state: str = "bound"
    """bound | unbound | disabled | pending (release accepted, waiting for the terminal)."""
    merchant: str | None = "M100200300400"
    store: str | None = "S0001"
    model: str = "A920"
    firmware: str = "PayDroid_8.1.0_Sagittarius_V11.1.35_20230307"
    tusn: str | None = None
    battery_pct: int | None = 87
    online: bool = True
    last_seen: float = field(default_factory=time.time)
    backend_id: str = ""
    pending_lookups: int = 0
    """Lookups left before a pending release completes."""
    released_device_owner: bool = False
    """Set when the binding was released: the terminal drops its device owner at its next sync."""
    lost_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One request as the kind's router sees it (the raw query kept for signature checks)."""

    method: str
    path: str
    raw_query: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    """What the router answers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, payload: Any, content_type: str = "application/json", **headers: str
    ) -> Response:
        """A JSON answer."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return cls(status, body, content_type, headers)


class _QuietServer(ThreadingHTTPServer):
    """A client that stops reading (a connector's body bound) resets: no traceback for that."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connections the client dropped; report anything else as socketserver does."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class BackendSimulator:
    """A stateful backend over HTTP; subclasses implement ``route``.

    Args:
        terminals: the units it knows.
        faults: fault name → value (validated against ``FAULTS``).
        host, port: where to listen (port 0: a free one).
    """

    kind: ClassVar[str] = "base"
    FAULTS: ClassVar[tuple[str, ...]] = COMMON_FAULTS

    def __init__(
        self,
        terminals: list[SimTerminal] | None = None,
        faults: Mapping[str, float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        unknown = sorted(set(faults or {}) - set(self.FAULTS))
        if unknown:
            raise AddressError(
                f"unknown backend fault {unknown[0]!r} (known: {', '.join(self.FAULTS)})"
            )
        self.faults: dict[str, float] = dict(faults or {})
        for name, value in self.faults.items():
            if not 0 <= float(value) <= 1_000_000:
                raise AddressError(f"backend fault {name}={value!r} is out of range")
        self.lock = threading.RLock()
        self.terminals: dict[str, SimTerminal] = {}
        for terminal in terminals or []:
            self.add(terminal)
        self.counts: dict[str, int] = {}
        self.forgotten: set[str] = set()
        """Serials deleted here: a real TMS does not re-enrol a deleted unit when it calls in."""
        self.requests: list[tuple[str, str]] = []
        self._server = _QuietServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where clients point (the kind appends its API root, e.g. ``/v3``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """The API root a connector or SDK is configured with."""
        return self.base_url

    def start(self) -> Self:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() waits one poll: keep tests and Ctrl-C quick
            name=f"sim-backend-{self.kind}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (safe when it never started serving)."""
        if self._thread is not None:
            self._server.shutdown()  # blocks until serve_forever returns: only when it runs
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def backends_toml(self, name: str) -> str:
        """A ready ``[backend.NAME]`` section pointing at this simulator, with its credentials."""
        raise NotImplementedError(f"{type(self).__name__} writes no backends file")

    # -- state -------------------------------------------------------------------------------

    def add(self, terminal: SimTerminal) -> SimTerminal:
        """Register a unit (a simulated terminal's first sync does this too)."""
        with self.lock:
            if not terminal.backend_id:
                terminal.backend_id = self.new_id(terminal)
            self.terminals[terminal.serial] = terminal
            return terminal

    def forget(self, serial: str) -> None:
        """Delete a unit: its terminal's next sync finds it unregistered, not enrolled anew."""
        with self.lock:
            self.terminals.pop(serial, None)
            self.forgotten.add(serial)

    def new_id(self, terminal: SimTerminal) -> str:
        """The backend's id for a new unit."""
        return str(100000 + len(self.terminals))

    def find(self, serial: str | None = None, tusn: str | None = None) -> SimTerminal | None:
        """A unit by serial or TUSN."""
        with self.lock:
            if serial and serial in self.terminals:
                return self.terminals[serial]
            if tusn:
                for terminal in self.terminals.values():
                    if terminal.tusn == tusn:
                        return terminal
            return None

    def settle_pending(self, terminal: SimTerminal) -> None:
        """Count one lookup of a pending release; complete it when its lookups are used up."""
        if terminal.state == "pending":
            if terminal.pending_lookups > 0:
                terminal.pending_lookups -= 1
            if terminal.pending_lookups <= 0:
                self._released(terminal)

    def begin_release(self, terminal: SimTerminal) -> None:
        """Release a unit: at once, or after ``release_pending`` lookups (the terminal syncing)."""
        terminal.released_device_owner = True
        pending = int(self.faults.get("release_pending", 0))
        if pending > 0:
            terminal.state = "pending"
            terminal.pending_lookups = pending
        else:
            self._released(terminal)

    @staticmethod
    def _released(terminal: SimTerminal) -> None:
        """A completed release: no merchant, no store (kinds with a depot override the caller)."""
        terminal.state = "unbound"
        terminal.merchant = None
        terminal.store = None

    def count(self, name: str) -> int:
        """Increment and return a counter (faults applied, calls by operation)."""
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            return self.counts[name]

    # -- routing -----------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        """The kind's API. Subclasses override."""
        return Response.json(404, {"error": "not found"})

    def _common_faults(self, request: Request) -> Response | None:
        slow = float(self.faults.get("slow", 0))
        if slow:
            time.sleep(slow)
        if self.count("calls") <= int(self.faults.get("rate_limit", 0)):
            self.count("rate_limited")
            return self.rate_limited()
        if self.counts.get("calls", 0) - int(self.faults.get("rate_limit", 0)) <= int(
            self.faults.get("server_error", 0)
        ):
            self.count("server_errors")
            return Response(503, b"<html>Service Unavailable</html>", "text/html")
        if self.count("after_faults") <= int(self.faults.get("garbage", 0)):
            return Response(200, b"\x1b[2J<html>\x00garbage", "application/json")
        return None

    def rate_limited(self) -> Response:
        """The kind's 429 (subclasses add their headers and envelope)."""
        return Response.json(429, {"message": "too many requests"}, **{"Retry-After": "1"})

    def _sync(self, request: Request) -> Response:
        serial = request.query.get("serial", "")
        if not serial or len(serial) > 64:
            return Response.json(400, {"error": "serial required"})
        with self.lock:
            terminal = self.terminals.get(serial)
            if terminal is None and serial in self.forgotten:
                return Response.json(
                    200, {"serial": serial, "state": "unregistered", "release_device_owner": True}
                )
            if terminal is None:
                terminal = self.add(
                    SimTerminal(serial=serial, model=request.query.get("model", "A920")[:32])
                )
            terminal.last_seen = time.time()
            terminal.online = True
            self.settle_pending(terminal)
            return Response.json(
                200,
                {
                    "serial": serial,
                    "state": terminal.state,
                    "release_device_owner": terminal.released_device_owner,
                    "locked": terminal.state == "disabled",
                },
            )

    def handle(self, request: Request) -> Response:
        """Faults, then the device sync, then the kind's API."""
        with self.lock:
            self.requests.append((request.method, request.path))
            del self.requests[:-1000]
        if request.path.endswith(SYNC_PATH):  # under any API root: --tms takes the URL shown
            return self._sync(request)
        fault = self._common_faults(request)
        if fault is not None:
            return fault
        with self.lock:
            return self.route(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small answers must not wait 40 ms for an ACK
            server_version = f"posdiag-sim-{simulator.kind}"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the simulator's requests are counted, not printed."""

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self.send_error(413)
                    return
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    raw_query=parts.query,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                try:
                    response = simulator.handle(request)
                except Exception as exc:  # the simulator's own bug: answer 500, keep serving
                    response = Response.json(500, {"error": type(exc).__name__})
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if response.status != 204:
                    self.send_header("Content-Type", response.content_type)
                    self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if response.status != 204 and self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler
