"""The Adyen Management API v3 on the wire: terminal search and reassignment, nothing else.

Wire layout (all under the configured root, e.g. ``https://management-test.adyen.com/v3``)::

    GET  /terminals?searchQuery=<serial>&pageNumber=<n>&pageSize=100
         X-API-Key: <key>                       Accept: application/json
      -> 200 application/json
         {"_links": {"first": {"href": …}, "last": {…}, "self": {…}, "next": {…}?, "prev": {…}?},
          "itemsTotal": 151, "pagesTotal": 2,
          "data": [{"id": "AMS1-000150183300032", "model": "AMS1",
                    "serialNumber": "000150183300032", "firmwareVersion": "…",
                    "lastActivityAt": "2024-05-01T10:22:43+01:00",     (omitted after 14 days)
                    "assignment": {"companyId": …, "merchantId": …, "storeId": …,
                                   "status": "boarded|deployed|inventory|reassignmentInProgress",
                                   "reassignmentTarget": {"merchantId": …, "inventory": true}}},
                   …]}

    POST /terminals/<percent-encoded id>/reassign
         Content-Type: application/json
         {"merchantId": "<depot merchant account>", "inventory": true}  |  {"companyId": "…"}
      -> 200, no body

    Errors: application/problem+json ``RestServiceError``
         {"type": "https://docs.adyen.com/errors/…", "errorCode": "00_401", "title": "…",
          "detail": "…", "status": 401, "invalidFields": [...]?}
         401 bad key · 403 missing role · 400/422 validation · 404 unknown terminal · 500.

``searchQuery`` matches every terminal whose *id* contains the string, so a serial can match
many terminals (``…1234`` also finds ``…11234``): pages are followed until the item whose
``serialNumber`` equals the serial exactly turns up. ``pagesTotal`` and ``_links.next`` only say
*whether* there is another page; the next request is built here (``pageNumber + 1``) and the
backend's ``href`` is never fetched, since a hostile answer could point it, with our API key, at
another host. Pages are 1-based (the spec's example is inconsistent; reference §2.2).

The terminal id that goes into the reassign path came from the backend: it is checked against
the shape Adyen ids have and percent-encoded, so ``../`` or ``?`` cannot steer the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import structlog

from ...text import clean_text
from ..http import HttpAnswer, HttpClient
from ..model import (
    BackendAuthError,
    BackendProtocolError,
    BackendRefused,
    BackendUnavailable,
)

__all__ = [
    "MAX_PAGES",
    "PAGE_SIZE",
    "ROLE_ASSIGN",
    "ROLE_READ",
    "AdyenApi",
    "Search",
    "terminal_path",
]

log = structlog.get_logger(__name__)

PAGE_SIZE = 100
"""The largest page the API serves: fewest round trips per lookup."""
MAX_PAGES = 20
"""Pages followed for one serial (2,000 terminals whose ids contain it) before giving up."""
ROLE_READ = "Management API—Terminal actions read"
ROLE_ASSIGN = "Management API—Assign Terminal"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_JSON_TYPES = ("application/json", "application/problem+json")


@dataclass(frozen=True)
class Search:
    """One serial's search: the exact match (or None), how many ids matched, pages read."""

    item: Mapping[str, Any] | None
    items_total: int | None
    pages: int


def terminal_path(terminal_id: object, name: str) -> str:
    """``/terminals/<id>/reassign`` for an id the backend gave, or a protocol error.

    Adyen ids are ``MODEL-SERIAL`` (``AMS1-000150183300032``, ``V400m-324689776``): letters,
    digits, ``-``, ``_``, ``.``. Anything else is refused rather than sent, and the id is
    percent-encoded all the same, so a dot-only segment is also refused.
    """
    if not isinstance(terminal_id, str) or not _ID.fullmatch(terminal_id):
        raise BackendProtocolError(
            f"{name}: Adyen gave a terminal id that is not a valid id "
            f"({clean_text(terminal_id, 40)!r}); not sending it back"
        )
    return f"/terminals/{quote(terminal_id, safe='')}/reassign"


class AdyenApi:
    """The two calls posdiag makes, with Adyen's errors mapped to posdiag's.

    Args:
        name: the configured backend name, for messages.
        http: the backend's HTTP client (rooted at ``…/v3``).
        api_key: the API credential's key, sent as ``X-API-Key`` and kept out of every message.
        max_pages: pages followed for one serial.
    """

    def __init__(
        self, name: str, http: HttpClient, api_key: str, max_pages: int = MAX_PAGES
    ) -> None:
        self.name = name
        self.http = http
        self.max_pages = max_pages
        self._key = api_key

    def __repr__(self) -> str:
        return f"AdyenApi(name={self.name!r}, url={self.http.base_url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    # -- calls -------------------------------------------------------------------------------

    def search(self, serial: str) -> Search:
        """Find the terminal whose ``serialNumber`` is exactly ``serial``, following pages.

        Raises:
            BackendAuthError, BackendRefused, BackendUnavailable, BackendProtocolError.
        """
        page = 1
        while True:
            query = urlencode(
                {"searchQuery": serial, "pageNumber": page, "pageSize": PAGE_SIZE},
                quote_via=quote,
            )
            answer = self.http.request("GET", "/terminals", query=query, headers=self._headers())
            self._check(answer, "GET /terminals", ROLE_READ)
            items, more, total = self._page(answer, page)
            for item in items:
                if item.get("serialNumber") == serial:
                    return Search(item, total, page)
            if not more or not items:
                return Search(None, total, page)
            if page >= self.max_pages:
                raise BackendProtocolError(
                    f"{self.name}: the search for SN {serial} still had more pages after "
                    f"{self.max_pages} pages of {PAGE_SIZE}; stopped (raise max_pages if the "
                    f"account really holds that many matching terminals)"
                )
            page += 1

    def reassign(self, terminal_id: object, target: Mapping[str, object]) -> str:
        """POST the reassignment; returns the request as the journal lists it.

        Raises:
            BackendRefused: Adyen refused it (validation, unknown terminal, missing role).
            BackendAuthError, BackendUnavailable, BackendProtocolError.
        """
        path = terminal_path(terminal_id, self.name)
        body = json.dumps(dict(target), separators=(",", ":")).encode("utf-8")
        headers = {**self._headers(), "Content-Type": "application/json"}
        answer = self.http.request("POST", path, body=body, headers=headers)
        self._check(answer, f"POST {path}", ROLE_ASSIGN)
        log.info("backend.adyen.reassigned", backend=self.name, status=answer.status)
        return f"POST {path}"

    # -- answers -----------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"X-API-Key": self._key, "Accept": "application/json"}

    def _page(
        self, answer: HttpAnswer, page: int
    ) -> tuple[list[Mapping[str, Any]], bool, int | None]:
        """Page ``page``'s items, whether another page follows, and ``itemsTotal``."""
        what = f"{self.name}: GET /terminals"
        if answer.content_type.lower() not in _JSON_TYPES:
            raise BackendProtocolError(
                f"{what}: the answer is not JSON ({clean_text(answer.content_type, 40) or '-'})"
            )
        document = answer.json(what)
        if not isinstance(document, dict):
            raise BackendProtocolError(f"{what}: the answer is not a terminal list")
        data = document.get("data", [])
        if data is None:
            data = []
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise BackendProtocolError(f"{what}: 'data' is not a list of terminals")
        links = document.get("_links")
        has_next = (
            isinstance(links, dict)
            and isinstance(links.get("next"), dict)
            and isinstance(links["next"].get("href"), str)
        )
        pages_total = _count(document.get("pagesTotal"))
        more = has_next or (pages_total is not None and page < pages_total)
        return data, bool(more), _count(document.get("itemsTotal"))

    def _check(self, answer: HttpAnswer, operation: str, role: str) -> None:
        """Raise the error an unsuccessful answer means; return on 2xx."""
        status = answer.status
        if 200 <= status < 300:
            return
        code, said = self._problem(answer)
        where = f"{self.name}: {operation}"
        tag = f"HTTP {status}" + (f", {code}" if code else "")
        if status == 401:
            raise BackendAuthError(
                f"{where}: the API key was rejected ({tag}); check api_key in the backends "
                f"file and that the credential is active in the Customer Area"
            )
        if status == 403:
            raise BackendRefused(
                f"{where}: the API key lacks the role '{role}' ({tag}); ask the Customer Area "
                f"admin to add it to the API credential",
                code or "00_403",
            )
        if status in (400, 422):
            raise BackendRefused(
                f"{where}: Adyen refused the request ({tag}){': ' + said if said else ''}",
                code or str(status),
            )
        if status == 404:
            if operation.startswith("POST"):
                raise BackendRefused(
                    f"{where}: Adyen does not know this terminal ({tag}); look it up again",
                    code or "404",
                )
            raise BackendProtocolError(
                f"{where}: not found ({tag}); check the url, it must be the Management API "
                f"root ending in /v3"
            )
        if status >= 500 or status == 429:
            raise BackendUnavailable(f"{where}: Adyen failed ({tag}); try again later")
        raise BackendProtocolError(f"{where}: unexpected answer ({tag})")

    def _problem(self, answer: HttpAnswer) -> tuple[str | None, str]:
        """``errorCode`` and "title: detail" of a problem+json body, sanitised; best effort."""
        try:
            document = answer.json("error")
        except BackendProtocolError:
            return None, ""
        if not isinstance(document, dict):
            return None, ""
        code = document.get("errorCode")
        code_text = self.scrub(clean_text(code, 32)) if isinstance(code, str | int) else None
        parts = [
            self.scrub(clean_text(document[field], 160))
            for field in ("title", "detail")
            if isinstance(document.get(field), str) and document[field].strip()
        ]
        invalid = document.get("invalidFields")
        if isinstance(invalid, list):
            names = [
                clean_text(entry.get("name"), 40)
                for entry in invalid[:5]
                if isinstance(entry, dict) and isinstance(entry.get("name"), str)
            ]
            if names:
                parts.append("invalid: " + ", ".join(self.scrub(n) for n in names))
        return code_text or None, ": ".join(parts)

    def scrub(self, text: str) -> str:
        """Text from the backend with our own API key blanked, should it ever be echoed."""
        return text.replace(self._key, "****") if self._key and self._key in text else text


def _count(value: object) -> int | None:
    """A non-negative count from JSON (``itemsTotal``, ``pagesTotal``), else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= 10**9 else None
