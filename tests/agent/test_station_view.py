"""The station's live table: what a person needs first, elapsed that moves, words translated."""

from __future__ import annotations

import gettext
import io
import json
from typing import Any

import pytest
from rich.console import Console

from posdiag.agent.cli_station_view import LiveTable, print_summary
from posdiag.agent.slots import SlotResult, needs_action, summarise
from posdiag.drivers import i18n


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def render(view: LiveTable) -> str:
    screen = io.StringIO()
    Console(file=screen, width=220, color_system=None).print(view.render())
    return screen.getvalue()


def slot(address: str, **kwargs: Any) -> SlotResult:
    return SlotResult(address, "adb", **kwargs)


def test_needs_action_first_then_running_then_done() -> None:
    view = LiveTable("check", watching=False, clock=Clock())
    view.update(slot("a", serial="DONE1", stage="done", verdict_or_outcome="ready"))
    view.update(slot("b", serial="RUN1", stage="inspecting"))
    view.update(
        slot(
            "c",
            serial="ACT1",
            stage="done",
            verdict_or_outcome="wipe_required",
            reasons=("activated: still bound to a merchant",),
        )
    )
    view.update(slot("d", serial="ASK1", stage="awaiting_operator"))
    assert [s.serial for s, _e in view.rows()] == ["ACT1", "ASK1", "RUN1", "DONE1"]
    text = render(view)
    assert text.index("ACT1") < text.index("ASK1") < text.index("RUN1") < text.index("DONE1")
    assert "wipe required" in text and "activated: still bound" in text
    assert "waiting for your answer" in text and "needs your answer" in text
    assert "2 need action, 1 running, 1 finished" in text


def test_elapsed_moves_between_refreshes_and_stops_when_done() -> None:
    clock = Clock()
    view = LiveTable("wipe", watching=False, clock=clock)
    view.update(slot("a", serial="S1", stage="wiping", elapsed_s=3.0, steps_done=2, steps_total=6))
    view.update(slot("q", serial="Q1", stage="queued"))
    assert "0:03" in render(view) and "2/6" in render(view)
    clock.now += 65
    text = render(view)
    assert "1:08" in text  # nothing happened on the terminal, the clock still moved
    (queued,) = [e for s, e in view.rows() if s.serial == "Q1"]
    assert queued is None
    view.update(
        slot("a", serial="S1", stage="done", verdict_or_outcome="erased", elapsed_s=70.0)
    )
    clock.now += 30
    assert "1:10" in render(view)


def test_waiting_line_when_nothing_is_being_worked_in_watch_mode() -> None:
    watching = LiveTable("check", watching=True, clock=Clock())
    assert "Waiting for terminals — plug one in" in render(watching)
    watching.update(slot("a", stage="connecting"))
    assert "Waiting for terminals" not in render(watching)
    watching.update(slot("a", stage="done", verdict_or_outcome="ready"))
    assert "Waiting for terminals — plug one in" in render(watching)
    once = LiveTable("check", watching=False, clock=Clock())
    assert "Waiting for terminals" not in render(once)


def test_a_terminal_plugged_in_again_starts_its_clock_afresh() -> None:
    clock = Clock()
    view = LiveTable("check", watching=True, clock=clock)
    view.update(slot("a", stage="inspecting", elapsed_s=1.0))
    view.update(slot("a", stage="unplugged", verdict_or_outcome="unreachable", elapsed_s=2.0))
    clock.now += 50
    view.update(slot("a", stage="connecting", elapsed_s=0.0))
    clock.now += 4
    ((_slot, elapsed),) = view.rows()
    assert elapsed == pytest.approx(4.0)


def test_needs_action_rules() -> None:
    assert needs_action(slot("a", stage="done", verdict_or_outcome="wipe_required"))
    assert needs_action(slot("a", stage="done", verdict_or_outcome="erased_with_exceptions"))
    assert needs_action(slot("a", stage="failed", verdict_or_outcome="unreachable"))
    assert needs_action(slot("a", stage="awaiting_operator"))
    assert not needs_action(slot("a", stage="done", verdict_or_outcome="ready"))
    assert not needs_action(slot("a", stage="done", verdict_or_outcome="erased"))
    assert not needs_action(slot("a", stage="wiping"))
    assert not needs_action(
        slot("a", stage="done", verdict_or_outcome="erased_with_exceptions", already_erased=True)
    )


class Chinese(gettext.NullTranslations):
    WORDS = {
        "erasing": "正在擦除",
        "wipe required": "需要擦除",
        "ready": "可再用",
        "Terminal": "终端",
        "Waiting for terminals — plug one in (Ctrl-C to stop)": "等待终端接入（Ctrl-C 停止）",
        "{n} terminal needs action:": "{n} 台终端需要处理：",
        "{n} terminals need action:": "{n} 台终端需要处理：",
        "serial {serial}": "序列号 {serial}",
    }

    def gettext(self, message: str) -> str:
        return self.WORDS.get(message, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.WORDS.get(singular if n == 1 else plural, singular if n == 1 else plural)


@pytest.fixture
def chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    i18n.language()  # choose once, so the patched catalogue is not replaced
    monkeypatch.setattr(i18n, "_translations", Chinese())
    monkeypatch.setattr(i18n, "_chosen", True)


def test_words_are_translated_at_display_only(chinese: None) -> None:
    view = LiveTable("wipe", watching=True, clock=Clock())
    running = slot("a", serial="S1", stage="wiping", steps_done=1, steps_total=4)
    checked = slot("b", serial="S2", stage="done", verdict_or_outcome="wipe_required")
    fine = slot("c", serial="S3", stage="done", verdict_or_outcome="ready")
    for update in (running, checked, fine):
        view.update(update)
    text = render(view)
    assert "正在擦除" in text and "需要擦除" in text and "终端" in text and "可再用" in text
    assert json.loads(json.dumps(running.to_json()))["stage"] == "wiping"
    assert checked.to_json()["verdict_or_outcome"] == "wipe_required"
    idle = LiveTable("check", watching=True, clock=Clock())
    assert "等待终端接入" in render(idle)
    summary = summarise([checked], batch="B1", mode="check")
    summary["ledger"] = {"verified": True, "problems": 0, "problem": ""}
    screen = io.StringIO()
    print_summary(Console(file=screen, width=200, color_system=None), summary, [checked], "check")
    assert "1 台终端需要处理：" in screen.getvalue() and "序列号 S2" in screen.getvalue()
    assert summary["counts"] == {"wipe_required": 1}  # the JSON keeps its identifiers
