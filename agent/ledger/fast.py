"""The write path's statements, compiled once per dialect and run on the driver's own cursor.

A wipe writes a dozen records and each record half a dozen statements, all inside the group
writer's one thread (:mod:`.group`). Through ``Connection.execute`` every statement paid about
60 µs of SQLAlchemy bookkeeping (cache key, execution context, result object): more than SQLite
takes to run it, and most of what capped the ledger's records per second. The statements are
the ledger's own constants, so they are compiled once per dialect here and run with
``cursor.execute``; SQLAlchemy still writes the SQL (so PostgreSQL and SQLite both work) and its
bind processors still run (the :class:`.schema.Text` NUL rule on PostgreSQL).

Driver errors are wrapped the way SQLAlchemy wraps them (``IntegrityError``, ``OperationalError``
…), so :meth:`.engine.Database.translate` and the retry rules see what they always saw.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["STREAM_BATCH", "FastSql", "stream"]

STREAM_BATCH = 1000
"""Rows fetched at a time by :func:`stream`: the per-batch cost is already lost in the noise at
1,000, and larger batches only raise the peak memory (5,000 cost ``report`` 9 MiB more)."""

_cursor_names = itertools.count()
_STREAMED_DRIVERS = frozenset({("sqlite", "pysqlite"), ("postgresql", "psycopg")})

_Compiled = tuple[str, tuple[str, ...] | None, dict[str, Callable[[Any], Any]], dict[str, Any]]

_cache: dict[tuple[str, str, int, tuple[str, ...] | None], tuple[_Compiled, sa.ClauseElement]] = {}
_returning_of: dict[int, tuple[sa.Insert, sa.Insert]] = {}
_cache_lock = threading.Lock()


def _compile(
    dialect: sa.Dialect,
    statement: sa.ClauseElement,
    columns: tuple[str, ...] | None,
    *,
    cache: bool = True,
) -> _Compiled:
    """The SQL text, positional parameter order (None for named styles) and bind processors.

    ``columns``: for an INSERT given no ``values()``, the columns it sets (its parameters).
    ``cache``: keep the result for the next call with the same statement object; only for the
    module constants of the write path, since the cache keeps each statement alive.
    """
    key = (dialect.name, dialect.driver, id(statement), columns)
    found = _cache.get(key) if cache else None
    if found is not None and found[1] is statement:
        return found[0]
    compiled = statement.compile(
        dialect=dialect, column_keys=list(columns) if columns is not None else None
    )
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    processors: dict[str, Callable[[Any], Any]] = {
        name: processor  # type: ignore[misc]
        for name, processor in compiled._bind_processors.items()
        if processor is not None and isinstance(name, str)
    }
    # values written into the statement itself (``id == 1``), sent along with the caller's
    fixed = {
        name: bind.effective_value
        for name, bind in compiled.binds.items()
        if not bind.required and bind.callable is None and bind.value is not None
    }
    entry: _Compiled = (compiled.string, names, processors, fixed)
    if not cache:
        return entry
    with _cache_lock:
        _cache[key] = (entry, statement)  # the statement kept alive, so its id stays its own
    return entry


def _returning(statement: sa.Insert) -> sa.Insert:
    """``statement`` with ``RETURNING`` its primary key, built once (PostgreSQL)."""
    found = _returning_of.get(id(statement))
    if found is not None and found[0] is statement:
        return found[1]
    (column,) = statement.table.primary_key.columns  # type: ignore[attr-defined]
    returning = statement.returning(column)
    with _cache_lock:
        _returning_of[id(statement)] = (statement, returning)
    return returning


class FastSql:
    """Runs the ledger's constant statements on one connection's driver cursor."""

    def __init__(self, conn: Connection) -> None:
        self._dialect = conn.dialect
        driver = conn.connection.driver_connection
        if driver is None:  # pragma: no cover - a live connection always has one
            raise RuntimeError("the connection has no driver connection")
        self._cursor = driver.cursor()
        dbapi = self._dialect.loaded_dbapi
        self._error: type[Exception] = dbapi.Error
        self._lastrowid = self._dialect.name == "sqlite"

    def execute(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> Any:
        """Run ``statement`` with ``params`` (its bind parameter names); returns the cursor."""
        columns = tuple(params) if isinstance(statement, sa.Insert) else None
        sql, names, processors, fixed = _compile(self._dialect, statement, columns)
        if fixed:
            params = {**fixed, **params}
        if processors:
            params = {
                name: processors[name](value) if name in processors else value
                for name, value in params.items()
            }
        args: Sequence[Any] | Mapping[str, Any] = (
            [params[name] for name in names] if names is not None else params
        )
        try:
            self._cursor.execute(sql, args)
        except self._error as error:
            raise sa_exc.DBAPIError.instance(
                sql, args, error, self._error, dialect=self._dialect
            ) from error
        return self._cursor

    def one(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> Any:
        """The first row (a tuple) of a query, or None."""
        return self.execute(statement, params).fetchone()

    def scalar(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.execute(statement, params).fetchone()
        return None if row is None else row[0]

    def insert(self, statement: sa.Insert, params: Mapping[str, Any]) -> int:
        """Run an INSERT of one row and return its integer primary key."""
        if self._lastrowid:
            key = self.execute(statement, params).lastrowid
        else:
            key = self.execute(_returning(statement), params).fetchone()[0]
        if key is None:  # pragma: no cover - every ledger table has an integer key
            raise RuntimeError("the database did not report the new row's id")
        return int(key)


def stream(
    conn: Connection, statement: sa.ClauseElement, params: Mapping[str, Any] | None = None
) -> Generator[tuple[Any, ...], None, None]:
    """The rows of a query as plain tuples, read in large batches, in constant memory.

    SQLite's cursor steps through the result as it is read; PostgreSQL (psycopg) gets a
    server-side cursor, so neither holds the whole result. Another driver goes through
    SQLAlchemy's streaming. Closing the generator early closes the cursor.
    """
    dialect = conn.dialect
    driver = conn.connection.driver_connection
    if (dialect.name, dialect.driver) not in _STREAMED_DRIVERS:
        executable: Any = statement
        result = conn.execute(executable, dict(params or {})).yield_per(STREAM_BATCH)
        try:
            for row in result:
                yield tuple(row)
        finally:
            result.close()
        return
    assert driver is not None
    sql, names, processors, fixed = _compile(dialect, statement, None, cache=False)
    values = {**fixed, **(params or {})}
    values = {n: processors[n](v) if n in processors else v for n, v in values.items()}
    args: Sequence[Any] | Mapping[str, Any] = (
        [values[name] for name in names] if names is not None else values
    )
    error_type: type[Exception] = dialect.loaded_dbapi.Error
    if dialect.name == "postgresql":
        cursor = driver.cursor(name=f"posdiag_stream_{next(_cursor_names)}")
        cursor.itersize = STREAM_BATCH
    else:
        cursor = driver.cursor()
        cursor.arraysize = STREAM_BATCH
    try:
        try:
            cursor.execute(sql, args)
            while True:
                batch = cursor.fetchmany(STREAM_BATCH)
                if not batch:
                    return
                yield from batch
        except error_type as error:
            raise sa_exc.DBAPIError.instance(
                sql, args, error, error_type, dialect=dialect
            ) from error
    finally:
        cursor.close()
