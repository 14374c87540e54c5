"""Group commit: one writer per process and ledger, many records per transaction, none lost.

The station runs up to 256 workers per process, each with its own Ledger; their writes share
one engine and one writer thread that commits them in groups (``posdiag.agent.ledger.group``).
These tests hold that design to its promises: every write of many threads lands and chains; a
failing write costs only itself; a write call that returned survives SIGKILL; several processes
share one SQLite ledger fairly, and a writer kept from the lock gives up after its busy timeout
with the readable error rather than hanging.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.ledger import Ledger, LedgerError, StepStatus, sqlite_url
from posdiag.agent.ledger.chain import WriteTx

CHILD_TIMEOUT = 120.0
THREADS = 64
STEPS = ("end_of_day", "logoff", "reset", "verify")


@pytest.fixture(autouse=True)
def _private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def url(db_path: Path) -> str:
    url = sqlite_url(db_path)
    Ledger(url).close()
    return url


def count(db_path: Path, sql: str, *args: Any) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def run_threads(target: Any, threads: int) -> list[BaseException]:
    """Run ``target(index)`` in ``threads`` threads released together; the errors they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def body(index: int) -> None:
        start.wait()
        try:
            target(index)
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=body, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(CHILD_TIMEOUT)
    return errors


def wipe(url: str, index: int) -> None:
    """What a station worker writes for one wipe, with a Ledger of its own as the station has."""
    with Ledger(url) as ledger:
        device = ledger.record_device("zvt", f"SN{index:05d}")
        ledger.record_inspection(device, "zvt+tcp://x", {"verdict": {"status": "wipe_required"}})
        run = ledger.start_wipe_run(device, "zvt+tcp://x", "Jana", {"batch": "B"})
        for step in STEPS:
            ledger.step_started(run, step)
            ledger.step_finished(run, step, StepStatus.DONE, "ok")
        ledger.finish_wipe_run(run, "erased", [])


# -- many threads, one writer ------------------------------------------------------------------


def test_many_threads_all_recorded_in_shared_groups(url: str, db_path: Path) -> None:
    with Ledger(url) as keeper:  # keeps the process's database (and its counters) open
        writer = keeper._db.group()
        errors = run_threads(lambda index: wipe(url, index), THREADS)
        assert errors == []
        records = THREADS * (3 + 2 * len(STEPS) + 1)
        assert writer.records == records
        # group commit at work: far fewer transactions than records
        assert writer.groups < records / 2, (writer.groups, records)
        result = keeper.verify()
        assert result.ok, result.problems[:3]
        assert keeper.engine is Ledger(url).engine  # one engine per process and URL
    assert count(db_path, "SELECT count(*) FROM wipe_runs WHERE status = 'finished'") == THREADS
    assert count(db_path, "SELECT count(*) FROM wipe_steps WHERE status = 'done'") == 4 * THREADS
    assert count(db_path, "SELECT count(DISTINCT id) FROM audit_log") == count(
        db_path, "SELECT row_count FROM audit_head"
    )


def test_256_threads_never_meet_a_lock_failure(url: str) -> None:
    def write(index: int) -> None:
        with Ledger(url, busy_timeout=30) as ledger:
            for n in range(5):
                ledger.audit("station.step", worker=index, n=n)

    assert run_threads(write, 256) == []
    with Ledger(url) as ledger:
        chain = ledger.verify_chain()
    assert chain.ok and chain.rows == 1 + 256 * 5


def test_a_failing_write_costs_only_itself(url: str, db_path: Path) -> None:
    """The writes queued behind a blocked group commit together; a refused one among them gets
    its own error and leaves no trace, the others land, and the chain stays whole."""
    with Ledger(url) as ledger:
        device = ledger.record_device("zvt", "SN1")
        finished = ledger.start_wipe_run(device, "tcp://x", "Jana", {})
        ledger.finish_wipe_run(finished, "aborted", ["test"])
        writer = ledger._db.group()
        release = threading.Event()
        inside = threading.Event()

        def block(tx: WriteTx) -> None:
            inside.set()
            release.wait(CHILD_TIMEOUT)
            tx.audit("blocker", {})

        blocker = threading.Thread(target=lambda: ledger._write(block))
        blocker.start()
        assert inside.wait(CHILD_TIMEOUT)
        groups_before = writer.groups
        outcomes: dict[int, str] = {}

        def write(index: int) -> None:
            try:
                if index % 5 == 0:  # refused: the run is finished
                    ledger.step_started(finished, f"late{index}")
                else:
                    ledger.audit("queued", index=index)
                outcomes[index] = "ok"
            except LedgerError as error:
                outcomes[index] = str(error)

        pool = [threading.Thread(target=write, args=(n,)) for n in range(20)]
        for thread in pool:
            thread.start()
        deadline = time.monotonic() + CHILD_TIMEOUT
        while len(writer._queue) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        blocker.join(CHILD_TIMEOUT)
        for thread in pool:
            thread.join(CHILD_TIMEOUT)
        assert writer.groups - groups_before == 2  # the blocker's group, then all 20 at once
        refused = {n for n, outcome in outcomes.items() if outcome != "ok"}
        assert refused == {0, 5, 10, 15}
        assert all("already finished" in outcomes[n] for n in refused)
        assert ledger.verify().ok
    assert count(db_path, "SELECT count(*) FROM audit_log WHERE event = 'queued'") == 16
    assert count(db_path, "SELECT count(*) FROM wipe_steps") == 0


# -- SIGKILL: acknowledged means on disk ---------------------------------------------------------

ACKNOWLEDGING_CHILD = """
import sys, threading
from posdiag.agent.ledger import Ledger

url, threads = sys.argv[1], int(sys.argv[2])
out = threading.Lock()

def worker(who):
    with Ledger(url) as ledger:
        n = 0
        while True:
            ledger.audit("ack", who=who, n=n)
            with out:  # only after the write call returned
                sys.stdout.write(f"{who} {n}\\n")
                sys.stdout.flush()
            n += 1

for who in range(threads):
    threading.Thread(target=worker, args=(who,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_while_writers_wait_loses_no_acknowledged_write(url: str, db_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", ACKNOWLEDGING_CHILD, url, str(THREADS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[tuple[int, int]] = []
    try:
        assert process.stdout is not None
        while len(acknowledged) < 1500:
            line = process.stdout.readline()
            if not line:
                process.wait(CHILD_TIMEOUT)
                pytest.fail(f"child ended early: {process.stderr.read() if process.stderr else ''}")
            who, n = line.split()
            acknowledged.append((int(who), int(n)))
        process.send_signal(signal.SIGKILL)  # mid-stream: groups being gathered and committed
        process.wait(CHILD_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(CHILD_TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == -signal.SIGKILL
    with sqlite3.connect(db_path) as conn:
        stored = {
            (int(who), int(n))
            for who, n in conn.execute(
                "SELECT json_extract(data_json, '$.who'), json_extract(data_json, '$.n') "
                "FROM audit_log WHERE event = 'ack'"
            )
        }
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    missing = [ack for ack in acknowledged if ack not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    with Ledger(url) as ledger:
        assert ledger.verify().ok
        ledger.audit("after.kill")  # and the ledger takes writes again


# -- several processes on one SQLite ledger -------------------------------------------------------

WRITING_CHILD = """
import sys, threading
from posdiag.agent.ledger import Ledger, LedgerError

url, tag, threads, per_thread = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
failures = []

def worker(who):
    for n in range(per_thread):
        try:
            with Ledger(url, busy_timeout=30) as ledger:
                device = ledger.record_device("zvt", f"{tag}-{who}-{n}")
                ledger.record_inspection(device, "tcp://x", {"verdict": {"status": "ready"}})
        except LedgerError as error:
            failures.append(str(error))

pool = [threading.Thread(target=worker, args=(who,)) for who in range(threads)]
for thread in pool:
    thread.start()
for thread in pool:
    thread.join()
print(len(failures), failures[:2])
sys.exit(1 if failures else 0)
"""


def test_processes_share_one_sqlite_ledger(url: str, db_path: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITING_CHILD, url, f"P{n}", "32", "10"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    results = [process.communicate(timeout=CHILD_TIMEOUT) for process in processes]
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, (out, err[-2000:])
    assert count(db_path, "SELECT count(*) FROM devices") == 3 * 32 * 10
    assert count(db_path, "SELECT count(*) FROM inspections") == 3 * 32 * 10
    with Ledger(url) as ledger:
        result = ledger.verify()
    assert result.ok, result.problems[:3]
    assert result.chain.rows == 1 + 2 * 3 * 32 * 10


HOLDING_CHILD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(120)
"""


def test_a_writer_kept_from_the_gate_gives_up_after_busy_timeout(url: str, db_path: Path) -> None:
    """Another process holding the writers' gate (stuck): the wait is bounded and says why."""
    gate = db_path.with_name(f".{db_path.name}.locks") / "writer-gate"
    gate.parent.mkdir(mode=0o700, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDING_CHILD, str(gate)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with Ledger(url, busy_timeout=0.3) as ledger:
            started = time.monotonic()
            with pytest.raises(LedgerError, match="locked by another posdiag process"):
                ledger.audit("blocked")
            assert time.monotonic() - started < 5
            holder.send_signal(signal.SIGKILL)  # the kernel frees a dead holder's lock
            holder.wait(CHILD_TIMEOUT)
            ledger.audit("unblocked")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(CHILD_TIMEOUT)
        if holder.stdout is not None:
            holder.stdout.close()
    assert count(db_path, "SELECT count(*) FROM audit_log WHERE event = 'unblocked'") == 1
    assert count(db_path, "SELECT count(*) FROM audit_log WHERE event = 'blocked'") == 0


GREEDY_CHILD = """
import sys, time
from pathlib import Path
from posdiag.agent.ledger.group import FairGate

gate = FairGate(Path(sys.argv[1]))
print("go", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    with gate.hold(30):
        time.sleep(0.005)  # a group commit, then straight back for the next one
"""


def test_the_gate_is_handed_over_to_a_waiting_process(tmp_path: Path) -> None:
    """A process that takes the gate back-to-back cannot starve another waiting for it."""
    from posdiag.agent.ledger.group import FairGate

    folder = tmp_path / "locks"
    greedy = [
        subprocess.Popen(
            [sys.executable, "-c", GREEDY_CHILD, str(folder), "6"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for process in greedy:
            assert process.stdout is not None and process.stdout.readline().strip() == "go"
        time.sleep(0.3)
        gate = FairGate(folder)
        waits = []
        for _ in range(20):
            started = time.monotonic()
            with gate.hold(1.0):  # raises "locked" if the others kept it for a second
                waits.append(time.monotonic() - started)
        assert max(waits) < 0.5, waits
    finally:
        for process in greedy:
            process.wait(CHILD_TIMEOUT)
            if process.stdout is not None:
                process.stdout.close()
        assert all(process.returncode == 0 for process in greedy)


# -- the shared engine ---------------------------------------------------------------------------


@pytest.fixture
def two(url: str) -> Iterator[tuple[Ledger, Ledger]]:
    first, second = Ledger(url), Ledger(url)
    yield first, second
    first.close()
    second.close()


def test_ledgers_of_one_process_share_the_engine_but_close_alone(
    two: tuple[Ledger, Ledger],
) -> None:
    first, second = two
    assert first.engine is second.engine
    first.close()
    with pytest.raises(LedgerError, match="closed"):
        first.audit("late")
    second.audit("still open")  # the other's close does not close the shared database
    assert second.verify_chain().ok


def test_the_last_close_stops_the_writer_and_a_new_ledger_starts_it(url: str) -> None:
    with Ledger(url) as ledger:
        ledger.audit("one")
        db = ledger._db
        thread = db.group()._thread
        assert thread is not None and thread.is_alive()
    thread.join(5)
    assert not thread.is_alive()
    with Ledger(url) as again:
        again.audit("two")
        assert again.verify_chain().rows == 3
