"""Typed readers of decoded nexo messages, for both roles.

Host role (what posdiag's driver reads from a terminal): :func:`read_response`,
:func:`read_diagnosis`, :func:`read_login`, :func:`read_totals`, :func:`read_event`. The
terminal is hostile: every string is cleaned (:func:`~posdiag.drivers.text.clean_text`) and
bounded, every list is capped, an optional value of the wrong type reads as None, and a
*required* value that is missing or wrong (a Result, a transaction count or amount) raises
:class:`~.errors.NexoDecodeError` — a total that cannot be read must never read as zero, since a
wipe guard relies on it.

Device role (what the simulator reads from a POS): :func:`read_request` and the per-category
``read_*_request`` functions, strict like a terminal: a missing or ill-typed field raises
NexoDecodeError whose ``detail`` reads the way Adyen words it (``At SaleToPOIRequest.LoginRequest,
field DateTime: Missing``), so the simulator can echo it in a MessageFormat reply. Unknown extra
fields are ignored, as an Adyen terminal does (it only warns).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..text import clean_text
from .additional import NetworkProfileEntry, parse_additional, parse_network_profile
from .errors import NexoDecodeError
from .messages import (
    ERROR_CONDITIONS,
    EVENTS,
    GLOBAL_STATUSES,
    PRINTER_STATUSES,
    RECONCILIATION_TYPES,
    REQUEST,
    RESPONSE,
    RESULTS,
    HostStatus,
    NexoMessage,
    PaymentTotal,
    PoiStatus,
    ServiceRef,
    TransactionTotal,
)

__all__ = [
    "AbortQuery",
    "Diagnosis",
    "DiagnosisQuery",
    "Event",
    "LoginQuery",
    "LoginResult",
    "LogoutQuery",
    "ReconciliationQuery",
    "RequestParams",
    "ResponseStatus",
    "TotalsQuery",
    "TotalsResult",
    "read_abort_request",
    "read_diagnosis",
    "read_diagnosis_request",
    "read_event",
    "read_get_totals_request",
    "read_login",
    "read_login_request",
    "read_logout_request",
    "read_poi_status",
    "read_reconciliation_request",
    "read_request",
    "read_response",
    "read_totals",
]

TEXT_LIMIT = 256
"""Longest free text kept from a terminal (firmware, messages, IDs)."""
ADDITIONAL_VALUE_LIMIT = 1024
"""Longest AdditionalResponse value kept (an ``errors=`` list can be long)."""
MAX_LIST = 64
"""Most entries read from any list a terminal sends (hosts, SaleIDs, payment totals)."""
MAX_TOTALS = 256
"""Most TransactionTotals entries read (one per instrument, acquirer, brand, currency)."""

# ASCII only: Python's \d also matches other scripts' digits, which int() and Decimal() accept.
_PERCENT = re.compile(r"\s*(\d{1,3})(?:\.\d+)?\s*%?\s*", re.ASCII)
_COUNT = re.compile(r"\s*(\d{1,9})\s*", re.ASCII)
_AMOUNT = re.compile(r"-?\d{1,15}(?:\.\d{1,6})?", re.ASCII)


# --- hostile-value helpers ---------------------------------------------------------------------


def _text(value: object, limit: int = TEXT_LIMIT) -> str | None:
    """Cleaned text of a string or number; None for anything else (absent, object, bool)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return clean_text(value, limit=limit)


def _word(value: object, known: tuple[str, ...]) -> str | None:
    """A status word: kept as is when known, cleaned and short when not, None when absent."""
    if isinstance(value, str) and value in known:
        return value
    return _text(value, limit=64)


def _flag(value: object) -> bool | None:
    """A JSON boolean, or None."""
    return value if isinstance(value, bool) else None


def _list(value: object, limit: int = MAX_LIST) -> list[Any]:
    """The first ``limit`` entries of a JSON array; [] for anything else."""
    return value[:limit] if isinstance(value, list) else []


def _object(value: object) -> Mapping[str, Any]:
    """A JSON object, or an empty one."""
    return value if isinstance(value, Mapping) else {}


def _expect(msg: NexoMessage, top: str, *categories: str) -> None:
    """Refuse a message of the wrong envelope or category for this reader."""
    if msg.top != top or msg.header.message_category not in categories:
        raise NexoDecodeError(
            f"expected a {'/'.join(categories)} message, got {msg.body_name}", path=msg.top
        )


# --- host role ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseStatus:
    """The ``Response`` block: Result, ErrorCondition and the parsed AdditionalResponse."""

    result: str
    error_condition: str | None = None
    additional: dict[str, str] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """True for ``Result: Success`` (Partial and Failure are not)."""
        return self.result == "Success"


def _raw_additional(msg: NexoMessage) -> dict[str, str]:
    """The AdditionalResponse of a response body, parsed but not cleaned."""
    return parse_additional(_object(msg.body.get("Response")).get("AdditionalResponse"))


def read_response(msg: NexoMessage) -> ResponseStatus:
    """Read any response's ``Response`` block; a missing or unknown Result raises.

    AdditionalResponse keys and values are cleaned and bounded; an unknown ErrorCondition is
    kept (cleaned) so a newer terminal's reason is still shown.
    """
    if msg.top != RESPONSE:
        raise NexoDecodeError("expected a response", path=msg.top)
    path = f"{RESPONSE}.{msg.body_name}"
    block = msg.body.get("Response")
    if not isinstance(block, Mapping):
        raise NexoDecodeError(f"At {path}, field Response: Missing", path=path)
    result = block.get("Result")
    if result not in RESULTS:
        raise NexoDecodeError(f"At {path}.Response, field Result: Invalid", path=path)
    additional = {
        clean_text(key, limit=64): clean_text(value, limit=ADDITIONAL_VALUE_LIMIT)
        for key, value in _raw_additional(msg).items()
    }
    return ResponseStatus(str(result), _word(block.get("ErrorCondition"), ERROR_CONDITIONS),
                          additional)  # fmt: skip


def read_poi_status(value: object) -> PoiStatus | None:
    """Read a ``POIStatus`` object tolerantly; None when there is none."""
    if not isinstance(value, Mapping):
        return None
    return PoiStatus(
        global_status=_word(value.get("GlobalStatus"), GLOBAL_STATUSES),
        security_ok=_flag(value.get("SecurityOKFlag")),
        ped_ok=_flag(value.get("PEDOKFlag")),
        card_reader_ok=_flag(value.get("CardReaderOKFlag")),
        communication_ok=_flag(value.get("CommunicationOKFlag")),
        fraud_prevention=_flag(value.get("FraudPreventionFlag")),
        printer_status=_word(value.get("PrinterStatus"), PRINTER_STATUSES),
    )


@dataclass(frozen=True)
class Diagnosis:
    """A DiagnosisResponse read for the host: POIStatus flags plus Adyen's extras (nexo.md §3)."""

    status: ResponseStatus
    global_status: str | None = None
    security_ok: bool | None = None
    ped_ok: bool | None = None
    card_reader_ok: bool | None = None
    communication_ok: bool | None = None
    fraud_prevention: bool | None = None
    printer_status: str | None = None
    host_status: tuple[HostStatus, ...] = ()
    logged_sale_ids: tuple[str, ...] = ()
    battery_pct: int | None = None
    firmware_version: str | None = None
    network_profile: tuple[NetworkProfileEntry, ...] = ()
    merchant_account: str | None = None
    store_id: str | None = None
    terminal_id: str | None = None
    unconfirmed_batch_count: int | None = None


def _percent(value: object) -> int | None:
    """``"100%"`` → 100; None when not a percentage from 0 to 100."""
    short = isinstance(value, str) and len(value) <= 32  # also keeps the regex linear
    match = _PERCENT.fullmatch(value) if short and isinstance(value, str) else None
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= 100 else None


def _count(value: object) -> int | None:
    """A non-negative decimal count written as text; None when it is not one."""
    short = isinstance(value, str) and len(value) <= 32
    match = _COUNT.fullmatch(value) if short and isinstance(value, str) else None
    return int(match.group(1)) if match else None


def read_diagnosis(msg: NexoMessage) -> Diagnosis:
    """Read a DiagnosisResponse; optional parts the terminal left out (or garbled) are None."""
    _expect(msg, RESPONSE, "Diagnosis")
    status = read_response(msg)
    raw = _raw_additional(msg)
    poi = read_poi_status(msg.body.get("POIStatus")) or PoiStatus(global_status=None)
    hosts = tuple(
        HostStatus(acquirer, _flag(entry.get("IsReachableFlag")))
        for entry in _list(msg.body.get("HostStatus"))
        if isinstance(entry, Mapping)
        and (acquirer := _text(entry.get("AcquirerID"), limit=64)) is not None
    )
    sale_ids = tuple(
        text for item in _list(msg.body.get("LoggedSaleID")) if (text := _text(item)) is not None
    )
    profile = tuple(
        NetworkProfileEntry(clean_text(entry.address, limit=64), clean_text(entry.iface, limit=32))
        for entry in parse_network_profile(raw.get("networkProfile"))
    )
    return Diagnosis(
        status=status,
        global_status=poi.global_status,
        security_ok=poi.security_ok,
        ped_ok=poi.ped_ok,
        card_reader_ok=poi.card_reader_ok,
        communication_ok=poi.communication_ok,
        fraud_prevention=poi.fraud_prevention,
        printer_status=poi.printer_status,
        host_status=hosts,
        logged_sale_ids=sale_ids,
        battery_pct=_percent(raw.get("batteryLevel")),
        firmware_version=_text(raw.get("firmwareVersion"), limit=64),
        network_profile=profile,
        merchant_account=_text(raw.get("merchantAccount"), limit=128),
        store_id=_text(raw.get("storeId"), limit=128),
        terminal_id=_text(raw.get("terminalId"), limit=64),
        unconfirmed_batch_count=_count(raw.get("unconfirmedBatchCount")),
    )


@dataclass(frozen=True)
class LoginResult:
    """A LoginResponse read for the host: the terminal's software, serial and status."""

    status: ResponseStatus
    date_time: str | None = None
    manufacturer_id: str | None = None
    application_name: str | None = None
    software_version: str | None = None
    certification_code: str | None = None
    serial: str | None = None
    poi_status: PoiStatus | None = None


def read_login(msg: NexoMessage) -> LoginResult:
    """Read a LoginResponse; ``POISystemData`` parts the terminal left out are None."""
    _expect(msg, RESPONSE, "Login")
    system = _object(msg.body.get("POISystemData"))
    software = _object(system.get("POISoftware"))
    return LoginResult(
        status=read_response(msg),
        date_time=_text(system.get("DateTime"), limit=64),
        manufacturer_id=_text(software.get("ManufacturerID"), limit=64),
        application_name=_text(software.get("ApplicationName"), limit=64),
        software_version=_text(software.get("SoftwareVersion"), limit=64),
        certification_code=_text(software.get("CertificationCode"), limit=64),
        serial=_text(_object(system.get("POITerminalData")).get("SerialNumber"), limit=64),
        poi_status=read_poi_status(system.get("POIStatus")),
    )


@dataclass(frozen=True)
class TotalsResult:
    """A GetTotals or Reconciliation response: the period's ID and its totals."""

    status: ResponseStatus
    poi_reconciliation_id: str | None = None
    totals: tuple[TransactionTotal, ...] = ()
    reconciliation_type: str | None = None


def _amount(value: object, path: str) -> Decimal:
    """A required TransactionAmount as an exact Decimal; anything else raises."""
    text = repr(value) if isinstance(value, float) else value
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    if isinstance(text, str) and _AMOUNT.fullmatch(text):
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            pass
    raise NexoDecodeError(f"At {path}, field TransactionAmount: Invalid", path=path)


def _payment_total(entry: object, path: str) -> PaymentTotal:
    """One required PaymentTotals entry; a count or amount that is not a number raises."""
    if not isinstance(entry, Mapping):
        raise NexoDecodeError(f"At {path}: Invalid", path=path)
    count = entry.get("TransactionCount")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 10**9:
        raise NexoDecodeError(f"At {path}, field TransactionCount: Invalid", path=path)
    kind = _text(entry.get("TransactionType"), limit=32) or ""
    return PaymentTotal(kind, count, _amount(entry.get("TransactionAmount"), path))


def read_totals(msg: NexoMessage) -> TotalsResult:
    """Read a GetTotalsResponse or ReconciliationResponse; a garbled total raises.

    A terminal with more totals than the caps (:data:`MAX_TOTALS` entries, :data:`MAX_LIST`
    payment totals each) is refused rather than silently cut, for the same reason.
    """
    _expect(msg, RESPONSE, "GetTotals", "Reconciliation")
    status = read_response(msg)
    path = f"{RESPONSE}.{msg.body_name}.TransactionTotals"
    raw_totals = msg.body.get("TransactionTotals", [])
    if not isinstance(raw_totals, list) or len(raw_totals) > MAX_TOTALS:
        raise NexoDecodeError(f"At {RESPONSE}.{msg.body_name}, field TransactionTotals: Invalid",
                              path=path)  # fmt: skip
    totals: list[TransactionTotal] = []
    for entry in raw_totals:
        if not isinstance(entry, Mapping):
            raise NexoDecodeError(f"At {path}: Invalid", path=path)
        payments = entry.get("PaymentTotals", [])
        if not isinstance(payments, list) or len(payments) > MAX_LIST:
            raise NexoDecodeError(f"At {path}, field PaymentTotals: Invalid", path=path)
        totals.append(
            TransactionTotal(
                payment_instrument_type=_text(entry.get("PaymentInstrumentType"), limit=32) or "",
                acquirer_id=_text(entry.get("AcquirerID"), limit=64),
                card_brand=_text(entry.get("CardBrand"), limit=64),
                currency=_text(entry.get("PaymentCurrency"), limit=8),
                payment_totals=tuple(
                    _payment_total(item, f"{path}.PaymentTotals") for item in payments
                ),
            )
        )
    kind = msg.body.get("ReconciliationType")
    return TotalsResult(
        status=status,
        poi_reconciliation_id=_text(msg.body.get("POIReconciliationID"), limit=64),
        totals=tuple(totals),
        reconciliation_type=_word(kind, RECONCILIATION_TYPES) if kind is not None else None,
    )


@dataclass(frozen=True)
class Event:
    """An EventNotification read for the host."""

    kind: str
    timestamp: str
    details: dict[str, str] = field(default_factory=dict)
    maintenance_required: bool | None = None


def read_event(msg: NexoMessage) -> Event:
    """Read an EventNotification; EventToNotify and TimeStamp are required."""
    if msg.top != REQUEST or msg.body_name != "EventNotification":
        raise NexoDecodeError(f"expected an event notification, got {msg.body_name}",
                              path=msg.top)  # fmt: skip
    path = f"{REQUEST}.EventNotification"
    kind = _word(msg.body.get("EventToNotify"), EVENTS)
    timestamp = _text(msg.body.get("TimeStamp"), limit=64)
    if not kind:
        raise NexoDecodeError(f"At {path}, field EventToNotify: Missing", path=path)
    if timestamp is None:
        raise NexoDecodeError(f"At {path}, field TimeStamp: Missing", path=path)
    details = {
        clean_text(key, limit=64): clean_text(value, limit=ADDITIONAL_VALUE_LIMIT)
        for key, value in parse_additional(msg.body.get("EventDetails")).items()
    }
    return Event(kind, timestamp, details, _flag(msg.body.get("MaintenanceRequiredFlag")))


# --- device role -------------------------------------------------------------------------------


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: str,
           *, required: bool = False) -> Any:  # fmt: skip
    """A request field of the given JSON type; Missing/Invalid raise in Adyen's wording."""
    value = body.get(name)
    if value is None:
        if required:
            raise NexoDecodeError(f"At {path}, field {name}: Missing", path=path)
        return None
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise NexoDecodeError(f"At {path}, field {name}: Invalid", path=path)
    return value


def _id_list(body: Mapping[str, Any], name: str, path: str) -> tuple[str, ...]:
    """A list of IDs sent as strings or integers (the typings disagree, nexo.md §3)."""
    value = _field(body, name, list, path)
    if value is None:
        return ()
    if len(value) > MAX_LIST or not all(
        isinstance(item, str | int) and not isinstance(item, bool) for item in value
    ):
        raise NexoDecodeError(f"At {path}, field {name}: Invalid", path=path)
    return tuple(str(item) for item in value)


def _request_path(msg: NexoMessage, category: str) -> str:
    """Check a request's category and return the path of its body."""
    _expect(msg, REQUEST, category)
    if msg.header.message_type != "Request":
        raise NexoDecodeError(f"expected a {category} request", path=msg.top)
    return f"{REQUEST}.{msg.body_name}"


@dataclass(frozen=True)
class DiagnosisQuery:
    """What a DiagnosisRequest asks: whether to test the host, for which POI and acquirers."""

    host_diagnosis: bool = False
    poiid: str | None = None
    acquirer_ids: tuple[str, ...] = ()


def read_diagnosis_request(msg: NexoMessage) -> DiagnosisQuery:
    """Read a DiagnosisRequest (device role)."""
    path = _request_path(msg, "Diagnosis")
    return DiagnosisQuery(
        host_diagnosis=bool(_field(msg.body, "HostDiagnosisFlag", bool, path)),
        poiid=_field(msg.body, "POIID", str, path),
        acquirer_ids=_id_list(msg.body, "AcquirerID", path),
    )


@dataclass(frozen=True)
class LoginQuery:
    """What a LoginRequest carries (the POS software; persisted until Logout)."""

    date_time: str
    manufacturer_id: str
    application_name: str
    software_version: str
    certification_code: str | None = None
    operator_language: str | None = None
    operator_id: str | None = None
    shift_number: str | None = None
    training_mode: bool | None = None
    poi_serial_number: str | None = None


def read_login_request(msg: NexoMessage) -> LoginQuery:
    """Read a LoginRequest (device role); DateTime and SaleSoftware's names are required."""
    path = _request_path(msg, "Login")
    software = _field(msg.body, "SaleSoftware", Mapping, path, required=True)
    inner = f"{path}.SaleSoftware"
    return LoginQuery(
        date_time=_field(msg.body, "DateTime", str, path, required=True),
        manufacturer_id=_field(software, "ManufacturerID", str, inner, required=True),
        application_name=_field(software, "ApplicationName", str, inner, required=True),
        software_version=_field(software, "SoftwareVersion", str, inner, required=True),
        certification_code=_field(software, "CertificationCode", str, inner),
        operator_language=_field(msg.body, "OperatorLanguage", str, path),
        operator_id=_field(msg.body, "OperatorID", str, path),
        shift_number=_field(msg.body, "ShiftNumber", str, path),
        training_mode=_field(msg.body, "TrainingModeFlag", bool, path),
        poi_serial_number=_field(msg.body, "POISerialNumber", str, path),
    )


@dataclass(frozen=True)
class LogoutQuery:
    """What a LogoutRequest carries (Adyen ignores MaintenanceAllowed)."""

    maintenance_allowed: bool | None = None


def read_logout_request(msg: NexoMessage) -> LogoutQuery:
    """Read a LogoutRequest (device role)."""
    path = _request_path(msg, "Logout")
    return LogoutQuery(_field(msg.body, "MaintenanceAllowed", bool, path))


@dataclass(frozen=True)
class TotalsQuery:
    """What a GetTotalsRequest asks: the break-down and an optional filter."""

    total_details: tuple[str, ...] = ()
    total_filter: dict[str, str] = field(default_factory=dict)


def read_get_totals_request(msg: NexoMessage) -> TotalsQuery:
    """Read a GetTotalsRequest (device role)."""
    path = _request_path(msg, "GetTotals")
    details = _field(msg.body, "TotalDetails", list, path) or []
    if len(details) > MAX_LIST or not all(isinstance(item, str) for item in details):
        raise NexoDecodeError(f"At {path}, field TotalDetails: Invalid", path=path)
    filters = _field(msg.body, "TotalFilter", Mapping, path) or {}
    return TotalsQuery(
        tuple(details), {str(key): str(value) for key, value in list(filters.items())[:MAX_LIST]}
    )


@dataclass(frozen=True)
class ReconciliationQuery:
    """What a ReconciliationRequest asks (any type: a third-party POS may close the batch)."""

    reconciliation_type: str
    poi_reconciliation_id: str | None = None
    acquirer_ids: tuple[str, ...] = ()


def read_reconciliation_request(msg: NexoMessage) -> ReconciliationQuery:
    """Read a ReconciliationRequest (device role); ReconciliationType is required and known."""
    path = _request_path(msg, "Reconciliation")
    kind = _field(msg.body, "ReconciliationType", str, path, required=True)
    if kind not in RECONCILIATION_TYPES:
        raise NexoDecodeError(f"At {path}, field ReconciliationType: Invalid", path=path)
    reconciliation_id = _field(msg.body, "POIReconciliationID", (str, int), path)
    return ReconciliationQuery(
        kind,
        None if reconciliation_id is None else str(reconciliation_id),
        _id_list(msg.body, "AcquirerID", path),
    )


@dataclass(frozen=True)
class AbortQuery:
    """What an AbortRequest asks: why, and which running service to stop."""

    reason: str
    reference: ServiceRef


def read_abort_request(msg: NexoMessage) -> AbortQuery:
    """Read an AbortRequest (device role); AbortReason and MessageReference are required."""
    path = _request_path(msg, "Abort")
    reason = _field(msg.body, "AbortReason", str, path, required=True)
    reference = _field(msg.body, "MessageReference", Mapping, path, required=True)
    inner = f"{path}.MessageReference"
    return AbortQuery(
        reason,
        ServiceRef(
            service_id=_field(reference, "ServiceID", str, inner),
            sale_id=_field(reference, "SaleID", str, inner),
            message_category=_field(reference, "MessageCategory", str, inner, required=True),
            poiid=_field(reference, "POIID", str, inner),
        ),
    )


RequestParams = (
    DiagnosisQuery | LoginQuery | LogoutQuery | TotalsQuery | ReconciliationQuery | AbortQuery
)
_REQUEST_READERS: dict[str, Callable[[NexoMessage], RequestParams]] = {
    "Diagnosis": read_diagnosis_request,
    "Login": read_login_request,
    "Logout": read_logout_request,
    "GetTotals": read_get_totals_request,
    "Reconciliation": read_reconciliation_request,
    "Abort": read_abort_request,
}


def read_request(msg: NexoMessage) -> tuple[str, RequestParams | None]:
    """The category of a request and its typed parameters; None for a category not read here.

    The simulator answers a category it does not model (Payment, Admin…) from the category
    alone, typically with a failure response.
    """
    if msg.top != REQUEST or msg.header.message_type != "Request":
        raise NexoDecodeError(f"expected a request, got {msg.body_name}", path=msg.top)
    reader = _REQUEST_READERS.get(msg.header.message_category)
    return msg.header.message_category, (reader(msg) if reader is not None else None)
