"""The operator's word on settlement at the station: a vouch file, or a prompt per terminal.

``android-generic`` has no batch-export recipe: posdiag cannot read its unsettled payments, so
an activated one is refused unless the operator vouches it was settled (as ``posdiag wipe
--confirmed-settled`` does for one terminal).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from posdiag.agent import cli
from posdiag.agent.cli_station_view import SettlementPrompt
from posdiag.agent.ledger import sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.station import Station
from posdiag.agent.station_settle import (
    SettlementQuestion,
    is_yes,
    read_vouch_file,
)

UNREADABLE = "adb+sim://activated?model=android-generic&serial={serial}"


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


def wipe_station(ledger_path: Path, tmp_path: Path, **kwargs: Any) -> Station:
    return Station(
        "wipe",
        load_policy(None),
        operator="Dana Depot",
        assume_yes=True,
        ledger_url=sqlite_url(ledger_path),
        out_dir=tmp_path / "certs",
        **kwargs,
    )


def audit(ledger_path: Path) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(ledger_path) as conn:
        rows = conn.execute(
            "SELECT event, data_json FROM audit_log WHERE event LIKE 'station.settlement%' "
            "ORDER BY id"
        ).fetchall()
    return [(event, json.loads(data)) for event, data in rows]


WIPED = ("erased", "erased_with_exceptions")


def test_vouch_file_lists_serials_and_skips_comments(tmp_path: Path) -> None:
    path = tmp_path / "vouch.txt"
    path.write_bytes("\ufeffSN001\n\n# settled by Li, 9:00\nSN002   # the second\r\n  \n".encode())
    assert read_vouch_file(path) == frozenset({"SN001", "SN002"})
    with pytest.raises(ValueError, match="cannot read vouch file"):
        read_vouch_file(tmp_path / "missing.txt")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_vouch_file(tmp_path / "bin")


def test_yes_words() -> None:
    assert is_yes("y") and is_yes(" YES\n") and is_yes("是")
    assert not is_yes("") and not is_yes("n") and not is_yes("maybe")


def test_unattended_station_refuses_unreadable_settlement_unless_vouched(
    ledger_path: Path, tmp_path: Path
) -> None:
    listed, unlisted = UNREADABLE.format(serial="VOUCH01"), UNREADABLE.format(serial="OTHER02")
    results = wipe_station(ledger_path, tmp_path, vouched={"VOUCH01"}).run([listed, unlisted])
    by_serial = {r.serial: r for r in results}
    assert by_serial["VOUCH01"].verdict_or_outcome in WIPED, by_serial["VOUCH01"].reasons
    assert by_serial["VOUCH01"].certificate is not None
    refused = by_serial["OTHER02"]
    assert refused.verdict_or_outcome == "refused"
    assert any("--vouch" in reason for reason in refused.reasons)
    events = {data["serial"]: (event, data["word"]) for event, data in audit(ledger_path)}
    assert events == {
        "VOUCH01": ("station.settlement_confirmed", "vouch_list"),
        "OTHER02": ("station.settlement_refused", "unattended"),
    }
    assert all(data["operator"] == "Dana Depot" for _e, data in audit(ledger_path))


def test_terminals_that_can_be_read_are_never_asked_about(
    ledger_path: Path, tmp_path: Path
) -> None:
    asked: list[SettlementQuestion] = []

    def ask(question: SettlementQuestion) -> bool:
        asked.append(question)
        return True

    results = wipe_station(ledger_path, tmp_path, ask_settled=ask).run(
        ["adb+sim://activated?model=pax-a920", "zvt+sim://tampered", "adb+sim://fresh"]
    )
    assert asked == []
    assert audit(ledger_path) == []
    assert {r.verdict_or_outcome for r in results} >= {"refused"}  # the tampered one


@pytest.mark.parametrize(
    ("answer", "outcome", "word"),
    [
        (True, WIPED, "operator"),
        (False, ("refused",), "declined"),
        (None, ("refused",), "no_answer"),
    ],
)
def test_the_operators_answer_decides(
    ledger_path: Path, tmp_path: Path, answer: bool | None, outcome: tuple[str, ...], word: str
) -> None:
    asked: list[SettlementQuestion] = []
    stages: list[str] = []

    def ask(question: SettlementQuestion) -> bool | None:
        asked.append(question)
        return answer

    station = wipe_station(
        ledger_path, tmp_path, ask_settled=ask, on_event=lambda s: stages.append(s.stage)
    )
    (result,) = station.run([UNREADABLE.format(serial="ASK0001")])
    assert [q.serial for q in asked] == ["ASK0001"]
    assert asked[0].model == "Generic Android POS" and 0 < asked[0].timeout_s <= 120
    assert result.verdict_or_outcome in outcome, result.reasons
    assert "awaiting_operator" in stages
    ((event, data),) = audit(ledger_path)
    assert data["word"] == word and data["serial"] == "ASK0001"
    assert event == ("station.settlement_confirmed" if answer else "station.settlement_refused")


def test_questions_come_one_at_a_time(ledger_path: Path, tmp_path: Path) -> None:
    lock = threading.Lock()
    now, peak, serials = [0], [0], []

    def ask(question: SettlementQuestion) -> bool:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
            serials.append(question.serial)
        time.sleep(0.2)
        with lock:
            now[0] -= 1
        return True

    addresses = [UNREADABLE.format(serial=f"ONE{n:04d}") for n in range(3)]
    results = wipe_station(ledger_path, tmp_path, ask_settled=ask, max_parallel=3).run(addresses)
    assert sorted(serials) == ["ONE0000", "ONE0001", "ONE0002"]
    assert peak[0] == 1
    assert all(r.verdict_or_outcome in WIPED for r in results)


# --- the prompt, at function level (a CliRunner is no terminal) --------------------------------


class FakeLive:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.transient = False
        self.vertical_overflow = "ellipsis"

    def stop(self) -> None:
        assert self.transient  # the table leaves the screen while the question is asked
        self.vertical_overflow = "visible"  # as rich's stop() does
        self.calls.append("stop")

    def start(self, refresh: bool = False) -> None:
        self.calls.append("start")


QUESTION = SettlementQuestion("adb+usb://X", "adb", "PAX A920", "SN\x1b[2J42", 5.0)


@pytest.mark.parametrize(("typed", "expected"), [("y\n", True), ("n\n", False), ("", False)])
def test_prompt_names_the_serial_pauses_the_live_view_and_reads_the_answer(
    typed: str, expected: bool
) -> None:
    screen = io.StringIO()
    prompt = SettlementPrompt(
        Console(file=screen, width=200, color_system=None), io.StringIO(typed), threading.Event()
    )
    prompt.live = FakeLive()
    assert prompt(QUESTION) is expected
    assert prompt.live.calls == ["stop", "start"]
    assert not prompt.live.transient and prompt.live.vertical_overflow == "ellipsis"
    text = screen.getvalue()
    assert "Terminal PAX A920 serial SN" in text and "Has it been settled? [y/N]" in text
    assert "\x1b[2J" not in text


def test_prompt_without_an_answer_in_time_is_no() -> None:
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(read_end, "r", closefd=True) as stream:
            screen = io.StringIO()
            prompt = SettlementPrompt(
                Console(file=screen, width=200, color_system=None), stream, threading.Event()
            )
            started = time.monotonic()
            question = SettlementQuestion("a", "adb", None, "SN1", 0.3)
            assert prompt(question) is None
            assert time.monotonic() - started < 3
            assert "No answer within" in screen.getvalue()
    finally:
        os.close(write_end)


# --- the command line --------------------------------------------------------------------------


def test_cli_vouch_file_wipes_the_listed_unit(ledger_path: Path, tmp_path: Path) -> None:
    vouch = tmp_path / "settled.txt"
    vouch.write_text("CLI0001\n", encoding="utf-8")
    common = ["--ledger", sqlite_url(ledger_path), "--out", str(tmp_path / "c"), "--json"]
    result = CliRunner().invoke(
        cli.main,
        [
            "station", "--mode", "wipe", "--operator", "Dana", "--yes", "--vouch", str(vouch),
            UNREADABLE.format(serial="CLI0001"), UNREADABLE.format(serial="CLI0002"), *common,
        ],
    )
    summary = json.loads(result.stdout.splitlines()[-1])
    outcome = {r["serial"]: r["verdict_or_outcome"] for r in summary["results"] if r["serial"]}
    assert outcome["CLI0001"] in WIPED and outcome["CLI0002"] == "refused"
    assert result.exit_code == 1  # one terminal was not erased
    for args in (["--mode", "check"], ["--mode", "wipe", "--operator", "D", "--yes"]):
        bad = CliRunner().invoke(
            cli.main, ["station", *args, "--vouch", str(tmp_path / "nope.txt"), "zvt+sim://fresh"]
        )
        assert bad.exit_code == 2, bad.output


def test_cli_wipe_without_yes_needs_a_terminal_to_ask_on(ledger_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["station", "--mode", "wipe", "--operator", "Dana", UNREADABLE.format(serial="A")],
    )
    assert result.exit_code == 2
    assert "--yes" in result.output


def test_check_summary_lists_every_terminal_needing_action_by_serial(ledger_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main,
        [
            "station",
            "adb+sim://activated?model=pax-a920&serial=NEEDS001",
            "zvt+sim://tampered?serial=5BAD0001",
            "adb+sim://fresh?model=sunmi-p2&serial=FINE0001",
            "--ledger",
            sqlite_url(ledger_path),
        ],
    )
    assert result.exit_code == 0, result.output  # every terminal was checked
    summary = result.stdout[result.stdout.index("batch ") :]
    assert "2 terminals need action:" in summary
    assert "serial NEEDS001" in summary and "wipe required" in summary
    assert "serial 5BAD0001" in summary and "quarantine" in summary and "tampered" in summary
    assert "FINE0001" not in summary
