"""TUSN and label parsing: what a scanner pastes becomes a TerminalKey or one TusnError line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.backend.model import TerminalKey
from posdiag.drivers.backend.tusn import TusnError, parse_serial, parse_tusn, split_label
from posdiag.drivers.errors import PosdiagError

TUSN = "00005702280117638929"  # the 易生 sample value quoted in the reference (§3.2)
SN = "1170053001"


def test_tusn_error_is_a_posdiag_value_error() -> None:
    assert issubclass(TusnError, PosdiagError) and issubclass(TusnError, ValueError)


@pytest.mark.parametrize("text", [TUSN, f"  {TUSN}\n", "AB12CD34", "x" * 64, "p3100A1B2C3"])
def test_valid_tusns(text: str) -> None:
    assert parse_tusn(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1234567", "too short"),
        ("x" * 65, "at most 64"),
        ("0000-5702-2801", "letters and digits"),
        ("00005702 280117638929", "letters and digits"),
        ("０００５７０２２８０１", "letters and digits"),  # full-width digits
        ("TUSN١٢٣٤٥٦٧٨", "letters and digits"),  # Arabic-Indic digits are not ASCII
        (None, "text"),
        (12345678, "text"),
    ],
)
def test_invalid_tusns_say_why(text: object, fragment: str) -> None:
    with pytest.raises(TusnError) as caught:
        parse_tusn(text)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_hostile_text_is_not_echoed_raw() -> None:
    with pytest.raises(TusnError) as caught:
        parse_tusn("\x1b[2J\u202eABCDEFGH")
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (SN, TerminalKey(serial=SN)),
        (f"SN:{SN}", TerminalKey(serial=SN)),
        (f"sn={SN}", TerminalKey(serial=SN)),
        (f"S/N: {SN}", TerminalKey(serial=SN)),
        (f"TUSN:{TUSN}", TerminalKey(tusn=TUSN)),
        (f"tusn：{TUSN}", TerminalKey(tusn=TUSN)),
        (f"SN:{SN} TUSN:{TUSN}", TerminalKey(SN, TUSN)),
        (f"TUSN:{TUSN};SN:{SN}", TerminalKey(SN, TUSN)),
        (f"SN: {SN} | TUSN: {TUSN}", TerminalKey(SN, TUSN)),
        (f"{SN},{TUSN}", TerminalKey(SN, TUSN)),
        (f"{SN}，{TUSN}", TerminalKey(SN, TUSN)),
        (f"TUSN:{TUSN} {SN}", TerminalKey(SN, TUSN)),
        (f"  SERIAL:{SN}\t\n", TerminalKey(serial=SN)),
    ],
)
def test_split_label_forms(text: str, key: TerminalKey) -> None:
    assert split_label(text) == key


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        (" ,;| ", "empty"),
        ("SN:", "no value"),
        (f"SN:{SN} SN:{SN}", "two serials"),
        (f"TUSN:{TUSN} TUSN:{TUSN}", "two TUSNs"),
        (f"{SN} {TUSN} EXTRA123", "more than"),
        (f"IMEI:{SN}", "unknown label"),
        (f"SN:{SN} TUSN:123", "too short"),
        ("SN:ABC/123", "serial number"),
        ("x" * 600, "longer than"),
        (b"SN:1", "text"),
    ],
)
def test_split_label_refusals(text: object, fragment: str) -> None:
    with pytest.raises(TusnError) as caught:
        split_label(text)
    assert fragment in str(caught.value)


def test_serial_rules() -> None:
    assert parse_serial(" A920-0001 ") == "A920-0001"
    with pytest.raises(TusnError, match="at most 50"):
        parse_serial("1" * 51)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_parse_tusn_never_crashes_on_any_unicode(text: str) -> None:
    try:
        value = parse_tusn(text)
    except TusnError as exc:
        assert "\n" not in str(exc)
        return
    assert value == text.strip()
    assert 8 <= len(value) <= 64 and value.isascii() and value.isalnum()


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120))
def test_split_label_never_crashes_on_any_unicode(text: str) -> None:
    try:
        key = split_label(text)
    except TusnError:
        return
    assert key.serial or key.tusn
    if key.tusn:
        assert parse_tusn(key.tusn) == key.tusn
    if key.serial:
        assert parse_serial(key.serial) == key.serial


ALNUM = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=8, max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    serial=ALNUM,
    tusn=ALNUM,
    separator=st.sampled_from([" ", ",", ";", "|", " | ", "，", "；", "\t"]),
    serial_first=st.booleans(),
)
def test_labelled_pairs_round_trip(
    serial: str, tusn: str, separator: str, serial_first: bool
) -> None:
    parts = [f"SN:{serial}", f"TUSN:{tusn}"]
    if not serial_first:
        parts.reverse()
    assert split_label(separator.join(parts)) == TerminalKey(serial, tusn)
