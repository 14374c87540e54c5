"""A Chinese depot's day in Chinese: no English sentence reaches the operator.

The catalogue test proves every *marked* sentence is translated; this one catches a sentence
nobody marked. It runs the commands a depot runs (check, wipe, verify, station, report, doctor)
with ``--lang zh-CN`` on simulated terminals, Chinese-market ones included, and looks for a run
of three or more English words in what they print. What may stay English is listed: the
device's own words (vendor, model, firmware labels and versions), addresses, option names,
commands and identifiers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli

pytestmark = pytest.mark.usefixtures("cli_home")

ENGLISH_RUN = re.compile(r"\b[A-Za-z][A-Za-z'’]+(?:[ \-/][A-Za-z][A-Za-z'’]*){2,}\b(?![\d.])")
"""Three or more Latin words in a row: an English sentence or phrase."""

DEVICE_WORDS = (
    # what the simulated terminals say about themselves: their own words, shown as they are
    "FEIG ELECTRONIC cVEND plug",
    "PIN pad software",
    "PIN pad release",
    "RFID reader",
    "Terminal application",
    "ZVT application",
    "SUNMI P2_PRO",
    "NEWLAND N910",
    "Newland N910",
    "PAX A920",
    "Generic Android POS",
)
NOT_SENTENCES = (
    re.compile(r"\S+://\S*"),  # addresses and URLs
    re.compile(r"--[a-z][a-z-]*(?:[ =][A-Z:]+)?"),  # options (and their metavariables)
    re.compile(r"posdiag(?: [a-z-]+)+"),  # commands
    re.compile(r"sudo [^\n;,，。：]+"),  # commands to type
    re.compile(r"(?:/[\w.\-]+)+"),  # paths
    re.compile(r"\b[\w.+-]+@[\w.-]+"),  # e-mail-like identifiers
    re.compile(r"\b(?:com|org|net)\.[\w.]+"),  # Android package names
)

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setattr(cli, "discover", lambda: [])  # no hardware: the demo terminals

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli.main, ["--lang", "zh-CN", *args], input=input)

    return run


def english_left(text: str) -> list[str]:
    """The English phrases in ``text`` once the device's words and identifiers are set aside."""
    for words in DEVICE_WORDS:
        text = text.replace(words, " ")
    for pattern in NOT_SENTENCES:
        text = pattern.sub(" ", text)
    return sorted({match.group(0) for match in ENGLISH_RUN.finditer(text)})


def assert_chinese(result: Result) -> None:
    assert "Traceback" not in result.output
    shown = result.stdout + result.stderr
    assert re.search(r"[\u4e00-\u9fff]", shown), shown  # it is Chinese at all
    assert english_left(shown) == [], shown


def test_check_of_every_demo_terminal_reads_in_chinese(invoke: Invoke) -> None:
    result = invoke("check")
    assert result.exit_code == 0, result.output
    assert_chinese(result)
    assert "需要擦除" in result.stdout and "¥" in result.stdout


def test_a_wipe_its_certificate_and_verify_read_in_chinese(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "certificates"
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    address = "adb+sim://activated?model=newland-n910"
    result = invoke(
        "wipe", address, "--yes", "--operator", "李伟", "--out", str(out), "--ledger", ledger
    )
    assert result.exit_code in (0, 1), result.output  # erased (with exceptions: its accounts)
    assert_chinese(result)
    (certificate,) = out.glob("*.json")
    assert {p.suffix for p in out.iterdir()} == {".json", ".html", ".pdf"}
    page = certificate.with_suffix(".html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in page and "证书" in page
    verified = invoke("verify", str(certificate))
    assert verified.exit_code == 0, verified.output
    assert_chinese(verified)
    ledger_check = invoke("verify", "--ledger", ledger)
    assert ledger_check.exit_code == 0, ledger_check.output
    assert_chinese(ledger_check)
    manifest = invoke("report", "--ledger", ledger, "--include-simulated")
    assert manifest.exit_code == 0, manifest.output
    header = manifest.stdout_bytes.decode("utf-8-sig").splitlines()[0]
    assert "序列号" in header
    assert english_left(header) == []


def test_a_refused_wipe_says_why_in_chinese(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke(
        "wipe",
        "adb+sim://unsettled?model=newland-n910",
        "--yes",
        "--operator",
        "李伟",
        "--out",
        str(tmp_path / "c"),
        "--ledger",
        f"sqlite:///{tmp_path / 'l.sqlite3'}",
    )
    assert result.exit_code == 6, result.output
    assert_chinese(result)
    assert "¥" in result.stdout


def test_the_station_summary_reads_in_chinese(invoke: Invoke) -> None:
    result = invoke("station", "--simulate", "16")
    assert result.exit_code in (0, 1), result.output
    assert_chinese(result)


def test_unreachable_and_usage_errors_read_in_chinese(invoke: Invoke) -> None:
    unreachable = invoke("check", "zvt+serial:///dev/ttyNOPE")
    assert unreachable.exit_code == 3
    assert_chinese(unreachable)
    usage = invoke("check", "nonsense://x")
    assert usage.exit_code == 2
    assert_chinese(usage)
    assert usage.stderr.startswith("posdiag：错误：")


def test_doctor_reads_in_chinese(invoke: Invoke) -> None:
    result = invoke("doctor")
    assert result.exit_code in (0, 1)
    assert_chinese(result)


def test_json_stays_english_identifiers(invoke: Invoke) -> None:
    data = json.loads(invoke("check", "--json", "zvt+sim://activated").stdout)
    assert data["verdict"]["status"] == "wipe_required"
    assert data["family"] == "zvt"
