"""`erased` only with its certificate: preflight, the certifying state, re-issue, the deadline.

Real :class:`WipeSession` runs through the real drivers against simulated ZVT terminals; what is
checked is the simulator's own state and command log (was the terminal touched?) and the ledger's
runs and audit log (is the outcome final only with its certificate?). The last tests SIGKILL a
``posdiag wipe`` process exactly between recording the outcome and recording the certificate.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from posdiag.agent import cli, cli_common
from posdiag.agent.certificate import StationKey, verify_certificate
from posdiag.agent.integrity import certificate_in_ledger
from posdiag.agent.ledger import Ledger, RunStatus, audit_log, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.wipe import (
    CERTIFICATE_PENDING_EXIT,
    EXIT_CODES,
    Outcome,
    WipeOptions,
    WipeProgress,
    WipeResult,
    WipeSession,
    reissue_pending_certificates,
)
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.pytest_plugin import TEST_TIMERS, SimulatedZvt

PASSWORD = "314159"
POLICY = load_policy()
# Commands only a wipe step sends (the inspection sends Log-Off and Feig vendor requests too; the
# ledger's step journal shows that no step ran at all).
WIPE_COMMANDS = ("Set/Reset Terminal-ID", "End-of-Day")

ZvtFactory = Callable[..., SimulatedZvt]


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.delenv("POSDIAG_ZVT_PASSWORD", raising=False)


@dataclass
class Station:
    ledger: Ledger
    key: StationKey
    out: Path
    db: Path


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    db = tmp_path / "ledger.sqlite3"
    key = StationKey.load_or_create(tmp_path / "config" / "posdiag" / "station_ed25519.pem")
    with Ledger(sqlite_url(db)) as ledger:
        yield Station(ledger, key, tmp_path / "certificates", db)


def connect(sim: SimulatedZvt) -> ZvtTerminal:
    driver = ZvtDriver(sim.transport(), sim.link, password=PASSWORD, timers=TEST_TIMERS)
    return ZvtTerminal(driver, f"zvt+sim://{sim.scenario}")


def wipe(
    sim: SimulatedZvt,
    station: Station,
    *,
    ledger: Any = None,
    on_progress: Callable[[WipeProgress], None] | None = None,
    **options: Any,
) -> WipeResult:
    options.setdefault("out_dir", station.out)
    session = WipeSession(
        connect(sim),
        POLICY,
        WipeOptions(operator="Jana", assume_yes=True, **options),
        ledger=station.ledger if ledger is None else ledger,
        key=station.key,
        simulated=True,
        on_progress=on_progress,
    )
    return session.run()


def snapshot(sim: SimulatedZvt) -> dict[str, Any]:
    """What a wipe would change on the terminal."""
    state = sim.state
    return copy.deepcopy(
        {
            "terminal_id": state.terminal_id,
            "merchant_lines": state.merchant_lines,
            "transactions": state.transactions,
            "status_byte": state.status_byte,
        }
    )


def events(db_ledger: Ledger) -> list[str]:
    with db_ledger.engine.connect() as conn:
        return [r.event for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))]


def run_of(ledger: Ledger, run_id: int | None) -> Any:
    return next(r for r in ledger.runs() if r.id == run_id)


# --- exit codes and options -----------------------------------------------------------------------


def test_the_pending_exit_code_is_the_clis_and_distinct() -> None:
    assert CERTIFICATE_PENDING_EXIT == cli_common.EXIT_CERTIFICATE_PENDING == 7
    taken = {*EXIT_CODES.values(), cli.EXIT_USAGE, cli.EXIT_UNREACHABLE}
    assert CERTIFICATE_PENDING_EXIT not in taken
    result = WipeResult("zvt+sim://activated", Outcome.ERASED, certificate_pending=True)
    assert result.exit_code == 7
    assert result.to_json()["certificate_pending"] is True


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 0.0, 10 * 86_400.0])
def test_absurd_deadlines_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="deadline"):
        WipeOptions(operator="Jana", deadline_s=value)


# --- preflight: nothing is touched when the proof could not be kept ------------------------------


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder even root cannot write into (sysfs), else one made read-only by its mode."""
    if os.geteuid() == 0:
        return Path("/sys/fs")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


@pytest.mark.parametrize("where", ["read-only folder", "a file", "below a file"])
def test_an_unwritable_out_refuses_the_wipe_untouched(
    zvt_terminal: ZvtFactory, station: Station, tmp_path: Path, where: str
) -> None:
    sim = zvt_terminal("activated", password=PASSWORD)
    if where == "read-only folder":
        out = unwritable_folder(tmp_path)
    else:
        (tmp_path / "file").write_text("not a folder")
        out = tmp_path / "file" if where == "a file" else tmp_path / "file" / "certs"
    before = snapshot(sim)
    result = wipe(sim, station, out_dir=out)
    assert result.outcome is Outcome.REFUSED and result.exit_code == 6
    (reason,) = result.reasons
    assert reason.startswith(f"cannot write certificates to {out}: ")
    assert reason.endswith("choose another folder with --out")
    assert "\n" not in reason
    assert snapshot(sim) == before
    assert sim.simulator.model.commands_seen == []  # not even inspected
    assert station.ledger.runs() == []
    assert "wipe_step.started" not in events(station.ledger)


def test_an_unwritable_ledger_refuses_the_wipe_untouched(
    zvt_terminal: ZvtFactory, station: Station, tmp_path: Path
) -> None:
    sim = zvt_terminal("activated", password=PASSWORD)
    closed = Ledger(sqlite_url(tmp_path / "other.sqlite3"))
    closed.close()  # a ledger that takes no more writes
    before = snapshot(sim)
    result = wipe(sim, station, ledger=closed)
    assert result.outcome is Outcome.REFUSED
    (reason,) = result.reasons
    assert reason.startswith("cannot write to the ledger (")
    assert snapshot(sim) == before and sim.simulator.model.commands_seen == []


def test_the_cli_refuses_a_file_as_out(tmp_path: Path) -> None:
    target = tmp_path / "certs.txt"
    target.write_text("mine")
    db = tmp_path / "cli.sqlite3"
    from click.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(
        cli.main,
        [
            "wipe",
            "zvt+sim://activated",
            "--operator",
            "J",
            "--yes",
            "--out",
            str(target),
            "--ledger",
            sqlite_url(db),
        ],
    )
    assert result.exit_code == 6, result.output
    assert f"cannot write certificates to {target}: " in result.output
    assert target.read_text() == "mine"


def test_guard_refusals_are_one_finished_run(zvt_terminal: ZvtFactory, station: Station) -> None:
    sim = zvt_terminal("tampered", password=PASSWORD)
    result = wipe(sim, station)
    assert result.outcome is Outcome.REFUSED
    run = run_of(station.ledger, result.run_id)
    assert run.status is RunStatus.FINISHED and run.outcome.value == "refused"
    log = events(station.ledger)
    assert "wipe_run.recorded" in log and "wipe_run.started" not in log


# --- certifying: the outcome waits for its certificate -------------------------------------------


def break_out_dir_while_verifying(out: Path) -> Callable[[WipeProgress], None]:
    """Once the steps ran, the certificate folder becomes a file (a disk pulled, a mount gone)."""

    def progress(stage: WipeProgress) -> None:
        if stage.stage == "verifying" and not out.is_file():
            if out.exists():
                out.rename(out.with_name("certificates.moved"))
            out.write_text("in the way")

    return progress


def test_a_certificate_that_cannot_be_written_leaves_the_run_certifying(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_terminal("activated", password=PASSWORD)
    first = wipe(sim, station, on_progress=break_out_dir_while_verifying(station.out))
    assert first.outcome is Outcome.ERASED
    assert first.certificate_pending and first.certificate is None
    assert first.exit_code == CERTIFICATE_PENDING_EXIT
    assert any("run posdiag wipe again" in r and "--batch" in r for r in first.reasons)
    run = run_of(station.ledger, first.run_id)
    assert run.status is RunStatus.CERTIFYING and run.outcome.value == "erased"
    (pending,) = station.ledger.awaiting_certificate(family="zvt", serial=sim.state.serial)
    assert pending.content["outcome"] == "erased"
    assert sim.state.terminal_id is None  # the wipe itself did happen

    # The folder is back: the next wipe issues the certificate and does not wipe again.
    station.out.unlink()
    seen = len(sim.simulator.model.commands_seen)
    steps_before = events(station.ledger).count("wipe_step.started")
    second = wipe(sim, station)
    assert second.reissued and not second.certificate_pending
    assert second.outcome is Outcome.ERASED and second.exit_code == 0
    assert second.run_id == first.run_id
    assert "not wiped again" in second.reasons[0]
    again = sim.simulator.model.commands_seen[seen:]
    assert not any(command in again for command in WIPE_COMMANDS), again
    assert events(station.ledger).count("wipe_step.started") == steps_before
    assert run_of(station.ledger, first.run_id).status is RunStatus.FINISHED
    assert second.certificate is not None and second.printable is not None
    data = second.certificate.read_bytes()
    checked = verify_certificate(data, station.key.public_key_pem())
    assert checked.ok, checked.reason
    assert checked.content is not None
    assert checked.content == pending.content  # the content fixed with the outcome
    assert certificate_in_ledger(station.ledger, checked.content["report_id"], data).ok
    assert station.ledger.verify_chain().ok


def test_reissue_pending_certificates_by_batch_never_touches_a_terminal(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sims = [zvt_terminal("activated", password=PASSWORD, serial=s) for s in ("A1", "B2")]
    ids = []
    for sim in sims:
        if station.out.is_file():
            station.out.unlink()
        result = wipe(
            sim, station, batch="b-1", on_progress=break_out_dir_while_verifying(station.out)
        )
        assert result.certificate_pending
        ids.append(result.run_id)
    station.out.unlink()
    seen = [len(sim.simulator.model.commands_seen) for sim in sims]
    other = reissue_pending_certificates(station.ledger, station.key, station.out, batch="other")
    assert other == []
    paths = reissue_pending_certificates(station.ledger, station.key, station.out, batch="b-1")
    assert len(paths) == 2
    assert [len(sim.simulator.model.commands_seen) for sim in sims] == seen
    assert station.ledger.awaiting_certificate() == []
    for run_id, path in zip(ids, paths, strict=True):
        assert run_of(station.ledger, run_id).status is RunStatus.FINISHED
        assert verify_certificate(path.read_bytes()).ok
    assert reissue_pending_certificates(station.ledger, station.key, station.out) == []


# --- the deadline -------------------------------------------------------------------------------


def test_a_wipe_past_its_deadline_is_aborted_and_resumes(
    zvt_terminal: ZvtFactory, station: Station
) -> None:
    sim = zvt_terminal("activated", password=PASSWORD)
    started = time.monotonic()
    deadline = 2.0

    def stall(progress: WipeProgress) -> None:
        if progress.stage == "wiping" and progress.step is not None:
            time.sleep(max(0.0, started + deadline + 0.05 - time.monotonic()))

    first = wipe(sim, station, deadline_s=deadline, on_progress=stall)
    assert first.outcome is Outcome.ABORTED
    assert first.reasons == [
        "the wipe did not finish in time (2 s); run posdiag wipe again to resume"
    ]
    assert run_of(station.ledger, first.run_id).status is RunStatus.RUNNING  # resumable
    second = wipe(sim, station)
    assert second.outcome is Outcome.ERASED and second.resumed
    assert second.run_id == first.run_id


# --- a process killed between the outcome and its certificate ------------------------------------

KILLER = """
import os, signal, sys
import posdiag.agent.ledger as ledger
import posdiag.agent.wipe_certify as certify

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "before-write":
    certify.sign_certificate = die
else:
    ledger.Ledger.record_certificate = die
sys.argv[1:2] = []
from posdiag.agent.cli import main
main(prog_name="posdiag")
"""


@pytest.mark.parametrize("moment", ["before-write", "after-write"])
def test_a_kill_between_outcome_and_certificate_reissues_without_wiping(
    zvt_terminal: ZvtFactory, station: Station, tmp_path: Path, moment: str
) -> None:
    sim = zvt_terminal("activated", attach="tcp", password=PASSWORD)
    assert sim.address is not None
    command = [
        sys.executable, "-c", KILLER, moment,
        "wipe", sim.address, "--operator", "Jana", "--yes", "--json", "--password", PASSWORD,
        "--ledger", sqlite_url(station.db), "--out", str(station.out),
    ]  # fmt: skip
    victim = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert victim.returncode == -signal.SIGKILL, victim.stderr
    assert sim.state.terminal_id is None  # the steps ran before the kill

    (run,) = station.ledger.runs()
    assert run.status is RunStatus.CERTIFYING and run.outcome.value == "erased"
    written = sorted(station.out.glob("*.json")) if station.out.exists() else []
    assert len(written) == (1 if moment == "after-write" else 0)

    seen = len(sim.simulator.model.commands_seen)
    steps_before = events(station.ledger).count("wipe_step.started")
    again = subprocess.run(
        [sys.executable, "-m", "posdiag.agent", *command[4:]],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["outcome"] == "erased" and result["reissued"] is True
    assert result["steps"] == []
    commands = sim.simulator.model.commands_seen[seen:]
    assert not any(c in commands for c in WIPE_COMMANDS), commands
    assert events(station.ledger).count("wipe_step.started") == steps_before
    (run,) = station.ledger.runs()
    assert run.status is RunStatus.FINISHED
    certificate = Path(result["certificate"])
    assert sorted(station.out.glob("*.json")) == [certificate]
    if written:
        assert written == [certificate]  # the file of the killed process, recognised
    data = certificate.read_bytes()
    checked = verify_certificate(data)
    assert checked.ok and checked.content is not None, checked.reason
    assert certificate_in_ledger(station.ledger, checked.content["report_id"], data).ok
    assert station.ledger.verify_chain().ok


# --- posdiag verify CERT --ledger: the very file the ledger recorded ------------------------------


def test_verify_with_ledger_checks_the_recorded_hash(tmp_path: Path) -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    db, other_db, out = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3", tmp_path / "out"

    def wipe_into(database: Path) -> Path:
        done = runner.invoke(
            cli.main,
            ["wipe", "zvt+sim://activated", "--operator", "Jana", "--yes", "--json",
             "--ledger", sqlite_url(database), "--out", str(out)],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        return Path(json.loads(done.stdout)["certificate"])

    mine, foreign = wipe_into(db), wipe_into(other_db)
    ok = runner.invoke(cli.main, ["verify", str(mine), "--ledger", sqlite_url(db)])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("VALID signature by station")
    assert "recorded in the ledger for wipe run 1" in ok.stdout

    stranger = runner.invoke(cli.main, ["verify", str(foreign), "--ledger", sqlite_url(db)])
    assert stranger.exit_code == 1
    assert "no record of this certificate" in stranger.stdout
    assert runner.invoke(cli.main, ["verify", str(foreign)]).exit_code == 0  # valid by itself

    # A second, validly signed certificate with the same ID: right station, wrong file.
    key = StationKey.load_or_create()
    document = json.loads(mine.read_bytes())
    content = {**document["certificate"], "location": "elsewhere"}
    from posdiag.agent.certificate import document_bytes, sign_certificate

    twin = tmp_path / "twin.json"
    twin.write_bytes(document_bytes(sign_certificate(content, key)))
    assert verify_certificate(twin.read_bytes()).ok
    swapped = runner.invoke(cli.main, ["verify", str(twin), "--ledger", sqlite_url(db)])
    assert swapped.exit_code == 1
    assert "not the certificate the ledger recorded" in swapped.stdout
