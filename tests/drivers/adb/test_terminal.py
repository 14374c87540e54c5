"""AdbTerminal, the Terminal contract for Android smart POS, against the simulated units.

Every terminal here is opened the way the agent opens one, ``open_terminal(parse_address(
"adb+sim://SCENARIO?model=M"))``, so the address options, the simulator registry, the memory (or
simulated USB) link, the ADB driver and the catalogue all take part. Expected values come from
the simulator's own state (``load_android``) where a literal would only repeat the profile, and
are spelled out where the point is which property wins (the PAX vendor serial, not ro.serialno).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.connect import open_terminal
from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.policy import load_policy
from posdiag.agent.report import to_json
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import UnsupportedError
from posdiag.drivers.model import ActivationState, PendingTransactions
from posdiag.simulators.adb.state import AndroidState, load_android

MODELS = ["pax-a920", "sunmi-p2", "android-generic"]
VENDOR_MODELS = ["pax-a920", "sunmi-p2"]  # the models whose catalogue entry knows a batch export
IDENTITY = {  # vendor, model, serial (the vendor property first)
    "pax-a920": ("PAX", "A920", "0820533061"),
    "sunmi-p2": ("SUNMI", "P2_PRO", "PC02P0CN01234"),
    "android-generic": ("Generic", "Android POS", "GPOS0001234567"),
}
PAYMENT_APPS = {  # catalogue payment/TMS apps the profile installs, with their versions
    "pax-a920": {
        "com.pax.paydroid": "3.02.08",
        "com.pax.ipp.manager": "2.1.0",
        "com.pax.market.android.app": "8.6.1",
    },
    "sunmi-p2": {"com.sunmi.payment.service": "1.7.3", "com.sunmi.mdm": "2.8.0"},
    "android-generic": {},
}
WIPE_STEPS = {
    "pax-a920": [
        "clear:com.pax.paydroid",
        "clear:com.pax.ipp.manager",
        "clear:com.pax.market.android.app",
        "forget_wifi",
        "delete:/sdcard/PAX/",
        "delete:/sdcard/Download/",
    ],
    "sunmi-p2": [
        "clear:com.sunmi.payment.service",
        "clear:com.sunmi.mdm",
        "forget_wifi",
        "delete:/sdcard/Sunmi/",
        "delete:/sdcard/Download/",
    ],
    "android-generic": ["forget_wifi", "delete:/sdcard/Download/", "factory_reset"],
}
ACCOUNT_NAME = "merchant-0042@example.invalid"
SCENARIOS_WITH_ACCOUNTS = ["activated", "unsettled"]
NOT_ACTIVATED = ["fresh", "low-battery", "no-network", "no-sim", "outdated-firmware"]

Open = Callable[..., AdbTerminal]


@pytest.fixture(autouse=True)
def _private_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario that asks for authentication must never create or read a real host key."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def open_adb() -> Iterator[Open]:
    """``open_adb("activated", "pax-a920", via="usb")``: a simulated unit, closed afterwards."""
    opened: list[AdbTerminal] = []

    def make(scenario: str, model: str, **options: str) -> AdbTerminal:
        query = "&".join([f"model={model}", *(f"{k}={v}" for k, v in options.items())])
        terminal = open_terminal(parse_address(f"adb+sim://{scenario}?{query}"))
        assert isinstance(terminal, AdbTerminal)
        opened.append(terminal)
        return terminal

    yield make
    for terminal in opened:
        terminal.close()


def state(scenario: str, model: str) -> AndroidState:
    """What the simulated unit holds (a fresh copy, for expectations)."""
    return load_android(scenario, model)


def report_json(terminal: AdbTerminal) -> dict[str, Any]:
    """The agent's whole JSON report for the terminal (every probe, the verdict)."""
    return to_json(inspect_terminal(terminal, load_policy(None), simulated=True))


# --- identify ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_identify_names_vendor_model_and_the_vendor_serial(open_adb: Open, model: str) -> None:
    identity = open_adb("activated", model).identify()
    assert (identity.vendor, identity.model, identity.serial) == IDENTITY[model]
    s = state("activated", model)
    assert identity.hardware == s.device
    assert identity.device_name == s.product


def test_pax_serial_comes_from_ro_fac_sn_not_ro_serialno(open_adb: Open) -> None:
    terminal = open_adb("fresh", "pax-a920")
    props = terminal.facts().props
    assert props["ro.fac.sn"] == "0820533061"
    assert props["ro.serialno"] == "82617703"
    assert terminal.identify().serial == "0820533061"


def test_sunmi_serial_comes_from_ro_sunmi_serial(open_adb: Open) -> None:
    terminal = open_adb("fresh", "sunmi-p2")
    props = terminal.facts().props
    assert props["ro.sunmi.serial"] == "PC02P0CN01234"
    assert props["ro.serialno"] != "PC02P0CN01234"
    assert terminal.identify().serial == "PC02P0CN01234"


@pytest.mark.parametrize("model", MODELS)
def test_the_catalogue_entry_follows_the_properties(open_adb: Open, model: str) -> None:
    assert open_adb("fresh", model).facts().entry.id == model  # type: ignore[union-attr]


# --- firmware ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_firmware_lists_android_build_patch_and_payment_apps(open_adb: Open, model: str) -> None:
    components = open_adb("activated", model).firmware().components
    s = state("activated", model)
    assert components["Android"] == s.release
    assert components["SDK"] == str(s.sdk)
    assert components["Build"] == s.display_id
    assert components["Build ID"] == s.build_id
    assert components["Security patch"] == s.security_patch
    apps = {k.removeprefix("app "): v for k, v in components.items() if k.startswith("app ")}
    assert apps == PAYMENT_APPS[model]


def test_firmware_shows_pax_paydroid_build(open_adb: Open) -> None:
    components = open_adb("fresh", "pax-a920-android7").firmware().components
    assert components["Android"] == "7.1.2"
    assert components["SDK"] == "25"
    assert components["Build"] == "PayDroid_7.1.2_Aquila_V13.1.13_20220614"
    assert components["Security patch"] == "2021-08-05"


def test_firmware_never_lists_vendor_services_as_payment_apps(open_adb: Open) -> None:
    components = open_adb("activated", "sunmi-p2").firmware().components
    assert not any("woyou" in key or "hardware_v3" in key for key in components)


@pytest.mark.parametrize("model", MODELS)
def test_outdated_firmware_shows_the_old_security_patch(open_adb: Open, model: str) -> None:
    components = open_adb("outdated-firmware", model).firmware().components
    assert components["Security patch"] == "2017-08-05"
    assert components["Build"] == "NHG47L release-keys (outdated)"


# --- battery -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_battery_level_voltage_temperature_health(open_adb: Open, model: str) -> None:
    battery = open_adb("activated", model).battery()
    s = state("activated", model).battery
    assert battery.present is True
    assert battery.level_pct == s.level == 87
    assert battery.voltage_mv == s.voltage_mv
    assert battery.temperature_c == pytest.approx(28.1)
    assert battery.health == "good"
    assert battery.cycle_count is None  # the profile's battery reports no cycle count


def test_pax_battery_voltage_is_the_profiles(open_adb: Open) -> None:
    assert open_adb("fresh", "pax-a920").battery().voltage_mv == 4105


@pytest.mark.parametrize("model", MODELS)
def test_low_battery_nearly_empty_not_charging_worn(open_adb: Open, model: str) -> None:
    battery = open_adb("low-battery", model).battery()
    assert battery.level_pct == 7
    assert battery.charging is False
    assert battery.voltage_mv == 3420
    assert battery.cycle_count == 612


# --- network -------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_network_in_service_with_sim_operator_signal_and_wifi(open_adb: Open, model: str) -> None:
    network = open_adb("activated", model).network()
    assert network.sim_state == "READY"
    assert network.operator == "Telekom.de"
    assert network.registration == "IN_SERVICE"
    assert network.signal_dbm == -98  # LTE RSRP from the telephony registry
    (wlan,) = network.interfaces
    assert (wlan.name, wlan.mode, wlan.up) == ("wlan0", "wifi", True)
    assert "airplane mode off" in network.details
    assert "Wi-Fi enabled" in network.details
    assert "Wi-Fi RSSI -58 dBm" in network.details


@pytest.mark.parametrize("model", MODELS)
def test_no_network_sim_ready_but_out_of_service_wifi_down(open_adb: Open, model: str) -> None:
    network = open_adb("no-network", model).network()
    assert network.sim_state == "READY"
    assert network.registration == "OUT_OF_SERVICE"
    assert network.operator is None
    assert network.signal_dbm is None
    (wlan,) = network.interfaces
    assert wlan.up is False
    assert "Wi-Fi disabled" in network.details


@pytest.mark.parametrize("scenario", ["no-sim", "fresh"])
@pytest.mark.parametrize("model", MODELS)
def test_no_sim_reads_absent(open_adb: Open, model: str, scenario: str) -> None:
    network = open_adb(scenario, model).network()
    assert network.sim_state == "ABSENT"
    assert network.operator is None
    assert network.registration == "OUT_OF_SERVICE"
    (wlan,) = network.interfaces
    assert wlan.up is False  # Wi-Fi enabled but not connected
    assert "Wi-Fi enabled" in network.details


# --- activation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["activated", "unsettled"])
@pytest.mark.parametrize("model", MODELS)
def test_activated_units_are_activated_by_device_owner_evidence(
    open_adb: Open, model: str, scenario: str
) -> None:
    activation = open_adb(scenario, model).activation()
    assert activation.state is ActivationState.ACTIVATED
    assert activation.host_registered is True
    sources = {e.source for e in activation.evidence}
    assert {"device policy", "accounts", "files"} <= sources
    owner = state(scenario, model).device_owner.partition("/")[0]
    assert any(e.source == "device policy" and owner in e.fact for e in activation.evidence)
    assert all(e.fact.strip() for e in activation.evidence)


def test_sunmi_activation_counts_payment_app_data(open_adb: Open) -> None:
    evidence = open_adb("activated", "sunmi-p2").activation().evidence
    app = [e.fact for e in evidence if e.source == "app data"]
    assert app and "com.sunmi.payment.service holds" in app[0]
    assert "bytes" in app[0]


def test_pax_on_android_7_says_app_data_is_not_readable(open_adb: Open) -> None:
    """Android 7 has no per-package sizes in diskstats: reported, never counted as evidence."""
    terminal = open_adb("fresh", "pax-a920-android7")
    activation = terminal.activation()
    assert activation.state is ActivationState.NOT_ACTIVATED
    facts = [e.fact for e in activation.evidence if e.source == "app data"]
    assert facts == [
        "3 payment app(s) unchecked: Android SDK 25 does not report per-app data sizes to the "
        "shell (SDK 26+ does)"
    ]
    assert "payment app data sizes are not readable on this Android release" in (
        terminal.merchant_data().notes
    )


@pytest.mark.parametrize("scenario", NOT_ACTIVATED)
@pytest.mark.parametrize("model", MODELS)
def test_not_activated_scenarios(open_adb: Open, model: str, scenario: str) -> None:
    activation = open_adb(scenario, model).activation()
    assert activation.state is ActivationState.NOT_ACTIVATED
    assert activation.host_registered is False
    assert activation.evidence  # always says what was looked at
    assert all(e.fact.strip() for e in activation.evidence)
    assert not {"device policy", "accounts", "files"} & {e.source for e in activation.evidence}


@pytest.mark.parametrize("model", MODELS)
def test_fresh_generic_unit_says_no_evidence(open_adb: Open, model: str) -> None:
    evidence = open_adb("fresh", model).activation().evidence
    if model == "pax-a920":
        assert {e.source for e in evidence} == {"app data"}  # "not readable" notes only
    else:
        assert [e.source for e in evidence] == ["recipes"]
        assert "no activation evidence" in evidence[0].fact


def test_a_sim_in_service_is_reported_as_information_only(open_adb: Open) -> None:
    activation = open_adb("no-network", "sunmi-p2").activation()
    assert activation.state is ActivationState.NOT_ACTIVATED
    assert any("gsm.sim.state=READY" in e.fact for e in activation.evidence)


@pytest.mark.parametrize("scenario", SCENARIOS_WITH_ACCOUNTS)
@pytest.mark.parametrize("model", MODELS)
def test_account_names_never_appear_only_types(open_adb: Open, model: str, scenario: str) -> None:
    assert any(name == ACCOUNT_NAME for name, _ in state(scenario, model).accounts)
    terminal = open_adb(scenario, model)
    (account,) = [e for e in terminal.activation().evidence if e.source == "accounts"]
    account_type = state(scenario, model).accounts[0][1]
    assert f"1 account(s) of type {account_type}" in account.fact
    text = json.dumps(report_json(terminal))
    assert ACCOUNT_NAME not in text
    assert "merchant-0042" not in text
    assert "@example.invalid" not in text
    assert account_type in text


# --- merchant data -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", VENDOR_MODELS)
def test_unsettled_batch_is_read_from_the_export(open_adb: Open, model: str) -> None:
    pending = open_adb("unsettled", model).merchant_data().pending_transactions
    assert pending is not None
    assert (pending.count, pending.total_cents, pending.currency) == (3, 4757, "EUR")


def test_generic_catalogue_knows_no_batch_export(open_adb: Open) -> None:
    assert open_adb("unsettled", "android-generic").merchant_data().pending_transactions is None


@pytest.mark.parametrize("model", MODELS)
def test_no_batch_export_means_no_open_batch_where_the_recipe_knows_the_path(
    open_adb: Open, model: str
) -> None:
    pending = open_adb("activated", model).merchant_data().pending_transactions
    if model == "android-generic":
        assert pending is None  # no recipe: unknown, and the wipe asks the operator
    else:
        assert pending == PendingTransactions(0, 0)


@pytest.mark.parametrize("model", MODELS)
def test_saved_wifi_is_masked(open_adb: Open, model: str) -> None:
    terminal = open_adb("activated", model)
    data = terminal.merchant_data()
    # masked, but two networks stay distinguishable by their length
    assert data.network_profiles == ("Caf… (13 chars)", "Caf… (15 chars)")
    text = json.dumps(report_json(terminal), ensure_ascii=False)
    assert "Cafe-Beispiel" not in text
    assert "Cafe-Backoffice" not in text
    assert "Caf…" in text


@pytest.mark.parametrize(
    ("model", "files"),
    [
        ("pax-a920", ("/sdcard/PAX/params/", "/sdcard/Download/settlement-2026-10.csv")),
        ("sunmi-p2", ("/sdcard/Sunmi/params/", "/sdcard/Download/settlement-2026-10.csv")),
        ("android-generic", ("/sdcard/Download/pos/", "/sdcard/Download/settlement-2026-10.csv")),
    ],
)
def test_merchant_files_are_listed(open_adb: Open, model: str, files: tuple[str, ...]) -> None:
    assert open_adb("activated", model).merchant_data().files == files


@pytest.mark.parametrize("model", VENDOR_MODELS)
def test_unsettled_unit_lists_batch_and_params(open_adb: Open, model: str) -> None:
    data = open_adb("unsettled", model).merchant_data()
    vendor_dir = state("unsettled", model).vendor_dir
    assert data.files == (f"{vendor_dir}/batch/", f"{vendor_dir}/params/")  # ls -p marks dirs
    assert data.network_profiles == ("Caf… (13 chars)",)


def test_payment_app_data_is_listed_with_its_size(open_adb: Open) -> None:
    apps = open_adb("activated", "sunmi-p2").merchant_data().apps
    # the payment app and the MDM client (whose data is the merchant's enrolment) both count
    assert [a.split(" (")[0] for a in apps] == ["com.sunmi.payment.service", "com.sunmi.mdm"]
    assert all(a.endswith(" bytes)") for a in apps)


@pytest.mark.parametrize("model", MODELS)
def test_fresh_unit_holds_no_merchant_data(open_adb: Open, model: str) -> None:
    data = open_adb("fresh", model).merchant_data()
    assert (data.files, data.network_profiles, data.apps) == ((), (), ())
    expected = None if model == "android-generic" else PendingTransactions(0, 0)
    assert data.pending_transactions == expected


# --- tamper, health ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_tamper_is_unsupported_over_adb(open_adb: Open, model: str) -> None:
    with pytest.raises(UnsupportedError, match="tamper"):
        open_adb("activated", model).tamper()


@pytest.mark.parametrize("model", MODELS)
def test_health_reports_no_faults_and_leaves_temperature_to_the_battery(
    open_adb: Open, model: str
) -> None:
    terminal = open_adb("activated", model)
    health = terminal.health()
    assert health.faults == ()
    assert health.temperature_c is None  # it is the battery's: shown once, in the battery row
    assert terminal.battery().temperature_c == pytest.approx(28.1)


# --- wipe ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_wipe_plan_step_names(open_adb: Open, model: str) -> None:
    plan = open_adb("activated", model).wipe_plan()
    assert [step.name for step in plan] == WIPE_STEPS[model]
    assert all(step.erases for step in plan)
    assert [s.name for s in plan if s.optional] == (
        ["factory_reset"] if model == "android-generic" else []
    )


def test_wipe_plan_skips_catalogue_apps_the_unit_does_not_have(open_adb: Open) -> None:
    terminal = open_adb("activated", "pax-a920")
    terminal.facts().packages.remove("com.pax.ipp.manager")  # as on a unit without that app
    names = [step.name for step in terminal.wipe_plan()]
    assert "clear:com.pax.ipp.manager" not in names
    assert "clear:com.pax.paydroid" in names


def test_clear_step_is_not_done_where_app_data_cannot_be_seen(open_adb: Open) -> None:
    """Android 7 (PAX A920) shows no per-app sizes: done() must not claim an unseen erasure."""
    terminal = open_adb("activated", "pax-a920-android7")
    clear = [step for step in terminal.wipe_plan() if step.name.startswith("clear:")]
    assert clear
    for step in clear:
        with pytest.raises(UnsupportedError, match="per-app data sizes"):
            step.done()


def _run(terminal: AdbTerminal, *prefixes: str) -> list[str]:
    ran = []
    for step in terminal.wipe_plan():
        if step.name.startswith(prefixes):
            assert not step.done(), step.name
            step.run()
            assert step.done(), step.name
            ran.append(step.name)
    return ran


def test_wipe_clears_apps_and_wifi_and_refresh_shows_them_gone(open_adb: Open) -> None:
    terminal = open_adb("activated", "sunmi-p2")
    before = terminal.merchant_data()
    assert before.apps and before.network_profiles
    assert _run(terminal, "clear:", "forget_wifi") == [
        "clear:com.sunmi.payment.service",
        "clear:com.sunmi.mdm",
        "forget_wifi",
    ]
    terminal.refresh()
    after = terminal.merchant_data()
    assert after.apps == ()
    assert after.network_profiles == ()
    assert terminal.network().interfaces[0].up is False  # the connected network was forgotten
    activation = terminal.activation()
    assert not any(e.source == "app data" for e in activation.evidence)
    # The MDM's device owner survives pm clear: only the TMS can release it. Still activated.
    assert any(e.source == "device policy" for e in activation.evidence)
    assert activation.state is ActivationState.ACTIVATED
    assert terminal.facts().errors == []


@pytest.mark.parametrize("model", MODELS)
def test_wipe_deletes_merchant_files(open_adb: Open, model: str) -> None:
    terminal = open_adb("activated", model)
    assert terminal.merchant_data().files
    _run(terminal, "delete:")
    terminal.refresh()
    assert terminal.merchant_data().files == ()
    assert not any(e.source == "files" for e in terminal.activation().evidence)


def test_wipe_steps_are_safe_to_run_again(open_adb: Open) -> None:
    terminal = open_adb("activated", "sunmi-p2")
    for _ in range(2):
        for step in terminal.wipe_plan():
            if step.name.startswith(("clear:", "forget_wifi")):
                step.run()
                assert step.done()


def test_testharness_reset_runs_on_the_generic_unit_but_is_never_verified(
    open_adb: Open,
) -> None:
    terminal = open_adb("fresh", "android-generic")
    (reset,) = [s for s in terminal.wipe_plan() if s.name == "factory_reset"]
    assert reset.optional
    assert "test-harness" in reset.erases
    assert reset.done() is False


# --- faults and links ----------------------------------------------------------------------------


# The unit dies at the fourth command: one by one, the fourth stream it is asked to open; in a
# batch, power fails while the batch's fourth command (dumpsys wifi) runs, after the first three
# printed their output.
VANISH_AT_THE_FOURTH = {
    False: {"vanish_after": "3"},
    True: {"power_loss_at": "dumpsys%20wifi"},
}


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-by-one"])
@pytest.mark.parametrize("model", MODELS)
def test_device_vanishing_mid_collection_becomes_errors_not_a_crash(
    open_adb: Open, model: str, batched: bool
) -> None:
    def opened() -> AdbTerminal:
        terminal = open_adb("activated", model, **VANISH_AT_THE_FOURTH[batched])
        terminal.batched = batched
        return terminal

    terminal = opened()
    facts = terminal.facts()
    # getprop, battery and telephony answered; the unit vanished at the fourth command.
    assert facts.battery is not None
    assert facts.telephony is not None
    assert len(facts.errors) == 1
    assert facts.errors[0].startswith("wifi: ")
    assert facts.wifi is None and facts.packages == [] and facts.policy is None
    assert terminal.identify().serial == IDENTITY[model][2]
    # Nothing was found, but most recipes could not be read: not "not activated".
    assert terminal.activation().state is ActivationState.UNKNOWN
    report = report_json(opened())
    assert report["device"]["serial"] == IDENTITY[model][2]
    assert any(error.startswith("wifi: ") for error in report["errors"])
    assert report["verdict"]["status"] != "unreachable"


def test_device_vanishing_before_any_answer_is_unreachable(open_adb: Open) -> None:
    report = report_json(open_adb("activated", "pax-a920", vanish_after="0"))
    assert report["verdict"]["status"] == "unreachable"
    assert report["errors"]


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    report = dict(report)
    for key in ("address", "checked_at", "duration_s"):
        report.pop(key)
    report["device"] = {k: v for k, v in report["device"].items() if k != "address"}
    return report


@pytest.mark.parametrize("scenario", ["activated", "unsettled", "low-battery"])
@pytest.mark.parametrize("model", MODELS)
def test_via_usb_gives_the_same_report_as_memory(open_adb: Open, model: str, scenario: str) -> None:
    memory = report_json(open_adb(scenario, model))
    usb = report_json(open_adb(scenario, model, via="usb"))
    assert usb["address"].endswith("&via=usb")
    assert _comparable(usb) == _comparable(memory)
    assert usb["errors"] == []


def test_authentication_with_a_new_key_then_the_report(open_adb: Open, tmp_path: Path) -> None:
    terminal = open_adb("auth-required", "pax-a920")
    assert terminal.identify().serial == "0820533061"
    assert terminal.activation().state is ActivationState.ACTIVATED
    assert (tmp_path / "config" / "posdiag" / "adbkey").is_file()  # created in the private home
