"""The simulated Android POS state: profiles × scenarios from TOML, overrides, strict keys."""

from __future__ import annotations

import pytest

from posdiag.drivers.errors import PosdiagError
from posdiag.simulators.adb.state import (
    AdbScenarioError,
    AndroidState,
    available_profiles,
    available_scenarios,
    load_android,
    state_from_dict,
)

PROFILES = ["android-generic", "newland-n910", "pax-a920", "pax-a920-android7", "sunmi-p2"]
SCENARIOS = [
    "activated",
    "auth-required",
    "debugging-disabled",
    "fresh",
    "low-battery",
    "never-authorised",
    "no-network",
    "no-sim",
    "outdated-firmware",
    "unsettled",
]


def test_shipped_profiles_and_scenarios() -> None:
    assert available_profiles() == PROFILES
    assert available_scenarios() == SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_and_scenario_loads(profile: str, scenario: str) -> None:
    state = load_android(scenario, profile)

    assert isinstance(state, AndroidState)
    assert state.profile == profile
    assert state.description
    assert state.serial
    assert "shell_v2" in state.features
    assert any(not app.system for app in state.apps)
    assert state.app(state.payment_package) is not None
    assert state.app(state.mdm_package) is not None
    # scenario placeholders were filled with the profile's names
    text = repr((state.files, state.apps, state.device_owner, state.accounts))
    assert "{" + "vendor_dir}" not in text
    assert "{" + "mdm}" not in text
    assert "{" + "payment}" not in text
    props = state.properties()
    assert list(props) == sorted(props)
    assert props["ro.serialno"] == state.serial
    assert props["ro.build.version.sdk"] == str(state.sdk)
    assert props["ro.product.model"] == state.model
    assert props["gsm.sim.state"] == state.telephony.sim_state
    if state.vendor_serial_property:
        assert props[state.vendor_serial_property] == state.vendor_serial


def test_profiles_are_what_they_claim() -> None:
    pax = load_android("fresh", "pax-a920")
    assert (pax.manufacturer, pax.model, pax.sdk) == ("PAX", "A920", 27)
    assert load_android("fresh", "pax-a920-android7").sdk == 25
    assert pax.vendor_serial_property == "ro.fac.sn"
    assert pax.properties()["ro.fac.mach"] == "A920"
    sunmi = load_android("fresh", "sunmi-p2")
    assert (sunmi.manufacturer, sunmi.sdk) == ("SUNMI", 30)
    assert sunmi.vendor_serial_property == "ro.sunmi.serial"
    generic = load_android("fresh")
    assert generic.profile == "android-generic"
    assert generic.vendor_serial_property == ""


def test_scenarios_say_what_happened() -> None:
    activated = load_android("activated", "pax-a920")
    assert activated.device_owner.startswith("com.pax.market.android.app/")
    assert activated.accounts
    assert activated.wifi.connected and activated.wifi.ssid == "Cafe-Beispiel"
    assert "/sdcard/PAX/params/merchant.xml" in activated.files
    payment = activated.app("com.pax.ipp.manager")
    assert payment is not None and payment.has_data

    fresh = load_android("fresh", "pax-a920")
    assert fresh.device_owner == "" and fresh.accounts == []
    assert fresh.telephony.sim_state == "ABSENT"
    assert fresh.wifi.saved == []
    assert not any(app.has_data for app in fresh.apps)

    assert load_android("low-battery").battery.level == 7
    assert load_android("low-battery").battery.cycle_count == 612
    no_network = load_android("no-network")
    assert no_network.telephony.sim_state == "READY"
    assert no_network.telephony.voice_reg_state == 1
    assert no_network.wifi.enabled is False
    assert load_android("no-sim").telephony.sim_state == "ABSENT"
    assert load_android("outdated-firmware").security_patch.startswith("2017")
    assert load_android("auth-required").auth_required
    assert not load_android("activated").auth_required
    assert "/sdcard/Download/pos/batch/unsettled.json" in load_android("unsettled").files


def test_telephony_properties_follow_the_state() -> None:
    in_service = load_android("activated").properties()
    assert in_service["gsm.operator.alpha"] == "Telekom.de"
    assert in_service["gsm.operator.numeric"] == "26201"
    assert in_service["gsm.network.type"] == "LTE"
    no_network = load_android("no-network").properties()
    assert no_network["gsm.sim.state"] == "READY"
    assert no_network["gsm.sim.operator.alpha"] == "Telekom.de"
    assert no_network["gsm.operator.alpha"] == ""
    assert no_network["gsm.network.type"] == "Unknown"
    no_sim = load_android("no-sim").properties()
    assert no_sim["gsm.sim.state"] == "ABSENT"
    assert no_sim["gsm.sim.operator.alpha"] == ""
    assert no_sim["gsm.operator.alpha"] == ""
    airplane = load_android("activated", overrides={"device": {"airplane_mode": True}})
    assert airplane.properties()["gsm.operator.alpha"] == ""


def test_overrides_merge_deeply() -> None:
    state = load_android(
        "activated",
        "pax-a920",
        {
            "battery": {"level": 42},
            "device": {"features": ["cmd"], "trusted_keys": ["KEY user@host"]},
            "files": {"/sdcard/extra.txt": "x"},
            "faults": {"stall": 0.5, "vanish_after": 2},
        },
    )

    assert state.battery.level == 42
    assert state.battery.voltage_mv == 4105  # the profile's value stays
    assert state.features == ["cmd"]
    assert state.trusted_keys == ["KEY user@host"]
    assert state.model == "A920"
    assert state.files["/sdcard/extra.txt"] == "x"
    assert "/sdcard/PAX/params/merchant.xml" in state.files  # merged, not replaced
    assert (state.faults.stall, state.faults.vanish_after) == (0.5, 2)
    assert state.faults.drop_packets == 0


def test_loads_are_independent() -> None:
    first = load_android("activated")
    first.files.clear()
    first.wifi.saved.clear()
    first.apps[0].data_files["x"] = "y"

    second = load_android("activated")
    assert second.files and second.wifi.saved
    assert "x" not in second.apps[0].data_files


def test_unknown_profile() -> None:
    with pytest.raises(
        AdbScenarioError, match=r"unknown Android model profile 'pax-a80'.*pax-a920"
    ):
        load_android("activated", "pax-a80")


def test_unknown_scenario() -> None:
    with pytest.raises(AdbScenarioError, match=r"unknown Android scenario 'stolen'.*activated"):
        load_android("stolen")


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"device": {"colour": "red"}}, r"\[device\]: unknown keys colour"),
        ({"battery": {"cycles": 3}}, r"\[battery\]: unknown keys cycles"),
        ({"telephony": {"imei": "1"}}, r"\[telephony\]: unknown keys imei"),
        ({"wifi": {"password": "x"}}, r"\[wifi\]: unknown keys password"),
        ({"wifi": {"saved": [{"ssid": "a", "psk": "b"}]}}, r"\[\[wifi.saved\]\]"),
        ({"faults": {"explode": 1}}, r"\[faults\]: unknown keys explode"),
        ({"gadgets": {}}, r"unknown sections gadgets"),
    ],
)
def test_unknown_keys_are_rejected(overrides: dict, where: str) -> None:
    with pytest.raises(AdbScenarioError, match=where) as caught:
        load_android("activated", "sunmi-p2", overrides)
    assert isinstance(caught.value, PosdiagError)
    assert "sunmi-p2/activated" in str(caught.value)


def test_unknown_app_keys_are_rejected() -> None:
    with pytest.raises(AdbScenarioError, match=r"\[\[apps\]\]: unknown keys size"):
        state_from_dict({"apps": [{"package": "a.b", "size": 1}]}, "test")


def test_state_from_dict_defaults() -> None:
    state = state_from_dict({}, "empty")
    assert state.apps == [] and state.files == {}
    assert state.battery.level == 87
    assert state.faults.vanish_after is None
