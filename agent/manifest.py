"""The batch manifest: per-terminal rows for the shipment back to the vendor.

Read-only over the ledger (SQLAlchemy Core selects on :attr:`Ledger.engine`): one row per wipe
run (batch, serial, model, outcome, certificate, operator, times, reasons) or per inspection
(serial, model, verdict, operator, time, address). Nothing secret is in these columns: the ledger
never stores a TID/MID in the clear, and addresses are shown without their password option.

A manifest is proof handed to a vendor, so no row that fails the ledger's verification is
presented as valid: every row carries an ``integrity`` column, ``verified`` or ``TAMPERED: …``
with the reason (see :func:`posdiag.agent.integrity.row_marks`). Simulated terminals are left
out unless asked for. CSV cells are stripped of control characters and cannot start a formula.

The CSV opens in Excel as it is: UTF-8 with a byte-order mark (without one, Excel reads UTF-8 as
the machine's ANSI code page and a Chinese merchant's or operator's name turns to mojibake).
Column names and cell values stay English identifiers, the same as the JSON's, because
machines read them; only messages meant for a person are translated.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from posdiag.drivers.address import parse_address
from posdiag.drivers.i18n import N_, _
from posdiag.drivers.text import csv_cell

from .ledger import (
    Ledger,
    LedgerVerification,
    RunStatus,
    certificates,
    devices,
    inspections,
    wipe_runs,
    wipe_steps,
)

__all__ = [
    "BOM",
    "CHECK_COLUMNS",
    "IN_PROGRESS",
    "WIPE_COLUMNS",
    "ManifestError",
    "check_rows",
    "csv_chunks",
    "iter_check_rows",
    "iter_wipe_rows",
    "json_chunks",
    "parse_since",
    "to_csv",
    "to_json",
    "wipe_rows",
]

WIPE_COLUMNS: Final = (
    "batch",
    "serial",
    "family",
    "vendor",
    "model",
    "outcome",
    "certificate_id",
    "certificate_path",
    "operator",
    "started_at",
    "finished_at",
    "reasons",
    "integrity",
)
CHECK_COLUMNS: Final = (
    "serial",
    "family",
    "vendor",
    "model",
    "verdict",
    "operator",  # None for checks recorded without one (or before the ledger had the column)
    "checked_at",
    "address",
    "integrity",
)
LOST_PREFIX: Final = "lost:"
"""Address prefix of the record ``posdiag lost`` writes (its confirming lookup)."""
IN_PROGRESS: Final = "in_progress"
"""The outcome shown for a run still open (only with ``include_open``)."""
CERTIFICATE_PENDING: Final = "certificate_pending"
"""The outcome shown for a run whose certificate is not yet issued (only with ``include_open``)."""
VERIFIED: Final = "verified"
COLUMN_TITLES: Final = {
    "batch": N_("Batch"),
    "serial": N_("Serial number"),
    "family": N_("Protocol"),
    "vendor": N_("Vendor"),
    "model": N_("Model"),
    "outcome": N_("Outcome"),
    "certificate_id": N_("Certificate ID"),
    "certificate_path": N_("Certificate file"),
    "operator": N_("Operator"),
    "started_at": N_("Started (UTC)"),
    "finished_at": N_("Finished (UTC)"),
    "reasons": N_("Reasons"),
    "integrity": N_("Record integrity"),
    "verdict": N_("Verdict"),
    "checked_at": N_("Checked (UTC)"),
    "address": N_("Address"),
}
"""Column → the header a person reads in a spreadsheet (``to_csv(titles=True)``); the column
ids stay the JSON keys and the default English CSV header that scripts read."""
BOM: Final = "\ufeff"
"""The byte-order mark that tells Excel a CSV is UTF-8 (EF BB BF once encoded)."""

Row = dict[str, Any]

_CHUNK: Final = 500
"""Runs whose certificates are looked up at once (an IN list every database accepts)."""
_CHUNK_CHARS: Final = 1 << 16
"""About how much output text is built before it is written."""


class ManifestError(ValueError):
    """A manifest option is unusable; the message says what was expected."""


def parse_since(text: str) -> datetime:
    """Parse ``--since``: an ISO date (midnight UTC) or datetime (naive means UTC).

    Raises:
        ManifestError: the text is not an ISO 8601 date or date-time.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ManifestError(
            _(
                "--since {value} is not an ISO date or date-time (e.g. 2026-05-09 or "
                "2026-05-09T07:30:00Z)"
            ).format(value=repr(text))
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _stamp(moment: datetime) -> str:
    """A bound comparable with the ledger's fixed-width UTC timestamp strings."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _safe_address(address: str) -> str:
    """The address without secret options (passwords); unparsable ones lose their query."""
    try:
        return parse_address(address).display()
    except Exception:  # an old or odd address must not stop the export
        return address.split("?", 1)[0]


def _options(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _integrity(verification: LedgerVerification | None, *marks: str | None) -> str:
    """The integrity cell of one manifest row: the first problem of the rows it is built from."""
    if verification is None:
        return "not verified"
    if not verification.chain.ok:
        return (
            f"TAMPERED: the audit chain is broken at entry {verification.chain.first_bad_id}; "
            "no record can be trusted"
        )
    for mark in marks:
        if mark is not None:
            return f"TAMPERED: {mark}"
    return VERIFIED


def wipe_rows(
    ledger: Ledger,
    *,
    batch: str | None = None,
    since: datetime | None = None,
    include_open: bool = False,
    include_simulated: bool = False,
    verification: LedgerVerification | None = None,
) -> list[Row]:
    """One row per wipe run, oldest first (see :data:`WIPE_COLUMNS`).

    Args:
        ledger: the ledger to read.
        batch: only runs whose options carry this batch id.
        since: only runs started at or after this moment.
        include_open: also runs still open (``in_progress``) or waiting for their certificate
            (``certificate_pending``).
        include_simulated: also runs on simulated terminals.
        verification: the ledger's verification, to mark rows built from records that fail it
            (``integrity`` says "not verified" without one).
    """
    return list(
        iter_wipe_rows(
            ledger,
            batch=batch,
            since=since,
            include_open=include_open,
            include_simulated=include_simulated,
            verification=verification,
        )
    )


def iter_wipe_rows(
    ledger: Ledger,
    *,
    batch: str | None = None,
    since: datetime | None = None,
    include_open: bool = False,
    include_simulated: bool = False,
    verification: LedgerVerification | None = None,
) -> Iterator[Row]:
    """:func:`wipe_rows` one at a time, in constant memory (``posdiag report`` streams them).

    The runs are read in one snapshot as a stream; their certificates and the marks of their
    steps are looked up a chunk of runs at a time.
    """
    from .integrity import row_marks
    from .ledger.fast import stream

    marks = row_marks(verification) if verification is not None else {}
    query = (
        sa.select(
            wipe_runs.c.id,
            wipe_runs.c.device_id,
            wipe_runs.c.operator,
            wipe_runs.c.started_at,
            wipe_runs.c.finished_at,
            wipe_runs.c.status,
            wipe_runs.c.outcome,
            wipe_runs.c.reasons_json,
            wipe_runs.c.options_json,
            devices.c.family,
            devices.c.serial,
            devices.c.vendor,
            devices.c.model,
        )
        .join(devices, devices.c.id == wipe_runs.c.device_id)
        .order_by(wipe_runs.c.started_at, wipe_runs.c.id)
    )
    if not include_open:
        query = query.where(wipe_runs.c.status == RunStatus.FINISHED.value)
    if not include_simulated:
        query = query.where(sa.func.coalesce(wipe_runs.c.simulated, 0) == 0)
    if since is not None:
        query = query.where(wipe_runs.c.started_at >= _stamp(since))
    with ledger.engine.connect() as conn, conn.begin():
        pending: list[_Run] = []
        for found in stream(conn, query):
            run = _Run(*found)
            if batch is not None and _options(run.options_json).get("batch") != batch:
                continue
            pending.append(run)
            if len(pending) >= _CHUNK:
                yield from _wipe_chunk(conn, pending, marks, verification)
                pending = []
        if pending:
            yield from _wipe_chunk(conn, pending, marks, verification)


class _Run(NamedTuple):
    """The columns of a run the manifest shows, as :func:`iter_wipe_rows` selects them."""

    id: int
    device_id: int
    operator: str
    started_at: str
    finished_at: str | None
    status: str
    outcome: str | None
    reasons_json: str
    options_json: str
    family: str
    serial: str
    vendor: str | None
    model: str | None


def _wipe_chunk(
    conn: Connection,
    runs: list[_Run],
    marks: Mapping[str, Mapping[str, str]],
    verification: LedgerVerification | None,
) -> Iterator[Row]:
    """The manifest rows of a chunk of runs, with their certificates and child marks."""
    certs: dict[int, tuple[str, str]] = {}
    bad_children: dict[int, str] = {}
    run_ids = [run.id for run in runs]
    cert_marks = marks.get("certificates", {})
    step_marks = marks.get("wipe_steps", {})
    for cert in conn.execute(
        sa.select(
            certificates.c.id,
            certificates.c.run_id,
            certificates.c.report_id,
            certificates.c.path,
        )
        .where(certificates.c.run_id.in_(run_ids))
        .order_by(certificates.c.id)
    ):
        certs[cert.run_id] = (cert.report_id, cert.path)  # the newest one wins
        if str(cert.id) in cert_marks:
            bad_children.setdefault(
                cert.run_id, f"its certificate record: {cert_marks[str(cert.id)]}"
            )
    if step_marks:
        for step in conn.execute(
            sa.select(wipe_steps.c.id, wipe_steps.c.run_id).where(wipe_steps.c.run_id.in_(run_ids))
        ):
            if str(step.id) in step_marks:
                bad_children.setdefault(
                    step.run_id, f"one of its steps: {step_marks[str(step.id)]}"
                )
    run_marks = marks.get("wipe_runs", {})
    device_marks = marks.get("devices", {})
    for run in runs:
        run_batch = _options(run.options_json).get("batch")
        try:
            reasons = json.loads(run.reasons_json)
        except ValueError:
            reasons = []
        cert_id, cert_path = certs.get(run.id, (None, None))
        run_mark = run_marks.get(str(run.id))
        device_mark = device_marks.get(str(run.device_id))
        if run.status == RunStatus.FINISHED.value:
            shown_outcome = run.outcome
        elif run.status == RunStatus.CERTIFYING.value:
            shown_outcome = CERTIFICATE_PENDING
        else:
            shown_outcome = IN_PROGRESS
        yield {
            "batch": run_batch if isinstance(run_batch, str) else None,
            "serial": run.serial,
            "family": run.family,
            "vendor": run.vendor,
            "model": run.model,
            "outcome": shown_outcome,
            "certificate_id": cert_id,
            "certificate_path": cert_path,
            "operator": run.operator,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "reasons": "; ".join(str(reason) for reason in reasons),
            "integrity": _integrity(
                verification,
                run_mark and f"the wipe run record: {run_mark}",
                device_mark and f"the terminal's record: {device_mark}",
                bad_children.get(run.id),
            ),
        }


def check_rows(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    include_simulated: bool = False,
    verification: LedgerVerification | None = None,
    lost_only: bool = False,
) -> list[Row]:
    """One row per inspection, oldest first (see :data:`CHECK_COLUMNS` and :func:`wipe_rows`).

    ``lost_only``: only the units reported lost (``posdiag lost`` records its confirming
    lookup with the address ``lost:…``), for the list of units a depot has blocked.
    """
    return list(
        iter_check_rows(
            ledger,
            since=since,
            include_simulated=include_simulated,
            verification=verification,
            lost_only=lost_only,
        )
    )


def iter_check_rows(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    include_simulated: bool = False,
    verification: LedgerVerification | None = None,
    lost_only: bool = False,
) -> Iterator[Row]:
    """:func:`check_rows` one at a time, streamed from the ledger in constant memory."""
    from .integrity import row_marks
    from .ledger.fast import stream

    marks = row_marks(verification) if verification is not None else {}
    query = (
        sa.select(
            inspections.c.id,
            inspections.c.device_id,
            inspections.c.address,
            inspections.c.at,
            inspections.c.verdict,
            inspections.c.operator,
            devices.c.family,
            devices.c.serial,
            devices.c.vendor,
            devices.c.model,
        )
        .join(devices, devices.c.id == inspections.c.device_id)
        .order_by(inspections.c.at, inspections.c.id)
    )
    if since is not None:
        query = query.where(inspections.c.at >= _stamp(since))
    if not include_simulated:
        query = query.where(sa.func.coalesce(inspections.c.simulated, 0) == 0)
    if lost_only:
        query = query.where(inspections.c.address.like(f"{LOST_PREFIX}%"))
    inspection_marks = marks.get("inspections", {})
    device_marks = marks.get("devices", {})
    with ledger.engine.connect() as conn, conn.begin():
        for found in stream(conn, query):
            key, device_id, address, at, verdict, operator, family, serial, vendor, model = found
            yield {
                "serial": serial,
                "family": family,
                "vendor": vendor,
                "model": model,
                "verdict": verdict,
                "operator": operator,
                "checked_at": at,
                "address": _safe_address(address),
                "integrity": _integrity(
                    verification,
                    (mark := inspection_marks.get(str(key))) and f"the check record: {mark}",
                    (mark := device_marks.get(str(device_id))) and f"the terminal's record: {mark}",
                ),
            }


def to_csv(
    rows: Iterable[Row], columns: Sequence[str], *, bom: bool = True, titles: bool = False
) -> str:
    """RFC 4180 CSV (CRLF line ends, quoting as needed) with a header row; None is empty.

    Args:
        rows: the manifest rows (:func:`wipe_rows`, :func:`check_rows`).
        columns: the columns to write, in order (:data:`WIPE_COLUMNS`, :data:`CHECK_COLUMNS`).
        bom: start with the byte-order mark (:data:`BOM`), once, before the header, so Excel
            reads the UTF-8 text (Chinese names) correctly; False for programs that do not
            expect one. Encode the result as plain ``utf-8``: ``utf-8-sig`` would add a second.
        titles: a header of :data:`COLUMN_TITLES` in the reader's language instead of the
            column ids.
    """
    return "".join(csv_chunks(rows, columns, bom=bom, titles=titles))


def csv_chunks(
    rows: Iterable[Row],
    columns: Sequence[str],
    *,
    bom: bool = True,
    titles: bool = False,
    size: int = _CHUNK_CHARS,
) -> Iterator[str]:
    """:func:`to_csv` in pieces of about ``size`` characters, for output as rows arrive."""
    buffer = io.StringIO()
    if bom:
        buffer.write(BOM)
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    if titles:
        writer.writerow({column: _(COLUMN_TITLES.get(column, column)) for column in columns})
    else:
        writer.writeheader()
    for row in rows:
        writer.writerow(
            {key: None if value is None else csv_cell(value) for key, value in row.items()}
        )
        if buffer.tell() >= size:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def to_json(rows: Iterable[Row]) -> str:
    """A JSON array of row objects."""
    return "".join(json_chunks(rows))


def json_chunks(rows: Iterable[Row], size: int = _CHUNK_CHARS) -> Iterator[str]:
    """:func:`to_json` in pieces, the same text ``json.dumps(list(rows), indent=2)`` gives."""
    parts: list[str] = []
    length = 0
    first = True
    for row in rows:
        element = json.dumps(row, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        piece = ("[\n  " if first else ",\n  ") + element
        first = False
        parts.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(parts)
            parts, length = [], 0
    parts.append("[]" if first else "\n]")
    yield "".join(parts)
