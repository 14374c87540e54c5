"""The nexo event log: per-terminal, private, bounded, alarms kept longest, never crashes."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from posdiag.drivers.nexo import event_log as module
from posdiag.drivers.nexo.event_log import (
    MAX_PER_TERMINAL,
    NexoEventLog,
    RecordedEvent,
    alarm_sentences,
    default_event_log_dir,
)
from posdiag.drivers.nexo.failures import NexoConfigError
from posdiag.drivers.nexo.readers import Event

POIID = "V400m-324688179"
ALARM = Event("SecurityAlarm", "2027-01-15T09:02:35.697Z", {"message": "Tamper detected"}, True)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def event(kind: str, n: int, **details: str) -> Event:
    return Event(kind, f"2027-01-15T09:{n // 60:02d}:{n % 60:02d}Z", dict(details))


def test_an_event_is_recorded_and_read_back_newest_first(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path / "events", clock=Clock())
    first = log.record(POIID, event("Initialised", 1))
    second = log.record(POIID, ALARM, encrypted=True)
    assert first is not None and second is not None
    assert second.received_at > first.received_at
    everything = NexoEventLog(tmp_path / "events").recent(POIID)  # another process, same folder
    assert [e.kind for e in everything] == ["SecurityAlarm", "Initialised"]
    alarm = everything[0]
    assert alarm == RecordedEvent(
        POIID,
        "SecurityAlarm",
        "2027-01-15T09:02:35.697Z",
        second.received_at,
        (("message", "Tamper detected"),),
        True,
        True,
    )
    assert log.recent(POIID, ("SecurityAlarm",)) == [alarm]
    assert log.recent(POIID, ("OutOfOrder",)) == []
    assert log.recent(POIID, since=second.received_at) == [alarm]
    assert log.recent("P400Plus-275008565") == []


def test_the_same_event_twice_is_kept_once(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=Clock())
    assert log.record(POIID, ALARM, encrypted=True) is not None
    assert log.record(POIID, ALARM, encrypted=True) is None  # a replay, or a second URL
    assert len(log.recent(POIID)) == 1


def test_files_are_private_in_a_private_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "posdiag" / "nexo-events"
    old = os.umask(0o022)
    try:
        NexoEventLog(folder).record(POIID, ALARM)
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / POIID).stat().st_mode) == 0o600
    # a folder someone made by hand with the umask's 755 is closed on the next write
    folder.chmod(0o755)
    NexoEventLog(folder).record(POIID, event("Initialised", 2))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_default_folder_follows_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_event_log_dir() == tmp_path / "posdiag" / "nexo-events"
    assert NexoEventLog().folder == tmp_path / "posdiag" / "nexo-events"


def test_a_terminal_keeps_its_newest_events_and_its_alarms(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=Clock())
    log.record(POIID, ALARM, encrypted=True)
    for n in range(MAX_PER_TERMINAL + 50):  # a chatty terminal (or a flood of clear events)
        log.record(POIID, event("KeyPressed", n))
    kept = log.recent(POIID)
    assert len(kept) == MAX_PER_TERMINAL
    assert log.recent(POIID, ("SecurityAlarm",))[0].kind == "SecurityAlarm"  # not pushed out
    assert kept[0].timestamp == event("KeyPressed", MAX_PER_TERMINAL + 49).timestamp
    # only alarms left to drop: the oldest alarms go, the newest stay
    for n in range(MAX_PER_TERMINAL + 5):
        log.record(POIID, event("SecurityAlarm", n))
    alarms = log.recent(POIID, ("SecurityAlarm",))
    assert len(alarms) == MAX_PER_TERMINAL
    assert alarms[0].timestamp == event("SecurityAlarm", MAX_PER_TERMINAL + 4).timestamp


def test_the_number_of_terminals_is_bounded_alarms_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "MAX_TERMINALS", 4)
    log = NexoEventLog(tmp_path, clock=Clock())
    log.record("V400m-1", ALARM)  # the oldest file, but it holds an alarm
    for n in range(2, 8):
        poiid = f"V400m-{n}"
        log.record(poiid, event("Initialised", n))
        os.utime(tmp_path / poiid, (1_000 + n, 1_000 + n))
    os.utime(tmp_path / "V400m-1", (1, 1))
    log.record("V400m-99", event("Initialised", 99))
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert len(names) == 4
    assert "V400m-1" in names and "V400m-99" in names
    assert log.recent("V400m-1", ("SecurityAlarm",))


def test_a_corrupt_file_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=Clock())
    log.record(POIID, ALARM, encrypted=True)
    path = tmp_path / POIID
    good = path.read_bytes()
    path.write_bytes(
        b"not json\n\xff\xfe\x00garbage\n"
        + b'{"kind": 5}\n[1,2]\n'
        + b'{"received_at": true, "kind": "SecurityAlarm", "timestamp": "x", "encrypted": true}\n'
        + b"[" * 100_000 + b"\n"
        + good
        + b'{"received_at": 1, "kind": "Shutdown", "timestamp": "t", "encr'  # cut by a crash
    )
    assert [e.kind for e in log.recent(POIID)] == ["SecurityAlarm"]
    # the next write keeps the good lines and drops the rest
    log.record(POIID, event("Initialised", 3))
    assert [e.kind for e in log.recent(POIID)] == ["Initialised", "SecurityAlarm"]
    assert b"garbage" not in path.read_bytes()


def test_a_huge_file_is_read_from_its_end(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=Clock())
    log.record(POIID, ALARM)
    path = tmp_path / POIID
    newest = path.read_bytes()
    path.write_bytes(b"x" * (module.MAX_FILE + 10) + b"\n" + newest)
    assert [e.kind for e in log.recent(POIID)] == ["SecurityAlarm"]


def test_hostile_text_is_cleaned_and_bounded(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=Clock())
    hostile = Event(
        "SecurityAlarm\x1b[31m",
        "2027\u202e-01-15" + "9" * 500,
        {f"k{n}\x00": "\x1b]0;pwned\x07" + "v" * 5000 for n in range(50)},
        True,
    )
    recorded = log.record(POIID, hostile)
    assert recorded is not None
    for entry in (recorded, log.recent(POIID)[0]):
        assert "\x1b" not in entry.kind and len(entry.kind) <= 64
        assert "\u202e" not in entry.timestamp and len(entry.timestamp) <= 64
        assert len(entry.details) <= module.MAX_DETAILS
        for key, value in entry.details:
            assert "\x00" not in key and "\x1b" not in value and "\x07" not in value
            assert len(value) <= module.DETAIL_VALUE_LIMIT
    lines = (tmp_path / POIID).read_bytes().split(b"\n")
    assert all(len(line) <= module.MAX_LINE for line in lines)
    # a line that would be too long even so loses details from the end, never the event
    wide = Event("SecurityAlarm", "t", {f"{n:03d}" + "键" * 60: "值" * 256 for n in range(8)})
    assert log.record("P400Plus-1", wide) is not None
    kept = log.recent("P400Plus-1")[0]
    assert kept.kind == "SecurityAlarm" and 0 < len(kept.details) < 8


def test_a_name_that_is_not_a_poiid_is_refused(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path)
    for bad in ("../etc/passwd", ".V400m-1", "V400m-1/x", "", "V400m", "a-b-c" * 20):
        with pytest.raises(ValueError):
            log.record(bad, ALARM)
        assert log.recent(bad) == []
    assert not any(tmp_path.iterdir())


def test_a_folder_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(NexoConfigError, match="cannot record"):
        NexoEventLog(blocker / "events").record(POIID, ALARM)
    assert NexoEventLog(blocker / "events").recent(POIID) == []


def test_forget_removes_a_terminal_s_events(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=Clock())
    log.record(POIID, ALARM)
    log.record(POIID, event("Initialised", 1))
    assert log.forget(POIID) == 2
    assert log.recent(POIID) == [] and log.forget(POIID) == 0
    with pytest.raises(ValueError):
        log.forget("../x")


def test_threads_sharing_a_log_lose_nothing(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path)

    def write(thread: int) -> None:
        for n in range(20):
            log.record(POIID, event("KeyPressed", thread * 100 + n))

    threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(log.recent(POIID)) == 120


def _write_in_process(folder: str, start: int) -> None:
    log = NexoEventLog(Path(folder))
    for n in range(start, start + 25):
        log.record(POIID, event("KeyPressed", n))


def test_processes_sharing_a_folder_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_in_process, args=(str(tmp_path), 100 * n)) for n in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert len(NexoEventLog(tmp_path).recent(POIID)) == 100


def test_alarm_sentences_name_when_and_what(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=lambda: 1_800_000_000.0)
    log.record(POIID, ALARM, encrypted=True)
    log.record(POIID, Event("SecurityAlarm", "2027-01-16T10:00:00Z"), 1_800_000_100.0)
    sentences = alarm_sentences(log.recent(POIID, ("SecurityAlarm",)))
    assert sentences == [
        "the terminal sent a SecurityAlarm, received 2027-01-15 08:01:40 UTC (terminal time "
        "2027-01-16T10:00:00Z) (unencrypted: the station had no key to authenticate it)",
        "the terminal sent a SecurityAlarm, received 2027-01-15 08:00:00 UTC (terminal time "
        "2027-01-15T09:02:35.697Z): message=Tamper detected",
    ]
    for n in range(5):
        log.record(POIID, event("SecurityAlarm", n))
    many = alarm_sentences(log.recent(POIID, ("SecurityAlarm",)))
    assert len(many) == 4 and many[-1] == "and 4 earlier SecurityAlarms"


def test_a_line_survives_a_json_round_trip(tmp_path: Path) -> None:
    log = NexoEventLog(tmp_path, clock=Clock())
    log.record(POIID, ALARM, encrypted=True)
    line = (tmp_path / POIID).read_text(encoding="utf-8").splitlines()[0]
    obj = json.loads(line)
    assert obj["kind"] == "SecurityAlarm" and obj["details"] == [["message", "Tamper detected"]]
    assert "poiid" not in obj  # the file's name
