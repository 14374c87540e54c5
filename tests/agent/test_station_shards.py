"""A station's terminals worked by several processes: the same results, one live view, no loss.

The children are real ``python -m posdiag.agent.station_shards`` processes over simulated
terminals; the parent relays their updates and gathers their results. What one process would
have done is the reference: verdicts, ledger records, certificates.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.certificate import verify_certificate
from posdiag.agent.ledger import Ledger, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.station import SlotResult, Station, simulated_fleet
from posdiag.agent.station_shards import (
    SLOTS_PER_PROCESS,
    process_count,
    shardable,
    slot_from_json,
)
from posdiag.drivers.model import CheckScope


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "ledger.sqlite3")


def make(mode: str = "check", **kwargs: Any) -> Station:
    if mode == "wipe":
        kwargs.setdefault("operator", "Dana Depot")
        kwargs.setdefault("assume_yes", True)
    return Station(mode, load_policy(None), **kwargs)


def shard_children() -> list[int]:
    """Process ids of this process's station children (read from /proc)."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == os.getpid() and b"station_shards" in cmdline:
            children.append(int(entry))
    return children


def test_process_count_follows_the_measured_slots_per_process() -> None:
    assert process_count(1, "check", cores=2) == 1
    assert process_count(SLOTS_PER_PROCESS["check"], "check", cores=2) == 1
    assert process_count(SLOTS_PER_PROCESS["check"] + 1, "check", cores=2) == 2
    assert process_count(SLOTS_PER_PROCESS["wipe"], "wipe", cores=2) == 1
    assert process_count(SLOTS_PER_PROCESS["wipe"] + 1, "wipe", cores=2) == 2
    assert process_count(10_000, "wipe", cores=2) == 2  # never more than the cores
    assert process_count(10_000, "wipe", cores=8) == 8


def test_what_lives_in_this_process_is_not_sharded() -> None:
    fleet = simulated_fleet(4)
    assert shardable(make(), fleet)
    assert not shardable(make(), [*fleet, "zvt+sim://fresh?bus=abcd"])
    assert not shardable(make(ask_settled=lambda *a: None), fleet)
    assert not shardable(make(opener=lambda *a, **k: None), fleet)


def test_slot_updates_survive_the_pipe() -> None:
    slot = SlotResult(
        "zvt+sim://x",
        "zvt",
        model="M",
        serial="S",
        stage="wiping",
        reasons=("r\x1b[31m",),
        steps_done=2,
        steps_total=4,
    )
    back = slot_from_json(slot.to_json())
    assert back == slot.cleaned()
    assert "\x1b" not in back.reasons[0]


def test_a_sharded_check_gives_what_one_process_gives(ledger_url: str, tmp_path: Path) -> None:
    fleet = simulated_fleet(12)
    single = make(ledger_url=sqlite_url(tmp_path / "one.sqlite3"), processes=1).run(fleet)
    events: list[SlotResult] = []
    sharded = make(ledger_url=ledger_url, processes=2, on_event=events.append).run(fleet)
    assert [r.address for r in sharded] == fleet
    assert [(r.serial, r.verdict_or_outcome, r.reasons) for r in sharded] == [
        (r.serial, r.verdict_or_outcome, r.reasons) for r in single
    ]
    # every terminal's updates reached the one live view, ending with its result
    for result in sharded:
        mine = [e for e in events if e.address == result.address]
        assert [e.stage for e in mine][-1] == "done"
        assert "inspecting" in [e.stage for e in mine]
    with Ledger(ledger_url) as ledger:
        assert len(ledger.inspections(limit=100)) == len(fleet)
        assert ledger.verify_chain().ok


def test_a_sharded_quick_check_keeps_its_scope(ledger_url: str) -> None:
    fleet = ["zvt+sim://fresh?serial=5B000100", "zvt+sim://tampered?serial=5B000101"]
    results = make(
        ledger_url=ledger_url, processes=2, scope=CheckScope(quick=True, host_dialup=False)
    ).run(fleet)
    assert [r.verdict_or_outcome for r in results] == ["ready", "quarantine"]
    assert "quick check" in results[0].reasons[0]


def test_sharded_wipes_certify_every_terminal_once(ledger_url: str, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    fleet = [f"zvt+sim://activated?serial=5B0002{i:02d}" for i in range(4)] + [
        f"adb+sim://activated?model=pax-a920&serial=SIMF0000020{i}" for i in range(4)
    ]
    station = make("wipe", ledger_url=ledger_url, out_dir=out, processes=2)
    results = station.run(fleet)
    assert {r.verdict_or_outcome for r in results} <= {"erased", "erased_with_exceptions"}
    assert len(results) == len(fleet)
    certificates = sorted(out.glob("*.json"))
    assert len(certificates) == len(fleet)
    for path in certificates:
        assert verify_certificate(path.read_bytes()).ok
    for result in results:
        assert result.certificate and Path(result.certificate).exists()
    with Ledger(ledger_url) as ledger:
        assert ledger.verify_chain().ok
        runs = ledger.runs(limit=100)
    assert len(runs) == len(fleet)
    assert {run.options.get("batch") for run in runs} == {station.batch}  # one batch for all


def test_a_child_killed_leaves_its_terminals_failed_and_the_others_done(
    ledger_url: str,
) -> None:
    fleet = [f"zvt+sim://activated?serial=5B0003{i:02d}&time_scale=0.5" for i in range(4)]
    killed = threading.Event()

    def kill_one(update: SlotResult) -> None:
        if update.stage == "inspecting" and not killed.is_set():
            children = shard_children()
            if children:
                killed.set()
                os.kill(children[0], signal.SIGKILL)

    results = make(ledger_url=ledger_url, processes=2, on_event=kill_one).run(fleet)
    assert killed.is_set()
    assert len(results) == len(fleet)
    failed = [r for r in results if r.stage == "failed"]
    assert failed, results
    for result in failed:
        assert result.verdict_or_outcome == "unreachable"
        assert "stopped unexpectedly" in result.reasons[0]
    assert [r for r in results if r.stage == "done"], results
    with Ledger(ledger_url) as ledger:
        assert ledger.verify_chain().ok


def test_stopping_the_parent_stops_the_children(ledger_url: str) -> None:
    fleet = [f"zvt+sim://activated?serial=5B0004{i:02d}&time_scale=1" for i in range(4)]
    station = make(ledger_url=ledger_url, processes=2)

    def stop_soon(update: SlotResult) -> None:
        if update.stage == "inspecting":
            station.stop_event.set()

    station.on_event = stop_soon
    results = station.run(fleet)
    assert len(results) == len(fleet)
    assert shard_children() == []


def test_a_large_station_lifts_its_open_file_limit() -> None:
    import resource

    from posdiag.agent.station_shards import FILES_PER_SLOT, raise_open_file_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"hard limit {hard} too low to test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        raise_open_file_limit(256)
        lifted = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert lifted >= 256 * FILES_PER_SLOT
        raise_open_file_limit(1)  # never lowers it
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == lifted
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
