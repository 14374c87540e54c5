"""Tests for posdiag.agent.policy: every rule, every threshold boundary, precedence, policy files.

Reports are built by hand so each rule is exercised alone; the shipped defaults are the
thresholds (level 20 %, 2.7 V, 60 °C, SoH 80 %, 500 cycles, host must be reachable).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.policy import Policy, PolicyError, decide, load_policy
from posdiag.agent.report import DeviceReport, VerdictStatus
from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.model import (
    Activation,
    ActivationState,
    Battery,
    Health,
    Identity,
    MerchantData,
    Network,
    PendingTransactions,
    Tamper,
)

TID = "52502000"
READY_REASON = "no merchant data found; healthy"
DEFAULTS = load_policy()


def make_report(**fields: Any) -> DeviceReport:
    """A healthy, unbound terminal unless ``fields`` say otherwise."""
    values: dict[str, Any] = {
        "address": "zvt+sim://fresh",
        "family": "zvt",
        "checked_at": "2026-01-01T00:00:00Z",
        "identity": Identity(vendor="FEIG ELECTRONIC", model="cVEND plug", serial="17F59B1F"),
        "activation": Activation(ActivationState.NOT_ACTIVATED),
        "merchant_data": MerchantData(PendingTransactions(0, 0, "EUR")),
    }
    values.update(fields)
    return DeviceReport(**values)


def status_of(report: DeviceReport, policy: Policy = DEFAULTS) -> VerdictStatus:
    return decide(report, policy).status


def reasons_of(report: DeviceReport, policy: Policy = DEFAULTS) -> tuple[str, ...]:
    return decide(report, policy).reasons


def with_policy(**sections: dict[str, Any]) -> Policy:
    data = {name: dict(values) for name, values in DEFAULTS.data.items()}
    for name, values in sections.items():
        data[name].update(values)
    return Policy(data)


# --- the baseline and unreachable ----------------------------------------------------------------


def test_healthy_unbound_terminal_is_ready() -> None:
    verdict = decide(make_report(), DEFAULTS)
    assert verdict.status is VerdictStatus.READY
    assert verdict.reasons == (READY_REASON,)


def test_no_identity_and_no_activation_is_unreachable_with_the_errors() -> None:
    report = make_report(identity=None, activation=None, errors=["connection refused"])
    verdict = decide(report, DEFAULTS)
    assert verdict.status is VerdictStatus.UNREACHABLE
    assert verdict.reasons == ("connection refused",)


def test_unreachable_without_errors_still_gives_a_reason() -> None:
    verdict = decide(make_report(identity=None, activation=None), DEFAULTS)
    assert verdict.status is VerdictStatus.UNREACHABLE
    assert verdict.reasons == ("the terminal did not answer",)


# --- quarantine ----------------------------------------------------------------------------------


def test_tamper_quarantines_with_details() -> None:
    report = make_report(tamper=Tamper(True, ("security module reports fraud", "case opened")))
    verdict = decide(report, DEFAULTS)
    assert verdict.status is VerdictStatus.QUARANTINE
    assert "security module reports fraud; case opened" in verdict.reasons[0]
    assert "never wipe" in verdict.reasons[0]


def test_tamper_without_details_still_says_why() -> None:
    assert "tamper reported" in reasons_of(make_report(tamper=Tamper(True)))[0]


def test_no_tamper_is_ready() -> None:
    assert status_of(make_report(tamper=Tamper(False))) is VerdictStatus.READY


@pytest.mark.parametrize("serial", [None, ""])
def test_unknown_identity_quarantines(serial: str | None) -> None:
    report = make_report(identity=Identity(vendor="X", model="Y", serial=serial))
    verdict = decide(report, DEFAULTS)
    assert verdict.status is VerdictStatus.QUARANTINE
    assert verdict.reasons == ("identity unknown: the terminal reported no serial number",)


def test_missing_identity_record_with_activation_quarantines() -> None:
    assert status_of(make_report(identity=None)) is VerdictStatus.QUARANTINE


def test_unknown_identity_rule_can_be_switched_off() -> None:
    policy = with_policy(verdict={"quarantine_unknown_identity": False})
    report = make_report(identity=Identity(serial=None))
    assert status_of(report, policy) is VerdictStatus.READY


# --- wipe_required -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [ActivationState.ACTIVATED, ActivationState.PARTIAL])
def test_bound_states_require_a_wipe_with_the_tid_masked(state: ActivationState) -> None:
    verdict = decide(make_report(activation=Activation(state, terminal_id=TID)), DEFAULTS)
    assert verdict.status is VerdictStatus.WIPE_REQUIRED
    words = {
        ActivationState.ACTIVATED: "activated",
        ActivationState.PARTIAL: "partly activated (merchant traces remain but the binding is "
        "incomplete)",
    }
    assert verdict.reasons == (f"{words[state]} (terminal ID ****2000): still bound to a merchant",)
    assert TID not in repr(verdict)


@pytest.mark.parametrize("state", [ActivationState.NOT_ACTIVATED, ActivationState.UNKNOWN])
def test_unbound_states_need_no_wipe(state: ActivationState) -> None:
    assert status_of(make_report(activation=Activation(state))) is VerdictStatus.READY


def test_activated_without_tid_has_no_tid_in_the_reason() -> None:
    reasons = reasons_of(make_report(activation=Activation(ActivationState.ACTIVATED)))
    assert reasons == ("activated: still bound to a merchant",)


def test_wipe_states_come_from_the_policy() -> None:
    policy = with_policy(activation={"wipe_states": ["activated"]})
    partial = make_report(activation=Activation(ActivationState.PARTIAL, terminal_id=TID))
    assert status_of(partial, policy) is VerdictStatus.READY


def test_unsettled_transactions_require_settling_before_the_wipe() -> None:
    merchant = MerchantData(PendingTransactions(3, 4757, "EUR"))
    verdict = decide(make_report(merchant_data=merchant), DEFAULTS)
    assert verdict.status is VerdictStatus.WIPE_REQUIRED
    assert verdict.reasons == (
        "3 unsettled transactions (€47.57): settle (End-of-Day) before wiping",
    )


def test_unsettled_money_without_currency_is_a_plain_amount() -> None:
    merchant = MerchantData(PendingTransactions(1, 5, None))
    assert reasons_of(make_report(merchant_data=merchant))[0].startswith(
        "1 unsettled transaction (0.05)"
    )


@pytest.mark.parametrize(
    "merchant",
    [
        MerchantData(PendingTransactions(0, 0, "EUR")),
        MerchantData(None),
        MerchantData(PendingTransactions(0, 0, "EUR"), notes=("terminal ID ****2000",)),
    ],
)
def test_empty_store_and_notes_alone_need_no_wipe(merchant: MerchantData) -> None:
    assert status_of(make_report(merchant_data=merchant)) is VerdictStatus.READY


@pytest.mark.parametrize(
    ("merchant", "reason"),
    [
        (MerchantData(apps=("com.merchant.pos",)), "1 payment app with data"),
        (MerchantData(files=("/data/receipts.db",)), "1 merchant file"),
        (MerchantData(network_profiles=("Sho…", "Bac…")), "2 saved Wi-Fi networks"),
    ],
)
def test_merchant_apps_files_or_profiles_require_a_wipe(
    merchant: MerchantData, reason: str
) -> None:
    verdict = decide(make_report(merchant_data=merchant), DEFAULTS)
    assert verdict.status is VerdictStatus.WIPE_REQUIRED
    assert verdict.reasons == (f"merchant data remains: {reason}",)


# --- service_required: battery boundaries --------------------------------------------------------


@pytest.mark.parametrize(
    ("battery", "service"),
    [
        (Battery(level_pct=20, charging=False), False),
        (Battery(level_pct=19, charging=False), True),
        (Battery(level_pct=19, charging=True), False),
        (Battery(level_pct=19), True),  # charging unknown: not known to be charging
        (Battery(voltage_mv=2700), False),
        (Battery(voltage_mv=2699), True),
        (Battery(voltage_mv=2410, level_pct=80), False),  # a level judges the main battery
        (Battery(coin_cell_mv=2700), False),
        (Battery(coin_cell_mv=2699), True),
        (Battery(coin_cell_mv=2410, level_pct=80, charging=True), True),
        (Battery(temperature_c=60.0), False),
        (Battery(temperature_c=60.1), True),
        (Battery(soh_pct=80), False),
        (Battery(soh_pct=79), True),
        (Battery(cycle_count=499), False),
        (Battery(cycle_count=500), True),
        (Battery(health="good"), False),
        (Battery(health="unknown"), False),
        (Battery(health="overheat"), True),
        (Battery(present=True, voltage_mv=3120, temperature_c=46.8), False),
    ],
)
def test_battery_thresholds(battery: Battery, service: bool) -> None:
    expected = VerdictStatus.SERVICE_REQUIRED if service else VerdictStatus.READY
    assert status_of(make_report(battery=battery)) is expected


def test_battery_reasons_are_readable() -> None:
    assert reasons_of(make_report(battery=Battery(voltage_mv=2410))) == (
        "battery voltage 2.41 V below 2.70 V: replace it",
    )
    assert reasons_of(make_report(battery=Battery(coin_cell_mv=2500))) == (
        "coin cell voltage 2.50 V below 2.70 V: replace it",
    )
    assert reasons_of(make_report(battery=Battery(level_pct=5, charging=False))) == (
        "battery at 5% and not charging (minimum 20%)",
    )
    assert reasons_of(make_report(battery=Battery(temperature_c=71.25))) == (
        "temperature 71.2 °C above 60.0 °C",
    )
    assert reasons_of(make_report(battery=Battery(soh_pct=70))) == ("battery state of health 70%",)
    assert reasons_of(make_report(battery=Battery(cycle_count=812))) == (
        "battery worn: 812 cycles",
    )
    assert reasons_of(make_report(battery=Battery(health="dead"))) == ("battery health: dead",)


def test_every_battery_finding_is_reported() -> None:
    battery = Battery(level_pct=3, charging=False, temperature_c=70, soh_pct=50, cycle_count=900)
    assert len(reasons_of(make_report(battery=battery))) == 4


def test_battery_threshold_comes_from_the_policy() -> None:
    policy = with_policy(battery={"min_voltage_mv": 3500})
    report = make_report(battery=Battery(voltage_mv=3120))
    assert status_of(report, policy) is VerdictStatus.SERVICE_REQUIRED


# --- service_required: network, faults, incomplete checks ----------------------------------------


def test_unreachable_payment_host_requires_service_with_details() -> None:
    network = Network(host_reachable=False, details=("diagnosis: host not reached",))
    verdict = decide(make_report(network=network), DEFAULTS)
    assert verdict.status is VerdictStatus.SERVICE_REQUIRED
    assert verdict.reasons == ("payment host not reachable (diagnosis: host not reached)",)


def test_unreachable_host_without_details() -> None:
    network = Network(host_reachable=False)
    assert reasons_of(make_report(network=network)) == ("payment host not reachable",)


@pytest.mark.parametrize("reachable", [True, None])
def test_reachable_or_unknown_host_is_fine(reachable: bool | None) -> None:
    assert status_of(make_report(network=Network(host_reachable=reachable))) is VerdictStatus.READY


def test_host_rule_can_be_switched_off() -> None:
    policy = with_policy(network={"require_host_reachable": False})
    report = make_report(network=Network(host_reachable=False))
    assert status_of(report, policy) is VerdictStatus.READY


def test_self_reported_faults_require_service() -> None:
    health = Health(faults=("terminal status 62: printer not ready",), status="printer")
    verdict = decide(make_report(health=health), DEFAULTS)
    assert verdict.status is VerdictStatus.SERVICE_REQUIRED
    assert verdict.reasons == ("terminal status 62: printer not ready",)


def test_health_without_faults_is_fine() -> None:
    assert status_of(make_report(health=Health(status="ready"))) is VerdictStatus.READY


def test_errors_never_certify_ready() -> None:
    report = make_report(merchant_data=None, errors=["turnover totals: link lost"])
    verdict = decide(report, DEFAULTS)
    assert verdict.status is VerdictStatus.SERVICE_REQUIRED
    assert verdict.reasons == ("check incomplete (1 fact could not be read): check again",)


def test_errors_do_not_hide_a_stronger_verdict() -> None:
    report = make_report(
        activation=Activation(ActivationState.ACTIVATED, terminal_id=TID), errors=["x: y"]
    )
    verdict = decide(report, DEFAULTS)
    assert verdict.status is VerdictStatus.WIPE_REQUIRED
    assert any("check incomplete" in r for r in verdict.reasons)


# --- precedence ----------------------------------------------------------------------------------


def everything_report() -> DeviceReport:
    return make_report(
        tamper=Tamper(True, ("fraud",)),
        activation=Activation(ActivationState.ACTIVATED, terminal_id=TID),
        battery=Battery(voltage_mv=2000),
    )


def test_default_precedence_quarantine_then_wipe_then_service() -> None:
    verdict = decide(everything_report(), DEFAULTS)
    assert verdict.status is VerdictStatus.QUARANTINE
    assert [r.split(":")[0] for r in verdict.reasons] == [
        "tampered",
        "activated (terminal ID ****2000)",
        "battery voltage 2.00 V below 2.70 V",
    ]


def test_wipe_beats_service() -> None:
    report = make_report(
        activation=Activation(ActivationState.ACTIVATED, terminal_id=TID),
        network=Network(host_reachable=False),
    )
    verdict = decide(report, DEFAULTS)
    assert verdict.status is VerdictStatus.WIPE_REQUIRED
    assert verdict.reasons[1] == "payment host not reachable"


def test_precedence_comes_from_the_policy_and_reasons_follow_it() -> None:
    order = ["service_required", "wipe_required", "quarantine", "ready"]
    verdict = decide(everything_report(), with_policy(verdict={"precedence": order}))
    assert verdict.status is VerdictStatus.SERVICE_REQUIRED
    assert verdict.reasons[0].startswith("battery voltage")
    assert verdict.reasons[1].startswith("activated")
    assert verdict.reasons[2].startswith("tampered")


# --- load_policy ---------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "depot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_the_shipped_file() -> None:
    shipped = tomllib.loads(
        (resources.files("posdiag.agent") / "policy.toml").read_text(encoding="utf-8")
    )
    assert load_policy().data == shipped
    assert load_policy(None).get("battery", "min_voltage_mv") == 2700
    assert load_policy().get("verdict", "precedence")[0] == "quarantine"


def test_override_merges_with_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "[battery]\nmin_voltage_mv = 3500\n"))
    assert policy.get("battery", "min_voltage_mv") == 3500
    assert policy.get("battery", "min_level_pct") == 20
    assert policy.get("network", "require_host_reachable") is True
    assert load_policy().get("battery", "min_voltage_mv") == 2700  # defaults untouched


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "# nothing\n")).data == DEFAULTS.data


def test_int_is_accepted_for_a_float_threshold(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, "[battery]\nmax_temperature_c = 40\n"))
    assert policy.get("battery", "max_temperature_c") == 40


def test_valid_precedence_override(tmp_path: Path) -> None:
    text = '[verdict]\nprecedence = ["service_required", "quarantine", "wipe_required", "ready"]\n'
    assert load_policy(write(tmp_path, text)).get("verdict", "precedence")[0] == "service_required"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[batery]\nmin_voltage_mv = 1\n", "unknown policy key 'batery'"),
        ("[battery]\nmin_voltsss = 1\n", "unknown policy key 'min_voltsss'"),
        ("verdict = 3\n", "[verdict] must be a table"),
        ('[battery]\nmin_voltage_mv = "3500"\n', "wrong type"),
        ("[network]\nrequire_host_reachable = 1\n", "wrong type"),
        ('[activation]\nwipe_states = "activated"\n', "wrong type"),
        ('[verdict]\nprecedence = ["wipe", "ready"]\n', "precedence must list each of"),
        ('[activation]\nwipe_states = ["activate"]\n', "unknown states 'activate'"),
    ],
)
def test_bad_keys_and_values_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_unknown_key_error_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="known: min_level_pct, min_voltage_mv"):
        load_policy(write(tmp_path, "[battery]\nmin_voltsss = 1\n"))


def test_invalid_toml_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="is not valid TOML"):
        load_policy(write(tmp_path, "nope = [\n"))


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.toml")


def test_directory_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path)


def test_non_utf8_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_policy_error_is_a_posdiag_error() -> None:
    assert issubclass(PolicyError, PosdiagError)
