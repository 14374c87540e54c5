"""What a ZVT check and wipe tell whoever watches: each exchange in plain words, as it happens.

Every test runs the real ZVT driver against the simulated Feig terminal (``zvt_terminal``, an
in-process serial link) with :func:`posdiag.drivers.activity.listening`, the way the CLI's
progress line and the station's table listen. The transport under the driver is wrapped only to
count the bytes that really arrived, so the byte count the watcher sees can be checked against
the wire.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support.activity import Tapped, Watcher

from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.policy import load_policy
from posdiag.agent.report import DeviceReport, to_json
from posdiag.drivers import i18n
from posdiag.drivers.activity import listening
from posdiag.drivers.model import Terminal
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.pytest_plugin import TEST_TIMERS, SimulatedZvt

ZvtFactory = Callable[..., SimulatedZvt]

JARGON = re.compile(r"[0-9A-F]{2} [0-9A-F]{2}|T3|T4|ACK|APDU|BMP|CLSE")
"""Protocol words an operator must never read: opcodes, timer names, frame names."""

CHECK = [
    "connecting to the terminal",
    "logging in to the terminal",
    "reading the terminal's status",
    "reading the system configuration printout",
    "reading unsettled totals",
    "testing the connection to the payment host",
    "logging off",
]
"""The exchanges of a check of the simulated Feig terminal, in order (its system information is
not asked: Status Enquiry gave the serial already)."""

PRINTOUT = "reading the system configuration printout"


def connect(sim: SimulatedZvt) -> tuple[ZvtTerminal, Tapped]:
    tapped = Tapped(sim.transport())
    driver = ZvtDriver(tapped, sim.link, password=sim.state.password, timers=TEST_TIMERS)
    return ZvtTerminal(driver, f"zvt+sim://{sim.scenario}"), tapped


def check(terminal: Terminal) -> DeviceReport:
    return inspect_terminal(terminal, load_policy())


def comparable(report: DeviceReport) -> dict[str, Any]:
    """The report without what differs between two runs (times)."""
    data: dict[str, Any] = dict(to_json(report))
    for key in ("checked_at", "duration_s"):
        data.pop(key, None)
    return data


@pytest.fixture
def english() -> Iterator[None]:
    i18n.set_language("en")
    yield
    i18n.set_language("en")


def test_a_check_announces_every_exchange_in_order(zvt_terminal: ZvtFactory, english: None) -> None:
    terminal, tapped = connect(zvt_terminal("activated"))
    watcher = Watcher(tapped)
    with listening(watcher):
        report = check(terminal)
    assert report.identity is not None and report.errors == []
    assert watcher.sequence() == CHECK
    assert all(not JARGON.search(a.what) for a in watcher.activities)


def test_the_printout_count_grows_with_the_bytes_that_arrived(
    zvt_terminal: ZvtFactory, english: None
) -> None:
    terminal, tapped = connect(zvt_terminal("activated"))
    watcher = Watcher(tapped)
    with listening(watcher):
        check(terminal)
    index = [i for i, (a, _) in enumerate(watcher.seen) if a.what == PRINTOUT]
    first, last = index[0], index[-1]
    assert index == list(range(first, last + 1))  # one uninterrupted exchange
    counts = [watcher.seen[i][0].done for i in index]
    assert counts[0] is None  # announced before its first byte
    grown = [c for c in counts[1:] if c is not None]
    assert len(grown) > 2 and grown == sorted(set(grown))  # it moves, never backwards
    assert all(watcher.seen[i][0].unit == "bytes" for i in index[1:])
    # What the watcher was told is what the wire delivered between the printout's
    # announcement and the next exchange's.
    on_the_wire = watcher.seen[last + 1][1] - watcher.seen[first][1]
    assert grown[-1] == on_the_wire
    assert grown[-1] > 1000  # a whole printout, not its acknowledgement


def test_an_exchange_that_fails_is_still_announced_and_the_next_ones_are_not(
    zvt_terminal: ZvtFactory, english: None
) -> None:
    # The link drops after the status enquiry: the printout was asked for, nothing after it.
    terminal, tapped = connect(zvt_terminal("activated", disconnect_after=2))
    watcher = Watcher(tapped)
    with listening(watcher):
        report = check(terminal)
    assert report.errors
    sequence = watcher.sequence()
    assert sequence[:3] == CHECK[:3]
    assert "logging off" not in sequence


def test_a_wipe_announces_its_steps_counted(zvt_terminal: ZvtFactory, english: None) -> None:
    terminal, tapped = connect(zvt_terminal("unsettled"))
    watcher = Watcher(tapped)
    with listening(watcher):
        terminal.facts()
        plan = terminal.wipe_plan()
        watcher.seen.clear()
        for step in plan:
            step.run()
        checks = [step.done() for step in plan]
    steps = [(a.what, a.done, a.total) for a in watcher.activities if a.unit == "steps"]
    assert steps == [
        ("settling the day's transactions", 1, 4),  # the store held turnover: settling counts
        ("removing the terminal ID", 2, 4),
        ("logging off", 3, 4),
        ("resetting the terminal to factory settings", 4, 4),
    ]
    assert checks == [True, True, True, True]
    texts = {a.what for a in watcher.activities}
    assert {"reading unsettled totals", "reading the terminal's status"} <= texts
    assert all(not JARGON.search(a.what) for a in watcher.activities)


def test_an_empty_store_is_not_counted_as_a_step(zvt_terminal: ZvtFactory, english: None) -> None:
    terminal, _ = connect(zvt_terminal("activated"))
    watcher = Watcher()
    with listening(watcher):
        terminal.facts()
        plan = {step.name: step for step in terminal.wipe_plan()}
        watcher.seen.clear()
        plan["reset_terminal_id"].run()
    first = watcher.activities[0]
    assert (first.what, first.done, first.total) == ("removing the terminal ID", 1, 3)


def test_without_a_listener_nothing_is_told_and_the_report_is_the_same(
    zvt_terminal: ZvtFactory, english: None
) -> None:
    outer = Watcher()
    terminal, _ = connect(zvt_terminal("activated"))
    with listening(outer), listening(None):
        quiet = check(terminal)
    assert outer.seen == []
    terminal, _ = connect(zvt_terminal("activated"))
    with listening(Watcher()):
        watched = check(terminal)
    assert comparable(quiet) == comparable(watched)


@pytest.mark.parametrize(
    ("scenario", "options"),
    [
        ("activated", {}),
        ("tampered", {}),
        ("no-network", {}),
        ("fresh", {}),
        ("low-battery", {"fail_command": "Print System Configuration"}),  # probes unsupported
    ],
)
def test_every_sentence_a_person_reads_is_translated(
    zvt_terminal: ZvtFactory, marked: None, scenario: str, options: dict[str, str]
) -> None:
    terminal, _ = connect(zvt_terminal(scenario, **options))
    watcher = Watcher()
    with listening(watcher):
        report = check(terminal)
    assert all(a.what.startswith("«") for a in watcher.activities)
    assert report.activation is not None
    sentences = [e.fact for e in report.activation.evidence]
    if report.activation.status_text is not None:
        sentences.append(report.activation.status_text)
    if report.merchant_data:
        sentences.extend(report.merchant_data.notes)
    if report.network:
        sentences.extend(report.network.details)
    if report.tamper:
        sentences.extend(report.tamper.details)
    if report.health:
        sentences.extend(report.health.faults)
    assert sentences and all(s.startswith("«") for s in sentences), sentences
    # Identifiers code relies on stay English: evidence sources, the device state's name.
    assert {e.source for e in report.activation.evidence} <= {"status enquiry", "printout"}
    assert report.activation.device_state is None or not report.activation.device_state.startswith(
        "«"
    )
    # The reason a probe has no answer is a sentence too; the protocol's errors are not.
    assert all(u.partition(": ")[2].startswith("«") for u in report.unsupported)
    assert bool(report.unsupported) is bool(options)
    assert not any(e.startswith("«") for e in report.errors)
