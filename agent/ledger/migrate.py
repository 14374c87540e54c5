"""Create a new ledger, or bring an older one to the current layout, without losing a row.

A ready ledger is opened with reads only, so opening works while another process writes. Creating
or upgrading happens in one write transaction: on SQLite under ``BEGIN IMMEDIATE``, on PostgreSQL
under a transaction-scoped advisory lock (two stations started at once on an empty database would
otherwise both run ``CREATE TABLE`` and one would fail on the catalogue's unique index).

A fresh ledger's first audit entry, ``ledger.created``, seals its metadata row. An upgrade appends
``ledger.upgraded`` (sealing the metadata), then one ``row.sealed`` entry per existing row of the
sealed tables (see :mod:`.chain`), chained after the entries already there, which stay as written.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from posdiag.drivers.i18n import _

from ..logs import get_logger
from .chain import GENESIS_HASH, WriteTx, audit_row_hash
from .engine import WRITE_OPTION, Database, LedgerError
from .schema import (
    LEDGER_TABLES,
    RUN_LIFECYCLE_CHECK,
    RUN_STATUS_CHECK,
    SCHEMA_VERSION,
    SEALED_TABLES,
    audit_head,
    audit_log,
    ledger_meta,
    metadata,
    primary_key,
    wipe_runs,
    wipe_runs_table,
)

__all__ = ["initialise"]

log = get_logger("posdiag.agent.ledger")

_PG_SCHEMA_LOCK: Final = 0x706F73646961_6700
"""``pg_advisory_xact_lock`` key held while the tables are created or upgraded ("posdiag")."""


def initialise(db: Database) -> None:
    """Create missing tables and the head, upgrade an old layout, refuse foreign or newer ones.

    Raises:
        LedgerError: for a foreign database, one written by a newer posdiag, or one that cannot
            be read or written.
    """
    with db.translate(), db.connect(write=False) as conn:
        with conn.begin():
            state = _schema_state(db, conn)
        if state == "ready":
            return
        conn.execution_options(**{WRITE_OPTION: True})
        if db.is_postgres:
            conn.execution_options(isolation_level="READ COMMITTED")
        rebuild = db.is_sqlite and state == "outdated"
        if rebuild:
            # SQLite cannot change a CHECK constraint in place: wipe_runs is rebuilt, which
            # needs foreign keys off on this connection (a no-op inside a transaction).
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                if db.is_postgres:
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
                _create_or_upgrade(db, conn)
        finally:
            if rebuild:
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
    db.tighten()


def _create_or_upgrade(db: Database, conn: Connection) -> None:
    # Checked again under the write lock: another process may have just done it.
    state = _schema_state(db, conn)
    if state == "ready":
        return
    head_row = None
    if state == "outdated":
        # Head first, as every writer does: taking the table lock of ALTER TABLE first could
        # deadlock with a station that holds the head and inserts.
        head_row = conn.execute(
            sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
        ).one_or_none()
        _upgrade(db, conn, head_row)
        return
    metadata.create_all(conn)
    fresh_meta = conn.execute(sa.select(ledger_meta.c.value).limit(1)).first() is None
    if fresh_meta:
        conn.execute(sa.insert(ledger_meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
    head = conn.execute(sa.select(audit_head)).first()
    empty = conn.execute(sa.select(audit_log.c.id).limit(1)).first() is None
    if head is None and empty:
        conn.execute(sa.insert(audit_head).values(id=1, last_id=0, hash=GENESIS_HASH, row_count=0))
        head = conn.execute(sa.select(audit_head)).one()
        WriteTx(conn, head).audit(
            "ledger.created",
            {"schema": SCHEMA_VERSION},
            row=(ledger_meta, "schema_version"),
        )


def _columns(conn: Connection, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(conn).get_columns(table)}


def _upgrade(db: Database, conn: Connection, head: Row[Any] | None) -> None:
    """Bring an older ledger to :data:`SCHEMA_VERSION`, in the caller's transaction.

    A station still on the previous posdiag then refuses the ledger as newer: on a shared ledger,
    upgrade every station together.
    """
    found = conn.execute(
        sa.select(ledger_meta.c.value).where(ledger_meta.c.key == "schema_version")
    ).scalar_one()
    _refuse_to_launder(db, conn)
    metadata.create_all(conn)  # tables added since (none yet, but cheap and future-proof)
    if "operator" not in _columns(conn, "inspections"):  # schema 2
        conn.execute(sa.text("ALTER TABLE inspections ADD COLUMN operator TEXT"))
    if "simulated" not in _columns(conn, "inspections"):  # schema 3
        conn.execute(sa.text("ALTER TABLE inspections ADD COLUMN simulated INTEGER"))
    audit_columns = _columns(conn, "audit_log")
    for name, kind in (
        ("row_table", "VARCHAR(32)"),
        ("row_key", "TEXT"),
        ("row_hash", "VARCHAR(64)"),
    ):
        if name not in audit_columns:
            conn.execute(sa.text(f"ALTER TABLE audit_log ADD COLUMN {name} {kind}"))
    indexes = {index["name"] for index in sa.inspect(conn).get_indexes("audit_log")}
    if "ix_audit_log_row" not in indexes:
        next(i for i in audit_log.indexes if i.name == "ix_audit_log_row").create(conn)
    if "certificate_json" not in _columns(conn, "wipe_runs"):
        if db.is_sqlite:
            _rebuild_wipe_runs_sqlite(conn)
        else:
            _alter_wipe_runs(conn)
    conn.execute(
        sa.update(ledger_meta)
        .where(ledger_meta.c.key == "schema_version")
        .values(value=str(SCHEMA_VERSION))
    )
    if head is None:
        raise LedgerError(
            _(
                "the ledger {where} has lost its audit head: it was damaged or tampered with; "
                "keep the file for investigation and start a new ledger"
            ).format(where=db.where)
        )
    tx = WriteTx(conn, head)
    tx.audit(
        "ledger.upgraded",
        {"from_schema": int(found), "to_schema": SCHEMA_VERSION},
        row=(ledger_meta, "schema_version"),
    )
    sealed = 0
    for table in SEALED_TABLES:
        key = primary_key(table)
        keys = [row[0] for row in conn.execute(sa.select(key).order_by(key))]
        for value in keys:
            if table is ledger_meta and value == "schema_version":
                continue  # sealed by ledger.upgraded
            tx.seal(table, value)
            sealed += 1
    log.info(
        "ledger.upgraded", ledger=db.where, from_schema=found, to=SCHEMA_VERSION, sealed=sealed
    )


def _refuse_to_launder(db: Database, conn: Connection) -> None:
    """Refuse an upgrade that would seal rows nobody can vouch for.

    The upgrade seals every row as found. That is only sound for a ledger whose audit chain is
    intact and which has never been sealed: a schema-3 ledger whose version was edited back (to
    have posdiag re-seal rows edited since) has seals already, and a broken chain means the rows
    may have been edited too.
    """
    if "row_table" in _columns(conn, "audit_log"):
        sealed = conn.execute(
            sa.text("SELECT 1 FROM audit_log WHERE row_table IS NOT NULL LIMIT 1")
        ).first()
        if sealed is not None:
            raise LedgerError(
                _(
                    "the ledger {where} says it is older than it is (its schema version was "
                    "changed): it was tampered with; keep it for investigation and start a new "
                    "ledger"
                ).format(where=db.where)
            )
    report = verify_old_chain(conn)
    if report is not None:
        raise LedgerError(
            _(
                "the ledger {where} cannot be upgraded: its audit chain is broken ({report}); "
                "keep it for investigation and start a new ledger"
            ).format(where=db.where, report=report)
        )


def verify_old_chain(conn: Connection) -> str | None:
    """Check a pre-schema-3 audit log (no seal columns yet); the reason it fails, or None."""
    rows = conn.execute(
        sa.text("SELECT id, at, event, data_json, prev_hash, hash FROM audit_log ORDER BY id")
    )
    last_id, last_hash, count = 0, GENESIS_HASH, 0
    for row in rows:
        count += 1
        expected = audit_row_hash(row.id, row.at, row.event, row.data_json, row.prev_hash)
        if row.id != last_id + 1 or row.prev_hash != last_hash or row.hash != expected:
            return f"at audit row {row.id}"
        last_id, last_hash = row.id, row.hash
    head = conn.execute(sa.text("SELECT last_id, hash, row_count FROM audit_head")).first()
    if head is not None and (head.last_id, head.hash, head.row_count) != (
        last_id,
        last_hash,
        count,
    ):
        return "its head does not match its last row"
    return None


_RUN_COLUMNS: Final = (
    "id, device_id, address, operator, started_at, finished_at, status, outcome, reasons_json, "
    "options_json"
)


def _rebuild_wipe_runs_sqlite(conn: Connection) -> None:
    """SQLite's documented way to change a table's constraints: copy into a new table, swap."""
    scratch = sa.MetaData()
    new_table = wipe_runs_table(scratch, "wipe_runs_v3", index=False)
    sa.Table("devices", scratch, sa.Column("id", sa.Integer, primary_key=True))
    new_table.create(conn)
    conn.execute(
        sa.text(f"INSERT INTO wipe_runs_v3 ({_RUN_COLUMNS}) SELECT {_RUN_COLUMNS} FROM wipe_runs")
    )
    conn.execute(sa.text("DROP TABLE wipe_runs"))
    conn.execute(sa.text("ALTER TABLE wipe_runs_v3 RENAME TO wipe_runs"))
    for index in wipe_runs.indexes:
        index.create(conn)
    broken = conn.execute(sa.text("PRAGMA foreign_key_check")).first()
    if broken is not None:
        raise LedgerError(
            _(
                "the ledger's table {value} refers to rows that do not exist; it was damaged or "
                "tampered with: keep the file for investigation and start a new ledger"
            ).format(value=broken[0])
        )


def _alter_wipe_runs(conn: Connection) -> None:
    """PostgreSQL changes constraints in place."""
    statements = (
        "ALTER TABLE wipe_runs ADD COLUMN certificate_json TEXT",
        "ALTER TABLE wipe_runs ADD COLUMN simulated INTEGER",
        "ALTER TABLE wipe_runs DROP CONSTRAINT IF EXISTS ck_wipe_runs_status",
        "ALTER TABLE wipe_runs DROP CONSTRAINT IF EXISTS ck_wipe_runs_lifecycle",
        f"ALTER TABLE wipe_runs ADD CONSTRAINT ck_wipe_runs_status CHECK ({RUN_STATUS_CHECK})",
        "ALTER TABLE wipe_runs ADD CONSTRAINT ck_wipe_runs_lifecycle"
        f" CHECK ({RUN_LIFECYCLE_CHECK})",
    )
    for statement in statements:
        conn.execute(sa.text(statement))


def _schema_state(db: Database, conn: Connection) -> str:
    """``ready``, ``incomplete`` (create what is missing) or ``outdated`` (upgrade).

    Raises:
        LedgerError: for a foreign database or one written by a newer posdiag.
    """
    present = set(sa.inspect(conn).get_table_names())
    if "ledger_meta" not in present:
        if present & LEDGER_TABLES:
            raise LedgerError(
                _(
                    "the database {where} has tables named like the ledger's but is not a posdiag "
                    "ledger; give a different database"
                ).format(where=db.where)
            )
        return "incomplete"
    version = conn.execute(
        sa.select(ledger_meta.c.value).where(ledger_meta.c.key == "schema_version")
    ).scalar_one_or_none()
    if version is not None and (
        not (version.isascii() and version.isdigit()) or int(version) > SCHEMA_VERSION
    ):
        raise LedgerError(
            _(
                "the ledger {where} was written by a newer posdiag (schema {version}, this "
                "version reads {SCHEMA_VERSION}); upgrade posdiag"
            ).format(where=db.where, version=version, SCHEMA_VERSION=SCHEMA_VERSION)
        )
    if version is not None and int(version) < SCHEMA_VERSION:
        return "outdated"
    if version is None and "audit_log" in present:
        written = conn.execute(sa.select(audit_log.c.id).limit(1)).first() is not None
        if written:  # creation is one transaction: a ledger with entries had its version
            raise LedgerError(
                _(
                    "the ledger {where} has lost its metadata (its schema version row was "
                    "deleted): it was tampered with; keep it for investigation and start a new "
                    "ledger"
                ).format(where=db.where)
            )
    if version is None or not LEDGER_TABLES.issubset(present):
        return "incomplete"
    if conn.execute(sa.select(audit_head.c.id)).first() is not None:
        return "ready"
    # No head: fine for a ledger whose creation was cut short (empty log), but recreating the
    # head of a non-empty log would hide tampering, so then a write reports it instead.
    has_rows = conn.execute(sa.select(audit_log.c.id).limit(1)).first() is not None
    return "ready" if has_rows else "incomplete"
