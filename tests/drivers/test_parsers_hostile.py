"""Every parser of device text takes any Unicode: no crash, and only clean text comes out.

Issue 10: ``int('²')`` after ``str.isdigit()`` crashed a wipe. These property tests feed each
parser arbitrary text (control characters, escape sequences, superscript and Arabic-Indic
digits, NUL, very long lines) and require that it returns (the ADB parsers are also checked
without their ``_tolerant`` safety net, so a swallowed exception still fails here), that only the
documented typed errors escape the byte decoders, and that every string in a result is clean.
"""

from __future__ import annotations

import contextlib
import dataclasses
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdiag.drivers.adb import parsers
from posdiag.drivers.catalogue import load_catalogue
from posdiag.drivers.errors import ProtocolError, UnsupportedError
from posdiag.drivers.zvt.payloads import FeigSystemInfo, decode_status_completion, decode_totals
from posdiag.drivers.zvt.printout import available_label_sets, decode_print_text, parse_printout

NASTY = [
    "²",
    "٣",
    "１２",
    "\x1b[2J",
    "\x1b]0;pwned\x07",
    "\x00",
    "\u202e",
    "\u200b",
    "\x85",
    "\r\r\n",
    "level: 8²",
    "voltage: ٤٠١٢",
    "[ro.build.version.sdk]: [3²]",
    '  ID: ² SSID: "x"',
    "Data-Free: ²K / 9K total = 1% free",
    "mServiceState={mVoiceRegState=²(IN_SERVICE)}",
    "Batteriespannung (V): 3,1²",
    "Modultemperatur (C): ٤٦.٨",
    "Terminal-ID 1234567²",
    'Package Names: ["a"]\nApp Data Sizes: [²]',
]
device_text = st.lists(
    st.one_of(
        st.sampled_from(NASTY),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
        st.just("W" * 5000),
    ),
    max_size=15,
).map(lambda parts: "\n".join(parts))

ADB_PARSERS: dict[str, Callable[[str], Any]] = {
    "getprop": parsers.parse_getprop,
    "settings": parsers.parse_settings_value,
    "battery": parsers.parse_dumpsys_battery,
    "telephony": parsers.parse_telephony_registry,
    "wifi": parsers.parse_dumpsys_wifi,
    "diskstats": parsers.parse_diskstats,
    "packages": parsers.parse_pm_list_packages,
    "package version": lambda text: parsers.parse_dumpsys_package_version(text, "com.example"),
    "device owner": parsers.parse_device_owner,
    "accounts": parsers.parse_accounts,
    "ls": parsers.parse_ls,
    "ls error": parsers.ls_error,
}


def strings(value: object) -> list[str]:
    """Every string inside a parser's result."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in strings(getattr(value, f.name))]
    if isinstance(value, tuple | list | set | frozenset):
        return [s for item in value for s in strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    return []


def assert_clean(result: object) -> None:
    for text in strings(result):
        assert "\x1b" not in text, repr(text)
        assert not any(unicodedata.category(c) in ("Cc", "Cs", "Cf") for c in text), repr(text)


def numbers(value: object) -> list[float]:
    """Every int/float inside a result: they must be real numbers, not digits taken on trust."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [n for f in dataclasses.fields(value) for n in numbers(getattr(value, f.name))]
    if isinstance(value, tuple | list):
        return [n for item in value for n in numbers(item)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    return []


@pytest.mark.parametrize("name", sorted(ADB_PARSERS))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(text=device_text)
def test_adb_parsers_take_any_text(name: str, text: str) -> None:
    parser = ADB_PARSERS[name]
    raw = getattr(parser, "__wrapped__", parser)  # without the safety net: no exception at all
    result = raw(text)
    assert_clean(result)
    assert parser(text) == result


@pytest.mark.parametrize("name", sorted(ADB_PARSERS))
def test_adb_parsers_take_every_nasty_line_at_once(name: str) -> None:
    parser = ADB_PARSERS[name]
    assert_clean(getattr(parser, "__wrapped__", parser)("\n".join(NASTY)))


@pytest.mark.parametrize("line", ["level: 8²", "level: ٨٧", "level: １２", "voltage: ٤٠١٢"])
def test_odd_digits_are_not_numbers(line: str) -> None:
    # "²" and "٣" pass str.isdigit(); int() refuses the first and misreads the second.
    battery = parsers.parse_dumpsys_battery.__wrapped__(line)  # type: ignore[attr-defined]
    assert (battery.level, battery.voltage_mv) == (None, None)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(text=device_text, vendor=st.sampled_from([None, *available_label_sets()]))
def test_printout_parser_takes_any_text(text: str, vendor: str | None) -> None:
    facts = parse_printout(text.split("\n"), vendor=vendor)
    assert_clean(facts)


def test_printout_reads_no_number_from_odd_digits() -> None:
    facts = parse_printout(
        ["Batteriespannung (V): 3,1²", "Modultemperatur (C): ٤٦.٨"], vendor="feig"
    )
    assert facts.battery_voltage_mv is None
    assert facts.temperature_c is None


@given(st.binary(max_size=300))
def test_zvt_byte_decoders_raise_only_typed_errors(data: bytes) -> None:
    assert_clean_or_typed(lambda: decode_print_text(data))
    for decode in (decode_status_completion, decode_totals, FeigSystemInfo.decode):
        with contextlib.suppress(ProtocolError):
            decode(data)


def assert_clean_or_typed(call: Callable[[], object]) -> None:
    with contextlib.suppress(ProtocolError, UnsupportedError):
        call()


@settings(max_examples=60)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "ro.product.model",
                "ro.product.brand",
                "ro.product.manufacturer",
                "ro.build.version.sdk",
                "ro.serialno",
                "ro.fac.sn",
                "ro.sunmi.serial",
            ]
        ),
        device_text,
        max_size=7,
    ),
    device_text,
)
def test_catalogue_matches_any_text(props: dict[str, str], name: str) -> None:
    catalogue = load_catalogue()
    entry = catalogue.by_getprop(props)
    entry.serial_from(props)
    catalogue.by_name("zvt", name, None)
