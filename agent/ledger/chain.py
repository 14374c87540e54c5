"""The tamper-evident chain: every audit entry hashed after the one before, every row sealed in it.

An audit entry's hash covers its own columns and the previous entry's hash, so changing,
deleting or reordering an entry breaks the chain; the newest hash is also kept in the single-row
``audit_head`` table, so cutting entries off the end is detected too.

Since schema 3 the chain also covers the tables that reports, manifests and certificates are
built from (:data:`.schema.SEALED_TABLES`). Whenever a row of those is written or changed, the
same transaction appends an audit entry naming the row (``row_table``, ``row_key``) and the hash
of its content as stored (``row_hash``). The row's current content must then hash to the newest
seal the chain holds for it, so a row edited, forged, deleted, re-numbered or rolled back to an
older version outside posdiag no longer matches, and :func:`verify` names it.

Hashes (documented so other tools can verify a ledger without posdiag)::

    row_hash   = sha256(utf8(json.dumps(["posdiag.row/1", table, {column: value, …}],
                                        sort_keys=True, ensure_ascii=False,
                                        separators=(",", ":")))).hexdigest()
    entry hash = sha256(utf8(json.dumps(["posdiag.audit/2", id, at, event, data_json, prev_hash,
                                         row_table, row_key, row_hash],
                                        ensure_ascii=False, separators=(",", ":")))).hexdigest()

``{column: value}`` holds every column of the row whose value is not NULL (integers as JSON
numbers, everything else as the stored text), so adding a nullable column later keeps old seals
valid. An entry that seals no row (and every entry written before schema 3) hashes as
``["posdiag.audit/1", id, at, event, data_json, prev_hash]``. ``prev_hash`` of the first entry is
64 zeros. Timestamps are UTC ISO 8601 strings with microseconds so they hash and sort the same on
every database.

What this proves and what it does not: an edit by someone who changes rows without recomputing
every later hash and the head is always found. Someone able to rewrite the whole database can
rewrite the whole chain; anchoring the head outside the file (certificates carry the ledger head
they were issued at) closes that gap for everything before the newest certificate.

Verification (:mod:`.verify`) is a streaming pass: the log is read in id order once, and each
sealed table once in key order with its newest seal looked up through an index, so memory stays
constant however large the ledger grows.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Row

from ..logs import redact
from .fast import FastSql
from .schema import SEALED_TABLES, audit_head, audit_log, primary_key

__all__ = [
    "AUDIT_HASH_DOMAIN",
    "GENESIS_HASH",
    "ROW_HASH_DOMAIN",
    "RowEncoder",
    "WriteTx",
    "audit_row_hash",
    "audit_text",
    "row_content_hash",
]

GENESIS_HASH: Final = "0" * 64
"""``prev_hash`` of the first audit row."""

AUDIT_HASH_DOMAIN: Final = "posdiag.audit/1"
"""First element of the hashed tuple of an entry that seals no row."""

SEALED_AUDIT_HASH_DOMAIN: Final = "posdiag.audit/2"
"""First element of the hashed tuple of an entry that seals a row."""

ROW_HASH_DOMAIN: Final = "posdiag.row/1"
"""First element of a row's hashed content, so a row hash can never equal an entry hash."""


def now_text() -> str:
    """The current time as the ledger stores it: fixed-width UTC ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


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


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, so equal data gives equal text."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def redacted_json(data: Mapping[str, Any]) -> str:
    """Redact secrets and identifiers, then encode canonically; the only way data is stored."""
    return dumps(redact(data))


# One encoder each, built once: ``json.dumps`` with options builds a new encoder per call, which
# was a fifth of a verification pass. Same options, same output as the docstring's json.dumps.
_ROW_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
)
_AUDIT_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_enc: Final = json.encoder.encode_basestring  # what both encoders use for a str (C version)


def row_content_hash(table: str, values: Mapping[str, Any]) -> str:
    """The SHA-256 of one table row's content as stored (see the module docstring).

    Args:
        table: the table's name.
        values: column name to stored value; NULL columns may be given as None or left out.

    Returns:
        64 lowercase hex digits.
    """
    content = {name: value for name, value in values.items() if value is not None}
    return _sha256(_ROW_ENCODER.encode([ROW_HASH_DOMAIN, table, content]))


def audit_row_hash(
    row_id: int,
    at: str,
    event: str,
    data_json: str,
    prev_hash: str,
    seal: tuple[str, str, str] | None = None,
) -> str:
    """The SHA-256 of one audit entry, over the canonical encoding in the module docstring.

    Args:
        row_id: the entry's id (part of the hash, so moving an entry changes it).
        at: the entry's timestamp string exactly as stored.
        event: the event name.
        data_json: the stored (already redacted) JSON text.
        prev_hash: the previous entry's hash, or :data:`GENESIS_HASH` for the first entry.
        seal: ``(row_table, row_key, row_hash)`` of the row the entry seals, or None.

    Returns:
        64 lowercase hex digits.
    """
    return _sha256(audit_text(row_id, at, event, data_json, prev_hash, seal))


def audit_text(
    row_id: Any,
    at: Any,
    event: Any,
    data_json: Any,
    prev_hash: Any,
    seal: tuple[str, str, str] | None,
) -> str:
    """The canonical JSON text an entry's hash is taken over (see the module docstring).

    The usual entry (an int id, text columns) is spelt out with the C string encoder json
    itself uses, which gives the very same text as the encoder at a fraction of its cost
    (verification hashes every entry); anything else goes through the encoder.
    """
    if (
        type(row_id) is int
        and type(at) is str
        and type(event) is str
        and type(data_json) is str
        and type(prev_hash) is str
    ):
        if seal is None:
            return (
                f'["{AUDIT_HASH_DOMAIN}",{row_id},{_enc(at)},{_enc(event)},{_enc(data_json)},'
                f"{_enc(prev_hash)}]"
            )
        table, key, row_hash = seal
        if type(table) is str and type(key) is str and type(row_hash) is str:
            return (
                f'["{SEALED_AUDIT_HASH_DOMAIN}",{row_id},{_enc(at)},{_enc(event)},'
                f"{_enc(data_json)},{_enc(prev_hash)},{_enc(table)},{_enc(key)},"
                f"{_enc(row_hash)}]"
            )
    fields: list[Any] = [row_id, at, event, data_json, prev_hash]
    head = AUDIT_HASH_DOMAIN if seal is None else SEALED_AUDIT_HASH_DOMAIN
    if seal is not None:
        fields.extend(seal)
    return _AUDIT_ENCODER.encode([head, *fields])


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class RowEncoder:
    """The canonical content text of one table's rows, from a tuple of its columns.

    Keys are sorted once per table instead of per row, and text and integer values (all a
    ledger row holds) are spelt out with json's own C string encoder; the text is the same as
    :func:`row_content_hash` gives, which a row of any other value type falls back to.
    """

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        order = sorted(range(len(self.columns)), key=lambda index: self.columns[index])
        self._keys = tuple((index, _enc(self.columns[index]) + ":") for index in order)
        self._prefix = f'["{ROW_HASH_DOMAIN}",{_enc(table)},{{'

    def text(self, row: Sequence[Any]) -> str:
        """The canonical text of ``row`` (its values in :attr:`columns` order)."""
        parts: list[str] = []
        for index, key in self._keys:
            value = row[index]
            kind = type(value)
            if kind is str:
                parts.append(key + _enc(value))
            elif kind is int:
                parts.append(f"{key}{value}")
            elif value is not None:
                content = {
                    name: item
                    for name, item in zip(self.columns, row, strict=False)
                    if item is not None
                }
                return _ROW_ENCODER.encode([ROW_HASH_DOMAIN, self.table, content])
        return self._prefix + ",".join(parts) + "}]"

    def hash(self, row: Sequence[Any]) -> str:
        """The row's content hash, as :func:`row_content_hash`."""
        return _sha256(self.text(row))


def key_text(value: Any) -> str:
    """A row's primary key as the chain names it (``row_key``)."""
    return str(value)


# Statements built once: building a SQLAlchemy statement (coercions, cache key) cost more than
# running it, and a wipe writes a dozen records of several statements each.
_SEAL_SELECTS: Final = {
    table.name: sa.select(table).where(primary_key(table) == sa.bindparam("key"))
    for table in SEALED_TABLES
}
_STORED_COLUMNS: Final = {
    table.name: tuple(column.name for column in table.columns) for table in SEALED_TABLES
}
_INSERT_AUDIT: Final = sa.insert(audit_log)
_MOVE_HEAD: Final = (
    sa.update(audit_head)
    .where(audit_head.c.id == 1)
    .values(
        last_id=sa.bindparam("new_last_id"),
        hash=sa.bindparam("new_hash"),
        row_count=sa.bindparam("new_row_count"),
    )
)


class WriteTx:
    """A write transaction with the audit head locked; everything it writes commits together.

    With ``defer_head`` (group commit) the head row is written once, by :meth:`flush_head`,
    before the commit rather than after every entry: nothing reads it inside the transaction,
    and a group appends hundreds of entries.
    """

    def __init__(self, conn: Connection, head: Row[Any], *, defer_head: bool = False) -> None:
        self.conn = conn
        self.at = now_text()
        self._last_id: int = head.last_id
        self._hash: str = head.hash
        self._rows: int = head.row_count
        self._defer_head = defer_head
        self._head_moved = False
        self._sql: FastSql | None = None

    @property
    def sql(self) -> FastSql:
        """The transaction's fast statement runner (see :mod:`.fast`)."""
        if self._sql is None:
            self._sql = FastSql(self.conn)
        return self._sql

    def next_record(self) -> None:
        """Start the next caller's record of a group: its own timestamp, as if alone."""
        self.at = now_text()

    def mark(self) -> tuple[int, str, int, bool]:
        """The chain's position, to go back to when a record's savepoint is rolled back."""
        return self._last_id, self._hash, self._rows, self._head_moved

    def restore(self, mark: tuple[int, str, int, bool]) -> None:
        """Forget the entries appended since :meth:`mark` (their rows were rolled back)."""
        self._last_id, self._hash, self._rows, self._head_moved = mark

    def flush_head(self) -> None:
        """Write the deferred head (group commit), if any entry moved it."""
        if self._head_moved:
            self._write_head()

    def _write_head(self) -> None:
        self.sql.execute(
            _MOVE_HEAD,
            {"new_last_id": self._last_id, "new_hash": self._hash, "new_row_count": self._rows},
        )
        self._head_moved = False

    def stored(self, table: sa.Table, key: Any) -> Mapping[str, Any]:
        """One row as stored (column name to value); the row must exist."""
        found = self.sql.one(_SEAL_SELECTS[table.name], {"key": key})
        if found is None:
            raise sa_exc.NoResultFound(f"no {table.name} row {key!r} to seal")
        return dict(zip(_STORED_COLUMNS[table.name], found, strict=True))

    def seal_of(self, table: sa.Table, key: Any) -> tuple[str, str, str]:
        """Read a row back as stored and return its seal; the row must exist."""
        return table.name, key_text(key), row_content_hash(table.name, self.stored(table, key))

    def audit(
        self,
        event: str,
        data: Mapping[str, Any],
        *,
        row: tuple[sa.Table, Any] | None = None,
        stored: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one chained audit entry (sealing ``row`` as now stored) and move the head.

        ``stored``: the row's content as just read back by the caller (its primary key
        included), which saves reading it again.
        """
        row_id = self._last_id + 1
        data_json = redacted_json(data)
        seal: tuple[str, str, str] | None = None
        if row is not None:
            table, key = row
            content = stored if stored is not None else self.stored(table, key)
            seal = (table.name, key_text(key), row_content_hash(table.name, content))
        row_hash = audit_row_hash(row_id, self.at, event, data_json, self._hash, seal)
        table_name, sealed_key, content_hash = seal if seal is not None else (None, None, None)
        self.sql.execute(
            _INSERT_AUDIT,
            {
                "id": row_id,
                "at": self.at,
                "event": event,
                "data_json": data_json,
                "prev_hash": self._hash,
                "hash": row_hash,
                "row_table": table_name,
                "row_key": sealed_key,
                "row_hash": content_hash,
            },
        )
        self._last_id, self._hash, self._rows = row_id, row_hash, self._rows + 1
        self._head_moved = True
        if not self._defer_head:
            self._write_head()

    def seal(self, table: sa.Table, key: Any, event: str = "row.sealed") -> None:
        """Seal one more row changed in this transaction; :meth:`audit` seals the event's own."""
        self.audit(event, {"table": table.name, "key": key_text(key)}, row=(table, key))
