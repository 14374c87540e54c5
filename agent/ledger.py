"""The ledger: a durable, tamper-evident record of every inspection, wipe and certificate.

A wipe certificate is only worth something if the record behind it survives a crash and cannot be
quietly edited afterwards, so the ledger is built around three rules:

* **Every write is one transaction, committed before the method returns.** SQLite runs in WAL mode
  with ``synchronous=FULL``, so killing the process (or pulling the power) at any point keeps every
  committed row and never leaves a half-written one. An interrupted wipe is therefore visible as a
  run still ``running`` with its last step ``started``, and :meth:`Ledger.open_wipe_run` finds it.
* **Every write appends to a hash-chained audit log in the same transaction.** Each audit row's
  hash covers its own columns and the previous row's hash, so changing, deleting or reordering a
  row breaks the chain; the newest hash is also kept in the single-row ``audit_head`` table, so
  cutting rows off the end (which a chain alone cannot reveal) is detected too.
* **Nothing secret is stored.** Audit data, wipe options and inspection reports go through the same
  redaction as the logs (:func:`posdiag.agent.logs.redact`): passwords, PINs and keys become
  ``[redacted]`` and terminal/merchant identifiers keep only their last four characters.

Audit row hash (documented so other tools can verify a ledger without posdiag)::

    sha256(utf8(json.dumps(["posdiag.audit/1", id, at, event, data_json, prev_hash],
                           ensure_ascii=False, separators=(",", ":")))).hexdigest()

``prev_hash`` of the first row is 64 zeros. Timestamps are UTC ISO 8601 strings with microseconds
(``2026-05-09T07:35:25.123456+00:00``) so they hash and sort the same on every database.

The chain proves the log was not edited by someone without write access to the hashes; someone
who can rewrite the whole file can rewrite the whole chain. Publishing :meth:`Ledger.head` (for
example inside a signed certificate) anchors the log outside the file and closes that gap.

The ledger uses SQLAlchemy Core, so any SQLAlchemy URL works; SQLite in the user's data folder is
the default. Two processes may write at once: on SQLite every write transaction starts with
``BEGIN IMMEDIATE``, elsewhere the ``audit_head`` row is locked with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, Row, make_url

from posdiag.drivers.errors import PosdiagError

from .logs import get_logger, redact

__all__ = [
    "AUDIT_HASH_DOMAIN",
    "DEFAULT_BUSY_TIMEOUT_S",
    "GENESIS_HASH",
    "SCHEMA_VERSION",
    "AuditHead",
    "ChainReport",
    "InspectionRecord",
    "Ledger",
    "LedgerError",
    "Outcome",
    "RunStatus",
    "StepStatus",
    "WipeRun",
    "WipeStepRecord",
    "audit_row_hash",
    "default_path",
    "default_url",
    "metadata",
    "sqlite_url",
]

log = get_logger(__name__)

SCHEMA_VERSION: Final = 1
"""Version of the table layout; a ledger written by a newer posdiag is refused, not misread."""

GENESIS_HASH: Final = "0" * 64
"""``prev_hash`` of the first audit row."""

AUDIT_HASH_DOMAIN: Final = "posdiag.audit/1"
"""First element of every hashed tuple, so a hash from another format can never collide."""

DEFAULT_BUSY_TIMEOUT_S: Final = 10.0
"""How long a write waits for another process's write to finish before giving up."""

_WRITE_OPTION: Final = "posdiag_ledger_write"
_SQLITE_LOCK_WORDS: Final = ("locked", "busy")
_SQLITE_CORRUPT_WORDS: Final = ("not a database", "malformed", "corrupt")
_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")


class LedgerError(PosdiagError):
    """The ledger cannot be opened, read or written; the message says why and what to do."""


class RunStatus(enum.StrEnum):
    """Whether a wipe run is still going (or was interrupted) or has a final outcome."""

    RUNNING = "running"
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


_FINAL_STEP_STATUSES: Final = frozenset(StepStatus) - {StepStatus.STARTED}


def _in_list(column: str, values: Sequence[str]) -> str:
    """SQL text for a CHECK constraint; values are our own enum constants, never user input."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


# Timestamps are fixed-width ISO strings (32 characters), not DateTime columns: they must hash
# identically on every backend, and SQLite's DateTime drops the time zone.
_TS_LEN: Final = 32

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
    sa.Column("family", sa.String(64), nullable=False),
    sa.Column("serial", sa.String(128), nullable=False),
    sa.Column("vendor", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("first_seen", sa.String(_TS_LEN), nullable=False),
    sa.Column("last_seen", sa.String(_TS_LEN), nullable=False),
    sa.UniqueConstraint("family", "serial", name="uq_devices_family_serial"),
)

inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False, index=True),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("at", sa.String(_TS_LEN), nullable=False),
    sa.Column("verdict", sa.String(32), nullable=False),
    sa.Column("report_json", sa.Text, nullable=False),
)

wipe_runs = sa.Table(
    "wipe_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("operator", sa.Text, nullable=False),
    sa.Column("started_at", sa.String(_TS_LEN), nullable=False),
    sa.Column("finished_at", sa.String(_TS_LEN)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(32)),
    sa.Column("reasons_json", sa.Text, nullable=False),
    sa.Column("options_json", sa.Text, nullable=False),
    sa.CheckConstraint(_in_list("status", list(RunStatus)), name="ck_wipe_runs_status"),
    sa.CheckConstraint(
        f"outcome IS NULL OR {_in_list('outcome', list(Outcome))}", name="ck_wipe_runs_outcome"
    ),
    # A run is either open (no outcome yet) or closed with both an outcome and an end time.
    sa.CheckConstraint(
        "(status = 'running' AND outcome IS NULL AND finished_at IS NULL)"
        " OR (status = 'finished' AND outcome IS NOT NULL AND finished_at IS NOT NULL)",
        name="ck_wipe_runs_lifecycle",
    ),
    sa.Index("ix_wipe_runs_device_status", "device_id", "status"),
)

wipe_steps = sa.Table(
    "wipe_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("wipe_runs.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("started_at", sa.String(_TS_LEN)),
    sa.Column("finished_at", sa.String(_TS_LEN)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
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
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(_TS_LEN), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # Ids are assigned by the ledger (head + 1), not by a sequence: they are part of the hash and
    # must have no gaps, which database sequences do not promise.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(_TS_LEN), nullable=False),
    sa.Column("event", sa.String(128), nullable=False),
    sa.Column("data_json", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
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

_LEDGER_TABLES: Final = frozenset(metadata.tables)


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


@dataclass(frozen=True)
class InspectionRecord:
    """One stored inspection; ``report`` is the (redacted) JSON report as it was recorded."""

    id: int
    device_id: int
    family: str
    serial: str
    address: str
    at: datetime
    verdict: str
    report: Mapping[str, Any]


@dataclass(frozen=True)
class ChainReport:
    """Result of :meth:`Ledger.verify_chain`; ``reason`` is empty when ``ok``."""

    ok: bool
    rows: int
    first_bad_id: int | None
    reason: str


@dataclass(frozen=True)
class AuditHead:
    """The newest audit row as recorded in ``audit_head``; publish it to anchor the log."""

    last_id: int
    hash: str
    rows: int


def default_path() -> Path:
    """Where the ledger lives unless told otherwise, creating its folder (mode 0700) if needed.

    The folder is private because the ledger names terminals, operators and wipe outcomes.
    ``$XDG_DATA_HOME`` is honoured only when absolute, as the XDG specification requires.

    Returns:
        ``$XDG_DATA_HOME/posdiag/ledger.sqlite3`` or ``~/.local/share/posdiag/ledger.sqlite3``.
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    folder = base / "posdiag"
    if not folder.is_dir():
        base.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask; the intent is exact
    return folder / "ledger.sqlite3"


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """A SQLAlchemy URL for a SQLite file, escaped so any file name survives the round trip.

    Args:
        path: the database file; made absolute so the URL does not depend on the working folder.

    Returns:
        ``sqlite:////absolute/path`` with ``?``, ``#`` and ``%`` escaped.
    """
    return URL.create("sqlite", database=str(Path(path).absolute())).render_as_string()


def default_url() -> str:
    """The SQLAlchemy URL of the default ledger (see :func:`default_path`)."""
    return sqlite_url(default_path())


def _now() -> str:
    """The current time as the ledger stores it: fixed-width UTC ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _parse_ts(value: str | None) -> datetime | None:
    """Turn a stored timestamp back into an aware datetime."""
    return None if value is None else datetime.fromisoformat(value)


def _json_default(value: Any) -> Any:
    """Make common non-JSON values storable rather than failing a write over a detail."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, so equal data gives equal text."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def _redacted_json(data: Mapping[str, Any]) -> str:
    """Redact secrets and identifiers, then encode canonically; the only way data is stored."""
    return _dumps(redact(data))


def audit_row_hash(row_id: int, at: str, event: str, data_json: str, prev_hash: str) -> str:
    """The SHA-256 of one audit row, over the canonical encoding in the module docstring.

    Args:
        row_id: the row's id (part of the hash, so moving a row changes it).
        at: the row's timestamp string exactly as stored.
        event: the event name.
        data_json: the stored (already redacted) JSON text.
        prev_hash: the previous row's hash, or :data:`GENESIS_HASH` for the first row.

    Returns:
        64 lowercase hex digits.
    """
    encoded = json.dumps(
        [AUDIT_HASH_DOMAIN, row_id, at, event, data_json, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def _explain(where: str, error: BaseException, busy_timeout: float) -> str:
    """One readable sentence for a database failure, with what the person can do about it."""
    text = str(error).strip() or type(error).__name__
    lowered = text.lower()
    if any(word in lowered for word in _SQLITE_LOCK_WORDS):
        return (
            f"the ledger {where} is locked by another posdiag process (waited "
            f"{busy_timeout:g} s); try again when it has finished"
        )
    if any(word in lowered for word in _SQLITE_CORRUPT_WORDS):
        return (
            f"the ledger {where} is corrupt or is not a posdiag ledger ({text}); move the file "
            "aside to start a new ledger and keep it for investigation"
        )
    if "unable to open" in lowered:
        return (
            f"cannot open the ledger {where}: its folder does not exist or is not accessible "
            f"({text})"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return f"the ledger {where} is read-only ({text}); check the file's permissions"
    if "disk i/o" in lowered or "database or disk is full" in lowered:
        return f"the ledger {where} could not be written: disk error or disk full ({text})"
    return f"ledger {where}: database error: {text}"


class _WriteTx:
    """A write transaction with the audit head locked; everything it writes commits together."""

    def __init__(self, conn: Connection, head: Row[Any]) -> None:
        self.conn = conn
        self.at = _now()
        self._last_id: int = head.last_id
        self._hash: str = head.hash
        self._rows: int = head.row_count

    def audit(self, event: str, data: Mapping[str, Any]) -> None:
        """Append one chained audit row and move the head, inside this transaction."""
        row_id = self._last_id + 1
        data_json = _redacted_json(data)
        row_hash = audit_row_hash(row_id, self.at, event, data_json, self._hash)
        self.conn.execute(
            sa.insert(audit_log).values(
                id=row_id,
                at=self.at,
                event=event,
                data_json=data_json,
                prev_hash=self._hash,
                hash=row_hash,
            )
        )
        self.conn.execute(
            sa.update(audit_head)
            .where(audit_head.c.id == 1)
            .values(last_id=row_id, hash=row_hash, row_count=self._rows + 1)
        )
        self._last_id, self._hash, self._rows = row_id, row_hash, self._rows + 1


class Ledger:
    """The posdiag ledger on one database; safe to share between threads and processes.

    Every public method that writes runs in its own transaction, committed before it returns,
    and appends exactly one audit row in that same transaction.
    """

    def __init__(self, url: str | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S):
        """Open (and if needed create) the ledger.

        Args:
            url: any SQLAlchemy URL; the SQLite file from :func:`default_url` when None.
            busy_timeout: seconds a write waits for another process's write before failing.

        Raises:
            LedgerError: for a bad URL, a missing driver, or a database that is unreadable,
                corrupt, locked or written by a newer posdiag.
        """
        self._busy_timeout = busy_timeout
        self._closed = False
        text = url if url is not None else default_url()
        try:
            parsed = make_url(text)
        except sa_exc.ArgumentError:
            raise LedgerError(
                "the ledger URL could not be understood; give a SQLAlchemy database URL such as "
                "sqlite:////var/lib/posdiag/ledger.sqlite3"
            ) from None
        self._url = parsed
        self._is_sqlite = parsed.get_backend_name() == "sqlite"
        if self._is_sqlite:
            database = parsed.database or ":memory:"
            self._where = database if database == ":memory:" else repr(database)
        else:
            self._where = parsed.render_as_string(hide_password=True)
        self._engine = self._create_engine(parsed)
        try:
            self._initialise()
        except BaseException:
            self._engine.dispose()
            raise

    # -- lifecycle -------------------------------------------------------------------------------

    def _create_engine(self, parsed: URL) -> Engine:
        """Build the engine, and for SQLite install the durability and locking hooks."""
        backend = parsed.get_backend_name()
        try:
            engine = sa.create_engine(parsed)
        except sa_exc.NoSuchModuleError:
            raise LedgerError(
                f"the ledger URL names an unknown database type {parsed.drivername!r}; "
                "use sqlite:///… or another SQLAlchemy dialect"
            ) from None
        except ImportError as error:
            raise LedgerError(
                f"the database driver for {parsed.drivername!r} is not installed ({error.name})"
            ) from None
        except sa_exc.ArgumentError as error:
            raise LedgerError(f"the ledger URL is not usable for {backend}: {error}") from None
        if self._is_sqlite:
            sa.event.listen(engine, "connect", self._on_sqlite_connect)
            sa.event.listen(engine, "begin", _on_sqlite_begin)
        return engine

    def _on_sqlite_connect(self, dbapi_connection: Any, _record: Any) -> None:
        """Per-connection SQLite settings; these are not stored in the file, so run them all."""
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so even the switch to WAL waits for another process's lock.
            cursor.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        if str(mode).lower() not in ("wal", "memory"):
            # Some network file systems cannot do WAL; synchronous=FULL still keeps commits safe.
            log.warning("ledger.wal_unavailable", journal_mode=mode, ledger=self._where)

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn driver and SQLAlchemy failures into one readable LedgerError."""
        try:
            yield
        except LedgerError:
            raise
        except sa_exc.DBAPIError as error:
            cause = error.orig if error.orig is not None else error
            raise LedgerError(_explain(self._where, cause, self._busy_timeout)) from error
        except sa_exc.SQLAlchemyError as error:
            raise LedgerError(f"ledger {self._where}: {error}") from error
        except sqlite3.Error as error:
            # Raised from inside the connect hook, before SQLAlchemy can wrap it.
            raise LedgerError(_explain(self._where, error, self._busy_timeout)) from error

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot, no write lock taken."""
        self._check_open()
        with self._translate(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[_WriteTx]:
        """A write transaction holding the write lock from its first statement.

        SQLite gets ``BEGIN IMMEDIATE`` (see :func:`_on_sqlite_begin`); other databases lock the
        audit head row. Either way concurrent writers queue up instead of both reading the same
        chain head, and the upserts in here cannot race.
        """
        self._check_open()
        with self._translate(), self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                head = conn.execute(
                    sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
                ).one_or_none()
                if head is None:
                    raise LedgerError(
                        f"the ledger {self._where} has lost its audit head: it was damaged or "
                        "tampered with; keep the file for investigation and start a new ledger"
                    )
                yield _WriteTx(conn, head)

    def _initialise(self) -> None:
        """Create missing tables and the audit head, refusing foreign or newer databases."""
        with self._translate(), self._engine.connect() as conn:
            with conn.begin():
                state = self._schema_state(conn)
            if state == "ready":
                return
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                # Checked again under the write lock: another process may have just created it.
                if self._schema_state(conn) == "ready":
                    return
                metadata.create_all(conn)
                if conn.execute(sa.select(ledger_meta.c.value).limit(1)).first() is None:
                    conn.execute(
                        sa.insert(ledger_meta).values(
                            key="schema_version", value=str(SCHEMA_VERSION)
                        )
                    )
                if conn.execute(sa.select(audit_head.c.id)).first() is None:
                    conn.execute(
                        sa.insert(audit_head).values(
                            id=1, last_id=0, hash=GENESIS_HASH, row_count=0
                        )
                    )

    def _schema_state(self, conn: Connection) -> str:
        """``ready``, or ``incomplete`` (create what is missing); raises for foreign or newer."""
        present = set(sa.inspect(conn).get_table_names())
        if "ledger_meta" not in present:
            if present & _LEDGER_TABLES:
                raise LedgerError(
                    f"the database {self._where} has tables named like the ledger's but is not a "
                    "posdiag ledger; give a different file"
                )
            return "incomplete"
        version = conn.execute(
            sa.select(ledger_meta.c.value).where(ledger_meta.c.key == "schema_version")
        ).scalar_one_or_none()
        if version is not None and (not version.isdigit() or int(version) > SCHEMA_VERSION):
            raise LedgerError(
                f"the ledger {self._where} was written by a newer posdiag (schema {version}, "
                f"this version reads {SCHEMA_VERSION}); upgrade posdiag"
            )
        if version is None or not _LEDGER_TABLES.issubset(present):
            return "incomplete"
        if conn.execute(sa.select(audit_head.c.id)).first() is not None:
            return "ready"
        # No head: fine for a ledger whose creation was cut short (empty log), but recreating the
        # head of a non-empty log would hide tampering, so then _write reports it instead.
        has_rows = conn.execute(sa.select(audit_log.c.id).limit(1)).first() is not None
        return "ready" if has_rows else "incomplete"

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError("the ledger is closed")

    def close(self) -> None:
        """Close every pooled connection; committed data is already safe on disk."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

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
        return self._url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for read-only tooling and tests; write through the methods."""
        return self._engine

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
            raise ValueError("a device needs both a family and a serial number")
        with self._write() as tx:
            row = tx.conn.execute(
                sa.select(devices.c.id, devices.c.vendor, devices.c.model).where(
                    devices.c.family == family, devices.c.serial == serial
                )
            ).one_or_none()
            if row is None:
                device_id = _insert_id(
                    tx.conn,
                    sa.insert(devices).values(
                        family=family,
                        serial=serial,
                        vendor=vendor,
                        model=model,
                        first_seen=tx.at,
                        last_seen=tx.at,
                    ),
                )
            else:
                device_id = int(row.id)
                tx.conn.execute(
                    sa.update(devices)
                    .where(devices.c.id == device_id)
                    .values(
                        last_seen=tx.at,
                        vendor=vendor if vendor is not None else row.vendor,
                        model=model if model is not None else row.model,
                    )
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
            )
        return device_id

    def record_inspection(self, device_id: int, address: str, report: Mapping[str, Any]) -> int:
        """Store an inspection report (redacted again, in case a caller forgot) and its verdict.

        Args:
            device_id: from :meth:`record_device`.
            address: the address the terminal was reached at.
            report: the JSON report dict (``posdiag.report/1``); ``report["verdict"]["status"]``
                is stored in its own column so listings need not parse the report.

        Returns:
            The inspection id.
        """
        try:
            verdict = str(report["verdict"]["status"])
        except (KeyError, TypeError):
            raise ValueError("the report has no verdict.status; pass the JSON report") from None
        report_json = _redacted_json(report)
        with self._write() as tx:
            self._require_device(tx.conn, device_id)
            inspection_id = _insert_id(
                tx.conn,
                sa.insert(inspections).values(
                    device_id=device_id,
                    address=address,
                    at=tx.at,
                    verdict=verdict,
                    report_json=report_json,
                ),
            )
            tx.audit(
                "inspection.recorded",
                {
                    "inspection_id": inspection_id,
                    "device_id": device_id,
                    "address": address,
                    "verdict": verdict,
                    "report_sha256": hashlib.sha256(report_json.encode("utf-8")).hexdigest(),
                },
            )
        return inspection_id

    # -- wipe runs -------------------------------------------------------------------------------

    def start_wipe_run(
        self, device_id: int, address: str, operator: str, options: Mapping[str, Any]
    ) -> int:
        """Open a wipe run for a device; refused while the device has an unfinished run.

        One open run per device keeps "resume the interrupted wipe" unambiguous: to start over,
        finish the old run first (usually with outcome ``aborted``).

        Args:
            device_id: from :meth:`record_device`.
            address: the address the terminal is reached at.
            operator: who is running the wipe (a name for the certificate, not a credential).
            options: the wipe options; redacted before storing, so passwords never land here.

        Returns:
            The run id.
        """
        options_json = _redacted_json(options)
        with self._write() as tx:
            self._require_device(tx.conn, device_id)
            open_run = tx.conn.execute(
                sa.select(wipe_runs.c.id).where(
                    wipe_runs.c.device_id == device_id,
                    wipe_runs.c.status == RunStatus.RUNNING.value,
                )
            ).first()
            if open_run is not None:
                raise LedgerError(
                    f"device {device_id} already has an unfinished wipe run ({open_run.id}); "
                    "resume it, or finish it as aborted before starting a new one"
                )
            run_id = _insert_id(
                tx.conn,
                sa.insert(wipe_runs).values(
                    device_id=device_id,
                    address=address,
                    operator=operator,
                    started_at=tx.at,
                    finished_at=None,
                    status=RunStatus.RUNNING.value,
                    outcome=None,
                    reasons_json="[]",
                    options_json=options_json,
                ),
            )
            tx.audit(
                "wipe_run.started",
                {
                    "run_id": run_id,
                    "device_id": device_id,
                    "address": address,
                    "operator": operator,
                    "options": json.loads(options_json),
                },
            )
        return run_id

    def open_wipe_run(self, family: str, serial: str) -> WipeRun | None:
        """The device's unfinished wipe run (one that was interrupted), with its steps.

        Steps still ``started`` were in progress when the process stopped; the caller decides
        whether to mark them ``interrupted`` (via :meth:`step_finished`) and redo them.

        Returns:
            The newest run of that device whose status is ``running``, or None.
        """
        with self._read() as conn:
            row = conn.execute(
                _run_select()
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
            return _run_from_row(row, self._load_steps(conn, [row.id]).get(row.id, ()))

    def step_started(self, run_id: int, name: str) -> None:
        """Record that a step begins; a restarted step keeps its place (``seq``) in the run.

        Restarting clears the previous ``finished_at`` and ``detail``; the audit log still holds
        what happened the first time.
        """
        if not name:
            raise ValueError("a step needs a name")
        with self._write() as tx:
            self._require_running(tx.conn, run_id)
            seq, existed = self._step_seq(tx.conn, run_id, name)
            values = {
                "status": StepStatus.STARTED.value,
                "started_at": tx.at,
                "finished_at": None,
                "detail": "",
            }
            if existed:
                tx.conn.execute(
                    sa.update(wipe_steps)
                    .where(wipe_steps.c.run_id == run_id, wipe_steps.c.name == name)
                    .values(**values)
                )
            else:
                tx.conn.execute(
                    sa.insert(wipe_steps).values(run_id=run_id, name=name, seq=seq, **values)
                )
            tx.audit(
                "wipe_step.started",
                {"run_id": run_id, "name": name, "seq": seq, "restart": existed},
            )

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
        if final not in _FINAL_STEP_STATUSES:
            raise ValueError(f"step_finished needs a final status, not {final.value!r}")
        if not name:
            raise ValueError("a step needs a name")
        with self._write() as tx:
            self._require_running(tx.conn, run_id)
            seq, existed = self._step_seq(tx.conn, run_id, name)
            values = {"status": final.value, "finished_at": tx.at, "detail": detail}
            if existed:
                tx.conn.execute(
                    sa.update(wipe_steps)
                    .where(wipe_steps.c.run_id == run_id, wipe_steps.c.name == name)
                    .values(**values)
                )
            else:
                tx.conn.execute(
                    sa.insert(wipe_steps).values(
                        run_id=run_id, name=name, seq=seq, started_at=None, **values
                    )
                )
            tx.audit(
                "wipe_step.finished",
                {
                    "run_id": run_id,
                    "name": name,
                    "seq": seq,
                    "status": final.value,
                    "detail": detail,
                },
            )

    def steps(self, run_id: int) -> list[WipeStepRecord]:
        """The run's steps in the order they were first started."""
        with self._read() as conn:
            return list(self._load_steps(conn, [run_id]).get(run_id, ()))

    def finish_wipe_run(self, run_id: int, outcome: Outcome | str, reasons: Sequence[str]) -> None:
        """Close a run with its outcome; a finished run can never be reopened or changed.

        Args:
            run_id: the run.
            outcome: ``erased``, ``erased_with_exceptions``, ``not_erased``, ``aborted`` or
                ``refused``.
            reasons: why, in words a person can act on (stored as given: keep secrets out).
        """
        final = Outcome(outcome)
        if isinstance(reasons, str):
            raise TypeError("reasons must be a list of strings, not one string")
        reason_list = [str(reason) for reason in reasons]
        with self._write() as tx:
            self._require_running(tx.conn, run_id)
            tx.conn.execute(
                sa.update(wipe_runs)
                .where(wipe_runs.c.id == run_id)
                .values(
                    status=RunStatus.FINISHED.value,
                    finished_at=tx.at,
                    outcome=final.value,
                    reasons_json=_dumps(reason_list),
                )
            )
            tx.audit(
                "wipe_run.finished",
                {"run_id": run_id, "outcome": final.value, "reasons": reason_list},
            )

    def record_certificate(
        self,
        run_id: int,
        report_id: uuid.UUID | str,
        path: str | os.PathLike[str],
        sha256: str,
    ) -> None:
        """Record a certificate issued for a finished run.

        Args:
            run_id: the run the certificate attests; it must be finished.
            report_id: the certificate's UUID, unique across the ledger.
            path: where the certificate file was written.
            sha256: hex SHA-256 of the certificate file, so a copy can be checked against it.
        """
        try:
            report_uuid = str(uuid.UUID(str(report_id)))
        except ValueError:
            raise ValueError(f"report_id {report_id!r} is not a UUID") from None
        digest = sha256.lower()
        if not _SHA256_RE.fullmatch(digest):
            raise ValueError("sha256 must be 64 hex digits")
        with self._write() as tx:
            status = self._run_status(tx.conn, run_id)
            if status != RunStatus.FINISHED:
                raise LedgerError(
                    f"wipe run {run_id} is still running; finish it before issuing a certificate"
                )
            taken = tx.conn.execute(
                sa.select(certificates.c.id).where(certificates.c.report_id == report_uuid)
            ).first()
            if taken is not None:
                raise LedgerError(f"a certificate with report id {report_uuid} is already recorded")
            tx.conn.execute(
                sa.insert(certificates).values(
                    run_id=run_id,
                    report_id=report_uuid,
                    path=os.fspath(path),
                    sha256=digest,
                    created_at=tx.at,
                )
            )
            tx.audit(
                "certificate.recorded",
                {
                    "run_id": run_id,
                    "report_id": report_uuid,
                    "path": os.fspath(path),
                    "sha256": digest,
                },
            )

    # -- listings --------------------------------------------------------------------------------

    def runs(self, limit: int = 50) -> list[WipeRun]:
        """The newest wipe runs first, each with its steps."""
        with self._read() as conn:
            rows = conn.execute(
                _run_select().order_by(wipe_runs.c.id.desc()).limit(max(0, limit))
            ).all()
            steps = self._load_steps(conn, [row.id for row in rows])
            return [_run_from_row(row, steps.get(row.id, ())) for row in rows]

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
            )
            for row in rows
        ]

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, event: str, /, **data: Any) -> None:
        """Append a free-form event to the audit log in its own transaction.

        Args:
            event: a dotted event name, e.g. ``wipe.operator_confirmed``.
            **data: details; redacted (secrets dropped, identifiers masked) before storing.
        """
        if not event:
            raise ValueError("an audit event needs a name")
        with self._write() as tx:
            tx.audit(event, data)

    def head(self) -> AuditHead:
        """The newest audit row's id and hash; put it in certificates to anchor the log."""
        with self._read() as conn:
            row = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one_or_none()
        if row is None:
            raise LedgerError(f"the ledger {self._where} has lost its audit head")
        return AuditHead(last_id=row.last_id, hash=row.hash, rows=row.row_count)

    def verify_chain(self) -> ChainReport:
        """Re-hash the whole audit log and compare it with the recorded head.

        Detects a changed row (any column), a deleted row, reordered rows and a cut-off tail.
        Everything is read in one snapshot, so writers running meanwhile cause no false alarm.

        Returns:
            The first problem found, or ``ok`` with the number of rows checked.
        """
        with self._read() as conn:
            result = conn.execute(sa.select(audit_log).order_by(audit_log.c.id))
            rows = 0
            last_id, last_hash = 0, GENESIS_HASH
            for row in result:
                rows += 1
                problem = _check_row(row, last_id, last_hash)
                if problem is not None:
                    return ChainReport(False, rows, row.id, problem)
                last_id, last_hash = row.id, row.hash
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one_or_none()
        return _check_head(head, rows, last_id, last_hash)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _require_device(conn: Connection, device_id: int) -> None:
        if conn.execute(sa.select(devices.c.id).where(devices.c.id == device_id)).first() is None:
            raise LedgerError(f"no device {device_id} in the ledger; record the device first")

    @staticmethod
    def _run_status(conn: Connection, run_id: int) -> RunStatus:
        status = conn.execute(
            sa.select(wipe_runs.c.status).where(wipe_runs.c.id == run_id)
        ).scalar_one_or_none()
        if status is None:
            raise LedgerError(f"no wipe run {run_id} in the ledger")
        return RunStatus(status)

    def _require_running(self, conn: Connection, run_id: int) -> None:
        if self._run_status(conn, run_id) is not RunStatus.RUNNING:
            raise LedgerError(f"wipe run {run_id} is already finished and cannot be changed")

    @staticmethod
    def _step_seq(conn: Connection, run_id: int, name: str) -> tuple[int, bool]:
        """The step's existing seq, or the next free one; and whether the step exists."""
        seq = conn.execute(
            sa.select(wipe_steps.c.seq).where(
                wipe_steps.c.run_id == run_id, wipe_steps.c.name == name
            )
        ).scalar_one_or_none()
        if seq is not None:
            return int(seq), True
        highest = conn.execute(
            sa.select(sa.func.max(wipe_steps.c.seq)).where(wipe_steps.c.run_id == run_id)
        ).scalar_one()
        return (int(highest) + 1 if highest is not None else 1), False

    @staticmethod
    def _load_steps(
        conn: Connection, run_ids: Sequence[int]
    ) -> dict[int, tuple[WipeStepRecord, ...]]:
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
                    started_at=_parse_ts(row.started_at),
                    finished_at=_parse_ts(row.finished_at),
                    detail=row.detail,
                )
            )
        return {run_id: tuple(items) for run_id, items in found.items()}


def _insert_id(conn: Connection, statement: sa.Insert) -> int:
    """Run an INSERT and return the new row's primary key."""
    key = conn.execute(statement).inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover - every ledger table has an integer key
        raise LedgerError("the database did not report the new row's id")
    return int(key[0])


def _on_sqlite_begin(conn: Connection) -> None:
    """Start SQLite transactions ourselves: IMMEDIATE for writes, so the lock is taken up front.

    A deferred transaction that reads the chain head and then writes can be overtaken by another
    process between the read and the write; taking the write lock at BEGIN rules that out.
    """
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _run_select() -> sa.Select[Any]:
    """Wipe runs joined with their device's family and serial."""
    return sa.select(wipe_runs, devices.c.family, devices.c.serial).join(
        devices, devices.c.id == wipe_runs.c.device_id
    )


def _run_from_row(row: Row[Any], steps: tuple[WipeStepRecord, ...]) -> WipeRun:
    return WipeRun(
        id=row.id,
        device_id=row.device_id,
        family=row.family,
        serial=row.serial,
        address=row.address,
        operator=row.operator,
        started_at=datetime.fromisoformat(row.started_at),
        finished_at=_parse_ts(row.finished_at),
        status=RunStatus(row.status),
        outcome=Outcome(row.outcome) if row.outcome is not None else None,
        reasons=tuple(json.loads(row.reasons_json)),
        options=json.loads(row.options_json),
        steps=steps,
    )


def _check_row(row: Row[Any], prev_id: int, prev_hash: str) -> str | None:
    """Why this audit row does not follow the previous one, or None if it does."""
    if row.id != prev_id + 1:
        missing = f"{prev_id + 1}" if row.id == prev_id + 2 else f"{prev_id + 1}..{row.id - 1}"
        return f"audit row(s) {missing} are missing: deleted from the log"
    if row.prev_hash != prev_hash:
        return (
            f"audit row {row.id} does not follow row {prev_id} (prev_hash mismatch): rows were "
            "deleted, reordered or changed"
        )
    expected = audit_row_hash(row.id, row.at, row.event, row.data_json, row.prev_hash)
    if row.hash != expected:
        return f"audit row {row.id} was changed after it was written (hash mismatch)"
    return None


def _check_head(head: Row[Any] | None, rows: int, last_id: int, last_hash: str) -> ChainReport:
    """Compare the end of the chain with the recorded head, which catches a cut-off tail."""
    if head is None:
        return ChainReport(False, rows, last_id + 1, "the audit head is missing")
    if head.last_id > last_id:
        return ChainReport(
            False,
            rows,
            last_id + 1,
            f"the log ends at row {last_id} but the head records row {head.last_id}: the last "
            "rows were deleted (truncated)",
        )
    if head.last_id < last_id:
        return ChainReport(
            False,
            rows,
            head.last_id + 1,
            f"rows after {head.last_id} were added outside the ledger (unknown to the head)",
        )
    if head.hash != last_hash or head.row_count != rows:
        return ChainReport(
            False,
            rows,
            last_id or None,
            f"the audit head does not match row {last_id}: the head or the last row was changed",
        )
    return ChainReport(True, rows, None, "")
