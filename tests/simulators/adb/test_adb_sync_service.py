"""adbd's sync service on the simulated file tree: the answers and failure texts adbd gives."""

from __future__ import annotations

import stat

from posdiag.drivers.adb.protocol import NEED_DATA
from posdiag.drivers.adb.sync import (
    SyncDent,
    SyncDentV2,
    SyncDone,
    SyncFail,
    SyncId,
    SyncOkay,
    SyncResponseDecoder,
    SyncStat,
    SyncStatV2,
    encode_data,
    encode_done,
    encode_list,
    encode_list_v2,
    encode_recv,
    encode_send,
    encode_stat,
    encode_stat_v2,
)
from posdiag.simulators.adb.state import load_android
from posdiag.simulators.adb.sync_service import SyncService

V2 = frozenset({"stat_v2", "ls_v2"})


def run(service: SyncService, wire: bytes, *expect: SyncId) -> tuple[list[object], bool]:
    reply = service.receive(wire)
    decoder = SyncResponseDecoder()
    for request in expect:
        decoder.expect(request)
    decoder.receive_data(reply.data)
    events = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
    return events, reply.done


def service(features: frozenset[str] = V2) -> SyncService:
    return SyncService(load_android("activated", "pax-a920").tree, features)


def test_stat_of_a_missing_path_is_all_zeros_and_v2_carries_errno() -> None:
    events, done = run(service(), encode_stat("/nope") + encode_stat_v2("/nope"), "STAT", "STA2")
    assert events[0] == SyncStat(0, 0, 0)
    assert isinstance(events[1], SyncStatV2) and events[1].error == 2
    assert not done


def test_list_a_directory_and_a_missing_one() -> None:
    sync = service()
    events, _ = run(sync, encode_list("/sdcard/"), "LIST")
    names = [e.name for e in events if isinstance(e, SyncDent)]
    assert names[:2] == [".", ".."] and "Download" in names
    assert events[-1] == SyncDone()
    events, done = run(sync, encode_list("/nope") + encode_list("/data"), "LIST", "LIST")
    assert events == [SyncDone(), SyncDone()]  # opendir failed: DONE alone, no error
    assert not done
    events, _ = run(sync, encode_list_v2("/sdcard/Download"), "LIS2")
    assert all(isinstance(e, SyncDentV2) for e in events[:-1])


def test_recv_failures_end_the_service() -> None:
    events, done = run(service(), encode_recv("/sdcard/Download"), "RECV")
    assert events == [SyncFail("read failed: Is a directory")]
    assert done
    path = "/data/data/com.pax.ipp.manager/shared_prefs/merchant.xml"
    events, done = run(service(), encode_recv(path), "RECV")
    assert events == [SyncFail("open failed: Permission denied")]
    assert done


def test_push_large_file_with_parents_then_pull_it_back() -> None:
    sync = service()
    content = bytes(range(256)) * 1000  # 256 000 bytes: four DATA chunks
    wire = encode_send("/sdcard/new/dir/f.bin", 0o644) + encode_data(content) + encode_done(1234)
    events, done = run(sync, wire, "SEND")
    assert events == [SyncOkay()] and not done
    node = sync.tree.stat("/sdcard/new/dir/f.bin")
    assert node.data == content and node.mtime == 1234
    events, _ = run(sync, encode_stat_v2("/sdcard/new/dir/f.bin"), "STA2")
    assert isinstance(events[0], SyncStatV2) and events[0].size == len(content)
    tmp = run(sync, encode_send("/data/local/tmp/x", 0o644) + encode_done(5), "SEND")[0]
    assert tmp == [SyncOkay()]
    assert stat.S_IMODE(sync.tree.stat("/data/local/tmp/x").mode) == 0o666  # user bits copied


def test_push_where_shell_may_not_write() -> None:
    sync = service()
    wire = encode_send("/system/x", 0o644) + encode_data(b"abc") + encode_done(1)
    events, done = run(sync, wire, "SEND")
    assert events == [SyncFail("couldn't create file: Read-only file system")]
    assert done
    wire = encode_send("/data/nope/x", 0o644) + encode_data(b"abc") + encode_done(1)
    events, done = run(service(), wire, "SEND")
    assert events == [SyncFail("secure_mkdirs failed: Permission denied")]
    assert done


def test_unknown_request() -> None:
    events, done = run(service(), b"XXXX\x00\x00\x00\x00", "STAT")
    assert isinstance(events[0], SyncFail) and events[0].message.startswith(
        "unknown command 'XXXX'"
    )
    assert done
