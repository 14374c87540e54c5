"""clean_text and csv_cell: the one sanitiser for text a terminal said.

Property tests: whatever goes in, what comes out holds no control character, no escape, no bidi
override or invisible format character, is at most ``limit`` long, is stable under a second
cleaning, and the function never raises. Examples pin the rules a person can read.
"""

from __future__ import annotations

import dataclasses
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.model import Evidence, Firmware, Identity
from posdiag.drivers.text import ELLIPSIS, REPLACEMENT, clean_record, clean_text, cleaned, csv_cell

HOSTILE_PIECES = [
    "\x1b[2J",
    "\x1b[31m",
    "\x1b]0;pwned\x07",
    "\x1b]8;;http://x\x1b\\",
    "\x1bP1$r\x1b\\",
    "\x9b31m",
    "\x1b",
    "\x1b[",
    "\x00",
    "\x07",
    "\x7f",
    "\x85",
    "\u202e",
    "\u2066",
    "\u200b",
    "\ufeff",
    "\u2028",
    "²",
    "٣",
    "=cmd|' /C calc'!A0",
    "\ud800",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=20)), max_size=12
).map("".join)


def assert_safe(text: str) -> None:
    for ch in text:
        category = unicodedata.category(ch)
        assert category not in ("Cc", "Cs", "Cf", "Zl", "Zp"), repr(text)
    assert "\x1b" not in text


@settings(max_examples=300)
@given(hostile_text, st.integers(min_value=1, max_value=300))
def test_output_is_always_safe_bounded_and_idempotent(value: str, limit: int) -> None:
    out = clean_text(value, limit)
    assert_safe(out)
    assert len(out) <= limit
    assert clean_text(out, limit) == out


@given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text())))
def test_any_value_is_accepted(value: object) -> None:
    assert_safe(clean_text(value))


def test_a_broken_str_does_not_raise() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert clean_text(Broken()) == "<unprintable Broken>"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[2J\x1b[31mRED\x1b[0m", "RED"),
        ("\x1b]0;pwned\x07title", "title"),
        ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
        ("\x1b(Bx", "x"),
        ("serial\x00", "serial" + REPLACEMENT),
        ("4\u202e321", "4" + REPLACEMENT + "321"),
        ("zero\u200bwidth", "zerowidth"),
        ("line\nbreak\ttab", "line break tab"),
        ("²٣", "²٣"),  # odd digits are text; parsers must not take them for numbers
        (b"bytes\xff", "bytes" + REPLACEMENT),
        ("lone\ud800", "lone" + REPLACEMENT),
        ("\x1b[", ""),
    ],
)
def test_examples(raw: object, clean: str) -> None:
    assert clean_text(raw) == clean


def test_long_text_is_cut_with_an_ellipsis() -> None:
    out = clean_text("W" * 1_000_000, 10)
    assert out == "W" * 9 + ELLIPSIS
    assert clean_text("short", 10) == "short"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", " =", "＝"])
def test_csv_cell_neutralises_formulas(start: str) -> None:
    cell = csv_cell(start + "1+1")
    assert cell.startswith("'")
    assert csv_cell(cell) == cell


def test_csv_cell_keeps_plain_text_and_cleans_it() -> None:
    assert csv_cell("PAX A920") == "PAX A920"
    assert csv_cell("\x1b[31m=HYPERLINK()") == "'=HYPERLINK()"


@given(hostile_text)
def test_csv_cell_is_safe(value: str) -> None:
    cell = csv_cell(value)
    assert_safe(cell)
    assert cell[:1] not in ("=", "+", "-", "@")


def test_clean_record_walks_frozen_records() -> None:
    identity = Identity(vendor="PAX\x1b[2J", model="A920\u202e", serial="X" * 1000)
    cleaned_identity = clean_record(identity)
    assert cleaned_identity.vendor == "PAX"
    assert cleaned_identity.model == "A920" + REPLACEMENT
    assert cleaned_identity.serial is not None and len(cleaned_identity.serial) == 512
    firmware = clean_record(Firmware({"app\x1b[1m": "1.0\x00"}))
    assert firmware.components == {"app": "1.0" + REPLACEMENT}
    evidence = clean_record((Evidence("a\x07", "b"),))
    assert evidence == (Evidence("a" + REPLACEMENT, "b"),)
    assert dataclasses.is_dataclass(cleaned_identity)


def test_cleaned_decorator() -> None:
    @cleaned
    def probe() -> Identity:
        return Identity(model="\x1b]0;x\x07M")

    assert probe().model == "M"
