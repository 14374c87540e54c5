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
6. **Outcome** and, when steps ran, a signed certificate. ``erased``, ``erased_with_exceptions``
   and ``not_erased`` are never final without their certificate: the outcome and the certificate
   content are recorded together (run ``certifying``), and the run is ``finished`` only when the
   signed file is written and recorded (see :mod:`posdiag.agent.wipe_certify`).

Before any of it, a **preflight** proves the certificate folder and the ledger can be written (a
wipe that could not file its proof is refused, the terminal untouched), and a terminal whose
last run is still waiting for its certificate gets that certificate, from the ledger, instead of
a second wipe. The whole wipe runs under one **deadline** (``WipeOptions.deadline_s``, default per
family): a terminal that keeps talking, or stops, cannot hold the station past it.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from posdiag.drivers.errors import (
    AuthenticationError,
    DeadlineExceeded,
    PosdiagError,
    ProtocolError,
    TransportError,
    UnsupportedError,
)
from posdiag.drivers.i18n import _
from posdiag.drivers.model import Terminal, WipeStep

from .inspect import inspect_terminal
from .policy import Policy
from .report import DeviceReport, record_report, utc_now_text
from .wipe_certify import (
    CERTIFICATE_PENDING_EXIT,
    certificate_content,
    issue_certificate,
    pending_reason,
    preflight,
    reissue_pending_certificates,
)
from .wipe_rules import guard_reasons, read_back_problems
from .wipe_types import (
    CERTIFIED_OUTCOMES,
    DEFAULT_DEADLINE_S,
    EXIT_CODES,
    FALLBACK_DEADLINE_S,
    MAX_DEADLINE_S,
    Confirm,
    OnProgress,
    Outcome,
    StepResult,
    WipeInterrupted,
    WipeOptions,
    WipeProgress,
    WipeResult,
)

__all__ = [
    "CERTIFICATE_PENDING_EXIT",
    "CERTIFIED_OUTCOMES",
    "DEFAULT_DEADLINE_S",
    "EXIT_CODES",
    "MAX_DEADLINE_S",
    "Confirm",
    "OnProgress",
    "Outcome",
    "StepResult",
    "WipeInterrupted",
    "WipeOptions",
    "WipeProgress",
    "WipeResult",
    "WipeSession",
    "default_certificate_dir",
    "reissue_pending_certificates",
]

log = structlog.get_logger(__name__)


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
        backends: the configured TMS/acquirer backends (``posdiag.agent.backends.Backends``):
            every inspection is merged with what they say, and with ``options.release`` the
            plan ends with a journaled, verified ``release:NAME`` step per backend holding the
            unit (after the device steps, never when a guard refused).
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
        backends: Any = None,
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
        self.backends = backends
        self.started_at = utc_now_text()
        self._steps_done = 0
        self._steps_total = 0
        self._deadline_at = math.inf  # set by run()

    # --- the workflow ----------------------------------------------------------------------------

    def run(self) -> WipeResult:
        """Preflight, inspect, guard, confirm, run, verify, certify: all within the deadline."""
        result = WipeResult(self.terminal.address, Outcome.ABORTED)
        deadline = self._deadline_s()
        self._deadline_at = time.monotonic() + deadline
        try:
            self.terminal.set_deadline(self._deadline_at)
            self._run(result)
        except AuthenticationError:
            raise
        except DeadlineExceeded as exc:
            result.outcome = Outcome.ABORTED
            result.reasons.append(
                _(
                    "the wipe did not finish in time ({seconds} s); run posdiag wipe again to "
                    "resume"
                ).format(seconds=f"{deadline:.0f}")
            )
            self._audit("wipe.deadline", run_id=result.run_id, reason=str(exc))
        except WipeInterrupted as exc:
            result.outcome = Outcome.ABORTED
            if result.run_id is not None:  # a run was opened: it stays open for its resume
                result.reasons.append(_("{why}; run posdiag wipe again to resume").format(why=exc))
                self._audit("wipe.interrupted", run_id=result.run_id, reason=str(exc))
            else:
                result.reasons.append(_("{why}; nothing was changed").format(why=exc))
        except (TransportError, ProtocolError) as exc:
            result.outcome = Outcome.ABORTED
            result.reasons.append(
                _(
                    "the terminal stopped answering: check its cable or network, then run "
                    "posdiag wipe again to resume"
                )
            )
            self._audit("wipe.aborted", run_id=result.run_id, reason=str(exc))
        finally:
            self.terminal.close()
            self._release_mark(result)
        log.info("wipe.done", address=result.address, outcome=result.outcome.value)
        self._progress("finished")
        return result

    def _release_mark(self, result: WipeResult) -> None:
        """Free this terminal for other sessions unless this session's run of it stays open."""
        before = result.before
        if self.ledger is None or before is None or before.identity is None:
            return
        try:
            self.ledger.release_terminal(before.family, before.identity.serial or "unknown")
        except PosdiagError as exc:  # a LedgerError: the mark dies with its connection anyway
            log.warning("wipe.release_failed", address=result.address, reason=str(exc))

    def _deadline_s(self) -> float:
        if self.options.deadline_s is not None:
            return float(self.options.deadline_s)
        family = getattr(self.terminal, "family", "")
        return DEFAULT_DEADLINE_S.get(family, FALLBACK_DEADLINE_S)

    def _progress(self, stage: str, step: str | None = None, report: Any = None) -> None:
        if self.on_progress is not None:
            self.on_progress(WipeProgress(stage, self._steps_done, self._steps_total, step, report))

    def _check_stop(self, before: str) -> None:
        if self.stop is not None and self.stop.is_set():
            raise WipeInterrupted(_("stopped before {what}").format(what=before))

    def _run(self, result: WipeResult) -> None:
        blocked = preflight(
            self.ledger,
            self._out_dir() if self.key is not None else None,
            address=self.terminal.address,
            operator=self.options.operator,
        )
        if blocked:
            # Nothing was asked of the terminal yet: it is refused untouched.
            result.outcome = Outcome.REFUSED
            result.reasons.append(blocked)
            log.warning("wipe.preflight_failed", address=result.address, reason=blocked)
            return
        self._progress("inspecting")
        before = self._inspect()
        result.before = before
        if before.identity is None:
            result.reasons.extend(before.verdict.reasons or (_("the terminal did not answer"),))
            return
        self._progress("identified", report=before)
        device_id = self._record_inspection(before)
        if self._reissue_pending(before, result):
            return  # the terminal's last wipe is decided: not wiped again
        plan = self.terminal.wipe_plan()
        if self.backends and (
            self.options.release or self.policy.get("backends", "release_after_wipe")
        ):
            plan = plan + self.backends.release_steps(before)
        refusal = guard_reasons(
            before, self.options, self.policy, can_settle=any(s.name == "settle" for s in plan)
        )
        if refusal:
            result.outcome = Outcome.REFUSED
            result.reasons.extend(refusal)
            self._finish_refused(device_id, result)
            return
        if not self._confirmed(before, plan):
            result.outcome = Outcome.ABORTED
            result.reasons.append(
                _(
                    "the operator did not confirm the wipe (the serial typed must match the "
                    "terminal's)"
                )
            )
            return
        self._check_stop(_("the wipe started"))
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
        """A fresh inspection within what is left of the wipe's deadline.

        The inspection bounds itself by the time it is given and lifts its bound when it
        returns, so the wipe's own deadline is set again afterwards; an inspection cut short by
        it ends the wipe (its partial report is no ground for a decision).
        """
        left = self._deadline_at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        report = inspect_terminal(
            self.terminal, self.policy, simulated=self.simulated, keep_open=True, deadline_s=left
        )
        self.terminal.set_deadline(self._deadline_at)
        if time.monotonic() >= self._deadline_at:
            raise DeadlineExceeded()
        if self.backends:
            self.backends.enrich(report, self.policy)
        return report

    # --- confirmation and settling ---------------------------------------------------------------

    def _confirmed(self, report: DeviceReport, plan: list[WipeStep]) -> bool:
        ident = report.identity
        assert ident is not None
        summary = "\n".join(
            [
                _("Wipe {terminal}, serial {serial}").format(
                    terminal=" ".join(filter(None, (ident.vendor, ident.model))),
                    serial=ident.serial,
                ),
                _("This erases:"),
                *(f"  - {step.erases}" for step in plan if step.name != "settle"),
            ]
        )
        if self.options.assume_yes:
            return True
        if self.confirm is None:
            raise PosdiagError(_("a wipe needs confirmation: run interactively or pass --yes"))
        return self.confirm(summary, ident.serial or "")

    def _settle(self, step: WipeStep | None, result: WipeResult, recorded: dict[str, str]) -> bool:
        if step is None:
            result.reasons.append(
                _(
                    "unsettled transactions remain and this terminal cannot be settled over its "
                    "cable: settle them in the payment app, then wipe"
                )
            )
            return False
        self._step(step, result, recorded)
        if result.steps[-1].status == "failed":
            result.reasons.insert(
                0,
                _("settling failed ({why}): nothing was erased").format(
                    why=result.steps[-1].detail
                ),
            )
            return False
        if not _done(step):
            result.reasons.insert(0, _("the turnover store is not empty after settling"))
            return False
        return True

    # --- steps -----------------------------------------------------------------------------------

    def _step(self, step: WipeStep, result: WipeResult, recorded: dict[str, str]) -> None:
        self._check_stop(_("step {name}").format(name=step.name))
        self._progress("wiping", step=step.name)
        try:
            self._run_step(step, result, recorded)
        finally:
            self._steps_done += 1

    def _run_step(self, step: WipeStep, result: WipeResult, recorded: dict[str, str]) -> None:
        previous = recorded.get(step.name)
        if previous in ("done", "verified") and _done(step):
            result.steps.append(
                StepResult(step.name, step.erases, "verified", True, _("done earlier"))
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
                result.exceptions.append(
                    _("{erases}: not available ({why})").format(erases=step.erases, why=exc)
                )
            else:
                result.outcome = Outcome.NOT_ERASED
                result.reasons.append(
                    _("step {name} failed: {why}").format(name=step.name, why=exc)
                )
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
        after = self._inspect()
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
                result.exceptions.append(
                    _("{erases}: done but not verifiable ({why})").format(
                        erases=step.erases, why=exc
                    )
                )
                continue
            except PosdiagError as exc:
                record.verified = False
                record.detail = f"{record.detail}; check failed: {exc}".strip("; ")
            if not record.verified:
                if step.optional:
                    result.exceptions.append(
                        _("{erases}: still present after the step").format(erases=step.erases)
                    )
                else:
                    problems.append(
                        _("{erases}: still present after the step reported success").format(
                            erases=step.erases
                        )
                    )
        problems.extend(read_back_problems(after, result))
        if self.backends:
            result.exceptions.extend(self.backends.still_bound(after))
        if result.outcome is Outcome.NOT_ERASED or problems:
            result.outcome = Outcome.NOT_ERASED
            result.reasons.extend(problems)
        elif result.exceptions:
            result.outcome = Outcome.ERASED_WITH_EXCEPTIONS
        else:
            result.outcome = Outcome.ERASED

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
            "confirmed_settled": self.options.confirmed_settled,
        }
        run_id: int = self.ledger.start_wipe_run(
            device_id, report.address, self.options.operator, options, simulated=self.simulated
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
        """Record a refusal as one finished run, in one transaction (a kill leaves none open).

        A device with an interrupted run keeps it open for its resume; the ledger then only
        notes the refusal in its audit log.
        """
        if self.ledger is None or device_id is None:
            return
        result.run_id = self.ledger.record_finished_run(
            device_id,
            result.address,
            self.options.operator,
            {"refused": True, "batch": self.options.batch},
            result.outcome.value,
            result.reasons,
            simulated=self.simulated,
        )

    def _finish(self, result: WipeResult) -> None:
        """Record the outcome; one that earns a certificate is recorded with its content.

        The run is ``certifying`` until :func:`issue_certificate` records the signed file; if
        signing, writing or recording fails, it stays so and the result says the certificate is
        pending (its own exit code), to be issued by the next wipe of this terminal.
        """
        content = None
        if result.outcome in CERTIFIED_OUTCOMES and self.key is not None and result.before:
            content = certificate_content(result, self.options, self.started_at)
        if self.ledger is not None and result.run_id is not None:
            self.ledger.finish_wipe_run(
                result.run_id,
                result.outcome.value,
                result.reasons + result.exceptions,
                certificate=content,
            )
        if content is not None:
            self._issue(result, result.run_id, content)

    def _issue(self, result: WipeResult, run_id: int | None, content: dict[str, Any]) -> None:
        try:
            files = issue_certificate(
                self.ledger, self.key, run_id, content, self._out_dir(), logo=self.options.logo
            )
            result.certificate, result.printable, result.pdf = files.json, files.html, files.pdf
        except PosdiagError as exc:
            result.certificate_pending = True
            result.reasons.append(pending_reason(exc))
            log.warning("wipe.certificate_pending", run_id=run_id, error=str(exc))

    def _out_dir(self) -> Path:
        return self.options.out_dir or default_certificate_dir()

    def _reissue_pending(self, before: DeviceReport, result: WipeResult) -> bool:
        """Issue the certificate this terminal's last run is still waiting for, if any.

        Returns:
            True when such a run existed: the wipe ends here, with that run's outcome.
        """
        if self.ledger is None or self.key is None or before.identity is None:
            return False
        serial = before.identity.serial
        if not serial:
            return False
        pending = self.ledger.awaiting_certificate(family=before.family, serial=serial)
        if not pending:
            return False
        last = pending[-1]
        result.outcome = Outcome(last.outcome.value)
        result.run_id = last.run_id
        result.reissued = True
        self._audit("wipe.not_repeated", run_id=last.run_id, serial=serial)
        for run in pending:  # normally one; the result shows the last run's certificate
            self._issue(result, run.run_id, dict(run.content))
        if not result.certificate_pending:
            result.reasons.append(
                _(
                    "this terminal's wipe (run {run}) ended {outcome} earlier; its certificate "
                    "was issued now from the ledger and the terminal was not wiped again"
                ).format(run=last.run_id, outcome=last.outcome.value)
            )
        return True


def _done(step: WipeStep) -> bool:
    """A step's state check, where an unverifiable state counts as not done (run it again)."""
    try:
        return step.done()
    except UnsupportedError:
        return False


def default_certificate_dir() -> Path:
    """Where certificates go without ``--out``: the user's data folder."""
    import os

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "posdiag" / "certificates"
