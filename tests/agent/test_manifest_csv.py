"""The CSV manifest opens in Excel with Chinese text: UTF-8 with one byte-order mark, or none.

Excel reads a CSV without a BOM in the machine's ANSI code page, so a Chinese operator's or
vendor's name turns to mojibake; with ``EF BB BF`` at the very start it reads UTF-8. The mark is
written once (never per row), the header stays the English column identifiers machines read,
and a cell still cannot start a formula.
"""

from __future__ import annotations

import csv
import gettext
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from posdiag.agent import cli
from posdiag.agent.ledger import Ledger, sqlite_url
from posdiag.agent.manifest import (
    BOM,
    CHECK_COLUMNS,
    WIPE_COLUMNS,
    ManifestError,
    check_rows,
    parse_since,
    to_csv,
    to_json,
)
from posdiag.drivers import i18n
from posdiag.drivers.i18n import set_language

UTF8_BOM = b"\xef\xbb\xbf"
MERCHANT = "深圳市福田区好又多便利店"


def rows_of(text: str) -> list[list[str]]:
    """The CSV as Excel-minded readers see it: bytes decoded with ``utf-8-sig``."""
    data = text.encode("utf-8").decode("utf-8-sig")
    return list(csv.reader(io.StringIO(data, newline="")))


def wipe_row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(WIPE_COLUMNS)
    row.update(values)
    return row


def test_the_bom_is_written_once_at_the_start() -> None:
    rows = [
        wipe_row(serial=f"N9100B{i:010d}", vendor="新大陆", reasons=MERCHANT) for i in range(600)
    ]
    data = to_csv(rows, WIPE_COLUMNS).encode("utf-8")
    assert data.startswith(UTF8_BOM)
    assert data.count(UTF8_BOM) == 1
    assert data[len(UTF8_BOM) :].startswith(",".join(WIPE_COLUMNS).encode("ascii") + b"\r\n")


def test_an_empty_manifest_still_starts_with_the_bom_and_the_header() -> None:
    data = to_csv([], CHECK_COLUMNS).encode("utf-8")
    assert data == UTF8_BOM + ",".join(CHECK_COLUMNS).encode("ascii") + b"\r\n"


def test_chinese_text_round_trips_through_csv_reader() -> None:
    row = wipe_row(
        serial="N9100B2207004211",
        vendor="新大陆",
        model="N910",
        operator="王小明",
        reasons=f"{MERCHANT}: 3 笔未结算交易, ¥47.57",
    )
    header, values = rows_of(to_csv([row], WIPE_COLUMNS))
    assert header == list(WIPE_COLUMNS)  # stable English identifiers, no BOM glued to "batch"
    found = dict(zip(header, values, strict=True))
    assert found["vendor"] == "新大陆"
    assert found["operator"] == "王小明"
    assert found["reasons"] == f"{MERCHANT}: 3 笔未结算交易, ¥47.57"


def test_without_bom() -> None:
    text = to_csv([wipe_row(vendor="新大陆")], WIPE_COLUMNS, bom=False)
    assert not text.startswith(BOM)
    assert BOM not in text
    assert text.encode("utf-8").startswith(b"batch,serial,")
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert row["vendor"] == "新大陆"


@pytest.mark.parametrize("bom", [True, False])
@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_still_neutralised(bom: bool, start: str) -> None:
    hostile = f'{start}HYPERLINK("http://x.invalid","{MERCHANT}")'
    text = to_csv([wipe_row(operator=hostile, serial="1")], WIPE_COLUMNS, bom=bom)
    data = text.encode("utf-8").decode("utf-8-sig")
    (row,) = csv.DictReader(io.StringIO(data, newline=""))
    assert row["operator"].startswith("'")
    assert MERCHANT in row["operator"]


def test_json_is_unchanged_by_the_bom() -> None:
    text = to_json([wipe_row(vendor="新大陆")])
    assert not text.startswith(BOM)
    assert '"vendor": "新大陆"' in text  # readable UTF-8, not \\u escapes


# --- through the ledger and the CLI ------------------------------------------------------------


@pytest.fixture
def ledger_url(isolated_home: Path) -> str:
    """A ledger holding one inspection of a Chinese-market terminal by a Chinese operator."""
    url = sqlite_url(isolated_home / "ledger.sqlite3")
    report = {
        "schema": "posdiag.report/1",
        "address": "adb+tcp://10.0.0.9:5037",
        "family": "adb",
        "verdict": {"status": "wipe_required", "reasons": [f"{MERCHANT}: 3 笔未结算交易"]},
    }
    with Ledger(url) as ledger:
        device = ledger.record_device("adb", "N9100B2207004211", "新大陆", "N910")
        ledger.record_inspection(device, "adb+tcp://10.0.0.9:5037", report, operator="王小明")
    return url


@pytest.fixture
def english() -> Iterator[None]:
    yield
    set_language("en")


def test_the_report_command_writes_one_bom_and_chinese_cells(
    ledger_url: str, cli_home: Path, english: None
) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["--lang", "en", "report", "--ledger", ledger_url, "--kind", "checks", "--format", "csv"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = result.stdout_bytes
    assert data.startswith(UTF8_BOM) and data.count(UTF8_BOM) == 1
    (row,) = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    assert list(row) == list(CHECK_COLUMNS)
    assert (row["vendor"], row["model"], row["operator"]) == ("新大陆", "N910", "王小明")
    assert row["integrity"] == "verified"


def test_check_rows_keep_chinese_values_for_json(ledger_url: str) -> None:
    with Ledger(ledger_url) as ledger:
        (row,) = check_rows(ledger, verification=ledger.verify())
    assert (row["vendor"], row["operator"]) == ("新大陆", "王小明")


class _Marked(gettext.NullTranslations):
    """A catalogue that marks every message it translates, to see which text goes through it."""

    def gettext(self, message: str) -> str:
        return "«" + message + "»"


def test_the_since_error_is_a_translated_sentence(
    monkeypatch: pytest.MonkeyPatch, english: None
) -> None:
    set_language("en")
    monkeypatch.setattr(i18n, "_translations", _Marked())
    with pytest.raises(ManifestError) as caught:
        parse_since("2026/05/09")
    message = str(caught.value)
    assert message.startswith("«--since '2026/05/09' is not an ISO date")
    assert message.endswith("»")
