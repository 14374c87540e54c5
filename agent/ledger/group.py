"""Group commit: one writer per ledger database and process, many records per transaction.

A station runs up to 256 workers per process, and each journals its wipe step by step. Had
every worker its own connection and transaction, they would fight for SQLite's single write lock
(``BEGIN IMMEDIATE``) and pay one ``fsync`` each: 7 % of what the disk can commit, and a worker
that kept losing the race gave up with "ledger locked". Here every write of the process goes
through one queue:

* A caller hands its work (a function of the :class:`.chain.WriteTx`) to :meth:`GroupWriter.submit`
  and blocks. The writer thread takes everything queued (up to :data:`MAX_GROUP`), runs it in
  ONE transaction, in queue order, each work appending its chained audit entries after the
  previous one's, moves the audit head once, and commits. Only then do the callers return: a
  write call that returned is on disk (``synchronous=FULL``), so SIGKILL loses nothing a caller
  was told is recorded; what is lost is only what nobody was told.
* While one group commits (the ``fsync``), the next one gathers, so the more writers wait, the
  bigger the groups and the fewer ``fsync`` calls per record.
* One work failing (a refused step, a constraint) must not cost the others theirs: the group is
  first run without savepoints (the common case, nothing to pay); if a work raises, the
  transaction is rolled back, that work gets its error, and the group is run again with each
  remaining work inside its own SAVEPOINT.
* A rolled-back transaction that PostgreSQL asks to retry (serialisation failure, deadlock) fails
  the whole group; each caller's :meth:`.engine.Database.write` then retries, as before.

Between processes (a station sharded over several, or a CLI wipe beside a station), SQLite's own
busy handler is not fair: it sleeps and polls, so a process that commits group after group can
starve one that waits, until it fails. :class:`FairGate` queues the writers of all processes on
two lock files before they ask SQLite for its lock (see there).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from ..logs import get_logger
from .chain import WriteTx
from .schema import audit_head

if TYPE_CHECKING:
    from .engine import Database

__all__ = ["MAX_GROUP", "FairGate", "GroupWriter"]

log = get_logger("posdiag.agent.ledger")

MAX_GROUP: Final = 512
"""Most works in one transaction: bounds how long the write lock is held at a time."""

_PG_RETRY_STATES: Final = frozenset({"40001", "40P01"})
_T = TypeVar("_T")


class _ItemFailed(Exception):
    """Internal: one work of an unprotected group raised; run the group again with savepoints."""


class _Request(Generic[_T]):
    """One caller's work, waiting for its group to commit."""

    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[WriteTx], _T]) -> None:
        self.work = work
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


def _spent(_tx: WriteTx) -> None:
    """Stands in for a work once it ran, so the request no longer holds the caller's objects."""


def _retryable(error: BaseException) -> bool:
    """A rolled-back PostgreSQL transaction the whole group must run again (see module doc)."""
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in _PG_RETRY_STATES


def _own_copy(error: BaseException) -> BaseException:
    """An error each caller of a failed group can raise in its own thread (its own traceback)."""
    try:
        duplicate = copy.copy(error)
    except Exception:  # an exception type that cannot be copied: share the one object
        return error
    duplicate.__cause__ = error.__cause__
    duplicate.__context__ = error.__context__
    return duplicate


def locked_error() -> sqlite3.OperationalError:
    """What a writer that waited past ``busy_timeout`` raises; explained like SQLite's own."""
    return sqlite3.OperationalError("database is locked")


class FairGate:
    """A fair queue of the writers of every process on one SQLite ledger, through two lock files.

    A writer takes the *turnstile*, then the *gate*, then lets go of the turnstile, and holds
    the gate while its group runs (``BEGIN IMMEDIATE`` … ``COMMIT``). The next writer waits for
    the gate while holding the turnstile, so the writer that just committed cannot take the gate
    again at once: it must first pass the turnstile, behind the one that waited. Writers hand the
    lock over in turn instead of racing SQLite's polling busy handler, which the writer that just
    released always won.

    The waits are ``flock`` (the kernel wakes a waiter the moment the lock is free, and frees it
    when its holder dies, even by SIGKILL) and bounded: a wait runs in a helper thread, given up
    after ``busy_timeout``; a lock the helper gets after that is let go at once.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._turnstile = folder / "writer-turnstile"
        self._gate = folder / "writer-gate"

    def _open(self, path: Path) -> int:
        if not self._folder.is_dir():
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._folder.chmod(0o700)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def _lock_within(self, path: Path, deadline: float) -> int | None:
        """An open descriptor of ``path`` holding its exclusive flock, or None at the deadline."""
        fd = self._open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        got = threading.Event()
        guard = threading.Lock()
        state: dict[str, Any] = {"abandoned": False, "error": None}

        def wait() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as error:
                state["error"] = error
            with guard:
                if state["abandoned"] or state["error"] is not None:
                    os.close(fd)  # too late (or failed): let the next writer have it
                    return
                got.set()

        threading.Thread(target=wait, name="posdiag-ledger-gate", daemon=True).start()
        got.wait(max(0.0, deadline - time.monotonic()))
        with guard:
            if got.is_set():
                return fd
            if state["error"] is not None:
                raise state["error"]
            state["abandoned"] = True
        return None

    @contextlib.contextmanager
    def hold(self, timeout: float) -> Iterator[None]:
        """Hold the gate for one group; raises SQLite's "database is locked" after ``timeout``."""
        deadline = time.monotonic() + timeout
        turnstile = self._lock_within(self._turnstile, deadline)
        if turnstile is None:
            raise locked_error()
        try:
            gate = self._lock_within(self._gate, deadline)
        finally:
            os.close(turnstile)
        if gate is None:
            raise locked_error()
        try:
            yield
        finally:
            os.close(gate)


class GroupWriter:
    """The one writer of a database in this process; see the module docstring."""

    def __init__(self, db: Database, gate: FairGate | None, max_group: int = MAX_GROUP) -> None:
        self._db = db
        self._gate = gate
        self._max_group = max_group
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Request[Any]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._pid = os.getpid()
        self.groups = 0
        self.records = 0

    # -- callers ---------------------------------------------------------------------------------

    def submit(self, work: Callable[[WriteTx], _T]) -> _T:
        """Run ``work`` in the next group; return once that group has committed.

        Raises:
            whatever ``work`` raised, or what failed the group's transaction (raw driver and
            SQLAlchemy errors: the caller's :meth:`.engine.Database.translate` explains them).
        """
        if threading.current_thread() is self._thread:
            # the writer would wait for itself for ever: a work must only use its ``tx``
            raise RuntimeError("a ledger write cannot be made from inside another write")
        request: _Request[_T] = _Request(work)
        with self._cond:
            if self._pid != os.getpid():  # inherited through fork: the thread stayed behind
                self._after_fork()
            self._queue.append(request)
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._loop, name="posdiag-ledger-writer", daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        result: _T = request.result
        return result

    def stop(self) -> None:
        """Let the thread finish what is queued and end (it restarts on the next submit)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _after_fork(self) -> None:
        """A child process starts with no writer thread and none of the parent's requests."""
        self._pid = os.getpid()
        self._queue = deque()
        self._thread = None
        self._stopping = False

    # -- the writer thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self._serve(batch)
            del batch  # a finished work's closure (and its Ledger) must not outlive the wait

    def _take(self) -> list[_Request[Any]] | None:
        """The next group, waiting for one; None when stopping with nothing queued."""
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            if not self._queue:
                self._thread = None
                return None
            return [self._queue.popleft() for _ in range(min(len(self._queue), self._max_group))]

    def _serve(self, batch: list[_Request[Any]]) -> None:
        """Commit one group and wake its callers, each with its result or error."""
        try:
            self._commit(batch)
        except BaseException as error:  # the group failed as a whole: nothing of it landed
            log.warning("ledger.group_failed", records=len(batch), error=self._db.mask(str(error)))
            for request in batch:
                if request.error is None:
                    request.error = _own_copy(error)
                request.result = None
        finally:
            for request in batch:
                request.work = _spent
                request.done.set()

    def _commit(self, batch: list[_Request[Any]]) -> None:
        """Run one group: unprotected first, then with savepoints if a work failed."""
        gate = self._gate.hold(self._db.busy_timeout) if self._gate else contextlib.nullcontext()
        with self._db.connect(write=True) as conn, gate:
            try:
                self._attempt(conn, batch, isolate=False)
            except _ItemFailed:
                self._attempt(conn, batch, isolate=True)
        self.groups += 1
        self.records += len(batch)

    def _attempt(self, conn: Connection, batch: list[_Request[Any]], *, isolate: bool) -> None:
        """One transaction over every work of ``batch`` still without an error of its own."""
        with conn.begin():
            head = conn.execute(
                sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
            ).one_or_none()
            if head is None:
                raise self._db.lost_head()
            tx = WriteTx(conn, head, defer_head=True)
            for request in batch:
                if request.error is not None:
                    continue
                mark = tx.mark()
                tx.next_record()
                if not isolate:
                    try:
                        request.result = request.work(tx)
                    except Exception as error:
                        if _retryable(error):
                            raise
                        request.error = error
                        raise _ItemFailed from error
                    continue
                savepoint = conn.begin_nested()
                try:
                    request.result = request.work(tx)
                except Exception as error:
                    if _retryable(error):
                        raise
                    savepoint.rollback()
                    tx.restore(mark)
                    request.error = error
                    request.result = None
                    continue
                savepoint.commit()
            tx.flush_head()


def gate_folder(file: Path) -> Path:
    """The private folder beside a SQLite ledger that holds its lock files (shared with claims)."""
    return file.with_name(f".{file.name}.locks")
