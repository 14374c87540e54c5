"""What an ADB check and wipe tell whoever watches: each command in plain words, steps counted.

Every test runs the real ADB driver against the simulated Android POS (``adb_terminal``, over
the simulated USB bus unless said otherwise) with :func:`posdiag.drivers.activity.listening`,
the way the CLI's progress line and the station's table listen. The wipe runs through the real
:class:`~posdiag.agent.wipe.WipeSession`, which is what calls the terminal's steps.
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
from posdiag.agent.wipe import Outcome, WipeOptions, WipeSession
from posdiag.drivers import i18n
from posdiag.drivers.activity import listening
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.simulators.pytest_adb import AdbDriverFactory, SimulatedAdb

AdbFactory = Callable[..., SimulatedAdb]

JARGON = re.compile(r"[0-9A-F]{2} [0-9A-F]{2}|T3|T4|ACK|APDU|BMP|CLSE|CNXN|AUTH|WRTE|OKAY")
"""Protocol words an operator must never read: opcodes, timer names, packet names."""

CHECK = [
    "connecting over USB",
    "reading the system properties",
    "reading battery status",
    "reading network status",
    "listing installed apps",
    "reading storage use",
    "reading the device management settings",
    "reading the accounts on the terminal",
    "reading the payment app's version",
    "looking for merchant files",
    "reading the payment app's data",
]
"""The commands of a check of the simulated PAX A920, in order (runs of one text folded)."""

WIPE = [
    ("clearing the payment app's data", 1, 6),
    ("clearing the payment app's data", 2, 6),
    ("clearing the management app's data", 3, 6),
    ("forgetting saved Wi-Fi networks", 4, 6),
    ("deleting merchant files", 5, 6),
    ("deleting merchant files", 6, 6),
]
"""The steps of a wipe of the simulated PAX A920 as the watcher sees them."""

AUTH_WAIT = "waiting for USB debugging to be allowed on the terminal's screen"


@pytest.fixture
def english() -> Iterator[None]:
    i18n.set_language("en")
    yield
    i18n.set_language("en")


def connect(sim: SimulatedAdb, adb_driver: AdbDriverFactory, **kwargs: Any) -> AdbTerminal:
    driver = adb_driver(sim, open=False, **kwargs)
    return AdbTerminal(driver, f"adb+sim://{sim.scenario}?model={sim.model}")


def check(terminal: AdbTerminal) -> DeviceReport:
    return inspect_terminal(terminal, load_policy())


def test_a_check_announces_every_command_in_order(
    adb_terminal: AdbFactory, adb_driver: AdbDriverFactory, english: None
) -> None:
    terminal = connect(adb_terminal("activated", model="pax-a920", attach="usb"), adb_driver)
    watcher = Watcher()
    with listening(watcher):
        report = check(terminal)
    assert report.identity is not None and report.errors == []
    assert watcher.sequence() == CHECK
    assert all(not JARGON.search(a.what) for a in watcher.activities)


def test_bytes_are_counted_as_they_arrive(
    adb_terminal: AdbFactory, adb_driver: AdbDriverFactory, english: None
) -> None:
    sim = adb_terminal("activated", model="pax-a920")  # memory: reads of many packets at once
    tapped = Tapped(sim.transport())
    terminal = AdbTerminal(AdbDriver(tapped, key_loader=lambda: adb_driver.key), "adb+sim://x")
    watcher = Watcher()
    try:
        with listening(watcher):
            terminal.facts()
    finally:
        terminal.close()
    # Each announcement starts a count; what it reached before the next one is what arrived.
    runs: list[int] = []
    for previous, activity in zip([None, *watcher.activities], watcher.activities, strict=False):
        if previous is None or activity.what != previous.what or activity.done is None:
            runs.append(0)
        if activity.unit == "bytes" and activity.done is not None:
            assert activity.done > runs[-1]  # it only grows
            runs[-1] = activity.done
    assert sum(runs) == tapped.count > 2_000  # every byte read, counted once


def test_waiting_for_the_operator_to_allow_debugging_is_announced(
    adb_terminal: AdbFactory, adb_driver: AdbDriverFactory, english: None
) -> None:
    sim = adb_terminal("auth-required", model="sunmi-p2", attach="usb")
    terminal = connect(sim, adb_driver)
    watcher = Watcher()
    with listening(watcher):
        check(terminal)
    assert watcher.sequence()[:3] == ["connecting over USB", AUTH_WAIT, CHECK[1]]


def run_wipe(terminal: AdbTerminal) -> Any:
    options = WipeOptions(operator="Test Operator", assume_yes=True, confirmed_settled=True)
    return WipeSession(terminal, load_policy(), options).run()


def test_wipe_steps_report_done_and_total(
    adb_terminal: AdbFactory, adb_driver: AdbDriverFactory, english: None
) -> None:
    sim = adb_terminal("activated", model="pax-a920", attach="usb")
    watcher = Watcher()
    with listening(watcher):
        result = run_wipe(connect(sim, adb_driver))
    # Android 7.1 does not report app data sizes: erased, with that said as an exception
    assert result.outcome is Outcome.ERASED_WITH_EXCEPTIONS, result.reasons
    steps = [(a.what, a.done, a.total) for a in watcher.activities if a.unit == "steps"]
    assert steps == WIPE
    texts = watcher.sequence()
    # the reads that check each step's effect say so too
    assert "checking that the app's data is gone" in texts
    assert "checking for saved Wi-Fi networks" in texts
    assert "checking that the merchant files are gone" in texts
    assert all(not JARGON.search(a.what) for a in watcher.activities)


def test_a_step_keeps_its_count_while_the_terminal_answers(
    adb_terminal: AdbFactory, adb_driver: AdbDriverFactory, english: None
) -> None:
    sim = adb_terminal("activated", model="pax-a920", attach="usb")
    watcher = Watcher()
    with listening(watcher):
        run_wipe(connect(sim, adb_driver))
    stepped = {what for what, _, _ in WIPE}
    assert [a for a in watcher.activities if a.what in stepped and a.unit != "steps"] == []


def test_without_a_listener_nothing_is_told_and_the_report_is_the_same(
    adb_terminal: AdbFactory, adb_driver: AdbDriverFactory, english: None
) -> None:
    outer = Watcher()
    quiet_terminal = connect(adb_terminal("activated", model="sunmi-p2"), adb_driver)
    with listening(outer), listening(None):
        quiet = check(quiet_terminal)
    assert outer.activities == []
    watched_terminal = connect(adb_terminal("activated", model="sunmi-p2"), adb_driver)
    with listening(Watcher()):
        watched = check(watched_terminal)

    def comparable(report: DeviceReport) -> dict[str, Any]:
        data = dict(to_json(report))
        for key in ("checked_at", "duration_s"):
            data.pop(key, None)
        return data

    assert comparable(quiet) == comparable(watched)


@pytest.mark.parametrize(
    ("scenario", "model"),
    [("activated", "pax-a920"), ("activated", "sunmi-p2"), ("fresh", "android-generic")],
)
def test_every_sentence_a_person_reads_is_translated(
    adb_terminal: AdbFactory,
    adb_driver: AdbDriverFactory,
    marked: None,
    scenario: str,
    model: str,
) -> None:
    terminal = connect(adb_terminal(scenario, model=model), adb_driver)
    watcher = Watcher()
    with listening(watcher):
        report = check(terminal)
        plan = terminal.wipe_plan()
    assert watcher.activities and all(a.what.startswith("«") for a in watcher.activities)
    assert report.activation is not None and report.merchant_data is not None
    sentences = [e.fact for e in report.activation.evidence if e.source != "properties"]
    sentences += list(report.merchant_data.notes) + list(report.merchant_data.apps)
    sentences += list(report.merchant_data.network_profiles)
    if report.network:
        sentences += list(report.network.details)
    sentences += [step.erases for step in plan] + [step.caveat for step in plan if step.caveat]
    assert sentences and all(s.startswith("«") for s in sentences), sentences
    assert all(u.partition(": ")[2].startswith("«") for u in report.unsupported)
    # Identifiers code relies on stay English: evidence sources and step names.
    assert not any(e.source.startswith("«") for e in report.activation.evidence)
    assert not any(step.name.startswith("«") for step in plan)


def test_an_unreadable_fact_is_evidence_in_words_and_an_english_error(
    adb_terminal: AdbFactory, adb_driver: AdbDriverFactory, marked: None
) -> None:
    sim = adb_terminal("activated", model="sunmi-p2", fail_command="dumpsys device_policy")
    terminal = connect(sim, adb_driver)
    report = check(terminal)
    assert report.activation is not None
    unreadable = [e.fact for e in report.activation.evidence if e.source == "unreadable"]
    assert len(unreadable) == 1 and unreadable[0].startswith("««device policy")
    assert any(e.startswith("device policy") for e in report.errors)  # --debug and JSON
