"""PAXSTORE as a posdiag backend: lookup, release and lost report over the Open API.

PAXSTORE holds a PAX terminal's registration: status A (active, bound to a merchant), P
(registered, never activated) or S (suspended), and the reseller and merchant it belongs to. It
is keyed by serial number only: a TUSN means nothing to it.

Release, by the ``release`` setting (reference §1.7):

* ``move`` (default): move the unit to the depot's reseller and merchant (``depot_reseller``,
  ``depot_merchant``); PAXSTORE moves only A or S units (2402). A unit in the depot counts as
  released (``Binding.UNBOUND``) whatever its status, and the lookup says so.
* ``disable``: A → S (1888 unless active).
* ``delete``: disable first when active (PAXSTORE refuses to delete an active unit, 1877),
  then delete; confirmed when the unit is no longer registered.

Lost report (挂失): ``operation`` ``command=Lock``, then disable. The Lock is pushed to the
terminal and is not visible in any field of the public TerminalDTO, so the confirmation is the
one thing a fresh lookup can show: status S. The Lock's own answer shapes the result: 15094
(already locked) is noted; 15096 (a lock still in progress) makes the result PENDING even when
the unit is disabled; 1896 (offline: the lock cannot reach the terminal) still disables the unit
but reports REFUSED, since the lock was not applied. A unit already S or never activated (P)
cannot transact: ALREADY, with nothing sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from ...model import Evidence
from ...text import clean_text
from ..config import BackendConfig
from ..model import (
    BackendConfigError,
    BackendError,
    BackendRecord,
    BackendRefused,
    Binding,
    ChangeResult,
    ChangeStatus,
    TerminalKey,
    said,
)
from ..registry import http_client
from .client import API, PaxstoreClient
from .records import SOURCE, terminal_record, with_network
from .signing import ALGORITHMS

__all__ = ["RELEASE_MODES", "PaxstoreBackend", "connect"]

log = structlog.get_logger(__name__)

RELEASE_MODES = ("move", "disable", "delete")
NOT_REGISTERED = frozenset({"1800", "1801"})
DEPOT_CODES = frozenset({"1759", "1720", "1937", "1737", "1773"})
"""Move refusals that mean the depot's reseller or merchant is wrong: a configuration error."""
LOCK_NOTES = {
    "": "lock sent",
    "15094": "it was already locked",
    "15096": "a lock sent earlier is still in progress (15096)",
    "1896": "the terminal is offline (1896): the lock is not applied",
}
"""Lock outcomes a lost report goes on from (to the disable); other refusals stop it."""


@dataclass(frozen=True)
class _Seen:
    """A lookup's record plus the raw facts release decisions need."""

    record: BackendRecord
    status: str | None = None
    at_depot: bool = False


@dataclass
class _Change:
    """What a release or lost report has sent so far."""

    action: str
    before: _Seen
    requests: list[str] = field(default_factory=list)


class PaxstoreBackend:
    """The :class:`~posdiag.drivers.backend.model.Backend` contract over PAXSTORE.

    Args:
        name: the configured backend's name.
        client: the signed API client.
        release: ``move``, ``disable`` or ``delete``.
        depot: the depot's (reseller, merchant) names, needed by ``move``.
    """

    kind = "paxstore"

    def __init__(
        self,
        name: str,
        client: PaxstoreClient,
        *,
        release: str = "move",
        depot: tuple[str, str] | None = None,
    ) -> None:
        if release not in RELEASE_MODES:
            raise BackendConfigError(
                f"backend {name!r}: release must be one of {', '.join(RELEASE_MODES)}"
            )
        if release == "move" and depot is None:
            raise BackendConfigError(
                f'backend {name!r}: release = "move" needs depot_reseller and depot_merchant'
            )
        self.name = name
        self.client = client
        self.release_mode = release
        self.depot = depot

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()

    # -- lookup --------------------------------------------------------------------------------

    def lookup(self, key: TerminalKey) -> BackendRecord:
        """GET ``terminal?serialNo=`` (and the network status), as a record."""
        return self._look(key).record

    def _unknown(self, key: TerminalKey, *facts: Evidence) -> _Seen:
        return _Seen(BackendRecord(self.name, self.kind, key, Binding.UNKNOWN, evidence=facts))

    def _look(self, key: TerminalKey) -> _Seen:
        serial = key.serial
        if not serial:
            return self._unknown(key, said(SOURCE, "PAXSTORE is keyed by serial number"))
        if len(serial) > 64 or clean_text(serial, 65) != serial:
            return self._unknown(key, said(SOURCE, "not a serial number PAXSTORE can hold"))
        try:
            data = self.client.get_terminal(serial)
        except BackendRefused as exc:
            if exc.code not in NOT_REGISTERED:
                raise
            return self._unknown(key, said(SOURCE, f"not registered ({exc.code})"))
        if data is None:
            return self._unknown(key, said(SOURCE, "not registered (no data)"))
        record, status, at_depot = terminal_record(self.name, key, data, self.depot)
        try:
            network = self.client.get_network(serial)
        except BackendError as exc:  # optional facts: their absence never fails the lookup
            log.info("paxstore.network_unavailable", backend=self.name, error=type(exc).__name__)
            network = None
        return _Seen(with_network(record, network), status, at_depot)

    def lookup_many(self, keys: Sequence[TerminalKey]) -> dict[TerminalKey, BackendRecord]:
        """Many units from one paged search (100 a page) instead of two calls per unit.

        A depot scanning a pile asks for dozens of serials at once; the marketplace's terminal
        list answers them in a few pages. Network facts (battery, online) are not in the list:
        a single-unit ``lookup`` still reads them. When the page bound cuts the list short,
        the units not found in it are looked up one by one, so none is called unknown wrongly.
        """
        wanted = {k.serial.casefold(): k for k in keys if k.serial}
        result = self.client.search(limit=100)
        found: dict[TerminalKey, BackendRecord] = {}
        for item in result.terminals:
            serial = item.get("serialNo")
            key = wanted.get(serial.casefold()) if isinstance(serial, str) else None
            if key is not None and key not in found:
                found[key] = terminal_record(self.name, key, item, self.depot)[0]
        for key in keys:
            if key in found:
                continue
            if result.truncated or not key.serial:
                found[key] = self.lookup(key)
            else:
                found[key] = self._unknown(
                    key, said(SOURCE, "not registered (not in the marketplace's terminal list)")
                ).record
        return found

    # -- release -------------------------------------------------------------------------------

    def release(self, key: TerminalKey) -> ChangeResult:
        """Release the unit the configured way, confirmed by a fresh lookup."""
        change = _Change("release", self._look(key))
        seen = change.before
        if seen.record.binding is Binding.UNKNOWN or key.serial is None:
            return self._result(change, ChangeStatus.REFUSED, _unknown_detail(seen))
        serial = key.serial
        if self.release_mode == "delete":
            return self._delete(change, key, serial)
        if seen.at_depot:
            return self._result(change, ChangeStatus.ALREADY, "already in the depot")
        if seen.status == "P":
            return self._result(
                change,
                ChangeStatus.ALREADY,
                "registered but never activated (status P): no merchant can use it",
            )
        if self.release_mode == "disable":
            if seen.status == "S":
                return self._result(change, ChangeStatus.ALREADY, "already disabled (status S)")
            refused = self._send(change, "PUT", "disable", lambda: self.client.disable(serial))
            if refused:
                return self._result(change, ChangeStatus.REFUSED, _words(refused), key)
            return self._confirm(change, key, lambda s: s.status == "S", "disabled (status S)")
        return self._move(change, key, serial)

    def _delete(self, change: _Change, key: TerminalKey, serial: str) -> ChangeResult:
        if change.before.status == "A":
            refused = self._send(change, "PUT", "disable", lambda: self.client.disable(serial))
            if refused and refused.code != "1888":  # 1888: no longer active, delete it anyway
                return self._result(change, ChangeStatus.REFUSED, _words(refused), key)
        refused = self._send(change, "DELETE", "", lambda: self.client.delete(serial))
        if refused and refused.code != "1800":  # 1800: gone already, the lookup will say
            return self._result(change, ChangeStatus.REFUSED, _words(refused), key)
        return self._confirm(
            change, key, lambda s: s.record.binding is Binding.UNKNOWN, "deleted: not registered"
        )

    def _move(self, change: _Change, key: TerminalKey, serial: str) -> ChangeResult:
        assert self.depot is not None
        if change.before.status not in ("A", "S"):
            return self._result(change, ChangeStatus.REFUSED, "status not known: cannot move")
        reseller, merchant = self.depot
        refused = self._send(
            change, "PUT", "move", lambda: self.client.move(serial, reseller, merchant)
        )
        if refused and refused.code in DEPOT_CODES:
            raise BackendConfigError(
                f"{self.name}: PUT {API}/terminal/move: {_words(refused)}: depot_reseller and "
                "depot_merchant must name an active reseller and an active merchant under it"
            )
        if refused:
            return self._result(change, ChangeStatus.REFUSED, _words(refused), key)
        return self._confirm(
            change, key, lambda s: s.at_depot, "moved to the depot's reseller and merchant"
        )

    # -- lost ----------------------------------------------------------------------------------

    def report_lost(self, key: TerminalKey, reason: str) -> ChangeResult:
        """Lock the unit and disable it (挂失), confirmed by status S."""
        log.info("paxstore.report_lost", backend=self.name, reason=clean_text(reason, 120))
        change = _Change("report_lost", self._look(key))
        seen = change.before
        if seen.record.binding is Binding.UNKNOWN or key.serial is None:
            return self._result(change, ChangeStatus.REFUSED, _unknown_detail(seen))
        serial = key.serial
        if seen.status == "S":
            return self._result(change, ChangeStatus.ALREADY, "already disabled (status S)")
        if seen.status == "P":
            return self._result(
                change, ChangeStatus.ALREADY, "never activated (status P): it cannot transact"
            )
        if seen.status != "A":
            return self._result(change, ChangeStatus.REFUSED, "status not known: cannot lock")
        refused = self._send(
            change, "POST", "operation", lambda: self.client.operation(serial, "Lock")
        )
        code = (refused.code or "") if refused else ""
        if refused and code not in LOCK_NOTES:
            return self._result(change, ChangeStatus.REFUSED, _words(refused), key)
        lock_note = LOCK_NOTES[code]
        refused = self._send(change, "PUT", "disable", lambda: self.client.disable(serial))
        if refused and refused.code != "1888":  # 1888: not active any more; the lookup decides
            detail = f"{lock_note}; {_words(refused)}"
            return self._result(change, ChangeStatus.REFUSED, detail, key)
        after = self._look(key)
        if after.status != "S":
            return self._result(
                change,
                ChangeStatus.PENDING,
                f"{lock_note}; disable accepted but the lookup does not show status S yet",
                after=after,
            )
        if code == "1896":
            status = ChangeStatus.REFUSED
            lock_note += "; lock it when it is online"
        else:
            status = ChangeStatus.PENDING if code == "15096" else ChangeStatus.DONE
        return self._result(change, status, f"{lock_note}; disabled (status S)", after=after)

    # -- helpers -------------------------------------------------------------------------------

    def _send(
        self, change: _Change, method: str, op: str, call: Callable[[], None]
    ) -> BackendRefused | None:
        """Run one change request; its business refusal, or None when accepted."""
        change.requests.append(f"{method} {API}/terminal{'/' + op if op else ''}")
        try:
            call()
        except BackendRefused as exc:
            log.info("paxstore.refused", backend=self.name, op=op or method, code=exc.code)
            return exc
        return None

    def _confirm(
        self, change: _Change, key: TerminalKey, shows: Callable[[_Seen], bool], done: str
    ) -> ChangeResult:
        """DONE when a fresh lookup shows the change, else PENDING."""
        after = self._look(key)
        if shows(after):
            return self._result(change, ChangeStatus.DONE, done, after=after)
        return self._result(
            change,
            ChangeStatus.PENDING,
            f"accepted, but the lookup does not show it yet ({after.record.binding.value})",
            after=after,
        )

    def _result(
        self,
        change: _Change,
        status: ChangeStatus,
        detail: str,
        key: TerminalKey | None = None,
        *,
        after: _Seen | None = None,
    ) -> ChangeResult:
        """The result; with ``key``, a fresh lookup shows where a refused change left the unit."""
        if after is None and key is not None and change.requests:
            after = self._look(key)
        log.info(
            "paxstore.change",
            backend=self.name,
            action=change.action,
            status=status.value,
            requests=len(change.requests),
        )
        return ChangeResult(
            action=change.action,
            status=status,
            before=change.before.record,
            after=after.record if after is not None else None,
            detail=clean_text(detail, 240),
            requests=tuple(change.requests),
        )


def _words(refused: BackendRefused) -> str:
    """A refusal's text without the ``name: METHOD path:`` prefix."""
    parts = str(refused).split(": ", 2)
    return parts[2] if len(parts) == 3 else str(refused)


def _unknown_detail(seen: _Seen) -> str:
    facts = "; ".join(e.fact for e in seen.record.evidence)
    return f"PAXSTORE does not know the unit or its status, nothing was sent: {facts}"


def connect(config: BackendConfig, *, clock: Callable[[], float] | None = None) -> PaxstoreBackend:
    """The PAXSTORE connector for a configured backend.

    Settings: ``key`` and ``secret`` (the External System credentials), ``signature``
    (``sha256``, or ``md5`` for servers before 9.5.0), ``release`` (``move`` | ``disable`` |
    ``delete``), ``depot_reseller`` and ``depot_merchant`` (for ``move``), ``language``.
    """
    key, secret = config.require("key"), config.require("secret")
    if not isinstance(key, str) or not isinstance(secret, str):
        raise BackendConfigError(f"backend {config.name!r}: key and secret must be strings")
    algorithm = str(config.setting("signature", "sha256")).lower()
    if algorithm not in ALGORITHMS:
        raise BackendConfigError(
            f"backend {config.name!r}: signature must be one of {', '.join(ALGORITHMS)}"
        )
    release = config.setting("release", "move")
    if release not in RELEASE_MODES:
        raise BackendConfigError(
            f"backend {config.name!r}: release must be one of {', '.join(RELEASE_MODES)}"
        )
    reseller, merchant = config.setting("depot_reseller"), config.setting("depot_merchant")
    depot = None
    if reseller or merchant:
        if not (isinstance(reseller, str) and reseller and isinstance(merchant, str) and merchant):
            raise BackendConfigError(
                f"backend {config.name!r}: depot_reseller and depot_merchant go together"
            )
        depot = (reseller, merchant)
    if release == "move" and depot is None:
        raise BackendConfigError(
            f'backend {config.name!r}: release = "move" needs depot_reseller and depot_merchant'
        )
    language = config.setting("language", "en-US")
    if not isinstance(language, str) or not language.isascii() or len(language) > 35:
        raise BackendConfigError(f"backend {config.name!r}: language is a tag like en-US")
    client = PaxstoreClient(
        http_client(config),
        key=key,
        secret=secret,
        algorithm=algorithm,
        language=language,
        clock=clock or time.time,
    )
    return PaxstoreBackend(config.name, client, release=release, depot=depot)
