"""Section 1's nexo inputs: the JSON codec, the local encryption and the typed readers.

A nexo message is one JSON document in an HTTP body, so there is no stream to feed byte by byte:
the chunks are joined and the whole pipeline a driver or a simulator runs on a body is applied —
bounded ``loads``, decryption when the message is encrypted, ``decode_message``, and the reader
for its category in the role that receives it. The only error allowed out is ``NexoError`` (the
codec's documented typed error); anything else is a defect, as for the other codecs.

Valid inputs are built with the codec's own builders in both roles, clear and encrypted with a
campaign key, so that mutations reach the decryption, the header rules and the readers.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from posdiag.drivers.nexo.crypto import NexoKey, decrypt_message, encrypt_message, is_encrypted
from posdiag.drivers.nexo.errors import NexoError
from posdiag.drivers.nexo.messages import (
    HostStatus,
    NexoMessage,
    PaymentTotal,
    PoiStatus,
    TransactionTotal,
    decode_message,
    diagnosis_request,
    diagnosis_response,
    dumps,
    encode_message,
    event_notification,
    failure_response,
    get_totals_request,
    get_totals_response,
    loads,
    login_request,
    login_response,
    logout_request,
    read_diagnosis,
    read_event,
    read_login,
    read_request,
    read_response,
    read_totals,
)

__all__ = ["CAMPAIGN_KEY", "feed_nexo", "nexo_inputs"]

CAMPAIGN_KEY = NexoKey("posdiag-campaign", 1, "Campaign-Key-2026!")
"""The key the encrypted inputs use and the feeder decrypts with (a throwaway, not a secret)."""

Outcome = tuple[list[Any], bytes, str | None]

_READERS: dict[str, Callable[[NexoMessage], Any]] = {
    "DiagnosisResponse": read_diagnosis,
    "LoginResponse": read_login,
    "GetTotalsResponse": read_totals,
    "EventNotification": read_event,
}


def feed_nexo(chunks: list[bytes]) -> Outcome:
    """The receiving side's whole pipeline on one body; the outcome names what was read."""
    data = b"".join(chunks)
    try:
        wire = loads(data)
        message = decrypt_message(wire, CAMPAIGN_KEY)[0] if is_encrypted(wire) else wire
        decoded = decode_message(message)
        reader = _READERS.get(decoded.body_name)
        if reader is not None:
            read: Any = reader(decoded)
        elif decoded.top == "SaleToPOIResponse":
            read = read_response(decoded)
        else:
            read = read_request(decoded)
        return [decoded.body_name, repr(read)], b"", None
    except NexoError as exc:
        return [], b"", type(exc).__name__


def _messages() -> list[NexoMessage]:
    poiid, sale = "V400m-324688179", "Campaign"
    diagnosis = diagnosis_request("D1", sale, poiid, host_diagnosis=True)
    login = login_request(
        "L1",
        sale,
        poiid,
        date_time="2026-12-05T10:00:00Z",
        manufacturer_id="posdiag",
        application_name="campaign",
        software_version="1",
    )
    totals = get_totals_request("T1", sale, poiid)
    return [
        diagnosis,
        login,
        totals,
        logout_request("O1", sale, poiid),
        diagnosis_response(
            diagnosis,
            additional={"batteryLevel": "87%", "unconfirmedBatchCount": "3", "storeId": "S-1"},
            poi_status=PoiStatus(global_status="OK", printer_status="PaperLow"),
            host_status=[HostStatus("0", True)],
            logged_sale_ids=[sale],
        ),
        diagnosis_response(
            diagnosis,
            additional={"firmwareVersion": "adyen_v1_49p5"},
            additional_encoding="base64json",
            poi_status=PoiStatus(global_status="Busy"),
            host_status=[],
            logged_sale_ids=[],
        ),
        login_response(
            login,
            date_time="2026-12-05T10:00:01Z",
            software_version="adyen_v1_49p5",
            serial_number="324688179",
        ),
        get_totals_response(
            totals,
            poi_reconciliation_id="1000",
            totals=[
                TransactionTotal(
                    "Card",
                    "0",
                    "Visa",
                    "EUR",
                    (PaymentTotal("Debit", 4, Decimal("63.40")),),
                )
            ],
        ),
        failure_response(totals, "Busy", {"message": "in progress", "serviceId": "P1"}),
        event_notification(
            None,
            None,
            poiid,
            event="SecurityAlarm",
            timestamp="2026-12-05T10:00:00.000Z",
            details={"message": "Tamper detected"},
        ),
    ]


def nexo_inputs() -> list[bytes]:
    """Every built message as a body, in clear and encrypted with :data:`CAMPAIGN_KEY`."""
    bodies = []
    for message in _messages():
        clear = encode_message(message)
        bodies.append(dumps(clear))
        bodies.append(dumps(encrypt_message(clear, CAMPAIGN_KEY, nonce=bytes(range(16)))))
    return bodies
