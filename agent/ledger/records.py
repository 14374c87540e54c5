"""The records the ledger hands back, and how stored rows become them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from .schema import Outcome, RunStatus, StepStatus, devices, wipe_runs, wipe_steps

__all__ = [
    "AuditHead",
    "CertificateRecord",
    "InspectionRecord",
    "PendingCertificate",
    "WipeRun",
    "WipeStepRecord",
]


def parse_ts(value: str | None) -> datetime | None:
    """Turn a stored timestamp back into an aware datetime."""
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class WipeStepRecord:
    """One step of a wipe run as recorded; ``started_at`` is None for a step never started."""

    name: str
    seq: int
    status: StepStatus
    started_at: datetime | None
    finished_at: datetime | None
    detail: str


@dataclass(frozen=True)
class WipeRun:
    """One wipe run with its steps in the order they were first started."""

    id: int
    device_id: int
    family: str
    serial: str
    address: str
    operator: str
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    outcome: Outcome | None
    reasons: tuple[str, ...]
    options: Mapping[str, Any]
    steps: tuple[WipeStepRecord, ...]
    simulated: bool = False


@dataclass(frozen=True)
class InspectionRecord:
    """One stored inspection; ``report`` is the (redacted) JSON report as it was recorded.

    ``operator`` is who ran the check, None when not given (or recorded before schema 2).
    """

    id: int
    device_id: int
    family: str
    serial: str
    address: str
    at: datetime
    verdict: str
    report: Mapping[str, Any]
    operator: str | None = None
    simulated: bool = False


@dataclass(frozen=True)
class AuditHead:
    """The newest audit row as recorded in ``audit_head``; publish it to anchor the log."""

    last_id: int
    hash: str
    rows: int


@dataclass(frozen=True)
class PendingCertificate:
    """A run in state ``certifying``: its outcome is final, its certificate still to be issued."""

    run_id: int
    family: str
    serial: str
    outcome: Outcome
    content: Mapping[str, Any]
    options: Mapping[str, Any]
    simulated: bool = False


@dataclass(frozen=True)
class CertificateRecord:
    """A certificate as the ledger recorded it: which run, which file, which bytes (SHA-256)."""

    id: int
    run_id: int
    report_id: str
    path: str
    sha256: str
    created_at: datetime


def run_select() -> sa.Select[Any]:
    """Wipe runs joined with their device's family and serial."""
    return sa.select(wipe_runs, devices.c.family, devices.c.serial).join(
        devices, devices.c.id == wipe_runs.c.device_id
    )


def run_from_row(row: Row[Any], steps: tuple[WipeStepRecord, ...]) -> WipeRun:
    return WipeRun(
        id=row.id,
        device_id=row.device_id,
        family=row.family,
        serial=row.serial,
        address=row.address,
        operator=row.operator,
        started_at=datetime.fromisoformat(row.started_at),
        finished_at=parse_ts(row.finished_at),
        status=RunStatus(row.status),
        outcome=Outcome(row.outcome) if row.outcome is not None else None,
        reasons=tuple(json.loads(row.reasons_json)),
        options=json.loads(row.options_json),
        steps=steps,
        simulated=bool(row.simulated),
    )


def to_reason_list(reasons: Sequence[str]) -> list[str]:
    if isinstance(reasons, str):
        raise TypeError("reasons must be a list of strings, not one string")
    return [str(reason) for reason in reasons]


def json_object(text: str) -> dict[str, Any]:
    """A stored JSON object, or {} for anything else (a damaged row must not stop a listing)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def load_steps(conn: Connection, run_ids: Sequence[int]) -> dict[int, tuple[WipeStepRecord, ...]]:
    """The steps of each of ``run_ids``, in the order they were first started."""
    if not run_ids:
        return {}
    found: dict[int, list[WipeStepRecord]] = {}
    for row in conn.execute(
        sa.select(wipe_steps)
        .where(wipe_steps.c.run_id.in_(run_ids))
        .order_by(wipe_steps.c.run_id, wipe_steps.c.seq)
    ):
        found.setdefault(row.run_id, []).append(
            WipeStepRecord(
                name=row.name,
                seq=row.seq,
                status=StepStatus(row.status),
                started_at=parse_ts(row.started_at),
                finished_at=parse_ts(row.finished_at),
                detail=row.detail,
            )
        )
    return {run_id: tuple(items) for run_id, items in found.items()}
