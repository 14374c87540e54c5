"""Tests for posdiag.drivers.catalogue: the shipped TOML, lookups by name and USB ID, fallback."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from posdiag.drivers import catalogue as catalogue_module
from posdiag.drivers.catalogue import (
    AdapterEntry,
    Catalogue,
    CatalogueError,
    ModelEntry,
    _parse_catalogue,
    load_catalogue,
)
from posdiag.drivers.errors import PosdiagError

CATALOGUE = load_catalogue()


# --- the shipped catalogue -----------------------------------------------------------------------


def test_loads_and_is_cached() -> None:
    assert isinstance(CATALOGUE, Catalogue)
    assert load_catalogue() is CATALOGUE
    assert {m.id for m in CATALOGUE.models} >= {
        "feig-cvend-plug",
        "feig-cvend-box",
        "ingenico-move5000",
        "ingenico-desk5000",
        "ingenico-desk3500",
        "verifone-vx820",
        "zvt-generic",
    }
    assert {a.name for a in CATALOGUE.adapters} >= {"FTDI FT232", "Prolific PL2303"}


def test_entries_are_well_formed() -> None:
    ids = [m.id for m in CATALOGUE.models]
    assert len(ids) == len(set(ids))
    usb_pattern = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")
    all_usb = [u for entry in (*CATALOGUE.models, *CATALOGUE.adapters) for u in entry.usb]
    assert all(usb_pattern.match(u) for u in all_usb)
    assert len(all_usb) == len(set(all_usb))  # one USB ID, one meaning
    labels = resources.files("posdiag.drivers.zvt.labels")
    for model in CATALOGUE.models:
        assert isinstance(model.match_names, tuple)
        assert isinstance(model.usb, tuple)
        assert model.family in ("zvt", "adb", "nexo")
        if model.family != "zvt":
            continue
        assert (labels / f"{model.label_set}.toml").is_file(), model.id
        assert model.vendor_extension in ("", "feig")
        assert model.factory_reset in ("", "feig")


def test_exactly_one_generic_entry_per_family() -> None:
    generic = [m for m in CATALOGUE.models if m.family == "zvt" and not m.match_names]
    assert len(generic) == 1


def test_feig_entry() -> None:
    entry = CATALOGUE.by_name("zvt", "cVEND plug")
    assert (entry.id, entry.vendor, entry.model) == (
        "feig-cvend-plug",
        "FEIG ELECTRONIC",
        "cVEND plug",
    )
    assert (entry.label_set, entry.vendor_extension, entry.factory_reset) == (
        "feig",
        "feig",
        "feig",
    )
    assert (entry.baud, entry.tcp_port) == (9600, 22000)


# --- by_name -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("cVEND plug",), "feig-cvend-plug"),
        (("CVEND PLUG",), "feig-cvend-plug"),
        (("  cVEND box  ",), "feig-cvend-box"),
        (("cVEND plug+ rev.2",), "feig-cvend-plug"),
        (("Move5000",), "ingenico-move5000"),
        (("Move/5000",), "ingenico-move5000"),
        (("Desk/3500",), "ingenico-desk3500"),
        (("VX 820",), "verifone-vx820"),
        ((None, "cVEND box"), "feig-cvend-box"),
        (("unknown thing", "Desk5000"), "ingenico-desk5000"),
    ],
)
def test_by_name(names: tuple[str | None, ...], expected: str) -> None:
    assert CATALOGUE.by_name("zvt", *names).id == expected


@pytest.mark.parametrize("names", [(), (None,), ("",), ("Some Terminal 9000",), ("plug",)])
def test_unknown_names_fall_back_to_the_generic_entry(names: tuple[str | None, ...]) -> None:
    entry = CATALOGUE.by_name("zvt", *names)
    assert entry.id == "zvt-generic"
    assert entry == CATALOGUE.generic("zvt")
    assert (entry.vendor, entry.model, entry.match_names) == ("", "ZVT terminal", ())
    assert (entry.label_set, entry.factory_reset) == ("generic", "")
    assert (entry.baud, entry.tcp_port) == (9600, 20007)


def test_unknown_family_has_no_generic_entry() -> None:
    with pytest.raises(CatalogueError, match="no generic sdi entry"):
        CATALOGUE.generic("sdi")
    with pytest.raises(CatalogueError):
        CATALOGUE.by_name("sdi", "cVEND plug")  # names only match within the family
    # a ZVT name never identifies an Android model: the family's generic entry answers
    assert CATALOGUE.by_name("adb", "cVEND plug").id == "android-generic"
    assert issubclass(CatalogueError, PosdiagError)


@pytest.mark.parametrize("name", [None, "", "   "])
def test_matches_name_rejects_empty(name: str | None) -> None:
    assert not CATALOGUE.by_name("zvt", "cVEND plug").matches_name(name)


# --- by_usb --------------------------------------------------------------------------------------


def test_by_usb_finds_terminals() -> None:
    entry = CATALOGUE.by_usb(0x0B00, 0x0052)
    assert isinstance(entry, ModelEntry)
    assert entry.id == "ingenico-move5000"
    entry = CATALOGUE.by_usb(0x11CA, 0x0219)
    assert isinstance(entry, ModelEntry)
    assert entry.id == "verifone-vx820"


def test_by_usb_finds_adapters() -> None:
    entry = CATALOGUE.by_usb(0x0403, 0x6001)
    assert isinstance(entry, AdapterEntry)
    assert entry.name == "FTDI FT232"
    entry = CATALOGUE.by_usb(0x1A86, 0x7523)
    assert isinstance(entry, AdapterEntry)
    assert entry.name == "WCH CH340"


@pytest.mark.parametrize(("vid", "pid"), [(0x1234, 0x5678), (0x0B00, 0x0000), (0, 0)])
def test_by_usb_unknown_is_none(vid: int, pid: int) -> None:
    assert CATALOGUE.by_usb(vid, pid) is None


# --- loading errors (a packaging bug must be loud) -----------------------------------------------


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


MINIMAL = """
[[model]]
id = "x"
vendor = "X"
model = "X1"
family = "zvt"
match_names = ["X1"]
usb = ["abcd:0001"]

[[model]]
id = "g"
vendor = ""
model = "ZVT terminal"
family = "zvt"

[[adapter]]
name = "A"
usb = ["abcd:0002"]
"""


def test_loader_reads_every_toml_and_ignores_other_files(load_from: Path) -> None:
    (load_from / "a.toml").write_text(MINIMAL, encoding="utf-8")
    (load_from / "b.toml").write_text(
        '[[model]]\nid = "y"\nvendor = "Y"\nmodel = "Y1"\nfamily = "zvt"\nmatch_names = ["Y1"]\n',
        encoding="utf-8",
    )
    (load_from / "notes.txt").write_text("not = [ toml", encoding="utf-8")
    catalogue = load_uncached()
    assert [m.id for m in catalogue.models] == ["x", "g", "y"]
    assert catalogue.by_name("zvt", "y1").id == "y"
    assert catalogue.by_name("zvt", "z").id == "g"
    assert catalogue.models[0].usb == ("abcd:0001",)
    assert isinstance(catalogue.by_usb(0xABCD, 0x0002), AdapterEntry)
    assert load_catalogue() is CATALOGUE  # the cached shipped catalogue is untouched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[model]\n", "catalogue bad.toml"),
        (MINIMAL.replace('id = "x"', 'id = "x"\ncolour = "red"'), "unknown keys colour"),
        ('[[model]]\nid = "only-id"\n', "bad.toml model #1"),
        ('[[adapter]]\nname = "A"\nusb = ["x"]\nspeed = 1\n', "bad.toml adapter #1"),
    ],
)
def test_malformed_files_are_catalogue_errors(load_from: Path, text: str, message: str) -> None:
    (load_from / "bad.toml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError, match=re.escape(message)):
        load_uncached()
