"""Verification and the manifest stream: fast paths give the documented text, memory stays flat.

``verify --ledger`` spells the canonical texts itself (``chain.audit_text``, ``RowEncoder``)
instead of running json's encoder per row, and reads plain tuples in batches; ``report`` writes
its rows as it reads them. The texts must be exactly what the chain's documentation defines
(the encoders are the reference), and neither command may hold the ledger in memory.
"""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.agent import cli
from posdiag.agent.ledger import Ledger, sqlite_url
from posdiag.agent.ledger.chain import (
    _AUDIT_ENCODER,
    _ROW_ENCODER,
    AUDIT_HASH_DOMAIN,
    ROW_HASH_DOMAIN,
    SEALED_AUDIT_HASH_DOMAIN,
    RowEncoder,
    audit_text,
)
from posdiag.agent.manifest import (
    CHECK_COLUMNS,
    check_rows,
    iter_check_rows,
    json_chunks,
    to_csv,
)

TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
VALUE = st.one_of(
    st.none(),
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**63),
    st.booleans(),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
)


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))


# -- the canonical texts ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    columns=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8, unique=True),
    data=st.data(),
)
def test_row_text_is_the_encoders_text(columns: list[str], data: st.DataObject) -> None:
    row = data.draw(st.lists(VALUE, min_size=len(columns), max_size=len(columns)))
    content = {name: value for name, value in zip(columns, row, strict=True) if value is not None}
    expected = _ROW_ENCODER.encode([ROW_HASH_DOMAIN, "t", content])
    assert RowEncoder("t", columns).text([*row, "the seal column is ignored"]) == expected


@settings(max_examples=300, deadline=None)
@given(
    row_id=st.one_of(st.integers(min_value=0, max_value=2**62), st.booleans(), st.floats()),
    fields=st.lists(TEXT, min_size=4, max_size=4),
    seal=st.one_of(st.none(), st.tuples(TEXT, TEXT, TEXT)),
)
def test_audit_text_is_the_encoders_text(
    row_id: Any, fields: list[str], seal: tuple[str, str, str] | None
) -> None:
    head = AUDIT_HASH_DOMAIN if seal is None else SEALED_AUDIT_HASH_DOMAIN
    expected = _AUDIT_ENCODER.encode([head, row_id, *fields, *(seal or ())])
    assert audit_text(row_id, *fields, seal) == expected


# -- constant memory -----------------------------------------------------------------------------


def ledger_with_checks(folder: Path, checks: int) -> str:
    """A ledger of ``checks`` inspections, written from 32 threads (group commit keeps it quick)."""
    url = sqlite_url(folder / f"checks-{checks}.sqlite3")
    with Ledger(url) as ledger:
        device = ledger.record_device("zvt", "SN-STREAM", vendor="Feig", model="cVEND")
        report = {"verdict": {"status": "ready"}, "padding": "x" * 400}
        share = iter(range(checks))
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    index = next(share, None)
                if index is None:
                    return
                ledger.record_inspection(device, f"zvt+tcp://10.0.0.{index % 250}", report, "op")

        pool = [threading.Thread(target=worker) for _ in range(32)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    return url


def peak(work: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def small_and_large(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("streaming")
    return ledger_with_checks(folder, 1500), ledger_with_checks(folder, 6000)


def test_verify_memory_does_not_grow_with_the_ledger(small_and_large: tuple[str, str]) -> None:
    peaks = []
    for url in small_and_large:
        with Ledger(url) as ledger:
            ledger.verify()  # compile and warm up outside the measurement
            peaks.append(peak(lambda ledger=ledger: ledger.verify()))
    assert peaks[1] < 2 * peaks[0], peaks  # four times the rows: a list would be ~4x


def test_manifest_rows_stream_in_constant_memory(small_and_large: tuple[str, str]) -> None:
    peaks = []
    for url in small_and_large:
        with Ledger(url) as ledger:
            verification = ledger.verify()

            def write_all(ledger: Ledger = ledger, found: Any = verification) -> None:
                for _chunk in json_chunks(iter_check_rows(ledger, verification=found)):
                    pass

            write_all()
            peaks.append(peak(write_all))
    assert peaks[1] < 2 * peaks[0], peaks


def test_streamed_report_is_the_listed_report(small_and_large: tuple[str, str]) -> None:
    url = small_and_large[0]
    with Ledger(url) as ledger:
        rows = check_rows(ledger, verification=ledger.verify())
    assert len(rows) == 1500
    runner = CliRunner()
    as_csv = runner.invoke(
        cli.main, ["report", "--ledger", url, "--kind", "checks", "--header", "ids"]
    )
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.stdout_bytes == to_csv(rows, CHECK_COLUMNS).encode("utf-8")
    as_json = runner.invoke(
        cli.main, ["report", "--ledger", url, "--kind", "checks", "--format", "json"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert as_json.stdout == json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
