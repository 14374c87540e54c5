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

PostgreSQL is how many stations share one ledger (``postgresql://user@host/db``, driven by
psycopg 3: ``pip install 'posdiag[postgres]'``). What differs from SQLite, and why:

* Writes run at READ COMMITTED and lock the head row first, so every later statement of the
  transaction sees what the previous writer committed: the chain stays one chain, and the
  look-up-then-insert of devices and runs cannot race. A serialisation failure or deadlock
  (which this order should never cause, but a database may still report) is retried a few
  times; it is never shown to the operator.
* Reads run at REPEATABLE READ, so :meth:`Ledger.verify_chain` sees the log and its head in one
  snapshot while other stations keep writing.
* Creating or upgrading the tables happens under a transaction-scoped advisory lock, so stations
  started at once on an empty database do not trip over each other's ``CREATE TABLE``.
* A session-level advisory lock marks each terminal (family + serial) a session is wiping; it
  dies with the session's connection. :meth:`Ledger.open_wipe_run` therefore hands back only
  runs that were really interrupted, never one another station is driving right now, and two
  stations meeting the same serial wipe one after the other.
* Text columns accept what SQLite accepts: no length limit beyond SQLite's, and NUL characters
  (which PostgreSQL text cannot hold) are stored as U+FFFD.
* ``lock_timeout`` is the ``busy_timeout``: a write waits that long for another one, then says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import random
import re
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

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

SCHEMA_VERSION: Final = 2
"""Version of the table layout; a ledger written by a newer posdiag is refused, not misread.

1: the first layout. 2: ``inspections.operator`` (who ran the check); older ledgers gain the
column when opened.
"""

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

_POSTGRES_DRIVER: Final = "postgresql+psycopg"
_PG_SCHEMA_LOCK: Final = 0x706F73646961_6700
"""``pg_advisory_xact_lock`` key held while the tables are created or upgraded ("posdiag")."""
_PG_TERMINAL_LOCK_CLASS: Final = 0x706F7364
"""First key of the two-key ``pg_advisory_lock(class, terminal)`` held while a terminal is wiped."""
_PG_RETRY_STATES: Final = frozenset({"40001", "40P01"})
"""serialization_failure and deadlock_detected: the transaction was rolled back, so run it again."""
_WRITE_ATTEMPTS: Final = 5
_SECRET_QUERY_KEYS: Final = frozenset({"password", "passwd", "pwd", "sslpassword"})

_T = TypeVar("_T")


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


class _Text(sa.types.TypeDecorator[str]):
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
    sa.Column("family", _Text(64), nullable=False),
    sa.Column("serial", _Text(128), nullable=False),
    sa.Column("vendor", _Text()),
    sa.Column("model", _Text()),
    sa.Column("first_seen", sa.String(_TS_LEN), nullable=False),
    sa.Column("last_seen", sa.String(_TS_LEN), nullable=False),
    sa.UniqueConstraint("family", "serial", name="uq_devices_family_serial"),
)

inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False, index=True),
    sa.Column("address", _Text(), nullable=False),
    sa.Column("at", sa.String(_TS_LEN), nullable=False),
    sa.Column("verdict", _Text(32), nullable=False),
    sa.Column("report_json", sa.Text, nullable=False),
    # Schema 2: who ran the check; NULL for inspections recorded before (or without) one.
    sa.Column("operator", _Text()),
)

wipe_runs = sa.Table(
    "wipe_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
    sa.Column("address", _Text(), nullable=False),
    sa.Column("operator", _Text(), nullable=False),
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
    sa.Column("name", _Text(128), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("started_at", sa.String(_TS_LEN)),
    sa.Column("finished_at", sa.String(_TS_LEN)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", _Text(), nullable=False),
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
    sa.Column("path", _Text(), nullable=False),
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
    sa.Column("event", _Text(128), nullable=False),
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


def _sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE of a PostgreSQL driver error (psycopg 3 or psycopg2), or None."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


def _explain(where: str, error: BaseException, busy_timeout: float) -> str:
    """One readable sentence for a database failure, with what the person can do about it."""
    text = str(error).strip() or type(error).__name__
    lowered = text.lower()
    if type(error).__module__.startswith("psycopg"):  # psycopg 3 and psycopg2
        return _explain_postgres(where, error, text, busy_timeout)
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


def _explain_postgres(where: str, error: BaseException, text: str, busy_timeout: float) -> str:
    """:func:`_explain` for PostgreSQL, by SQLSTATE where the server gave one.

    Only the first line of the server's message is kept: the DETAIL lines that follow can quote
    row values.
    """
    state = _sqlstate(error)
    first_line = text.splitlines()[0]
    client_side = state is None and "OperationalError" in {k.__name__ for k in type(error).__mro__}
    if state == "55P03":  # lock_not_available: lock_timeout ran out
        return (
            f"the ledger {where} is busy: another posdiag station held its write lock for more "
            f"than {busy_timeout:g} s; try again when it has finished"
        )
    if state in ("28P01", "28000"):
        return f"the ledger database {where} refused the login ({first_line}); check user/password"
    if state == "3D000":
        return f"the ledger database {where} does not exist ({first_line}); create it first"
    if state == "42501":
        return (
            f"the ledger database {where} does not allow this user to do that ({first_line}); "
            "it needs to create tables and to read and write them"
        )
    if client_side or (state is not None and state.startswith(("08", "57P"))):
        return f"cannot reach the ledger database {where}: {first_line}"
    return f"ledger {where}: database error: {first_line}"


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


def _close_lock_files(fds: dict[int, int]) -> None:
    """Close (and so unlock) every terminal lock file in ``fds``, emptying it."""
    while fds:
        _, fd = fds.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)


def _device_lock_key(family: str, serial: str) -> int:
    """The second key of ``pg_advisory_lock(class, key)`` for one terminal: a signed 32-bit hash.

    A collision only makes two different terminals wait for each other, never mixes their runs.
    """
    digest = hashlib.sha256(f"{family}\x00{serial}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _normalise_url(parsed: URL) -> URL:
    """``postgresql://`` (and Heroku-style ``postgres://``) mean psycopg 3, the driver we ship.

    SQLAlchemy's default for a bare ``postgresql://`` is psycopg2, which posdiag neither
    depends on nor tests; an explicit ``postgresql+driver://`` is left as the user wrote it.
    """
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername=_POSTGRES_DRIVER)
    return parsed


def _display_url(parsed: URL) -> str:
    """The URL for messages and logs: the password, also one given as a query option, masked."""
    hidden = {key: "***" for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS}
    shown = parsed.update_query_dict(hidden) if hidden else parsed
    return shown.render_as_string(hide_password=True)


class Ledger:
    """The posdiag ledger on one database; safe to share between threads and processes.

    Every public method that writes runs in its own transaction, committed before it returns,
    and appends exactly one audit row in that same transaction.

    On PostgreSQL one Ledger is one session for wipe runs: the terminals it is wiping are marked
    with advisory locks that end with :meth:`close` (or with the process), so give each worker
    its own Ledger, as the station does.
    """

    def __init__(self, url: str | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S):
        """Open (and if needed create or upgrade) the ledger.

        Args:
            url: any SQLAlchemy URL; the SQLite file from :func:`default_url` when None.
                ``postgresql://user@host/db`` uses psycopg 3.
            busy_timeout: seconds a write waits for another process's write before failing
                (and, on PostgreSQL, a wipe for another station's wipe of the same terminal).

        Raises:
            LedgerError: for a bad URL, a missing driver, or a database that is unreadable,
                corrupt, locked or written by a newer posdiag.
        """
        self._busy_timeout = busy_timeout
        self._closed = False
        text = url if url is not None else default_url()
        try:
            parsed = _normalise_url(make_url(text))
        except sa_exc.ArgumentError:
            raise LedgerError(
                "the ledger URL could not be understood; give a SQLAlchemy database URL such as "
                "sqlite:////var/lib/posdiag/ledger.sqlite3 or postgresql://user@host/posdiag"
            ) from None
        self._url = parsed
        self._is_sqlite = parsed.get_backend_name() == "sqlite"
        self._is_postgres = parsed.get_backend_name() == "postgresql"
        secrets = [parsed.password] + [
            value for key, value in parsed.query.items() if key.lower() in _SECRET_QUERY_KEYS
        ]
        self._secrets = [str(secret) for secret in secrets if isinstance(secret, str) and secret]
        self._lock_dir: Path | None = None
        if self._is_sqlite:
            database = parsed.database or ":memory:"
            self._where = database if database == ":memory:" else repr(database)
            if database != ":memory:" and not database.startswith("file:"):
                # terminal locks of a SQLite ledger: lock files beside it (see _claim_device)
                self._lock_dir = Path(database).with_name(f".{Path(database).name}.locks")
        else:
            self._where = _display_url(parsed)
        # The connection (PostgreSQL) or lock files (SQLite) that hold this session's terminal
        # locks (see _claim_device), the locks it holds, and which run each lock belongs to.
        self._claims_lock = threading.Lock()
        self._claims_conn: Connection | None = None
        self._lock_fds: dict[int, int] = {}
        # a ledger dropped without close() (a worker that died) must not keep terminals locked
        weakref.finalize(self, _close_lock_files, self._lock_fds)
        self._claimed: set[int] = set()
        self._run_claims: dict[int, int] = {}
        self._engine = self._create_engine(parsed)
        try:
            self._initialise()
        except BaseException:
            self._engine.dispose()
            raise

    # -- lifecycle -------------------------------------------------------------------------------

    def _mask(self, text: str) -> str:
        """``text`` with the URL's password replaced, for anything shown or logged.

        Messages name the URL through :func:`_display_url` already; this catches a driver that
        quotes its connection string back. Whole words only, so a short password does not
        shred the rest of the sentence.
        """
        for secret in self._secrets:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
        return text

    def _create_engine(self, parsed: URL) -> Engine:
        """Build the engine, and install the per-backend connection hooks."""
        backend = parsed.get_backend_name()
        options: dict[str, Any] = {}
        if self._is_postgres:
            # A station runs for hours: a pooled connection the server dropped meanwhile is
            # replaced rather than failing a wipe's journal write.
            options["pool_pre_ping"] = True
            if parsed.get_driver_name() == "psycopg" and "connect_timeout" not in parsed.query:
                options["connect_args"] = {"connect_timeout": max(1, round(self._busy_timeout))}
        try:
            engine = sa.create_engine(parsed, **options)
        except sa_exc.NoSuchModuleError:
            raise LedgerError(
                f"the ledger URL names an unknown database type {parsed.drivername!r}; "
                "use sqlite:///… or postgresql://…"
            ) from None
        except ImportError as error:
            if parsed.drivername == _POSTGRES_DRIVER:
                raise LedgerError(
                    "a PostgreSQL ledger needs the psycopg driver, which is not installed: "
                    "pip install 'posdiag[postgres]'"
                ) from None
            raise LedgerError(
                f"the database driver for {parsed.drivername!r} is not installed ({error.name})"
            ) from None
        except sa_exc.ArgumentError as error:
            raise LedgerError(
                self._mask(f"the ledger URL is not usable for {backend}: {error}")
            ) from None
        if self._is_sqlite:
            sa.event.listen(engine, "connect", self._on_sqlite_connect)
            sa.event.listen(engine, "begin", _on_sqlite_begin)
        elif self._is_postgres:
            sa.event.listen(engine, "connect", self._on_postgres_connect)
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

    def _on_postgres_connect(self, dbapi_connection: Any, _record: Any) -> None:
        """``lock_timeout`` plays SQLite's ``busy_timeout``: how long a write waits for another.

        Without it a write would wait for the head lock for ever behind a stuck station.
        """
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET lock_timeout = {max(1, int(self._busy_timeout * 1000))}")
        finally:
            cursor.close()
        dbapi_connection.commit()

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn driver and SQLAlchemy failures into one readable LedgerError (password masked)."""
        try:
            yield
        except LedgerError:
            raise
        except sa_exc.DBAPIError as error:
            cause = error.orig if error.orig is not None else error
            message = _explain(self._where, cause, self._busy_timeout)
            raise LedgerError(self._mask(message)) from error
        except sa_exc.SQLAlchemyError as error:
            raise LedgerError(self._mask(f"ledger {self._where}: {error}")) from error
        except sqlite3.Error as error:
            # Raised from inside the connect hook, before SQLAlchemy can wrap it.
            raise LedgerError(_explain(self._where, error, self._busy_timeout)) from error

    def _connect(self, *, write: bool) -> Connection:
        """A pooled connection set up for reading or for writing.

        PostgreSQL: writes run at READ COMMITTED (after the head lock each statement sees the
        previous writer's rows; a stricter level would fail instead of waiting), reads at
        REPEATABLE READ (one snapshot for the log and its head). Set per connection because the
        server's default may be anything.
        """
        conn = self._engine.connect()
        if write:
            conn.execution_options(**{_WRITE_OPTION: True})
        if self._is_postgres:
            conn.execution_options(isolation_level="READ COMMITTED" if write else "REPEATABLE READ")
        return conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot, no write lock taken."""
        self._check_open()
        with self._translate(), self._connect(write=False) as conn, conn.begin():
            yield conn

    def _write(self, work: Callable[[_WriteTx], _T]) -> _T:
        """Run ``work`` in a write transaction holding the write lock from its first statement.

        SQLite gets ``BEGIN IMMEDIATE`` (see :func:`_on_sqlite_begin`); other databases lock the
        audit head row. Either way concurrent writers queue up instead of both reading the same
        chain head, and the upserts in ``work`` cannot race. A transaction the database rolled
        back as a serialisation failure or deadlock runs again, so ``work`` must change nothing
        but the database (through ``tx``). Other failures are not retried: after a lost
        connection nobody knows whether the commit landed, and appending twice is worse.
        """
        self._check_open()
        with self._translate():
            for attempt in range(1, _WRITE_ATTEMPTS + 1):
                try:
                    return self._write_once(work)
                except sa_exc.DBAPIError as error:
                    if attempt == _WRITE_ATTEMPTS or _sqlstate(error.orig) not in _PG_RETRY_STATES:
                        raise
                    pause = random.uniform(0.01, 0.05) * 2**attempt
                    log.info(
                        "ledger.write_retried",
                        attempt=attempt,
                        sqlstate=_sqlstate(error.orig),
                        pause_s=round(pause, 3),
                    )
                    time.sleep(pause)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _write_once(self, work: Callable[[_WriteTx], _T]) -> _T:
        with self._connect(write=True) as conn, conn.begin():
            head = conn.execute(
                sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
            ).one_or_none()
            if head is None:
                raise LedgerError(
                    f"the ledger {self._where} has lost its audit head: it was damaged or "
                    "tampered with; keep the file for investigation and start a new ledger"
                )
            return work(_WriteTx(conn, head))

    def _initialise(self) -> None:
        """Create missing tables and the head, upgrade an old layout, refuse foreign or newer ones.

        On PostgreSQL the work happens under a transaction-scoped advisory lock: two stations
        started at once on an empty database would otherwise both run ``CREATE TABLE`` and one
        would fail on the catalogue's unique index.
        """
        with self._translate(), self._connect(write=False) as conn:
            # Opening a ready ledger only reads, so it works while another process writes.
            with conn.begin():
                state = self._schema_state(conn)
            if state == "ready":
                return
            conn.execution_options(**{_WRITE_OPTION: True})
            if self._is_postgres:
                conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                if self._is_postgres:
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
                # Checked again under the write lock: another process may have just done it.
                state = self._schema_state(conn)
                if state == "ready":
                    return
                head_row = None
                if state == "outdated":
                    # Head first, as every writer does: taking the table lock of ALTER TABLE
                    # first could deadlock with a station that holds the head and inserts.
                    head_row = conn.execute(
                        sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
                    ).one_or_none()
                metadata.create_all(conn)
                if state == "outdated":
                    self._upgrade(conn, head_row)
                if conn.execute(sa.select(ledger_meta.c.value).limit(1)).first() is None:
                    conn.execute(
                        sa.insert(ledger_meta).values(
                            key="schema_version", value=str(SCHEMA_VERSION)
                        )
                    )
                head = conn.execute(sa.select(audit_head.c.id)).first()
                empty = conn.execute(sa.select(audit_log.c.id).limit(1)).first() is None
                if head is None and empty:
                    conn.execute(
                        sa.insert(audit_head).values(
                            id=1, last_id=0, hash=GENESIS_HASH, row_count=0
                        )
                    )

    def _upgrade(self, conn: Connection, head: Row[Any] | None) -> None:
        """Bring an older ledger to :data:`SCHEMA_VERSION`, in the caller's transaction.

        Only additive changes (new nullable columns), so rows already written and the audit
        chain over them stay exactly as they were. A station still on the previous posdiag then
        refuses the ledger as newer: on a shared ledger, upgrade every station together. The
        upgrade is itself an audit event, chained after ``head`` (already locked by the caller;
        None for a ledger that lost its head).
        """
        found = conn.execute(
            sa.select(ledger_meta.c.value).where(ledger_meta.c.key == "schema_version")
        ).scalar_one()
        columns = {column["name"] for column in sa.inspect(conn).get_columns("inspections")}
        if "operator" not in columns:  # schema 2
            conn.execute(sa.text("ALTER TABLE inspections ADD COLUMN operator TEXT"))
        conn.execute(
            sa.update(ledger_meta)
            .where(ledger_meta.c.key == "schema_version")
            .values(value=str(SCHEMA_VERSION))
        )
        if head is not None:
            _WriteTx(conn, head).audit(
                "ledger.upgraded", {"from_schema": int(found), "to_schema": SCHEMA_VERSION}
            )
        log.info("ledger.upgraded", ledger=self._where, from_schema=found, to=SCHEMA_VERSION)

    def _schema_state(self, conn: Connection) -> str:
        """``ready``, ``incomplete`` (create what is missing) or ``outdated`` (upgrade).

        Raises:
            LedgerError: for a foreign database or one written by a newer posdiag.
        """
        present = set(sa.inspect(conn).get_table_names())
        if "ledger_meta" not in present:
            if present & _LEDGER_TABLES:
                raise LedgerError(
                    f"the database {self._where} has tables named like the ledger's but is not a "
                    "posdiag ledger; give a different database"
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
        if version is not None and int(version) < SCHEMA_VERSION:
            return "outdated"
        if version is None or not _LEDGER_TABLES.issubset(present):
            return "incomplete"
        if conn.execute(sa.select(audit_head.c.id)).first() is not None:
            return "ready"
        # No head: fine for a ledger whose creation was cut short (empty log), but recreating the
        # head of a non-empty log would hide tampering, so then _write reports it instead.
        has_rows = conn.execute(sa.select(audit_log.c.id).limit(1)).first() is not None
        return "ready" if has_rows else "incomplete"

    # -- terminals being wiped ---------------------------------------------------------------------

    @property
    def _claims_enabled(self) -> bool:
        return self._is_postgres or self._lock_dir is not None

    def _try_lock_file(self, key: int) -> bool:
        """Take this terminal's lock file (SQLite); False while another session holds it.

        ``flock`` locks belong to the open file, so they are released when it is closed, by
        :meth:`_release_device` or by the kernel when the process dies (even by SIGKILL).
        """
        import fcntl

        assert self._lock_dir is not None
        if not self._lock_dir.is_dir():
            self._lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._lock_dir / f"{key & 0xFFFFFFFF:08x}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fds[key] = fd
        return True

    def _claims(self) -> Connection:
        """This session's lock connection (autocommit), opened on first use; hold _claims_lock."""
        if self._claims_conn is None:
            conn = self._engine.connect()
            conn.execution_options(isolation_level="AUTOCOMMIT")
            self._claims_conn = conn
        return self._claims_conn

    def _claim_device(self, family: str, serial: str) -> int | None:
        """Mark this terminal as being wiped by this session, waiting for another session's mark.

        Two stations sharing a ledger can meet the same family+serial at once (two terminals
        that report one serial, or a run still being driven elsewhere). Without a mark, one
        would "resume" the other's live run and both would journal into it. The mark is a
        session-level advisory lock, so a station that dies releases it with its connection and
        its run then resumes anywhere. Polled with try-lock, so no pooled connection sits
        blocked and the wait is bounded by ``busy_timeout``.

        A SQLite ledger (one machine) uses a lock file per terminal beside the database
        instead, so two ``posdiag wipe`` processes reaching one terminal (the same TCP address
        from two shells) are kept apart in the same way.

        Returns:
            The lock key (held until the run finishes or the ledger closes); None for an
            in-memory ledger.

        Raises:
            LedgerError: another session still wipes this terminal after ``busy_timeout``.
        """
        if not self._claims_enabled:
            return None
        key = _device_lock_key(family, serial)
        deadline = time.monotonic() + self._busy_timeout
        with self._translate():
            while True:
                with self._claims_lock:
                    if key in self._claimed:
                        return key
                    if self._is_postgres:
                        try_lock = sa.select(
                            sa.func.pg_try_advisory_lock(_PG_TERMINAL_LOCK_CLASS, key)
                        )
                        got = self._claims().execute(try_lock).scalar_one()
                    else:
                        got = self._try_lock_file(key)
                    if got:
                        self._claimed.add(key)
                        return key
                if time.monotonic() >= deadline:
                    raise LedgerError(
                        f"terminal {family} {serial} is being wiped by another posdiag session "
                        f"on the ledger {self._where} right now (waited {self._busy_timeout:g} s);"
                        " one terminal cannot be wiped from two places at once: if two terminals "
                        "report this serial, wipe them one after the other"
                    )
                time.sleep(0.05)

    def _release_device(self, key: int) -> None:
        """Drop one terminal's mark; best effort, as closing the connection drops it anyway."""
        with self._claims_lock:
            fd = self._lock_fds.pop(key, None)
            if fd is not None:
                os.close(fd)  # releases the flock
            if key not in self._claimed:
                return
            self._claimed.discard(key)
            for run_id in [run for run, held in self._run_claims.items() if held == key]:
                del self._run_claims[run_id]
            conn = self._claims_conn
            if fd is not None or conn is None:
                return
            try:
                conn.execute(
                    sa.select(sa.func.pg_advisory_unlock(_PG_TERMINAL_LOCK_CLASS, key))
                )
            except sa_exc.SQLAlchemyError as error:
                log.warning("ledger.unlock_failed", error=self._mask(str(error)))
                self._drop_claims()

    def _drop_claims(self) -> None:
        """Close the lock connection, which releases every mark it held; hold _claims_lock."""
        conn, self._claims_conn = self._claims_conn, None
        self._claimed.clear()
        self._run_claims.clear()
        _close_lock_files(self._lock_fds)
        if conn is not None:
            try:
                conn.close()
            except sa_exc.SQLAlchemyError as error:
                log.warning("ledger.unlock_failed", error=self._mask(str(error)))

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError("the ledger is closed")

    def close(self) -> None:
        """Close every pooled connection; committed data is already safe on disk."""
        if not self._closed:
            self._closed = True
            with self._claims_lock:
                self._drop_claims()
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
        return _display_url(self._url)

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

        def work(tx: _WriteTx) -> int:
            # Under the head lock the look-up and the insert cannot race another station's.
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

        return self._write(work)

    def record_inspection(
        self,
        device_id: int,
        address: str,
        report: Mapping[str, Any],
        operator: str | None = None,
    ) -> int:
        """Store an inspection report (redacted again, in case a caller forgot) and its verdict.

        Args:
            device_id: from :meth:`record_device`.
            address: the address the terminal was reached at.
            report: the JSON report dict (``posdiag.report/1``); ``report["verdict"]["status"]``
                is stored in its own column so listings need not parse the report.
            operator: who ran the check (a name for the manifest, not a credential); None when
                nobody was named. An empty name counts as none.

        Returns:
            The inspection id.
        """
        try:
            verdict = str(report["verdict"]["status"])
        except (KeyError, TypeError):
            raise ValueError("the report has no verdict.status; pass the JSON report") from None
        report_json = _redacted_json(report)
        who = operator or None

        def work(tx: _WriteTx) -> int:
            self._require_device(tx.conn, device_id)
            inspection_id = _insert_id(
                tx.conn,
                sa.insert(inspections).values(
                    device_id=device_id,
                    address=address,
                    at=tx.at,
                    verdict=verdict,
                    report_json=report_json,
                    operator=who,
                ),
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
                },
            )
            return inspection_id

        return self._write(work)

    # -- wipe runs -------------------------------------------------------------------------------

    def start_wipe_run(
        self, device_id: int, address: str, operator: str, options: Mapping[str, Any]
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

        Returns:
            The run id.
        """
        options_json = _redacted_json(options)
        claim: int | None = None
        fresh_claim = False
        if self._claims_enabled:
            with self._read() as conn:
                device = conn.execute(
                    sa.select(devices.c.family, devices.c.serial).where(devices.c.id == device_id)
                ).one_or_none()
            if device is not None:
                fresh_claim = _device_lock_key(device.family, device.serial) not in self._claimed
                claim = self._claim_device(device.family, device.serial)

        def work(tx: _WriteTx) -> int:
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

        try:
            run_id = self._write(work)
        except BaseException:
            if claim is not None and fresh_claim:
                self._release_device(claim)
            raise
        if claim is not None:
            with self._claims_lock:
                self._run_claims[run_id] = claim
        return run_id

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
        claim = self._claim_device(family, serial)
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
            run = _run_from_row(row, self._load_steps(conn, [row.id]).get(row.id, ()))
        if claim is not None:
            with self._claims_lock:
                self._run_claims[run.id] = claim
        return run

    def step_started(self, run_id: int, name: str) -> None:
        """Record that a step begins; a restarted step keeps its place (``seq``) in the run.

        Restarting clears the previous ``finished_at`` and ``detail``; the audit log still holds
        what happened the first time.
        """
        if not name:
            raise ValueError("a step needs a name")

        def work(tx: _WriteTx) -> None:
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
        if final not in _FINAL_STEP_STATUSES:
            raise ValueError(f"step_finished needs a final status, not {final.value!r}")
        if not name:
            raise ValueError("a step needs a name")

        def work(tx: _WriteTx) -> None:
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

        self._write(work)

    def steps(self, run_id: int) -> list[WipeStepRecord]:
        """The run's steps in the order they were first started."""
        with self._read() as conn:
            return list(self._load_steps(conn, [run_id]).get(run_id, ()))

    def finish_wipe_run(self, run_id: int, outcome: Outcome | str, reasons: Sequence[str]) -> None:
        """Close a run with its outcome; a finished run can never be reopened or changed.

        On PostgreSQL this also ends this session's mark on the terminal (another station may
        wipe a terminal with the same serial from now on).

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

        def work(tx: _WriteTx) -> None:
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

        self._write(work)
        claim = self._run_claims.get(run_id)
        if claim is not None:
            self._release_device(claim)

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

        def work(tx: _WriteTx) -> None:
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

        self._write(work)

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
                operator=row.operator,
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
            raise ValueError("an audit event needs a name, without NUL characters")
        self._write(lambda tx: tx.audit(event, data))

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
