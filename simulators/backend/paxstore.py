"""A simulated PAXSTORE marketplace: the third-party system Open API, server side.

Speaks the API our connector and the vendor SDKs speak (reference §1), rooted at
``/p-market-api``: every call is authenticated by ``sysKey`` and ``timestamp`` query parameters
and a ``signature`` header, the uppercase hex HMAC-SHA256 (HmacMD5 with ``algorithm="md5"``,
as servers before 9.5.0) of the **raw query string as received** — clients order parameters as
a Java ``HashMap`` happens to iterate them, so no canonical order can be assumed. Answers use the
real envelope (``businessCode``/``message``/``data``; pages with ``pageNo, limit, totalCount,
hasNext, dataset``; 204 for activate, disable, move, delete and commands) and business codes.

Choices where the reference is silent (UNVERIFIED): a bad or missing signature and an expired
timestamp answer 129 with HTTP 401, an unknown key 104 with HTTP 401; the clock tolerance is
``tolerance_s`` (300 s); other business errors use HTTP 400 (404 for an unknown terminal), as
the SDK reads the body of any non-2xx answer.

State: ``SimTerminal.state`` maps to the status (bound → A, unbound → P, disabled → S), kept in
``extra["status"]`` because a unit moved to the depot is released (``state`` unbound) while still
A. ``store`` is the reseller name and ``merchant`` the merchant name. A move to the depot's
reseller and merchant calls :meth:`begin_release`, so the device-sync endpoint tells the unit to
drop its device owner (and the ``release_pending=N`` fault keeps the old assignment visible for
N lookups). A Lock is pending until the unit's next device sync. Delete removes the unit.

Faults: the common ones, ``bad_signature`` (reject every signature), ``skew=SECONDS`` (the
simulator's clock runs ahead by that much), ``release_pending=N``. Successful calls are counted
against a quota (``X-RateLimit-*`` headers, 429 past it); ``auth_failure_limit`` failed
authentications lock the key out for 30 minutes, as the real marketplace does.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from posdiag.drivers.errors import AddressError

from . import paxstore_api
from .server import COMMON_FAULTS, SYNC_PATH, BackendSimulator, Request, Response, SimTerminal

__all__ = [
    "API_ROOT",
    "SAMPLE_KEY",
    "SAMPLE_SECRET",
    "SEED_STATES",
    "PaxstoreSimulator",
    "terminals_from",
]

API_ROOT = "/p-market-api"
SAMPLE_KEY = "RCA9MDH6YN3WSSGPW6TJ"
SAMPLE_SECRET = "TUNLDZVZECHNKZ4FW07XFCKN2W0N8ZDEA5ENKZYN"
"""The sample credentials printed in the vendor SDK's terminal API documentation."""
DEFAULT_RESELLER = "Acme Payments"
DEFAULT_MERCHANT = "Corner Café Berlin"
DEFAULT_DEPOT = ("Depot", "Returns")
SEED_STATES = ("bound", "unbound", "disabled", "depot", "locked", "locking", "offline")
"""``SERIAL=STATE`` seeds: the three common states, plus ``depot`` (moved to the depot, status
A), ``locked`` / ``locking`` (A with a lock applied / in progress), ``offline`` (A, offline)."""
_SERIAL = re.compile(r"[A-Za-z0-9_-]{1,32}")
LOCKOUT_S = 1800.0


def terminals_from(pairs: Iterable[str], depot: tuple[str, str]) -> list[SimTerminal]:
    """Terminals from ``SERIAL=STATE`` pairs (see :data:`SEED_STATES`).

    Raises:
        AddressError: a malformed pair or an unknown state, naming the valid ones.
    """
    terminals = []
    for pair in pairs:
        serial, _, state = pair.partition("=")
        if not _SERIAL.fullmatch(serial) or state not in SEED_STATES:
            raise AddressError(
                f"terminal seed {pair[:60]!r}: SERIAL=STATE with STATE one of "
                f"{', '.join(SEED_STATES)}"
            )
        terminal = SimTerminal(serial=serial, store=DEFAULT_RESELLER, merchant=DEFAULT_MERCHANT)
        status = {"unbound": "P", "disabled": "S"}.get(state, "A")
        terminal.state = {"unbound": "unbound", "disabled": "disabled", "depot": "unbound"}.get(
            state, "bound"
        )
        terminal.extra["status"] = status
        if state == "depot":
            terminal.store, terminal.merchant = depot
            terminal.released_device_owner = True
        if state in ("locked", "locking"):
            terminal.extra["lock"] = "locked" if state == "locked" else "pending"
        terminal.online = state != "offline"
        terminals.append(terminal)
    return terminals


class PaxstoreSimulator(BackendSimulator):
    """A PAXSTORE marketplace with one external system (key, secret) and its terminals.

    Args:
        terminals: the units it knows (see also :meth:`seeded`).
        faults: common faults plus ``bad_signature``, ``skew``, ``release_pending``.
        key, secret: the external system's credentials (default: the SDK docs' sample).
        algorithm: ``sha256``, or ``md5`` for a server before 9.5.0.
        depot: the depot's (reseller, merchant): known to the marketplace, the release target.
        resellers: more resellers and their merchants.
        tolerance_s: accepted clock difference of ``timestamp``.
        quota, window_s: successful calls allowed per window (3,000 per 10 minutes).
        auth_failure_limit: failed authentications before a 30-minute lockout.
        retry_after_s: the ``Retry-After`` of a rate-limited answer.
        denied: API paths (``/terminals/network``) the external system has no permission for:
            they answer 131, as a marketplace whose admin did not grant them.
        clock: the simulator's time (``skew`` is added to it).
    """

    kind: ClassVar[str] = "paxstore"
    FAULTS: ClassVar[tuple[str, ...]] = (*COMMON_FAULTS, "bad_signature", "skew", "release_pending")

    def __init__(
        self,
        terminals: list[SimTerminal] | None = None,
        faults: Mapping[str, float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        key: str = SAMPLE_KEY,
        secret: str = SAMPLE_SECRET,
        algorithm: str = "sha256",
        depot: tuple[str, str] = DEFAULT_DEPOT,
        resellers: Mapping[str, Iterable[str]] | None = None,
        tolerance_s: float = 300.0,
        quota: int = 3000,
        window_s: float = 600.0,
        auth_failure_limit: int = 20,
        retry_after_s: int = 1,
        denied: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if algorithm not in ("sha256", "md5"):
            raise AddressError("the simulated PAXSTORE signs with sha256 or md5")
        self.key, self.secret, self.algorithm = key, secret, algorithm
        self.depot = depot
        self.resellers: dict[str, set[str]] = {DEFAULT_RESELLER: {DEFAULT_MERCHANT}}
        self.resellers.setdefault(depot[0], set()).add(depot[1])
        for reseller, merchants in (resellers or {}).items():
            self.resellers.setdefault(reseller, set()).update(merchants)
        self.tolerance_s = tolerance_s
        self.quota, self.window_s = quota, window_s
        self.auth_failure_limit = auth_failure_limit
        self.retry_after_s = retry_after_s
        self.denied = frozenset(denied)
        self.clock = clock
        self._scripted: dict[str, list[Response]] = {}
        self._next_id = 1_640_000_000
        self._successes: collections.deque[float] = collections.deque()
        self._auth_failures: collections.deque[float] = collections.deque()
        self.api_log: list[tuple[str, str, str, str | None]] = []
        """(method, path, raw query, signature header) of each API call, authenticated or not."""
        super().__init__(terminals, faults, host, port)

    @classmethod
    def seeded(cls, pairs: Iterable[str], **kwargs: Any) -> PaxstoreSimulator:
        """A simulator knowing the terminals of ``SERIAL=STATE`` pairs."""
        terminals = terminals_from(pairs, kwargs.get("depot", DEFAULT_DEPOT))  # before binding
        simulator = cls(**kwargs)
        for terminal in terminals:
            simulator.add(terminal)
        return simulator

    @property
    def api_url(self) -> str:
        """The marketplace API root a connector is configured with."""
        return self.base_url + API_ROOT

    def now(self) -> float:
        """The simulator's clock, ``skew`` seconds ahead of ``clock``."""
        return self.clock() + float(self.faults.get("skew", 0))

    def new_id(self, terminal: SimTerminal) -> str:
        """A PAXSTORE-like numeric id, never reused."""
        self._next_id += 7
        return str(self._next_id)

    def add(self, terminal: SimTerminal) -> SimTerminal:
        """Register a unit; its reseller and merchant become known to the marketplace."""
        with self.lock:
            terminal.extra.setdefault(
                "status", {"unbound": "P", "disabled": "S"}.get(terminal.state, "A")
            )
            if terminal.store and terminal.merchant:
                self.resellers.setdefault(terminal.store, set()).add(terminal.merchant)
            return super().add(terminal)

    def backends_toml(self, name: str = "paxstore") -> str:
        """A ready ``[backend.NAME]`` section for this simulator (TOML basic strings)."""
        lines = [
            f"[backend.{name}]",
            'kind = "paxstore"',
            f"url = {json.dumps(self.api_url)}",
            f"key = {json.dumps(self.key)}",
            f"secret = {json.dumps(self.secret)}",
            f"signature = {json.dumps(self.algorithm)}",
            'release = "move"',
            f"depot_reseller = {json.dumps(self.depot[0])}",
            f"depot_merchant = {json.dumps(self.depot[1])}",
            "rate = 200.0",
            "timeout = 5.0",
            "deadline = 15.0",
        ]
        return "\n".join(lines) + "\n"

    def answer_next(self, path: str, response: Response) -> None:
        """Serve ``response`` to the next authenticated call of ``path`` (``/terminal``).

        A hostile or broken marketplace for tests: answers no state can produce (wrong types,
        non-JSON, huge numbers) without a separate server.
        """
        with self.lock:
            self._scripted.setdefault(path, []).append(response)

    # -- release bookkeeping -----------------------------------------------------------------

    def begin_release(self, terminal: SimTerminal) -> None:
        """A move to the depot: applied now, or after ``release_pending`` lookups."""
        super().begin_release(terminal)
        if terminal.state != "pending":
            self._finish_move(terminal)

    def settle_pending(self, terminal: SimTerminal) -> None:
        """Count a lookup of a pending move; apply the move when its lookups are used up."""
        was_pending = terminal.state == "pending"
        super().settle_pending(terminal)
        if was_pending and terminal.state != "pending":
            self._finish_move(terminal)

    def _finish_move(self, terminal: SimTerminal) -> None:
        target = terminal.extra.pop("move_to", None)
        if target is not None:
            terminal.store, terminal.merchant = target
        terminal.state = "disabled" if terminal.extra.get("status") == "S" else "unbound"

    def set_status(self, terminal: SimTerminal, status: str) -> None:
        """A new PAXSTORE status, mirrored in ``state`` (a unit in the depot stays released)."""
        terminal.extra["status"] = status
        if terminal.state == "pending":
            return
        at_depot = (terminal.store, terminal.merchant) == self.depot
        terminal.state = {
            "A": "unbound" if at_depot else "bound",
            "P": "unbound",
            "S": "disabled",
        }[status]

    # -- HTTP --------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Log the call; a device sync also delivers a pending Lock to the unit."""
        if request.path != SYNC_PATH:
            with self.lock:
                signature = request.headers.get("signature")
                self.api_log.append((request.method, request.path, request.raw_query, signature))
                del self.api_log[:-500]
        response = super().handle(request)
        if request.path == SYNC_PATH:
            with self.lock:
                terminal = self.terminals.get(request.query.get("serial", ""))
                if terminal is not None and terminal.extra.get("lock") == "pending":
                    terminal.extra["lock"] = "locked"
        return response

    def rate_limited(self) -> Response:
        """HTTP 429 with the envelope, the ``X-RateLimit-*`` headers and ``Retry-After``."""
        with self.lock:
            headers = self._quota_headers(remaining=0)
        headers["Retry-After"] = str(self.retry_after_s)
        return Response.json(429, {"businessCode": 429, "message": "Too many requests"}, **headers)

    def route(self, request: Request) -> Response:
        """Authenticate, count against the quota, then the endpoint (lock held)."""
        prefix = API_ROOT + paxstore_api.API
        if not request.path.startswith(prefix + "/"):
            return paxstore_api.error(404, 998, "Bad request")
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        now = self.now()
        while self._successes and self._successes[0] <= now - self.window_s:
            self._successes.popleft()
        if len(self._successes) >= self.quota:
            self.count("rate_limited")
            return self.rate_limited()
        self._successes.append(now)
        path = request.path[len(prefix) :]
        if self._scripted.get(path):
            response = self._scripted[path].pop(0)
        elif path in self.denied:
            response = paxstore_api.error(403, 131, "Insufficient access")
        else:
            response = paxstore_api.dispatch(self, request, path)
        headers = {**response.headers, **self._quota_headers()}
        return Response(response.status, response.body, response.content_type, headers)

    def _quota_headers(self, remaining: int | None = None) -> dict[str, str]:
        now = self.now()
        oldest = self._successes[0] if self._successes else now
        left = max(0, self.quota - len(self._successes)) if remaining is None else remaining
        return {
            "X-RateLimit-Limit": str(self.quota),
            "X-RateLimit-Remaining": str(left),
            "X-RateLimit-Reset": str(int((oldest + self.window_s) * 1000)),
        }

    def _authenticate(self, request: Request) -> Response | None:
        """None when ``sysKey``, ``timestamp`` and ``signature`` are right, else the refusal."""
        now = self.now()
        while self._auth_failures and self._auth_failures[0] <= now - LOCKOUT_S:
            self._auth_failures.popleft()
        if len(self._auth_failures) >= self.auth_failure_limit:
            wait = int(self._auth_failures[-1] + LOCKOUT_S - now) + 1
            return Response.json(
                429,
                {"businessCode": 429, "message": "Too many failed authentications"},
                **{"Retry-After": str(wait)},
            )
        if request.query.get("sysKey", "") != self.key:
            return self._auth_failed(104, "Client key is missing or invalid")
        timestamp = request.query.get("timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
            return self._auth_failed(129, "Authentication failed")
        if abs(now * 1000 - int(timestamp)) > self.tolerance_s * 1000:
            self.count("skewed")
            return self._auth_failed(129, "Authentication failed")
        raw = "&".join(p for p in request.raw_query.split("&") if not p.startswith("signature="))
        digest = hashlib.sha256 if self.algorithm == "sha256" else hashlib.md5
        expected = hmac.new(self.secret.encode(), raw.encode("latin-1", "replace"), digest)
        given = request.headers.get("signature", "")
        if self.faults.get("bad_signature") or not hmac.compare_digest(
            expected.hexdigest().upper().encode(), given.encode("utf-8", "replace")
        ):
            self.count("bad_signatures")
            return self._auth_failed(129, "Authentication failed")
        return None

    def _auth_failed(self, code: int, message: str) -> Response:
        self._auth_failures.append(self.now())
        return paxstore_api.error(401, code, message)
