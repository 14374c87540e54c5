"""Verification of the ledger: the audit chain re-hashed, every sealed row against its seal.

The hashes are defined in :mod:`.chain`. Verification is one streaming pass in one read
snapshot: the log in id order, then each sealed table in key order with its newest seal looked
up through an index. Memory stays constant however large the ledger grows, and the pass is fast
because ``report`` and the station run it before they trust a row: rows come as plain tuples from
the driver's cursor in large batches (:func:`.fast.stream`), the canonical texts are spelt out
by :func:`.chain.audit_text` and :class:`.chain.RowEncoder`, and the common case (an entry that
follows, a row that matches) costs one comparison; only a failing entry or row goes through the
slow path that words the problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from .chain import (
    GENESIS_HASH,
    RowEncoder,
    audit_row_hash,
    audit_text,
    key_text,
)
from .fast import stream
from .schema import SEALED_TABLES, audit_head, audit_log, primary_key

__all__ = [
    "MAX_PROBLEMS",
    "ChainReport",
    "LedgerVerification",
    "Problem",
    "check_entry",
    "verify",
    "verify_chain",
]

MAX_PROBLEMS: Final = 1000
"""Problems kept in a verification result; past this only a count, so memory stays bounded."""


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


_CHAIN_SELECT: Final = sa.select(*_ENTRY_COLUMNS).order_by(audit_log.c.id)


def verify_chain(conn: Connection) -> ChainReport:
    """Re-hash the whole audit log in id order and compare its end with the recorded head."""
    rows = 0
    last_id, last_hash = 0, GENESIS_HASH
    sha256 = hashlib.sha256
    entries = stream(conn, _CHAIN_SELECT)
    try:
        for row in entries:
            rows += 1
            row_id, at, event, data_json, prev, table, key, row_hash, stored = row
            # the common case inline; anything unexpected is worded by check_entry
            if row_id == last_id + 1 and prev == last_hash:
                if table is None and key is None and row_hash is None:
                    text = audit_text(row_id, at, event, data_json, prev, None)
                elif type(table) is str and type(key) is str and type(row_hash) is str:
                    text = audit_text(row_id, at, event, data_json, prev, (table, key, row_hash))
                else:
                    text = None
                if (
                    text is not None
                    and sha256(text.encode("utf-8", "surrogatepass")).hexdigest() == stored
                ):
                    last_id, last_hash = row_id, stored
                    continue
            problem = check_entry(row, last_id, last_hash)
            if problem is not None:
                return ChainReport(False, rows, row_id, problem)
            last_id, last_hash = row_id, stored
    finally:
        entries.close()
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
    statement = sa.select(table, _newest_seal(table).label("_posdiag_seal")).order_by(key)
    key_index = columns.index(key.name)
    encoder = RowEncoder(table.name, columns)
    text_of = encoder.text
    sha256 = hashlib.sha256
    checked = matched = 0
    rows = stream(conn, statement)
    try:
        for row in rows:
            checked += 1
            sealed = row[-1]
            actual = sha256(text_of(row).encode("utf-8", "surrogatepass")).hexdigest()
            if sealed is not None and sealed == actual:
                matched += 1
                continue
            key_value = key_text(row[key_index])
            if sealed is None:
                found.add(table.name, key_value, "not in the audit chain: added outside posdiag")
            else:
                found.add(
                    table.name, key_value, "changed after it was written (does not match its seal)"
                )
    finally:
        rows.close()
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
        .execution_options(yield_per=1000)
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
