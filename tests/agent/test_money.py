"""Unsettled money in the terminal's currency, written the way the reader's language writes it.

A CNY terminal's open batch reads ``¥47.57`` to a Chinese reader (``CN¥47.57`` in English, where
a bare ``¥`` is the yen), a EUR one ``€47.57`` in both; what the terminal sent stays in the JSON
exactly as it was (minor units and the code), because machines read it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posdiag.agent.policy import decide, load_policy
from posdiag.agent.report import DeviceReport, money_text, to_json
from posdiag.drivers.i18n import set_language
from posdiag.drivers.model import Identity, MerchantData, PendingTransactions


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    yield
    set_language("en")


def money(total_cents: int, currency: str | None, lang: str) -> str:
    set_language(lang)
    return money_text(PendingTransactions(3, total_cents, currency))


@pytest.mark.parametrize(
    ("currency", "lang", "expected"),
    [
        ("CNY", "zh_CN", "¥47.57"),
        ("CNY", "en", "CN¥47.57"),
        ("EUR", "en", "€47.57"),
        ("EUR", "zh_CN", "€47.57"),
        ("cny", "zh_CN", "¥47.57"),  # a lower-case code is still the currency
        (" EUR ", "en", "€47.57"),
    ],
)
def test_cny_and_eur_in_both_languages(currency: str, lang: str, expected: str) -> None:
    assert money(4757, currency, lang) == expected


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
@pytest.mark.parametrize("currency", [None, "", "E", "EURO", "人民币", "\x1b[31mX", "1€2", "¥¥¥"])
def test_no_or_hostile_currency_is_the_plain_number(currency: str | None, lang: str) -> None:
    text = money(4757, currency, lang)
    assert text == "47.57"


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_an_unknown_but_well_formed_code_is_shown_as_the_code(lang: str) -> None:
    text = money(4757, "XQQ", lang)
    assert "XQQ" in text and text.endswith("47.57")
    assert "\x1b" not in text


@pytest.mark.parametrize(("lang", "expected"), [("en", "CN¥0.00"), ("zh_CN", "¥0.00")])
def test_zero(lang: str, expected: str) -> None:
    assert money(0, "CNY", lang) == expected


@pytest.mark.parametrize(("lang", "symbol"), [("en", "CN¥"), ("zh_CN", "¥")])
def test_large_amounts_are_exact_and_grouped(lang: str, symbol: str) -> None:
    assert money(123_456_789_01, "CNY", lang) == f"{symbol}123,456,789.01"
    # more digits than decimal's default 28-digit context: exact, no InvalidOperation
    huge = 10**40 + 7
    assert money(huge, "CNY", lang) == symbol + f"{10**38:,}" + ".07"
    assert money(huge, None, lang) == f"{10**38:,}" + ".07"
    assert money(10**3000, "EUR", lang) == "€" + f"{10**2998:,}" + ".00"


def test_minor_units_follow_the_currency() -> None:
    assert money(4757, "JPY", "en") == "¥4,757"  # the yen has no minor unit
    assert money(4757, "KWD", "en").endswith("4.757")  # the dinar has three digits


def test_the_json_keeps_what_the_terminal_said() -> None:
    set_language("zh_CN")
    report = DeviceReport(
        address="adb+sim://unsettled?model=newland-n910",
        family="adb",
        checked_at="2026-10-05T08:00:00Z",
        merchant_data=MerchantData(pending_transactions=PendingTransactions(3, 4757, "CNY")),
    )
    assert to_json(report)["merchant_data"]["pending_transactions"] == {
        "count": 3,
        "total_cents": 4757,
        "currency": "CNY",
        "undelivered": False,
    }


@pytest.mark.parametrize(("lang", "amount"), [("en", "CN¥47.57"), ("zh_CN", "¥47.57")])
def test_the_verdict_reason_names_the_money_in_its_currency(lang: str, amount: str) -> None:
    set_language(lang)
    report = DeviceReport(
        address="adb+sim://unsettled?model=newland-n910",
        family="adb",
        checked_at="2026-10-05T08:00:00Z",
        identity=Identity(vendor="Newland", model="N910", serial="N9100B2207004211"),
        merchant_data=MerchantData(pending_transactions=PendingTransactions(3, 4757, "CNY")),
    )
    verdict = decide(report, load_policy())
    assert any(amount in reason for reason in verdict.reasons), verdict.reasons
    assert not any("CNY" in reason for reason in verdict.reasons)


def test_a_backlog_without_an_amount_says_so_and_asks_to_deliver_not_settle() -> None:
    """A nexo terminal counts its undelivered payments but does not sum them: never "0.00"."""
    backlog = PendingTransactions(3, None, undelivered=True)
    assert money_text(backlog) == "amount not reported"
    report = DeviceReport(
        address="nexo+https://127.0.0.1:8443",
        family="nexo",
        checked_at="2026-12-05T08:00:00Z",
        identity=Identity(vendor="Adyen", model="V400m", serial="324688179"),
        merchant_data=MerchantData(pending_transactions=backlog),
    )
    reasons = decide(report, load_policy()).reasons
    assert any("3 payments not yet delivered to the acquirer" in r for r in reasons), reasons
    assert not any("End-of-Day" in r or "0.00" in r for r in reasons), reasons
