"""Tests for posdiag.agent.report: the posdiag.report/1 JSON shape and identifier masking."""

from __future__ import annotations

import copy
import json

import pytest

from posdiag.agent.report import SCHEMA, DeviceReport, Verdict, VerdictStatus, to_json
from posdiag.drivers.model import (
    Activation,
    ActivationState,
    Battery,
    Evidence,
    Firmware,
    Health,
    Identity,
    MerchantData,
    Network,
    NetworkInterface,
    PendingTransactions,
    Tamper,
)

TID = "52502000"
MID = "4711000123"
TOP_LEVEL = {
    "schema",
    "address",
    "family",
    "simulated",
    "scope",
    "checked_at",
    "duration_s",
    "device",
    "activation",
    "firmware",
    "network",
    "battery",
    "merchant_data",
    "tamper",
    "health",
    "unsupported",
    "verdict",
    "errors",
    "backends",  # what each configured TMS/acquirer backend said (empty: none configured)
}


def full_report() -> DeviceReport:
    return DeviceReport(
        address="zvt+sim://unsettled",
        family="zvt",
        checked_at="2026-01-01T00:00:00Z",
        duration_s=0.123456,
        simulated=True,
        identity=Identity(
            vendor="FEIG ELECTRONIC",
            model="cVEND plug",
            serial="17F59B1F",
            hardware="cVEND plug",
            device_name="cVEND plug",
        ),
        activation=Activation(
            ActivationState.ACTIVATED,
            terminal_id=TID,
            merchant_id=MID,
            keys_loaded=True,
            host_registered=True,
            evidence=(Evidence("status enquiry", "terminal ID ****2000 assigned"),),
            device_state="ready",
            status_code=0,
            status_text="ready",
        ),
        firmware=Firmware({"ZVT application": "GER-APP-v2.0.9", "SDK": "02.01.01.09"}),
        network=Network(
            interfaces=(NetworkInterface("eth0", True, "00:1C:9B:0F:E1:CC", "192.168.23.51"),),
            host_reachable=True,
            host="203.0.113.105:30101",
            details=("diagnosis: host reached",),
        ),
        battery=Battery(present=True, voltage_mv=3120, temperature_c=46.8),
        merchant_data=MerchantData(
            PendingTransactions(3, 4757, "EUR"), notes=("terminal ID ****2000",)
        ),
        tamper=Tamper(False),
        health=Health(status="ready"),
        unsupported=["journal: not over ZVT"],
        errors=["vendor system info: refused"],
        verdict=Verdict(VerdictStatus.WIPE_REQUIRED, ("activated (terminal ID ****2000)",)),
    )


def test_shape_and_values() -> None:
    data = to_json(full_report())
    assert set(data) == TOP_LEVEL
    assert data["schema"] == SCHEMA == "posdiag.report/1"
    assert data["address"] == "zvt+sim://unsettled"
    assert data["simulated"] is True
    assert data["duration_s"] == 0.123
    assert data["device"] == {
        "address": "zvt+sim://unsettled",
        "family": "zvt",
        "vendor": "FEIG ELECTRONIC",
        "model": "cVEND plug",
        "serial": "17F59B1F",
        "hardware": "cVEND plug",
        "imei": None,
        "device_name": "cVEND plug",
        "tusn": None,
    }
    assert data["activation"]["state"] == "activated"
    assert data["activation"]["evidence"] == [
        {"source": "status enquiry", "fact": "terminal ID ****2000 assigned"}
    ]
    assert data["firmware"] == {
        "components": {"ZVT application": "GER-APP-v2.0.9", "SDK": "02.01.01.09"}
    }
    assert data["network"]["interfaces"][0]["name"] == "eth0"
    assert data["network"]["details"] == ["diagnosis: host reached"]
    assert data["battery"]["voltage_mv"] == 3120
    assert data["merchant_data"]["pending_transactions"] == {
        "count": 3,
        "total_cents": 4757,
        "currency": "EUR",
        "undelivered": False,
    }
    assert data["tamper"] == {"tampered": False, "details": []}
    assert data["health"] == {"faults": [], "status": "ready", "temperature_c": None}
    assert data["unsupported"] == ["journal: not over ZVT"]
    assert data["verdict"] == {
        "status": "wipe_required",
        "reasons": ["activated (terminal ID ****2000)"],
    }
    assert data["errors"] == ["vendor system info: refused"]


def test_identifiers_are_masked() -> None:
    data = to_json(full_report())
    assert data["activation"]["terminal_id"] == "****2000"
    assert data["activation"]["merchant_id"] == "****0123"
    text = json.dumps(data)
    assert TID not in text
    assert MID not in text


@pytest.mark.parametrize(
    ("tid", "masked"), [(None, None), ("", ""), ("1234", "****"), ("12345", "****2345")]
)
def test_mask_edge_cases(tid: str | None, masked: str | None) -> None:
    report = full_report()
    report.activation = Activation(ActivationState.PARTIAL, terminal_id=tid)
    assert to_json(report)["activation"]["terminal_id"] == masked


def test_to_json_does_not_change_the_report() -> None:
    report = full_report()
    before = copy.deepcopy(report)
    to_json(report)
    assert report == before
    assert report.activation is not None and report.activation.terminal_id == TID


def test_round_trips_through_json_dumps() -> None:
    data = to_json(full_report())
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data


def test_unreachable_report_has_nulls_not_missing_keys() -> None:
    report = DeviceReport(address="zvt+tcp://127.0.0.1:1", family="zvt", checked_at="t")
    report.errors.append("connection to 127.0.0.1:1 refused")
    data = to_json(report)
    assert set(data) == TOP_LEVEL
    for key in ("activation", "firmware", "network", "battery", "merchant_data", "tamper"):
        assert data[key] is None
    assert data["device"] == {
        "address": "zvt+tcp://127.0.0.1:1",
        "family": "zvt",
        "vendor": None,
        "model": None,
        "serial": None,
        "hardware": None,
        "imei": None,
        "device_name": None,
        "tusn": None,
    }
    assert data["verdict"] == {"status": "unreachable", "reasons": []}
    assert report.reachable is False
    json.dumps(data)


def test_battery_is_null_when_the_terminal_gives_no_battery_data() -> None:
    report = full_report()
    report.battery = None
    assert to_json(report)["battery"] is None


def test_reachable_follows_the_verdict() -> None:
    report = full_report()
    assert report.reachable is True
    report.verdict = Verdict(VerdictStatus.UNREACHABLE, ("no answer",))
    assert report.reachable is False


def test_verdict_status_values_are_the_schema_strings() -> None:
    assert [s.value for s in VerdictStatus] == [
        "ready",
        "wipe_required",
        "service_required",
        "quarantine",
        "unreachable",
    ]
