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

Verification is a streaming pass: the log is read in id order once, and each sealed table once in
key order with its newest seal looked up through an index, so memory stays constant however large
the ledger grows.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from ..logs import redact
from .schema import SEALED_TABLES, audit_head, audit_log, primary_key

__all__ = [
    "AUDIT_HASH_DOMAIN",
    "GENESIS_HASH",
    "ROW_HASH_DOMAIN",
    "ChainReport",
    "LedgerVerification",
    "Problem",
    "WriteTx",
    "audit_row_hash",
    "row_content_hash",
    "verify",
]

GENESIS_HASH: Final = "0" * 64
"""``prev_hash`` of the first audit row."""

AUDIT_HASH_DOMAIN: Final = "posdiag.audit/1"
"""First element of the hashed tuple of an entry that seals no row."""

SEALED_AUDIT_HASH_DOMAIN: Final = "posdiag.audit/2"
"""First element of the hashed tuple of an entry that seals a row."""

ROW_HASH_DOMAIN: Final = "posdiag.row/1"
"""First element of a row's hashed content, so a row hash can never equal an entry hash."""

MAX_PROBLEMS: Final = 1000
"""Problems kept in a verification result; past this only a count, so memory stays bounded."""

_STREAM_BATCH: Final = 1000


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


def row_content_hash(table: str, values: Mapping[str, Any]) -> str:
    """The SHA-256 of one table row's content as stored (see the module docstring).

    Args:
        table: the table's name.
        values: column name to stored value; NULL columns may be given as None or left out.

    Returns:
        64 lowercase hex digits.
    """
    content = {name: value for name, value in values.items() if value is not None}
    encoded = _ROW_ENCODER.encode([ROW_HASH_DOMAIN, table, content])
    return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()


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
    fields: list[Any] = [row_id, at, event, data_json, prev_hash]
    head = AUDIT_HASH_DOMAIN if seal is None else SEALED_AUDIT_HASH_DOMAIN
    if seal is not None:
        fields.extend(seal)
    encoded = _AUDIT_ENCODER.encode([head, *fields])
    return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()


def _key_text(value: Any) -> str:
    return str(value)


class WriteTx:
    """A write transaction with the audit head locked; everything it writes commits together."""

    def __init__(self, conn: Connection, head: Row[Any]) -> None:
        self.conn = conn
        self.at = now_text()
        self._last_id: int = head.last_id
        self._hash: str = head.hash
        self._rows: int = head.row_count

    def seal_of(self, table: sa.Table, key: Any) -> tuple[str, str, str]:
        """Read a row back as stored and return its seal; the row must exist."""
        stored = (
            self.conn.execute(sa.select(table).where(primary_key(table) == key)).mappings().one()
        )
        return table.name, _key_text(key), row_content_hash(table.name, dict(stored))

    def audit(
        self,
        event: str,
        data: Mapping[str, Any],
        *,
        row: tuple[sa.Table, Any] | None = None,
    ) -> None:
        """Append one chained audit entry (sealing ``row`` as now stored) and move the head."""
        row_id = self._last_id + 1
        data_json = redacted_json(data)
        seal = self.seal_of(*row) if row is not None else None
        row_hash = audit_row_hash(row_id, self.at, event, data_json, self._hash, seal)
        table_name, key, content = seal if seal is not None else (None, None, None)
        self.conn.execute(
            sa.insert(audit_log).values(
                id=row_id,
                at=self.at,
                event=event,
                data_json=data_json,
                prev_hash=self._hash,
                hash=row_hash,
                row_table=table_name,
                row_key=key,
                row_hash=content,
            )
        )
        self.conn.execute(
            sa.update(audit_head)
            .where(audit_head.c.id == 1)
            .values(last_id=row_id, hash=row_hash, row_count=self._rows + 1)
        )
        self._last_id, self._hash, self._rows = row_id, row_hash, self._rows + 1

    def seal(self, table: sa.Table, key: Any, event: str = "row.sealed") -> None:
        """Seal one more row changed in this transaction; :meth:`audit` seals the event's own."""
        self.audit(event, {"table": table.name, "key": _key_text(key)}, row=(table, key))


@dataclass(frozen=True)
class ChainReport:
    """Result of checking the audit log alone; ``reason`` is empty when ``ok``."""

    ok: bool
    rows: int
    first_bad_id: int | None
    reason: str


@dataclass(frozen=True)
class Problem:
    """One row that fails verification: where it is and what is wrong with it."""

    table: str
    key: str | None
    reason: str

    def __str__(self) -> str:
        where = self.table if self.key is None else f"{self.table} row {self.key}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class LedgerVerification:
    """Result of :func:`verify`: the chain, then every sealed row of every table.

    ``problems`` keeps the first :data:`MAX_PROBLEMS`; ``more_problems`` counts the rest.
    """

    chain: ChainReport
    rows_checked: int
    problems: tuple[Problem, ...]
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        """True when the chain is intact and every row matches its newest seal."""
        return self.chain.ok and not self.problems

    @property
    def problem_count(self) -> int:
        """How many problems were found in all."""
        return len(self.problems) + self.more_problems

    def bad_keys(self, table: str) -> frozenset[str]:
        """Keys of the rows of ``table`` that failed (among the problems kept)."""
        return frozenset(p.key for p in self.problems if p.table == table and p.key is not None)


# The audit columns in the order check_entry unpacks them (a tuple unpacks far faster than a
# Row's attributes are looked up by name, and verification does it for every entry).
_ENTRY_COLUMNS: Final = (
    audit_log.c.id,
    audit_log.c.at,
    audit_log.c.event,
    audit_log.c.data_json,
    audit_log.c.prev_hash,
    audit_log.c.row_table,
    audit_log.c.row_key,
    audit_log.c.row_hash,
    audit_log.c.hash,
)


def check_entry(row: Sequence[Any], prev_id: int, prev_hash: str) -> str | None:
    """Why this audit entry does not follow the previous one, or None if it does.

    ``row`` holds the :data:`_ENTRY_COLUMNS`, in that order.
    """
    row_id, at, event, data_json, stored_prev, row_table, row_key, row_hash, stored_hash = row
    if row_id != prev_id + 1:
        missing = f"{prev_id + 1}" if row_id == prev_id + 2 else f"{prev_id + 1}..{row_id - 1}"
        return f"audit row(s) {missing} are missing: deleted from the log"
    if stored_prev != prev_hash:
        return (
            f"audit row {row_id} does not follow row {prev_id} (prev_hash mismatch): rows were "
            "deleted, reordered or changed"
        )
    if row_table is None and row_key is None and row_hash is None:
        seal = None
    elif row_table is None or row_key is None or row_hash is None:
        return f"audit row {row_id} was changed after it was written (its row seal is incomplete)"
    else:
        seal = (str(row_table), str(row_key), str(row_hash))
    expected = audit_row_hash(row_id, at, event, data_json, stored_prev, seal)
    if stored_hash != expected:
        return f"audit row {row_id} was changed after it was written (hash mismatch)"
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


def verify_chain(conn: Connection) -> ChainReport:
    """Re-hash the whole audit log in id order and compare its end with the recorded head."""
    result = conn.execute(
        sa.select(*_ENTRY_COLUMNS)
        .order_by(audit_log.c.id)
        .execution_options(yield_per=_STREAM_BATCH)
    )
    rows = 0
    last_id, last_hash = 0, GENESIS_HASH
    for row in result:
        rows += 1
        problem = check_entry(row, last_id, last_hash)
        if problem is not None:
            result.close()
            return ChainReport(False, rows, row[0], problem)
        last_id, last_hash = row[0], row[-1]
    head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).one_or_none()
    return _check_head(head, rows, last_id, last_hash)


class _Collector:
    """Problems found so far, the first MAX_PROBLEMS kept and the rest counted."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.more = 0

    def add(self, table: str, key: str | None, reason: str) -> None:
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(Problem(table, key, reason))
        else:
            self.more += 1


def _newest_seal(table: sa.Table) -> sa.ScalarSelect[Any]:
    """The newest ``row_hash`` the chain holds for the outer row of ``table``."""
    key = primary_key(table)
    key_text = key if isinstance(key.type, sa.String) else sa.cast(key, sa.Text)
    return (
        sa.select(audit_log.c.row_hash)
        .where(audit_log.c.row_table == table.name, audit_log.c.row_key == key_text)
        .order_by(audit_log.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _check_table(conn: Connection, table: sa.Table, found: _Collector) -> int:
    """Stream one table in key order, comparing every row with its newest seal."""
    columns = [column.name for column in table.columns]
    key = primary_key(table)
    statement = (
        sa.select(table, _newest_seal(table).label("_posdiag_seal"))
        .order_by(key)
        .execution_options(yield_per=_STREAM_BATCH)
    )
    key_index = columns.index(key.name)
    checked = matched = 0
    for row in conn.execute(statement):
        checked += 1
        sealed = row[-1]
        actual = row_content_hash(table.name, dict(zip(columns, row, strict=False)))
        if sealed is not None and sealed == actual:
            matched += 1
            continue
        key_value = _key_text(row[key_index])
        if sealed is None:
            found.add(table.name, key_value, "not in the audit chain: added outside posdiag")
        elif sealed != actual:
            found.add(
                table.name, key_value, "changed after it was written (does not match its seal)"
            )
    sealed_rows = conn.execute(
        sa.select(sa.func.count(sa.distinct(audit_log.c.row_key))).where(
            audit_log.c.row_table == table.name
        )
    ).scalar_one()
    if sealed_rows > matched:
        _name_missing(conn, table, found, checked)
    return checked


def _name_missing(conn: Connection, table: sa.Table, found: _Collector, present: int) -> None:
    """Name the sealed rows that are gone; only run when the counts say some are."""
    key = primary_key(table)
    integer_key = not isinstance(key.type, sa.String)
    keys = conn.execute(
        sa.select(audit_log.c.row_key)
        .where(audit_log.c.row_table == table.name)
        .distinct()
        .order_by(audit_log.c.row_key)
        .execution_options(yield_per=_STREAM_BATCH)
    )
    for (text,) in keys:
        if integer_key:
            if not (isinstance(text, str) and text.isascii() and text.lstrip("-").isdigit()):
                found.add(table.name, str(text), "the chain names a row key that cannot exist")
                continue
            lookup: Any = int(text)
        else:
            lookup = text
        exists = conn.execute(sa.select(key).where(key == lookup)).first()
        if exists is None:
            found.add(table.name, str(text), "deleted: the chain holds it but the table does not")


def verify(conn: Connection) -> LedgerVerification:
    """Check the audit chain, then every row of every sealed table against its newest seal.

    Runs in the caller's read transaction (one snapshot, so writers meanwhile cause no false
    alarm). A broken chain is reported together with the rows, since a row problem tells the
    operator which record to distrust.
    """
    chain = verify_chain(conn)
    found = _Collector()
    checked = 0
    for table in SEALED_TABLES:
        checked += _check_table(conn, table, found)
    return LedgerVerification(chain, checked, tuple(found.kept), found.more)
