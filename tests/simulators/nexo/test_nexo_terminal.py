"""The simulated Adyen terminal answers nexo requests as the reference says a real one does.

Every test talks HTTPS to a running simulator through a plain client (``conftest.py``): the
codec's host-role builders, Adyen's encryption with the shared key, the simulator's CA.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from posdiag.drivers.nexo.additional import parse_network_profile
from posdiag.drivers.nexo.crypto import NexoKey
from posdiag.drivers.nexo.messages import (
    ServiceRef,
    abort_request,
    diagnosis_request,
    get_totals_request,
    login_request,
    logout_request,
    previous_reconciliation_request,
)
from posdiag.simulators.nexo.device import BUSY_MESSAGE
from posdiag.simulators.nexo.state import SERVICE_ID_WINDOW_S, available_scenarios

SCENARIOS = available_scenarios()


def diagnosis(client: Any, host: bool = False, **kwargs: Any) -> Any:
    return client.send(
        diagnosis_request(client.sid(), client.sale_id, client.poiid, host_diagnosis=host),
        **kwargs,
    )


def login(client: Any, sale_id: str | None = None) -> Any:
    return client.send(
        login_request(
            client.sid(),
            sale_id or client.sale_id,
            client.poiid,
            date_time="2025-01-02T03:04:05.000Z",
            manufacturer_id="posdiag",
            application_name="posdiag tests",
            software_version="1.0",
        )
    )


def totals(client: Any, sale_id: str | None = None) -> Any:
    return client.send(get_totals_request(client.sid(), sale_id or client.sale_id, client.poiid))


def test_the_scenarios_and_models_are_shipped() -> None:
    assert set(SCENARIOS) >= {
        "fresh", "activated", "unsettled", "no-network", "low-battery", "printer-fault",
        "tampered", "busy",
    }  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_answers_diagnosis(
    scenario: str, nexo_terminal: Any, nexo_client: Any
) -> None:
    terminal = nexo_terminal(scenario)
    client = nexo_client(terminal)
    reply = diagnosis(client, host=True)
    assert reply.status == 200 and reply.encrypted
    header = reply.obj["SaleToPOIResponse"]["MessageHeader"]
    assert header["POIID"] == terminal.poiid == "V400m-324688179"
    assert header["MessageType"] == "Response" and header["SaleID"] == client.sale_id
    body = reply.body("DiagnosisResponse")
    extras = reply.additional("DiagnosisResponse")
    state = terminal.state
    if scenario == "busy":
        assert body["Response"]["ErrorCondition"] == "Busy"
        return
    assert body["Response"]["Result"] == "Success"
    status = body["POIStatus"]
    assert extras["terminalId"] == terminal.poiid
    assert extras["firmwareVersion"] == "adyen_v1_49p5"
    assert extras["unconfirmedBatchCount"] == str(state.unconfirmed_batch_count)
    assert extras["batteryLevel"] == f"{state.battery_pct}%"
    assert parse_network_profile(extras["networkProfile"])[0].iface == "wlan0"
    boarded = scenario in ("activated", "unsettled", "tampered")
    assert ("merchantAccount" in extras) is boarded
    assert ("storeId" in extras) is boarded
    assert status["CommunicationOKFlag"] is (scenario != "no-network")
    assert body["HostStatus"] == [{"AcquirerID": "0", "IsReachableFlag": scenario != "no-network"}]
    assert status["SecurityOKFlag"] is (scenario != "tampered")
    assert status["PrinterStatus"] == ("OutOfOrder" if scenario == "printer-fault" else "OK")
    if scenario == "unsettled":
        assert int(extras["unconfirmedBatchCount"]) > 0
    if scenario == "low-battery":
        assert extras["batteryLevel"] == "4%"


def test_host_diagnosis_flag_false_does_not_test_the_host(
    nexo_terminal: Any, nexo_client: Any
) -> None:
    client = nexo_client(nexo_terminal("no-network"))
    body = diagnosis(client, host=False).body("DiagnosisResponse")
    assert body["HostStatus"] == [{"AcquirerID": "0"}]


def test_models_differ_in_hardware(nexo_terminal: Any, nexo_client: Any) -> None:
    pinpad = nexo_terminal("low-battery", model="P400Plus")
    reply = diagnosis(nexo_client(pinpad))
    assert pinpad.poiid == "P400Plus-275008565"
    assert "batteryLevel" not in reply.additional("DiagnosisResponse")  # mains powered
    assert "PrinterStatus" not in reply.body("DiagnosisResponse")["POIStatus"]
    android = nexo_terminal("activated", model="S1F2", serial="0009876543210")
    extras = diagnosis(nexo_client(android)).additional("DiagnosisResponse")
    assert extras["terminalId"] == "S1F2-0009876543210"
    assert len(parse_network_profile(extras["networkProfile"])) == 2


def test_base64_json_additional_response(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("activated", additional_format="base64-json")
    reply = diagnosis(nexo_client(terminal))
    raw = reply.body("DiagnosisResponse")["Response"]["AdditionalResponse"]
    decoded = json.loads(base64.b64decode(raw))
    assert decoded["merchantAccount"] == "AcmeRetail_NL_POS"
    assert reply.additional("DiagnosisResponse")["terminalId"] == terminal.poiid


def test_login_get_totals_logout(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("unsettled")
    client = nexo_client(terminal)
    reply = login(client)
    system = reply.body("LoginResponse")["POISystemData"]
    assert system["POISoftware"]["SoftwareVersion"] == "adyen_v1_49p5"
    assert terminal.state.logged_sale_ids == [client.sale_id]
    assert diagnosis(client).body("DiagnosisResponse")["LoggedSaleID"] == [client.sale_id]
    body = totals(client).body("GetTotalsResponse")
    assert body["Response"]["Result"] == "Success"
    assert body["POIReconciliationID"] == "1000"
    by_brand = {t["CardBrand"]: t for t in body["TransactionTotals"]}
    assert by_brand["visa"]["PaymentTotals"] == [
        {"TransactionType": "Debit", "TransactionCount": 1, "TransactionAmount": 47.9}
    ]
    mc = {p["TransactionType"]: p for p in by_brand["mc"]["PaymentTotals"]}
    assert mc["Debit"]["TransactionAmount"] == 12.5 and mc["Credit"]["TransactionCount"] == 1
    assert len(terminal.state.payments) == 4  # GetTotals does not close the period
    reply = client.send(logout_request(client.sid(), client.sale_id, client.poiid))
    assert reply.body("LogoutResponse")["Response"]["Result"] == "Success"
    assert terminal.state.logged_sale_ids == []
    assert totals(client).body("GetTotalsResponse")["Response"]["ErrorCondition"] == "LoggedOut"


def test_get_totals_before_login_is_logged_out(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("unsettled"))
    login(client, sale_id="ANOTHER-POS")  # another POS's login does not count
    body = totals(client).body("GetTotalsResponse")
    assert body["Response"]["Result"] == "Failure"
    assert body["Response"]["ErrorCondition"] == "LoggedOut"


def test_sale_reconciliation_closes_the_period(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("unsettled")
    client = nexo_client(terminal)
    login(client)
    # posdiag's codec cannot build a SaleReconciliation (it never closes a batch): a
    # third-party client's request, written by hand.
    request = previous_reconciliation_request(
        client.sid(), client.sale_id, client.poiid, poi_reconciliation_id="x"
    )
    request.body.clear()
    request.body["ReconciliationType"] = "SaleReconciliation"
    body = client.send(request).body("ReconciliationResponse")
    assert body["ReconciliationType"] == "SaleReconciliation"
    assert body["POIReconciliationID"] == "1000"
    assert len(body["TransactionTotals"]) == 3
    state = terminal.state
    assert state.payments == [] and state.unconfirmed_batch_count == 0
    assert totals(client).body("GetTotalsResponse")["TransactionTotals"] == []
    previous = client.send(
        previous_reconciliation_request(
            client.sid(), client.sale_id, client.poiid, poi_reconciliation_id="1000"
        )
    ).body("ReconciliationResponse")
    assert previous["ReconciliationType"] == "PreviousReconciliation"
    assert previous["TransactionTotals"] == body["TransactionTotals"]
    missing = client.send(
        previous_reconciliation_request(
            client.sid(), client.sale_id, client.poiid, poi_reconciliation_id="999"
        )
    ).body("ReconciliationResponse")
    assert missing["Response"]["ErrorCondition"] == "NotFound"


def test_busy_terminal_names_the_payment_and_abort_ends_it(
    nexo_terminal: Any, nexo_client: Any
) -> None:
    terminal = nexo_terminal("busy")
    client = nexo_client(terminal)
    reply = login(client)
    body = reply.body("LoginResponse")
    assert body["Response"]["ErrorCondition"] == "Busy"
    extras = reply.additional("LoginResponse")
    assert extras == {"message": BUSY_MESSAGE, "serviceId": "P7X2K9Q1"}
    assert "serviceId=P7X2K9Q1" in body["Response"]["AdditionalResponse"]
    other = client.send(
        abort_request(
            client.sid(), client.sale_id, client.poiid,
            message_reference=ServiceRef("NOTRUNNING", client.sale_id),
        )
    )  # fmt: skip
    assert other.status == 200 and other.raw == b""
    assert terminal.state.busy_service_id == "P7X2K9Q1"
    abort = client.send(
        abort_request(
            client.sid(), client.sale_id, client.poiid,
            message_reference=ServiceRef(extras["serviceId"], "POS-CASHDESK-1"),
        )
    )  # fmt: skip
    assert abort.status == 200 and abort.raw == b""  # no response to an abort
    assert terminal.state.busy_service_id is None
    status = diagnosis(client).body("DiagnosisResponse")
    assert status["Response"]["Result"] == "Success"
    assert status["POIStatus"]["GlobalStatus"] == "OK"


def test_a_service_id_cannot_be_reused_for_48_hours(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("activated")
    client = nexo_client(terminal)
    request = diagnosis_request("REUSED1", client.sale_id, client.poiid)
    assert client.send(request).body("DiagnosisResponse")["Response"]["Result"] == "Success"
    again = client.send(request)
    response = again.body("DiagnosisResponse")["Response"]
    assert response["Result"] == "Failure" and response["ErrorCondition"] == "NotAllowed"
    assert "48 hours" in again.additional("DiagnosisResponse")["message"]
    used = terminal.state.used_service_ids
    used["REUSED1"] -= SERVICE_ID_WINDOW_S + 1  # two days later
    assert client.send(request).body("DiagnosisResponse")["Response"]["Result"] == "Success"


def test_header_for_another_terminal_is_a_format_error(
    nexo_terminal: Any, nexo_client: Any
) -> None:
    client = nexo_client(nexo_terminal("activated"))
    reply = client.send(diagnosis_request(client.sid(), client.sale_id, "V400m-000000001"))
    response = reply.body("DiagnosisResponse")["Response"]
    assert response["ErrorCondition"] == "MessageFormat"
    assert "field POIID: Invalid" in reply.additional("DiagnosisResponse")["errors"]


def test_wrong_key_is_a_crypto_error(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("activated")
    wrong = NexoKey(terminal.key.identifier, terminal.key.version, "Other-Passphrase-9!")
    reply = diagnosis(nexo_client(terminal, key=wrong))
    assert reply.status == 400
    assert reply.obj == {"errors": ["Nexo Service: crypto error (3)"], "ServiceID": "-NULL-"}
    unknown = NexoKey("not-this-key", 1, terminal.key.passphrase)
    assert diagnosis(nexo_client(terminal, key=unknown)).obj["errors"] == [
        "Nexo Service: crypto error (3)"
    ]


def test_wrong_key_fault(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("activated", wrong_key=True)
    reply = diagnosis(nexo_client(terminal))  # the key the address advertises
    assert reply.status == 400 and "crypto error (3)" in reply.obj["errors"][0]


@pytest.mark.parametrize("how", ["fault", "scenario"])
def test_terminal_without_a_key_reads_the_envelope_as_cleartext(
    how: str, nexo_terminal: Any, nexo_client: Any
) -> None:
    if how == "fault":
        terminal = nexo_terminal("activated", no_key=True)
    else:
        terminal = nexo_terminal("activated", overrides={"key": {"configured": False}})
    reply = diagnosis(nexo_client(terminal))
    assert reply.status == 200 and not reply.encrypted
    response = reply.body("DiagnosisResponse")["Response"]
    assert response["Result"] == "Failure" and response["ErrorCondition"] == "MessageFormat"
    notes = reply.additional("DiagnosisResponse")
    assert notes["errors"] == "At SaleToPOIRequest, field DiagnosisRequest: Missing"
    assert "field SecurityTrailer: Unexpected" in notes["warnings"]
    assert "field NexoBlob: Unexpected" in notes["warnings"]
    clear = diagnosis(nexo_client(terminal), encrypt=False)  # cleartext works without a key
    assert clear.body("DiagnosisResponse")["Response"]["Result"] == "Success"


def test_cleartext_on_a_test_terminal_and_on_a_live_one(
    nexo_terminal: Any, nexo_client: Any
) -> None:
    test_unit = nexo_client(nexo_terminal("activated"))
    reply = diagnosis(test_unit, encrypt=False)
    assert reply.status == 200 and not reply.encrypted
    assert reply.body("DiagnosisResponse")["Response"]["Result"] == "Success"
    live_unit = nexo_client(nexo_terminal("activated", allow_cleartext=False))
    refused = diagnosis(live_unit, encrypt=False)
    assert refused.status == 200 and not refused.encrypted
    assert refused.body("DiagnosisResponse")["Response"]["ErrorCondition"] == "MessageFormat"
    assert "cleartext allowed for testing only" in refused.additional("DiagnosisResponse")["note"]
    assert diagnosis(live_unit).status == 200  # encrypted is fine


def test_unsupported_category_is_unavailable(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("activated"))
    request = logout_request(client.sid(), client.sale_id, client.poiid)
    payment = {
        "SaleToPOIRequest": {
            "MessageHeader": {**request.header.to_json(), "MessageCategory": "Payment"},
            "PaymentRequest": {},
        }
    }
    from posdiag.drivers.nexo.crypto import encrypt_message
    from posdiag.drivers.nexo.messages import dumps

    reply = client.post_raw(dumps(encrypt_message(payment, client.key)))
    assert reply.body("PaymentResponse")["Response"]["ErrorCondition"] == "UnavailableService"
