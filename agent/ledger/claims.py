"""Which terminals this session is wiping: a mark per terminal, so two sessions never drive one.

Two stations sharing a ledger (or two ``posdiag wipe`` processes on one machine) can meet the same
family+serial at once. Without a mark, one would "resume" the other's live run and both would
journal into it. The mark dies with its holder, so a station that dies releases it and its run
then resumes anywhere:

* PostgreSQL: a session-level advisory lock ``pg_advisory_lock(class, terminal)`` on a
  connection kept for the purpose; it ends with that connection.
* SQLite: an ``flock`` on a lock file per terminal in a private folder beside the database; the
  kernel releases it when the file is closed or the process dies, even by SIGKILL.

Marks are taken with try-lock and polled, so no pooled connection sits blocked and the wait is
bounded by the ledger's ``busy_timeout``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from posdiag.drivers.i18n import _

from ..logs import get_logger
from .engine import Database, LedgerError

__all__ = ["TerminalClaims", "device_lock_key"]

log = get_logger("posdiag.agent.ledger")

PG_TERMINAL_LOCK_CLASS: Final = 0x706F7364
"""First key of the two-key ``pg_advisory_lock(class, terminal)`` held while a terminal is wiped."""


def device_lock_key(family: str, serial: str) -> int:
    """The second key of ``pg_advisory_lock(class, key)`` for one terminal: a signed 32-bit hash.

    A collision only makes two different terminals wait for each other, never mixes their runs.
    """
    digest = hashlib.sha256(f"{family}\x00{serial}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _close_lock_files(fds: dict[int, int]) -> None:
    """Close (and so unlock) every terminal lock file in ``fds``, emptying it."""
    while fds:
        _, fd = fds.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)


class TerminalClaims:
    """The terminals one Ledger object is wiping, and the runs each mark belongs to."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._fds: dict[int, int] = {}
        # a ledger dropped without close() (a worker that died) must not keep terminals locked
        weakref.finalize(self, _close_lock_files, self._fds)
        self._held: set[int] = set()
        self._by_run: dict[int, int] = {}
        self._dir: Path | None = None
        if db.file is not None:
            self._dir = db.file.with_name(f".{db.file.name}.locks")

    @property
    def enabled(self) -> bool:
        """False for an in-memory SQLite ledger (one process, nothing to keep apart)."""
        return self._db.is_postgres or self._dir is not None

    def holds(self, family: str, serial: str) -> bool:
        """Whether this session already marks that terminal."""
        return device_lock_key(family, serial) in self._held

    def _try_lock_file(self, key: int) -> bool:
        """Take this terminal's lock file (SQLite); False while another session holds it."""
        import fcntl

        assert self._dir is not None
        if not self._dir.is_dir():
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._dir.chmod(0o700)
        path = self._dir / f"{key & 0xFFFFFFFF:08x}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fds[key] = fd
        return True

    def _connection(self) -> Connection:
        """This session's lock connection (autocommit), opened on first use; hold _lock."""
        if self._conn is None:
            conn = self._db.engine.connect()
            conn.execution_options(isolation_level="AUTOCOMMIT")
            self._conn = conn
        return self._conn

    def claim(self, family: str, serial: str) -> int | None:
        """Mark this terminal as being wiped by this session, waiting for another session's mark.

        Returns:
            The lock key (held until the run finishes or the ledger closes); None for an
            in-memory ledger.

        Raises:
            LedgerError: another session still wipes this terminal after ``busy_timeout``.
        """
        if not self.enabled:
            return None
        key = device_lock_key(family, serial)
        deadline = time.monotonic() + self._db.busy_timeout
        with self._db.translate():
            while True:
                with self._lock:
                    if key in self._held:
                        return key
                    if self._db.is_postgres:
                        try_lock = sa.select(
                            sa.func.pg_try_advisory_lock(PG_TERMINAL_LOCK_CLASS, key)
                        )
                        got = self._connection().execute(try_lock).scalar_one()
                    else:
                        got = self._try_lock_file(key)
                    if got:
                        self._held.add(key)
                        return key
                if time.monotonic() >= deadline:
                    raise LedgerError(
                        _(
                            "terminal {family} {serial} is being wiped by another posdiag session "
                            "on the ledger {where} right now (waited {busy_timeout:g} s); one "
                            "terminal cannot be wiped from two places at once: if two terminals "
                            "report this serial, wipe them one after the other"
                        ).format(
                            family=family,
                            serial=serial,
                            where=self._db.where,
                            busy_timeout=self._db.busy_timeout,
                        )
                    )
                time.sleep(0.05)

    def try_claim(self, family: str, serial: str) -> tuple[bool, int | None]:
        """Mark this terminal if no other session does, without waiting.

        Returns:
            ``(True, key)`` when this session now holds (or already held) the mark, ``(True,
            None)`` for an in-memory ledger, ``(False, None)`` while another session holds it.
        """
        if not self.enabled:
            return True, None
        key = device_lock_key(family, serial)
        with self._db.translate(), self._lock:
            if key in self._held:
                return True, key
            if self._db.is_postgres:
                got = (
                    self._connection()
                    .execute(sa.select(sa.func.pg_try_advisory_lock(PG_TERMINAL_LOCK_CLASS, key)))
                    .scalar_one()
                )
            else:
                got = self._try_lock_file(key)
            if got:
                self._held.add(key)
                return True, key
        return False, None

    def bind_run(self, run_id: int, key: int) -> None:
        """Remember that ``run_id``'s mark is ``key``, so finishing the run releases it."""
        with self._lock:
            self._by_run[run_id] = key

    def release_run(self, run_id: int) -> None:
        """Release the mark of a run that finished (if this session holds one)."""
        key = self._by_run.get(run_id)
        if key is not None:
            self.release(key)

    def release_unbound(self, family: str, serial: str) -> None:
        """Drop this terminal's mark unless a run of this session still holds it.

        A mark taken to look for a resumable run or a pending certificate, after which nothing
        was started (a refusal, an unconfirmed wipe, an error), must not outlive that look: two
        stations that each kept the mark of a unit they refused would wait for each other's.
        """
        key = device_lock_key(family, serial)
        with self._lock:
            if key not in self._held or key in self._by_run.values():
                return
        self.release(key)

    def release(self, key: int) -> None:
        """Drop one terminal's mark; best effort, as closing the connection drops it anyway."""
        with self._lock:
            fd = self._fds.pop(key, None)
            if fd is not None:
                os.close(fd)  # releases the flock
            if key not in self._held:
                return
            self._held.discard(key)
            for run_id in [run for run, held in self._by_run.items() if held == key]:
                del self._by_run[run_id]
            conn = self._conn
            if fd is not None or conn is None:
                return
            try:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(PG_TERMINAL_LOCK_CLASS, key)))
            except sa_exc.SQLAlchemyError as error:
                log.warning("ledger.unlock_failed", error=self._db.mask(str(error)))
                self._drop()

    def _drop(self) -> None:
        """Release every mark and give the lock connection back; hold _lock.

        The engine is shared by the process (``shared.py``), so closing the connection only
        returns it to the pool, and PostgreSQL session locks would stay with it: they are
        released explicitly, and a connection that cannot do so is discarded, not pooled.
        """
        conn, self._conn = self._conn, None
        held = bool(self._held)
        self._held.clear()
        self._by_run.clear()
        _close_lock_files(self._fds)
        if conn is None:
            return
        try:
            if held:
                conn.execute(sa.select(sa.func.pg_advisory_unlock_all()))
        except sa_exc.SQLAlchemyError as error:
            log.warning("ledger.unlock_failed", error=self._db.mask(str(error)))
            with contextlib.suppress(sa_exc.SQLAlchemyError):
                conn.invalidate()  # the server ends the session, and its locks with it
        try:
            conn.close()
        except sa_exc.SQLAlchemyError as error:
            log.warning("ledger.unlock_failed", error=self._db.mask(str(error)))

    def close(self) -> None:
        """Release every mark this session holds."""
        with self._lock:
            self._drop()
