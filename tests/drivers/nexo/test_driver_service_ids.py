"""ServiceIDs: new per terminal for 48 hours, remembered across processes, pruned, private."""

from __future__ import annotations

import re
import stat
import threading
from itertools import count
from pathlib import Path

import pytest

from posdiag.drivers.nexo import service_ids as module
from posdiag.drivers.nexo.failures import NexoConfigError
from posdiag.drivers.nexo.messages import valid_service_id
from posdiag.drivers.nexo.service_ids import (
    RETENTION_S,
    ServiceIdStore,
    default_service_id_dir,
    random_service_id,
)

POIID = "V400m-324688179"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_ids_follow_the_documented_rule() -> None:
    ids = {random_service_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(
        re.fullmatch(r"[A-Za-z0-9]{10}", i) and valid_service_id(i, strict=True) for i in ids
    )


def test_an_id_is_remembered_across_store_instances(tmp_path: Path) -> None:
    first = ServiceIdStore(tmp_path, draw=lambda: "SAME1")
    assert first.new(POIID) == "SAME1"
    draws = iter(["SAME1", "SAME1", "OTHER2"])
    second = ServiceIdStore(tmp_path, draw=lambda: next(draws))  # another process, same folder
    assert second.new(POIID) == "OTHER2"
    assert second.used(POIID) == {"SAME1", "OTHER2"}


def test_ids_are_per_terminal(tmp_path: Path) -> None:
    store = ServiceIdStore(tmp_path, draw=lambda: "SAME1")
    assert store.new(POIID) == "SAME1"
    assert store.new("P400Plus-275008565") == "SAME1"


def test_ids_older_than_48_hours_are_pruned(tmp_path: Path) -> None:
    clock = Clock()
    store = ServiceIdStore(tmp_path, clock=clock, draw=lambda: "OLD1")
    store.new(POIID)
    clock.now += RETENTION_S - 1
    with pytest.raises(ValueError, match="keeps repeating"):
        store.new(POIID)  # still remembered one second before 48 hours
    clock.now += 2
    assert store.used(POIID) == set()
    assert store.new(POIID) == "OLD1"  # usable again, and the file holds it once
    assert (tmp_path / POIID).read_text().count("OLD1") == 1


def test_a_clock_set_back_keeps_what_it_remembers(tmp_path: Path) -> None:
    clock = Clock()
    store = ServiceIdStore(tmp_path, clock=clock, draw=lambda: "KEEP1")
    store.new(POIID)
    clock.now -= 3600
    assert store.used(POIID) == {"KEEP1"}


def test_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "posdiag" / "nexo-service-ids"
    ServiceIdStore(folder).new(POIID)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / POIID).stat().st_mode) == 0o600


def test_a_terminal_file_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "MAX_PER_TERMINAL", 5)
    numbers = count()
    store = ServiceIdStore(tmp_path, draw=lambda: f"N{next(numbers)}")
    for _ in range(12):
        store.new(POIID)
    assert store.used(POIID) == {f"N{i}" for i in range(7, 12)}


def test_idle_terminal_files_are_swept(tmp_path: Path) -> None:
    clock = Clock()
    store = ServiceIdStore(tmp_path, clock=clock)
    store.new("P400Plus-275008565")
    clock.now = 4_000_000_000.0  # far later than the files' modification times
    store.new(POIID)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [POIID]


def test_damaged_lines_are_skipped(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / POIID).write_text(
        f"GOOD1 {clock.now:.3f}\n\x00garbage\nTOOLONGSERVICEID 1\nBAD-ID 12\n", encoding="latin-1"
    )
    store = ServiceIdStore(tmp_path, clock=clock, draw=lambda: "NEW2")
    assert store.used(POIID) == {"GOOD1"}
    store.new(POIID)
    assert store.used(POIID) == {"GOOD1", "NEW2"}


def test_threads_never_share_an_id(tmp_path: Path) -> None:
    store = ServiceIdStore(tmp_path)
    seen: list[str] = []

    def take() -> None:
        for _ in range(20):
            seen.append(store.new(POIID))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == len(set(seen)) == 80
    assert store.used(POIID) == set(seen)


def test_a_store_that_cannot_write_refuses_to_hand_out_ids(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NexoConfigError, match="cannot record the terminal's ServiceIDs"):
        ServiceIdStore(blocker / "ids").new(POIID)


def test_a_poiid_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ServiceIdStore(tmp_path).new("../../etc/passwd")
    assert ServiceIdStore(tmp_path).used("../x") == set()


def test_the_default_folder_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_service_id_dir() == tmp_path / "posdiag" / "nexo-service-ids"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_service_id_dir() == tmp_path / "home" / ".local/share/posdiag/nexo-service-ids"
