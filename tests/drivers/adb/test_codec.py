"""AdbConnection: a HOST codec paired with a DEVICE codec, byte for byte, no sockets."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdiag.drivers.adb.auth import AdbKey, parse_android_public_key, verify_token_signature
from posdiag.drivers.adb.codec import (
    AdbConnection,
    AuthPublicKey,
    AuthSignature,
    AuthToken,
    Connected,
    Role,
    State,
    StreamClosed,
    StreamData,
    StreamOpened,
    StreamOpenRequested,
    StreamRefused,
    TlsRequested,
)
from posdiag.drivers.adb.protocol import (
    A_SYNC,
    A_VERSION_MIN,
    A_VERSION_SKIP_CHECKSUM,
    HEADER_SIZE,
    MAX_PAYLOAD,
    NEED_DATA,
    AdbHeader,
    AdbPacket,
    AdbProtocolError,
    AdbUsageError,
    AuthType,
    Command,
    checksum,
    pack_header,
    unpack_header,
)

DEVICE_BANNER = (
    "device::ro.product.name=A920;ro.product.model=A920;ro.product.device=A920;"
    "features=shell_v2,cmd"
)


# ---------------------------------------------------------------------- helpers


def drain(conn: AdbConnection) -> list:
    events = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def deliver(src: AdbConnection, dst: AdbConnection) -> list:
    dst.receive_data(src.data_to_send())
    return drain(dst)


def split_packets(raw: bytes) -> list[tuple[AdbHeader, bytes]]:
    packets = []
    while raw:
        header = unpack_header(raw[:HEADER_SIZE])
        end = HEADER_SIZE + header.data_length
        packets.append((header, raw[HEADER_SIZE:end]))
        raw = raw[end:]
    return packets


def online_pair(**device_kwargs) -> tuple[AdbConnection, AdbConnection]:
    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE, **device_kwargs)
    host.send_connect()
    assert isinstance(deliver(host, device)[0], Connected)
    device.send_connect(DEVICE_BANNER)
    assert isinstance(deliver(device, host)[0], Connected)
    return host, device


def open_pair_stream(
    host: AdbConnection, device: AdbConnection, service: str = "shell:true"
) -> tuple[int, int]:
    host_id = host.open_stream(service)
    (request,) = deliver(host, device)
    assert request == StreamOpenRequested(host_id, service)
    device_id = device.accept_stream(request.remote_id)
    assert deliver(device, host) == [StreamOpened(host_id)]
    return host_id, device_id


def raw_packet(
    command: int, arg0: int, arg1: int, data: bytes = b"", check: int | None = None
) -> bytes:
    value = checksum(data) if check is None else check
    return pack_header(command, arg0, arg1, len(data), value) + data


@pytest.fixture(scope="module")
def host_key() -> AdbKey:
    return AdbKey.generate()


@pytest.fixture(scope="module")
def other_key() -> AdbKey:
    return AdbKey.generate()


# ---------------------------------------------------------------------- handshake


def test_connect_without_auth() -> None:
    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE)
    host.send_connect()
    (hello,) = deliver(host, device)
    assert hello == Connected(
        A_VERSION_SKIP_CHECKSUM,
        MAX_PAYLOAD,
        "host::features=shell_v2,cmd",
        "host",
        {},
        frozenset({"shell_v2", "cmd"}),
    )
    assert device.state is State.HANDSHAKE
    device.send_connect(DEVICE_BANNER)
    assert device.state is State.ONLINE
    (connected,) = deliver(device, host)
    assert isinstance(connected, Connected)
    assert connected.system_type == "device"
    assert connected.properties["ro.product.model"] == "A920"
    assert connected.features == frozenset({"shell_v2", "cmd"})
    assert host.state is State.ONLINE
    assert host.peer == connected
    assert host.shared_features == frozenset({"shell_v2", "cmd"})
    assert host.protocol_version == device.protocol_version == A_VERSION_SKIP_CHECKSUM


# The first packet of the stock client (Debian adb 29.0.6) on ``adb connect``, captured on the
# wire: data_check 0x2e40 is the byte sum of the banner, no trailing NUL.
STOCK_HOST_CNXN = bytes.fromhex("434e584e010000010000100077000000402e0000bcb1a7b1") + (
    b"host::features=remount_shell,abb_exec,abb,apex,fixed_push_mkdir,ls_v2,stat_v2,"
    b"fixed_push_symlink_timestamp,cmd,shell_v2"
)


def test_stock_client_cnxn_is_understood_and_reproduced() -> None:
    device = AdbConnection(Role.DEVICE)
    device.receive_data(STOCK_HOST_CNXN)
    (hello,) = drain(device)
    assert isinstance(hello, Connected)
    assert hello.system_type == "host"
    assert {"shell_v2", "cmd", "stat_v2", "ls_v2"} <= hello.features
    assert (hello.version, hello.max_payload) == (A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD)
    features = STOCK_HOST_CNXN.split(b"features=")[1].decode().split(",")
    host = AdbConnection(Role.HOST, features=features)
    host.send_connect()
    assert host.data_to_send() == STOCK_HOST_CNXN


def test_first_cnxn_carries_the_byte_sum_and_later_packets_zero() -> None:
    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE)
    host.send_connect()
    raw = host.data_to_send()
    ((header, banner),) = split_packets(raw)
    assert header.command == Command.CNXN
    assert (header.arg0, header.arg1) == (A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD)
    assert header.data_check == sum(banner) != 0
    device.receive_data(raw)
    drain(device)
    device.send_connect(DEVICE_BANNER)
    device_raw = device.data_to_send()
    ((reply, _),) = split_packets(device_raw)
    assert reply.data_check == 0  # the device has negotiated already
    host.receive_data(device_raw)
    drain(host)
    stream = host.open_stream("shell:id")
    ((open_header, payload),) = split_packets(host.data_to_send())
    assert (open_header.command, open_header.arg0, open_header.arg1) == (Command.OPEN, stream, 0)
    assert payload == b"shell:id\0"
    assert open_header.data_check == 0


def test_negotiation_takes_the_minimum_and_old_versions_keep_checksums() -> None:
    host, device = online_pair(version=A_VERSION_MIN, max_payload=4096)
    assert host.protocol_version == device.protocol_version == A_VERSION_MIN
    assert host.max_payload == device.max_payload == 4096
    host_id, device_id = open_pair_stream(host, device)
    host.write(host_id, b"abc")
    ((header, _),) = split_packets(host.data_to_send())
    assert header.data_check == sum(b"abc")
    # A WRTE with a wrong sum is fatal while the version is below 0x01000001.
    device.receive_data(raw_packet(Command.WRTE, host_id, device_id, b"abc", check=0))
    with pytest.raises(AdbProtocolError, match="checksum"):
        drain(device)
    assert device.state is State.CLOSED


def test_device_cnxn_advertises_the_negotiated_values() -> None:
    host = AdbConnection(Role.HOST, max_payload=8192)
    device = AdbConnection(Role.DEVICE)
    host.send_connect()
    deliver(host, device)
    device.send_connect(DEVICE_BANNER)
    ((header, _),) = split_packets(device.data_to_send())
    assert (header.arg0, header.arg1) == (A_VERSION_SKIP_CHECKSUM, 8192)


def test_checksum_zero_accepted_after_negotiation() -> None:
    host, device = online_pair()
    host_id, device_id = open_pair_stream(host, device)
    device.receive_data(raw_packet(Command.WRTE, host_id, device_id, b"data", check=0))
    assert drain(device) == [StreamData(device_id, b"data")]


def test_wrong_checksum_before_negotiation_closes() -> None:
    device = AdbConnection(Role.DEVICE)
    device.receive_data(
        raw_packet(Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, b"host::", 7)
    )
    with pytest.raises(AdbProtocolError, match="checksum"):
        device.next_event()
    assert device.state is State.CLOSED


def test_zero_checksum_before_negotiation_only_if_we_offer_skip_checksum() -> None:
    banner = b"host::features=shell_v2"
    modern = AdbConnection(Role.DEVICE)
    modern.receive_data(raw_packet(Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, banner, 0))
    assert isinstance(modern.next_event(), Connected)
    old = AdbConnection(Role.DEVICE, version=A_VERSION_MIN)
    old.receive_data(raw_packet(Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, banner, 0))
    with pytest.raises(AdbProtocolError):
        old.next_event()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (raw_packet(Command.OKAY, 1, 1)[:20] + b"\0\0\0\0", "magic"),
        (raw_packet(A_SYNC, 1, 1), "SYNC"),
        (raw_packet(0x41414141, 0, 0), "unknown command"),
        (raw_packet(Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, b"d" * 4097), "4096"),
        (raw_packet(Command.AUTH, 1, 0, b"t" * 4097), "4096"),
        (raw_packet(Command.CNXN, 0x00FFFFFF, MAX_PAYLOAD, b"device::"), "version"),
        (raw_packet(Command.CNXN, A_VERSION_SKIP_CHECKSUM, 1024, b"device::"), "1024"),
        (raw_packet(Command.AUTH, 9, 0, b"x" * 20), "unknown type"),
        (raw_packet(Command.AUTH, AuthType.SIGNATURE, 0, b"x" * 20), "only hosts"),
    ],
)
def test_host_rejects_bad_packets_and_closes(raw: bytes, match: str) -> None:
    host = AdbConnection(Role.HOST)
    host.send_connect()
    host.data_to_send()
    host.receive_data(raw)
    with pytest.raises(AdbProtocolError, match=match):
        drain(host)
    assert host.state is State.CLOSED
    for call in (
        lambda: host.next_event(),
        lambda: host.receive_data(b"x"),
        lambda: host.data_to_send(),
        lambda: host.send_connect(),
        lambda: host.open_stream("shell:x"),
        lambda: host.write(1, b"x"),
    ):
        with pytest.raises(AdbProtocolError, match="closed"):
            call()


def test_length_is_checked_against_the_negotiated_maximum_from_the_header_alone() -> None:
    host, device = online_pair(max_payload=4096)
    host_id, device_id = open_pair_stream(host, device)
    # Only the header arrives: the codec must not wait for 4097 bytes before refusing.
    device.receive_data(pack_header(Command.WRTE, host_id, device_id, 4097, 0))
    with pytest.raises(AdbProtocolError, match="4097"):
        device.next_event()


def test_before_negotiation_other_packets_are_limited_by_our_maximum() -> None:
    host = AdbConnection(Role.HOST, max_payload=4096)
    host.receive_data(raw_packet(Command.WRTE, 1, 1, b"w" * 4097))
    with pytest.raises(AdbProtocolError):
        host.next_event()


def test_device_receiving_a_token_is_a_protocol_error() -> None:
    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE)
    host.send_connect()
    deliver(host, device)
    device.receive_data(raw_packet(Command.AUTH, AuthType.TOKEN, 0, b"t" * 20))
    with pytest.raises(AdbProtocolError, match="only devices"):
        device.next_event()


def test_packets_before_online_are_ignored() -> None:
    host = AdbConnection(Role.HOST)
    host.send_connect()
    host.data_to_send()
    host.receive_data(
        raw_packet(Command.OPEN, 5, 0, b"tcp:1\0")
        + raw_packet(Command.OKAY, 5, 1)
        + raw_packet(Command.WRTE, 5, 1, b"stale")
        + raw_packet(Command.CLSE, 5, 1)
    )
    assert drain(host) == []
    assert host.data_to_send() == b""
    device = AdbConnection(Role.DEVICE)
    device.receive_data(raw_packet(Command.AUTH, AuthType.SIGNATURE, 0, b"s" * 256))
    assert drain(device) == []  # AUTH before the host's CNXN


def test_stls_reports_tls_and_closes() -> None:
    host = AdbConnection(Role.HOST)
    host.send_connect()
    host.receive_data(raw_packet(Command.STLS, 1, 0x01000000))
    assert host.next_event() == TlsRequested(0x01000000)
    assert host.state is State.CLOSED
    with pytest.raises(AdbProtocolError, match="TLS"):
        host.next_event()


# ---------------------------------------------------------------------- authentication


def _authenticate(host: AdbConnection, device: AdbConnection, host_keys: list[AdbKey], trusted):
    """Drive the AUTH exchange; the device trusts ``trusted`` public keys and accepts offers."""
    host.send_connect()
    assert isinstance(deliver(host, device)[0], Connected)
    token = os.urandom(20)
    device.send_auth(AuthType.TOKEN, token)
    keys = list(host_keys)
    offered_public_key = None
    for _ in range(5):
        (event,) = deliver(device, host)
        if isinstance(event, Connected):
            return event, offered_public_key
        assert event == AuthToken(token)
        if keys:
            host.send_auth(AuthType.SIGNATURE, keys.pop(0).sign_token(event.token))
        else:
            host.send_auth(AuthType.RSAPUBLICKEY, host_keys[0].android_public_key())
        (answer,) = deliver(host, device)
        if isinstance(answer, AuthSignature):
            if any(verify_token_signature(k, token, answer.signature) for k in trusted):
                device.send_connect(DEVICE_BANNER)
            else:
                token = os.urandom(20)
                device.send_auth(AuthType.TOKEN, token)
        else:
            assert isinstance(answer, AuthPublicKey)
            offered_public_key = parse_android_public_key(answer.key)
            trusted.append(offered_public_key)
            device.send_connect(DEVICE_BANNER)
    raise AssertionError("authentication did not finish")


def test_auth_signature_with_a_trusted_key(host_key: AdbKey) -> None:
    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE)
    connected, offered = _authenticate(host, device, [host_key], [host_key.public_key])
    assert isinstance(connected, Connected)
    assert offered is None
    assert host.state is device.state is State.ONLINE


def test_device_auth_carries_zero_checksum_and_the_host_accepts_it(host_key: AdbKey) -> None:
    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE)
    host.send_connect()
    deliver(host, device)
    device.send_auth(AuthType.TOKEN, b"T" * 20)
    raw = device.data_to_send()
    ((header, _data),) = split_packets(raw)
    assert (header.command, header.arg0, header.arg1, header.data_check) == (Command.AUTH, 1, 0, 0)
    host.receive_data(raw)
    assert host.next_event() == AuthToken(b"T" * 20)
    assert not host.negotiated


def test_auth_unknown_key_falls_back_to_the_public_key(host_key: AdbKey, other_key: AdbKey) -> None:
    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE)
    trusted = [other_key.public_key]
    connected, offered = _authenticate(host, device, [host_key], trusted)
    assert isinstance(connected, Connected)
    assert offered is not None
    assert offered.public_numbers() == host_key.public_key.public_numbers()


def test_public_key_goes_out_with_a_trailing_nul(host_key: AdbKey) -> None:
    host, device = AdbConnection(Role.HOST), AdbConnection(Role.DEVICE)
    host.send_connect()
    deliver(host, device)
    key = host_key.android_public_key("tech@bench")
    host.send_auth(AuthType.RSAPUBLICKEY, key)
    raw = host.data_to_send()
    ((header, data),) = split_packets(raw)
    assert header.arg0 == AuthType.RSAPUBLICKEY
    assert data == key + b"\0"
    device.receive_data(raw)
    assert device.next_event() == AuthPublicKey(key)


def test_auth_usage_errors() -> None:
    host, device = AdbConnection(Role.HOST), AdbConnection(Role.DEVICE)
    with pytest.raises(AdbUsageError):
        host.send_auth(AuthType.TOKEN, b"t" * 20)
    with pytest.raises(AdbUsageError):
        device.send_auth(AuthType.SIGNATURE, b"s")
    with pytest.raises(AdbUsageError):
        host.send_auth(7, b"s")
    with pytest.raises(AdbUsageError):
        host.send_auth(AuthType.SIGNATURE, b"s" * 4097)
    device.send_connect(DEVICE_BANNER)
    with pytest.raises(AdbUsageError):
        device.send_auth(AuthType.TOKEN, b"t" * 20)


# ---------------------------------------------------------------------- streams


def test_open_accept_and_exchange_data() -> None:
    host, device = online_pair()
    host_id, device_id = open_pair_stream(host, device, "shell,v2,TERM=xterm,raw:id")
    device.write(device_id, b"uid=2000(shell)\n")
    raw = device.data_to_send()
    ((header, _),) = split_packets(raw)
    assert (header.command, header.arg0, header.arg1) == (Command.WRTE, device_id, host_id)
    host.receive_data(raw)
    assert drain(host) == [StreamData(host_id, b"uid=2000(shell)\n")]
    ((okay, payload),) = split_packets(host.data_to_send())  # the automatic OKAY
    assert (okay.command, okay.arg0, okay.arg1, payload) == (Command.OKAY, host_id, device_id, b"")


def test_one_write_in_flight_per_stream() -> None:
    host, device = online_pair()
    host_id, device_id = open_pair_stream(host, device)
    host.write(host_id, b"first")
    host.write(host_id, b"second")
    assert host.is_write_pending(host_id)
    first = host.data_to_send()
    assert [(h.command, d) for h, d in split_packets(first)] == [(Command.WRTE, b"first")]
    assert host.data_to_send() == b""  # nothing more until the OKAY
    device.receive_data(first)
    assert drain(device) == [StreamData(device_id, b"first")]
    assert drain(host) == []
    assert host.data_to_send() == b""
    assert deliver(device, host) == []  # the OKAY releases the next write
    second = host.data_to_send()
    assert [(h.command, d) for h, d in split_packets(second)] == [(Command.WRTE, b"second")]
    device.receive_data(second)
    assert drain(device) == [StreamData(device_id, b"second")]
    deliver(device, host)
    assert not host.is_write_pending(host_id)


def test_large_writes_are_split_at_max_payload() -> None:
    host, device = online_pair(max_payload=4096)
    host_id, _device_id = open_pair_stream(host, device)
    blob = bytes(range(256)) * 40  # 10240 bytes
    host.write(host_id, blob)
    sizes, received = [], b""
    while host.is_write_pending(host_id):
        raw = host.data_to_send()
        ((header, data),) = split_packets(raw)  # exactly one WRTE per OKAY
        assert header.command == Command.WRTE
        sizes.append(len(data))
        device.receive_data(raw)
        received += b"".join(e.data for e in drain(device))
        deliver(device, host)
    assert sizes == [4096, 4096, 2048]
    assert received == blob


def test_writes_queued_while_opening_go_out_after_okay() -> None:
    host, device = online_pair()
    host_id = host.open_stream("shell:cat")
    host.write(host_id, b"early")
    ((open_header, _),) = split_packets(host.data_to_send())
    assert open_header.command == Command.OPEN
    device.receive_data(raw_packet(Command.OPEN, host_id, 0, b"shell:cat\0"))
    (request,) = drain(device)
    device_id = device.accept_stream(request.remote_id)
    assert deliver(device, host) == [StreamOpened(host_id)]
    assert deliver(host, device) == [StreamData(device_id, b"early")]


def test_refused_stream() -> None:
    host, device = online_pair()
    host_id = host.open_stream("jdwp:1")
    (request,) = deliver(host, device)
    device.refuse_stream(request.remote_id)
    raw = device.data_to_send()
    ((header, _),) = split_packets(raw)
    assert (header.command, header.arg0, header.arg1) == (Command.CLSE, 0, host_id)
    host.receive_data(raw)
    assert drain(host) == [StreamRefused(host_id)]
    assert not host.is_open(host_id)
    with pytest.raises(AdbUsageError):
        host.write(host_id, b"x")
    with pytest.raises(AdbUsageError):
        device.accept_stream(request.remote_id)


def test_device_closes_and_the_host_answers_clse() -> None:
    """AOSP sockets.cpp: the end that receives CLSE closes its socket, which sends CLSE back."""
    host, device = online_pair()
    host_id, device_id = open_pair_stream(host, device)
    device.close_stream(device_id)
    assert not device.is_open(device_id)
    assert deliver(device, host) == [StreamClosed(host_id)]
    ((header, _),) = split_packets(host.data_to_send())
    assert (header.command, header.arg0, header.arg1) == (Command.CLSE, host_id, device_id)
    device.receive_data(raw_packet(Command.CLSE, host_id, device_id))
    assert drain(device) == []  # the answer ends the stream: not answered again
    assert device.data_to_send() == b""
    with pytest.raises(AdbUsageError):
        device.write(device_id, b"late")
    device.close_stream(device_id)  # closing twice is harmless
    assert device.data_to_send() == b""


def test_host_closes_and_the_device_answers() -> None:
    host, device = online_pair()
    host_id, device_id = open_pair_stream(host, device)
    host.close_stream(host_id)
    ((header, _),) = split_packets(host.data_to_send())
    assert (header.command, header.arg0, header.arg1) == (Command.CLSE, host_id, device_id)
    host.receive_data(raw_packet(Command.WRTE, device_id, host_id, b"crossed"))
    assert drain(host) == []  # data that crossed our CLSE is dropped silently
    assert host.data_to_send() == b""  # and not acknowledged
    device.receive_data(raw_packet(Command.CLSE, host_id, device_id))
    assert drain(device) == [StreamClosed(device_id)]
    ((answer, _),) = split_packets(device.data_to_send())
    assert (answer.command, answer.arg0, answer.arg1) == (Command.CLSE, device_id, host_id)
    host.receive_data(raw_packet(Command.CLSE, device_id, host_id))
    assert drain(host) == []
    assert host.data_to_send() == b""


def test_host_close_with_a_device_write_in_flight() -> None:
    """The device's WRTE waits for its OKAY when the host's CLSE comes: answer, drop the rest."""
    host, device = online_pair(max_payload=4096)
    host_id, device_id = open_pair_stream(host, device)
    device.write(device_id, b"x" * 9000)
    device.data_to_send()  # the first WRTE is in flight, two chunks queued
    device.receive_data(raw_packet(Command.CLSE, host_id, device_id))
    assert drain(device) == [StreamClosed(device_id)]
    commands = [(h.command, h.arg0, h.arg1) for h, _ in split_packets(device.data_to_send())]
    assert commands == [(Command.CLSE, device_id, host_id)]
    # The host's OKAY for the in-flight WRTE arrives after: adbd closes the stale id again.
    device.receive_data(raw_packet(Command.OKAY, host_id, device_id))
    assert drain(device) == []
    commands = [(h.command, h.arg0, h.arg1) for h, _ in split_packets(device.data_to_send())]
    assert commands == [(Command.CLSE, device_id, host_id)]
    # A WRTE after the CLSE is dropped without an OKAY.
    device.receive_data(raw_packet(Command.WRTE, host_id, device_id, b"late"))
    assert drain(device) == []
    assert device.data_to_send() == b""


def test_host_ignores_a_device_that_never_answers_clse() -> None:
    """An old device never answers: the host's stream is over at once, nothing is waited for."""
    host, device = online_pair()
    host_id, device_id = open_pair_stream(host, device)
    host.close_stream(host_id)
    host.data_to_send()
    assert not host.is_open(host_id)
    assert not host.is_write_pending(host_id)
    other, _ = open_pair_stream(host, device)
    assert other != host_id
    del device_id


def test_unknown_local_id() -> None:
    host, device = online_pair()
    device.receive_data(
        raw_packet(Command.WRTE, 7, 99, b"nobody")
        + raw_packet(Command.CLSE, 7, 99)
        + raw_packet(Command.OKAY, 0, 99)
    )
    assert drain(device) == []
    assert device.data_to_send() == b""
    device.receive_data(raw_packet(Command.OKAY, 7, 99))
    assert drain(device) == []
    ((header, _),) = split_packets(device.data_to_send())
    assert (header.command, header.arg0, header.arg1) == (Command.CLSE, 99, 7)
    del host


def test_graceful_close_sends_queued_data_first() -> None:
    host, device = online_pair(max_payload=4096)
    host_id, device_id = open_pair_stream(host, device)
    host.write(host_id, b"a" * 5000)
    host.close_stream(host_id)
    assert not host.is_open(host_id)
    events = deliver(host, device)
    assert events == [StreamData(device_id, b"a" * 4096)]
    deliver(device, host)
    raw = host.data_to_send()
    commands = [h.command for h, _ in split_packets(raw)]
    assert commands == [Command.WRTE]  # the last chunk; CLSE waits for its OKAY
    device.receive_data(raw)
    assert drain(device) == [StreamData(device_id, b"a" * 904)]
    deliver(device, host)
    commands = [h.command for h, _ in split_packets(host.data_to_send())]
    assert commands == [Command.CLSE]


def test_abort_close_drops_the_queue() -> None:
    host, device = online_pair(max_payload=4096)
    host_id, _device_id = open_pair_stream(host, device)
    host.write(host_id, b"a" * 9000)
    host.close_stream(host_id, abort=True)
    commands = [h.command for h, _ in split_packets(host.data_to_send())]
    assert commands == [Command.WRTE, Command.CLSE]


def test_close_while_opening_closes_after_okay() -> None:
    host, device = online_pair()
    host_id = host.open_stream("shell:sleep 9")
    host.close_stream(host_id)
    (request,) = deliver(host, device)
    device_id = device.accept_stream(request.remote_id)
    assert deliver(device, host) == []  # no StreamOpened for a stream we closed
    assert deliver(host, device) == [StreamClosed(device_id)]


def test_stale_stream_packets_are_ignored() -> None:
    host, device = online_pair()
    host_id, device_id = open_pair_stream(host, device)
    host.receive_data(
        raw_packet(Command.WRTE, 99, 42, b"nobody")
        + raw_packet(Command.WRTE, 99, host_id, b"wrong remote")
        + raw_packet(Command.OKAY, device_id, host_id)  # no write in flight
        + raw_packet(Command.OKAY, 0, host_id)
        + raw_packet(Command.CLSE, 99, 42)
        + raw_packet(Command.CLSE, 99, host_id)
        + raw_packet(Command.OPEN, 0, 0, b"bad\0")
    )
    assert drain(host) == []
    assert host.data_to_send() == b""
    assert host.is_open(host_id)


def test_host_refuses_streams_the_device_opens() -> None:
    host, device = online_pair()
    device_id = device.open_stream("tcp:5555")
    assert deliver(device, host) == []
    assert deliver(host, device) == [StreamRefused(device_id)]


def test_second_cnxn_means_the_peer_restarted() -> None:
    host, device = online_pair()
    host_id, _ = open_pair_stream(host, device)
    opening = host.open_stream("sync:")
    fresh = AdbConnection(Role.DEVICE)
    fresh.receive_data(host.data_to_send())
    fresh.send_connect(DEVICE_BANNER)
    events = deliver(fresh, host)
    assert events[:2] == [StreamClosed(host_id), StreamRefused(opening)]
    assert isinstance(events[2], Connected)
    assert host.state is State.ONLINE


def test_transfers_keep_header_and_payload_apart() -> None:
    host, device = online_pair()
    host.open_stream("shell:ls")
    transfers = host.transfers_to_send()
    assert [len(t) for t in transfers] == [24, len(b"shell:ls\0")]
    device.receive_data(b"".join(transfers))
    (request,) = drain(device)
    device.accept_stream(request.remote_id)
    assert [len(t) for t in device.transfers_to_send()] == [24]  # never an empty transfer
    assert host.data_to_send() == b""


def test_usage_errors() -> None:
    host = AdbConnection(Role.HOST)
    with pytest.raises(AdbUsageError):
        host.open_stream("shell:id")
    with pytest.raises(ValueError):
        AdbConnection(Role.HOST, max_payload=1024)
    with pytest.raises(ValueError):
        AdbConnection(Role.HOST, version=0x00FF0000)
    with pytest.raises(ValueError):
        AdbConnection(Role.HOST, features=["shell_v2", "delayed_ack"])
    with pytest.raises(AdbUsageError):
        host.send_connect("x" * 4097)
    host, device = online_pair()
    with pytest.raises(AdbUsageError):
        device.accept_stream(77)
    with pytest.raises(AdbUsageError):
        device.refuse_stream(77)
    with pytest.raises(AdbUsageError):
        host.write(5, b"x")
    host.close_stream(5)  # unknown ids: nothing to do
    host_id, _ = open_pair_stream(host, device)
    host.write(host_id, b"")
    assert host.data_to_send() == b""


def test_stream_ids_are_never_zero_and_not_reused_while_open() -> None:
    host, device = online_pair()
    ids = {open_pair_stream(host, device)[0] for _ in range(5)}
    assert 0 not in ids
    assert len(ids) == 5


# ---------------------------------------------------------------------- fragmentation


_HOST_CNXN = AdbPacket(
    Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, b"host::features=cmd"
).encode()


def _host_transcript() -> bytes:
    """A host's side of a session: CNXN, OPEN, one WRTE, CLSE (device ids are predictable)."""
    return (
        _HOST_CNXN
        + AdbPacket(Command.OPEN, 1, 0, b"shell:echo hi\0").encode(with_checksum=False)
        + AdbPacket(Command.OKAY, 1, 1).encode(with_checksum=False)
        + AdbPacket(Command.WRTE, 1, 1, b"\x04\x00\x00\x00\x00").encode(with_checksum=False)
        + AdbPacket(Command.CLSE, 1, 1).encode(with_checksum=False)
    )


def _respond(conn: AdbConnection, event) -> None:
    """A simple peer policy that reaches every code path: accept everything, echo data."""
    if isinstance(event, Connected) and conn.role is Role.DEVICE:
        conn.send_connect(DEVICE_BANNER)
    elif isinstance(event, StreamOpenRequested):
        conn.accept_stream(event.remote_id)
    elif isinstance(event, StreamData):
        conn.write(event.local_id, event.data[:8])
    elif isinstance(event, AuthToken):
        conn.send_auth(AuthType.SIGNATURE, b"\x01" * 256)


def _run(conn: AdbConnection, chunks: list[bytes]) -> tuple[list, bytes]:
    events, out = [], b""
    for chunk in chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
            _respond(conn, event)
        out += conn.data_to_send()
    return events, out


def test_byte_by_byte_feeding_gives_the_same_events() -> None:
    transcript = _host_transcript()
    whole = _run(AdbConnection(Role.DEVICE), [transcript])
    bytewise = _run(
        AdbConnection(Role.DEVICE), [transcript[i : i + 1] for i in range(len(transcript))]
    )
    assert whole == bytewise
    events = whole[0]
    assert [type(e) for e in events] == [Connected, StreamOpenRequested, StreamData, StreamClosed]
    assert events[1] == StreamOpenRequested(1, "shell:echo hi")


# ---------------------------------------------------------------------- properties


def _assert_only_protocol_errors(conn: AdbConnection, chunks: list[bytes]) -> None:
    try:
        _run(conn, chunks)
    except AdbProtocolError:
        assert conn.state is State.CLOSED
        with pytest.raises(AdbProtocolError):
            conn.next_event()


@settings(max_examples=150, deadline=None)
@given(role=st.sampled_from(list(Role)), chunks=st.lists(st.binary(max_size=80), max_size=8))
def test_random_bytes_raise_only_protocol_errors(role: Role, chunks: list[bytes]) -> None:
    _assert_only_protocol_errors(AdbConnection(role), chunks)


_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "zero"]),
    st.integers(0, 10_000),
    st.integers(0, 255),
)


def _mutate(data: bytes, mutations) -> bytes:
    buffer = bytearray(data)
    for kind, position, value in mutations:
        if not buffer:
            break
        index = position % len(buffer)
        if kind == "flip":
            buffer[index] ^= value or 1
        elif kind == "insert":
            buffer.insert(index, value)
        elif kind == "delete":
            del buffer[index]
        else:
            buffer[index] = 0
    return bytes(buffer)


def _device_transcript() -> bytes:
    return (
        AdbPacket(Command.AUTH, AuthType.TOKEN, 0, b"\x07" * 20).encode(with_checksum=False)
        + AdbPacket(
            Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, DEVICE_BANNER.encode()
        ).encode(with_checksum=False)
        + AdbPacket(Command.OKAY, 1, 1).encode(with_checksum=False)
        + AdbPacket(Command.WRTE, 1, 1, b"\x01\x03\x00\x00\x00abc").encode(with_checksum=False)
        + AdbPacket(Command.OPEN, 9, 0, b"tcp:1\0").encode(with_checksum=False)
        + AdbPacket(Command.CLSE, 1, 1).encode(with_checksum=False)
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(_MUTATION, min_size=1, max_size=4),
    cut=st.lists(st.integers(1, 60), max_size=10),
    keep_cnxn=st.booleans(),
)
def test_mutated_device_sessions_raise_only_protocol_errors(mutations, cut, keep_cnxn) -> None:
    # Half the runs keep the (checksummed) CNXN intact so mutations reach the stream code.
    transcript = _host_transcript()
    keep = len(_HOST_CNXN) if keep_cnxn else 0
    data = transcript[:keep] + _mutate(transcript[keep:], mutations)
    chunks, start = [], 0
    for size in cut:
        chunks.append(data[start : start + size])
        start += size
    chunks.append(data[start:])
    _assert_only_protocol_errors(AdbConnection(Role.DEVICE), chunks)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=4))
def test_mutated_host_sessions_raise_only_protocol_errors(mutations) -> None:
    host = AdbConnection(Role.HOST)
    host.send_connect()
    host.data_to_send()
    data = _device_transcript()
    # Open stream 1 once the device is online so OKAY/WRTE/CLSE reach a real stream.
    try:
        host.receive_data(_mutate(data, mutations))
        while (event := host.next_event()) is not NEED_DATA:
            _respond(host, event)
            if isinstance(event, Connected) and not host.is_open(1):
                host.open_stream("shell:x")
    except AdbProtocolError:
        assert host.state is State.CLOSED


def test_unmutated_host_session_reaches_every_event() -> None:
    host = AdbConnection(Role.HOST)
    host.send_connect()
    host.data_to_send()
    host.receive_data(_device_transcript())
    seen = []
    while (event := host.next_event()) is not NEED_DATA:
        seen.append(type(event))
        _respond(host, event)
        if isinstance(event, Connected):
            host.open_stream("shell:x")
    assert seen == [AuthToken, Connected, StreamOpened, StreamData, StreamClosed]
