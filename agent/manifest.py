"""The batch manifest: per-terminal rows for the shipment back to the vendor.

Read-only over the ledger (SQLAlchemy Core selects on :attr:`Ledger.engine`): one row per wipe
run (batch, serial, model, outcome, certificate, operator, times, reasons) or per inspection
(serial, model, verdict, operator, time, address). Nothing secret is in these columns: the ledger
never stores a TID/MID in the clear, and addresses are shown without their password option.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import sqlalchemy as sa

from posdiag.drivers.address import parse_address

from .ledger import Ledger, RunStatus, certificates, devices, inspections, wipe_runs

__all__ = [
    "CHECK_COLUMNS",
    "IN_PROGRESS",
    "WIPE_COLUMNS",
    "ManifestError",
    "check_rows",
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
)
IN_PROGRESS: Final = "in_progress"
"""The outcome shown for a run still open (only with ``include_open``)."""

Row = dict[str, Any]


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
            f"--since {text!r} is not an ISO date or date-time (e.g. 2026-05-09 or "
            "2026-05-09T07:30:00Z)"
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


def wipe_rows(
    ledger: Ledger,
    *,
    batch: str | None = None,
    since: datetime | None = None,
    include_open: bool = False,
) -> list[Row]:
    """One row per wipe run, oldest first (see :data:`WIPE_COLUMNS`).

    Args:
        ledger: the ledger to read.
        batch: only runs whose options carry this batch id.
        since: only runs started at or after this moment.
        include_open: also runs still open, with outcome ``in_progress``.
    """
    query = (
        sa.select(
            wipe_runs,
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
    if since is not None:
        query = query.where(wipe_runs.c.started_at >= _stamp(since))
    with ledger.engine.connect() as conn:
        runs = conn.execute(query).all()
        certs: dict[int, tuple[str, str]] = {}
        if runs:
            for cert in conn.execute(
                sa.select(certificates.c.run_id, certificates.c.report_id, certificates.c.path)
                .where(certificates.c.run_id.in_([run.id for run in runs]))
                .order_by(certificates.c.id)
            ):
                certs[cert.run_id] = (cert.report_id, cert.path)  # the newest one wins
    rows: list[Row] = []
    for run in runs:
        run_batch = _options(run.options_json).get("batch")
        if batch is not None and run_batch != batch:
            continue
        try:
            reasons = json.loads(run.reasons_json)
        except ValueError:
            reasons = []
        cert_id, cert_path = certs.get(run.id, (None, None))
        rows.append(
            {
                "batch": run_batch if isinstance(run_batch, str) else None,
                "serial": run.serial,
                "family": run.family,
                "vendor": run.vendor,
                "model": run.model,
                "outcome": run.outcome if run.status == RunStatus.FINISHED.value else IN_PROGRESS,
                "certificate_id": cert_id,
                "certificate_path": cert_path,
                "operator": run.operator,
                "started_at": run.started_at,
                "finished_at": run.finished_at,
                "reasons": "; ".join(str(reason) for reason in reasons),
            }
        )
    return rows


def check_rows(ledger: Ledger, *, since: datetime | None = None) -> list[Row]:
    """One row per inspection, oldest first (see :data:`CHECK_COLUMNS`)."""
    query = (
        sa.select(
            inspections.c.id,
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
    with ledger.engine.connect() as conn:
        found = conn.execute(query).all()
    return [
        {
            "serial": row.serial,
            "family": row.family,
            "vendor": row.vendor,
            "model": row.model,
            "verdict": row.verdict,
            "operator": row.operator,
            "checked_at": row.at,
            "address": _safe_address(row.address),
        }
        for row in found
    ]


def to_csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """RFC 4180 CSV (CRLF line ends, quoting as needed) with a header row; None is empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(rows: Sequence[Row]) -> str:
    """A JSON array of row objects."""
    return json.dumps(list(rows), indent=2, ensure_ascii=False)
