"""The statements the record API writes with, built once, and the checks it makes before writing.

Every function here runs inside a write transaction (a :class:`.chain.WriteTx`, usually one
record of a group commit) through :class:`.fast.FastSql`: the statements are module constants
with named parameters, so each is compiled once per dialect and run on the driver's cursor. That
is what lets one writer thread keep up with hundreds of station workers (see :mod:`.group`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa

from posdiag.drivers.i18n import _

from .chain import WriteTx
from .engine import LedgerError
from .schema import (
    RunStatus,
    certificates,
    devices,
    inspections,
    wipe_runs,
    wipe_steps,
)

__all__ = [
    "find_device",
    "insert_row",
    "open_run_id",
    "require_device",
    "require_running",
    "run_status",
    "step_row",
    "step_seq",
    "update_row",
]

_DEVICE_EXISTS: Final = sa.select(devices.c.id).where(devices.c.id == sa.bindparam("device_id"))
_FIND_DEVICE: Final = sa.select(devices.c.id, devices.c.vendor, devices.c.model).where(
    devices.c.family == sa.bindparam("family"), devices.c.serial == sa.bindparam("serial")
)
_OPEN_RUN: Final = sa.select(wipe_runs.c.id).where(
    wipe_runs.c.device_id == sa.bindparam("device_id"),
    sa.or_(
        wipe_runs.c.status == RunStatus.RUNNING.value,
        wipe_runs.c.status == RunStatus.CERTIFYING.value,
    ),
)
_RUN_STATUS: Final = sa.select(wipe_runs.c.status).where(wipe_runs.c.id == sa.bindparam("run_id"))
_STEP_SEQ: Final = sa.select(
    sa.select(wipe_steps.c.seq)
    .where(wipe_steps.c.run_id == sa.bindparam("run_id"), wipe_steps.c.name == sa.bindparam("name"))
    .scalar_subquery(),
    sa.select(sa.func.max(wipe_steps.c.seq))
    .where(wipe_steps.c.run_id == sa.bindparam("run_id"))
    .scalar_subquery(),
)
_STEP_ROW: Final = sa.select(wipe_steps).where(
    wipe_steps.c.run_id == sa.bindparam("run_id"), wipe_steps.c.name == sa.bindparam("name")
)
_STEP_COLUMNS: Final = tuple(column.name for column in wipe_steps.columns)
_CERTIFICATE_TAKEN: Final = sa.select(certificates.c.run_id, certificates.c.sha256).where(
    certificates.c.report_id == sa.bindparam("report_id")
)
_INSERTS: Final = {
    table.name: sa.insert(table)
    for table in (devices, inspections, wipe_runs, wipe_steps, certificates)
}
_UPDATES: dict[tuple[str, tuple[str, ...], tuple[str, ...]], sa.Update] = {}


def require_device(tx: WriteTx, device_id: int) -> None:
    """Refuse a record about a device the ledger does not know."""
    if tx.sql.one(_DEVICE_EXISTS, {"device_id": device_id}) is None:
        raise LedgerError(
            _("no device {device_id} in the ledger; record the device first").format(
                device_id=device_id
            )
        )


def find_device(tx: WriteTx, family: str, serial: str) -> tuple[int, str | None, str | None] | None:
    """The device's id, vendor and model, or None for a terminal never seen."""
    row = tx.sql.one(_FIND_DEVICE, {"family": family, "serial": serial})
    return None if row is None else (int(row[0]), row[1], row[2])


def open_run_id(tx: WriteTx, device_id: int) -> int | None:
    """The device's run that is still running or waiting for its certificate, if any."""
    found = tx.sql.scalar(_OPEN_RUN, {"device_id": device_id})
    return None if found is None else int(found)


def run_status(tx: WriteTx, run_id: int) -> RunStatus:
    """The run's status; a run that does not exist is refused."""
    status = tx.sql.scalar(_RUN_STATUS, {"run_id": run_id})
    if status is None:
        raise LedgerError(_("no wipe run {run_id} in the ledger").format(run_id=run_id))
    return RunStatus(status)


def require_running(tx: WriteTx, run_id: int) -> None:
    """Refuse to change a run that is finished (or certifying)."""
    if run_status(tx, run_id) is not RunStatus.RUNNING:
        raise LedgerError(
            _("wipe run {run_id} is already finished and cannot be changed").format(run_id=run_id)
        )


def step_seq(tx: WriteTx, run_id: int, name: str) -> tuple[int, bool]:
    """The step's existing seq, or the next free one; and whether the step exists."""
    seq, highest = tx.sql.one(_STEP_SEQ, {"run_id": run_id, "name": name})
    if seq is not None:
        return int(seq), True
    return (int(highest) + 1 if highest is not None else 1), False


def step_row(tx: WriteTx, run_id: int, name: str) -> dict[str, Any]:
    """One step's row as stored (its id included), to seal it without reading it twice."""
    row = tx.sql.one(_STEP_ROW, {"run_id": run_id, "name": name})
    if row is None:  # pragma: no cover - written just before in the same transaction
        raise LedgerError(f"step {name!r} of run {run_id} vanished")
    return dict(zip(_STEP_COLUMNS, row, strict=True))


def insert_row(tx: WriteTx, table: sa.Table, values: Mapping[str, Any]) -> int:
    """Insert one row into a ledger table and return its id."""
    return tx.sql.insert(_INSERTS[table.name], values)


def update_row(
    tx: WriteTx, table: sa.Table, where: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    """``UPDATE table SET values WHERE column = value AND …`` (one statement per shape, cached)."""
    shape = (table.name, tuple(where), tuple(values))
    statement = _UPDATES.get(shape)
    if statement is None:
        statement = (
            sa.update(table)
            .where(*(table.c[column] == sa.bindparam(f"w_{column}") for column in where))
            .values({column: sa.bindparam(f"v_{column}") for column in values})
        )
        _UPDATES[shape] = statement
    params = {f"w_{column}": value for column, value in where.items()}
    params.update({f"v_{column}": value for column, value in values.items()})
    tx.sql.execute(statement, params)


def certificate_taken(tx: WriteTx, report_id: str) -> tuple[int, str] | None:
    """The run and file hash already recorded under this certificate report id, if any."""
    row = tx.sql.one(_CERTIFICATE_TAKEN, {"report_id": report_id})
    return None if row is None else (int(row[0]), str(row[1]))
