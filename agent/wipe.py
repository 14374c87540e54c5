"""The wipe: guarded, journaled, verified; it removes a merchant's data or says why not.

Order of work, and why:

1. **Inspect** the terminal (the same report as ``check``), so every decision rests on what the
   terminal says now, not on what the operator remembers.
2. **Guards** refuse, with a reason a person can act on: a tampered unit is evidence (never wiped),
   unsettled money is the merchant's (settled only with consent, ``--settle``), a nearly flat
   battery can die mid-wipe, and the terminal on the cable must be the one the operator confirmed.
3. **Confirmation**: the operator sees model, serial and what will be erased; ``--yes`` for
   unattended stations, still checked against ``--serial``.
4. **Steps** from the family's ``wipe_plan()``, each journaled in the ledger before and after it
   runs. A run that stops half-way (cable pulled, process killed) stays open in the ledger; the
   next ``posdiag wipe`` resumes it: steps recorded as done are *verified by reading state*, not
   repeated blindly, and unfinished ones are run.
5. **Verification** by reading the terminal back (a fresh inspection). A command's "OK" never
   counts: a terminal that claims success without doing the work ends ``not_erased``.
6. **Outcome** and, when steps ran, a signed certificate.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from posdiag.drivers.errors import (
    AuthenticationError,
    PosdiagError,
    ProtocolError,
    TransportError,
    UnsupportedError,
)
from posdiag.drivers.model import ActivationState, Terminal, WipeStep

from . import __version__
from .inspect import inspect_terminal
from .policy import Policy
from .report import DeviceReport, money_text, record_report, to_json, utc_now_text

log = structlog.get_logger(__name__)


class Outcome(enum.StrEnum):
    """How a wipe ended."""

    ERASED = "erased"
    ERASED_WITH_EXCEPTIONS = "erased_with_exceptions"
    NOT_ERASED = "not_erased"
    ABORTED = "aborted"
    REFUSED = "refused"


# Distinct exit codes; 2 (usage) and 3 (unreachable) are shared with every command.
EXIT_CODES = {
    Outcome.ERASED: 0,
    Outcome.ERASED_WITH_EXCEPTIONS: 1,
    Outcome.NOT_ERASED: 4,
    Outcome.ABORTED: 5,
    Outcome.REFUSED: 6,
}
UNVERIFIABLE_EVIDENCE = ("device policy", "accounts")


@dataclass
class WipeOptions:
    """What the operator decided."""

    operator: str
    operator_title: str | None = None
    organisation: str | None = None
    location: str | None = None
    destination: str | None = None
    settle: bool = False
    assume_yes: bool = False
    serial: str | None = None
    out_dir: Path | None = None
    confirmed_settled: bool = False  # the operator settled a terminal posdiag cannot read
    batch: str | None = None  # the station run this wipe belongs to (for the manifest)


@dataclass
class StepResult:
    """One step as it ended."""

    name: str
    erases: str
    status: str  # done, verified (done earlier, checked now), failed, skipped, not_run
    verified: bool | None = None
    detail: str = ""


@dataclass
class WipeResult:
    """Everything the operator, the ledger and the certificate need."""

    address: str
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    before: DeviceReport | None = None
    after: DeviceReport | None = None
    certificate: Path | None = None
    printable: Path | None = None
    run_id: int | None = None
    resumed: bool = False

    @property
    def exit_code(self) -> int:
        """The process exit code for this outcome."""
        return EXIT_CODES[self.outcome]

    def to_json(self) -> dict[str, Any]:
        """One object for ``--json``."""
        return {
            "schema": "posdiag.wipe/1",
            "address": self.address,
            "outcome": self.outcome.value,
            "reasons": self.reasons,
            "exceptions": self.exceptions,
            "resumed": self.resumed,
            "steps": [s.__dict__ for s in self.steps],
            "certificate": str(self.certificate) if self.certificate else None,
            "printable": str(self.printable) if self.printable else None,
        }


Confirm = Callable[[str, str], bool]
"""Shows the summary, asks the operator; returns True to go on. Args: summary, expected serial."""


@dataclass(frozen=True)
class WipeProgress:
    """Where a wipe is, for a live view: sent to ``on_progress`` as the session moves on.

    Stages, in order: ``inspecting``, ``identified`` (``report`` is the first inspection, before
    anything is changed: a station locks the serial here), ``wiping`` (``done`` of ``total``
    steps, ``step`` the one about to run), ``verifying``, ``finished``.
    """

    stage: str
    done: int = 0
    total: int = 0
    step: str | None = None
    report: DeviceReport | None = None


OnProgress = Callable[[WipeProgress], None]


class WipeInterrupted(PosdiagError):
    """The caller asked the wipe to stop; it stops between steps, the run stays resumable."""


class WipeSession:
    """One wipe of one terminal, with its ledger and signing key.

    Args:
        terminal: the connected-on-demand terminal.
        policy: thresholds (battery minimum…).
        options: the operator's decisions.
        ledger: the journal (``posdiag.agent.ledger.Ledger``); None runs without one (tests).
        key: the station's signing key (``posdiag.agent.certificate.StationKey``).
        confirm: the interactive confirmation, used unless ``options.assume_yes``.
        simulated: the terminal is a simulator (recorded in reports).
        on_progress: called (in this thread) as the wipe moves on; it may raise
            :class:`WipeInterrupted` to stop before anything (more) is changed.
        stop: when set, the wipe stops before its next step (SIGTERM, a station's deadline);
            a step that is running always finishes and is journaled.
    """

    def __init__(
        self,
        terminal: Terminal,
        policy: Policy,
        options: WipeOptions,
        *,
        ledger: Any = None,
        key: Any = None,
        confirm: Confirm | None = None,
        simulated: bool = False,
        on_progress: OnProgress | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.terminal = terminal
        self.policy = policy
        self.options = options
        self.ledger = ledger
        self.key = key
        self.confirm = confirm
        self.simulated = simulated
        self.on_progress = on_progress
        self.stop = stop
        self.started_at = utc_now_text()
        self._steps_done = 0
        self._steps_total = 0

    # --- the workflow ----------------------------------------------------------------------------

    def run(self) -> WipeResult:
        """Inspect, guard, confirm, run, verify, certify."""
        result = WipeResult(self.terminal.address, Outcome.ABORTED)
        try:
            self._run(result)
        except AuthenticationError:
            raise
        except WipeInterrupted as exc:
            result.outcome = Outcome.ABORTED
            if result.run_id is not None:  # a run was opened: it stays open for its resume
                result.reasons.append(f"{exc}; run posdiag wipe again to resume")
                self._audit("wipe.interrupted", run_id=result.run_id, reason=str(exc))
            else:
                result.reasons.append(f"{exc}; nothing was changed")
        except (TransportError, ProtocolError) as exc:
            result.outcome = Outcome.ABORTED
            result.reasons.append(
                f"the terminal stopped answering: {exc}; run posdiag wipe again to resume"
            )
            self._audit("wipe.aborted", run_id=result.run_id, reason=str(exc))
        finally:
            self.terminal.close()
        log.info("wipe.done", address=result.address, outcome=result.outcome.value)
        self._progress("finished")
        return result

    def _progress(self, stage: str, step: str | None = None, report: Any = None) -> None:
        if self.on_progress is not None:
            self.on_progress(
                WipeProgress(stage, self._steps_done, self._steps_total, step, report)
            )

    def _check_stop(self, before: str) -> None:
        if self.stop is not None and self.stop.is_set():
            raise WipeInterrupted(f"stopped before {before}")

    def _run(self, result: WipeResult) -> None:
        self._progress("inspecting")
        before = inspect_terminal(
            self.terminal, self.policy, simulated=self.simulated, keep_open=True
        )
        result.before = before
        if before.identity is None:
            result.reasons.extend(before.verdict.reasons or ("the terminal did not answer",))
            return
        self._progress("identified", report=before)
        device_id = self._record_inspection(before)
        plan = self.terminal.wipe_plan()
        refusal = self._guards(before, can_settle=any(s.name == "settle" for s in plan))
        if refusal:
            result.outcome = Outcome.REFUSED
            result.reasons.extend(refusal)
            self._finish_refused(device_id, result)
            return
        if not self._confirmed(before, plan):
            result.outcome = Outcome.ABORTED
            result.reasons.append(
                "the operator did not confirm the wipe (the serial typed must match the terminal's)"
            )
            return
        self._check_stop("the wipe started")
        run = self._open_run(device_id, before)
        result.run_id, result.resumed = run
        recorded = self._recorded_steps(result.run_id)
        pending = before.merchant_data.pending_transactions if before.merchant_data else None
        settle = next((s for s in plan if s.name == "settle"), None)
        settles = settle is not None and (bool(pending and pending.count) or "settle" in recorded)
        self._steps_total = sum(1 for s in plan if s.name != "settle") + int(settles)
        self._progress("wiping")
        if pending is not None and pending.count:
            if not self._settle(settle, result, recorded):
                result.outcome = Outcome.REFUSED
                self._finish(result)
                return
        elif settle is not None and settle.name in recorded:
            # settled earlier in this (resumed) run: check it and keep it on the certificate
            self._step(settle, result, recorded)
        for step in plan:
            if step.name == "settle":
                continue  # settled above when consented; an empty store needs no settling
            self._step(step, result, recorded)
            if result.outcome is Outcome.NOT_ERASED:
                break
        self._progress("verifying")
        self._verify(result, plan)
        self._finish(result)

    def _inspect(self) -> DeviceReport:
        return inspect_terminal(
            self.terminal, self.policy, simulated=self.simulated, keep_open=True
        )

    # --- guards ----------------------------------------------------------------------------------

    def _guards(self, report: DeviceReport, can_settle: bool = True) -> list[str]:
        reasons: list[str] = []
        if report.tamper and report.tamper.tampered:
            reasons.append(
                "tampered ("
                + ("; ".join(report.tamper.details) or "tamper reported")
                + "): verdict quarantine; a tampered unit is kept for investigation, never wiped"
            )
        serial = report.identity.serial if report.identity else None
        if not serial:
            reasons.append("the terminal reported no serial number: it cannot be certified")
        elif self.options.serial and self.options.serial.strip() != serial:
            reasons.append(
                f"the terminal on the cable is serial {serial}, not {self.options.serial.strip()} "
                "as confirmed: check which terminal is connected"
            )
        pending = report.merchant_data.pending_transactions if report.merchant_data else None
        if pending is not None and pending.count and not (self.options.settle and can_settle):
            money = money_text(pending)
            reasons.append(
                f"{pending.count} unsettled transaction(s) ({money}) would be lost: settle them "
                "first, or run again with --settle to have posdiag settle (End-of-Day)"
                if can_settle
                else f"{pending.count} unsettled transaction(s) ({money}) would be lost, and "
                "this terminal cannot be settled over its cable: settle them in the payment "
                "app, then wipe"
            )
        activation = report.activation
        bound = activation is not None and activation.state in (
            ActivationState.ACTIVATED,
            ActivationState.PARTIAL,
        )
        if pending is None and bound and not self.options.confirmed_settled:
            reasons.append(
                "posdiag cannot read this terminal's open batch, so unsettled payments may "
                "remain: settle them in the payment app, then run again with --confirmed-settled"
            )
        battery = report.battery
        minimum = self.policy.get("battery", "min_level_pct")
        if (
            battery
            and battery.level_pct is not None
            and battery.level_pct < minimum
            and not battery.charging
        ):
            reasons.append(
                f"battery at {battery.level_pct}% and not charging (minimum {minimum}%): "
                "charge it first, a wipe must not die half-way"
            )
        return reasons

    def _confirmed(self, report: DeviceReport, plan: list[WipeStep]) -> bool:
        ident = report.identity
        assert ident is not None
        summary = "\n".join(
            [
                f"Wipe {ident.vendor or ''} {ident.model or ''}, serial {ident.serial}".replace(
                    "  ", " "
                ),
                "This erases:",
                *(f"  - {step.erases}" for step in plan if step.name != "settle"),
            ]
        )
        if self.options.assume_yes:
            return True
        if self.confirm is None:
            raise PosdiagError("a wipe needs confirmation: run interactively or pass --yes")
        return self.confirm(summary, ident.serial or "")

    def _settle(self, step: WipeStep | None, result: WipeResult, recorded: dict[str, str]) -> bool:
        if step is None:
            result.reasons.append(
                "unsettled transactions remain and this terminal cannot be settled over its "
                "cable: settle them in the payment app, then wipe"
            )
            return False
        self._step(step, result, recorded)
        if result.steps[-1].status == "failed":
            result.reasons.insert(
                0, f"settling failed ({result.steps[-1].detail}): nothing was erased"
            )
            return False
        if not _done(step):
            result.reasons.insert(0, "the turnover store is not empty after settling")
            return False
        return True

    # --- steps -----------------------------------------------------------------------------------

    def _step(self, step: WipeStep, result: WipeResult, recorded: dict[str, str]) -> None:
        self._check_stop(f"step {step.name}")
        self._progress("wiping", step=step.name)
        try:
            self._run_step(step, result, recorded)
        finally:
            self._steps_done += 1

    def _run_step(self, step: WipeStep, result: WipeResult, recorded: dict[str, str]) -> None:
        previous = recorded.get(step.name)
        if previous in ("done", "verified") and _done(step):
            result.steps.append(
                StepResult(step.name, step.erases, "verified", True, "done earlier")
            )
            self._journal_finish(result.run_id, step.name, "verified", "done earlier, checked now")
            return
        if previous == "started":
            # the process died while this step ran: record that, then run it again
            self._journal_finish(result.run_id, step.name, "interrupted", "resumed")
        self._journal_start(result.run_id, step.name)
        started = time.monotonic()
        try:
            step.run()
        except (TransportError, ProtocolError):
            raise  # the run stays open in the ledger: the next wipe resumes it
        except PosdiagError as exc:
            status = "skipped" if step.optional else "failed"
            result.steps.append(StepResult(step.name, step.erases, status, False, str(exc)))
            self._journal_finish(result.run_id, step.name, status, str(exc))
            if step.optional:
                result.exceptions.append(f"{step.erases}: not available ({exc})")
            else:
                result.outcome = Outcome.NOT_ERASED
                result.reasons.append(f"step {step.name} failed: {exc}")
            return
        detail = f"{time.monotonic() - started:.1f} s"
        result.steps.append(StepResult(step.name, step.erases, "done", None, detail))
        if step.caveat:
            result.exceptions.append(step.caveat)
        self._journal_finish(result.run_id, step.name, "done", detail)

    # --- verification ----------------------------------------------------------------------------

    def _verify(self, result: WipeResult, plan: list[WipeStep]) -> None:
        refresh = getattr(self.terminal, "refresh", None)
        if callable(refresh):
            refresh()
        after = inspect_terminal(
            self.terminal, self.policy, simulated=self.simulated, keep_open=True
        )
        result.after = after
        self._record_inspection(after)
        problems: list[str] = []
        for record, step in zip(
            result.steps,
            (s for s in plan if s.name in {r.name for r in result.steps}),
            strict=False,
        ):
            del record, step  # pairing happens by name below
        by_name = {s.name: s for s in plan}
        for record in result.steps:
            step = by_name.get(record.name)
            if step is None or record.status in ("failed", "skipped"):
                continue
            try:
                record.verified = step.done()
            except UnsupportedError as exc:
                record.verified = None
                record.detail = f"{record.detail}; not verifiable: {exc}".strip("; ")
                result.exceptions.append(f"{step.erases}: done but not verifiable ({exc})")
                continue
            except PosdiagError as exc:
                record.verified = False
                record.detail = f"{record.detail}; check failed: {exc}".strip("; ")
            if not record.verified:
                if step.optional:
                    result.exceptions.append(f"{step.erases}: still present after the step")
                else:
                    problems.append(f"{step.erases}: still present after the step reported success")
        problems.extend(self._read_back(after, result))
        if result.outcome is Outcome.NOT_ERASED or problems:
            result.outcome = Outcome.NOT_ERASED
            result.reasons.extend(problems)
        elif result.exceptions:
            result.outcome = Outcome.ERASED_WITH_EXCEPTIONS
        else:
            result.outcome = Outcome.ERASED

    def _read_back(self, after: DeviceReport, result: WipeResult) -> list[str]:
        """What a fresh inspection still finds of the merchant."""
        problems: list[str] = []
        if after.identity is None:
            return ["the terminal could not be read back after the wipe"]
        activation = after.activation
        if activation and activation.terminal_id:
            problems.append("a terminal ID is still assigned")
        merchant = after.merchant_data
        if merchant:
            if merchant.pending_transactions and merchant.pending_transactions.count:
                problems.append("unsettled transactions are still in the store")
            if merchant.apps:
                problems.append(f"payment app data remains: {', '.join(merchant.apps)}")
            if merchant.files:
                problems.append(f"{len(merchant.files)} merchant file(s) remain")
            if merchant.network_profiles:
                problems.append(f"{len(merchant.network_profiles)} saved network(s) remain")
        if activation and activation.state in (ActivationState.ACTIVATED, ActivationState.PARTIAL):
            hard = [e for e in activation.evidence if e.source not in UNVERIFIABLE_EVIDENCE]
            soft = [e for e in activation.evidence if e.source in UNVERIFIABLE_EVIDENCE]
            if soft:
                result.exceptions.extend(
                    f"{e.fact.split(':')[0]}: not removable over the cable (release it in the "
                    "terminal management system)"
                    for e in soft
                )
            if activation.terminal_id or any(
                e.source == "app data" and "holds" in e.fact for e in hard
            ):
                problems.append(f"still {activation.state.value} after the wipe")
        return problems

    # --- ledger and certificate ------------------------------------------------------------

    def _audit(self, event: str, **data: Any) -> None:
        if self.ledger is not None:
            self.ledger.audit(event, **data)

    def _record_inspection(self, report: DeviceReport) -> int | None:
        if self.ledger is None:
            return None
        return record_report(self.ledger, report, self.options.operator)

    def _open_run(self, device_id: int | None, report: DeviceReport) -> tuple[int | None, bool]:
        if self.ledger is None or device_id is None:
            return None, False
        serial = report.identity.serial if report.identity else None
        existing = self.ledger.open_wipe_run(report.family, serial or "unknown")
        if existing is not None:
            self._audit("wipe.resumed", run_id=existing.id)
            return existing.id, True
        options = {
            "settle": self.options.settle,
            "destination": self.options.destination,
            "batch": self.options.batch,
        }
        run_id: int = self.ledger.start_wipe_run(
            device_id, report.address, self.options.operator, options
        )
        return run_id, False

    def _recorded_steps(self, run_id: int | None) -> dict[str, str]:
        if self.ledger is None or run_id is None:
            return {}
        return {step.name: step.status for step in self.ledger.steps(run_id)}

    def _journal_start(self, run_id: int | None, name: str) -> None:
        if self.ledger is not None and run_id is not None:
            self.ledger.step_started(run_id, name)

    def _journal_finish(self, run_id: int | None, name: str, status: str, detail: str) -> None:
        if self.ledger is not None and run_id is not None:
            self.ledger.step_finished(run_id, name, status, detail)

    def _finish_refused(self, device_id: int | None, result: WipeResult) -> None:
        if self.ledger is None or device_id is None:
            return
        before = result.before
        serial = before.identity.serial if before and before.identity else None
        if self.ledger.open_wipe_run(result.address.split("+")[0], serial or "unknown"):
            # an interrupted wipe stays open for its resume; the refusal is in the audit log
            self._audit("wipe.refused", address=result.address, reasons=result.reasons)
            return
        run_id = self.ledger.start_wipe_run(
            device_id,
            result.address,
            self.options.operator,
            {"refused": True, "batch": self.options.batch},
        )
        result.run_id = run_id
        self.ledger.finish_wipe_run(run_id, result.outcome.value, result.reasons)

    def _finish(self, result: WipeResult) -> None:
        if self.ledger is not None and result.run_id is not None:
            self.ledger.finish_wipe_run(
                result.run_id, result.outcome.value, result.reasons + result.exceptions
            )
        if result.outcome in (Outcome.ERASED, Outcome.ERASED_WITH_EXCEPTIONS, Outcome.NOT_ERASED):
            self._certify(result)

    def _certify(self, result: WipeResult) -> None:
        if self.key is None or result.before is None:
            return
        from .certificate import build_certificate, sign_certificate, write_certificate

        before = to_json(result.before)
        content = build_certificate(
            report=before,
            outcome=result.outcome.value,
            steps=[s.__dict__ for s in result.steps],
            operator=self.options.operator,
            operator_title=self.options.operator_title,
            organisation=self.options.organisation,
            location=self.options.location,
            destination=self.options.destination,
            sanitization="Clear",
            method=_method(before.get("family", "")),
            verification_method=(
                "read back: a fresh inspection after the wipe (activation, terminal ID, merchant "
                "apps, saved networks, merchant files, unsettled transactions) and each step's "
                "own state check; a command's success reply alone is never counted"
            ),
            exceptions=result.exceptions
            + ([] if result.outcome is not Outcome.NOT_ERASED else result.reasons),
            tool_version=__version__,
            started_at=self.started_at,
            finished_at=utc_now_text(),
        )
        document = sign_certificate(content, self.key)
        out_dir = self.options.out_dir or default_certificate_dir()
        json_path, html_path = write_certificate(document, out_dir)
        result.certificate, result.printable = json_path, html_path
        if self.ledger is not None and result.run_id is not None:
            import hashlib

            digest = hashlib.sha256(json_path.read_bytes()).hexdigest()
            self.ledger.record_certificate(
                result.run_id, content.get("report_id", json_path.stem), str(json_path), digest
            )


def _done(step: WipeStep) -> bool:
    """A step's state check, where an unverifiable state counts as not done (run it again)."""
    try:
        return step.done()
    except UnsupportedError:
        return False


def _method(family: str) -> str:
    if family == "zvt":
        return (
            "ZVT de-provisioning over the terminal's ECR interface: End-of-Day when consented, "
            "Terminal-ID reset (06 1B), Log-Off (06 02), vendor factory reset where available"
        )
    return (
        "Android shell over ADB: payment/merchant app data cleared (pm clear), saved Wi-Fi "
        "networks forgotten, merchant files deleted, factory reset where available"
    )


def default_certificate_dir() -> Path:
    """Where certificates go without ``--out``: the user's data folder."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "posdiag" / "certificates"
