"""How a simulated Adyen terminal answers each nexo request, and how its state changes.

``NexoDevice.handle()`` takes one decoded (already decrypted) request and returns the response
message, or None for an AbortRequest (nexo sends no response to an abort). Transport, JSON and
encryption live in ``engine.py``; this module is only the terminal's behaviour, built on the
codec's device-role builders (:mod:`posdiag.drivers.nexo.messages`).

Rules a real terminal applies, in the order the simulator applies them:

1. The header must be a request for this terminal: ``SaleToPOIRequest``, MessageType Request,
   a ServiceID, a SaleID, and this terminal's POIID. Otherwise ``MessageFormat`` with an
   ``errors=`` note in Adyen's wording ("At SaleToPOIRequest.MessageHeader, field POIID:
   Invalid"). A POIID naming another terminal is refused this way; what a real terminal answers
   then is UNVERIFIED.
2. A ServiceID is unique per POIID for 48 hours (reference §2). A reused one is refused with
   ``NotAllowed`` and ``message=ServiceID … was used within the last 48 hours``; the reference
   leaves the real answer UNVERIFIED, and ``NotAllowed`` is the condition a business-rule
   refusal (not a schema error) carries. Every request that got past rule 1 spends its
   ServiceID, whatever its answer.
3. While a payment runs, every request but an AbortRequest gets ``Busy`` with
   ``message=Forbidden Request, Service Dialogue PaymentRequest is in Progress`` and the
   running ``serviceId`` (reference §5). An AbortRequest naming that ServiceID ends it.
4. GetTotals and Reconciliation need a prior Login from the same SaleID (reference §4):
   otherwise ``LoggedOut``.

State changes: Login records the SaleID and its operator data, Logout removes it; a
SaleReconciliation (which posdiag never sends, but a third-party client may) closes the period:
its payments become a stored report under a new POIReconciliationID, and when a host is
reachable the offline backlog (``unconfirmedBatchCount``) is uploaded with it — the simulator's
choice, documented in the README. PreviousReconciliation returns a stored report.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import structlog

from posdiag.drivers.nexo.additional import NetworkProfileEntry, encode_network_profile
from posdiag.drivers.nexo.builders import AdditionalEncoding
from posdiag.drivers.nexo.messages import (
    REQUEST,
    HostStatus,
    MessageHeader,
    NexoMessage,
    PaymentTotal,
    PoiStatus,
    TransactionTotal,
    diagnosis_response,
    failure_response,
    get_totals_response,
    login_response,
    logout_response,
    reconciliation_response,
    valid_service_id,
)

from .state import (
    MAX_LOGINS,
    MAX_REPORTS,
    MAX_SERVICE_IDS,
    SERVICE_ID_WINDOW_S,
    NexoState,
    Payment,
    ReconciliationReport,
)

__all__ = ["BUSY_MESSAGE", "NexoDevice"]

log = structlog.get_logger(__name__)

BUSY_MESSAGE = "Forbidden Request, Service Dialogue PaymentRequest is in Progress"
"""Adyen's AdditionalResponse ``message`` while a payment runs (reference §5)."""
MAX_LOGIN_VALUE = 64
"""Characters kept of each Login field the terminal stores (OperatorID, ShiftNumber…)."""
_HEADER = "At SaleToPOIRequest.MessageHeader"


def utc_timestamp(seconds: float) -> str:
    """ISO 8601 UTC with milliseconds, as Adyen writes DateTime and TimeStamp."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _short(value: object, limit: int = MAX_LOGIN_VALUE) -> str | None:
    """A stored string field: only strings, bounded; anything else reads as absent."""
    return value[:limit] if isinstance(value, str) else None


def _totals(payments: Iterable[Payment]) -> list[TransactionTotal]:
    """Sum payments per (instrument, acquirer, brand, currency) and transaction type."""
    groups: dict[tuple[str, str, str, str], dict[str, list[Any]]] = {}
    for payment in payments:
        key = (payment.instrument, payment.acquirer_id, payment.card_brand, payment.currency)
        per_type = groups.setdefault(key, {})
        entry = per_type.setdefault(payment.transaction_type, [0, Decimal(0)])
        entry[0] += 1
        entry[1] += Decimal(payment.amount)
    return [
        TransactionTotal(
            payment_instrument_type=instrument,
            acquirer_id=acquirer,
            card_brand=brand,
            currency=currency,
            payment_totals=tuple(
                PaymentTotal(kind, count, amount) for kind, (count, amount) in per_type.items()
            ),
        )
        for (instrument, acquirer, brand, currency), per_type in sorted(groups.items())
    ]


def _filtered(payments: Sequence[Payment], total_filter: object, poiid: str) -> list[Payment]:
    """The payments a GetTotals ``TotalFilter`` selects (SaleID, OperatorID, POIID)."""
    if not isinstance(total_filter, Mapping):
        return list(payments)
    wanted_poiid = total_filter.get("POIID")
    if isinstance(wanted_poiid, str) and wanted_poiid != poiid:
        return []
    selected = list(payments)
    for name, attribute in (("SaleID", "sale_id"), ("OperatorID", "operator_id")):
        wanted = total_filter.get(name)
        if isinstance(wanted, str):
            selected = [p for p in selected if getattr(p, attribute) == wanted]
    return selected


class NexoDevice:
    """The terminal's behaviour over its :class:`NexoState` (thread-safe: one lock).

    Args:
        state: the live state (shared with the engine, the server and tests).
        clock: seconds since the epoch (tests move it to check the 48-hour rule).
        sync: called before Diagnosis, Login and GetTotals: the Adyen backend link
            (``tms.py``); it changes the state as the backend says.
        sleep: how the terminal waits (host checks); tests pass a no-op.
    """

    def __init__(
        self,
        state: NexoState,
        *,
        clock: Callable[[], float] = time.time,
        sync: Callable[[NexoState], object] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state = state
        self.clock = clock
        self.sync = sync
        self.sleep = sleep
        self.lock = threading.RLock()
        self.categories_seen: list[str] = []
        """Categories handled, oldest first (bounded): what a client asked, for tests."""

    @property
    def encoding(self) -> AdditionalEncoding:
        """How AdditionalResponse is written (the state's ``additional_response_format``)."""
        return "base64json" if self.state.additional_response_format == "base64-json" else "form"

    # -- entry point ------------------------------------------------------------------------

    def handle(self, message: NexoMessage) -> NexoMessage | None:
        """Answer one request (None: an AbortRequest, which gets no response)."""
        with self.lock:
            self.categories_seen.append(message.category)
            del self.categories_seen[:-1000]
            refusal = self._check_header(message)
            if refusal is not None:
                return refusal
            service_id = message.header.service_id or ""
            if self._reused(service_id):
                log.debug("sim.nexo.service_id_reused", service_id=service_id)
                return failure_response(
                    message,
                    "NotAllowed",
                    {"message": f"ServiceID {service_id} was used within the last 48 hours"},
                    additional_encoding=self.encoding,
                )
            self._spend(service_id)
            if message.category == "Abort":
                self._abort(message)
                return None
            if self.state.busy_service_id:
                return failure_response(
                    message,
                    "Busy",
                    {"message": BUSY_MESSAGE, "serviceId": self.state.busy_service_id},
                    additional_encoding=self.encoding,
                )
            handler = {
                "Diagnosis": self._diagnosis,
                "Login": self._login,
                "Logout": self._logout,
                "GetTotals": self._get_totals,
                "Reconciliation": self._reconciliation,
            }.get(message.category)
            if handler is None:
                return failure_response(
                    message,
                    "UnavailableService",
                    {"message": f"{message.category} is not available on this terminal"},
                    additional_encoding=self.encoding,
                )
            return handler(message)

    def format_error(self, header: MessageHeader | None, errors: str, **extra: str) -> NexoMessage:
        """A MessageFormat failure with Adyen's ``errors=`` (and ``warnings=``) note.

        Without a readable header (the body could not be parsed) the reply is built from a
        Diagnosis-shaped placeholder header naming this terminal.
        """
        if header is None:
            header = MessageHeader("Service", "Diagnosis", "Request", poiid=self.state.poiid)
        return failure_response(
            header, "MessageFormat", {"errors": errors, **extra}, additional_encoding="form"
        )

    # -- header rules -----------------------------------------------------------------------

    def _check_header(self, message: NexoMessage) -> NexoMessage | None:
        header = message.header
        if message.top != REQUEST or header.message_type != "Request":
            return self.format_error(header, f"{_HEADER}, field MessageType: Invalid")
        for name, value in (("ServiceID", header.service_id), ("SaleID", header.sale_id),
                            ("POIID", header.poiid)):  # fmt: skip
            if not value:
                return self.format_error(header, f"{_HEADER}, field {name}: Missing")
        if not valid_service_id(header.service_id):
            return self.format_error(header, f"{_HEADER}, field ServiceID: Invalid")
        if header.poiid != self.state.poiid:
            return self.format_error(header, f"{_HEADER}, field POIID: Invalid")
        return None

    def _reused(self, service_id: str) -> bool:
        used = self.state.used_service_ids
        now = self.clock()
        while used:  # forget what left the window (oldest first)
            oldest, when = next(iter(used.items()))
            if now - when < SERVICE_ID_WINDOW_S:
                break
            del used[oldest]
        return service_id in used

    def _spend(self, service_id: str) -> None:
        used = self.state.used_service_ids
        used[service_id] = self.clock()
        while len(used) > MAX_SERVICE_IDS:
            used.popitem(last=False)

    # -- status -----------------------------------------------------------------------------

    def poi_status(self) -> PoiStatus:
        """``POIStatus`` as the state stands (every flag filled, printer when there is one)."""
        state = self.state
        return PoiStatus(
            global_status="Busy" if state.busy_service_id else state.global_status,
            security_ok=state.security_ok,
            ped_ok=state.ped_ok,
            card_reader_ok=state.card_reader_ok,
            communication_ok=state.communication_ok,
            fraud_prevention=state.fraud_prevention,
            printer_status=state.printer,
        )

    def additional(self) -> dict[str, str]:
        """Adyen's Diagnosis extras, in the order of Adyen's example (reference §3)."""
        state = self.state
        values: dict[str, str] = {}
        if state.battery_pct is not None:
            values["batteryLevel"] = f"{state.battery_pct}%"
        values["firmwareVersion"] = state.firmware
        if state.network_profile:
            entries = [NetworkProfileEntry(n["Address"], n["Iface"]) for n in state.network_profile]
            values["networkProfile"] = encode_network_profile(entries)
        if state.merchant_account:
            values["merchantAccount"] = state.merchant_account
        values["unconfirmedBatchCount"] = str(state.unconfirmed_batch_count)
        values["terminalId"] = state.poiid
        if state.store:
            values["storeId"] = state.store
        return values

    def _run_sync(self) -> None:
        if self.sync is not None:
            self.sync(self.state)

    # -- handlers ---------------------------------------------------------------------------

    def _diagnosis(self, message: NexoMessage) -> NexoMessage:
        self._run_sync()
        state = self.state
        check_host = message.body.get("HostDiagnosisFlag") is True
        asked = message.body.get("AcquirerID")
        acquirers = list(state.hosts)
        if isinstance(asked, list) and asked:
            wanted = {str(a)[:32] for a in asked[:64] if isinstance(a, str | int)}
            acquirers = [a for a in acquirers if a in wanted]
        if check_host:
            self.sleep(state.timing.delay(state.timing.host_latency))
        hosts = [
            HostStatus(a, (state.hosts[a] and state.communication_ok) if check_host else None)
            for a in acquirers
        ]
        return diagnosis_response(
            message,
            additional=self.additional(),
            poi_status=self.poi_status(),
            host_status=hosts,
            logged_sale_ids=state.logged_sale_ids,
            additional_encoding=self.encoding,
        )

    def _login(self, message: NexoMessage) -> NexoMessage:
        self._run_sync()
        sale_id = message.header.sale_id or ""
        logins = self.state.logins
        body = message.body
        terminal = body.get("SaleTerminalData")
        logins.pop(sale_id, None)
        logins[sale_id] = {
            "OperatorID": _short(body.get("OperatorID")),
            "ShiftNumber": _short(body.get("ShiftNumber")),
            "OperatorLanguage": _short(body.get("OperatorLanguage")),
            "TotalsGroupID": _short(terminal.get("TotalsGroupID"))
            if isinstance(terminal, Mapping)
            else None,
        }
        while len(logins) > MAX_LOGINS:
            logins.popitem(last=False)
        log.debug("sim.nexo.login", sale_id=sale_id)
        return login_response(
            message,
            date_time=utc_timestamp(self.clock()),
            software_version=self.state.software_version,
            manufacturer_id="Adyen",
            application_name="Adyen Terminal",
            serial_number=self.state.serial,
            poi_status=self.poi_status(),
        )

    def _logout(self, message: NexoMessage) -> NexoMessage:
        self.state.logins.pop(message.header.sale_id or "", None)
        return logout_response(message)

    def _logged_out(self, message: NexoMessage) -> NexoMessage | None:
        if (message.header.sale_id or "") in self.state.logins:
            return None
        return failure_response(
            message,
            "LoggedOut",
            {"message": "Login required before " + message.category},
            additional_encoding=self.encoding,
        )

    def _get_totals(self, message: NexoMessage) -> NexoMessage:
        self._run_sync()
        refusal = self._logged_out(message)
        if refusal is not None:
            return refusal
        state = self.state
        payments = _filtered(state.payments, message.body.get("TotalFilter"), state.poiid)
        return get_totals_response(
            message,
            poi_reconciliation_id=str(state.next_reconciliation_id),
            totals=_totals(payments),
        )

    def _reconciliation(self, message: NexoMessage) -> NexoMessage:
        refusal = self._logged_out(message)
        if refusal is not None:
            return refusal
        kind = message.body.get("ReconciliationType")
        if kind == "SaleReconciliation":
            report = self.close_period()
            return reconciliation_response(
                message,
                poi_reconciliation_id=report.poi_reconciliation_id,
                totals=_totals(report.payments),
            )
        if kind == "PreviousReconciliation":
            wanted = message.body.get("POIReconciliationID")
            stored = self.state.reports.get(wanted) if isinstance(wanted, str) else None
            if stored is None:
                return failure_response(
                    message,
                    "NotFound",
                    {"message": "No reconciliation report with that POIReconciliationID"},
                    additional_encoding=self.encoding,
                )
            return reconciliation_response(
                message,
                poi_reconciliation_id=stored.poi_reconciliation_id,
                totals=_totals(stored.payments),
            )
        if not isinstance(kind, str):
            return self.format_error(
                message.header,
                "At SaleToPOIRequest.ReconciliationRequest, field ReconciliationType: Missing",
            )
        return failure_response(
            message,
            "UnavailableService",
            {"message": f"{kind[:40]} is not available on this terminal"},
            additional_encoding=self.encoding,
        )

    def close_period(self) -> ReconciliationReport:
        """Close the reconciliation period (what a SaleReconciliation does on a terminal).

        The period's payments become a stored report under the next POIReconciliationID; with
        a reachable host the offline backlog is uploaded too (``unconfirmedBatchCount`` 0).
        """
        state = self.state
        report = ReconciliationReport(
            str(state.next_reconciliation_id), list(state.payments), self.clock()
        )
        state.reports[report.poi_reconciliation_id] = report
        while len(state.reports) > MAX_REPORTS:
            state.reports.popitem(last=False)
        state.next_reconciliation_id += 1
        state.payments = []
        if state.communication_ok and any(state.hosts.values()):
            state.unconfirmed_batch_count = 0
        log.info("sim.nexo.period_closed", poi_reconciliation_id=report.poi_reconciliation_id)
        return report

    def _abort(self, message: NexoMessage) -> None:
        reference = message.body.get("MessageReference")
        target = reference.get("ServiceID") if isinstance(reference, Mapping) else None
        if target and target == self.state.busy_service_id:
            log.info("sim.nexo.aborted", service_id=target)
            self.state.busy_service_id = None
            self.state.busy_sale_id = None


def clear_merchant(state: NexoState) -> None:
    """What a terminal does when its backend reassigns it to inventory (at its next sync).

    Its merchant account and store configuration are removed and every POS login with them.
    """
    state.merchant_account = None
    state.store = None
    state.logins = OrderedDict()
