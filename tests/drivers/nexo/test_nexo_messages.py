"""nexo message layout, header rules and every builder through both roles (nexo.md §2–§5)."""

from __future__ import annotations

import inspect
from decimal import Decimal
from typing import Any, cast

import pytest

from posdiag.drivers.nexo import builders, messages
from posdiag.drivers.nexo.errors import NexoDecodeError
from posdiag.drivers.nexo.messages import (
    ERROR_CONDITIONS,
    EVENTS,
    MESSAGE_CATEGORIES,
    PROTOCOL_VERSION,
    AbortQuery,
    DiagnosisQuery,
    HostStatus,
    LoginQuery,
    LogoutQuery,
    MessageHeader,
    NexoMessage,
    PaymentTotal,
    PoiStatus,
    ReconciliationQuery,
    ServiceRef,
    TotalsQuery,
    TransactionTotal,
    abort_request,
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
    logout_response,
    previous_reconciliation_request,
    read_abort_request,
    read_diagnosis,
    read_diagnosis_request,
    read_event,
    read_get_totals_request,
    read_login,
    read_login_request,
    read_logout_request,
    read_reconciliation_request,
    read_request,
    read_response,
    read_totals,
    reconciliation_response,
    valid_service_id,
)

SALE, POI = "DiagTool01", "V400m-324688179"


def wire(message: NexoMessage) -> NexoMessage:
    """What the other side decodes: encode, serialise, parse, decode."""
    return decode_message(loads(dumps(encode_message(message))))


# --- constants from the reference --------------------------------------------------------------


def test_reference_lists() -> None:
    assert PROTOCOL_VERSION == "3.0"
    assert len(MESSAGE_CATEGORIES) == 27 and "Diagnosis" in MESSAGE_CATEGORIES
    assert len(ERROR_CONDITIONS) == 17 and {"MessageFormat", "Busy", "LoggedOut"} <= set(
        ERROR_CONDITIONS
    )
    assert len(EVENTS) == 19 and "SaleWakeUp" in EVENTS


# --- header ------------------------------------------------------------------------------------


def test_header_to_json_uses_nexo_names_and_omits_none() -> None:
    header = MessageHeader("Service", "Diagnosis", "Request", service_id="A1", poiid=POI)
    assert header.to_json() == {
        "ProtocolVersion": "3.0",
        "MessageClass": "Service",
        "MessageCategory": "Diagnosis",
        "MessageType": "Request",
        "ServiceID": "A1",
        "POIID": POI,
    }
    assert MessageHeader.from_json(header.to_json()) == header


def test_header_from_json_is_tolerant_of_extras_and_nulls() -> None:
    header = MessageHeader.from_json(
        {
            "MessageClass": "Event",
            "MessageCategory": "Event",
            "MessageType": "Notification",
            "SaleID": None,
            "Unknown": {"x": 1},
        }
    )
    assert header.sale_id is None and header.protocol_version == "3.0"


@pytest.mark.parametrize("missing", ["MessageClass", "MessageCategory", "MessageType"])
def test_header_requires_class_category_type(missing: str) -> None:
    obj = {"MessageClass": "Service", "MessageCategory": "Login", "MessageType": "Request"}
    del obj[missing]
    with pytest.raises(NexoDecodeError, match=f"field {missing}: Missing") as caught:
        MessageHeader.from_json(obj)
    assert caught.value.detail == f"At MessageHeader, field {missing}: Missing"


@pytest.mark.parametrize(
    "change",
    [
        {"MessageClass": "Nonsense"},
        {"MessageType": "Reply"},
        {"MessageCategory": "Diag nosis"},
        {"MessageCategory": 5},
        {"ServiceID": 12},
        {"POIID": "x" * 300},
        {"SaleID": ["a"]},
    ],
)
def test_header_rejects_ill_typed_fields(change: dict[str, Any]) -> None:
    obj = {"MessageClass": "Service", "MessageCategory": "Login", "MessageType": "Request"}
    obj.update(change)
    with pytest.raises(NexoDecodeError):
        MessageHeader.from_json(obj)
    with pytest.raises(NexoDecodeError):
        MessageHeader.from_json(["not", "an", "object"])


def test_service_id_rule() -> None:
    assert valid_service_id("A1B2C3") and valid_service_id("1234567890")
    assert not valid_service_id("") and not valid_service_id("12345678901")
    assert not valid_service_id(123) and not valid_service_id(None)
    # Terminals accept other printable characters locally (nexo.md §2); we never send them.
    assert valid_service_id("a-b_c.d") and not valid_service_id("a-b", strict=True)
    assert not valid_service_id("a b") and not valid_service_id("é")
    with pytest.raises(ValueError):
        diagnosis_request("a-b", SALE, POI)
    with pytest.raises(ValueError):
        diagnosis_request("12345678901", SALE, POI)
    with pytest.raises(ValueError):
        diagnosis_request("A1", "", POI)


# --- envelope ----------------------------------------------------------------------------------


def test_decode_keeps_unknown_fields_and_categories() -> None:
    obj = {
        "SaleToPOIRequest": {
            "MessageHeader": {
                "MessageClass": "Device",
                "MessageCategory": "FutureThing",
                "MessageType": "Request",
                "ServiceID": "1",
                "Extra": True,
            },
            "FutureThingRequest": {"Anything": [1, {"deep": None}]},
        }
    }
    msg = decode_message(obj)
    assert msg.category == "FutureThing" and msg.body == {"Anything": [1, {"deep": None}]}
    assert read_request(msg) == ("FutureThing", None)


@pytest.mark.parametrize(
    "obj,detail",
    [
        ({}, "At toplevel, field SaleToPOIRequest: Missing"),
        ({"errors": ["x"]}, "At toplevel, field SaleToPOIRequest: Missing"),
        ({"SaleToPOIRequest": {}, "SaleToPOIResponse": {}}, "SaleToPOIRequest: Missing"),
        ({"SaleToPOIRequest": []}, "Invalid"),
        ({"SaleToPOIRequest": {"DiagnosisRequest": {}}}, "MessageHeader: Missing"),
    ],
)
def test_decode_rejects_shapes(obj: dict[str, Any], detail: str) -> None:
    with pytest.raises(NexoDecodeError) as caught:
        decode_message(obj)
    assert detail in caught.value.detail


def _header(category: str = "Diagnosis", kind: str = "Request") -> dict[str, str]:
    return {"MessageClass": "Service", "MessageCategory": category, "MessageType": kind}


@pytest.mark.parametrize(
    "inner",
    [
        {"MessageHeader": _header(), "LoginRequest": {}},  # body contradicts the category
        {"MessageHeader": _header(), "DiagnosisResponse": {}},  # response body in a request
        {"MessageHeader": _header(), "DiagnosisRequest": {}, "Other": {}},  # two bodies
        {"MessageHeader": _header()},  # no body
        {"MessageHeader": _header(), "DiagnosisRequest": []},  # body not an object
        {"MessageHeader": _header(kind="Response"), "DiagnosisResponse": {}},  # wrong envelope
    ],
)
def test_decode_rejects_body_mismatch(inner: dict[str, Any]) -> None:
    with pytest.raises(NexoDecodeError):
        decode_message({"SaleToPOIRequest": inner})


def test_decode_of_an_encrypted_message_says_so() -> None:
    obj = {"SaleToPOIRequest": {"MessageHeader": _header(), "NexoBlob": "", "SecurityTrailer": {}}}
    with pytest.raises(NexoDecodeError, match="decrypted"):
        decode_message(obj)


# --- host → device: every request builder round trips and the device reads it ---------------


def test_login_request_round_trip() -> None:
    request = login_request(
        "L1",
        SALE,
        POI,
        date_time="2026-01-02T03:04:05Z",
        manufacturer_id="posdiag",
        application_name="posdiag",
        software_version="0.1.0",
    )
    assert encode_message(request) == {
        "SaleToPOIRequest": {
            "MessageHeader": {
                "ProtocolVersion": "3.0",
                "MessageClass": "Service",
                "MessageCategory": "Login",
                "MessageType": "Request",
                "ServiceID": "L1",
                "SaleID": SALE,
                "POIID": POI,
            },
            "LoginRequest": {
                "DateTime": "2026-01-02T03:04:05Z",
                "SaleSoftware": {
                    "ManufacturerID": "posdiag",
                    "ApplicationName": "posdiag",
                    "SoftwareVersion": "0.1.0",
                    "CertificationCode": "",
                },
                "OperatorLanguage": "en",
            },
        }
    }
    seen = wire(request)
    assert seen == request
    assert read_login_request(seen) == LoginQuery(
        "2026-01-02T03:04:05Z", "posdiag", "posdiag", "0.1.0", "", "en"
    )
    assert read_request(seen) == ("Login", read_login_request(seen))


def test_logout_request_round_trip() -> None:
    request = logout_request("L2", SALE, POI)
    assert request.body == {} and request.body_name == "LogoutRequest"
    assert read_logout_request(wire(request)) == LogoutQuery(None)


def test_diagnosis_request_round_trip() -> None:
    request = diagnosis_request("A1B2C3", SALE, POI)
    assert request.body == {"HostDiagnosisFlag": False}
    assert read_diagnosis_request(wire(request)) == DiagnosisQuery(False, None, ())
    request = diagnosis_request(
        "A1B2C3", SALE, POI, host_diagnosis=True, body_poiid=POI, acquirer_ids=["0", "1"]
    )
    assert read_diagnosis_request(wire(request)) == DiagnosisQuery(True, POI, ("0", "1"))


def test_diagnosis_request_with_integer_acquirers() -> None:
    # The API explorer has integers, the Node typings strings (nexo.md §3): read both.
    msg = diagnosis_request("A1", SALE, POI)
    msg.body["AcquirerID"] = [0, "7"]
    assert read_diagnosis_request(msg).acquirer_ids == ("0", "7")


def test_get_totals_request_round_trip() -> None:
    request = get_totals_request("T1", SALE, POI)
    query = read_get_totals_request(wire(request))
    assert query == TotalsQuery(("POIID", "SaleID", "OperatorID", "ShiftNumber", "TotalsGroupID"))
    request = get_totals_request(
        "T1", SALE, POI, total_details=["SaleID"], total_filter={"SaleID": SALE}
    )
    assert read_get_totals_request(wire(request)) == TotalsQuery(("SaleID",), {"SaleID": SALE})
    with pytest.raises(ValueError):
        get_totals_request("T1", SALE, POI, total_details=["Everything"])


def test_previous_reconciliation_request_round_trip() -> None:
    request = previous_reconciliation_request("R1", SALE, POI, poi_reconciliation_id="1000")
    assert request.body["ReconciliationType"] == "PreviousReconciliation"
    assert read_reconciliation_request(wire(request)) == ReconciliationQuery(
        "PreviousReconciliation", "1000", ()
    )
    with pytest.raises(ValueError):
        previous_reconciliation_request("R1", SALE, POI, poi_reconciliation_id="")


def test_abort_request_round_trip() -> None:
    reference = ServiceRef(service_id="P-77", sale_id="OtherPOS", poiid=POI)
    request = abort_request("AB1", SALE, POI, message_reference=reference)
    assert request.body == {
        "AbortReason": "MerchantAbort",
        "MessageReference": {
            "MessageCategory": "Payment",
            "SaleID": "OtherPOS",
            "ServiceID": "P-77",
            "POIID": POI,
        },
    }
    assert read_abort_request(wire(request)) == AbortQuery("MerchantAbort", reference)


# --- the codec cannot move money ---------------------------------------------------------------


def test_no_builder_moves_money() -> None:
    # The complete list of request builders: none pays, refunds, reverses or closes the batch.
    request_builders = {
        name
        for module in (messages, builders)
        for name in dir(module)
        if name.endswith("_request") and not name.startswith(("read_", "_"))
    }
    assert request_builders == {
        "abort_request",
        "diagnosis_request",
        "get_totals_request",
        "login_request",
        "logout_request",
        "previous_reconciliation_request",
    }
    categories = {
        diagnosis_request("A1", SALE, POI).category,
        get_totals_request("A1", SALE, POI).category,
        logout_request("A1", SALE, POI).category,
    }
    assert not categories & {"Payment", "Reversal", "StoredValue", "Loyalty", "Batch"}
    # The only reconciliation is a previous one; no argument asks for another type.
    assert (
        "reconciliation_type" not in inspect.signature(previous_reconciliation_request).parameters
    )
    with pytest.raises(TypeError):
        cast(Any, previous_reconciliation_request)(
            "R1", SALE, POI, poi_reconciliation_id="1", reconciliation_type="SaleReconciliation"
        )
    sent = previous_reconciliation_request("R1", SALE, POI, poi_reconciliation_id="1")
    assert sent.body["ReconciliationType"] == "PreviousReconciliation"
    assert b"SaleReconciliation" not in dumps(encode_message(sent))


def test_device_role_still_reads_a_sale_reconciliation() -> None:
    # A third-party POS may close the batch; the simulator must understand it.
    request = previous_reconciliation_request("R1", SALE, POI, poi_reconciliation_id="1")
    request.body["ReconciliationType"] = "SaleReconciliation"
    del request.body["POIReconciliationID"]
    assert read_reconciliation_request(request) == ReconciliationQuery("SaleReconciliation")
    request.body["ReconciliationType"] = "CloseEverything"
    with pytest.raises(NexoDecodeError, match="ReconciliationType: Invalid"):
        read_reconciliation_request(request)


# --- device-role strictness --------------------------------------------------------------------


def test_login_request_missing_fields_name_the_field() -> None:
    request = login_request(
        "L1", SALE, POI, date_time="t", manufacturer_id="m", application_name="a",
        software_version="v",
    )  # fmt: skip
    del request.body["DateTime"]
    with pytest.raises(NexoDecodeError) as caught:
        read_login_request(request)
    assert caught.value.detail == "At SaleToPOIRequest.LoginRequest, field DateTime: Missing"
    request.body["DateTime"] = "t"
    request.body["SaleSoftware"] = {"ManufacturerID": "m", "ApplicationName": 3}
    with pytest.raises(NexoDecodeError) as caught:
        read_login_request(request)
    assert caught.value.detail == (
        "At SaleToPOIRequest.LoginRequest.SaleSoftware, field ApplicationName: Invalid"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"HostDiagnosisFlag": "yes"},
        {"HostDiagnosisFlag": 1},
        {"POIID": 5},
        {"AcquirerID": "0"},
        {"AcquirerID": [True]},
        {"AcquirerID": list(range(1000))},
    ],
)
def test_diagnosis_request_ill_typed(body: dict[str, Any]) -> None:
    msg = diagnosis_request("A1", SALE, POI)
    msg.body.clear()
    msg.body.update(body)
    with pytest.raises(NexoDecodeError):
        read_diagnosis_request(msg)


def test_abort_request_requires_reference() -> None:
    msg = abort_request("AB1", SALE, POI, message_reference=ServiceRef("P1", "S"))
    del msg.body["MessageReference"]
    with pytest.raises(NexoDecodeError, match="MessageReference: Missing"):
        read_abort_request(msg)


def test_request_readers_refuse_other_messages() -> None:
    request = diagnosis_request("A1", SALE, POI)
    with pytest.raises(NexoDecodeError):
        read_login_request(request)
    with pytest.raises(NexoDecodeError):
        read_request(diagnosis_response(request))


# --- device → host: every response builder round trips and the host reads it ----------------


def test_diagnosis_response_round_trip() -> None:
    request = wire(diagnosis_request("A1B2C3", SALE, POI, host_diagnosis=True))
    response = diagnosis_response(
        request,
        additional={"batteryLevel": "87%", "firmwareVersion": "adyen_v1_49p5"},
        poi_status=PoiStatus("OK", communication_ok=True, printer_status="PaperLow"),
        host_status=[HostStatus("0", True), HostStatus("1", False)],
        logged_sale_ids=[SALE],
    )
    assert response.header == MessageHeader(
        "Service", "Diagnosis", "Response", service_id="A1B2C3", sale_id=SALE, poiid=POI
    )
    assert response.top == "SaleToPOIResponse" and response.body_name == "DiagnosisResponse"
    seen = wire(response)
    assert seen == response
    diagnosis = read_diagnosis(seen)
    assert diagnosis.status.success and diagnosis.status.error_condition is None
    assert diagnosis.global_status == "OK" and diagnosis.communication_ok is True
    assert diagnosis.printer_status == "PaperLow" and diagnosis.security_ok is None
    assert diagnosis.host_status == (HostStatus("0", True), HostStatus("1", False))
    assert diagnosis.logged_sale_ids == (SALE,)
    assert diagnosis.battery_pct == 87 and diagnosis.firmware_version == "adyen_v1_49p5"


def test_diagnosis_response_base64json_encoding() -> None:
    request = diagnosis_request("A1", SALE, POI)
    response = diagnosis_response(
        request, additional={"batteryLevel": "5%"}, additional_encoding="base64json"
    )
    text = response.body["Response"]["AdditionalResponse"]
    assert "=" not in text.rstrip("=") and "batteryLevel" not in text
    assert read_diagnosis(wire(response)).battery_pct == 5


def test_login_response_round_trip() -> None:
    request = login_request(
        "L1", SALE, POI, date_time="t", manufacturer_id="m", application_name="a",
        software_version="v",
    )  # fmt: skip
    response = login_response(
        request,
        date_time="2026-01-02T03:04:05Z",
        software_version="adyen_423314",
        application_name="Adyen",
        serial_number="324688179",
        poi_status=PoiStatus("OK"),
    )
    login = read_login(wire(response))
    assert login.status.success and login.software_version == "adyen_423314"
    assert login.serial == "324688179" and login.manufacturer_id == "Adyen"
    assert login.poi_status == PoiStatus("OK") and login.date_time == "2026-01-02T03:04:05Z"


def test_logout_response_round_trip() -> None:
    response = logout_response(logout_request("L2", SALE, POI))
    assert response.body == {"Response": {"Result": "Success"}}
    assert read_response(wire(response)).success


TOTALS = (
    TransactionTotal(
        "Card",
        acquirer_id="0",
        card_brand="mc",
        currency="EUR",
        payment_totals=(
            PaymentTotal("Debit", 3, Decimal("30.50")),
            PaymentTotal("Credit", 1, Decimal("10")),
        ),
    ),
)


def test_get_totals_response_round_trip() -> None:
    response = get_totals_response(
        get_totals_request("T1", SALE, POI), poi_reconciliation_id="1000", totals=TOTALS
    )
    totals = read_totals(wire(response))
    assert totals.status.success and totals.poi_reconciliation_id == "1000"
    assert totals.reconciliation_type is None
    assert totals.totals == TOTALS  # Decimal("30.50") == Decimal("30.5")
    assert totals.totals[0].payment_totals[0].amount == Decimal("30.5")


def test_every_response_builder_takes_either_additional_encoding() -> None:
    extra = {"message": "a=b&c", "note": "ünïcode"}
    request = get_totals_request("T1", SALE, POI)
    for encoding in ("form", "base64json"):
        response = get_totals_response(
            request, poi_reconciliation_id="1", additional=extra, additional_encoding=encoding
        )
        assert read_totals(wire(response)).status.additional == extra
        logout = logout_response(
            logout_request("L2", SALE, POI), additional=extra, additional_encoding=encoding
        )
        assert read_response(wire(logout)).additional == extra


def test_reconciliation_response_round_trip() -> None:
    request = previous_reconciliation_request("R1", SALE, POI, poi_reconciliation_id="999")
    response = reconciliation_response(request, poi_reconciliation_id="999", totals=TOTALS)
    totals = read_totals(wire(response))
    assert totals.reconciliation_type == "PreviousReconciliation"
    assert totals.totals == TOTALS


def test_event_notification_round_trip() -> None:
    event = event_notification(
        None,
        "null",
        "P400Plus-275102806",
        event="SaleWakeUp",
        timestamp="2020-11-13T09:02:35.697Z",
        details={"reference_id": "9876"},
        device_id="5",
    )
    assert encode_message(event)["SaleToPOIRequest"]["MessageHeader"] == {
        "ProtocolVersion": "3.0",
        "MessageClass": "Event",
        "MessageCategory": "Event",
        "MessageType": "Notification",
        "SaleID": "null",
        "POIID": "P400Plus-275102806",
        "DeviceID": "5",
    }
    assert event.body["EventDetails"] == "reference_id=9876"
    read = read_event(wire(event))
    assert (read.kind, read.details, read.maintenance_required) == (
        "SaleWakeUp", {"reference_id": "9876"}, None,
    )  # fmt: skip
    with pytest.raises(ValueError):
        event_notification(None, None, POI, event="Explosion", timestamp="t")
    maintenance = event_notification(
        "E1", None, POI, event="BeginMaintenance", timestamp="t", maintenance_required=True
    )
    assert read_event(wire(maintenance)).maintenance_required is True


# --- error shapes (nexo.md §5) -----------------------------------------------------------------


def test_message_format_failure_with_errors() -> None:
    request = diagnosis_request("A1", SALE, POI)
    errors = (
        "At SaleToPOIRequest.PaymentRequest.PaymentTransaction.AmountsReq, field Currency: Missing"
    )
    response = failure_response(request, "MessageFormat", {"errors": errors})
    block = response.body["Response"]
    assert block["Result"] == "Failure" and block["ErrorCondition"] == "MessageFormat"
    assert " " not in block["AdditionalResponse"]  # URL-encoded, as the terminal does
    status = read_response(wire(response))
    assert not status.success and status.error_condition == "MessageFormat"
    assert status.additional == {"errors": errors}


def test_busy_failure_with_message_and_service_id() -> None:
    request = diagnosis_request("A1", SALE, POI)
    text = "Forbidden Request, Service Dialogue PaymentRequest is in Progress"
    response = failure_response(request, "Busy", {"message": text, "serviceId": "P-77"})
    status = read_response(wire(response))
    assert status.error_condition == "Busy"
    assert status.additional == {"message": text, "serviceId": "P-77"}
    # The running ServiceID from a Busy reply can be aborted.
    abort = abort_request(
        "AB1", SALE, POI, message_reference=ServiceRef(status.additional["serviceId"], "OtherPOS")
    )
    assert read_abort_request(abort).reference.service_id == "P-77"


def test_failure_response_from_a_bare_header() -> None:
    header = MessageHeader("Service", "Payment", "Request", service_id="9", sale_id="S", poiid=POI)
    response = failure_response(header, "NotAllowed")
    assert response.body_name == "PaymentResponse"
    assert response.header.message_type == "Response" and response.header.service_id == "9"
    assert read_response(wire(response)).error_condition == "NotAllowed"


def test_response_builders_refuse_unknown_words() -> None:
    request = diagnosis_request("A1", SALE, POI)
    with pytest.raises(ValueError):
        diagnosis_response(request, result="Maybe")
    with pytest.raises(ValueError):
        failure_response(request, "Exploded")
    with pytest.raises(ValueError):
        diagnosis_response(request, additional={"a": "b"}, additional_encoding=cast(Any, "xml"))
