"""Host-role readers on Adyen's example shapes (nexo.md §3–§5) and on hostile terminals."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any, cast
from urllib.parse import quote

import pytest

from posdiag.drivers.nexo.additional import (
    NetworkProfileEntry,
    encode_additional,
    encode_network_profile,
    parse_additional,
    parse_network_profile,
)
from posdiag.drivers.nexo.errors import NexoDecodeError
from posdiag.drivers.nexo.messages import (
    HostStatus,
    PoiStatus,
    decode_message,
    loads,
    read_diagnosis,
    read_event,
    read_login,
    read_response,
    read_totals,
)

PROFILE_JSON = '[ { "Address": "192.168.2.2", "Iface": "wlan0" } ]'
PROFILE_B64 = base64.b64encode(PROFILE_JSON.encode()).decode()


def _diagnosis(additional: str | None, **body: Any) -> dict[str, Any]:
    response: dict[str, Any] = {"Result": "Success"}
    if additional is not None:
        response["AdditionalResponse"] = additional
    return {
        "SaleToPOIResponse": {
            "MessageHeader": {
                "ProtocolVersion": "3.0",
                "SaleID": "POSSystemID12345",
                "MessageClass": "Service",
                "MessageCategory": "Diagnosis",
                "ServiceID": "0403104624",
                "POIID": "V400m-346403161",
                "MessageType": "Response",
            },
            "DiagnosisResponse": {"Response": response, **body},
        }
    }


def _adyen_example(profile: str) -> dict[str, Any]:
    """The shape of Adyen's documented diagnosis reply (form-encoded extras, §3)."""
    additional = (
        "batteryLevel=100%25&firmwareVersion=adyen_v1_49p5"
        f"&networkProfile={profile}&merchantAccount=ADYEN_MERCHANT_ACCOUNT"
        "&unconfirmedBatchCount=0&terminalId=V400m-346403161&storeId=YOUR_STORE"
    )
    return _diagnosis(
        additional,
        POIStatus={"GlobalStatus": "OK", "CommunicationOKFlag": True, "PrinterStatus": "OK"},
        HostStatus=[{"AcquirerID": "0", "IsReachableFlag": True}],
    )


@pytest.mark.parametrize(
    "profile",
    [
        PROFILE_B64,  # Base64 as is (its "=" padding inside a form value)
        quote(PROFILE_B64, safe=""),  # percent-encoded, as a careful encoder writes it
        PROFILE_B64.rstrip("="),  # padding dropped
    ],
)
def test_adyen_example_diagnosis(profile: str) -> None:
    raw = json.dumps(_adyen_example(profile), indent=4).encode()
    diagnosis = read_diagnosis(decode_message(loads(raw)))
    assert diagnosis.status.success
    assert diagnosis.global_status == "OK"
    assert diagnosis.communication_ok is True and diagnosis.printer_status == "OK"
    assert diagnosis.host_status == (HostStatus("0", True),)
    assert diagnosis.battery_pct == 100
    assert diagnosis.firmware_version == "adyen_v1_49p5"
    assert diagnosis.network_profile == (NetworkProfileEntry("192.168.2.2", "wlan0"),)
    assert diagnosis.merchant_account == "ADYEN_MERCHANT_ACCOUNT"
    assert diagnosis.store_id == "YOUR_STORE"
    assert diagnosis.terminal_id == "V400m-346403161"
    assert diagnosis.unconfirmed_batch_count == 0
    assert diagnosis.status.additional["batteryLevel"] == "100%"


def test_network_profile_with_unescaped_plus() -> None:
    # Base64 holding "+" sent without percent-encoding: form decoding makes it a space.
    entries = [NetworkProfileEntry("10.0.0.>>", "eth0>"), NetworkProfileEntry("::1", "lo")]
    encoded = encode_network_profile(entries)
    assert "+" in encoded  # the test data must exercise the case
    additional = parse_additional(f"networkProfile={encoded}&batteryLevel=1%25")
    assert " " in additional["networkProfile"]
    assert parse_network_profile(additional["networkProfile"]) == tuple(entries)


def test_the_java_library_mock_shape() -> None:
    # Adyen's Java library test mock: no AdditionalResponse, two logged SaleIDs, GlobalStatus.
    obj = _diagnosis(None, LoggedSaleID=["sale-1", "sale-2"], POIStatus={"GlobalStatus": "OK"})
    diagnosis = read_diagnosis(decode_message(obj))
    assert diagnosis.logged_sale_ids == ("sale-1", "sale-2")
    assert diagnosis.global_status == "OK" and diagnosis.battery_pct is None
    assert diagnosis.network_profile == () and diagnosis.unconfirmed_batch_count is None
    assert diagnosis.status.additional == {}


def test_base64_json_additional_response() -> None:
    payload = {
        "batteryLevel": "55%",
        "unconfirmedBatchCount": "3",
        "firmwareVersion": "adyen_v1_50",
        "networkProfile": PROFILE_B64,
        "nested": {"a": [1, 2]},
        "flag": True,
        "count": 7,
        "nothing": None,
    }
    text = base64.b64encode(json.dumps(payload).encode()).decode()
    diagnosis = read_diagnosis(decode_message(_diagnosis(text)))
    assert diagnosis.battery_pct == 55 and diagnosis.unconfirmed_batch_count == 3
    assert diagnosis.firmware_version == "adyen_v1_50"
    assert diagnosis.network_profile == (NetworkProfileEntry("192.168.2.2", "wlan0"),)
    additional = diagnosis.status.additional
    assert additional["nested"] == '{"a":[1,2]}'
    assert (additional["flag"], additional["count"], additional["nothing"]) == ("true", "7", "null")


def test_parse_additional_both_encodings() -> None:
    values = {"message": "Terminal is not reachable", "serviceId": "A&B=C"}
    for encoding in ("form", "base64json"):
        assert parse_additional(encode_additional(values, cast(Any, encoding))) == values
    assert parse_additional("a=1&a=2&b=&c") == {"a": "1", "b": "", "c": ""}
    assert parse_additional("") == {} and parse_additional(None) == {} and parse_additional(5) == {}
    # Base64 that decodes to something other than an object is read as a form.
    assert parse_additional(base64.b64encode(b"[1]").decode()) == {"WzFd": ""}
    # An unbounded number of fields is cut.
    assert len(parse_additional("&".join(f"k{i}=v" for i in range(10_000)))) == 128


@pytest.mark.parametrize(
    "text",
    [None, 5, "", "!!!", "bm90IGpzb24=", base64.b64encode(b'"str"').decode(),
     base64.b64encode(b"[1, 2, null]").decode(), base64.b64encode(b"{" * 100).decode(),
     base64.b64encode(b"\xff\xfe").decode()],
)  # fmt: skip
def test_network_profile_garbage_is_empty(text: Any) -> None:
    assert parse_network_profile(text) == ()


def test_network_profile_partial_entries_and_cap() -> None:
    many = [{"Address": f"10.0.0.{i}", "Iface": "eth0"} for i in range(100)]
    text = base64.b64encode(json.dumps([5, {"Address": 3}, {"Iface": "wlan0"}, *many]).encode())
    entries = parse_network_profile(text.decode())
    assert entries[0] == NetworkProfileEntry("", "wlan0") and len(entries) == 32


# --- hostile terminals -------------------------------------------------------------------------


def test_control_sequences_never_escape() -> None:
    evil = "adyen\x1b]0;pwned\x07\x1b[2J\u202e1v\x00"
    profile = base64.b64encode(
        json.dumps([{"Address": "1.2.3.4\x1b[31m", "Iface": "wlan0\r\nX"}]).encode()
    ).decode()
    additional = encode_additional(
        {"firmwareVersion": evil, "merchantAccount": "A" * 5000, "networkProfile": profile,
         "key\x1b[1m": "v"}
    )  # fmt: skip
    obj = _diagnosis(
        additional,
        POIStatus={"GlobalStatus": "Exploding\x1b[5m", "PrinterStatus": 7, "PEDOKFlag": "yes"},
        HostStatus=[{"AcquirerID": 12, "IsReachableFlag": "no"}, {"x": 1}, "junk"],
        LoggedSaleID=["ok", {"no": 1}, "b\x9bad"],
    )
    diagnosis = read_diagnosis(decode_message(obj))
    texts = [
        diagnosis.firmware_version,
        diagnosis.merchant_account,
        diagnosis.global_status,
        *diagnosis.logged_sale_ids,
        *(entry.address + entry.iface for entry in diagnosis.network_profile),
        *diagnosis.status.additional,
        *diagnosis.status.additional.values(),
    ]
    for text in texts:
        assert text is not None
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text), repr(text)
        assert "\u202e" not in text
    assert diagnosis.merchant_account is not None and len(diagnosis.merchant_account) <= 128
    assert diagnosis.printer_status == "7" and diagnosis.ped_ok is None
    assert diagnosis.host_status == (HostStatus("12", None),)
    assert diagnosis.logged_sale_ids[0] == "ok" and len(diagnosis.logged_sale_ids) == 2


@pytest.mark.parametrize(
    "battery,expected",
    [("100%", 100), ("0%", 0), ("57", 57), ("99.5%", 99), (" 12 % ", 12), ("101%", None),
     ("-5%", None), ("full", None), ("", None), ("1e2%", None), ("٣%", None),
     ("1" + " " * 5000 + "x", None)],
)  # fmt: skip
def test_battery_level(battery: str, expected: int | None) -> None:
    obj = _diagnosis(encode_additional({"batteryLevel": battery}))
    assert read_diagnosis(decode_message(obj)).battery_pct == expected


@pytest.mark.parametrize(
    "count,expected", [("0", 0), ("12", 12), ("-1", None), ("x", None), ("1" * 20, None)]
)
def test_unconfirmed_batch_count(count: str, expected: int | None) -> None:
    obj = _diagnosis(encode_additional({"unconfirmedBatchCount": count}))
    assert read_diagnosis(decode_message(obj)).unconfirmed_batch_count == expected


@pytest.mark.parametrize(
    "response",
    [None, "Success", {}, {"Result": "Maybe"}, {"Result": 1}, {"Result": None}],
)
def test_result_is_required(response: Any) -> None:
    obj = _diagnosis(None)
    obj["SaleToPOIResponse"]["DiagnosisResponse"]["Response"] = response
    with pytest.raises(NexoDecodeError):
        read_diagnosis(decode_message(obj))


def test_unknown_error_condition_is_kept_cleaned() -> None:
    obj = _diagnosis(None)
    obj["SaleToPOIResponse"]["DiagnosisResponse"]["Response"] = {
        "Result": "Failure",
        "ErrorCondition": "BrandNew\x1b[1m",
    }
    status = read_response(decode_message(obj))
    assert status.error_condition is not None and "\x1b" not in status.error_condition
    assert not status.success


def test_readers_refuse_the_wrong_message() -> None:
    with pytest.raises(NexoDecodeError):
        read_login(decode_message(_diagnosis(None)))
    with pytest.raises(NexoDecodeError):
        read_totals(decode_message(_diagnosis(None)))
    with pytest.raises(NexoDecodeError):
        read_event(decode_message(_diagnosis(None)))


# --- totals: money is never guessed -------------------------------------------------------------


def _totals(entries: Any, **extra: Any) -> dict[str, Any]:
    return {
        "SaleToPOIResponse": {
            "MessageHeader": {
                "MessageClass": "Service",
                "MessageCategory": "GetTotals",
                "MessageType": "Response",
                "ServiceID": "T1",
            },
            "GetTotalsResponse": {
                "Response": {"Result": "Success"},
                "POIReconciliationID": 1000,
                "TransactionTotals": entries,
                **extra,
            },
        }
    }


def test_totals_amounts_are_exact_decimals() -> None:
    raw = (
        b'{"SaleToPOIResponse":{"MessageHeader":{"MessageClass":"Service",'
        b'"MessageCategory":"GetTotals","MessageType":"Response"},"GetTotalsResponse":{'
        b'"Response":{"Result":"Success"},"POIReconciliationID":"1000","TransactionTotals":['
        b'{"PaymentInstrumentType":"Card","AcquirerID":"0","CardBrand":"visa",'
        b'"PaymentCurrency":"EUR","PaymentTotals":['
        b'{"TransactionType":"Debit","TransactionCount":2,"TransactionAmount":0.3},'
        b'{"TransactionType":"Credit","TransactionCount":1,"TransactionAmount":12},'
        b'{"TransactionType":"ReverseDebit","TransactionCount":1,"TransactionAmount":"1.10"}]}]}}}'
    )
    totals = read_totals(decode_message(loads(raw)))
    assert totals.poi_reconciliation_id == "1000"
    (total,) = totals.totals
    assert (total.payment_instrument_type, total.card_brand, total.currency) == (
        "Card",
        "visa",
        "EUR",
    )
    amounts = [payment.amount for payment in total.payment_totals]
    assert amounts == [Decimal("0.3"), Decimal("12"), Decimal("1.10")]
    assert all(isinstance(amount, Decimal) for amount in amounts)
    assert [payment.count for payment in total.payment_totals] == [2, 1, 1]


def test_totals_empty_and_integer_reconciliation_id() -> None:
    totals = read_totals(decode_message(_totals([])))
    assert totals.totals == () and totals.poi_reconciliation_id == "1000"
    obj = _totals([])
    del obj["SaleToPOIResponse"]["GetTotalsResponse"]["TransactionTotals"]
    assert read_totals(decode_message(obj)).totals == ()


def _payment(**change: Any) -> dict[str, Any]:
    payment = {"TransactionType": "Debit", "TransactionCount": 1, "TransactionAmount": 1.5}
    payment.update(change)
    return payment


@pytest.mark.parametrize(
    "entries",
    [
        "lots",
        [5],
        [{"PaymentInstrumentType": "Card", "PaymentTotals": "x"}],
        [{"PaymentTotals": [5]}],
        [{"PaymentTotals": [_payment(TransactionCount="1")]}],
        [{"PaymentTotals": [_payment(TransactionCount=-1)]}],
        [{"PaymentTotals": [_payment(TransactionCount=True)]}],
        [{"PaymentTotals": [_payment(TransactionCount=1.0)]}],
        [{"PaymentTotals": [_payment(TransactionAmount="lots")]}],
        [{"PaymentTotals": [_payment(TransactionAmount=None)]}],
        [{"PaymentTotals": [_payment(TransactionAmount=True)]}],
        [{"PaymentTotals": [_payment(TransactionAmount=1e300)]}],
        [{"PaymentTotals": [_payment(TransactionAmount="1e5")]}],
        [{"PaymentTotals": [{"TransactionType": "Debit"}]}],
        [{"PaymentTotals": [_payment()] * 65}],
        [{"PaymentTotals": []}] * 257,
    ],
)
def test_garbled_totals_raise_rather_than_read_as_zero(entries: Any) -> None:
    with pytest.raises(NexoDecodeError):
        read_totals(decode_message(_totals(entries)))


def test_event_readers() -> None:
    obj = {
        "SaleToPOIRequest": {
            "MessageHeader": {
                "MessageClass": "Event",
                "MessageCategory": "Event",
                "MessageType": "Notification",
            },
            "EventNotification": {
                "EventToNotify": "Shutdown",
                "TimeStamp": "2026-01-01T00:00:00Z",
                "EventDetails": "reason=low%20battery",
                "MaintenanceRequiredFlag": False,
            },
        }
    }
    event = read_event(decode_message(obj))
    assert (event.kind, event.details, event.maintenance_required) == (
        "Shutdown", {"reason": "low battery"}, False,
    )  # fmt: skip
    for field in ("EventToNotify", "TimeStamp"):
        broken = json.loads(json.dumps(obj))
        del broken["SaleToPOIRequest"]["EventNotification"][field]
        with pytest.raises(NexoDecodeError, match=field):
            read_event(decode_message(broken))


def test_login_reader_tolerates_missing_parts() -> None:
    obj = {
        "SaleToPOIResponse": {
            "MessageHeader": {
                "MessageClass": "Service",
                "MessageCategory": "Login",
                "MessageType": "Response",
            },
            "LoginResponse": {
                "Response": {"Result": "Success"},
                "POISystemData": {"POISoftware": "not an object", "POIStatus": ["x"]},
            },
        }
    }
    login = read_login(decode_message(obj))
    assert login.status.success and login.software_version is None and login.poi_status is None
    assert login.serial is None


def test_poi_status_default_is_ok() -> None:
    assert PoiStatus().to_json() == {"GlobalStatus": "OK"}
