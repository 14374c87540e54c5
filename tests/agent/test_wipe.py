"""The wipe workflow in-process: guards, outcomes, certificates, ledger, and no leaked secrets.

Every test drives a real :class:`WipeSession` through the real drivers against simulated
terminals (in-process memory links from the ``zvt_terminal`` / ``adb_terminal`` fixtures), with
a ledger and a station key in ``tmp_path``. The user's data and config folders are never touched:
``HOME``, ``XDG_DATA_HOME`` and ``XDG_CONFIG_HOME`` point into ``tmp_path`` for every test.

What is checked after a wipe is the *simulator's* state, not what posdiag says about it: an
outcome of ``erased`` must mean the terminal really holds no merchant data any more.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from posdiag.agent.certificate import StationKey, verify_certificate
from posdiag.agent.ledger import Ledger, RunStatus, sqlite_url
from posdiag.agent.logs import configure_logging
from posdiag.agent.policy import load_policy
from posdiag.agent.wipe import EXIT_CODES, Outcome, WipeOptions, WipeResult, WipeSession
from posdiag.drivers.adb.auth import AdbKey
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.model import Identity
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.pytest_plugin import TEST_TIMERS, SimulatedAdb, SimulatedZvt

TID = "52502000"
PASSWORD = "314159"  # the simulated terminal's ZVT password (not the well-known default)
ACCOUNT = "merchant-0042@example.invalid"
SSIDS = ("Cafe-Beispiel", "Cafe-Backoffice")
OPERATOR = "Jana Beispiel"
SUNMI_PAYMENT = "com.sunmi.payment.service"
SUNMI_PATHS = ("/sdcard/Sunmi/", "/sdcard/Download/")
POLICY = load_policy()

ZvtFactory = Callable[..., SimulatedZvt]
AdbFactory = Callable[..., SimulatedAdb]


# --- isolation and the station ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ledger, certificates and keys never reach the real user folders."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("POSDIAG_ZVT_PASSWORD", raising=False)


@pytest.fixture(scope="module")
def adb_key() -> AdbKey:
    """One ADB host key for the module (RSA-2048 generation is slow); never written to disk."""
    return AdbKey.generate()


@dataclass
class Station:
    """The wipe station of one test: ledger, signing key, certificate folder."""

    ledger: Ledger
    key: StationKey
    out: Path
    db: Path


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    db = tmp_path / "station" / "ledger.sqlite3"
    db.parent.mkdir()
    key = StationKey.load_or_create(tmp_path / "station" / "station_ed25519.pem")
    with Ledger(sqlite_url(db)) as ledger:
        yield Station(ledger, key, tmp_path / "certificates", db)


def zvt_connect(sim: SimulatedZvt, password: str = PASSWORD) -> ZvtTerminal:
    """A ZvtTerminal on a new link to the simulator (its state is shared by every link)."""
    driver = ZvtDriver(sim.transport(), sim.link, password=password, timers=TEST_TIMERS)
    return ZvtTerminal(driver, f"zvt+sim://{sim.scenario}")


def adb_connect(sim: SimulatedAdb, key: AdbKey) -> AdbTerminal:
    """An AdbTerminal on a new link to the simulator."""
    driver = AdbDriver(sim.transport(), key_loader=lambda: key, timeout=2.0, auth_timeout=1.0)
    return AdbTerminal(driver, f"adb+sim://{sim.scenario}?model={sim.model}")


def run_wipe(
    terminal: Any,
    station: Station,
    *,
    confirm: Callable[[str, str], bool] | None = None,
    **options: Any,
) -> WipeResult:
    """One WipeSession with the station's ledger and key; ``--yes`` unless a confirm is given."""
    options.setdefault("assume_yes", confirm is None)
    wipe_options = WipeOptions(operator=OPERATOR, out_dir=station.out, **options)
    session = WipeSession(
        terminal,
        POLICY,
        wipe_options,
        ledger=station.ledger,
        key=station.key,
        confirm=confirm,
        simulated=True,
    )
    return session.run()


def steps_by_name(result: WipeResult) -> dict[str, Any]:
    return {step.name: step for step in result.steps}


def zvt_sim(factory: ZvtFactory, scenario: str = "activated", **faults: Any) -> SimulatedZvt:
    return factory(scenario, password=PASSWORD, **faults)


def assert_no_certificate(result: WipeResult, station: Station) -> None:
    assert result.certificate is None and result.printable is None
    assert not station.out.exists() or not any(station.out.iterdir())


def assert_run_finished(station: Station, result: WipeResult) -> None:
    """The ledger holds the run, finished with the result's outcome, and its chain verifies."""
    assert result.run_id is not None
    run = next(r for r in station.ledger.runs() if r.id == result.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.outcome is not None and run.outcome.value == result.outcome.value
    assert station.ledger.open_wipe_run(run.family, run.serial) is None
    assert station.ledger.verify_chain().ok


# --- guards: refused, with a reason a person can act on -----------------------------------------


def test_tampered_terminal_is_refused_for_quarantine(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal, "tampered")
    result = run_wipe(zvt_connect(sim), station)
    assert result.outcome is Outcome.REFUSED and result.exit_code == 6
    assert len(result.reasons) == 1
    assert "quarantine" in result.reasons[0] and "never wiped" in result.reasons[0]
    assert result.steps == []
    assert sim.state.terminal_id == TID  # evidence left as it was
    assert sim.state.merchant_lines
    assert "Set/Reset Terminal-ID" not in sim.simulator.model.commands_seen
    assert_no_certificate(result, station)
    assert_run_finished(station, result)


def test_unsettled_zvt_without_settle_is_refused_and_keeps_the_money(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal, "unsettled")
    result = run_wipe(zvt_connect(sim), station)
    assert result.outcome is Outcome.REFUSED
    (reason,) = result.reasons
    assert "3 unsettled transactions (€47.57)" in reason
    assert "--settle" in reason
    assert [tx.amount_cents for tx in sim.state.transactions] == [2500, 958, 1299]
    assert sim.state.terminal_id == TID
    assert "End-of-Day" not in sim.simulator.model.commands_seen
    assert_no_certificate(result, station)
    assert_run_finished(station, result)


def test_unsettled_android_without_settle_is_refused_and_keeps_the_batch(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal("unsettled", model="sunmi-p2")
    before = dict(sim.state.files)
    result = run_wipe(adb_connect(sim, adb_key), station)
    assert result.outcome is Outcome.REFUSED
    (reason,) = result.reasons
    assert "3 unsettled transactions (€47.57)" in reason
    assert "--settle" not in reason  # which could not help: adb cannot settle
    assert "settle them in the payment app" in reason
    assert sim.state.files == before  # the open batch (and everything else) is still there
    assert sim.state.app(SUNMI_PAYMENT).data_files


def test_unsettled_zvt_with_settle_is_settled_then_erased(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal, "unsettled")
    result = run_wipe(zvt_connect(sim), station, settle=True)
    assert result.outcome is Outcome.ERASED, result.reasons
    assert result.steps[0].name == "settle"
    settle = steps_by_name(result)["settle"]
    assert settle.status == "done" and settle.verified is True
    assert sim.state.transactions == []
    assert sim.state.terminal_id is None
    commands = sim.simulator.model.commands_seen
    assert commands.index("End-of-Day") < commands.index("Set/Reset Terminal-ID")
    assert_run_finished(station, result)


@pytest.mark.parametrize("model", ["sunmi-p2", "pax-a920"])
def test_unsettled_android_with_settle_is_refused_it_cannot_settle_over_adb(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station, model: str
) -> None:
    sim = adb_terminal("unsettled", model=model)
    before = dict(sim.state.files)
    asked: list[str] = []

    def confirm(summary: str, serial: str) -> bool:
        asked.append(serial)
        return True

    result = run_wipe(adb_connect(sim, adb_key), station, settle=True, confirm=confirm)
    assert result.outcome is Outcome.REFUSED
    (reason,) = result.reasons
    assert "3 unsettled transactions (€47.57)" in reason
    assert "cannot be settled over its cable" in reason
    assert "settle them in the payment app" in reason
    assert asked == []  # refused before the operator is asked to confirm
    assert result.steps == []
    assert sim.state.files == before
    assert_no_certificate(result, station)
    assert_run_finished(station, result)


def test_settling_that_fails_refuses_and_erases_nothing(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal, "unsettled", fail_command="End-of-Day")
    result = run_wipe(zvt_connect(sim), station, settle=True)
    assert result.outcome is Outcome.REFUSED
    assert result.reasons[0].startswith("settling failed")
    assert "nothing was erased" in result.reasons[0]
    assert [s.name for s in result.steps] == ["settle"]
    assert len(sim.state.transactions) == 3
    assert sim.state.terminal_id == TID
    assert_run_finished(station, result)


def test_flat_android_battery_not_charging_is_refused(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal("low-battery")
    result = run_wipe(adb_connect(sim, adb_key), station)
    assert result.outcome is Outcome.REFUSED
    (reason,) = result.reasons
    assert "battery at 7% and not charging (minimum 20%)" in reason
    assert "charge it first" in reason
    # The refused unit is not kept from another station: no wait for this session's mark.
    serial = sim.state.serial
    with Ledger(sqlite_url(station.db), busy_timeout=0.2) as other_station:
        assert other_station.open_wipe_run("adb", serial) is None


def test_flat_battery_on_the_charger_is_not_refused(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal("low-battery", overrides={"battery": {"status": 2, "usb_powered": True}})
    result = run_wipe(adb_connect(sim, adb_key), station)
    assert result.outcome is not Outcome.REFUSED, result.reasons


def test_serial_mismatch_is_refused(zvt_terminal: ZvtFactory, station: Station) -> None:
    sim = zvt_sim(zvt_terminal)
    result = run_wipe(zvt_connect(sim), station, serial="17F59B20")
    assert result.outcome is Outcome.REFUSED
    (reason,) = result.reasons
    assert "serial 17F59B1F, not 17F59B20" in reason
    assert "check which terminal is connected" in reason
    assert sim.state.terminal_id == TID


def test_matching_serial_with_spaces_is_accepted(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal)
    result = run_wipe(zvt_connect(sim), station, serial=" 17F59B1F ")
    assert result.outcome is Outcome.ERASED, result.reasons


class _NoSerialZvt(ZvtTerminal):
    """A terminal whose identity carries no serial number."""

    def identify(self) -> Identity:
        return dataclasses.replace(super().identify(), serial=None)


def test_terminal_without_serial_is_refused(zvt_terminal: ZvtFactory, station: Station) -> None:
    sim = zvt_sim(zvt_terminal)
    driver = ZvtDriver(sim.transport(), sim.link, password=PASSWORD, timers=TEST_TIMERS)
    result = run_wipe(_NoSerialZvt(driver, "zvt+sim://activated"), station)
    assert result.outcome is Outcome.REFUSED
    assert any("no serial number" in r and "cannot be certified" in r for r in result.reasons)
    assert sim.state.terminal_id == TID


def test_several_guards_give_every_reason(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal(
        "unsettled",
        model="sunmi-p2",
        overrides={"battery": {"level": 5, "status": 3, "usb_powered": False, "ac_powered": False}},
    )
    result = run_wipe(adb_connect(sim, adb_key), station, serial="SOMEONE-ELSE")
    assert result.outcome is Outcome.REFUSED
    text = "\n".join(result.reasons)
    assert "not SOMEONE-ELSE" in text
    assert "unsettled" in text
    assert "battery at 5%" in text


# --- outcomes ------------------------------------------------------------------------------------


def test_zvt_activated_is_erased_and_the_terminal_holds_nothing(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal)
    result = run_wipe(zvt_connect(sim), station)
    assert result.outcome is Outcome.ERASED and result.exit_code == 0
    assert result.reasons == [] and result.exceptions == []
    assert [s.name for s in result.steps] == ["reset_terminal_id", "log_off", "factory_reset"]
    assert all(s.status == "done" and s.verified is True for s in result.steps)
    state = sim.state
    assert state.terminal_id is None
    assert state.status_byte == 0x51
    assert state.merchant_lines == []
    assert not state.keys_present
    assert state.host_operator == "" and state.host_address == ""
    assert result.after is not None and result.after.activation is not None
    assert result.after.activation.terminal_id is None
    assert_run_finished(station, result)


def test_sunmi_activated_is_erased_with_exceptions_for_device_owner_and_account(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal("activated", model="sunmi-p2")
    result = run_wipe(adb_connect(sim, adb_key), station)
    assert result.outcome is Outcome.ERASED_WITH_EXCEPTIONS and result.exit_code == 1
    assert result.reasons == []
    assert any(e.startswith("device owner com.sunmi.mdm") for e in result.exceptions)
    assert any("account(s)" in e for e in result.exceptions)
    assert all("terminal management system" in e for e in result.exceptions)
    assert [s.name for s in result.steps] == [
        f"clear:{SUNMI_PAYMENT}",
        "clear:com.sunmi.mdm",
        "forget_wifi",
        *(f"delete:{p}" for p in SUNMI_PATHS),
    ]
    assert all(s.status == "done" and s.verified is True for s in result.steps)
    state = sim.state
    assert state.app(SUNMI_PAYMENT).data_files == {}
    assert state.wifi.saved == []
    assert [p for p in state.files if p.startswith(SUNMI_PATHS)] == []
    assert_run_finished(station, result)


def test_pax_a920_on_android_7_lists_the_unverifiable_pm_clear(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal("activated", model="pax-a920-android7")
    result = run_wipe(adb_connect(sim, adb_key), station)
    assert result.outcome is Outcome.ERASED_WITH_EXCEPTIONS
    clears = [s for s in result.steps if s.name.startswith("clear:")]
    assert clears
    for step in clears:
        assert step.status == "done" and step.verified is None
        assert "not verifiable" in step.detail and "SDK 25" in step.detail
        package = step.name.removeprefix("clear:")
        assert any(package in e and "not verifiable" in e for e in result.exceptions)
        app = sim.state.app(package)
        assert app is None or app.data_files == {}  # done, only not observable over adb
    assert [p for p in sim.state.files if p.startswith(("/sdcard/PAX/", "/sdcard/Download/"))] == []


def test_zvt_that_lies_about_the_tid_reset_is_not_erased(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    # 06 1B answers success without unbinding; the Feig reset, which would also clear the TID,
    # is refused, so nothing but reading the state back can tell.
    sim = zvt_sim(zvt_terminal, lie_about="Set/Reset Terminal-ID", fail_command="0FA10255")
    result = run_wipe(zvt_connect(sim), station)
    assert result.outcome is Outcome.NOT_ERASED and result.exit_code == 4
    reset = steps_by_name(result)["reset_terminal_id"]
    assert reset.status == "done" and reset.verified is False
    assert any("still present after the step reported success" in r for r in result.reasons)
    assert any("terminal ID is still assigned" in r for r in result.reasons)
    assert sim.state.terminal_id == TID
    assert_run_finished(station, result)


@pytest.mark.parametrize(
    ("lie", "step"),
    [
        ("pm clear", f"clear:{SUNMI_PAYMENT}"),
        ("cmd wifi forget-network", "forget_wifi"),
        ("rm", "delete:/sdcard/Sunmi/"),
    ],
)
def test_android_that_lies_about_a_step_is_not_erased(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station, lie: str, step: str
) -> None:
    sim = adb_terminal("activated", model="sunmi-p2", lie_about=lie)
    result = run_wipe(adb_connect(sim, adb_key), station)
    assert result.outcome is Outcome.NOT_ERASED
    record = steps_by_name(result)[step]
    assert record.status == "done" and record.verified is False
    assert any("still present after the step reported success" in r for r in result.reasons)
    assert_run_finished(station, result)


def test_zvt_required_step_that_fails_is_not_erased_and_stops(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal, fail_command="Set/Reset Terminal-ID")
    result = run_wipe(zvt_connect(sim), station)
    assert result.outcome is Outcome.NOT_ERASED
    assert [s.name for s in result.steps] == ["reset_terminal_id"]  # nothing after a failure
    reset = result.steps[0]
    assert reset.status == "failed" and reset.verified is False and reset.detail
    assert any(r.startswith("step reset_terminal_id failed") for r in result.reasons)
    assert sim.simulator.model.commands_seen.count("Set/Reset Terminal-ID") == 1
    assert sim.state.terminal_id == TID
    assert sim.state.merchant_lines  # the factory reset did not run either
    assert_run_finished(station, result)


def test_android_required_step_that_fails_is_not_erased(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal("activated", model="sunmi-p2", fail_command="pm clear")
    result = run_wipe(adb_connect(sim, adb_key), station)
    assert result.outcome is Outcome.NOT_ERASED
    assert [s.status for s in result.steps] == ["failed"]
    assert any("pm failed" in r for r in result.reasons)
    assert sim.state.app(SUNMI_PAYMENT).data_files


def test_zvt_optional_factory_reset_that_fails_is_an_exception(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal, fail_command="0FA10255")
    result = run_wipe(zvt_connect(sim), station)
    assert result.outcome is Outcome.ERASED_WITH_EXCEPTIONS, result.reasons
    reset = steps_by_name(result)["factory_reset"]
    assert reset.status == "skipped"
    assert any(
        e.startswith("merchant configuration") and "not available" in e for e in result.exceptions
    )
    assert sim.state.terminal_id is None and sim.state.merchant_lines == []


def test_android_optional_factory_reset_that_fails_is_an_exception(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    sim = adb_terminal("activated", fail_command="cmd testharness")
    # the generic model has no batch-export recipe: the operator vouches for settlement
    result = run_wipe(adb_connect(sim, adb_key), station, confirmed_settled=True)
    assert result.outcome is Outcome.ERASED_WITH_EXCEPTIONS, result.reasons
    reset = steps_by_name(result)["factory_reset"]
    assert reset.status == "skipped" and reset.verified is False
    assert "failed" in reset.detail
    assert any("test-harness reset" in e and "not available" in e for e in result.exceptions)


def test_declined_confirmation_is_aborted_and_changes_nothing(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal)
    asked: list[tuple[str, str]] = []

    def decline(summary: str, expected: str) -> bool:
        asked.append((summary, expected))
        return False

    result = run_wipe(zvt_connect(sim), station, confirm=decline)
    assert result.outcome is Outcome.ABORTED and result.exit_code == 5
    assert result.reasons == [
        "the operator did not confirm the wipe (the serial typed must match the terminal's)"
    ]
    ((summary, expected),) = asked
    assert expected == "17F59B1F"
    assert "serial 17F59B1F" in summary and "This erases:" in summary
    assert "the terminal ID binding the unit to the merchant" in summary
    assert TID not in summary
    assert sim.state.terminal_id == TID
    assert result.steps == []
    assert_no_certificate(result, station)


def test_accepted_confirmation_proceeds(zvt_terminal: ZvtFactory, station: Station) -> None:
    sim = zvt_sim(zvt_terminal)
    result = run_wipe(zvt_connect(sim), station, confirm=lambda summary, serial: True)
    assert result.outcome is Outcome.ERASED


def test_no_confirmation_and_no_yes_is_an_error(zvt_terminal: ZvtFactory, station: Station) -> None:
    sim = zvt_sim(zvt_terminal)
    terminal = zvt_connect(sim)
    with pytest.raises(PosdiagError, match="needs confirmation"):
        run_wipe(terminal, station, assume_yes=False)
    assert sim.state.terminal_id == TID
    assert not terminal._opened  # the line is released even so


def test_exit_codes_are_distinct() -> None:
    assert EXIT_CODES == {
        Outcome.ERASED: 0,
        Outcome.ERASED_WITH_EXCEPTIONS: 1,
        Outcome.NOT_ERASED: 4,
        Outcome.ABORTED: 5,
        Outcome.REFUSED: 6,
    }


# --- certificates and ledger -----------------------------------------------------------------


CERTIFIED = {
    "erased": lambda z, a, k: zvt_connect(zvt_sim(z)),
    "erased_with_exceptions": lambda z, a, k: adb_connect(a("activated", model="sunmi-p2"), k),
    "not_erased": lambda z, a, k: adb_connect(
        a("activated", model="sunmi-p2", lie_about="cmd wifi forget-network"), k
    ),
}


@pytest.mark.parametrize("outcome", sorted(CERTIFIED))
def test_certificate_verifies_and_matches_the_result(
    zvt_terminal: ZvtFactory,
    adb_terminal: AdbFactory,
    adb_key: AdbKey,
    station: Station,
    outcome: str,
) -> None:
    terminal = CERTIFIED[outcome](zvt_terminal, adb_terminal, adb_key)
    result = run_wipe(terminal, station, location="Depot 3", destination="resale")
    assert result.outcome.value == outcome
    assert result.certificate is not None and result.printable is not None
    assert result.certificate.parent == station.out and result.certificate.exists()
    assert result.printable.exists()
    text = result.certificate.read_text(encoding="utf-8")
    checked = verify_certificate(text, station.key.public_key_pem())
    assert checked.ok, checked.reason
    content = checked.content
    assert content is not None
    assert content["outcome"] == outcome
    assert content["simulated"] is True
    assert content["person"]["name"] == OPERATOR
    assert content["destination"]["destination"] == "resale"
    assert [(s["name"], s["status"], s["verified"]) for s in content["steps"]] == [
        (s.name, s.status, s.verified) for s in result.steps
    ]
    if outcome == "erased":
        assert content["exceptions"] == []
    else:
        assert content["exceptions"]
    if outcome == "not_erased":
        assert set(result.reasons) <= set(content["exceptions"])
    ident = result.before.identity if result.before else None
    assert ident is not None and content["media"]["serial_number"] == ident.serial
    # the ledger holds the run, its steps as journaled, and the certificate's digest
    assert_run_finished(station, result)
    run = next(r for r in station.ledger.runs() if r.id == result.run_id)
    assert run.operator == OPERATOR
    assert [s.name for s in run.steps] == [s.name for s in result.steps]
    assert all(s.status.value == "done" for s in run.steps)
    events = _audit_events(station)
    assert "certificate.recorded" in events
    # the outcome is recorded with the certificate content (certifying), and the run is
    # finished only by recording the certificate
    certifying = events.index("wipe_run.certifying")
    assert certifying < events.index("certificate.recorded") < events.index("wipe_run.finished")


def _audit_events(station: Station) -> list[str]:
    import sqlalchemy as sa

    from posdiag.agent.ledger import audit_log

    with station.ledger.engine.connect() as conn:
        return [row.event for row in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))]


def test_refused_and_aborted_runs_get_no_certificate(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    refused = run_wipe(zvt_connect(zvt_sim(zvt_terminal, "tampered")), station)
    aborted = run_wipe(
        zvt_connect(zvt_sim(zvt_terminal)), station, confirm=lambda summary, serial: False
    )
    assert (refused.outcome, aborted.outcome) == (Outcome.REFUSED, Outcome.ABORTED)
    assert_no_certificate(refused, station)
    assert_no_certificate(aborted, station)
    assert "certificate.recorded" not in _audit_events(station)
    assert station.ledger.verify_chain().ok


def test_a_second_wipe_of_an_erased_terminal_is_a_new_run(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_sim(zvt_terminal)
    first = run_wipe(zvt_connect(sim), station)
    second = run_wipe(zvt_connect(sim), station)
    assert first.outcome is second.outcome is Outcome.ERASED
    assert not second.resumed and second.run_id != first.run_id
    assert second.certificate != first.certificate
    assert station.ledger.verify_chain().ok


# --- secrets never leak ----------------------------------------------------------------------


def _found(secret: str, blob: str) -> bool:
    """Whether ``secret`` stands in ``blob`` as itself, not as a chance run inside hex/base64."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", blob) is not None


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """posdiag's own logging (JSON, debug) into a buffer, restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("json", "debug", stream)
    yield stream
    for handler in list(root.handlers):
        if handler.get_name() == "posdiag":
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def _pdf_text(pdf: bytes) -> str:
    """What the certificate PDF draws, decoded (its streams are compressed)."""
    from posdiag.agent.certificate.pdf import drawn_text

    text = drawn_text(pdf)
    assert "Tj" in text or "TJ" in text  # text was found, so a search in it means something
    return text


def test_no_secret_reaches_certificates_ledger_or_logs(
    zvt_terminal: ZvtFactory,
    adb_terminal: AdbFactory,
    adb_key: AdbKey,
    station: Station,
    json_logs: io.StringIO,
) -> None:
    zvt = run_wipe(zvt_connect(zvt_sim(zvt_terminal, "unsettled")), station, settle=True)
    sunmi = run_wipe(adb_connect(adb_terminal("activated", model="sunmi-p2"), adb_key), station)
    lying = run_wipe(
        adb_connect(
            adb_terminal("activated", model="sunmi-p2", lie_about="cmd wifi forget-network"),
            adb_key,
        ),
        station,
    )
    refused = run_wipe(adb_connect(adb_terminal("unsettled", model="pax-a920"), adb_key), station)
    assert [r.outcome for r in (zvt, sunmi, lying, refused)] == [
        Outcome.ERASED,
        Outcome.ERASED_WITH_EXCEPTIONS,
        Outcome.NOT_ERASED,
        Outcome.REFUSED,
    ]
    station.ledger.close()
    logs = json_logs.getvalue()
    assert '"event": "wipe.done"' in logs  # the capture works
    documents = {
        str(path): _pdf_text(path.read_bytes())
        if path.suffix == ".pdf"
        else path.read_text(encoding="utf-8")
        for path in sorted(station.out.iterdir())
    }
    assert len(documents) == 9  # JSON, HTML and PDF of three certificates
    stores = {
        str(path): path.read_bytes().decode("utf-8", "replace")
        for path in station.db.parent.glob("ledger.sqlite3*")
    }
    results = {
        r.outcome.value: json.dumps(r.to_json(), ensure_ascii=False)
        for r in (zvt, sunmi, lying, refused)
    }
    haystacks = {**documents, **stores, **results, "logs": logs}
    secrets = {
        "terminal ID": TID,
        "ZVT password": PASSWORD,
        "account": ACCOUNT,
        "account local part": ACCOUNT.split("@")[0],
        **{f"SSID {ssid}": ssid for ssid in SSIDS},
        "merchant ID": "MID-0042",
    }
    station_pem = station.key.path.read_text() if station.key.path else ""
    adb_pem = adb_key.to_pem().decode("ascii")
    key_bodies = {
        "station private key": "".join(station_pem.splitlines()[1:-1]),
        "adb private key": "".join(adb_pem.splitlines()[1:2]),
    }
    leaks = [
        f"{what} in {where}"
        for where, blob in haystacks.items()
        for what, secret in secrets.items()
        if _found(secret, blob)
    ]
    leaks += [
        f"{what} in {where}"
        for where, blob in haystacks.items()
        for what, body in key_bodies.items()
        if body and body in blob
    ]
    assert "PRIVATE KEY" not in "".join(haystacks.values())
    assert leaks == []
    # what a person needs is still there, masked
    zvt_certificate = json.loads(documents[str(zvt.certificate)])
    assert zvt_certificate["certificate"]["pre_wipe"]["activation"]["terminal_id"] == "****2000"


def test_unreadable_open_batch_on_a_bound_terminal_needs_the_operators_word(
    adb_terminal: AdbFactory, adb_key: AdbKey, station: Station
) -> None:
    # android-generic has no batch-export recipe: posdiag cannot see unsettled payments
    sim = adb_terminal("activated")
    refused = run_wipe(adb_connect(sim, adb_key), station)
    assert refused.outcome is Outcome.REFUSED
    assert "--confirmed-settled" in refused.reasons[0]
    assert sim.state.wifi.saved  # nothing was erased

    done = run_wipe(adb_connect(sim, adb_key), station, confirmed_settled=True)
    assert done.outcome in (Outcome.ERASED, Outcome.ERASED_WITH_EXCEPTIONS), done.reasons
    assert not sim.state.wifi.saved
