"""The Android check in one round trip: the same report as one command at a time, one stream.

Every terminal is a real :class:`AdbTerminal` on a real :class:`AdbDriver` against the simulated
unit; streams are counted where they land, at the simulator (``simulator.opened``: OPENs per
service kind). The one-by-one terminal (``batched=False``) is today's way and the reference:
batched, every report must come out identical, and a batch that cannot be trusted must fall back
to it rather than hand any command another's output.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.policy import load_policy
from posdiag.agent.report import to_json
from posdiag.drivers.adb import batch as batch_module
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.drivers.model import QUICK_PROBES, CheckScope
from posdiag.simulators.pytest_plugin import AdbDriverFactory, SimulatedAdb

AdbFactory = Callable[..., SimulatedAdb]

MODELS = ["pax-a920", "pax-a920-android7", "sunmi-p2", "newland-n910", "android-generic"]
SCENARIOS = ["activated", "unsettled", "fresh", "low-battery", "no-network"]
LEGACY = {"device": {"features": ["cmd"]}}
"""A unit without shell_v2: plain ``shell:``, no exit codes, stdout and stderr on one channel."""


@pytest.fixture(autouse=True)
def _private_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


class Unit:
    """One simulated unit and an AdbTerminal on it."""

    def __init__(
        self,
        adb_terminal: AdbFactory,
        adb_driver: AdbDriverFactory,
        scenario: str,
        model: str,
        *,
        batched: bool,
        attach: str = "memory",
        driver_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.sim = adb_terminal(scenario, model=model, attach=attach, **options)
        driver = adb_driver(self.sim, open=False, **(driver_options or {}))
        self.terminal = AdbTerminal(driver, f"adb+sim://{scenario}?model={model}", batched=batched)

    @property
    def opened(self) -> dict[str, int]:
        return dict(self.sim.simulator.opened)

    def report(self, scope: CheckScope | None = None) -> dict[str, Any]:
        report = to_json(
            inspect_terminal(self.terminal, load_policy(None), simulated=True, scope=scope)
        )
        for key in ("checked_at", "duration_s"):
            report.pop(key)
        return report


@pytest.fixture
def unit(adb_terminal: AdbFactory, adb_driver: AdbDriverFactory) -> Callable[..., Unit]:
    def make(scenario: str, model: str, *, batched: bool = True, **options: Any) -> Unit:
        return Unit(adb_terminal, adb_driver, scenario, model, batched=batched, **options)

    return make


# --- the same report -----------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("model", MODELS)
def test_batched_and_one_by_one_checks_give_the_same_report(
    unit: Callable[..., Unit], model: str, scenario: str
) -> None:
    batched = unit(scenario, model)
    one_by_one = unit(scenario, model, batched=False)
    report = batched.report()
    assert report == one_by_one.report()
    assert batched.terminal.facts() == one_by_one.terminal.facts()
    assert report["errors"] == []
    assert batched.opened == {"shell": 1}  # the whole check: one shell stream, nothing else
    assert one_by_one.opened["shell"] >= 10  # what it replaced (the test can fail)


@pytest.mark.parametrize("model", ["pax-a920", "newland-n910", "android-generic"])
@pytest.mark.parametrize("scenario", ["activated", "unsettled"])
def test_without_shell_v2_the_same_report_in_one_shell_and_one_sync(
    unit: Callable[..., Unit], model: str, scenario: str
) -> None:
    batched = unit(scenario, model, overrides=LEGACY)
    one_by_one = unit(scenario, model, batched=False, overrides=LEGACY)
    assert batched.report() == one_by_one.report()
    assert batched.terminal.facts() == one_by_one.terminal.facts()
    assert not batched.terminal.driver.shell_v2
    entry = batched.terminal.facts().entry
    assert entry is not None
    # the pending-batch export is binary: without shell v2 it is read through sync, as before
    syncs = {"sync": 1} if entry.pending_files else {}
    assert batched.opened == {"shell": 1, **syncs}
    assert sum(batched.opened.values()) <= 2


@pytest.mark.parametrize("attach", ["usb", "tcp"])
def test_the_same_report_over_usb_and_tcp(unit: Callable[..., Unit], attach: str) -> None:
    batched = unit("unsettled", "newland-n910", attach=attach)
    one_by_one = unit("unsettled", "newland-n910", batched=False, attach=attach)
    assert batched.report() == one_by_one.report()
    assert batched.terminal.facts().pending is not None
    assert batched.terminal.facts().pending == one_by_one.terminal.facts().pending
    assert batched.opened == {"shell": 1}


@pytest.mark.parametrize("model", ["pax-a920", "sunmi-p2"])
def test_a_hostile_units_text_reads_the_same_batched(unit: Callable[..., Unit], model: str) -> None:
    batched = unit("activated", model, hostile_text=True)
    one_by_one = unit("activated", model, batched=False, hostile_text=True)
    assert batched.report() == one_by_one.report()
    assert batched.opened == {"shell": 1}


@pytest.mark.parametrize("fault", ["fail_command", "lie_about"])
def test_a_command_that_fails_inside_the_batch_fails_as_it_would_alone(
    unit: Callable[..., Unit], fault: str
) -> None:
    options = {fault: "dumpsys device_policy"}
    batched = unit("activated", "sunmi-p2", **options)
    one_by_one = unit("activated", "sunmi-p2", batched=False, **options)
    report = batched.report()
    assert report == one_by_one.report()
    if fault == "fail_command":  # dumpsys printed nothing: refused, noted, not "no owner"
        assert any("device policy" in e and "printed nothing" in e for e in report["errors"])
    assert batched.opened == {"shell": 1}


# --- untrusted batches fall back -----------------------------------------------------------------


def test_the_nonce_in_a_units_output_makes_the_check_ask_one_by_one(
    unit: Callable[..., Unit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A property holding the batch's nonce (planted: no real unit can know it beforehand)."""
    nonce = "5eed" * 8
    monkeypatch.setattr(batch_module.secrets, "token_hex", lambda n: nonce)
    forged = {"device": {"extra_props": {"persist.evil": f"posdiag.{nonce}.1.begin"}}}
    batched = unit("activated", "pax-a920", overrides=forged)
    one_by_one = unit("activated", "pax-a920", batched=False, overrides=forged)
    assert batched.report() == one_by_one.report()
    assert batched.terminal.facts().props["persist.evil"].endswith(".1.begin")
    assert batched.opened["shell"] == 1 + one_by_one.opened["shell"]  # the batch, then 1 by 1


def test_markers_of_another_nonce_in_a_file_name_are_just_a_file_name(
    unit: Callable[..., Unit],
) -> None:
    name = f"posdiag.{secrets.token_hex(16)}.12.end.0"
    files = {"files": {f"/sdcard/PAX/{name}": "x"}}
    batched = unit("activated", "pax-a920", overrides=files)
    one_by_one = unit("activated", "pax-a920", batched=False, overrides=files)
    assert batched.report() == one_by_one.report()
    assert name in batched.terminal.facts().files["/sdcard/PAX/"]
    assert batched.opened == {"shell": 1}


def test_a_batch_over_the_output_cap_falls_back_to_one_by_one(
    unit: Callable[..., Unit],
) -> None:
    cap = {"max_response": 4096}  # each command fits; the whole batch (~6 KB) does not
    batched = unit("activated", "pax-a920", driver_options=cap)
    one_by_one = unit("activated", "pax-a920", batched=False, driver_options=cap)
    report = batched.report()
    assert report == one_by_one.report()
    assert report["errors"] == []
    assert batched.opened["shell"] == 1 + one_by_one.opened["shell"]


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-by-one"])
def test_a_unit_that_never_answers_fails_the_check_as_fast_either_way(
    unit: Callable[..., Unit], batched: bool
) -> None:
    hung = unit(
        "activated", "pax-a920", batched=batched, hang=True, driver_options={"timeout": 0.3}
    )
    report = hung.report()
    assert report["verdict"]["status"] == "unreachable"
    assert hung.opened == {"shell": 1}  # no second wait for the same silence


# --- quick scope ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["activated", "unsettled", "fresh"])
@pytest.mark.parametrize("model", ["pax-a920", "sunmi-p2", "newland-n910", "android-generic"])
def test_a_quick_check_is_one_stream_and_agrees_with_the_full_check(
    unit: Callable[..., Unit], model: str, scenario: str
) -> None:
    quick = unit(scenario, model)
    full = unit(scenario, model)
    quick_report = quick.report(CheckScope(quick=True, host_dialup=False))
    full_report = full.report()
    assert quick.opened == {"shell": 1}
    assert quick_report["scope"] == "quick"
    for probe, key in (("identify", "device"), ("activation", "activation")):
        assert quick_report[key] == full_report[key], probe
    assert quick_report["merchant_data"] == full_report["merchant_data"]
    for probe in QUICK_PROBES:  # what else a quick check runs needs nothing more (tamper)
        assert probe in ("identify", "activation", "merchant_data") or probe in str(
            quick_report["unsupported"]
        )
    facts = quick.terminal.facts()
    assert facts.battery is None and facts.telephony is None and facts.app_versions == {}
    assert facts.airplane_mode is None


def test_a_quick_check_one_by_one_asks_only_what_it_needs(unit: Callable[..., Unit]) -> None:
    quick = unit("activated", "pax-a920", batched=False)
    full = unit("activated", "pax-a920", batched=False)
    quick.report(CheckScope(quick=True, host_dialup=False))
    full.report()
    # battery, telephony, airplane mode and three app versions are not asked
    assert quick.opened["shell"] == full.opened["shell"] - 6


def test_a_wider_scope_reads_again_what_a_quick_check_skipped(unit: Callable[..., Unit]) -> None:
    one = unit("activated", "pax-a920")
    terminal = one.terminal
    terminal.set_scope(CheckScope(quick=True))
    assert terminal.facts().battery is None
    terminal.set_scope(CheckScope(quick=True))  # the same scope: nothing read again
    assert one.opened == {"shell": 1}
    terminal.set_scope(CheckScope())
    assert terminal.facts().battery is not None
    assert one.opened == {"shell": 2}
    terminal.close()
