"""Tests for the Android (family "adb") entries of the model catalogue and their loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posdiag.drivers import catalogue as catalogue_module
from posdiag.drivers.adb.parsers import parse_getprop
from posdiag.drivers.catalogue import (
    ADB_ACTIVATION_KINDS,
    ADB_FACTORY_RESETS,
    ADB_WEIGHTS,
    ActivationRecipe,
    AdbMatch,
    AdbModelEntry,
    AdbWipe,
    Catalogue,
    CatalogueError,
    ModelEntry,
    _parse_catalogue,
    load_catalogue,
)

CATALOGUE = load_catalogue()
ADB = [m for m in CATALOGUE.models if m.family == "adb"]


def props(
    manufacturer: str | None = None, model: str | None = None, **extra: str
) -> dict[str, str]:
    out = dict(extra)
    if manufacturer is not None:
        out["ro.product.manufacturer"] = manufacturer
    if model is not None:
        out["ro.product.model"] = model
    return out


# --- the shipped entries -------------------------------------------------------------------------


def test_adb_entries_load() -> None:
    assert {m.id for m in ADB} >= {"android-generic", "pax-a920", "sunmi-p2"}
    assert all(isinstance(m, AdbModelEntry) for m in ADB)
    assert all(isinstance(m, ModelEntry) for m in ADB)  # family-agnostic code keeps working


def test_adb_entries_are_well_formed() -> None:
    for entry in ADB:
        assert isinstance(entry, AdbModelEntry)
        assert entry.serial_props, entry.id
        assert all(isinstance(p, str) and p for p in entry.serial_props)
        assert entry.wipe.factory_reset in ADB_FACTORY_RESETS
        assert all(path.startswith("/") for path in entry.merchant_paths)
        assert not set(entry.payment_apps) & set(entry.vendor_services), entry.id
        for recipe in entry.activation:
            assert recipe.kind in ADB_ACTIVATION_KINDS
            assert recipe.weight in ADB_WEIGHTS
            assert recipe.means
        # ZVT-only fields keep their defaults
        assert (entry.label_set, entry.vendor_extension, entry.factory_reset) == ("generic", "", "")
        # every model carries the generic evidence too (entries are complete on their own)
        assert {r.kind for r in entry.activation} >= {"device_owner", "account", "property"}


def test_exactly_one_generic_adb_entry() -> None:
    generic = [m for m in ADB if m.is_generic]
    assert [m.id for m in generic] == ["android-generic"]
    assert CATALOGUE.generic("adb").id == "android-generic"


def test_generic_entry() -> None:
    entry = CATALOGUE.generic("adb")
    assert isinstance(entry, AdbModelEntry)
    assert entry.match_names == ()
    assert entry.match == AdbMatch()
    assert entry.serial_props == ("ro.serialno", "ro.boot.serialno")
    assert entry.payment_apps == ()
    assert entry.wipe.factory_reset == "testharness"
    assert entry.verified is True


def test_pax_entry() -> None:
    entry = CATALOGUE.by_getprop(props("PAX", "A920"))
    assert entry.id == "pax-a920"
    assert entry.vendor == "PAX"
    assert entry.serial_props == ("ro.fac.sn", "ro.serialno")
    assert entry.match.manufacturer == ("PAX",)
    assert entry.match_names == ("A920", "A77", "A35")
    assert "com.pax.market.android.app" in entry.tms_apps
    assert "com.pax.paydroid" in entry.payment_apps
    assert "/sdcard/PAX/" in entry.merchant_paths
    assert entry.wipe == AdbWipe(
        factory_reset="vendor", clear_payment_apps=True, notes=entry.wipe.notes
    )
    assert entry.verified is False  # package names are leads until seen on a unit
    app_data = [r for r in entry.activation if r.kind == "app_data"]
    assert [r.package for r in app_data] == ["com.pax.market.android.app"]


def test_sunmi_entry() -> None:
    entry = CATALOGUE.by_getprop(props("SUNMI", "P2_PRO"))
    assert entry.id == "sunmi-p2"
    assert entry.serial_props == ("ro.sunmi.serial", "ro.serialno")
    assert "woyou.aidlservice.jiuiv5" in entry.vendor_services
    assert "woyou.aidlservice.jiuiv5" not in entry.payment_apps  # printer service
    assert "/sdcard/Sunmi/" in entry.merchant_paths
    assert entry.usb == ()


# --- matching by getprop -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (props("PAX", "A920"), "pax-a920"),
        (props("PAX", "A920Pro"), "pax-a920"),
        (props("pax", "a77"), "pax-a920"),
        (props("PAX", "A35"), "pax-a920"),
        (props(model="A920", **{"ro.product.brand": "PAX"}), "pax-a920"),  # brand alone
        (props("SUNMI", "P2_PRO"), "sunmi-p2"),
        (props("SUNMI", "P2 Pro"), "sunmi-p2"),
        (props("SUNMI", "P2"), "sunmi-p2"),
        (props("SUNMI", "V2s"), "sunmi-p2"),
        (props("Sunmi", "V2_PRO"), "sunmi-p2"),
        (props("PAX", "A80"), "pax-android"),  # unlisted PAX: still PAX serial property
        (props("SUNMI", "T2s"), "sunmi-android"),
        (props("Google", "Pixel 7"), "android-generic"),
        (props("Newland", "N910"), "newland-n910"),
        (props("Acme", "N910"), "android-generic"),  # the model name alone is not a vendor
        (props(None, "A920"), "android-generic"),  # a model name alone is not a vendor
        (props("Samsung", "P2"), "android-generic"),
        ({}, "android-generic"),
        (props("", ""), "android-generic"),
    ],
)
def test_by_getprop(values: dict[str, str], expected: str) -> None:
    assert CATALOGUE.by_getprop(values).id == expected


def test_by_getprop_reads_partition_properties_of_android_10_plus() -> None:
    values = {"ro.product.vendor.manufacturer": "PAX", "ro.product.system.model": "A35"}
    assert CATALOGUE.by_getprop(values).id == "pax-a920"


def test_by_getprop_from_a_getprop_listing() -> None:
    listing = "[ro.product.manufacturer]: [SUNMI]\n[ro.product.model]: [P2_PRO]\n"
    assert CATALOGUE.by_getprop(parse_getprop(listing)).id == "sunmi-p2"


# --- by_name and by_usb for ADB entries ----------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("A920",), "pax-a920"),
        (("A920Pro",), "pax-a920"),
        (("p2-pro",), "sunmi-p2"),
        ((None, "V2s"), "sunmi-p2"),
        (("Pixel",), "android-generic"),
        ((), "android-generic"),
        (("cVEND plug",), "android-generic"),  # ZVT names do not cross families
    ],
)
def test_by_name_for_adb(names: tuple[str | None, ...], expected: str) -> None:
    assert CATALOGUE.by_name("adb", *names).id == expected


def test_adb_names_do_not_leak_into_zvt() -> None:
    assert CATALOGUE.by_name("zvt", "A920").id == "zvt-generic"


@pytest.mark.parametrize("pid", [0x2200, 0x2205, 0x220A, 0x2210])
def test_by_usb_pax(pid: int) -> None:
    entry = CATALOGUE.by_usb(0x2FB8, pid)
    assert isinstance(entry, AdbModelEntry)
    assert entry.id == "pax-a920"


@pytest.mark.parametrize(("vid", "pid"), [(0x2FB8, 0x2211), (0x2FB8, 0x21FF), (0x18D1, 0x4EE7)])
def test_by_usb_unknown_android(vid: int, pid: int) -> None:
    assert CATALOGUE.by_usb(vid, pid) is None


def test_usb_ids_stay_unique_across_families() -> None:
    all_usb = [u for entry in (*CATALOGUE.models, *CATALOGUE.adapters) for u in entry.usb]
    assert all(re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{4}", u) for u in all_usb)
    assert len(all_usb) == len(set(all_usb))


# --- serial property order -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_id", "values", "expected"),
    [
        ("pax-a920", {"ro.fac.sn": "0821345678", "ro.serialno": "0123456789ABCDEF"}, "0821345678"),
        ("pax-a920", {"ro.serialno": "1850012345"}, "1850012345"),
        ("pax-a920", {"ro.fac.sn": " ", "ro.serialno": "1850012345"}, "1850012345"),
        ("sunmi-p2", {"ro.sunmi.serial": "V205P21A00123", "ro.serialno": "x"}, "V205P21A00123"),
        ("sunmi-p2", {"ro.serialno": "P2SN0001"}, "P2SN0001"),  # older Sunmi releases
        ("sunmi-p2", {"ro.serialno": "unknown"}, None),
        ("android-generic", {"ro.serialno": "0123456789ABCDEF", "ro.boot.serialno": "Z1"}, "Z1"),
        ("android-generic", {}, None),
    ],
)
def test_serial_from(entry_id: str, values: dict[str, str], expected: str | None) -> None:
    entry = next(m for m in ADB if m.id == entry_id)
    assert isinstance(entry, AdbModelEntry)
    assert entry.serial_from(values) == expected


# --- recipes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "actual", "expected"),
    [
        ("READY", "READY", True),
        ("READY", "ABSENT,READY", True),
        ("READY", "ready", True),
        ("READY", "ABSENT", False),
        ("READY", "", False),
        ("READY", None, False),
        ("", "anything", True),
        ("", "  ", False),
    ],
)
def test_property_recipe(value: str, actual: str | None, expected: bool) -> None:
    recipe = ActivationRecipe(kind="property", means="m", property="p", value=value)
    assert recipe.property_matches(actual) is expected


# --- loader errors for ADB entries ---------------------------------------------------------------


@pytest.fixture
def load_from(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make the (uncached) loader read catalogue files from tmp_path."""

    class Files:
        @staticmethod
        def files(_package: str) -> Path:
            return tmp_path

    monkeypatch.setattr(catalogue_module, "resources", Files)
    return tmp_path


def load_uncached() -> Catalogue:
    return _parse_catalogue.__wrapped__()


GOOD = """
[[model]]
id = "x"
vendor = "X"
model = "X1"
family = "adb"
serial_props = ["ro.x.sn"]

[model.match]
manufacturer = ["X"]
model = ["X1"]

[[model.activation]]
kind = "app_data"
package = "com.x.pay"
means = "configured"

[model.wipe]
factory_reset = "none"

[[model]]
id = "g"
vendor = ""
model = "Android terminal"
family = "adb"
"""


def test_loader_builds_adb_entries(load_from: Path) -> None:
    (load_from / "a.toml").write_text(GOOD, encoding="utf-8")
    catalogue = load_uncached()
    entry = catalogue.by_getprop(props("X", "X1-plus"))
    assert entry.id == "x"
    assert entry.match_names == ("X1",)  # defaulted from match.model
    assert entry.activation == (
        ActivationRecipe(kind="app_data", means="configured", package="com.x.pay"),
    )
    assert entry.wipe == AdbWipe(factory_reset="none")
    generic = catalogue.by_getprop({})
    assert (generic.id, generic.serial_props, generic.wipe.factory_reset) == (
        "g",
        ("ro.serialno",),
        "none",
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('serial_props = ["ro.x.sn"]', 'serial_props = "ro.x.sn"', "serial_props: expected a list"),
        ('serial_props = ["ro.x.sn"]', "label_set = 'feig'", "unknown keys label_set"),
        ('kind = "app_data"', 'kind = "magic"', "unknown kind 'magic'"),
        ('package = "com.x.pay"', 'path = "/x"', "kind 'app_data' needs package"),
        ('means = "configured"', 'means = ""', "says nothing in 'means'"),
        ('means = "configured"', 'means = "c"\nweight = "huge"', "unknown weight 'huge'"),
        ('means = "configured"', 'means = "c"\ncolour = "red"', "unknown keys colour"),
        ('factory_reset = "none"', 'factory_reset = "format"', "unknown factory_reset 'format'"),
        ('model = ["X1"]', 'model = "X1"', "match.model: expected a list"),
        ('model = ["X1"]', 'model = ["X1"]\nserial = ["y"]', "match: unknown keys serial"),
        ('serial_props = ["ro.x.sn"]', "verified = 'yes'", "verified: expected true or false"),
    ],
)
def test_malformed_adb_entries_are_catalogue_errors(
    load_from: Path, old: str, new: str, message: str
) -> None:
    assert old in GOOD
    (load_from / "bad.toml").write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CatalogueError, match=re.escape(message)):
        load_uncached()


def test_zvt_entries_are_unchanged_by_the_adb_loader(load_from: Path) -> None:
    zvt = '[[model]]\nid = "z"\nvendor = "Z"\nmodel = "Z1"\nfamily = "zvt"\nmatch_names = ["Z1"]\n'
    (load_from / "z.toml").write_text(zvt, encoding="utf-8")
    entry = load_uncached().by_name("zvt", "Z1")
    assert type(entry) is ModelEntry
    assert entry.is_generic is False
