"""The simulated Chinese-market Android POS (newland-n910): CNY, a Chinese shop, zh-CN locale.

The profile carries the market (``[merchant]``: currency, shop name, Wi-Fi names, exports); the
scenarios carry the story (activated, unsettled…), so the same ``unsettled`` scenario is a EUR
batch on a PAX A920 and a CNY one here. The whole path runs against it: the shell the drivers
parse, the catalogue entry that recognises it, ``posdiag check`` and ``posdiag wipe``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.drivers.adb.parsers import (
    parse_accounts,
    parse_dumpsys_wifi,
    parse_getprop,
    parse_ls,
    parse_pm_list_packages,
)
from posdiag.drivers.catalogue import AdbModelEntry, load_catalogue
from posdiag.drivers.i18n import set_language
from posdiag.drivers.text import clean_text
from posdiag.simulators.adb import state as adb_state
from posdiag.simulators.adb.shell import AndroidShell
from posdiag.simulators.adb.state import (
    MERCHANT_DEFAULTS,
    AdbScenarioError,
    available_profiles,
    load_android,
)

MODEL = "newland-n910"
MERCHANT = "深圳市福田区好又多便利店"
SSIDS = ("好又多便利店", "好又多-收银台")
ACCOUNT = "haoyouduo-0042@example.invalid"
EXPORT = "/sdcard/Download/好又多便利店-结算单-2026-10.csv"
BATCH = "/sdcard/cnpos/batch/unsettled.json"


def out(sh: AndroidShell, command: str) -> str:
    result = sh.run(command)
    assert result.exit_code == 0, result
    return result.stdout


# --- the state ---------------------------------------------------------------------------------


def test_the_profile_is_shipped() -> None:
    assert MODEL in available_profiles()


def test_chinese_locale_time_zone_and_operator() -> None:
    state = load_android("activated", MODEL)
    props = parse_getprop(out(AndroidShell(state), "getprop"))
    assert props["persist.sys.locale"] == "zh-CN"
    assert props["persist.sys.timezone"] == "Asia/Shanghai"
    assert props["gsm.sim.operator.numeric"] == "46000"
    assert props["gsm.operator.alpha"] == "中国移动"
    assert (props["ro.product.manufacturer"], props["ro.product.model"]) == ("Newland", "N910")


def test_the_unsettled_batch_is_in_cny_for_the_chinese_shop() -> None:
    state = load_android("unsettled", MODEL)
    batch = json.loads(out(AndroidShell(state), f"cat {BATCH}"))
    assert batch == {"count": 3, "total_cents": 4757, "currency": "CNY", "merchant": MERCHANT}
    assert state.wifi.ssid == SSIDS[0]
    assert state.accounts == [[ACCOUNT, "com.example.cnpos.tms.account"]]


def test_the_activated_unit_holds_chinese_merchant_data() -> None:
    state = load_android("activated", MODEL)
    sh = AndroidShell(state)
    wifi = parse_dumpsys_wifi(out(sh, "dumpsys wifi"))
    assert wifi.saved_networks == SSIDS
    assert wifi.ssid == SSIDS[0]
    assert parse_ls(out(sh, "ls -1Ap /sdcard/Download/")) == [EXPORT.rsplit("/", 1)[1]]
    assert out(sh, "cat /sdcard/cnpos/params/merchant.xml") == '<merchant id="999584054110042"/>'
    accounts = parse_accounts(out(sh, "dumpsys account"))
    assert accounts == [("com.example.cnpos.tms.account", ACCOUNT)]


def test_a_fresh_unit_holds_none_of_it() -> None:
    state = load_android("fresh", MODEL)
    assert state.files == {}
    assert state.wifi.saved == []
    assert state.accounts == []
    assert all(not app.data_files for app in state.apps)


@pytest.mark.parametrize("profile", ["pax-a920", "sunmi-p2", "android-generic"])
def test_other_profiles_keep_their_european_merchant(profile: str) -> None:
    state = load_android("unsettled", profile)
    (batch_path,) = [path for path in state.files if path.endswith("batch/unsettled.json")]
    assert json.loads(state.files[batch_path])["currency"] == "EUR"
    assert state.wifi.ssid == MERCHANT_DEFAULTS["ssid"] == "Cafe-Beispiel"
    activated = load_android("activated", profile)
    assert "/sdcard/Download/settlement-2026-10.csv" in activated.files
    assert [n.ssid for n in activated.wifi.saved] == ["Cafe-Beispiel", "Cafe-Backoffice"]


def _profile_with_merchant(monkeypatch: pytest.MonkeyPatch, merchant: Any) -> None:
    """The shipped profile's data with another ``[merchant]`` table (as a broken file would)."""
    real = adb_state._load

    def load(package: str, name: str, kind: str) -> dict[str, Any]:
        data = real(package, name, kind)
        if package == adb_state.PROFILES:
            data["merchant"] = merchant
        return data

    monkeypatch.setattr(adb_state, "_load", load)


@pytest.mark.parametrize(
    ("merchant", "message"),
    [
        ({"currency": "CNY", "shop": "x"}, "unknown keys shop"),
        ({"currency": 156}, "currency: expected a non-empty string"),
        ({"ssid": ""}, "ssid: expected a non-empty string"),
        ("CNY", "expected a table"),
        ({"merchant_name": '好又多"便利店'}, "merchant_name: none of"),  # would break the JSON
    ],
)
def test_a_bad_merchant_table_is_refused(
    monkeypatch: pytest.MonkeyPatch, merchant: Any, message: str
) -> None:
    _profile_with_merchant(monkeypatch, merchant)
    with pytest.raises(AdbScenarioError, match=message):
        load_android("unsettled", MODEL)


# --- the catalogue -------------------------------------------------------------------------------


def test_the_catalogue_recognises_the_unit_and_its_apps() -> None:
    state = load_android("activated", MODEL)
    entry = load_catalogue().by_getprop(state.properties())
    assert isinstance(entry, AdbModelEntry)
    assert (entry.id, entry.vendor) == ("newland-n910", "Newland")
    assert entry.verified is False  # placeholder package names: leads, not facts
    assert state.payment_package in entry.payment_apps
    assert state.mdm_package in entry.tms_apps
    system = [app.package for app in state.apps if app.system]
    assert system and set(system) <= set(entry.vendor_services)
    assert f"{state.vendor_dir}/batch/unsettled.json" in entry.pending_files
    assert f"{state.vendor_dir}/" in entry.merchant_paths
    installed = parse_pm_list_packages(out(AndroidShell(state), "pm list packages"))
    assert set(entry.payment_apps) <= set(installed)


def test_chinese_device_text_survives_clean_text() -> None:
    for text in (MERCHANT, *SSIDS, "中国移动", EXPORT):
        assert clean_text(text) == text


# --- posdiag check and wipe ----------------------------------------------------------------------


@pytest.fixture
def invoke(isolated_home: Path) -> Iterator[Any]:
    """The CLI in process, in a private home; logging and the language given back afterwards."""
    root = logging.getLogger()
    level = root.level

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)

    yield run
    for handler in list(root.handlers):
        if handler.get_name() == "posdiag":
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
    set_language("en")


def test_check_reads_the_cny_batch_and_masks_the_merchant(invoke: Any) -> None:
    result = invoke("--lang", "en", "check", "--json", f"adb+sim://unsettled?model={MODEL}")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["device"]["vendor"] == "Newland" and data["device"]["model"] == "N910"
    assert data["verdict"]["status"] == "wipe_required"
    assert data["merchant_data"]["pending_transactions"] == {
        "count": 3,
        "total_cents": 4757,
        "currency": "CNY",
        "undelivered": False,
    }
    assert data["merchant_data"]["network_profiles"] == ["好又多… (6 chars)"]
    assert data["network"] is not None
    text = result.stdout
    for secret in (SSIDS[0], ACCOUNT, MERCHANT, "999584054110042"):
        assert secret not in text


@pytest.mark.parametrize(("lang", "amount"), [("zh-CN", "¥47.57"), ("en", "CN¥47.57")])
def test_check_shows_the_money_in_yuan(invoke: Any, lang: str, amount: str) -> None:
    result = invoke("--lang", lang, "check", f"adb+sim://unsettled?model={MODEL}")
    assert result.exit_code == 1, result.output
    assert amount in result.stdout
    assert "CNY 47.57" not in result.stdout
    assert "中国移动" in result.stdout


def test_wipe_erases_the_chinese_merchant_data(invoke: Any, isolated_home: Path) -> None:
    address = f"adb+sim://activated?model={MODEL}"
    result = invoke("--lang", "en", "wipe", address, "--yes", "--operator", "X", "--json")
    summary = json.loads(result.stdout)
    # the TMS device owner and its account stay (released in the acquirer's platform)
    assert summary["outcome"] == "erased_with_exceptions", summary
    assert result.exit_code == 1
    steps = {step["name"]: step for step in summary["steps"]}
    for name in (
        "clear:com.example.cnpos.payment",
        "forget_wifi",
        "delete:/sdcard/cnpos/",
        "delete:/sdcard/Download/",
    ):
        assert steps[name]["status"] == "done" and steps[name]["verified"] is True, steps[name]
    # "verified": each step read the unit back (each adb+sim:// address is a fresh unit, so a
    # second check would not see this one)
    certificate = json.loads(Path(summary["certificate"]).read_text(encoding="utf-8"))
    assert "N910" in json.dumps(certificate, ensure_ascii=False)
