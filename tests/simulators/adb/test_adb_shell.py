"""The simulated Android shell: its output, read by posdiag's real parsers, says what the state
holds; its commands change the state as a real device's would."""

from __future__ import annotations

import pytest

from posdiag.drivers.adb.parsers import (
    parse_accounts,
    parse_device_owner,
    parse_diskstats,
    parse_dumpsys_battery,
    parse_dumpsys_package_version,
    parse_dumpsys_wifi,
    parse_getprop,
    parse_ls,
    parse_pm_list_packages,
    parse_settings_value,
    parse_telephony_registry,
)
from posdiag.simulators.adb.shell import AndroidShell, ShellResult
from posdiag.simulators.adb.shell_props import all_properties
from posdiag.simulators.adb.state import AndroidState, available_profiles, load_android


def shell_for(
    scenario: str = "activated", profile: str = "android-generic", overrides: dict | None = None
) -> tuple[AndroidShell, AndroidState]:
    state = load_android(scenario, profile, overrides)
    return AndroidShell(state), state


def out(sh: AndroidShell, command: str) -> str:
    result = sh.run(command)
    assert result.exit_code == 0, result
    return result.stdout


# --- what the parsers read -----------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["android-generic", "pax-a920", "sunmi-p2"])
def test_getprop_listing_parses_into_the_properties(profile: str) -> None:
    sh, state = shell_for("activated", profile)

    props = parse_getprop(out(sh, "getprop"))

    assert props == all_properties(state)
    assert props.items() >= state.properties().items()  # the state's own win
    assert out(sh, "getprop ro.serialno") == f"{state.serial}\n"
    assert out(sh, "getprop no.such.prop") == "\n"
    assert out(sh, "getprop no.such.prop fallback") == "fallback\n"


def test_vendor_serial_properties() -> None:
    pax, _ = shell_for("activated", "pax-a920")
    sunmi, _ = shell_for("activated", "sunmi-p2")
    assert parse_getprop(out(pax, "getprop"))["ro.fac.sn"] == "0820533061"
    assert parse_getprop(out(sunmi, "getprop"))["ro.sunmi.serial"] == "PC02P0CN01234"


@pytest.mark.parametrize(
    ("profile", "dock_line"), [("pax-a920", False), ("sunmi-p2", True), ("android-generic", True)]
)
def test_battery(profile: str, dock_line: bool) -> None:
    sh, state = shell_for("activated", profile)

    text = out(sh, "dumpsys battery")
    battery = parse_dumpsys_battery(text)

    assert battery.level_pct == state.battery.level
    assert battery.voltage_mv == state.battery.voltage_mv
    assert battery.temperature_c == pytest.approx(state.battery.temperature_decic / 10)
    assert battery.technology == state.battery.technology
    assert battery.status == 2 and battery.health == 2  # charging on the depot's USB
    assert battery.usb_powered is True and battery.present is True
    assert battery.charging is True
    assert battery.cycle_count is None  # AOSP prints none
    assert ("Dock powered" in text) is dock_line  # Android 7.1 lacks it


def test_low_battery() -> None:
    sh, _ = shell_for("low-battery", "sunmi-p2")

    battery = parse_dumpsys_battery(out(sh, "dumpsys battery"))

    assert battery.level_pct == 7
    assert battery.voltage_mv == 3420
    assert battery.cycle_count == 612
    assert battery.charging is False
    assert battery.usb_powered is False and battery.ac_powered is False
    assert battery.plugged == 0


def test_battery_follows_later_changes() -> None:
    sh, state = shell_for()
    state.battery.level, state.battery.temperature_decic = 55, 412

    battery = parse_dumpsys_battery(out(sh, "dumpsys battery"))

    assert (battery.level_pct, battery.temperature_c) == (55, pytest.approx(41.2))


def test_telephony_in_service() -> None:
    sh, state = shell_for("activated", "pax-a920")

    phone = parse_telephony_registry(out(sh, "dumpsys telephony.registry")).primary

    assert phone is not None
    assert phone.in_service
    assert phone.voice_reg_state == "IN_SERVICE"
    assert phone.operator_alpha == "Telekom.de"
    assert phone.operator_numeric == "26201"
    assert phone.signal_dbm == state.telephony.rsrp_dbm
    assert phone.signal_level == 4


def test_telephony_no_network() -> None:
    sh, _ = shell_for("no-network")

    phone = parse_telephony_registry(out(sh, "dumpsys telephony.registry")).primary

    assert phone is not None
    assert not phone.in_service
    assert phone.voice_reg_state == "OUT_OF_SERVICE"
    assert phone.operator_alpha is None
    assert phone.signal_dbm is None
    assert parse_getprop(out(sh, "getprop"))["gsm.sim.state"] == "READY"


def test_telephony_no_sim() -> None:
    sh, _ = shell_for("no-sim")

    phone = parse_telephony_registry(out(sh, "dumpsys telephony.registry")).primary

    assert phone is not None
    assert not phone.in_service
    assert phone.operator_alpha is None
    assert phone.signal_dbm is None
    assert out(sh, "getprop gsm.sim.state") == "ABSENT\n"


def test_telephony_airplane_mode() -> None:
    sh, _ = shell_for("activated", overrides={"device": {"airplane_mode": True}})

    phone = parse_telephony_registry(out(sh, "dumpsys telephony.registry")).primary

    assert phone is not None
    assert phone.voice_reg_state == "POWER_OFF"
    assert parse_settings_value(out(sh, "settings get global airplane_mode_on")) == "1"
    assert parse_dumpsys_wifi(out(sh, "dumpsys wifi")).enabled is False


def test_wifi_connected_with_saved_networks() -> None:
    sh, state = shell_for("activated", "sunmi-p2")

    wifi = parse_dumpsys_wifi(out(sh, "dumpsys wifi"))

    assert wifi.enabled is True
    assert wifi.connected is True
    assert wifi.ssid == "Cafe-Beispiel"
    assert wifi.bssid == state.wifi.bssid
    assert wifi.rssi_dbm == -58
    assert wifi.link_speed_mbps == 72
    assert wifi.frequency_mhz == 2437
    assert wifi.saved_networks == ("Cafe-Beispiel", "Cafe-Backoffice")


@pytest.mark.parametrize(("scenario", "enabled"), [("no-network", False), ("fresh", True)])
def test_wifi_not_connected(scenario: str, enabled: bool) -> None:
    sh, _ = shell_for(scenario)

    wifi = parse_dumpsys_wifi(out(sh, "dumpsys wifi"))

    assert wifi.enabled is enabled
    assert wifi.connected is False
    assert wifi.ssid is None
    assert wifi.rssi_dbm is None
    assert wifi.saved_networks == ()


def test_cmd_wifi_list_networks() -> None:
    sh, _ = shell_for("activated")
    listing = out(sh, "cmd wifi list-networks")
    assert "Cafe-Beispiel" in listing and "Cafe-Backoffice" in listing
    assert out(shell_for("fresh")[0], "cmd wifi list-networks") == "No networks\n"


def test_diskstats_package_sizes_on_sdk_26_and_later() -> None:
    sh, state = shell_for("activated", "sunmi-p2")
    assert state.sdk >= 26

    stats = parse_diskstats(out(sh, "dumpsys diskstats"))

    assert stats.partitions["data"].free_kb == 9876543
    user_apps = {app.package for app in state.apps if not app.system}
    assert set(stats.app_data_sizes) == user_apps
    assert stats.app_data_sizes["com.sunmi.payment.service"] > 0
    assert stats.app_data_sizes["com.sunmi.mdm"] > 0
    assert set(stats.app_sizes) == user_apps


def test_diskstats_without_package_sizes_on_android_7() -> None:
    sh, state = shell_for("activated", "pax-a920-android7")
    assert state.sdk < 26

    stats = parse_diskstats(out(sh, "dumpsys diskstats"))

    assert "data" in stats.partitions
    assert stats.app_data_sizes == {}
    assert stats.app_sizes == {}


def test_device_owner_and_accounts() -> None:
    sh, _ = shell_for("activated", "pax-a920")

    owner = parse_device_owner(out(sh, "dumpsys device_policy"))
    accounts = parse_accounts(out(sh, "dumpsys account"))

    assert owner.device_owner == "com.pax.market.android.app"
    assert owner.device_owner_component == (
        "com.pax.market.android.app/.receiver.DeviceAdminReceiver"
    )
    assert accounts == [("com.pax.market.android.app.account", "merchant-0042@example.invalid")]


def test_no_device_owner_nor_accounts_when_fresh() -> None:
    sh, _ = shell_for("fresh", "pax-a920")
    assert parse_device_owner(out(sh, "dumpsys device_policy")).device_owner is None
    assert parse_accounts(out(sh, "dumpsys account")) == []


@pytest.mark.parametrize("profile", available_profiles())
def test_pm_list_packages(profile: str) -> None:
    sh, state = shell_for("activated", profile)

    everything = parse_pm_list_packages(out(sh, "pm list packages"))
    third_party = parse_pm_list_packages(out(sh, "pm list packages -3"))

    assert everything == [app.package for app in state.apps]
    assert third_party == [app.package for app in state.apps if not app.system]
    assert state.payment_package in third_party


def test_package_version() -> None:
    sh, _ = shell_for("activated", "pax-a920")
    dump = out(sh, "dumpsys package com.pax.market.android.app")
    assert parse_dumpsys_package_version(dump, "com.pax.market.android.app") == "8.6.1"
    missing = out(sh, "dumpsys package com.nope")
    assert parse_dumpsys_package_version(missing, "com.nope") is None


def test_ls_and_cat() -> None:
    sh, _ = shell_for("activated", "pax-a920")

    assert parse_ls(out(sh, "ls /sdcard/PAX")) == ["params"]
    assert out(sh, "cat /sdcard/PAX/params/merchant.xml") == '<merchant id="MID-0042"/>'
    missing = sh.run("ls /sdcard/nothing")
    assert missing.exit_code == 1
    assert "No such file or directory" in missing.stderr
    denied = sh.run("cat /data/data/com.pax.ipp.manager/shared_prefs/merchant.xml")
    assert denied.exit_code == 1
    assert "Permission denied" in denied.stderr


def test_misc_commands() -> None:
    sh, _ = shell_for()
    assert out(sh, "id").startswith("uid=2000(shell)")
    assert "Data-Free" not in out(sh, "df")
    assert "/storage/emulated" in out(sh, "df")
    assert out(sh, "echo hello world") == "hello world\n"
    assert parse_settings_value(out(sh, "settings get global adb_enabled")) == "1"
    assert out(sh, "dumpsys nosuchservice") == "Can't find service: nosuchservice\n"


# --- state changes -------------------------------------------------------------------------------


def test_pm_clear_empties_the_app() -> None:
    sh, state = shell_for("activated", "sunmi-p2")
    package = state.payment_package

    result = sh.run(f"pm clear {package}")

    assert result == ShellResult(0, "Success\n")
    app = state.app(package)
    assert app is not None and not app.has_data
    sizes = parse_diskstats(out(sh, "dumpsys diskstats")).app_data_sizes
    assert sizes[package] == 0
    assert sizes[state.mdm_package] > 0
    assert sh.run("pm clear com.not.installed").stdout == "Failed\n"
    assert sh.run("pm clear com.not.installed").exit_code == 1


def test_forget_network() -> None:
    sh, state = shell_for("activated")

    assert out(sh, "cmd wifi forget-network 0") == "Forget successful for netId 0\n"

    assert [n.ssid for n in state.wifi.saved] == ["Cafe-Backoffice"]
    wifi = parse_dumpsys_wifi(out(sh, "dumpsys wifi"))
    assert wifi.connected is False  # it was the connected network
    assert wifi.saved_networks == ("Cafe-Backoffice",)
    assert out(sh, "cmd wifi forget-network 5") == "Forget failed for netId 5\n"
    assert sh.run("cmd wifi forget-network abc").exit_code == 255


def test_rm_recursive_removes_a_directory() -> None:
    sh, state = shell_for("unsettled", "pax-a920")
    assert "/sdcard/PAX/batch/unsettled.json" in state.files

    refused = sh.run("rm /sdcard/PAX")
    assert refused.exit_code == 1
    assert "Is a directory" in refused.stderr
    assert out(sh, "rm -rf /sdcard/PAX") == ""

    assert not [path for path in state.files if path.startswith("/sdcard/PAX")]
    assert sh.run("ls /sdcard/PAX").exit_code == 1


def test_rm_of_a_file_and_of_nothing() -> None:
    sh, state = shell_for("activated")
    path = "/sdcard/Download/settlement-2026-10.csv"

    assert out(sh, f"rm {path}") == ""
    assert path not in state.files
    again = sh.run(f"rm {path}")
    assert again.exit_code == 1
    assert "No such file or directory" in again.stderr
    assert sh.run(f"rm -f {path}").exit_code == 0


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf /data",
        "rm /data",
        "rm -rf /data/data/com.example.payment",
        "rm -rf /system",
        "rm -rf /sdcard/../data",
    ],
)
def test_rm_of_data_and_system_is_refused(command: str) -> None:
    sh, state = shell_for("activated")
    before = (dict(state.files), {a.package: dict(a.data_files) for a in state.apps})

    result = sh.run(command)

    assert result.exit_code == 1
    # toybox: without -r a directory is refused before permissions matter
    assert ("Is a directory" if command == "rm /data" else "Permission denied") in result.stderr
    assert (state.files, {a.package: a.data_files for a in state.apps}) == before


# --- the shell itself ----------------------------------------------------------------------------


def test_unknown_command_is_127() -> None:
    sh, _ = shell_for()

    result = sh.run("frobnicate --all")

    assert result == ShellResult(127, "", "/system/bin/sh: frobnicate: inaccessible or not found\n")


def test_and_runs_the_second_only_after_success() -> None:
    sh, _ = shell_for()
    assert sh.run("echo a && echo b") == ShellResult(0, "a\nb\n")
    assert sh.run("true&&echo b") == ShellResult(0, "b\n")
    assert sh.run("false && echo b") == ShellResult(1)
    skipped = sh.run("frobnicate && echo b")
    assert skipped.exit_code == 127 and skipped.stdout == ""
    assert sh.run("false && echo b; echo c") == ShellResult(0, "c\n")


def test_semicolon_runs_both() -> None:
    sh, _ = shell_for()
    assert sh.run("echo a; echo b") == ShellResult(0, "a\nb\n")
    assert sh.run("echo a;echo b") == ShellResult(0, "a\nb\n")
    assert sh.run("false; echo b") == ShellResult(0, "b\n")
    assert sh.run("echo a; false").exit_code == 1
    mixed = sh.run("frobnicate; getprop ro.serialno")
    assert mixed.exit_code == 0
    assert mixed.stdout == "GPOS0001234567\n"
    assert "frobnicate" in mixed.stderr


def test_quoting() -> None:
    sh, _ = shell_for()
    assert sh.run("echo 'a; b' \"c && d\"") == ShellResult(0, "a; b c && d\n")
    # mksh's yyerror: the message after the shell's name, status 1
    assert sh.run("echo 'unterminated") == ShellResult(1, "", "/system/bin/sh: no closing quote\n")


def test_exit() -> None:
    sh, _ = shell_for()
    assert sh.run("exit 3").exit_code == 3
    assert sh.run("exit 300").exit_code == 300 & 0xFF
    assert sh.run("exit").exit_code == 0
    assert sh.run("exit 4; echo never") == ShellResult(4)
    assert sh.run("exit abc").exit_code == 2


def test_empty_command_line() -> None:
    sh, _ = shell_for()
    assert sh.run("") == ShellResult(0)
    assert sh.run("   ") == ShellResult(0)
    # an empty command before ";" is a syntax error in sh
    assert sh.run(" ; ") == ShellResult(1, "", "/system/bin/sh: syntax error: ';' unexpected\n")


def test_globs_expand_like_the_shell_and_hidden_files_need_their_own() -> None:
    files = {
        "/sdcard/M/a.txt": "1",
        "/sdcard/M/sub/b.txt": "2",
        "/sdcard/M/.hidden": "3",
        "/sdcard/Other/keep.txt": "4",
    }
    sh, state = shell_for("fresh", overrides={"files": files})

    assert out(sh, "ls -1p /sdcard/M") == "a.txt\nsub/\n"
    assert out(sh, "ls -1Ap /sdcard/M") == ".hidden\na.txt\nsub/\n"
    assert sh.run("rm -rf /sdcard/M/*").exit_code == 0
    assert set(state.files) == {"/sdcard/M/.hidden", "/sdcard/Other/keep.txt"}  # * skips dotfiles
    assert sh.run("rm -rf /sdcard/M/* /sdcard/M/.[!.]*").exit_code == 0
    assert set(state.files) == {"/sdcard/Other/keep.txt"}
