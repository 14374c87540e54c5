"""A simulated Adyen Management API v3: terminal search and reassignment, with Adyen's errors.

Served under ``/v3`` (``api_url``), so the official ``Adyen`` library works against it with only
its service's ``baseUrl`` changed, and so does posdiag's connector:

* ``GET /v3/terminals`` — ``searchQuery`` (ids containing it, case-insensitive; it overrides the
  other filters), ``countries``, ``merchantIds``, ``storeIds``, ``brandModels`` (comma lists),
  ``pageNumber`` (1-based), ``pageSize`` (1–100, default 20); answers ``_links``
  (first/last/self, next/prev when they exist, absolute hrefs), ``itemsTotal``, ``pagesTotal``
  and full Terminal objects sorted by id. ``lastActivityAt`` is omitted when the unit was last
  seen more than 14 days ago, as Adyen does.
* ``POST /v3/terminals/{id}/reassign`` — exactly one target: ``{"companyId"}``,
  ``{"merchantId", "inventory"}`` (``inventory`` required) or ``{"storeId"}``; the target must
  be an account or store the simulator knows. 200 with no body.
* Auth: ``X-API-Key`` (header name in any case) or HTTP Basic; roles per credential
  (``roles=``): reading needs "Management API—Terminal actions read", reassigning "Management
  API—Assign Terminal".
* Errors are ``application/problem+json`` ``RestServiceError`` bodies (``type, errorCode, title,
  detail, status``, ``invalidFields`` on validation errors). ``00_401``/``00_403`` are Adyen's
  documented codes; Adyen publishes none for the rest, so the simulator uses
  ``00_400``/``00_404``/``00_422``/``00_429``.

State mapping (``SimTerminal.state`` → ``assignment.status``): ``bound`` → ``boarded``;
``deployed`` → ``deployed``; ``unbound`` → ``inventory`` (of its placement, by default the depot
merchant account's); ``disabled`` → ``inventory`` too (Adyen has no disabled state: a terminal
that cannot transact is in inventory); ``pending`` → ``reassignmentInProgress`` with the
``reassignmentTarget``.

Reassigning a configured (boarded/deployed) terminal removes its configuration at its next
sync: ``reassignmentInProgress`` for ``release_pending=N`` lookups (``GET /terminals`` answers
that show it, or device syncs), then the target (``inventory`` or ``boarded`` there); with the
default ``release_pending=0`` the move is immediate. A move out of inventory is always
immediate (there is nothing on the terminal to remove). ``begin_release`` is called for moves
to an inventory, so the device-sync endpoint tells the terminal to drop its device owner.

The account tree and the reassignment state machine live in
:mod:`posdiag.simulators.backend.adyen_state`; this module is the HTTP side.

Test hooks: ``SimTerminal.extra["adyen"]`` (a dict) is merged over the rendered Terminal object
(hostile field values); the ``bad_page=K`` fault makes every list answer one of ``BAD_PAGES``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import unquote, urlencode

from .adyen_state import STATES, AdyenAccounts, terminals_from_states
from .server import COMMON_FAULTS, Request, Response, SimTerminal

__all__ = [
    "BAD_PAGES",
    "ROLE_ASSIGN",
    "ROLE_READ",
    "STATES",
    "AdyenSimulator",
    "terminals_from_states",
]

ROLE_READ = "Management API—Terminal actions read"
ROLE_ASSIGN = "Management API—Assign Terminal"
IDLE_AFTER_S = 14 * 86400
_AMSTERDAM = timezone(timedelta(hours=1))
_REASSIGN = re.compile(r"/v3/terminals/([^/]+)/reassign")
BAD_PAGES: tuple[object, ...] = (
    {"data": {"id": "x"}, "itemsTotal": 1, "pagesTotal": 1},
    {"data": ["AMS1-1", 7, None], "itemsTotal": 3},
    [{"id": "not an object page"}],
    {"data": [], "pagesTotal": 10**30, "itemsTotal": -5, "_links": {"next": {"href": 5}}},
    {"data": None, "_links": "next"},
    "just a string",
)
"""Wrong-shape list answers, for ``bad_page=K`` (1-based): the connector must not crash."""


class AdyenSimulator(AdyenAccounts):
    """The Management API v3 terminal endpoints, stateful, over HTTP.

    Args:
        terminals, faults, host, port: as :class:`BackendSimulator` (faults add
            ``release_pending`` and ``bad_page``).
        api_key: the one valid ``X-API-Key``.
        username, password: the one valid HTTP Basic credential (same roles).
        roles: the credential's roles.
        company_id: the company account every terminal belongs to.
        depot_merchant: the merchant account whose inventory unassigned terminals sit in.
        merchants: further merchant accounts reassignment may target.
        stores: store id → its merchant account, further stores reassignment may target.
        retry_after: the ``Retry-After`` value of a 429 (tests use ``"0"``).
    """

    kind: ClassVar[str] = "adyen"
    FAULTS: ClassVar[tuple[str, ...]] = (*COMMON_FAULTS, "release_pending", "bad_page")

    def __init__(
        self,
        terminals: list[SimTerminal] | None = None,
        faults: Mapping[str, float] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = "AQEsim-posdiag-adyen-test-key-7f3a9c2e",
        username: str = "ws@Company.PosdiagDepot",
        password: str = "sim-basic-password-51d0",
        roles: Iterable[str] = (ROLE_READ, ROLE_ASSIGN),
        company_id: str = "PosdiagDepotCompany",
        depot_merchant: str = "PosdiagDepot_POS",
        merchants: Iterable[str] = (),
        stores: Mapping[str, str] | None = None,
        retry_after: str = "1",
    ) -> None:
        self.api_key = api_key
        self.username = username
        self.password = password
        self.roles = frozenset(roles)
        self.company_id = company_id
        self.depot_merchant = depot_merchant
        self.merchants = {depot_merchant, *merchants}
        self.stores = dict(stores or {})
        self.retry_after = retry_after
        self.list_queries: list[dict[str, str]] = []
        self.reassign_bodies: list[object] = []
        super().__init__(terminals, faults, host, port)

    @classmethod
    def from_states(cls, pairs: Iterable[str], **kwargs: Any) -> AdyenSimulator:
        """A simulator seeded from ``SERIAL=STATE`` pairs (see :func:`terminals_from_states`)."""
        return cls(terminals_from_states(pairs), **kwargs)

    @property
    def api_url(self) -> str:
        """The Management API root, as a client is configured with it."""
        return self.base_url + "/v3"

    def new_id(self, terminal: SimTerminal) -> str:
        """``MODEL-SERIAL``, as Adyen names terminals (``AMS1-000150183300032``)."""
        model = re.sub(r"[^A-Za-z0-9]", "", terminal.model) or "AMS1"
        return f"{model}-{terminal.serial}"

    def backends_toml(self, name: str = "adyen") -> str:
        """A ready ``[backend.NAME]`` section pointing posdiag's connector at this simulator."""
        return "\n".join(
            [
                f"[backend.{name}]",
                'kind = "adyen"',
                f"url = {json.dumps(self.api_url)}",
                f"api_key = {json.dumps(self.api_key)}",
                f"depot_merchant = {json.dumps(self.depot_merchant)}",
                "rate = 200.0",
                "timeout = 5.0",
                "deadline = 15.0",
                "",
            ]
        )

    def rate_limited(self) -> Response:
        """Adyen's 429: a problem body and ``Retry-After``."""
        response = self.problem(
            429, "00_429", "Too Many Requests", "Rate limit exceeded", "too-many-requests"
        )
        return Response(
            429, response.body, response.content_type, {"Retry-After": self.retry_after}
        )

    # -- routing -----------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        """Auth, then the two endpoints (called with ``self.lock`` held)."""
        if not self._authenticated(request):
            self.count("unauthorized")
            return self.problem(
                401,
                "00_401",
                "Unauthorized",
                "Not authorized to access this service.",
                "unauthorized",
            )
        if request.path == "/v3/terminals":
            if request.method != "GET":
                return self.problem(
                    405, "00_405", "Method Not Allowed", request.method, "method-not-allowed"
                )
            return self._forbidden(ROLE_READ) or self._list(request)
        match = _REASSIGN.fullmatch(request.path)
        if match:
            if request.method != "POST":
                return self.problem(
                    405, "00_405", "Method Not Allowed", request.method, "method-not-allowed"
                )
            return self._forbidden(ROLE_ASSIGN) or self._reassign(unquote(match[1]), request)
        return self.problem(404, "00_404", "Not Found", "No such endpoint", "not-found")

    def _authenticated(self, request: Request) -> bool:
        key = request.headers.get("x-api-key")
        if key is not None:
            return hmac.compare_digest(key.encode(), self.api_key.encode())
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user_ok = hmac.compare_digest(user.encode(), self.username.encode())
        return hmac.compare_digest(password.encode(), self.password.encode()) and user_ok

    def _forbidden(self, role: str) -> Response | None:
        if role in self.roles:
            return None
        self.count("forbidden")
        return self.problem(403, "00_403", "Forbidden", "Not allowed", "forbidden")

    # -- GET /terminals ----------------------------------------------------------------------

    def _list(self, request: Request) -> Response:
        query = dict(request.query)
        self.list_queries.append(query)
        del self.list_queries[:-1000]
        bad = int(self.faults.get("bad_page", 0))
        if 0 < bad <= len(BAD_PAGES):
            return Response.json(200, BAD_PAGES[bad - 1])
        numbers = {}
        for name, default, low, high in (("pageNumber", 1, 1, 10**6), ("pageSize", 20, 1, 100)):
            text = query.get(name, str(default))
            if not (text.isascii() and text.isdigit() and low <= int(text[:8]) <= high):
                return self.invalid(
                    f"Invalid {name}", name, text, f"must be a whole number from {low} to {high}"
                )
            numbers[name] = int(text)
        page, size = numbers["pageNumber"], numbers["pageSize"]
        matching = sorted(
            (t for t in self.terminals.values() if self._matches(t, query)),
            key=lambda t: t.backend_id,
        )
        total = len(matching)
        pages = math.ceil(total / size)
        shown = matching[(page - 1) * size : page * size]
        data = [self._render(t) for t in shown]
        for terminal in shown:
            self.settle_pending(terminal)
        links = {
            "first": self._href(query, 1),
            "last": self._href(query, max(1, pages)),
            "self": self._href(query, page),
        }
        if page < pages:
            links["next"] = self._href(query, page + 1)
        if 1 < page <= pages:
            links["prev"] = self._href(query, page - 1)
        return Response.json(
            200, {"_links": links, "data": data, "itemsTotal": total, "pagesTotal": pages}
        )

    def _href(self, query: Mapping[str, str], page: int) -> dict[str, str]:
        params = {**query, "pageNumber": str(page)}
        return {"href": f"{self.api_url}/terminals?{urlencode(params)}"}

    def _matches(self, terminal: SimTerminal, query: Mapping[str, str]) -> bool:
        search = query.get("searchQuery")
        if search:
            return search.casefold() in terminal.backend_id.casefold()
        item = self._render(terminal)
        assignment = item["assignment"] if isinstance(item.get("assignment"), dict) else {}
        for name, value in (
            ("countries", item.get("countryCode")),
            ("merchantIds", assignment.get("merchantId")),
            ("storeIds", assignment.get("storeId")),
            ("brandModels", f"Adyen.{terminal.model}"),
        ):
            wanted = [v for v in query.get(name, "").split(",") if v]
            if wanted and value not in wanted:
                return False
        return True

    def _render(self, terminal: SimTerminal) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": terminal.backend_id,
            "model": terminal.model,
            "serialNumber": terminal.serial,
            "firmwareVersion": terminal.firmware,
            "countryCode": terminal.extra.get("countryCode", "NL"),
            "restartLocalTime": "03:30",
            "connectivity": {
                "wifi": {"ipAddress": "192.168.1.24", "macAddress": "60:c7:98:5a:69:cd"}
            },
            "assignment": self._assignment(terminal),
        }
        if time.time() - terminal.last_seen <= IDLE_AFTER_S:
            moment = datetime.fromtimestamp(terminal.last_seen, UTC).astimezone(_AMSTERDAM)
            item["lastActivityAt"] = moment.isoformat(timespec="seconds")
        override = terminal.extra.get("adyen")
        if isinstance(override, dict):
            item.update(override)
        return item
