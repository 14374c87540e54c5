"""The HTML certificate in the reader's language: labels, dates, lang, quiet missing fields."""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterator
from typing import Any

import pytest

from posdiag.agent.certificate import StationKey, build_certificate, render_html, sign_certificate
from posdiag.drivers import i18n
from posdiag.drivers.i18n import set_language

from .test_certificate import content, report_json


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    set_language("en")
    yield
    set_language("en")


@pytest.fixture
def key() -> StationKey:
    return StationKey.generate()


def bare_content() -> dict[str, Any]:
    """Only what a certificate requires: every optional field missing."""
    report = report_json()
    for name in ("activation", "tamper", "merchant_data", "verdict"):
        report[name] = None
    report["firmware"] = {"components": {}}
    return build_certificate(
        report=report,
        outcome="erased",
        steps=[{"name": "reset", "status": "done"}],
        operator="Jana",
        method="ZVT reset",
        verification_method="read back",
        tool_version="0.1.0",
        started_at="2026-01-01T09:00:00Z",
        finished_at="2026-01-01T09:03:30Z",
    )


def test_missing_optional_fields_are_not_shouted(key: StationKey) -> None:
    page = render_html(sign_certificate(bare_content(), key))
    assert "not recorded" not in page.lower()
    assert "none</span>" not in page.lower()
    rows = dict(re.findall(r"<tr><th>([^<]+)</th><td>(.*?)</td></tr>", page))
    for absent in ("Position / title", "Contact", "Property / asset number", "IMEI", "Firmware"):
        assert absent not in rows, absent  # the row is left out
    for present in ("Name", "Serial number", "Method used", "Started"):
        assert present in rows, present
    # A place that must show something shows a quiet grey dash.
    assert '<span>Location</span><b><span class="muted">—</span></b>' in page
    assert "Activation" not in rows  # the check's activation was not recorded


def test_dates_are_in_the_readers_locale(key: StationKey) -> None:
    document = sign_certificate(content(), key)
    page = render_html(document)
    assert "1 Jan 2026, 09:03:30 UTC" in page  # finished_at 2026-01-01T09:03:30Z
    assert "1 Jan 2026, 09:00:00 UTC" in page  # started 10:00 +01:00, shown in UTC as recorded
    set_language("zh_CN")
    chinese = render_html(document)
    assert "2026年1月1日 09:03:30 UTC" in chinese
    assert '<html lang="zh-CN">' in chinese


def test_lang_and_content_security_policy(key: StationKey) -> None:
    page = render_html(sign_certificate(content(), key))
    assert '<html lang="en">' in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for external in ("<script", "src=", "@import", "url(", "http://", "https://"):
        assert external not in page.lower(), external


class _FakeChinese(gettext.NullTranslations):
    """Stands in for the zh_CN catalogue until it holds the certificate's labels."""

    WORDS = {
        "Certificate of Sanitization": "数据清除证书",
        "Serial number": "序列号",
        "Erased with exceptions": "已擦除（有例外）",
        "payment terminal (flash, secure element)": "支付终端（闪存、安全元件）",
        "done": "已完成",
    }

    def gettext(self, message: str) -> str:
        return self.WORDS.get(message, message)


def test_labels_and_posdiags_own_values_are_translated(
    key: StationKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = sign_certificate(content(report=report_json(model="done")), key)
    set_language("zh_CN")
    monkeypatch.setattr(i18n, "_translations", _FakeChinese())
    page = render_html(document)
    assert "<h1>数据清除证书</h1>" in page
    assert "<th>序列号</th>" in page
    assert "已擦除（有例外）" in page
    assert "支付终端（闪存、安全元件）" in page  # the default media type posdiag wrote
    assert '<span class="ok">已完成</span>' in page  # a step status word
    # Text the terminal sent is never looked up in the catalogue, even when it matches a msgid.
    assert "<th>Model</th><td>done</td>" in page


def test_organisation_from_the_station_settings_heads_the_page(key: StationKey) -> None:
    document = sign_certificate(content(), key)
    assert '<div class="org">Example Depot GmbH</div>' in render_html(document)
    page = render_html(document, organisation="Depot <Nord>")
    assert '<div class="org">Depot &lt;Nord&gt;</div>' in page
