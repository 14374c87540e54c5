"""Shell protocol v2 and the sync sub-protocol, alone and carried over paired ADB codecs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.adb.codec import (
    AdbConnection,
    Connected,
    Role,
    StreamClosed,
    StreamData,
    StreamOpenRequested,
)
from posdiag.drivers.adb.protocol import NEED_DATA, AdbProtocolError
from posdiag.drivers.adb.shell import (
    SHELL_CHUNK,
    ShellDecoder,
    ShellId,
    ShellPacket,
    ShellProtocolError,
    encode_close_stdin,
    encode_exit,
    encode_shell_data,
    encode_shell_packet,
    encode_stdin,
    shell_service,
)
from posdiag.drivers.adb.sync import (
    SYNC_DATA_MAX,
    SyncData,
    SyncDent,
    SyncDone,
    SyncFail,
    SyncId,
    SyncOkay,
    SyncProtocolError,
    SyncRequest,
    SyncRequestDecoder,
    SyncResponseDecoder,
    SyncStat,
    encode_data,
    encode_dent,
    encode_done,
    encode_fail,
    encode_list,
    encode_list_done,
    encode_okay,
    encode_quit,
    encode_recv,
    encode_send,
    encode_stat,
    encode_stat_response,
    parse_send_path,
)

DEVICE_BANNER = "device::ro.product.model=A920;features=shell_v2,cmd"


def drain(decoder) -> list:
    events: list = []
    while True:
        event = decoder.next_packet() if isinstance(decoder, ShellDecoder) else decoder.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)


def feed_bytewise(decoder, data: bytes) -> list:
    events = []
    for index in range(len(data)):
        decoder.receive_data(data[index : index + 1])
        events += drain(decoder)
    return events


def events_of(conn: AdbConnection) -> list:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def online_pair(**device_kwargs) -> tuple[AdbConnection, AdbConnection]:
    host, device = AdbConnection(Role.HOST), AdbConnection(Role.DEVICE, **device_kwargs)
    host.send_connect()
    device.receive_data(host.data_to_send())
    assert isinstance(events_of(device)[0], Connected)
    device.send_connect(DEVICE_BANNER)
    host.receive_data(device.data_to_send())
    assert isinstance(events_of(host)[0], Connected)
    return host, device


def exchange(host: AdbConnection, device: AdbConnection) -> tuple[list, list]:
    """Move bytes both ways until quiet; return (host events, device events)."""
    host_events: list = []
    device_events: list = []
    while True:
        to_device, to_host = host.data_to_send(), device.data_to_send()
        if not to_device and not to_host:
            return host_events, device_events
        device.receive_data(to_device)
        device_events += events_of(device)
        host.receive_data(to_host)
        host_events += events_of(host)


# ---------------------------------------------------------------------- shell v2


def test_shell_packet_vectors() -> None:
    assert encode_shell_packet(ShellId.STDOUT, b"abc") == bytes.fromhex("01 03000000 616263")
    assert encode_exit(127) == bytes.fromhex("03 01000000 7f")
    assert encode_close_stdin() == bytes.fromhex("04 00000000")
    assert encode_stdin(b"y\n") == bytes.fromhex("00 02000000 790a")
    assert encode_stdin(b"") == b""


def test_shell_data_is_split_into_chunks() -> None:
    data = b"x" * (SHELL_CHUNK * 2 + 10)
    packets = drain_all(encode_shell_data(ShellId.STDERR, data))
    assert [len(p.data) for p in packets] == [SHELL_CHUNK, SHELL_CHUNK, 10]
    assert {p.id for p in packets} == {ShellId.STDERR}


def drain_all(data: bytes) -> list[ShellPacket]:
    decoder = ShellDecoder()
    decoder.receive_data(data)
    return drain(decoder)


def test_shell_decoder_byte_by_byte() -> None:
    wire = (
        encode_shell_packet(ShellId.STDOUT, b"A920\n")
        + encode_shell_packet(ShellId.STDERR, b"warning\n")
        + encode_shell_packet(ShellId.STDOUT, b"")
        + encode_exit(0)
    )
    packets = feed_bytewise(ShellDecoder(), wire)
    assert packets == [
        ShellPacket(ShellId.STDOUT, b"A920\n"),
        ShellPacket(ShellId.STDERR, b"warning\n"),
        ShellPacket(ShellId.STDOUT, b""),
        ShellPacket(ShellId.EXIT, b"\x00"),
    ]
    assert packets[-1].exit_code == 0
    assert packets[0].exit_code is None


def test_shell_decoder_passes_unknown_ids_through() -> None:
    assert drain_all(encode_shell_packet(42, b"?")) == [ShellPacket(42, b"?")]


def test_shell_decoder_rejects_malformed_packets() -> None:
    decoder = ShellDecoder()
    decoder.receive_data(bytes.fromhex("03 02000000"))
    with pytest.raises(ShellProtocolError, match="exit"):
        decoder.next_packet()
    decoder = ShellDecoder(max_length=100)
    decoder.receive_data(bytes.fromhex("01 65000000"))  # 101 bytes announced, none sent
    with pytest.raises(ShellProtocolError, match="101"):
        decoder.next_packet()
    assert issubclass(ShellProtocolError, AdbProtocolError)


def test_shell_encoder_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        encode_exit(256)
    with pytest.raises(ValueError):
        encode_shell_packet(ShellId.EXIT, b"")
    with pytest.raises(ValueError):
        encode_shell_packet(256)


def test_shell_service_matches_the_stock_client() -> None:
    assert (
        shell_service("getprop ro.serialno", v2=True)
        == "shell,v2,TERM=xterm,raw:getprop ro.serialno"
    )
    assert shell_service("foo", v2=False) == "shell:foo"
    with pytest.raises(ValueError):
        shell_service("  ", v2=True)


def test_shell_v2_round_trip_with_exit_code() -> None:
    host, device = online_pair()
    command = "getprop ro.serialno; missing"
    host_id = host.open_stream(shell_service(command, v2=True))
    host.write(host_id, encode_close_stdin())  # as the stock client does, before the OKAY
    _, device_events = exchange(host, device)
    (request,) = device_events
    assert request == StreamOpenRequested(1, "shell,v2,TERM=xterm,raw:" + command)
    device_id = device.accept_stream(request.remote_id)
    host_events, device_events = exchange(host, device)
    stdin = ShellDecoder()
    for event in device_events:
        stdin.receive_data(event.data)
    assert drain(stdin) == [ShellPacket(ShellId.CLOSE_STDIN)]
    device.write(device_id, encode_shell_packet(ShellId.STDOUT, b"1234567890\n"))
    device.write(
        device_id,
        encode_shell_packet(
            ShellId.STDERR, b"/system/bin/sh: missing: inaccessible or not found\n"
        ),
    )
    device.write(device_id, encode_exit(127))
    device.close_stream(device_id)
    host_events, _ = exchange(host, device)
    output = ShellDecoder()
    for event in host_events:
        if isinstance(event, StreamData):
            output.receive_data(event.data)
    assert host_events[-1] == StreamClosed(host_id)
    packets = drain(output)
    assert b"".join(p.data for p in packets if p.id == ShellId.STDOUT) == b"1234567890\n"
    assert b"not found" in b"".join(p.data for p in packets if p.id == ShellId.STDERR)
    assert [p.exit_code for p in packets if p.id == ShellId.EXIT] == [127]
    assert output.buffered == 0


# ---------------------------------------------------------------------- sync encoders


def test_sync_request_vectors() -> None:
    assert encode_stat("/sdcard") == b"STAT\x07\x00\x00\x00/sdcard"
    assert encode_list("/") == b"LIST\x01\x00\x00\x00/"
    assert encode_recv("/a") == b"RECV\x02\x00\x00\x00/a"
    assert encode_send("/a", 0o100644) == b"SEND\x08\x00\x00\x00/a,33188"
    assert encode_quit() == b"QUIT\x00\x00\x00\x00"
    assert encode_done(0x65432100) == b"DONE" + bytes.fromhex("00214365")


def test_sync_response_vectors() -> None:
    assert encode_stat_response(0o100644, 5, 1_700_000_000) == (
        b"STAT" + bytes.fromhex("a4810000 05000000 00f15365")
    )
    assert encode_list_done() == b"DONE" + bytes(16)
    assert encode_dent(0o40755, 4096, 1, "app") == (
        b"DENT" + bytes.fromhex("ed410000 00100000 01000000 03000000") + b"app"
    )
    assert encode_okay() == b"OKAY\x00\x00\x00\x00"
    assert encode_fail("no") == b"FAIL\x02\x00\x00\x00no"
    assert encode_data(b"") == b""
    assert encode_data(b"hi") == b"DATA\x02\x00\x00\x00hi"


def test_encode_data_splits_at_64k() -> None:
    decoder = SyncRequestDecoder()
    decoder.receive_data(encode_data(b"z" * (SYNC_DATA_MAX + 1)))
    assert [len(e.data) for e in drain(decoder)] == [SYNC_DATA_MAX, 1]


def test_sync_encoders_reject_bad_paths() -> None:
    with pytest.raises(ValueError):
        encode_stat("/" + "a" * 1024)
    with pytest.raises(ValueError):
        encode_recv("/a\0b")
    with pytest.raises(ValueError):
        encode_stat_response(-1, 0, 0)


# ---------------------------------------------------------------------- sync request decoder


def test_request_decoder_byte_by_byte() -> None:
    wire = (
        encode_stat("/data/local/tmp")
        + encode_send("/data/local/tmp/x", 0o100600)
        + encode_data(b"content")
        + encode_done(1_700_000_000)
        + encode_list("/")
        + encode_quit()
    )
    assert feed_bytewise(SyncRequestDecoder(), wire) == [
        SyncRequest("STAT", "/data/local/tmp"),
        SyncRequest("SEND", "/data/local/tmp/x,33152"),
        SyncData(b"content"),
        SyncDone(1_700_000_000),
        SyncRequest("LIST", "/"),
        SyncRequest("QUIT"),
    ]


def test_request_decoder_reports_unknown_ids_and_rejects_oversize() -> None:
    decoder = SyncRequestDecoder()
    decoder.receive_data(b"STA2\x02\x00\x00\x00/x")
    assert drain(decoder) == [SyncRequest("STA2", "/x")]
    decoder.receive_data(b"STAT\x01\x04\x00\x00")
    with pytest.raises(SyncProtocolError, match="1025"):
        decoder.next_event()
    decoder = SyncRequestDecoder()
    decoder.receive_data(b"DATA\x01\x00\x01\x00")
    with pytest.raises(SyncProtocolError, match="65537"):
        decoder.next_event()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("/a,33188", ("/a", 33188)),
        ("/a,b,0644", ("/a,b", 0o644)),
        ("/a,0x1a4", ("/a", 0o644)),
        ("/a,0", ("/a", 0)),
    ],
)
def test_parse_send_path(spec: str, expected: tuple[str, int]) -> None:
    assert parse_send_path(spec) == expected


@pytest.mark.parametrize("spec", ["/no-mode", "/a,rw", "/a,", "/a,99999999999"])
def test_parse_send_path_rejects(spec: str) -> None:
    with pytest.raises(SyncProtocolError):
        parse_send_path(spec)


# ---------------------------------------------------------------------- sync response decoder


def test_response_decoder_each_request_kind() -> None:
    decoder = SyncResponseDecoder()
    for request in (SyncId.STAT, SyncId.LIST, SyncId.RECV, SyncId.SEND):
        decoder.expect(request)
    wire = (
        encode_stat_response(0o100644, 12, 99)
        + encode_dent(0o40755, 0, 1, ".")
        + encode_dent(0o100644, 3, 2, "naïve.txt")
        + encode_list_done()
        + encode_data(b"abc")
        + encode_done()
        + encode_okay()
    )
    assert feed_bytewise(decoder, wire) == [
        SyncStat(0o100644, 12, 99),
        SyncDent(0o40755, 0, 1, "."),
        SyncDent(0o100644, 3, 2, "naïve.txt"),
        SyncDone(),
        SyncData(b"abc"),
        SyncDone(),
        SyncOkay(),
    ]
    assert decoder.pending == ()


def test_missing_file_stat_is_all_zero() -> None:
    decoder = SyncResponseDecoder()
    decoder.expect("STAT")
    decoder.receive_data(encode_stat_response(0, 0, 0))
    (stat,) = drain(decoder)
    assert not stat.exists


def test_fail_ends_the_current_request() -> None:
    decoder = SyncResponseDecoder()
    decoder.expect(SyncId.RECV)
    decoder.expect(SyncId.STAT)
    decoder.receive_data(
        encode_data(b"part") + encode_fail("read failed: I/O error") + encode_stat_response(1, 2, 3)
    )
    assert drain(decoder) == [
        SyncData(b"part"),
        SyncFail("read failed: I/O error"),
        SyncStat(1, 2, 3),
    ]


@pytest.mark.parametrize(
    ("expected", "wire", "match"),
    [
        (SyncId.STAT, encode_data(b"x"), "does not answer"),
        (SyncId.RECV, encode_stat_response(1, 2, 3), "does not answer"),
        (SyncId.RECV, b"DATA\x01\x00\x01\x00", "65537"),
        (SyncId.LIST, b"DENT" + bytes(12) + b"\x01\x04\x00\x00", "1025"),
        (SyncId.SEND, b"FAIL\xff\xff\xff\xff", "FAIL message"),
        (None, encode_okay(), "no request outstanding"),
    ],
)
def test_response_decoder_rejects(expected, wire: bytes, match: str) -> None:
    decoder = SyncResponseDecoder()
    if expected is not None:
        decoder.expect(expected)
    decoder.receive_data(wire)
    with pytest.raises(SyncProtocolError, match=match):
        drain(decoder)


def test_quit_has_no_response_to_expect() -> None:
    with pytest.raises(ValueError):
        SyncResponseDecoder().expect(SyncId.QUIT)


# ---------------------------------------------------------------------- sync over ADB


class _FakeSyncService:
    """The device end of ``sync:`` for one file, enough to exercise the decoders over ADB."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests = SyncRequestDecoder()

    def handle(self, data: bytes) -> tuple[bytes, bool]:
        self.requests.receive_data(data)
        out, close = b"", False
        for request in drain(self.requests):
            assert isinstance(request, SyncRequest)
            content = self.files.get(request.path)
            if request.id == SyncId.STAT:
                size = len(content) if content is not None else 0
                out += encode_stat_response(0o100644 if content is not None else 0, size, 7)
            elif request.id == SyncId.RECV:
                if content is None:
                    out += encode_fail("open failed: No such file or directory")
                    close = True
                else:
                    out += encode_data(content) + encode_done()
            elif request.id == SyncId.QUIT:
                close = True
        return out, close


def test_sync_stat_and_recv_round_trip() -> None:
    blob = bytes(range(251)) * 600  # 150600 bytes: three 64 KiB DATA chunks, many WRTEs
    service = _FakeSyncService({"/sdcard/log.txt": blob})
    host, device = online_pair(max_payload=4096)
    host_id = host.open_stream("sync:")
    _, (request,) = exchange(host, device)
    assert request.service == "sync:"
    device_id = device.accept_stream(request.remote_id)
    responses = SyncResponseDecoder()
    host.write(host_id, encode_stat("/sdcard/log.txt") + encode_recv("/sdcard/log.txt"))
    responses.expect(SyncId.STAT)
    responses.expect(SyncId.RECV)
    received: list = []
    for _ in range(200):
        host_events, device_events = exchange(host, device)
        for event in device_events:
            reply, close = service.handle(event.data)
            device.write(device_id, reply)
            if close:
                device.close_stream(device_id)
        for event in host_events:
            if isinstance(event, StreamData):
                responses.receive_data(event.data)
        received += drain(responses)
        if not responses.pending:
            break
    assert received[0] == SyncStat(0o100644, len(blob), 7)
    assert received[-1] == SyncDone()
    assert b"".join(e.data for e in received if isinstance(e, SyncData)) == blob
    host.write(host_id, encode_quit())
    _, (quit_request,) = exchange(host, device)
    assert service.handle(quit_request.data) == (b"", True)
    device.close_stream(device_id)
    host_events, _ = exchange(host, device)
    assert host_events == [StreamClosed(host_id)]


# ---------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6))
def test_shell_decoder_raises_only_protocol_errors(chunks: list[bytes]) -> None:
    decoder = ShellDecoder()
    try:
        for chunk in chunks:
            decoder.receive_data(chunk)
            drain(decoder)
    except AdbProtocolError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6))
def test_sync_request_decoder_raises_only_protocol_errors(chunks: list[bytes]) -> None:
    decoder = SyncRequestDecoder()
    try:
        for chunk in chunks:
            decoder.receive_data(chunk)
            drain(decoder)
    except AdbProtocolError:
        pass


_RESPONSE_PIECES = st.sampled_from(
    [
        encode_stat_response(1, 2, 3),
        encode_dent(1, 2, 3, "x"),
        encode_list_done(),
        encode_data(b"abc"),
        encode_done(),
        encode_okay(),
        encode_fail("e"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    expectations=st.lists(st.sampled_from(["STAT", "LIST", "RECV", "SEND"]), max_size=5),
    pieces=st.lists(st.one_of(_RESPONSE_PIECES, st.binary(max_size=24)), max_size=8),
)
def test_sync_response_decoder_raises_only_protocol_errors(expectations, pieces) -> None:
    decoder = SyncResponseDecoder()
    for request in expectations:
        decoder.expect(request)
    try:
        for piece in pieces:
            decoder.receive_data(piece)
            drain(decoder)
    except AdbProtocolError:
        pass
