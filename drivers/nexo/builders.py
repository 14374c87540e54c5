"""Builders of nexo messages for both roles: requests (host) and responses and events (device).

Each builder returns a :class:`~.messages.NexoMessage`; :func:`~.messages.encode_message` turns
it into the JSON object and :func:`~.crypto.encrypt_message` into the encrypted envelope. No
builder reads a clock or draws a random number: timestamps and ServiceIDs come from the caller.

Request builders take the header triple ``(service_id, sale_id, poiid)`` positionally and body
fields by keyword. There is deliberately no builder for a payment, a refund, a reversal or a
``SaleReconciliation`` (which closes the terminal's batch): posdiag reads and wipes terminals, it
never moves money, and a codec that cannot build such a message cannot send one by mistake.

Response builders take the request they answer (SaleID, ServiceID, POIID and DeviceID are
repeated from it, MessageType becomes Response) and are what the simulator replies with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from .additional import encode_additional
from .messages import (
    ERROR_CONDITIONS,
    EVENTS,
    REQUEST,
    RESPONSE,
    RESULTS,
    TOTAL_DETAILS,
    HostStatus,
    MessageHeader,
    NexoMessage,
    PoiStatus,
    ServiceRef,
    TransactionTotal,
    valid_service_id,
)

__all__ = [
    "AdditionalEncoding",
    "abort_request",
    "diagnosis_request",
    "diagnosis_response",
    "event_notification",
    "failure_response",
    "get_totals_request",
    "get_totals_response",
    "login_request",
    "login_response",
    "logout_request",
    "logout_response",
    "previous_reconciliation_request",
    "reconciliation_response",
]


def _request(
    category: str, service_id: str, sale_id: str, poiid: str, body: dict[str, Any]
) -> NexoMessage:
    """A Service-class request with a fresh header; refuses a ServiceID outside Adyen's rule."""
    if not valid_service_id(service_id, strict=True):
        raise ValueError("a ServiceID is 1 to 10 letters or digits")
    if not sale_id or not poiid:
        raise ValueError("a request names the POS (SaleID) and the terminal (POIID)")
    header = MessageHeader(
        message_class="Service",
        message_category=category,
        message_type="Request",
        service_id=service_id,
        sale_id=sale_id,
        poiid=poiid,
    )
    return NexoMessage(REQUEST, header, f"{category}Request", body)


def login_request(
    service_id: str,
    sale_id: str,
    poiid: str,
    *,
    date_time: str,
    manufacturer_id: str,
    application_name: str,
    software_version: str,
    certification_code: str = "",
    operator_language: str = "en",
) -> NexoMessage:
    """A LoginRequest: required before GetTotals and Reconciliation (nexo.md §4).

    ``date_time`` is the caller's UTC time in ISO 8601; CertificationCode and OperatorLanguage
    are "required but ignored" by Adyen, so harmless defaults are sent.
    """
    body = {
        "DateTime": date_time,
        "SaleSoftware": {
            "ManufacturerID": manufacturer_id,
            "ApplicationName": application_name,
            "SoftwareVersion": software_version,
            "CertificationCode": certification_code,
        },
        "OperatorLanguage": operator_language,
    }
    return _request("Login", service_id, sale_id, poiid, body)


def logout_request(service_id: str, sale_id: str, poiid: str) -> NexoMessage:
    """A LogoutRequest; the body is empty because Adyen does not support MaintenanceAllowed."""
    return _request("Logout", service_id, sale_id, poiid, {})


def diagnosis_request(
    service_id: str,
    sale_id: str,
    poiid: str,
    *,
    host_diagnosis: bool = False,
    body_poiid: str | None = None,
    acquirer_ids: Sequence[str] | None = None,
) -> NexoMessage:
    """A DiagnosisRequest; Adyen advises ``host_diagnosis=False`` first (nexo.md §3).

    ``body_poiid`` fills the body's optional POIID (the header always names the terminal).
    """
    body: dict[str, Any] = {"HostDiagnosisFlag": bool(host_diagnosis)}
    if body_poiid is not None:
        body["POIID"] = body_poiid
    if acquirer_ids:
        body["AcquirerID"] = [str(acquirer) for acquirer in acquirer_ids]
    return _request("Diagnosis", service_id, sale_id, poiid, body)


def get_totals_request(
    service_id: str,
    sale_id: str,
    poiid: str,
    *,
    total_details: Sequence[str] = TOTAL_DETAILS,
    total_filter: Mapping[str, str] | None = None,
) -> NexoMessage:
    """A GetTotalsRequest: reads the open period's totals without closing it (nexo.md §4)."""
    unknown = [detail for detail in total_details if detail not in TOTAL_DETAILS]
    if unknown:
        raise ValueError(f"unknown TotalDetails: {unknown}")
    body: dict[str, Any] = {"TotalDetails": list(total_details)}
    if total_filter:
        body["TotalFilter"] = dict(total_filter)
    return _request("GetTotals", service_id, sale_id, poiid, body)


def previous_reconciliation_request(
    service_id: str,
    sale_id: str,
    poiid: str,
    *,
    poi_reconciliation_id: str,
    acquirer_ids: Sequence[str] | None = None,
) -> NexoMessage:
    """A ReconciliationRequest for an earlier report; it never starts a new period.

    Always ``PreviousReconciliation``: a ``SaleReconciliation`` closes the batch, which a
    read-only check must never do, so this codec cannot build one.
    """
    if not poi_reconciliation_id:
        raise ValueError("a previous reconciliation names its POIReconciliationID")
    body: dict[str, Any] = {
        "ReconciliationType": "PreviousReconciliation",
        "POIReconciliationID": poi_reconciliation_id,
    }
    if acquirer_ids:
        body["AcquirerID"] = [str(acquirer) for acquirer in acquirer_ids]
    return _request("Reconciliation", service_id, sale_id, poiid, body)


def abort_request(
    service_id: str,
    sale_id: str,
    poiid: str,
    *,
    message_reference: ServiceRef,
    abort_reason: str = "MerchantAbort",
) -> NexoMessage:
    """An AbortRequest for a running service; it has its own new ServiceID and gets no reply."""
    if message_reference.service_id is not None and not valid_service_id(
        message_reference.service_id
    ):
        raise ValueError("the referenced ServiceID is not a ServiceID")
    body = {"AbortReason": abort_reason, "MessageReference": message_reference.to_json()}
    return _request("Abort", service_id, sale_id, poiid, body)


# --- response and notification builders (device role) ------------------------------------------

AdditionalEncoding = Literal["form", "base64json"]
"""How AdditionalResponse is written: ``k=v&…`` (Adyen's examples) or Base64 of a JSON object."""


def _response_block(
    result: str,
    error_condition: str | None,
    additional: Mapping[str, str] | None,
    encoding: AdditionalEncoding,
) -> dict[str, Any]:
    """The ``Response`` object every response body holds."""
    if result not in RESULTS:
        raise ValueError(f"unknown Result {result!r}")
    if error_condition is not None and error_condition not in ERROR_CONDITIONS:
        raise ValueError(f"unknown ErrorCondition {error_condition!r}")
    block: dict[str, Any] = {"Result": result}
    if error_condition is not None:
        block["ErrorCondition"] = error_condition
    if additional:
        block["AdditionalResponse"] = encode_additional(additional, encoding)
    return block


def _response(request: NexoMessage | MessageHeader, body: dict[str, Any]) -> NexoMessage:
    """A response to ``request``: same class and category, SaleID, ServiceID, POIID repeated."""
    asked = request.header if isinstance(request, NexoMessage) else request
    header = MessageHeader(
        message_class=asked.message_class,
        message_category=asked.message_category,
        message_type="Response",
        service_id=asked.service_id,
        sale_id=asked.sale_id,
        poiid=asked.poiid,
        device_id=asked.device_id,
    )
    return NexoMessage(RESPONSE, header, f"{asked.message_category}Response", body)


def failure_response(
    request: NexoMessage | MessageHeader,
    error_condition: str,
    additional: Mapping[str, str] | None = None,
    *,
    additional_encoding: AdditionalEncoding = "form",
) -> NexoMessage:
    """A ``Result: Failure`` response of the request's category (MessageFormat, Busy, …).

    Takes a bare header too, for a request whose body could not be read. For Busy, Adyen puts
    ``message`` and the running ``serviceId`` in ``additional``; for MessageFormat, ``errors``.
    """
    block = _response_block("Failure", error_condition, additional, additional_encoding)
    return _response(request, {"Response": block})


def diagnosis_response(
    request: NexoMessage,
    *,
    result: str = "Success",
    error_condition: str | None = None,
    additional: Mapping[str, str] | None = None,
    poi_status: PoiStatus | None = None,
    host_status: Sequence[HostStatus] = (),
    logged_sale_ids: Sequence[str] = (),
    additional_encoding: AdditionalEncoding = "form",
) -> NexoMessage:
    """A DiagnosisResponse (nexo.md §3); Adyen's extras (battery, firmware…) go in additional."""
    body: dict[str, Any] = {
        "Response": _response_block(result, error_condition, additional, additional_encoding)
    }
    if poi_status is not None:
        body["POIStatus"] = poi_status.to_json()
    if host_status:
        body["HostStatus"] = [host.to_json() for host in host_status]
    if logged_sale_ids:
        body["LoggedSaleID"] = list(logged_sale_ids)
    return _response(request, body)


def login_response(
    request: NexoMessage,
    *,
    date_time: str,
    software_version: str,
    manufacturer_id: str = "Adyen",
    application_name: str = "",
    certification_code: str = "",
    serial_number: str | None = None,
    poi_status: PoiStatus | None = None,
    result: str = "Success",
    error_condition: str | None = None,
    additional: Mapping[str, str] | None = None,
    additional_encoding: AdditionalEncoding = "form",
) -> NexoMessage:
    """A LoginResponse with ``POISystemData`` (firmware in POISoftware.SoftwareVersion)."""
    system: dict[str, Any] = {
        "DateTime": date_time,
        "POISoftware": {
            "ManufacturerID": manufacturer_id,
            "ApplicationName": application_name,
            "SoftwareVersion": software_version,
            "CertificationCode": certification_code,
        },
    }
    if poi_status is not None:
        system["POIStatus"] = poi_status.to_json()
    if serial_number is not None:
        system["POITerminalData"] = {"SerialNumber": serial_number}
    body = {
        "Response": _response_block(result, error_condition, additional, additional_encoding),
        "POISystemData": system,
    }
    return _response(request, body)


def logout_response(
    request: NexoMessage,
    *,
    result: str = "Success",
    error_condition: str | None = None,
    additional: Mapping[str, str] | None = None,
    additional_encoding: AdditionalEncoding = "form",
) -> NexoMessage:
    """A LogoutResponse: only the Response block."""
    block = _response_block(result, error_condition, additional, additional_encoding)
    return _response(request, {"Response": block})


def _totals_body(
    result: str,
    error_condition: str | None,
    additional: Mapping[str, str] | None,
    poi_reconciliation_id: str,
    totals: Iterable[TransactionTotal],
    encoding: AdditionalEncoding,
) -> dict[str, Any]:
    """The body GetTotals and Reconciliation responses share."""
    return {
        "Response": _response_block(result, error_condition, additional, encoding),
        "POIReconciliationID": poi_reconciliation_id,
        "TransactionTotals": [total.to_json() for total in totals],
    }


def get_totals_response(
    request: NexoMessage,
    *,
    poi_reconciliation_id: str,
    totals: Sequence[TransactionTotal] = (),
    result: str = "Success",
    error_condition: str | None = None,
    additional: Mapping[str, str] | None = None,
    additional_encoding: AdditionalEncoding = "form",
) -> NexoMessage:
    """A GetTotalsResponse: the open period's totals."""
    body = _totals_body(
        result, error_condition, additional, poi_reconciliation_id, totals, additional_encoding
    )
    return _response(request, body)


def reconciliation_response(
    request: NexoMessage,
    *,
    poi_reconciliation_id: str,
    totals: Sequence[TransactionTotal] = (),
    result: str = "Success",
    error_condition: str | None = None,
    additional: Mapping[str, str] | None = None,
    additional_encoding: AdditionalEncoding = "form",
) -> NexoMessage:
    """A ReconciliationResponse: GetTotals' shape plus the request's ReconciliationType."""
    body = _totals_body(
        result, error_condition, additional, poi_reconciliation_id, totals, additional_encoding
    )
    kind = request.body.get("ReconciliationType")
    body["ReconciliationType"] = kind if isinstance(kind, str) else "PreviousReconciliation"
    return _response(request, body)


def event_notification(
    service_id: str | None,
    sale_id: str | None,
    poiid: str,
    *,
    event: str,
    timestamp: str,
    details: Mapping[str, str] | None = None,
    maintenance_required: bool | None = None,
    device_id: str | None = None,
) -> NexoMessage:
    """An EventNotification from the terminal (class Event, category Event, type Notification).

    ``service_id`` may be None: Adyen's own example notification carries none (nexo.md §6,
    vector 3). ``details`` is form-encoded into EventDetails.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown EventToNotify {event!r}")
    header = MessageHeader(
        message_class="Event",
        message_category="Event",
        message_type="Notification",
        service_id=service_id,
        sale_id=sale_id,
        poiid=poiid,
        device_id=device_id,
    )
    body: dict[str, Any] = {"EventToNotify": event, "TimeStamp": timestamp}
    if details:
        body["EventDetails"] = encode_additional(details, "form")
    if maintenance_required is not None:
        body["MaintenanceRequiredFlag"] = maintenance_required
    return NexoMessage(REQUEST, header, "EventNotification", body)
