"""Where the ledger lives and how posdiag talks to its database (SQLite or PostgreSQL).

Every write is committed before the method returns. The writes of all threads of a process go
through one writer per database (:mod:`.group`), which commits them in groups: one transaction,
one ``fsync``, for everything queued meanwhile. SQLite runs in WAL mode with ``synchronous=FULL``,
so killing the process (or pulling the power) at any point keeps every committed row and never
leaves a half-written one; every write transaction starts with ``BEGIN IMMEDIATE``, and the
writers of several processes queue for it fairly (:class:`.group.FairGate`) instead of racing
SQLite's polling busy handler. One engine per process and URL serves every Ledger
(:mod:`.shared`), so statements are compiled once.

PostgreSQL is how many stations share one ledger (``postgresql://user@host/db``, driven by
psycopg 3: ``pip install 'posdiag[postgres]'``). What differs from SQLite, and why:

* Writes run at READ COMMITTED and lock the head row first, so every later statement of the
  transaction sees what the previous writer committed: the chain stays one chain, and the
  look-up-then-insert of devices and runs cannot race. A serialisation failure or deadlock
  (which this order should never cause, but a database may still report) is retried a few
  times; it is never shown to the operator.
* Reads run at REPEATABLE READ, so verification sees the log, its head and the tables in one
  snapshot while other stations keep writing.
* Text columns accept what SQLite accepts (see :class:`.schema.Text`).
* ``lock_timeout`` is the ``busy_timeout``: a write waits that long for another one, then says so.

The ledger names terminals, operators and wipe outcomes, so a SQLite ledger is private whatever
the umask: the file (and its WAL and shared-memory files) 0600, a folder posdiag creates 0700.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.i18n import _

from ..logs import get_logger
from .chain import WriteTx
from .group import FairGate, GroupWriter, gate_folder
from .schema import audit_head

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "Database",
    "LedgerError",
    "default_path",
    "default_url",
    "sqlite_url",
]

log = get_logger("posdiag.agent.ledger")

DEFAULT_BUSY_TIMEOUT_S: Final = 10.0
"""How long a write waits for another process's write to finish before giving up."""

WRITE_OPTION: Final = "posdiag_ledger_write"
_SQLITE_LOCK_WORDS: Final = ("locked", "busy")
_SQLITE_CORRUPT_WORDS: Final = ("not a database", "malformed", "corrupt")
_POSTGRES_DRIVER: Final = "postgresql+psycopg"
_PG_RETRY_STATES: Final = frozenset({"40001", "40P01"})
"""serialization_failure and deadlock_detected: the transaction was rolled back, so run it again."""
_WRITE_ATTEMPTS: Final = 10
"""Tries of a write PostgreSQL rolled back as a conflict. A group commit carries many callers'
records, so one conflicting record sends the whole group round again: more tries than a lone
write needed, with the pause capped (:data:`_MAX_RETRY_PAUSE_S`)."""
_MAX_RETRY_PAUSE_S: Final = 1.0
_SECRET_QUERY_KEYS: Final = frozenset({"password", "passwd", "pwd", "sslpassword"})
_PRIVATE_FILE: Final = 0o600
_PRIVATE_DIR: Final = 0o700
_POOL_KEPT: Final = 8
"""Idle connections an engine keeps; more are opened (and closed again) when threads need them."""

_T = TypeVar("_T")


class LedgerError(PosdiagError):
    """The ledger cannot be opened, read or written; the message says why and what to do."""


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` and its missing parents as 0700 whatever the umask.

    Folders that already exist are left as the user made them.
    """
    missing: list[Path] = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=_PRIVATE_DIR)
        path.chmod(_PRIVATE_DIR)  # mkdir's mode is filtered by the umask; the intent is exact


def make_private_file(path: Path) -> None:
    """Create the ledger file (if missing) 0600 and tighten it and SQLite's side files to 0600.

    SQLite creates its ``-wal`` and ``-shm`` files with the database file's permissions, so a
    private database keeps them private too; they are tightened here as well in case a looser
    file was left by an older posdiag.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE_FILE)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, _PRIVATE_FILE)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):
            if side.exists() and side.stat().st_uid == os.geteuid():
                side.chmod(_PRIVATE_FILE)


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
        make_private_dir(folder)
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


class Database:
    """One ledger database: its engine, its connection set-up, and its read and write transactions.

    Every failure of the driver or of SQLAlchemy leaves here as one readable :class:`LedgerError`
    with any password masked.
    """

    def __init__(self, url: str | None, busy_timeout: float) -> None:
        """Parse the URL and build the engine; opens no connection yet.

        Raises:
            LedgerError: for a bad URL or a missing driver.
        """
        self.busy_timeout = busy_timeout
        self.closed = False
        text = url if url is not None else default_url()
        if "://" not in text:  # a file path, as the settings file and most people write it
            text = sqlite_url(text)
        try:
            parsed = _normalise_url(make_url(text))
        except sa_exc.ArgumentError:
            raise LedgerError(
                _(
                    "the ledger URL could not be understood; give a SQLite file path or a "
                    "database URL such as sqlite:////var/lib/posdiag/ledger.sqlite3 or "
                    "postgresql://user@host/posdiag"
                )
            ) from None
        self.parsed = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_postgres = parsed.get_backend_name() == "postgresql"
        secrets = [parsed.password] + [
            value for key, value in parsed.query.items() if key.lower() in _SECRET_QUERY_KEYS
        ]
        self._secrets = [str(secret) for secret in secrets if isinstance(secret, str) and secret]
        self.file: Path | None = None
        if self.is_sqlite:
            database = parsed.database or ":memory:"
            self.where = database if database == ":memory:" else repr(database)
            if database != ":memory:" and not database.startswith("file:"):
                self.file = Path(database)
        else:
            self.where = _display_url(parsed)
        self.check_file()
        self.engine = self._create_engine(parsed)
        self.users = 0
        """How many open :class:`~posdiag.agent.ledger.Ledger` objects share this database."""
        self.initialised = False
        """The schema was checked (created, upgraded) since the last Ledger here closed."""
        self.init_lock = threading.Lock()
        self._group: GroupWriter | None = None
        self._group_lock = threading.Lock()

    def check_file(self) -> None:
        """Create the SQLite file 0600 (its folder must exist), with a readable error if not."""
        if self.file is None:
            return
        try:
            make_private_file(self.file)
        except FileNotFoundError:
            raise LedgerError(
                _("cannot open the ledger {where}: its folder does not exist").format(
                    where=self.where
                )
            ) from None
        except OSError as error:
            raise LedgerError(
                _(
                    "cannot open the ledger {where}: {value}; check that its folder can be written"
                ).format(where=self.where, value=error.strerror or error)
            ) from None

    def mask(self, text: str) -> str:
        """``text`` with the URL's password replaced, for anything shown or logged.

        Messages name the URL through :func:`_display_url` already; this catches a driver that
        quotes its connection string back. Whole words only, so a short password does not
        shred the rest of the sentence.
        """
        for secret in self._secrets:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
        return text

    @property
    def url(self) -> str:
        """The database URL with any password hidden, for messages and logs."""
        return _display_url(self.parsed)

    def _create_engine(self, parsed: URL) -> Engine:
        """Build the engine, and install the per-backend connection hooks."""
        backend = parsed.get_backend_name()
        options: dict[str, Any] = {}
        if self.file is not None or self.is_postgres:
            # One engine serves every thread of the process (see .shared): up to 256 workers
            # read at once, so the pool never makes one wait; a few connections stay open.
            options.update(pool_size=_POOL_KEPT, max_overflow=-1)
        if self.is_postgres:
            # A station runs for hours: a pooled connection the server dropped meanwhile is
            # replaced rather than failing a wipe's journal write.
            options["pool_pre_ping"] = True
            if parsed.get_driver_name() == "psycopg" and "connect_timeout" not in parsed.query:
                options["connect_args"] = {"connect_timeout": max(1, round(self.busy_timeout))}
        try:
            engine = sa.create_engine(parsed, **options)
        except sa_exc.NoSuchModuleError:
            raise LedgerError(
                _(
                    "the ledger URL names an unknown database type {drivername!r}; use "
                    "sqlite:///… or postgresql://…"
                ).format(drivername=parsed.drivername)
            ) from None
        except ImportError as error:
            if parsed.drivername == _POSTGRES_DRIVER:
                raise LedgerError(
                    _(
                        "a PostgreSQL ledger needs the psycopg driver, which is not installed: "
                        "pip install 'posdiag[postgres]'"
                    )
                ) from None
            raise LedgerError(
                _("the database driver for {drivername!r} is not installed ({name})").format(
                    drivername=parsed.drivername, name=error.name
                )
            ) from None
        except sa_exc.ArgumentError as error:
            raise LedgerError(
                self.mask(f"the ledger URL is not usable for {backend}: {error}")
            ) from None
        if self.is_sqlite:
            sa.event.listen(engine, "connect", self._on_sqlite_connect)
            sa.event.listen(engine, "begin", _on_sqlite_begin)
        elif self.is_postgres:
            sa.event.listen(engine, "connect", self._on_postgres_connect)
        return engine

    def _on_sqlite_connect(self, dbapi_connection: Any, _record: Any) -> None:
        """Per-connection SQLite settings; these are not stored in the file, so run them all."""
        # Take transaction control away from the sqlite3 module so BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first, so even the switch to WAL waits for another process's lock.
            cursor.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        if str(mode).lower() not in ("wal", "memory"):
            # Some network file systems cannot do WAL; synchronous=FULL still keeps commits safe.
            log.warning("ledger.wal_unavailable", journal_mode=mode, ledger=self.where)

    def _on_postgres_connect(self, dbapi_connection: Any, _record: Any) -> None:
        """``lock_timeout`` plays SQLite's ``busy_timeout``: how long a write waits for another.

        Without it a write would wait for the head lock for ever behind a stuck station.
        """
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET lock_timeout = {max(1, int(self.busy_timeout * 1000))}")
        finally:
            cursor.close()
        dbapi_connection.commit()

    @contextmanager
    def translate(self) -> Iterator[None]:
        """Turn driver and SQLAlchemy failures into one readable LedgerError (password masked)."""
        try:
            yield
        except LedgerError:
            raise
        except sa_exc.DBAPIError as error:
            cause = error.orig if error.orig is not None else error
            message = _explain(self.where, cause, self.busy_timeout)
            raise LedgerError(self.mask(message)) from error
        except sa_exc.SQLAlchemyError as error:
            raise LedgerError(self.mask(f"ledger {self.where}: {error}")) from error
        except sqlite3.Error as error:
            # Raised from inside the connect hook, before SQLAlchemy can wrap it.
            raise LedgerError(_explain(self.where, error, self.busy_timeout)) from error

    def connect(self, *, write: bool) -> Connection:
        """A pooled connection set up for reading or for writing.

        PostgreSQL: writes run at READ COMMITTED (after the head lock each statement sees the
        previous writer's rows; a stricter level would fail instead of waiting), reads at
        REPEATABLE READ (one snapshot for the log and its head). Set per connection because the
        server's default may be anything.
        """
        conn = self.engine.connect()
        if write:
            conn.execution_options(**{WRITE_OPTION: True})
        if self.is_postgres:
            conn.execution_options(isolation_level="READ COMMITTED" if write else "REPEATABLE READ")
        return conn

    def check_open(self) -> None:
        """Refuse work on a closed ledger with a readable error rather than a pool error."""
        if self.closed:
            raise LedgerError(_("the ledger is closed"))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot, no write lock taken."""
        self.check_open()
        with self.translate(), self.connect(write=False) as conn, conn.begin():
            yield conn

    def write(
        self,
        work: Callable[[WriteTx], _T],
        once: Callable[[Callable[[WriteTx], _T]], _T] | None = None,
    ) -> _T:
        """Run ``work`` in a write transaction holding the write lock from its first statement.

        SQLite gets ``BEGIN IMMEDIATE`` (see :func:`_on_sqlite_begin`); other databases lock the
        audit head row. Either way concurrent writers queue up instead of both reading the same
        chain head, and the upserts in ``work`` cannot race. A transaction the database rolled
        back as a serialisation failure or deadlock runs again, so ``work`` must change nothing
        but the database (through ``tx``). Other failures are not retried: after a lost
        connection nobody knows whether the commit landed, and appending twice is worse.
        """
        self.check_open()
        attempt_once = once or self.write_once
        with self.translate():
            for attempt in range(1, _WRITE_ATTEMPTS + 1):
                try:
                    return attempt_once(work)
                except sa_exc.DBAPIError as error:
                    if attempt == _WRITE_ATTEMPTS or _sqlstate(error.orig) not in _PG_RETRY_STATES:
                        raise
                    pause = min(_MAX_RETRY_PAUSE_S, random.uniform(0.01, 0.05) * 2**attempt)
                    log.info(
                        "ledger.write_retried",
                        attempt=attempt,
                        sqlstate=_sqlstate(error.orig),
                        pause_s=round(pause, 3),
                    )
                    time.sleep(pause)
        raise AssertionError(_("unreachable: the last attempt returns or raises"))

    def write_once(self, work: Callable[[WriteTx], _T]) -> _T:
        """One attempt of :meth:`write`: through this process's group writer (see :mod:`.group`).

        An in-memory database has one connection per thread, so its writes stay on the caller's.
        """
        if self.file is None and not self.is_postgres and not self._is_file_uri():
            return self.write_direct(work)
        return self.group().submit(work)

    def write_direct(self, work: Callable[[WriteTx], _T]) -> _T:
        """One write transaction of its own, on the caller's thread."""
        with self.connect(write=True) as conn, conn.begin():
            head = conn.execute(
                sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
            ).one_or_none()
            if head is None:
                raise self.lost_head()
            return work(WriteTx(conn, head))

    def _is_file_uri(self) -> bool:
        return self.is_sqlite and (self.parsed.database or "").startswith("file:")

    def group(self) -> GroupWriter:
        """This database's group writer, created on first use."""
        with self._group_lock:
            if self._group is None:
                gate = FairGate(gate_folder(self.file)) if self.file is not None else None
                self._group = GroupWriter(self, gate)
            return self._group

    def stop_writer(self) -> None:
        """End the writer thread (after what is queued); the next write starts it again."""
        with self._group_lock:
            group = self._group
        if group is not None:
            group.stop()

    def lost_head(self) -> LedgerError:
        """The error for a ledger whose audit head row is gone."""
        return LedgerError(
            _(
                "the ledger {where} has lost its audit head: it was damaged or tampered "
                "with; keep the file for investigation and start a new ledger"
            ).format(where=self.where)
        )

    def tighten(self) -> None:
        """Make SQLite's side files (created by the first connection) private as well."""
        if self.file is not None:
            with contextlib.suppress(OSError):
                make_private_file(self.file)

    def dispose(self) -> None:
        """Stop the writer and close every pooled connection; committed data is already safe."""
        self.closed = True
        self.stop_writer()
        self.engine.dispose()


def _on_sqlite_begin(conn: Connection) -> None:
    """Start SQLite transactions ourselves: IMMEDIATE for writes, so the lock is taken up front.

    A deferred transaction that reads the chain head and then writes can be overtaken by another
    process between the read and the write; taking the write lock at BEGIN rules that out.
    """
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
