"""The PAXSTORE third-party system API over HTTP: signed calls, envelopes, typed errors.

Wire layout (reference §1.3, §1.6)::

    → PUT /v1/3rdsys/terminal/move?sysKey=…&serialNo=…&timestamp=…   (order: signing.sdk_order)
      signature: <HMAC hex>     SDK-Language: PYTHON     Time-Zone: UTC
      Content-Type: application/json;charset=utf-8
      {"resellerName": "…", "merchantName": "…"}
    ← 204 No Content                                   (activate, disable, move, delete: success)
    ← 200 {"businessCode": 0, "message": "…", "data": {…}}         (one object; data may be null)
    ← 200 {"businessCode": 0, "pageNo": 1, "limit": 100, "totalCount": 7, "hasNext": false,
           "dataset": [{…}, …]}                                     (a page, on the wire)
    ← 4xx {"businessCode": 1801, "message": "Terminal doesn't exist"}           (any error)

Anything but ``application/json`` (except a 204) is refused, as the vendor SDK does. The HTTP
status of a business error is not documented, so the business code decides, whatever the status.
An HTTP 429 is retried by :class:`HttpClient` honouring ``Retry-After``; a 429 that outlasts the
retries, and business codes 429 or 13103 in any other answer, become :class:`BackendUnavailable`
naming when the quota resets (``X-RateLimit-Reset``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from ...text import clean_text
from ..http import HttpAnswer, HttpClient
from ..model import (
    BackendAuthError,
    BackendProtocolError,
    BackendRefused,
    BackendUnavailable,
)
from .signing import signed_query

__all__ = ["MAX_PAGES", "PAGE_LIMIT", "PaxstoreClient", "SearchResult"]

log = structlog.get_logger(__name__)

API = "/v1/3rdsys"
PAGE_LIMIT = 100
"""Largest ``limit`` the API accepts for one page."""
MAX_PAGES = 20
"""Most pages one search follows: 2,000 terminals, far more than a depot asks for at once."""
SDK_VERSION = "posdiag-0.1"

AUTH_HINTS = {
    102: "the access token is missing: check the key and secret in the backends file",
    103: "the access token is invalid: check the key and secret in the backends file",
    104: "the access key is unknown: check 'key' in the backends file",
    105: "the marketplace has no external-system integration: enable it under "
    "General Setting → External System",
    129: "authentication failed: check 'key' and 'secret', set signature = \"md5\" for "
    "servers older than 9.5.0, and check the station's clock",
    13107: "the marketplace cannot tell this station's IP address: check the network path",
    13108: "this station's IP address is not allowed: register its public IP under "
    "General Setting → External System",
}
RATE_CODES = frozenset({429, 13103})
REQUEST_CODES = {
    101: "wrong HTTP method",
    113: "a parameter is missing or invalid",
    135: "a parameter is missing or invalid",
    997: "malformed JSON",
    998: "bad request",
}
"""The backend did not understand the request: this connector and the server disagree."""
TERMINAL_CODES = {
    1800: "terminal not found",
    1801: "terminal doesn't exist",
    2028: "terminal not found",
    2039: "the TID does not match the serial number",
    1893: "the terminal is already activated",
    1888: "the terminal is not active, unable to disable",
    2402: "the terminal is neither active nor disabled, unable to move",
    1877: "the terminal is active, unable to delete",
    1759: "the reseller doesn't exist",
    1720: "the merchant doesn't exist",
    1937: "the merchant is not under that reseller",
    1737: "the merchant is not active",
    1773: "the reseller is not active",
    1896: "the terminal is offline",
    15094: "the terminal is already locked",
    15095: "the terminal is already unlocked",
    15096: "a lock is in progress",
    15097: "an unlock is in progress",
    15099: "a restart is in progress",
}


@dataclass(frozen=True)
class SearchResult:
    """Terminals found by a search, and whether the page bound cut the list short."""

    terminals: tuple[dict[str, Any], ...]
    total: int | None
    truncated: bool


def _code(value: object) -> int | None:
    """A business code as an int: an integer, or a short string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


class PaxstoreClient:
    """One marketplace's third-party system API, for one access key.

    Args:
        http: the backend's HTTP client, rooted at the marketplace API root.
        key: the external system's access key (``sysKey``).
        secret: its secret (signs each request; never logged).
        algorithm: ``sha256``, or ``md5`` for servers before 9.5.0.
        language: ``Accept-Language`` for the server's messages.
        clock: seconds since the epoch (tests pin it to reproduce vectors).
    """

    def __init__(
        self,
        http: HttpClient,
        *,
        key: str,
        secret: str,
        algorithm: str = "sha256",
        language: str = "en-US",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = http
        self.name = http.name
        self._key = key
        self._secret = secret
        self._algorithm = algorithm
        self._clock = clock
        self._headers = {
            "SDK-Language": "PYTHON",
            "SDK-Version": SDK_VERSION,
            "Time-Zone": "UTC",
            "Accept-Language": language,
            "Accept": "application/json",
        }

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    # -- operations ----------------------------------------------------------------------------

    def get_terminal(self, serial: str, *, firmware: bool = True) -> Any:
        """GET ``terminal?serialNo=``: the TerminalDTO (``data``, possibly None)."""
        params = [
            ("serialNo", serial),
            ("includeDetailInfoList", "false"),
            ("includeInstalledApks", "false"),
            ("includeInstalledFirmware", "true" if firmware else "false"),
            ("includeMasterTerminal", "false"),
        ]
        return self.call("GET", f"{API}/terminal", params).get("data")

    def get_network(self, serial: str) -> Any:
        """GET ``terminals/network?serialNo=``: battery, online status, network type."""
        return self.call("GET", f"{API}/terminals/network", [("serialNo", serial)]).get("data")

    def activate(self, serial: str) -> None:
        """PUT ``terminal/active``: P or S → A."""
        self.call("PUT", f"{API}/terminal/active", [("serialNo", serial)])

    def disable(self, serial: str) -> None:
        """PUT ``terminal/disable``: A → S (1888 otherwise)."""
        self.call("PUT", f"{API}/terminal/disable", [("serialNo", serial)])

    def move(self, serial: str, reseller: str, merchant: str) -> None:
        """PUT ``terminal/move`` to a reseller and merchant (status A or S, else 2402)."""
        body = {"resellerName": reseller, "merchantName": merchant}
        self.call("PUT", f"{API}/terminal/move", [("serialNo", serial)], body=body)

    def delete(self, serial: str) -> None:
        """DELETE ``terminal``: P or S only (1877 while active)."""
        self.call("DELETE", f"{API}/terminal", [("serialNo", serial)])

    def operation(self, serial: str, command: str) -> None:
        """POST ``terminal/operation``: Restart, Lock or Unlock, pushed to the terminal."""
        params = [("serialNo", serial), ("command", command)]
        self.call("POST", f"{API}/terminal/operation", params)

    def search(
        self,
        *,
        status: str | None = None,
        sn_name_tid: str | None = None,
        reseller: str | None = None,
        merchant: str | None = None,
        order_by: str | None = None,
        limit: int = PAGE_LIMIT,
        max_pages: int = MAX_PAGES,
    ) -> SearchResult:
        """GET ``terminals``, page after page while ``hasNext``, at most ``max_pages`` pages."""
        limit = max(1, min(PAGE_LIMIT, limit))
        found: list[dict[str, Any]] = []
        total: int | None = None
        path = f"{API}/terminals"
        for page in range(1, max(1, max_pages) + 1):
            params = [
                ("pageNo", str(page)),
                ("limit", str(limit)),
                ("orderBy", order_by),
                ("status", status),
                ("snNameTID", sn_name_tid),
                ("resellerName", reseller),
                ("merchantName", merchant),
            ]
            envelope = self.call("GET", path, params)
            dataset = envelope.get("dataset")
            if dataset is None:
                dataset = []
            if not isinstance(dataset, list) or len(dataset) > PAGE_LIMIT:
                raise BackendProtocolError(f"{self.name}: GET {path}: the page is not a list")
            if not all(isinstance(item, dict) for item in dataset):
                raise BackendProtocolError(f"{self.name}: GET {path}: a page item is no object")
            found.extend(dataset)
            count = _code(envelope.get("totalCount"))
            total = count if count is not None else total
            if envelope.get("hasNext") is not True or not dataset:
                return SearchResult(tuple(found), total, truncated=False)
        log.warning("paxstore.search_truncated", backend=self.name, pages=max_pages)
        return SearchResult(tuple(found), total, truncated=True)

    # -- the call ------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str | None]],
        *,
        body: Any = None,
    ) -> dict[str, Any]:
        """One signed call; the envelope of a success (``{"businessCode": 0}`` for a 204).

        Raises:
            BackendAuthError: key, secret, signature, clock or source IP refused.
            BackendRefused: a business refusal, with its code.
            BackendUnavailable: down, failing or rate-limited past the retries.
            BackendProtocolError: not JSON, not an envelope, or a request the server rejects.
        """
        what = f"{self.name}: {method} {path}"
        headers = dict(self._headers)
        raw = None
        sent: list[str] = []
        if body is not None:
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json;charset=utf-8"

        def sign() -> tuple[str, dict[str, str]]:
            # Called before every attempt: a retry carries a fresh timestamp and signature.
            now_ms = int(self._clock() * 1000)
            query, signature = signed_query(
                params, self._key, now_ms, self._secret, self._algorithm
            )
            sent.append(signature)
            return query, {"signature": signature}

        answer = self.http.request(method, path, body=raw, headers=headers, sign=sign)
        return self._envelope(answer, what, sent)

    def _envelope(self, answer: HttpAnswer, what: str, sent: list[str]) -> dict[str, Any]:
        """The success envelope of ``answer``, or the typed error it stands for."""
        if answer.status == 204:
            return {"businessCode": 0}
        if answer.content_type.lower() != "application/json":
            shown = clean_text(answer.content_type or "no content type", 40)
            if answer.status in (401, 403):
                raise BackendAuthError(
                    f"{what}: access denied (HTTP {answer.status}): check the key, the secret "
                    "and the station's IP registration"
                )
            if answer.status >= 500:
                raise BackendUnavailable(
                    f"{what}: the backend failed (HTTP {answer.status}); try again later"
                )
            raise BackendProtocolError(
                f"{what}: answered {shown} (HTTP {answer.status}), not JSON: is the URL the "
                "marketplace's API root?"
            )
        payload = answer.json(what)
        if not isinstance(payload, dict):
            raise BackendProtocolError(f"{what}: the answer is not a PAXSTORE envelope")
        code = _code(payload.get("businessCode"))
        if code is None:
            if answer.status >= 500:
                raise BackendUnavailable(f"{what}: the backend failed (HTTP {answer.status})")
            raise BackendProtocolError(f"{what}: the answer has no valid businessCode")
        if code == 0:
            if not 200 <= answer.status < 300:
                raise BackendProtocolError(
                    f"{what}: HTTP {answer.status} with businessCode 0 makes no sense"
                )
            return payload
        raise self._error(code, payload.get("message"), answer, what, sent)

    def _error(
        self, code: int, message: object, answer: HttpAnswer, what: str, sent: list[str]
    ) -> Exception:
        """The typed error for a business code.

        The server's own words are quoted only for codes this module does not know (a known
        code gets our wording: a server may echo merchant names), and never with our key,
        secret or signatures in them.
        """
        if code in AUTH_HINTS:
            return BackendAuthError(f"{what}: refused ({code}): {AUTH_HINTS[code]}")
        if code in RATE_CODES:
            return BackendUnavailable(
                f"{what}: rate-limited ({code}){_reset(answer)}; try again later"
            )
        if code == 131:
            return BackendRefused(
                f"{what}: insufficient access (131): give the external system the terminal "
                "permissions in the marketplace",
                code="131",
            )
        if code in REQUEST_CODES:
            return BackendProtocolError(
                f"{what}: the backend did not accept the request ({code} "
                f"{REQUEST_CODES[code]}): is the marketplace's API version supported?"
            )
        said = "" if code in TERMINAL_CODES else self._server_words(message, sent)
        if code == 999 or answer.status >= 500:
            return BackendUnavailable(
                f"{what}: the backend failed ({code}{said}, HTTP {answer.status}); try again later"
            )
        text = TERMINAL_CODES.get(code, "refused")
        return BackendRefused(f"{what}: {text} ({code}{said})", code=str(code))

    def _server_words(self, message: object, sent: list[str]) -> str:
        """The server's message, cleaned, short, and with our credentials blotted out."""
        if not isinstance(message, str) or not message.strip():
            return ""
        text = message[:4096]
        for secret in (self._secret, self._key, *sent):
            if secret:
                text = re.sub(re.escape(secret), "***", text, flags=re.IGNORECASE)
        return f": {clean_text(text, 100)}"


def _reset(answer: HttpAnswer) -> str:
    """When the quota resets, from ``X-RateLimit-Reset`` (epoch ms), as words."""
    value = answer.headers.get("x-ratelimit-reset", "")
    if not (value.isascii() and value.isdigit() and len(value) <= 15):
        return ""
    try:
        moment = datetime.fromtimestamp(int(value) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return ""
    return f"; the quota resets at {moment.strftime('%H:%M:%S')} UTC"
