"""ADB packet headers, constants and CNXN banners (pure functions, no connection state)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdiag.drivers.adb.protocol import (
    A_SYNC,
    A_VERSION,
    A_VERSION_MIN,
    A_VERSION_SKIP_CHECKSUM,
    HEADER_SIZE,
    MAX_PAYLOAD,
    MAX_PAYLOAD_V1,
    AdbPacket,
    AdbProtocolError,
    AuthType,
    Banner,
    Command,
    build_banner,
    checksum,
    command_name,
    decode_packet,
    pack_header,
    parse_banner,
    unpack_header,
)
from posdiag.drivers.errors import ProtocolError

# CNXN(0x01000001, 0x00100000, "host::"), hand-computed:
#   command  "CNXN"                       43 4e 58 4e
#   arg0     0x01000001                   01 00 00 01
#   arg1     0x00100000 (1 MiB)           00 00 10 00
#   length   6                            06 00 00 00
#   check    h+o+s+t+:+: = 104+111+115+116+58+58 = 562 = 0x232   32 02 00 00
#   magic    0x4e584e43 ^ 0xffffffff = 0xb1a7b1bc                bc b1 a7 b1
CNXN_HOST_HEADER = bytes.fromhex("434e584e 01000001 00001000 06000000 32020000 bcb1a7b1")
# OKAY(1, 2, ""): magic 0x59414b4f ^ 0xffffffff = 0xa6beb4b0.
OKAY_1_2 = bytes.fromhex("4f4b4159 01000000 02000000 00000000 00000000 b0b4bea6")


def test_commands_are_their_ascii_tags_read_little_endian() -> None:
    for command in Command:
        assert command.value == int.from_bytes(command.name.encode(), "little")
    assert Command.CNXN == 0x4E584E43
    assert Command.STLS == 0x534C5453
    assert int.from_bytes(b"SYNC", "little") == A_SYNC


def test_constants() -> None:
    assert (A_VERSION_MIN, A_VERSION_SKIP_CHECKSUM, A_VERSION) == (
        0x01000000,
        0x01000001,
        0x01000001,
    )
    assert (MAX_PAYLOAD_V1, MAX_PAYLOAD, HEADER_SIZE) == (4096, 1024 * 1024, 24)
    assert (AuthType.TOKEN, AuthType.SIGNATURE, AuthType.RSAPUBLICKEY) == (1, 2, 3)


def test_cnxn_header_vector() -> None:
    packet = AdbPacket(Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, b"host::")
    assert packet.encode() == CNXN_HOST_HEADER + b"host::"
    assert checksum(b"host::") == 0x232


def test_okay_header_vector_and_zero_checksum_form() -> None:
    assert AdbPacket(Command.OKAY, 1, 2).encode() == OKAY_1_2
    wrte = AdbPacket(Command.WRTE, 1, 2, b"\xff\xff").encode(with_checksum=False)
    assert wrte[16:20] == bytes(4)
    assert AdbPacket(Command.WRTE, 1, 2, b"\xff\xff").encode()[16:20] == bytes.fromhex("fe010000")


def test_checksum_is_a_byte_sum_not_a_crc() -> None:
    assert checksum(b"") == 0
    assert checksum(bytes([1, 2, 3])) == 6
    assert checksum(b"\xff" * 1000) == 255_000


def test_unpack_header_round_trip() -> None:
    header = unpack_header(CNXN_HOST_HEADER)
    assert (header.command, header.arg0, header.arg1) == (Command.CNXN, 0x01000001, 0x100000)
    assert (header.data_length, header.data_check, header.magic) == (6, 0x232, 0xB1A7B1BC)


def test_unpack_header_rejects_bad_magic() -> None:
    bad = OKAY_1_2[:20] + bytes(4)
    with pytest.raises(AdbProtocolError, match="magic"):
        unpack_header(bad)


def test_unpack_header_rejects_unknown_and_obsolete_commands() -> None:
    with pytest.raises(AdbProtocolError, match="SYNC"):
        unpack_header(pack_header(A_SYNC, 0, 0, 0, 0))
    with pytest.raises(AdbProtocolError, match="unknown command"):
        unpack_header(pack_header(0x12345678, 0, 0, 0, 0))


def test_unpack_header_needs_exactly_24_bytes() -> None:
    with pytest.raises(AdbProtocolError):
        unpack_header(OKAY_1_2[:23])


def test_protocol_error_is_the_shared_base() -> None:
    assert issubclass(AdbProtocolError, ProtocolError)


def test_pack_header_rejects_values_beyond_uint32() -> None:
    with pytest.raises(ValueError):
        pack_header(Command.OKAY, -1, 0, 0, 0)
    with pytest.raises(ValueError):
        pack_header(Command.OKAY, 0, 1 << 32, 0, 0)


def test_decode_packet_checks_length_and_checksum() -> None:
    raw = AdbPacket(Command.WRTE, 5, 6, b"hello").encode()
    assert decode_packet(raw) == AdbPacket(Command.WRTE, 5, 6, b"hello")
    with pytest.raises(AdbProtocolError, match="announces"):
        decode_packet(raw[:-1])
    with pytest.raises(AdbProtocolError, match="announces"):
        decode_packet(raw + b"x")
    with pytest.raises(AdbProtocolError, match="checksum"):
        decode_packet(raw[:-1] + b"O")
    assert decode_packet(raw[:-1] + b"O", verify_checksum=False).data == b"hellO"
    with pytest.raises(AdbProtocolError, match="exceeds"):
        decode_packet(raw, max_payload=4)


def test_command_name_shows_unknown_tags() -> None:
    assert command_name(Command.WRTE) == "WRTE"
    assert "'SYNC'" in command_name(A_SYNC)
    assert "00ff00ff" in command_name(0xFF00FF00)


# ---------------------------------------------------------------------- banners

DEVICE_BANNER = (
    b"device::ro.product.name=A920;ro.product.model=A920 Pro;ro.product.device=A920;"
    b"features=shell_v2,cmd,stat_v2"
)


def test_build_device_banner_in_adb_order() -> None:
    banner = build_banner(
        "device",
        {"ro.product.name": "A920", "ro.product.model": "A920 Pro", "ro.product.device": "A920"},
        ["shell_v2", "cmd", "stat_v2"],
    )
    assert banner == DEVICE_BANNER


def test_build_host_banner() -> None:
    assert build_banner("host", features=("shell_v2", "cmd")) == b"host::features=shell_v2,cmd"
    assert build_banner("host", features={"cmd", "shell_v2"}) == b"host::features=cmd,shell_v2"
    assert build_banner("host") == b"host::features="


@pytest.mark.parametrize(
    ("system_type", "properties", "features"),
    [
        ("dev:ice", {}, ()),
        ("device", {"a;b": "x"}, ()),
        ("device", {"a=b": "x"}, ()),
        ("device", {"a": "x;y"}, ()),
        ("device", {}, ("a,b",)),
        ("device", {}, ("",)),
    ],
)
def test_build_banner_rejects_separators(system_type, properties, features) -> None:
    with pytest.raises(ValueError):
        build_banner(system_type, properties, features)


def test_parse_device_banner() -> None:
    banner = parse_banner(DEVICE_BANNER)
    assert banner.system_type == "device"
    assert banner.serial == ""
    assert banner.properties == {
        "ro.product.name": "A920",
        "ro.product.model": "A920 Pro",
        "ro.product.device": "A920",
    }
    assert banner.features == frozenset({"shell_v2", "cmd", "stat_v2"})
    assert banner.is_device


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"host::\0", Banner("host")),
        (b"host::features=shell_v2\0junk", Banner("host", features=frozenset({"shell_v2"}))),
        (b"device::ro.product.name=X;", Banner("device", properties={"ro.product.name": "X"})),
        (b"device:SER123:noequals;=v;k=", Banner("device", "SER123", {"k": ""})),
        (b"bootloader", Banner("bootloader")),
        (b"", Banner("")),
        (b"recovery:a:b:c=d:e", Banner("recovery", "a", {"b:c": "d:e"})),
        (b"device::features=,a,,b", Banner("device", features=frozenset({"a", "b"}))),
        (b"\xff\xfe::", Banner("\ufffd\ufffd")),
    ],
)
def test_parse_banner_tolerates_what_peers_send(raw: bytes, expected: Banner) -> None:
    banner = parse_banner(raw)
    assert banner == expected
    assert dict(banner.properties) == dict(expected.properties)


def test_system_types_that_count_as_device() -> None:
    for name in ("device", "bootloader", "recovery", "sideload", "rescue"):
        assert parse_banner(f"{name}::".encode()).is_device
    assert not parse_banner(b"host::").is_device
    assert not parse_banner(b"toaster::").is_device


_token = st.text(
    alphabet=st.characters(exclude_characters=":;=,\0", exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
)


@given(
    system_type=_token,
    properties=st.dictionaries(_token.filter(lambda k: k != "features"), _token, max_size=5),
    features=st.lists(_token, max_size=6, unique=True),
)
def test_banner_round_trip(system_type, properties, features) -> None:
    banner = parse_banner(build_banner(system_type, properties, features))
    assert banner.system_type == system_type
    assert dict(banner.properties) == properties
    assert banner.features == frozenset(features)


@given(st.binary(max_size=200))
def test_parse_banner_never_raises(raw: bytes) -> None:
    parse_banner(raw)


@given(st.binary(min_size=24, max_size=24))
def test_unpack_header_raises_only_protocol_errors(raw: bytes) -> None:
    try:
        header = unpack_header(raw)
    except AdbProtocolError:
        return
    assert header.magic == header.command ^ 0xFFFFFFFF


@given(
    command=st.sampled_from(list(Command)),
    arg0=st.integers(0, 0xFFFFFFFF),
    arg1=st.integers(0, 0xFFFFFFFF),
    data=st.binary(max_size=64),
)
def test_packet_round_trip(command, arg0, arg1, data) -> None:
    assert decode_packet(AdbPacket(command, arg0, arg1, data).encode()) == AdbPacket(
        command, arg0, arg1, data
    )
