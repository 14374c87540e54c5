"""The ledger's tables, their states, and how an older ledger becomes the current layout.

Layout history (``ledger_meta.schema_version``):

1. the first layout;
2. ``inspections.operator`` (who ran the check);
3. every row sealed in the audit chain (``audit_log.row_table``/``row_key``/``row_hash``, see
   :mod:`.chain`), the ``certifying`` run state with the certificate content it waits for
   (``wipe_runs.certificate_json``), and the ``simulated`` flag on inspections and runs.

Upgrades keep every row and every audit hash already written: columns are only added, and the
one table whose CHECK constraints change (``wipe_runs``) is rebuilt row for row. The rows found at
the upgrade are sealed as they are then (the old layout could not tell an edited row from an
original one; the audit chain up to the upgrade is still verified as it always was).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa

__all__ = [
    "SCHEMA_VERSION",
    "SEALED_TABLES",
    "Outcome",
    "RunStatus",
    "StepStatus",
    "audit_head",
    "audit_log",
    "certificates",
    "devices",
    "inspections",
    "ledger_meta",
    "metadata",
    "wipe_runs",
    "wipe_steps",
]

SCHEMA_VERSION: Final = 3
"""Version of the table layout; a ledger written by a newer posdiag is refused, not misread."""


class RunStatus(enum.StrEnum):
    """Where a wipe run is: going (or interrupted), waiting for its certificate, or done."""

    RUNNING = "running"
    CERTIFYING = "certifying"
    """The outcome is decided but the certificate is not yet written and recorded; the next
    ``posdiag wipe`` (or ``station --batch``) re-issues it from the stored content."""
    FINISHED = "finished"


class Outcome(enum.StrEnum):
    """How a finished wipe run ended; this is what a certificate attests."""

    ERASED = "erased"
    ERASED_WITH_EXCEPTIONS = "erased_with_exceptions"
    NOT_ERASED = "not_erased"
    ABORTED = "aborted"
    REFUSED = "refused"


class StepStatus(enum.StrEnum):
    """Where one step of a wipe run got to."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    VERIFIED = "verified"
    INTERRUPTED = "interrupted"


FINAL_STEP_STATUSES: Final = frozenset(StepStatus) - {StepStatus.STARTED}

# Timestamps are fixed-width ISO strings (32 characters), not DateTime columns: they must hash
# identically on every backend, and SQLite's DateTime drops the time zone.
TS_LEN: Final = 32


def _in_list(column: str, values: Sequence[str]) -> str:
    """SQL text for a CHECK constraint; values are our own enum constants, never user input."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Text(sa.types.TypeDecorator[str]):
    """Text that comes from terminals or people, stored the same on every backend.

    SQLite keeps any string in any column; PostgreSQL enforces ``VARCHAR(n)`` lengths and
    cannot store NUL at all. A terminal that reports a long or garbled serial must be recorded,
    not turned into a database error mid-wipe, so on PostgreSQL these columns are ``TEXT`` and NUL
    becomes U+FFFD (in look-ups too, so the same serial finds the same row). SQLite's DDL and
    values are unchanged.
    """

    impl = sa.Text
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__()
        self.length = length

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql" or self.length is None:
            return sa.Text()
        return sa.String(self.length)

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is not None and dialect.name == "postgresql" and "\x00" in value:
            return value.replace("\x00", "\ufffd")
        return value


metadata = sa.MetaData()
"""All ledger tables; ``metadata.create_all`` builds a fresh ledger."""

ledger_meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("family", Text(64), nullable=False),
    sa.Column("serial", Text(128), nullable=False),
    sa.Column("vendor", Text()),
    sa.Column("model", Text()),
    sa.Column("first_seen", sa.String(TS_LEN), nullable=False),
    sa.Column("last_seen", sa.String(TS_LEN), nullable=False),
    sa.UniqueConstraint("family", "serial", name="uq_devices_family_serial"),
)

inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False, index=True),
    sa.Column("address", Text(), nullable=False),
    sa.Column("at", sa.String(TS_LEN), nullable=False),
    sa.Column("verdict", Text(32), nullable=False),
    sa.Column("report_json", sa.Text, nullable=False),
    sa.Column("operator", Text()),  # schema 2; NULL when nobody was named
    sa.Column("simulated", sa.Integer),  # schema 3; 1 for a simulated terminal, else NULL
)

_RUN_STATUSES: Final = [status.value for status in RunStatus]
_OUTCOMES: Final = [outcome.value for outcome in Outcome]
RUN_STATUS_CHECK: Final = _in_list("status", _RUN_STATUSES)
RUN_LIFECYCLE_CHECK: Final = (
    "(status = 'running' AND outcome IS NULL AND finished_at IS NULL)"
    " OR (status IN ('certifying', 'finished') AND outcome IS NOT NULL"
    " AND finished_at IS NOT NULL)"
)


def wipe_runs_table(meta: sa.MetaData, name: str = "wipe_runs", index: bool = True) -> sa.Table:
    """The wipe_runs layout, as a function because the SQLite upgrade rebuilds the table.

    The rebuild uses a temporary name; constraint names stay those of ``wipe_runs``.
    """
    base = "wipe_runs"
    extra: list[Any] = (
        [sa.Index(f"ix_{base}_device_status", "device_id", "status")] if index else []
    )
    return sa.Table(
        name,
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("address", Text(), nullable=False),
        sa.Column("operator", Text(), nullable=False),
        sa.Column("started_at", sa.String(TS_LEN), nullable=False),
        sa.Column("finished_at", sa.String(TS_LEN)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("reasons_json", sa.Text, nullable=False),
        sa.Column("options_json", sa.Text, nullable=False),
        # schema 3: the unsigned certificate content a `certifying` run waits to issue
        sa.Column("certificate_json", sa.Text),
        sa.Column("simulated", sa.Integer),
        sa.CheckConstraint(RUN_STATUS_CHECK, name=f"ck_{base}_status"),
        sa.CheckConstraint(
            f"outcome IS NULL OR {_in_list('outcome', _OUTCOMES)}", name=f"ck_{base}_outcome"
        ),
        # A run is open (no outcome yet), or has an outcome and an end time (certifying/finished).
        sa.CheckConstraint(RUN_LIFECYCLE_CHECK, name=f"ck_{base}_lifecycle"),
        *extra,
    )


wipe_runs = wipe_runs_table(metadata)

wipe_steps = sa.Table(
    "wipe_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("wipe_runs.id"), nullable=False),
    sa.Column("name", Text(128), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("started_at", sa.String(TS_LEN)),
    sa.Column("finished_at", sa.String(TS_LEN)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", Text(), nullable=False),
    sa.CheckConstraint(_in_list("status", list(StepStatus)), name="ck_wipe_steps_status"),
    sa.UniqueConstraint("run_id", "name", name="uq_wipe_steps_run_name"),
    sa.UniqueConstraint("run_id", "seq", name="uq_wipe_steps_run_seq"),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("wipe_runs.id"), nullable=False, index=True),
    sa.Column("report_id", sa.String(36), nullable=False, unique=True),
    sa.Column("path", Text(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(TS_LEN), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # Ids are assigned by the ledger (head + 1), not by a sequence: they are part of the hash and
    # must have no gaps, which database sequences do not promise.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(TS_LEN), nullable=False),
    sa.Column("event", Text(128), nullable=False),
    sa.Column("data_json", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # schema 3: the row this entry seals (table, primary key as text, content hash); NULL for an
    # entry that seals nothing (and for every entry written before schema 3)
    sa.Column("row_table", sa.String(32)),
    sa.Column("row_key", Text(80)),
    sa.Column("row_hash", sa.String(64)),
    sa.Index("ix_audit_log_row", "row_table", "row_key", "id"),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
)

LEDGER_TABLES: Final = frozenset(metadata.tables)

SEALED_TABLES: Final[tuple[sa.Table, ...]] = (
    ledger_meta,
    devices,
    inspections,
    wipe_runs,
    wipe_steps,
    certificates,
)
"""Every table whose rows reports, manifests and certificates are built from; each row's content
hash is sealed in the audit chain (the chain itself and its head are checked by re-hashing)."""


def primary_key(table: sa.Table) -> sa.Column[Any]:
    """The single primary-key column of a ledger table."""
    (column,) = table.primary_key.columns
    return column
