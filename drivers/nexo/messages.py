"""nexo Retailer JSON messages (Adyen Terminal API, protocol 3.0), sans-IO, both roles.

Wire layout (one JSON object per HTTP body)::

    {"SaleToPOIRequest":  {"MessageHeader": {...}, "<Category>Request":  {...}}}
    {"SaleToPOIResponse": {"MessageHeader": {...}, "<Category>Response": {...}}}
    {"SaleToPOIRequest":  {"MessageHeader": {...}, "EventNotification": {...}}}   (terminal → POS)

An encrypted message keeps the clear ``MessageHeader`` and replaces the body by ``NexoBlob`` and
``SecurityTrailer`` (see :mod:`.crypto`); decrypt first, then decode here.

Header rules (reference nexo.md §2): ``ProtocolVersion`` "3.0"; ``MessageClass`` Service, Device
or Event; ``MessageCategory`` (Diagnosis, Login, …); ``MessageType`` Request, Response or
Notification; ``ServiceID`` 1–10 characters, new for every request; ``SaleID`` the POS;
``POIID`` the terminal (``V400m-324688179``); ``DeviceID`` optional. A response repeats SaleID,
ServiceID and POIID, carries MessageType Response, and its body is ``<Category>Response``; an
event is class Event, category Event, type Notification with body ``EventNotification``. Every
response body holds ``Response {Result, ErrorCondition?, AdditionalResponse?}``.

What the codec accepts: unknown header fields and unknown body fields are kept (the body is a
plain dict) and unknown categories decode as long as the body name matches the category — a
newer terminal must not make posdiag blind. What it rejects, always as :class:`NexoDecodeError`:
bytes that are not a bounded, strict JSON object (:func:`loads`), a missing or ill-typed
required header field, a body name that contradicts the header.

What it will not build: any message that moves money. There is no payment, refund or
``SaleReconciliation`` builder (a SaleReconciliation closes the terminal's batch); the
reconciliation builder always asks for ``PreviousReconciliation``, a read-only report.

This module holds the constants, the header, the envelope and the records; the builders
(:mod:`.builders`), the typed readers (:mod:`.readers`) and the bounded JSON (:mod:`.jsonwire`)
live beside it to keep each module readable, and are re-exported here, so callers import
everything from ``posdiag.drivers.nexo.messages``. Every string a typed reader returns is cleaned
with :func:`posdiag.drivers.text.clean_text` and bounded, and a required number that is not a
number raises instead of reading as zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .errors import NexoDecodeError
from .jsonwire import MAX_DEPTH, MAX_MESSAGE_BYTES, dumps, loads, loads_any

__all__ = [
    "ERROR_CONDITIONS",
    "EVENTS",
    "GLOBAL_STATUSES",
    "MAX_DEPTH",
    "MAX_HEADER_VALUE",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_CATEGORIES",
    "MESSAGE_CLASSES",
    "MESSAGE_TYPES",
    "PRINTER_STATUSES",
    "PROTOCOL_VERSION",
    "RECONCILIATION_TYPES",
    "REQUEST",
    "RESPONSE",
    "RESULTS",
    "TOPS",
    "TOTAL_DETAILS",
    "AbortQuery",
    "AdditionalEncoding",
    "Diagnosis",
    "DiagnosisQuery",
    "Event",
    "HostStatus",
    "LoginQuery",
    "LoginResult",
    "LogoutQuery",
    "MessageHeader",
    "NetworkProfileEntry",
    "NexoMessage",
    "PaymentTotal",
    "PoiStatus",
    "ReconciliationQuery",
    "RequestParams",
    "ResponseStatus",
    "ServiceRef",
    "TotalsQuery",
    "TotalsResult",
    "TransactionTotal",
    "abort_request",
    "body_name_for",
    "decode_message",
    "diagnosis_request",
    "diagnosis_response",
    "dumps",
    "encode_additional",
    "encode_message",
    "encode_network_profile",
    "event_notification",
    "failure_response",
    "get_totals_request",
    "get_totals_response",
    "loads",
    "loads_any",
    "login_request",
    "login_response",
    "logout_request",
    "logout_response",
    "parse_additional",
    "parse_network_profile",
    "previous_reconciliation_request",
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
    "reconciliation_response",
    "valid_service_id",
]

PROTOCOL_VERSION = "3.0"
REQUEST = "SaleToPOIRequest"
RESPONSE = "SaleToPOIResponse"
TOPS = (REQUEST, RESPONSE)
MESSAGE_CLASSES = ("Service", "Device", "Event")
MESSAGE_TYPES = ("Request", "Response", "Notification")
MESSAGE_CATEGORIES = (
    "Abort", "Admin", "BalanceInquiry", "Batch", "CardAcquisition", "CardReaderAPDU",
    "CardReaderInit", "CardReaderPowerOff", "Diagnosis", "Display", "EnableService", "Event",
    "GetTotals", "Input", "InputUpdate", "Login", "Logout", "Loyalty", "PIN", "Payment", "Print",
    "Reconciliation", "Reversal", "Sound", "StoredValue", "TransactionStatus", "Transmit",
)  # fmt: skip
RESULTS = ("Success", "Partial", "Failure")
ERROR_CONDITIONS = (
    "Aborted", "Busy", "Cancel", "DeviceOut", "InProgress", "InsertedCard", "InvalidCard",
    "LoggedOut", "MessageFormat", "NotAllowed", "NotFound", "PaymentRestriction", "Refusal",
    "UnavailableDevice", "UnavailableService", "UnreachableHost", "WrongPIN",
)  # fmt: skip
EVENTS = (
    "Abort", "BeginMaintenance", "EndMaintenance", "CardInserted", "CardRemoved", "Completed",
    "CustomerLanguage", "Initialised", "KeyPressed", "NetworkConnected", "NetworkDisconnected",
    "OutOfOrder", "Reject", "SaleAdmin", "SaleWakeUp", "ScanBarcodeResult", "SecurityAlarm",
    "Shutdown", "StopAssistance",
)  # fmt: skip
GLOBAL_STATUSES = ("OK", "Busy", "Maintenance", "Unreachable")
PRINTER_STATUSES = ("OK", "PaperLow", "NoPaper", "PaperJam", "OutOfOrder")
RECONCILIATION_TYPES = (
    "SaleReconciliation", "PreviousReconciliation", "AcquirerReconciliation",
    "AcquirerSynchronisation",
)  # fmt: skip
TOTAL_DETAILS = ("POIID", "SaleID", "OperatorID", "ShiftNumber", "TotalsGroupID")

MAX_HEADER_VALUE = 256
"""Longest header value accepted (a POIID is ~20 characters)."""

_SERVICE_ID_STRICT = re.compile(r"[A-Za-z0-9]{1,10}")
_SERVICE_ID_LENIENT = re.compile(r"[!-~]{1,10}")
_CATEGORY_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,39}")


# --- header and envelope -----------------------------------------------------------------------

_HEADER_FIELDS = (
    ("protocol_version", "ProtocolVersion"),
    ("message_class", "MessageClass"),
    ("message_category", "MessageCategory"),
    ("message_type", "MessageType"),
    ("service_id", "ServiceID"),
    ("sale_id", "SaleID"),
    ("poiid", "POIID"),
    ("device_id", "DeviceID"),
)


def valid_service_id(text: object, *, strict: bool = False) -> bool:
    """True when ``text`` may be a ServiceID.

    Adyen documents 1–10 alphanumeric characters, and a maintainer said terminals accept other
    characters locally (nexo.md §2), so by default any 1–10 printable ASCII characters pass:
    the simulator must accept what a terminal accepts. ``strict=True`` is the documented rule;
    posdiag's own request builders require it, because what we send must pass everywhere.
    """
    pattern = _SERVICE_ID_STRICT if strict else _SERVICE_ID_LENIENT
    return isinstance(text, str) and pattern.fullmatch(text) is not None


@dataclass(frozen=True)
class MessageHeader:
    """The ``MessageHeader`` of every nexo message; ``None`` fields are left out on the wire."""

    message_class: str
    message_category: str
    message_type: str
    service_id: str | None = None
    sale_id: str | None = None
    poiid: str | None = None
    device_id: str | None = None
    protocol_version: str = PROTOCOL_VERSION

    def to_json(self) -> dict[str, str]:
        """The header with nexo field names, in the order Adyen's examples use."""
        return {
            name: value
            for attribute, name in _HEADER_FIELDS
            if (value := getattr(self, attribute)) is not None
        }

    @classmethod
    def from_json(cls, obj: object, *, path: str = "MessageHeader") -> MessageHeader:
        """Read a header; unknown fields are ignored, missing or ill-typed required ones raise.

        Values are bounded to :data:`MAX_HEADER_VALUE` characters. A missing ProtocolVersion
        reads as "3.0" (some clients leave it out); ``null`` for an optional field reads as
        absent.
        """
        if not isinstance(obj, Mapping):
            raise NexoDecodeError("the message header is not an object", path=path)
        values: dict[str, str | None] = {}
        for attribute, name in _HEADER_FIELDS:
            value = obj.get(name)
            if value is None:
                values[attribute] = None
                continue
            if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
                raise NexoDecodeError(f"At {path}, field {name}: Invalid", path=path)
            values[attribute] = value
        for attribute, name in _HEADER_FIELDS[1:4]:
            if not values[attribute]:
                raise NexoDecodeError(f"At {path}, field {name}: Missing", path=path)
        message_class = values["message_class"] or ""
        message_type = values["message_type"] or ""
        category = values["message_category"] or ""
        if message_class not in MESSAGE_CLASSES:
            raise NexoDecodeError(f"At {path}, field MessageClass: Invalid", path=path)
        if message_type not in MESSAGE_TYPES:
            raise NexoDecodeError(f"At {path}, field MessageType: Invalid", path=path)
        if not _CATEGORY_RE.fullmatch(category):
            raise NexoDecodeError(f"At {path}, field MessageCategory: Invalid", path=path)
        return cls(
            message_class=message_class,
            message_category=category,
            message_type=message_type,
            service_id=values["service_id"],
            sale_id=values["sale_id"],
            poiid=values["poiid"],
            device_id=values["device_id"],
            protocol_version=values["protocol_version"] or PROTOCOL_VERSION,
        )


def body_name_for(header: MessageHeader) -> str:
    """The body key a header calls for: ``<Category>Request``, ``…Response``, ``…Notification``."""
    return header.message_category + header.message_type


@dataclass(frozen=True)
class NexoMessage:
    """One decoded message: which envelope, its header, and its body as plain JSON values.

    The body stays a dict so fields this codec does not know survive a decode/encode round trip.
    """

    top: str
    header: MessageHeader
    body_name: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> str:
        """The header's MessageCategory (``Diagnosis``, ``Event``…)."""
        return self.header.message_category


_ENVELOPE_KEYS = frozenset(("MessageHeader", "SecurityTrailer", "NexoBlob"))


def encode_message(message: NexoMessage) -> dict[str, Any]:
    """The JSON object of ``message`` (serialise it with :func:`dumps` or encrypt it)."""
    return {
        message.top: {"MessageHeader": message.header.to_json(), message.body_name: message.body}
    }


def decode_message(obj: Mapping[str, Any]) -> NexoMessage:
    """Read a clear (or already decrypted) message object into a :class:`NexoMessage`.

    Raises:
        NexoDecodeError: not exactly one known envelope, no header, not exactly one body, a body
            that is not an object, or a body name or envelope that contradicts the header.
    """
    if not isinstance(obj, Mapping) or len(obj) != 1:
        raise NexoDecodeError("At toplevel, field SaleToPOIRequest: Missing", path="")
    top = next(iter(obj))
    if top not in TOPS:
        raise NexoDecodeError("At toplevel, field SaleToPOIRequest: Missing", path="")
    inner = obj[top]
    if not isinstance(inner, Mapping):
        raise NexoDecodeError(f"At toplevel, field {top}: Invalid", path=top)
    if "MessageHeader" not in inner:
        raise NexoDecodeError(f"At {top}, field MessageHeader: Missing", path=top)
    header = MessageHeader.from_json(inner["MessageHeader"], path=f"{top}.MessageHeader")
    bodies = [key for key in inner if key not in _ENVELOPE_KEYS]
    expected = body_name_for(header)
    if len(bodies) != 1:
        if not bodies and "NexoBlob" in inner:
            raise NexoDecodeError("the message is encrypted and must be decrypted first", path=top)
        raise NexoDecodeError(f"At {top}, field {expected}: Missing", path=top)
    name = bodies[0]
    if name != expected:
        raise NexoDecodeError(f"At {top}, field {name}: Unexpected", path=top)
    if (top == RESPONSE) != (header.message_type == "Response"):
        raise NexoDecodeError(f"At {top}.MessageHeader, field MessageType: Invalid", path=top)
    body = inner[name]
    if not isinstance(body, dict):
        raise NexoDecodeError(f"At {top}, field {name}: Invalid", path=f"{top}.{name}")
    return NexoMessage(top=top, header=header, body_name=name, body=body)


# --- records shared by builders and readers ----------------------------------------------------


@dataclass(frozen=True)
class ServiceRef:
    """A reference to another running service (``MessageReference`` of an AbortRequest)."""

    service_id: str | None
    sale_id: str | None
    message_category: str = "Payment"
    poiid: str | None = None

    def to_json(self) -> dict[str, str]:
        """The ``MessageReference`` object."""
        out = {"MessageCategory": self.message_category}
        for name, value in (("SaleID", self.sale_id), ("ServiceID", self.service_id),
                            ("POIID", self.poiid)):  # fmt: skip
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class PoiStatus:
    """``POIStatus``: the terminal's own view of its health (nexo.md §3).

    Unknown status words a terminal sends are kept (cleaned) rather than dropped; None means the
    terminal did not say.
    """

    global_status: str | None = "OK"
    security_ok: bool | None = None
    ped_ok: bool | None = None
    card_reader_ok: bool | None = None
    communication_ok: bool | None = None
    fraud_prevention: bool | None = None
    printer_status: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``POIStatus`` object, leaving out what is None."""
        pairs = (
            ("GlobalStatus", self.global_status),
            ("SecurityOKFlag", self.security_ok),
            ("PEDOKFlag", self.ped_ok),
            ("CardReaderOKFlag", self.card_reader_ok),
            ("CommunicationOKFlag", self.communication_ok),
            ("FraudPreventionFlag", self.fraud_prevention),
            ("PrinterStatus", self.printer_status),
        )
        return {name: value for name, value in pairs if value is not None}


@dataclass(frozen=True)
class HostStatus:
    """One ``HostStatus`` entry: an acquirer host and whether the terminal can reach it."""

    acquirer_id: str
    reachable: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``HostStatus`` object."""
        out: dict[str, Any] = {"AcquirerID": self.acquirer_id}
        if self.reachable is not None:
            out["IsReachableFlag"] = self.reachable
        return out


@dataclass(frozen=True)
class PaymentTotal:
    """One ``PaymentTotals`` entry: how many transactions of a type, and their sum."""

    transaction_type: str
    count: int
    amount: Decimal

    def to_json(self) -> dict[str, Any]:
        """The ``PaymentTotals`` entry; the amount as a JSON number."""
        amount: int | float = (
            int(self.amount)
            if self.amount == self.amount.to_integral_value()
            else float(self.amount)
        )
        return {
            "TransactionType": self.transaction_type,
            "TransactionCount": self.count,
            "TransactionAmount": amount,
        }


@dataclass(frozen=True)
class TransactionTotal:
    """One ``TransactionTotals`` entry: totals per instrument, acquirer, brand and currency."""

    payment_instrument_type: str
    acquirer_id: str | None = None
    card_brand: str | None = None
    currency: str | None = None
    payment_totals: tuple[PaymentTotal, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``TransactionTotals`` entry."""
        out: dict[str, Any] = {"PaymentInstrumentType": self.payment_instrument_type}
        for name, value in (("AcquirerID", self.acquirer_id), ("CardBrand", self.card_brand),
                            ("PaymentCurrency", self.currency)):  # fmt: skip
            if value is not None:
                out[name] = value
        out["PaymentTotals"] = [total.to_json() for total in self.payment_totals]
        return out


# Re-exported so callers import the whole codec from one module; placed last because both
# modules import the records above.
from .additional import (  # noqa: E402
    NetworkProfileEntry,
    encode_additional,
    encode_network_profile,
    parse_additional,
    parse_network_profile,
)
from .builders import (  # noqa: E402
    AdditionalEncoding,
    abort_request,
    diagnosis_request,
    diagnosis_response,
    event_notification,
    failure_response,
    get_totals_request,
    get_totals_response,
    login_request,
    login_response,
    logout_request,
    logout_response,
    previous_reconciliation_request,
    reconciliation_response,
)
from .readers import (  # noqa: E402
    AbortQuery,
    Diagnosis,
    DiagnosisQuery,
    Event,
    LoginQuery,
    LoginResult,
    LogoutQuery,
    ReconciliationQuery,
    RequestParams,
    ResponseStatus,
    TotalsQuery,
    TotalsResult,
    read_abort_request,
    read_diagnosis,
    read_diagnosis_request,
    read_event,
    read_get_totals_request,
    read_login,
    read_login_request,
    read_logout_request,
    read_poi_status,
    read_reconciliation_request,
    read_request,
    read_response,
    read_totals,
)
