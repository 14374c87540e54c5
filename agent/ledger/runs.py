"""Wipe runs in the ledger: opened, journaled step by step, closed, certified.

A run moves ``running`` → ``finished`` (refused, aborted: no certificate) or ``running`` →
``certifying`` → ``finished``: a run whose outcome earns a certificate keeps the unsigned content
in the ledger until the signed file is written and recorded, so a crash in between is finished by
re-issuing the certificate from the ledger, never by wiping the terminal again.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from posdiag.drivers.i18n import _

from . import writes
from .chain import WriteTx, dumps, redacted_json
from .claims import TerminalClaims
from .engine import LedgerError
from .records import (
    CertificateRecord,
    PendingCertificate,
    WipeRun,
    WipeStepRecord,
    json_object,
    load_steps,
    run_from_row,
    run_select,
    to_reason_list,
)
from .schema import (
    FINAL_STEP_STATUSES,
    Outcome,
    RunStatus,
    StepStatus,
    certificates,
    devices,
    wipe_runs,
    wipe_steps,
)

__all__ = ["WipeRunRecords"]

SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")

_T = TypeVar("_T")


class WipeRunRecords:
    """The wipe-run half of :class:`posdiag.agent.ledger.Ledger` (mixed into it)."""

    _claims: TerminalClaims

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write(self, work: Callable[[WriteTx], _T]) -> _T:
        raise NotImplementedError

    # -- wipe runs -------------------------------------------------------------------------------

    def start_wipe_run(
        self,
        device_id: int,
        address: str,
        operator: str,
        options: Mapping[str, Any],
        *,
        simulated: bool = False,
    ) -> int:
        """Open a wipe run for a device; refused while the device has an unfinished run.

        One open run per device keeps "resume the interrupted wipe" unambiguous: to start over,
        finish the old run first (usually with outcome ``aborted``). On PostgreSQL the terminal
        is first marked as being wiped by this session (see :meth:`open_wipe_run`), waiting up
        to ``busy_timeout`` for another station that is wiping it.

        Args:
            device_id: from :meth:`record_device`.
            address: the address the terminal is reached at.
            operator: who is running the wipe (a name for the certificate, not a credential).
            options: the wipe options; redacted before storing, so passwords never land here.
            simulated: the terminal is a simulator (kept out of depot manifests).

        Returns:
            The run id.

        Raises:
            LedgerError: the device has a run still running, or one waiting for its certificate.
        """
        options_json = redacted_json(options)
        claim: int | None = None
        fresh_claim = False
        if self._claims.enabled:
            with self._read() as conn:
                device = conn.execute(
                    sa.select(devices.c.family, devices.c.serial).where(devices.c.id == device_id)
                ).one_or_none()
            if device is not None:
                fresh_claim = not self._claims.holds(device.family, device.serial)
                claim = self._claims.claim(device.family, device.serial)

        def work(tx: WriteTx) -> int:
            writes.require_device(tx, device_id)
            self._require_no_open_run(tx, device_id)
            run_id = self._insert_run(
                tx, device_id, address, operator, options_json, simulated, RunStatus.RUNNING
            )
            tx.audit(
                "wipe_run.started",
                {
                    "run_id": run_id,
                    "device_id": device_id,
                    "address": address,
                    "operator": operator,
                    "options": json.loads(options_json),
                    "simulated": simulated,
                },
                row=(wipe_runs, run_id),
            )
            return run_id

        try:
            run_id = self._write(work)
        except BaseException:
            if claim is not None and fresh_claim:
                self._claims.release(claim)
            raise
        if claim is not None:
            self._claims.bind_run(run_id, claim)
        return run_id

    def record_finished_run(
        self,
        device_id: int,
        address: str,
        operator: str,
        options: Mapping[str, Any],
        outcome: Outcome | str,
        reasons: Sequence[str],
        *,
        simulated: bool = False,
    ) -> int:
        """Record a run that ended before it began (a refusal) in ONE transaction.

        Opening and finishing in two transactions would leave the run ``running`` for good if
        the process died in between; this writes it finished or not at all. A device with an
        open run keeps it (for its resume): then only an audit entry says what happened.

        Returns:
            The run id (of the new finished run, or of the open run that was kept).
        """
        final = Outcome(outcome)
        reason_list = to_reason_list(reasons)
        options_json = redacted_json(options)

        def work(tx: WriteTx) -> int:
            writes.require_device(tx, device_id)
            open_run = writes.open_run_id(tx, device_id)
            if open_run is not None:
                tx.audit(
                    "wipe_run.not_started",
                    {"run_id": open_run, "outcome": final.value, "reasons": reason_list},
                )
                return open_run
            run_id = self._insert_run(
                tx,
                device_id,
                address,
                operator,
                options_json,
                simulated,
                RunStatus.FINISHED,
                outcome=final,
                reasons=reason_list,
            )
            tx.audit(
                "wipe_run.recorded",
                {
                    "run_id": run_id,
                    "device_id": device_id,
                    "address": address,
                    "operator": operator,
                    "options": json.loads(options_json),
                    "outcome": final.value,
                    "reasons": reason_list,
                    "simulated": simulated,
                },
                row=(wipe_runs, run_id),
            )
            return run_id

        return self._write(work)

    @staticmethod
    def _insert_run(
        tx: WriteTx,
        device_id: int,
        address: str,
        operator: str,
        options_json: str,
        simulated: bool,
        status: RunStatus,
        *,
        outcome: Outcome | None = None,
        reasons: Sequence[str] = (),
    ) -> int:
        finished = status is not RunStatus.RUNNING
        return writes.insert_row(
            tx,
            wipe_runs,
            {
                "device_id": device_id,
                "address": address,
                "operator": operator,
                "started_at": tx.at,
                "finished_at": tx.at if finished else None,
                "status": status.value,
                "outcome": outcome.value if outcome is not None else None,
                "reasons_json": dumps(list(reasons)),
                "options_json": options_json,
                "certificate_json": None,
                "simulated": 1 if simulated else None,
            },
        )

    @staticmethod
    def _require_no_open_run(tx: WriteTx, device_id: int) -> None:
        open_run = writes.open_run_id(tx, device_id)
        if open_run is not None:
            raise LedgerError(
                _(
                    "device {device_id} already has an unfinished wipe run ({open_run}); resume "
                    "it (or issue its certificate), or finish it as aborted before starting a new "
                    "one"
                ).format(device_id=device_id, open_run=open_run)
            )

    def open_wipe_run(self, family: str, serial: str) -> WipeRun | None:
        """The device's unfinished wipe run (one that was interrupted), with its steps.

        Steps still ``started`` were in progress when the process stopped; the caller decides
        whether to mark them ``interrupted`` (via :meth:`step_finished`) and redo them.

        On PostgreSQL (many stations, one ledger) this also marks the terminal as being wiped by
        this session, first waiting up to ``busy_timeout`` while another session holds that
        mark: a run another station is driving right now is not interrupted, and resuming it
        would interleave two wipes in one journal. The mark ends when the run finishes or this
        ledger closes (or its process dies, which is what makes a run resumable).

        Returns:
            The newest run of that device whose status is ``running``, or None.

        Raises:
            LedgerError: (PostgreSQL) another session kept wiping this terminal past
                ``busy_timeout``.
        """
        claim = self._claims.claim(family, serial)
        with self._read() as conn:
            row = conn.execute(
                run_select()
                .where(
                    devices.c.family == family,
                    devices.c.serial == serial,
                    wipe_runs.c.status == RunStatus.RUNNING.value,
                )
                .order_by(wipe_runs.c.id.desc())
                .limit(1)
            ).one_or_none()
            if row is None:
                return None
            run = run_from_row(row, load_steps(conn, [row.id]).get(row.id, ()))
        if claim is not None:
            self._claims.bind_run(run.id, claim)
        return run

    def step_started(self, run_id: int, name: str) -> None:
        """Record that a step begins; a restarted step keeps its place (``seq``) in the run.

        Restarting clears the previous ``finished_at`` and ``detail``; the audit log still holds
        what happened the first time.
        """
        if not name:
            raise ValueError(_("a step needs a name"))

        def work(tx: WriteTx) -> None:
            writes.require_running(tx, run_id)
            seq, existed = writes.step_seq(tx, run_id, name)
            values = {
                "status": StepStatus.STARTED.value,
                "started_at": tx.at,
                "finished_at": None,
                "detail": "",
            }
            if existed:
                writes.update_row(tx, wipe_steps, {"run_id": run_id, "name": name}, values)
            else:
                writes.insert_row(
                    tx, wipe_steps, {"run_id": run_id, "name": name, "seq": seq, **values}
                )
            stored = writes.step_row(tx, run_id, name)
            tx.audit(
                "wipe_step.started",
                {"run_id": run_id, "name": name, "seq": seq, "restart": existed},
                row=(wipe_steps, stored["id"]),
                stored=stored,
            )

        self._write(work)

    def step_finished(
        self, run_id: int, name: str, status: StepStatus | str, detail: str = ""
    ) -> None:
        """Record how a step ended: done, failed, skipped, verified or interrupted.

        A step never started (typically ``skipped``) is created at the end of the run's order.
        A finished step may be finished again, e.g. ``done`` then ``verified``.

        Args:
            run_id: the run.
            name: the step name used with :meth:`step_started`.
            status: any step status except ``started``.
            detail: a human-readable note; free text is not redacted, so keep secrets out.
        """
        final = StepStatus(status)
        if final not in FINAL_STEP_STATUSES:
            raise ValueError(
                _("step_finished needs a final status, not {value!r}").format(value=final.value)
            )
        if not name:
            raise ValueError(_("a step needs a name"))

        def work(tx: WriteTx) -> None:
            writes.require_running(tx, run_id)
            seq, existed = writes.step_seq(tx, run_id, name)
            values = {"status": final.value, "finished_at": tx.at, "detail": detail}
            if existed:
                writes.update_row(tx, wipe_steps, {"run_id": run_id, "name": name}, values)
            else:
                writes.insert_row(
                    tx,
                    wipe_steps,
                    {"run_id": run_id, "name": name, "seq": seq, "started_at": None, **values},
                )
            stored = writes.step_row(tx, run_id, name)
            tx.audit(
                "wipe_step.finished",
                {
                    "run_id": run_id,
                    "name": name,
                    "seq": seq,
                    "status": final.value,
                    "detail": detail,
                },
                row=(wipe_steps, stored["id"]),
                stored=stored,
            )

        self._write(work)

    def steps(self, run_id: int) -> list[WipeStepRecord]:
        """The run's steps in the order they were first started."""
        with self._read() as conn:
            return list(load_steps(conn, [run_id]).get(run_id, ()))

    def finish_wipe_run(
        self,
        run_id: int,
        outcome: Outcome | str,
        reasons: Sequence[str],
        *,
        certificate: Mapping[str, Any] | None = None,
    ) -> None:
        """Close a run with its outcome; a closed run can never be reopened or changed.

        With ``certificate`` (the unsigned certificate content) the run goes to ``certifying``
        and keeps the content: it is ``finished`` only when :meth:`record_certificate` records
        the signed file, so an outcome that earns a certificate is never final without one.
        The terminal's wipe mark ends here either way (the terminal is not touched again).

        Args:
            run_id: the run.
            outcome: ``erased``, ``erased_with_exceptions``, ``not_erased``, ``aborted`` or
                ``refused``.
            reasons: why, in words a person can act on (stored as given: keep secrets out).
            certificate: the certificate content still to be signed, written and recorded.
        """
        final = Outcome(outcome)
        reason_list = to_reason_list(reasons)
        content_json = dumps(certificate) if certificate is not None else None
        status = RunStatus.FINISHED if certificate is None else RunStatus.CERTIFYING

        def work(tx: WriteTx) -> None:
            writes.require_running(tx, run_id)
            writes.update_row(
                tx,
                wipe_runs,
                {"id": run_id},
                {
                    "status": status.value,
                    "finished_at": tx.at,
                    "outcome": final.value,
                    "reasons_json": dumps(reason_list),
                    "certificate_json": content_json,
                },
            )
            tx.audit(
                "wipe_run.finished" if certificate is None else "wipe_run.certifying",
                {"run_id": run_id, "outcome": final.value, "reasons": reason_list},
                row=(wipe_runs, run_id),
            )

        self._write(work)
        if certificate is None:
            self._claims.release_run(run_id)
        # A certifying run keeps the terminal's mark until its certificate is recorded: another
        # session meeting the same serial meanwhile waits instead of re-issuing it in parallel.

    def record_certificate(
        self,
        run_id: int,
        report_id: uuid.UUID | str,
        path: str | os.PathLike[str],
        sha256: str,
    ) -> None:
        """Record the certificate issued for a run; a ``certifying`` run becomes ``finished``.

        Both happen in one transaction, so the ledger never shows a finished run whose
        certificate is not recorded, nor a recorded certificate of a run still waiting. Recording
        the very same certificate (run, report id and bytes) again is accepted and changes
        nothing: two stations re-issuing one pending certificate both succeed.

        Args:
            run_id: the run the certificate attests; certifying (or finished, for a run closed
                without stored content).
            report_id: the certificate's UUID, unique across the ledger.
            path: where the certificate file was written.
            sha256: hex SHA-256 of the certificate file's exact bytes.
        """
        try:
            report_uuid = str(uuid.UUID(str(report_id)))
        except ValueError:
            raise ValueError(
                _("report_id {report_id!r} is not a UUID").format(report_id=report_id)
            ) from None
        digest = sha256.lower()
        if not SHA256_RE.fullmatch(digest):
            raise ValueError(_("sha256 must be 64 hex digits"))

        def work(tx: WriteTx) -> None:
            status = writes.run_status(tx, run_id)
            if status is RunStatus.RUNNING:
                raise LedgerError(
                    _(
                        "wipe run {run_id} is still running; finish it before issuing a certificate"
                    ).format(run_id=run_id)
                )
            taken = writes.certificate_taken(tx, report_uuid)
            if taken is not None:
                if taken == (run_id, digest) and (status is RunStatus.FINISHED):
                    return  # the same file recorded by another station's re-issue: done
                raise LedgerError(
                    _("a certificate with report id {report_uuid} is already recorded").format(
                        report_uuid=report_uuid
                    )
                )
            certificate_id = writes.insert_row(
                tx,
                certificates,
                {
                    "run_id": run_id,
                    "report_id": report_uuid,
                    "path": os.fspath(path),
                    "sha256": digest,
                    "created_at": tx.at,
                },
            )
            tx.audit(
                "certificate.recorded",
                {
                    "run_id": run_id,
                    "report_id": report_uuid,
                    "path": os.fspath(path),
                    "sha256": digest,
                },
                row=(certificates, certificate_id),
            )
            if status is RunStatus.CERTIFYING:
                writes.update_row(
                    tx, wipe_runs, {"id": run_id}, {"status": RunStatus.FINISHED.value}
                )
                tx.seal(wipe_runs, run_id, "wipe_run.finished")

        self._write(work)
        self._claims.release_run(run_id)

    def awaiting_certificate(
        self,
        *,
        family: str | None = None,
        serial: str | None = None,
        batch: str | None = None,
    ) -> list[PendingCertificate]:
        """Runs in state ``certifying`` (oldest first), to re-issue their certificates.

        Each run listed is marked as this session's (see :meth:`open_wipe_run`), so two sessions
        never issue one certificate at once. With ``family`` and ``serial`` the call waits (up to
        ``busy_timeout``) for another session that holds that terminal; otherwise runs whose
        terminal another live session holds are left out: that session is finishing them.

        Args:
            family: only this family's terminals.
            serial: only this serial (with ``family``).
            batch: only runs whose options carry this station batch id.

        Raises:
            LedgerError: another session kept the terminal past ``busy_timeout``.
        """
        waited = None
        fresh = False
        if family is not None and serial is not None:
            fresh = not self._claims.holds(family, serial)
            waited = self._claims.claim(family, serial)
        query = run_select().where(wipe_runs.c.status == RunStatus.CERTIFYING.value)
        if family is not None:
            query = query.where(devices.c.family == family)
        if serial is not None:
            query = query.where(devices.c.serial == serial)
        pending: list[PendingCertificate] = []
        with self._read() as conn:
            for row in conn.execute(query.order_by(wipe_runs.c.id)):
                options = json_object(row.options_json)
                if batch is not None and options.get("batch") != batch:
                    continue
                if waited is not None:
                    self._claims.bind_run(row.id, waited)
                else:
                    mine, key = self._claims.try_claim(row.family, row.serial)
                    if not mine:
                        continue
                    if key is not None:
                        self._claims.bind_run(row.id, key)
                pending.append(
                    PendingCertificate(
                        run_id=row.id,
                        family=row.family,
                        serial=row.serial,
                        outcome=Outcome(row.outcome),
                        content=json_object(row.certificate_json or "{}"),
                        options=options,
                        simulated=bool(row.simulated),
                    )
                )
        if waited is not None and fresh and not pending:
            self._claims.release(waited)  # nothing to issue: the look must not keep the mark
        return pending

    def release_terminal(self, family: str, serial: str) -> None:
        """Let another session wipe this terminal, unless a run of this session still holds it.

        Called when a wipe of this terminal ends without a run (refused, unconfirmed, failed
        before it began): the mark taken to look for its open run or pending certificate goes.
        """
        self._claims.release_unbound(family, serial)

    def certificate_by_report_id(self, report_id: str) -> CertificateRecord | None:
        """The ledger's record of one certificate (to compare a file's hash with), or None."""
        try:
            report_uuid = str(uuid.UUID(str(report_id)))
        except ValueError:
            return None
        with self._read() as conn:
            row = conn.execute(
                sa.select(certificates).where(certificates.c.report_id == report_uuid)
            ).one_or_none()
        if row is None:
            return None
        return CertificateRecord(
            id=row.id,
            run_id=row.run_id,
            report_id=row.report_id,
            path=row.path,
            sha256=row.sha256,
            created_at=datetime.fromisoformat(row.created_at),
        )

    def runs(self, limit: int = 50) -> list[WipeRun]:
        """The newest wipe runs first, each with its steps."""
        with self._read() as conn:
            rows = conn.execute(
                run_select().order_by(wipe_runs.c.id.desc()).limit(max(0, limit))
            ).all()
            steps = load_steps(conn, [row.id for row in rows])
            return [run_from_row(row, steps.get(row.id, ())) for row in rows]
