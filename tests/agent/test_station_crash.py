"""A station SIGKILLed mid-batch loses nothing it reported, and its restart finishes the batch.

Four terminals run in separate ``posdiag simulate`` processes (they outlive the station, like
terminals on a rack). The ZVT ones answer slowly, so the station is killed while their wipes
are inside a step and after the Android ones finished. Then ``posdiag station --batch ID``
continues the batch: the interrupted wipes resume (their done steps checked, not repeated), the
finished ones are not wiped again, and the ledger, the certificates and the manifest hold each
terminal exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from posdiag.agent.ledger import Ledger, RunStatus, sqlite_url

pytestmark = pytest.mark.usefixtures("isolated_home")


def _posdiag() -> list[str]:
    script = Path(sys.executable).with_name("posdiag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "posdiag.agent"]


@pytest.fixture
def simulators() -> Iterator[Callable[..., str]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        proc = subprocess.Popen(
            [*_posdiag(), "simulate", *args, "--tcp", "127.0.0.1:0", "--time-scale", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
        )
        started.append(proc)
        assert proc.stdout is not None
        return proc.stdout.readline().strip()

    yield start
    for proc in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        ) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []


def test_sigkill_mid_batch_then_restart(tmp_path: Path, simulators: Callable[..., str]) -> None:
    slow = ("--fault", "answer_delay=0.12")
    addresses = [
        simulators("zvt", "--scenario", "activated", "--serial", "5A000101", *slow),
        simulators("zvt", "--scenario", "no-network", "--serial", "5A000102", *slow),
        simulators("adb", "--scenario", "activated", "--model", "sunmi-p2"),
        simulators("adb", "--scenario", "fresh", "--model", "pax-a920"),
    ]
    db = tmp_path / "ledger.sqlite3"
    out = tmp_path / "certificates"
    common = [
        "--mode", "wipe", "--yes", "--operator", "Jana", "--max-parallel", "4",
        "--ledger", sqlite_url(db), "--out", str(out),
    ]
    victim = subprocess.Popen(
        [*_posdiag(), "station", *addresses, *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            finished = _query(db, "SELECT count(*) FROM wipe_runs WHERE status = 'finished'")
            zvt_steps = _query(
                db,
                "SELECT count(*) FROM wipe_steps s JOIN wipe_runs r ON r.id = s.run_id "
                "JOIN devices d ON d.id = r.device_id "
                "WHERE d.family = 'zvt' AND s.status IN ('done', 'started')",
            )
            if finished and finished[0][0] >= 2 and zvt_steps and zvt_steps[0][0] >= 2:
                break
            assert victim.poll() is None, "the station ended before it could be killed"
            assert time.monotonic() < deadline, "the batch never got going"
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        reported, _ = victim.communicate(timeout=10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
    assert victim.returncode == -signal.SIGKILL

    # Nothing the station reported as done is missing from the ledger.
    events = [json.loads(line) for line in reported.splitlines() if line.startswith("{")]
    done = {e["serial"]: e["verdict_or_outcome"] for e in events if e["stage"] == "done"}
    with Ledger(sqlite_url(db)) as ledger:
        runs = ledger.runs(limit=100)
        assert ledger.verify_chain().ok
    recorded = {r.serial: r for r in runs}
    for serial, outcome in done.items():
        assert recorded[serial].status is RunStatus.FINISHED
        assert recorded[serial].outcome == outcome
    interrupted = [r for r in runs if r.status is RunStatus.RUNNING]
    assert interrupted, "the kill came after every wipe had finished"
    batch = interrupted[0].options["batch"]
    assert {r.options.get("batch") for r in runs} == {batch}

    again = subprocess.run(
        [*_posdiag(), "station", *addresses, *common, "--batch", batch, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    summary = json.loads(again.stdout.splitlines()[-1])
    assert summary["batch"] == batch
    assert summary["terminals"] == 4
    by_serial = {r["serial"]: r for r in summary["results"]}
    for run in runs:
        if run.status is RunStatus.FINISHED and run.outcome in ("erased", "erased_with_exceptions"):
            assert "not wiped again" in " ".join(by_serial[run.serial]["reasons"])
    for run in interrupted:
        assert by_serial[run.serial]["verdict_or_outcome"] in ("erased", "erased_with_exceptions")

    with Ledger(sqlite_url(db)) as ledger:
        final = ledger.runs(limit=100)
        assert ledger.verify_chain().ok
        audit = _query(db, "SELECT event FROM audit_log")
    assert not [r for r in final if r.status is RunStatus.RUNNING]
    serials = [r.serial for r in final if not r.options.get("refused")]
    assert sorted(serials) == sorted(set(serials)), "a terminal was wiped twice"
    assert {r.id for r in interrupted} <= {r.id for r in final}  # resumed, not restarted
    assert sum(1 for (event,) in audit if event == "wipe.resumed") >= len(interrupted)
    for run in final:
        names = [s.name for s in run.steps if s.status in ("done", "verified")]
        assert len(names) == len(set(names)), f"a step of run {run.id} was recorded done twice"
    wiped = [r for r in final if r.outcome in ("erased", "erased_with_exceptions")]
    assert len(list(out.glob("*.json"))) == len(wiped)

    manifest = subprocess.run(
        [*_posdiag(), "report", "--ledger", sqlite_url(db), "--batch", batch, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ.copy(),
    )
    assert manifest.returncode == 0, manifest.stderr
    rows = json.loads(manifest.stdout)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert sorted(r["serial"] for r in rows) == sorted(by_serial)
