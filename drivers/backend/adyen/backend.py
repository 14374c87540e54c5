"""Adyen as a posdiag backend: a terminal's assignment, and giving it back to the depot.

An Adyen terminal is always somewhere in the account tree (company, merchant account, store)
with an assignment ``status``:

* ``boarded`` / ``deployed`` — configured for a merchant or store, able to transact: BOUND;
* ``inventory`` — in a company's or merchant account's inventory, unable to transact: UNBOUND;
* ``reassignmentInProgress`` — a reassignment was accepted and the terminal must synchronise
  before its configuration is removed. It can still transact until then, so the binding stays
  BOUND with ``pending=True``; the evidence says where it is going.

Releasing is reassigning to the depot's inventory (``{"merchantId": depot, "inventory": true}``
or ``{"companyId": depot}``), confirmed by a fresh lookup: ``inventory`` is DONE,
``reassignmentInProgress`` is PENDING (the next run looks again). Adyen has no lock or lost
mode, so a lost report is the same reassignment, the nearest Adyen offers: once the terminal
synchronises it cannot transact. Adyen knows terminals by serial number only; a TUSN-only key
is UNKNOWN. The API reports no battery and no online flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from ...model import Evidence
from ...text import clean_text
from ..model import (
    BackendRecord,
    BackendRefused,
    Binding,
    ChangeResult,
    ChangeStatus,
    TerminalKey,
    masked,
    said,
)
from .client import AdyenApi, Search, terminal_path

__all__ = ["AdyenBackend"]

log = structlog.get_logger(__name__)

_BOUND = {"boarded", "deployed"}
_PENDING = "reassignmentInProgress"
_INVENTORY = "inventory"
IDLE_NOTE = "no activity in the last 14 days (Adyen omits lastActivityAt after 14 days)"
LOST_NOTE = (
    "Adyen has no lock or lost mode; the nearest it offers is the depot's inventory, where a "
    "terminal cannot transact once it has synchronised"
)


@dataclass(frozen=True)
class _Seen:
    """What a lookup found, beyond the record: what release decisions need."""

    terminal_id: object
    status: str | None
    to_inventory: bool
    """A reassignment to an inventory (merchant ``inventory: true`` or a company) is pending."""


class AdyenBackend:
    """One configured Adyen account, as a :class:`~posdiag.drivers.backend.model.Backend`.

    Args:
        name: the configured name.
        api: the wire client.
        target: the reassignment body that puts a terminal in the depot's inventory.
        target_label: that target as a person reads it, masked.
    """

    kind = "adyen"

    def __init__(
        self, name: str, api: AdyenApi, target: Mapping[str, object], target_label: str
    ) -> None:
        self.name = name
        self.api = api
        self.target = dict(target)
        self.target_label = target_label

    def __repr__(self) -> str:
        return f"AdyenBackend(name={self.name!r})"

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self.api.close()

    # -- lookup ------------------------------------------------------------------------------

    def lookup(self, key: TerminalKey) -> BackendRecord:
        """The terminal's assignment as Adyen reports it; UNKNOWN when Adyen does not know it."""
        return self._look(key)[0]

    def _look(self, key: TerminalKey) -> tuple[BackendRecord, _Seen | None]:
        serial = key.serial
        if not serial:
            return self._unknown(
                key, "Adyen finds terminals by serial number only; a TUSN is not an Adyen id"
            ), None
        if len(serial) > 64 or clean_text(serial, 65) != serial:
            return self._unknown(key, "not a serial number Adyen could hold; not searched"), None
        found = self.api.search(serial)
        if found.item is None:
            return self._unknown(key, _not_found(serial, found)), None
        return self._record(key, found.item)

    def _unknown(self, key: TerminalKey, fact: str) -> BackendRecord:
        return BackendRecord(
            backend=self.name,
            kind=self.kind,
            key=key,
            binding=Binding.UNKNOWN,
            evidence=(said(self.name, fact),),
        )

    def _record(self, key: TerminalKey, item: Mapping[str, Any]) -> tuple[BackendRecord, _Seen]:
        evidence: list[Evidence] = []
        terminal_id = item.get("id")
        shown_id = self._text(terminal_id, 100)
        evidence.append(
            said(
                self.name,
                f"GET /terminals: terminal {shown_id or '?'} has serialNumber {key.serial}",
            )
        )
        assignment = item.get("assignment")
        if not isinstance(assignment, dict):
            assignment = {}
        raw_status = assignment.get("status")
        status = raw_status if isinstance(raw_status, str) else None
        shown_status = self._text(raw_status, 40)
        target = assignment.get("reassignmentTarget")
        target = target if isinstance(target, dict) else {}
        to_inventory = target.get("inventory") is True or (
            bool(target.get("companyId"))
            and not target.get("merchantId")
            and not target.get("storeId")
        )
        pending = status == _PENDING
        merchant = masked(_ident(assignment.get("merchantId")))
        store = masked(_ident(assignment.get("storeId")))
        company = masked(_ident(assignment.get("companyId")))
        where = ", ".join(
            f"{label} {value}"
            for label, value in (
                ("company", company),
                ("merchant account", merchant),
                ("store", store),
            )
            if value
        )
        if status in _BOUND:
            binding = Binding.BOUND
            evidence.append(said(self.name, f"assignment.status {status}: can transact ({where})"))
        elif status == _INVENTORY:
            binding = Binding.UNBOUND
            evidence.append(
                said(self.name, f"assignment.status inventory: cannot transact ({where})")
            )
            merchant = store = None
        elif pending:
            binding = Binding.BOUND
            going = "inventory" if to_inventory else _target_text(target) or "another account"
            evidence.append(
                said(
                    self.name,
                    f"reassignment to {going} scheduled, waiting for the terminal to synchronise "
                    f"(it can still transact until then; now at {where or '?'})",
                )
            )
        else:
            binding = Binding.UNKNOWN
            evidence.append(
                said(self.name, f"assignment.status {shown_status or 'missing'}: not understood")
            )
        activity = item.get("lastActivityAt")
        last_seen = _when(activity)
        if last_seen is None:
            evidence.append(
                said(
                    self.name,
                    IDLE_NOTE
                    if activity is None
                    else f"unreadable lastActivityAt {self._text(activity, 40)!r}",
                )
            )
        else:
            evidence.append(said(self.name, f"last activity {last_seen}"))
        record = BackendRecord(
            backend=self.name,
            kind=self.kind,
            key=key,
            binding=binding,
            status=shown_status,
            backend_id=shown_id,
            merchant=merchant,
            store=store,
            model=self._text(item.get("model"), 40),
            firmware=self._text(item.get("firmwareVersion"), 128),
            last_seen=last_seen,
            pending=pending,
            evidence=tuple(evidence),
        )
        return record, _Seen(terminal_id, status, pending and to_inventory)

    def _text(self, value: object, limit: int) -> str | None:
        """A backend string for a record: sanitised, our API key blanked should it be echoed.

        Other JSON types are not text: None.
        """
        if not isinstance(value, str) or not value:
            return None
        text = self.api.scrub(clean_text(self.api.scrub(value), 4096))
        return clean_text(text, limit) or None

    # -- changes -----------------------------------------------------------------------------

    def release(self, key: TerminalKey) -> ChangeResult:
        """Reassign the terminal to the depot's inventory, then confirm with a fresh lookup."""
        return self._to_inventory(key, "release", "")

    def report_lost(self, key: TerminalKey, reason: str) -> ChangeResult:
        """Adyen has no lost mode: reassign to the depot's inventory (it can no longer transact)."""
        log.info("backend.adyen.lost", backend=self.name, reason=clean_text(reason, 120))
        return self._to_inventory(key, "report_lost", LOST_NOTE)

    def _to_inventory(self, key: TerminalKey, action: str, note: str) -> ChangeResult:
        before, seen = self._look(key)
        prefix = f"{note}; " if note else ""
        if seen is None:
            return ChangeResult(
                action,
                ChangeStatus.REFUSED,
                before,
                detail=f"{prefix}{self.name}: Adyen does not know {key.label()}; nothing sent",
            )
        if seen.status == _INVENTORY:
            return ChangeResult(
                action,
                ChangeStatus.ALREADY,
                before,
                detail=f"{prefix}already in inventory: it cannot transact; nothing sent",
            )
        requests: tuple[str, ...] = ()
        if seen.to_inventory:
            sent = "a reassignment to inventory was already scheduled; not sent again"
        elif seen.status in _BOUND or seen.status == _PENDING:
            try:
                requests = (self.api.reassign(seen.terminal_id, self.target),)
            except BackendRefused as exc:
                return ChangeResult(
                    action,
                    ChangeStatus.REFUSED,
                    before,
                    detail=f"{prefix}{exc}",
                    requests=("POST " + terminal_path(seen.terminal_id, self.name),),
                )
            sent = f"Adyen accepted the reassignment to {self.target_label}"
        else:
            return ChangeResult(
                action,
                ChangeStatus.REFUSED,
                before,
                detail=f"{prefix}assignment status {before.status or 'missing'} is not "
                f"understood; not changing it",
            )
        after, confirmed = self._look(key)
        if confirmed is not None and confirmed.status == _INVENTORY:
            status = ChangeStatus.DONE
            detail = f"{sent}; the terminal is now in inventory"
        elif confirmed is not None and confirmed.status == _PENDING:
            status = ChangeStatus.PENDING
            detail = (
                f"{sent}; waiting for the terminal to synchronise (it can still transact until "
                f"then): look it up again later"
            )
        else:
            status = ChangeStatus.PENDING
            detail = (
                f"{sent}; the terminal still shows {after.status or after.binding.value}: "
                f"look it up again later"
            )
        log.info(
            "backend.adyen.change",
            backend=self.name,
            action=action,
            terminal=before.backend_id,
            status=status.value,
        )
        return ChangeResult(
            action, status, before, after, detail=prefix + detail, requests=requests
        )


def _not_found(serial: str, found: Search) -> str:
    total = "" if found.items_total is None else f"{found.items_total} "
    return (
        f"no terminal with serialNumber {serial} among the {total}terminals whose id "
        f"contains it ({found.pages} page{'s' if found.pages != 1 else ''} read)"
    )


def _ident(value: object) -> str | None:
    """An account or store id: only strings count (``masked`` then hides all but its tail)."""
    return value if isinstance(value, str) and value else None


def _target_text(target: Mapping[str, Any]) -> str:
    parts = [
        f"{label} {masked(_ident(target.get(field)))}"
        for field, label in (
            ("companyId", "company"),
            ("merchantId", "merchant account"),
            ("storeId", "store"),
        )
        if _ident(target.get(field))
    ]
    return ", ".join(parts)


def _when(value: object) -> str | None:
    """An RFC 3339 date-time as ISO 8601 UTC (``2024-05-01T09:22:43Z``), else None."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):
        return None
