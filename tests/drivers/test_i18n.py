"""Choosing the language, and the locale's way with money, numbers and dates."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from posdiag.drivers import i18n
from posdiag.drivers.i18n import (
    _,
    format_datetime,
    format_decimal,
    format_money,
    language_from_environment,
    ngettext,
    normalise_language,
    set_language,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zh-CN", "zh_CN"),
        ("zh_CN.UTF-8", "zh_CN"),
        ("zh_CN.utf8@pinyin", "zh_CN"),
        ("zh", "zh_CN"),
        ("zh_TW.UTF-8", "zh_CN"),  # Simplified is what posdiag has: better than English
        ("en_GB.UTF-8", "en"),
        ("de_DE.UTF-8", "en"),
        ("C", None),
        ("C.UTF-8", None),
        ("POSIX", None),
        ("", None),
        (None, None),
    ],
)
def test_locale_names_choose_a_catalogue(text: str | None, expected: str | None) -> None:
    assert normalise_language(text) == expected


def test_the_environment_is_read_in_gettext_order() -> None:
    assert language_from_environment({"LANG": "zh_CN.UTF-8"}) == "zh_CN"
    assert language_from_environment({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert language_from_environment({"LC_MESSAGES": "zh_CN", "LANG": "en_US"}) == "zh_CN"
    assert language_from_environment({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}) == "zh_CN"
    assert language_from_environment({"LANGUAGE": "fr:zh_CN"}) == "en"
    assert language_from_environment({}) == "en"


def test_a_sentence_and_a_count_in_chinese_and_back() -> None:
    set_language("zh_CN")
    assert _("Ledger") == "台账"
    assert ngettext("{count} problem", "{count} problems", 2).format(count=2) == "2 个问题"
    set_language("en")
    assert _("Ledger") == "Ledger"
    assert ngettext("{count} problem", "{count} problems", 1).format(count=1) == "1 problem"


def test_an_edited_catalogue_wins_over_a_stale_compiled_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "zh_CN" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    source = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "posdiag.po"
    (folder / "posdiag.mo").write_bytes(b"not a catalogue")
    po = folder / "posdiag.po"
    po.write_bytes(source.read_bytes())
    os.utime(folder / "posdiag.mo", (1, 1))  # compiled long before the .po was edited
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    set_language("zh_CN")
    assert _("Ledger") == "台账"


@pytest.mark.parametrize(
    ("lang", "currency", "expected"),
    [
        ("zh_CN", "CNY", "¥47.57"),
        ("zh_CN", "EUR", "€47.57"),
        ("en", "EUR", "€47.57"),
        ("en", "CNY", "CN¥47.57"),  # CLDR: in English, the yuan is written CN¥
        ("en", None, "47.57"),
        ("en", "X!Y", "47.57"),
    ],
)
def test_money_in_the_terminals_currency(
    lang: str, currency: str | None, expected: str
) -> None:
    set_language(lang)
    assert format_money(Decimal("47.57"), currency) == expected


@pytest.mark.parametrize("amount", [Decimal("1e40"), Decimal("NaN"), float("inf"), 10**60])
def test_numbers_no_locale_writes_are_shown_not_raised(amount: object) -> None:
    assert format_money(amount, "CNY")  # type: ignore[arg-type]
    assert format_decimal(amount, 2)  # type: ignore[arg-type]


def test_dates_in_the_readers_locale() -> None:
    set_language("zh_CN")
    assert format_datetime("2026-12-05T09:30:00Z") == "2026年12月5日 09:30:00 UTC"
    set_language("en")
    assert format_datetime("2026-12-05T09:30:00Z") == "5 Dec 2026, 09:30:00 UTC"
    assert format_datetime("not a date \x1b[31m") == "not a date \x1b[31m"  # shown, cleaned later
    assert format_datetime(None) == ""
