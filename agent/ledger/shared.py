"""One :class:`.engine.Database` per process and ledger, shared by every Ledger object on it.

A station opens a :class:`~posdiag.agent.ledger.Ledger` per worker and terminal. Each used to
build its own SQLAlchemy engine (statements compiled again, the schema inspected again, a pool
of its own) and write on its own connection, fighting the other workers for the write lock. Now
every Ledger of one process on one URL (and busy timeout) shares one Database: one engine whose
compiled statements are cached, one pool, and one group writer (:mod:`.group`).

While any Ledger on it is open the schema is checked only once. When the last one closes, the
writer thread ends and the pool's connections are closed (files released, as before), but the
engine is kept (a few, least recently used) so the next Ledger reuses its compiled statements;
that next Ledger checks the schema again, since another program may have changed the file since.

A forked child starts with none of this: the registry is emptied and inherited pools are dropped
without closing the parent's connections.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Final

from .engine import Database, default_url
from .migrate import initialise

__all__ = ["acquire", "release"]

_IDLE_KEPT: Final = 8
"""Engines kept with no Ledger open on them (least recently used dropped first)."""

_Key = tuple[int, str, float]

_lock = threading.RLock()  # reentrant: a Ledger's finaliser may run in GC while it is held
_open: dict[_Key, Database] = {}
_idle: OrderedDict[_Key, Database] = OrderedDict()


def acquire(url: str | None, busy_timeout: float) -> Database:
    """The process's Database for ``url``, ready to use (schema created or upgraded).

    Raises:
        LedgerError: for a bad URL, a missing driver, a missing folder, or a database that is
            unreadable, corrupt, locked or written by a newer posdiag.
    """
    if url is None:  # where the default ledger is depends on the environment: resolve it now
        url = default_url()
    key: _Key = (os.getpid(), url, float(busy_timeout))
    with _lock:
        db = _open.get(key)
        if db is None:
            db = _idle.pop(key, None)
            if db is not None:
                try:
                    db.check_file()  # the folder may be gone since
                except BaseException:
                    db.engine.dispose()
                    raise
            else:
                db = Database(url, busy_timeout)
            db.closed = False
            _open[key] = db
        db.users += 1
    try:
        with db.init_lock:
            if not db.initialised:
                initialise(db)
                db.initialised = True
    except BaseException:
        release(db)
        raise
    return db


def release(db: Database) -> None:
    """One Ledger on ``db`` closed; the last one stops its writer and closes its connections."""
    with _lock:
        db.users -= 1
        if db.users > 0:
            return
        key = next((k for k, v in _open.items() if v is db), None)
        if key is not None:
            del _open[key]
        db.initialised = False
        db.dispose()
        if key is not None and key[0] == os.getpid():
            _idle[key] = db
            while len(_idle) > _IDLE_KEPT:
                _idle.popitem(last=False)


def _forget_after_fork() -> None:
    """In a forked child: nothing of the parent's registry, pools or writer threads is usable."""
    global _lock
    _lock = threading.RLock()
    for db in [*_open.values(), *_idle.values()]:
        db.engine.dispose(close=False)
    _open.clear()
    _idle.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
