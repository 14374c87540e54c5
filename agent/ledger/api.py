"""The record API: what the agent writes to and reads from the ledger.

Every public method that writes runs in its own transaction, committed before it returns,
appends its audit entry in that same transaction, and seals every row it writes (see
:mod:`.chain`). Nothing secret is stored: audit data, wipe options and inspection reports go
through the same redaction as the logs (passwords, PINs and keys become ``[redacted]``,
terminal/merchant identifiers keep their last four characters). Wipe runs are in :mod:`.runs`.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from posdiag.drivers.i18n import _

from . import shared, writes
from .chain import WriteTx, redacted_json
from .claims import TerminalClaims
from .engine import DEFAULT_BUSY_TIMEOUT_S, LedgerError
from .records import (
    AuditHead,
    CertificateRecord,
    InspectionRecord,
    PendingCertificate,
    WipeRun,
    WipeStepRecord,
)
from .runs import WipeRunRecords
from .schema import audit_head, devices, inspections
from .verify import ChainReport, LedgerVerification, verify, verify_chain

__all__ = [
    "AuditHead",
    "CertificateRecord",
    "InspectionRecord",
    "Ledger",
    "PendingCertificate",
    "WipeRun",
    "WipeStepRecord",
]

_T = TypeVar("_T")


class Ledger(WipeRunRecords):
    """The posdiag ledger on one database; safe to share between threads and processes.

    Open one per worker, as the station does: every Ledger of a process on one URL shares one
    engine and one group-committing writer (:mod:`.shared`, :mod:`.group`), so opening one is
    cheap and the workers' writes share transactions instead of fighting for the write lock.
    Each write method still returns only once its record is committed.

    On PostgreSQL (and SQLite) one Ledger is one session for wipe runs: the terminals it is
    wiping are marked (advisory locks, lock files) until :meth:`close` (or the process ends), so
    give each worker its own Ledger.
    """

    def __init__(self, url: str | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S):
        """Open (and if needed create or upgrade) the ledger.

        Args:
            url: any SQLAlchemy URL; the SQLite file from :func:`default_url` when None.
                ``postgresql://user@host/db`` uses psycopg 3.
            busy_timeout: seconds a write waits for another process's write before failing
                (and a wipe for another session's wipe of the same terminal).

        Raises:
            LedgerError: for a bad URL, a missing driver, or a database that is unreadable,
                corrupt, locked or written by a newer posdiag.
        """
        self._db = shared.acquire(url, busy_timeout)
        self._where = self._db.where
        self._closed = False
        self._claims = TerminalClaims(self._db)
        # a Ledger dropped without close() (a worker that died) still lets its database go
        self._release = weakref.finalize(self, shared.release, self._db)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Release this session's terminal marks and its share of the process's database.

        Committed data is already safe on disk. When the last Ledger of the process on this
        database closes, its writer thread ends and its connections close.
        """
        if not self._closed:
            self._closed = True
            self._claims.close()
            self._release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The database URL with any password hidden, for messages and logs."""
        return self._db.url

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for read-only tooling and tests; write through the methods."""
        return self._db.engine

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError(_("the ledger is closed"))

    def _read(self) -> AbstractContextManager[Connection]:
        self._check_open()
        return self._db.read()

    def _write(self, work: Callable[[WriteTx], _T]) -> _T:
        self._check_open()
        return self._db.write(work, once=self._write_once)

    def _write_once(self, work: Callable[[WriteTx], _T]) -> _T:
        return self._db.write_once(work)

    # -- devices and inspections -----------------------------------------------------------------

    def record_device(
        self, family: str, serial: str, vendor: str | None = None, model: str | None = None
    ) -> int:
        """Remember a terminal (or note that it was seen again) and return its id.

        A known vendor or model is never overwritten with None: a later, less talkative
        connection should not erase what an earlier one learned.

        Args:
            family: driver family (``zvt``, ``adb``, …); with ``serial`` it names the device.
            serial: the terminal's serial number.
            vendor: manufacturer, if known.
            model: model name, if known.

        Returns:
            The device id.
        """
        if not family or not serial:
            raise ValueError(_("a device needs both a family and a serial number"))

        def work(tx: WriteTx) -> int:
            # Under the head lock the look-up and the insert cannot race another station's.
            row = writes.find_device(tx, family, serial)
            if row is None:
                device_id = writes.insert_row(
                    tx,
                    devices,
                    {
                        "family": family,
                        "serial": serial,
                        "vendor": vendor,
                        "model": model,
                        "first_seen": tx.at,
                        "last_seen": tx.at,
                    },
                )
            else:
                device_id, known_vendor, known_model = row
                writes.update_row(
                    tx,
                    devices,
                    {"id": device_id},
                    {
                        "last_seen": tx.at,
                        "vendor": vendor if vendor is not None else known_vendor,
                        "model": model if model is not None else known_model,
                    },
                )
            tx.audit(
                "device.seen",
                {
                    "device_id": device_id,
                    "family": family,
                    "serial": serial,
                    "vendor": vendor,
                    "model": model,
                    "new": row is None,
                },
                row=(devices, device_id),
            )
            return device_id

        return self._write(work)

    def record_inspection(
        self,
        device_id: int,
        address: str,
        report: Mapping[str, Any],
        operator: str | None = None,
        *,
        simulated: bool = False,
    ) -> int:
        """Store an inspection report (redacted again, in case a caller forgot) and its verdict.

        Args:
            device_id: from :meth:`record_device`.
            address: the address the terminal was reached at.
            report: the JSON report dict (``posdiag.report/1``); ``report["verdict"]["status"]``
                is stored in its own column so listings need not parse the report.
            operator: who ran the check (a name for the manifest, not a credential); None when
                nobody was named. An empty name counts as none.
            simulated: the terminal was a simulator (kept out of depot manifests).

        Returns:
            The inspection id.
        """
        try:
            verdict = str(report["verdict"]["status"])
        except (KeyError, TypeError):
            raise ValueError(_("the report has no verdict.status; pass the JSON report")) from None
        report_json = redacted_json(report)
        who = operator or None

        def work(tx: WriteTx) -> int:
            writes.require_device(tx, device_id)
            inspection_id = writes.insert_row(
                tx,
                inspections,
                {
                    "device_id": device_id,
                    "address": address,
                    "at": tx.at,
                    "verdict": verdict,
                    "report_json": report_json,
                    "operator": who,
                    "simulated": 1 if simulated else None,
                },
            )
            tx.audit(
                "inspection.recorded",
                {
                    "inspection_id": inspection_id,
                    "device_id": device_id,
                    "address": address,
                    "verdict": verdict,
                    "operator": who,
                    "report_sha256": hashlib.sha256(report_json.encode("utf-8")).hexdigest(),
                    "simulated": simulated,
                },
                row=(inspections, inspection_id),
            )
            return inspection_id

        return self._write(work)

    def inspections(self, limit: int = 50) -> list[InspectionRecord]:
        """The newest inspections first, with their stored reports."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(inspections, devices.c.family, devices.c.serial)
                .join(devices, devices.c.id == inspections.c.device_id)
                .order_by(inspections.c.id.desc())
                .limit(max(0, limit))
            ).all()
        return [
            InspectionRecord(
                id=row.id,
                device_id=row.device_id,
                family=row.family,
                serial=row.serial,
                address=row.address,
                at=datetime.fromisoformat(row.at),
                verdict=row.verdict,
                report=json.loads(row.report_json),
                operator=row.operator,
                simulated=bool(row.simulated),
            )
            for row in rows
        ]

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, event: str, /, **data: Any) -> None:
        """Append a free-form event to the audit log in its own transaction.

        Args:
            event: a dotted event name, e.g. ``wipe.operator_confirmed``; no NUL characters
                (PostgreSQL cannot store them, and the name is part of the row's hash).
            **data: details; redacted (secrets dropped, identifiers masked) before storing.
        """
        if not event or "\x00" in event:
            raise ValueError(_("an audit event needs a name, without NUL characters"))
        self._write(lambda tx: tx.audit(event, data))

    def head(self) -> AuditHead:
        """The newest audit row's id and hash; put it in certificates to anchor the log."""
        with self._read() as conn:
            row = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one_or_none()
        if row is None:
            raise LedgerError(
                _("the ledger {where} has lost its audit head").format(where=self._where)
            )
        return AuditHead(last_id=row.last_id, hash=row.hash, rows=row.row_count)

    def verify_chain(self) -> ChainReport:
        """Re-hash the audit log alone and compare it with the recorded head.

        Detects a changed entry (any column), a deleted entry, reordered entries and a cut-off
        tail. :meth:`verify` also checks every table's rows against their seals.
        """
        with self._read() as conn:
            return verify_chain(conn)

    def verify(self) -> LedgerVerification:
        """Check the chain and every row of every table the manifest and certificates use.

        One snapshot, one streaming pass (constant memory). The result names each row that was
        modified, inserted, deleted or moved outside posdiag, with its table.
        """
        with self._read() as conn:
            return verify(conn)
