"""BCD, BER-TLV (BMP 06), BMPs and the APDU envelope of the ZVT codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdiag.drivers.zvt.apdu import Apdu, apdu_total_length, decode_apdu
from posdiag.drivers.zvt.bcd import decode_bcd, decode_bcd_int, encode_bcd, encode_password
from posdiag.drivers.zvt.bmp import (
    BMP_SPECS,
    Bmp,
    BmpKind,
    bmp_map,
    decode_bmps,
    decode_lllvar_length,
    encode_bmp,
    encode_lllvar_length,
    encode_tlv_bmp,
)
from posdiag.drivers.zvt.errors import ZvtDecodeError
from posdiag.drivers.zvt.tlv import (
    Tlv,
    decode_length,
    decode_tlv,
    encode_length,
    encode_tlv,
    find,
    tag_bytes,
)

# --- BCD ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "length", "wire"),
    [
        ("123456", 3, "12 34 56"),
        (978, 2, "09 78"),
        ("0978", 2, "09 78"),
        ("29001006", 4, "29 00 10 06"),
        (2500, 6, "00 00 00 00 25 00"),
        ("0", 1, "00"),
        (7, 1, "07"),
    ],
)
def test_encode_bcd(digits, length, wire):
    assert encode_bcd(digits, length) == bytes.fromhex(wire)


@pytest.mark.parametrize(
    ("digits", "length"),
    [("12a4", 2), ("", 1), ("-1", 1), (-5, 2), ("12 3", 2), ("123", 1), (10000, 2), ("1.5", 2)],
)
def test_encode_bcd_rejects(digits, length):
    with pytest.raises(ValueError):
        encode_bcd(digits, length)


@pytest.mark.parametrize("wire", ["1a", "a0", "ff", "00 0f", "12 3c"])
def test_decode_bcd_rejects_nibbles_above_nine(wire):
    with pytest.raises(ZvtDecodeError):
        decode_bcd(bytes.fromhex(wire))
    with pytest.raises(ZvtDecodeError):
        decode_bcd_int(bytes.fromhex(wire))


def test_decode_bcd_keeps_leading_zeros_and_int_drops_them():
    assert decode_bcd(bytes.fromhex("00 09 78")) == "000978"
    assert decode_bcd_int(bytes.fromhex("00 09 78")) == 978
    assert decode_bcd_int(bytes.fromhex("00 00 00 00 00 00")) == 0


@given(
    st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 10 ** (2 * n) - 1)))
)
def test_bcd_int_round_trip(case):
    length, value = case
    wire = encode_bcd(value, length)
    assert len(wire) == length
    assert decode_bcd_int(wire) == value
    assert decode_bcd(wire) == str(value).rjust(2 * length, "0")


@given(st.text("0123456789", min_size=6, max_size=6))
def test_password_round_trip(password):
    wire = encode_password(password)
    assert len(wire) == 3
    assert wire.hex() == password
    assert decode_bcd(wire) == password


def test_password_example_from_spec():
    assert encode_password("123456") == b"\x12\x34\x56"


@pytest.mark.parametrize("password", ["12345", "1234567", "12345a", "", "12 456", "١٢٣٤٥٦"])
def test_password_rejects(password):
    with pytest.raises(ValueError):
        encode_password(password)


# --- BER-TLV -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "wire"),
    [
        (0x07, "07"),
        (0x1B, "1B"),
        (0x25, "25"),
        (0xE4, "E4"),
        (0x1F44, "1F 44"),
        (0xFF40, "FF 40"),
        (0x1F8101, "1F 81 01"),
        (0xDF8F01, "DF 8F 01"),
    ],
)
def test_tag_bytes_and_single_object(tag, wire):
    assert tag_bytes(tag) == bytes.fromhex(wire)
    encoded = Tlv(tag, b"\xab").encode()
    assert encoded == bytes.fromhex(wire) + b"\x01\xab"
    assert decode_tlv(encoded) == (Tlv(tag, b"\xab"),)


def test_tag_bytes_rejects_negative():
    with pytest.raises(ValueError):
        tag_bytes(-1)


@pytest.mark.parametrize(
    ("length", "wire"),
    [
        (0, "00"),
        (0x7F, "7F"),
        (0x80, "81 80"),
        (0xFF, "81 FF"),
        (0x100, "82 01 00"),
        (0x1234, "82 12 34"),  # big-endian, unlike the APDU's extended length
        (0xFFFF, "82 FF FF"),
    ],
)
def test_length_forms(length, wire):
    raw = bytes.fromhex(wire)
    assert encode_length(length) == raw
    assert decode_length(raw, 0) == (length, len(raw))
    assert decode_length(b"\xee" + raw, 1) == (length, len(raw) + 1)


def test_length_too_long_to_encode():
    with pytest.raises(ValueError):
        encode_length(0x10000)


@pytest.mark.parametrize(
    "wire",
    [
        "",  # missing
        "80",  # indefinite form
        "83 00 00 01",  # 3 length bytes
        "84 00 00 00 01",
        "81",  # truncated
        "82 01",
    ],
)
def test_bad_lengths(wire):
    with pytest.raises(ZvtDecodeError):
        decode_length(bytes.fromhex(wire), 0)


@pytest.mark.parametrize("size", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x3000])
def test_object_length_boundaries_round_trip(size):
    item = Tlv(0x1F41, bytes(range(256)) * (size // 256) + bytes(size % 256))
    assert decode_tlv(item.encode()) == (item,)


@pytest.mark.parametrize(
    "wire",
    [
        "1F",  # multi-byte tag without its next byte
        "1F 81",  # continuation bit set, nothing follows
        "5F 81 81",
        "1F 44",  # no length
        "1F 44 04 29 00 10",  # value truncated
        "07 05 41",
        "07 81",  # long length truncated
        "07 82 00",
        "E4 82 01 00 00",
        "1F 44 80",  # indefinite length is not used by ZVT
        "1F 81 81 81 81 01 00",  # tag longer than 4 bytes
    ],
)
def test_truncated_or_bad_tlv_raises(wire):
    with pytest.raises(ZvtDecodeError):
        decode_tlv(bytes.fromhex(wire))


def test_four_byte_tag_is_the_longest_accepted():
    assert decode_tlv(bytes.fromhex("1F 81 81 01 00")) == (Tlv(0x1F818101, b""),)
    with pytest.raises(ZvtDecodeError):
        decode_tlv(bytes.fromhex("1F 81 81 81 01 00"))


def test_empty_tlv_is_empty_tuple():
    assert decode_tlv(b"") == ()


STATUS_TLV = (
    Tlv(0x1F44, bytes.fromhex("29 00 10 06")),
    Tlv.build(
        0xE4,
        [
            Tlv(0x1F40, b"Sim PT"),
            Tlv(0x1F41, b"SIM-APP-1.0"),
            Tlv(0x1F42, bytes.fromhex("0A 1B 2C 3D")),
            Tlv(0x1F43, b"\x00"),
        ],
    ),
    Tlv.build(0x34, [Tlv(0x1F0E, bytes.fromhex("20240102")), Tlv(0x1F0F, bytes.fromhex("123000"))]),
)


def test_constructed_flag():
    assert Tlv(0xE4).constructed
    assert Tlv(0x34).constructed
    assert Tlv(0xFF40).constructed
    assert Tlv(0x25).constructed
    assert not Tlv(0x1F44).constructed
    assert not Tlv(0x07).constructed


def test_find_paths():
    items = decode_tlv(encode_tlv(STATUS_TLV))
    assert items == STATUS_TLV
    assert find(items, 0x1F44) == Tlv(0x1F44, bytes.fromhex("29 00 10 06"))
    assert find(items, 0xE4, 0x1F40) == Tlv(0x1F40, b"Sim PT")
    assert find(items, 0xE4, 0x1F42).value == bytes.fromhex("0A 1B 2C 3D")
    assert find(items, 0x34, 0x1F0F).value == bytes.fromhex("123000")
    assert find(items, 0xE4) == STATUS_TLV[1]
    assert find(items, 0xE7) is None
    assert find(items, 0xE4, 0x1F57) is None
    assert find(items, 0x1F44, 0x01) is None  # primitive value "29 00 10 06" is not a TLV list
    assert find(items) is None
    assert find((), 0x1F44) is None


def test_find_first_match_wins():
    items = (Tlv(0x07, b"one"), Tlv(0x07, b"two"))
    assert find(items, 0x07) == Tlv(0x07, b"one")


def test_feig_constructed_tag_with_primitive_payload_is_tolerated():
    # Feig's Change Configuration carries E4 { FF40 <password>, FF41 <value> }: FF40 has the
    # constructed bit set but a plain value, which must not break decoding or find().
    tlv_bytes = bytes.fromhex("E4 0E FF 40 03 12 34 56 FF 41 05 01 02 03 04 05")
    items = decode_tlv(tlv_bytes)
    assert [item.tag for item in items] == [0xE4]
    password = find(items, 0xE4, 0xFF40)
    assert password == Tlv(0xFF40, bytes.fromhex("12 34 56"))
    assert password.constructed
    with pytest.raises(ZvtDecodeError):
        password.children()
    assert find(items, 0xE4, 0xFF40, 0x12) is None
    assert find(items, 0xE4, 0xFF41).value == bytes.fromhex("01 02 03 04 05")
    assert encode_tlv(items) == tlv_bytes


def _one_byte_tag():
    return st.integers(0, 0xFF).filter(lambda b: b & 0x1F != 0x1F)


def _multi_byte_tag():
    first = st.integers(0, 7).map(lambda cls: (cls << 5) | 0x1F)
    middle = st.lists(st.integers(0x80, 0xFF), max_size=2)
    last = st.integers(0x00, 0x7F)
    return st.tuples(first, middle, last).map(
        lambda parts: int.from_bytes(bytes([parts[0], *parts[1], parts[2]]), "big")
    )


TAGS = st.one_of(_one_byte_tag(), _multi_byte_tag())

TLV_TREES = st.recursive(
    st.builds(Tlv, TAGS, st.binary(max_size=300)),
    lambda children: st.builds(Tlv.build, TAGS, st.lists(children, max_size=4)),
    max_leaves=12,
)


@given(st.lists(TLV_TREES, max_size=5))
def test_tlv_round_trip(items):
    wire = encode_tlv(items)
    assert decode_tlv(wire) == tuple(items)
    for item in items:
        assert decode_tlv(item.encode()) == (item,)


@given(st.lists(TLV_TREES, min_size=1, max_size=4), st.data())
def test_tlv_truncation_always_raises(items, data):
    wire = encode_tlv(items)
    cut = data.draw(st.integers(1, len(wire)))
    truncated = wire[:-cut]
    # Cutting inside the last object must raise; cutting at an object boundary is a valid list.
    boundaries = {0}
    offset = 0
    for item in items:
        offset += len(item.encode())
        boundaries.add(offset)
    if len(truncated) in boundaries:
        decode_tlv(truncated)
    else:
        with pytest.raises(ZvtDecodeError):
            decode_tlv(truncated)


@given(st.binary(max_size=300))
def test_tlv_random_bytes_decode_or_raise_decode_error(data):
    try:
        items = decode_tlv(data)
    except ZvtDecodeError:
        return
    assert encode_tlv(items) == data or len(encode_tlv(items)) < len(data)  # non-minimal lengths


# --- BMPs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bmp_id", "data", "wire"),
    [
        (0x27, b"\x00", "27 00"),
        (0x29, bytes.fromhex("29001006"), "29 29 00 10 06"),
        (0x04, bytes.fromhex("000000002500"), "04 00 00 00 00 25 00"),
        (0x49, bytes.fromhex("0978"), "49 09 78"),
        (0x19, b"\x10", "19 10"),
        (0x22, bytes.fromhex("1234567890eeee"), "22 F0 F7 12 34 56 78 90 EE EE"),
        (0x8B, b"girocard", "8B F0 F8 67 69 72 6F 63 61 72 64"),
        (0x3C, b"", "3C F0 F0 F0"),
        (0x3C, b"x" * 123, "3C F1 F2 F3" + " 78" * 123),
        (0x60, bytes(53), "60 F0 F5 F3" + " 00" * 53),
        (0x06, b"", "06 00"),
        (0x06, bytes.fromhex("1B0102"), "06 03 1B 01 02"),
        (0x06, bytes(0x80), "06 81 80" + " 00" * 0x80),
        (0x06, bytes(0x1234), "06 82 12 34" + " 00" * 0x1234),
    ],
)
def test_bmp_encode_decode(bmp_id, data, wire):
    raw = bytes.fromhex(wire)
    assert encode_bmp(bmp_id, data) == raw
    assert decode_bmps(raw) == (Bmp(bmp_id, data),)
    assert decode_bmps(b"\xaa\xbb" + raw, 2) == (Bmp(bmp_id, data),)


def test_bmp_sequence_like_a_status_information():
    # Synthetic 04 0F body: result, amount, currency, time, date, PAN, receipt, trace, TID,
    # card type, card name, VU number.
    fields = [
        (0x27, b"\x00"),
        (0x04, bytes.fromhex("000000001999")),
        (0x49, bytes.fromhex("0978")),
        (0x0C, bytes.fromhex("120000")),
        (0x0D, bytes.fromhex("0101")),
        (0x22, bytes.fromhex("1234567890eeee")),
        (0x87, bytes.fromhex("0001")),
        (0x0B, bytes.fromhex("000001")),
        (0x29, bytes.fromhex("29001006")),
        (0x8A, b"\x05"),
        (0x8B, b"girocard\x00"),
        (0x2A, b"123456789012345"),
    ]
    data = b"".join(encode_bmp(bmp_id, value) for bmp_id, value in fields)
    bmps = decode_bmps(data)
    assert [(b.bmp_id, b.data) for b in bmps] == fields
    mapping = bmp_map(bmps)
    assert mapping[0x29].data.hex() == "29001006"
    assert mapping[0x04].name == "amount"


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ("FF 00", "unknown BMP FF"),
        ("27 00 07 01", "unknown BMP 07"),
        ("29 29 00", "needs 4 bytes"),
        ("22 F0", "length truncated"),
        ("3C F0 F1", "length truncated"),
        ("22 F1 0A 00", "bad length byte 0a"),
        ("22 E1 F0", "bad length byte e1"),
        ("22 FA F0", "bad length byte fa"),
        ("3C F0 F0 F5 01 02", "needs 5 bytes"),
        ("06 05 1F 44", "needs 5 bytes"),
        ("06", "TLV length missing"),
        ("06 81", "TLV length truncated"),
    ],
)
def test_bmp_decode_errors(wire, message):
    with pytest.raises(ZvtDecodeError, match=message):
        decode_bmps(bytes.fromhex(wire))


def test_unknown_bmp_encode_raises():
    with pytest.raises(ValueError):
        encode_bmp(0x07, b"")


@pytest.mark.parametrize(
    ("bmp_id", "data"),
    [
        (0x27, b""),
        (0x27, b"\x00\x00"),
        (0x29, b"\x01\x02\x03"),
        (0x22, bytes(100)),
        (0x3C, bytes(1000)),
    ],
)
def test_bmp_encode_size_errors(bmp_id, data):
    with pytest.raises(ValueError):
        encode_bmp(bmp_id, data)


def test_bmp_names_and_tlv_accessor():
    assert Bmp(0x29, b"RR55").name == "terminal_id"
    assert Bmp(0x07, b"").name == "bmp_07"
    assert Bmp(0x06, bytes.fromhex("1B 01 02")).tlv() == (Tlv(0x1B, b"\x02"),)
    with pytest.raises(ZvtDecodeError):
        Bmp(0x27, b"\x00").tlv()


def test_encode_tlv_bmp_empty_is_permission():
    assert encode_tlv_bmp([]) == b"\x06\x00"
    assert encode_tlv_bmp([Tlv(0x1B, b"\x02")]) == bytes.fromhex("06 03 1B 01 02")


def test_bmp_map_first_occurrence_wins():
    bmps = decode_bmps(bytes.fromhex("27 01 27 02 19 10"))
    assert len(bmps) == 3
    mapping = bmp_map(bmps)
    assert mapping[0x27].data == b"\x01"
    assert mapping[0x19].data == b"\x10"


@pytest.mark.parametrize("length", [0, 1, 9, 10, 99, 100, 137, 999])
def test_lllvar_length_prefix(length):
    prefix = encode_lllvar_length(length)
    assert len(prefix) == 3
    assert all(b & 0xF0 == 0xF0 for b in prefix)
    assert decode_lllvar_length(prefix + b"rest", 0) == (length, 3)


def test_lllvar_length_prefix_example_and_overflow():
    assert encode_lllvar_length(40) == bytes.fromhex("F0 F4 F0")
    with pytest.raises(ValueError):
        encode_lllvar_length(1000)


def _bmp_strategy(bmp_id: int):
    spec = BMP_SPECS[bmp_id]
    if spec.kind is BmpKind.FIXED:
        data = st.binary(min_size=spec.size, max_size=spec.size)
    elif spec.kind is BmpKind.LLVAR:
        data = st.binary(max_size=99)
    elif spec.kind is BmpKind.LLLVAR:
        data = st.binary(max_size=400)
    else:
        data = st.binary(max_size=400)
    return data.map(lambda d: Bmp(bmp_id, d))


BMPS = st.sampled_from(sorted(BMP_SPECS)).flatmap(_bmp_strategy)


@given(st.lists(BMPS, max_size=8))
def test_bmp_round_trip(bmps):
    wire = b"".join(encode_bmp(b.bmp_id, b.data) for b in bmps)
    assert decode_bmps(wire) == tuple(bmps)


@given(st.binary(max_size=200))
def test_bmp_random_bytes_decode_or_raise_decode_error(data):
    try:
        bmps = decode_bmps(data)
    except ZvtDecodeError:
        return
    assert sum(1 + len(b.data) for b in bmps) <= len(data)


# --- APDU --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("apdu", "wire"),
    [
        (Apdu(0x80, 0x00), "80 00 00"),
        (Apdu(0x06, 0x0F, b"\x00"), "06 0F 01 00"),
        (Apdu(0x05, 0x01, bytes.fromhex("123456")), "05 01 03 12 34 56"),
        (Apdu(0x84, 0x83), "84 83 00"),
    ],
)
def test_apdu_short(apdu, wire):
    raw = bytes.fromhex(wire)
    assert apdu.encode() == raw
    assert decode_apdu(raw) == apdu
    assert apdu_total_length(raw) == len(raw)


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (0, "06 D3 00"),
        (253, "06 D3 FD"),
        (254, "06 D3 FE"),  # the largest short length
        (255, "06 D3 FF FF 00"),  # FF marks the extended form: lo, hi
        (256, "06 D3 FF 00 01"),
        (4088, "06 D3 FF F8 0F"),  # print_system_configuration_reply.blob
        (0xFFFF, "06 D3 FF FF FF"),
    ],
)
def test_apdu_length_boundaries(size, header):
    apdu = Apdu(0x06, 0xD3, bytes([0x10]) * size)
    wire = apdu.encode()
    assert wire[: len(bytes.fromhex(header))] == bytes.fromhex(header)
    assert len(wire) == len(bytes.fromhex(header)) + size
    assert apdu_total_length(wire) == len(wire)
    assert decode_apdu(wire) == apdu


def test_apdu_too_long():
    with pytest.raises(ValueError):
        Apdu(0x06, 0xD3, bytes(0x10000)).encode()


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("", None),
        ("06", None),
        ("06 0F", None),
        ("06 0F 05", 8),
        ("06 D3 FF", None),
        ("06 D3 FF 00", None),
        ("06 D3 FF 00 01", 261),
    ],
)
def test_apdu_total_length_incomplete_header(wire, expected):
    assert apdu_total_length(bytes.fromhex(wire)) == expected


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "06",
        "06 0F",
        "06 0F 02 00",  # one data byte short
        "06 0F 00 00",  # one byte too many
        "06 D3 FF 01",  # extended header cut
        "06 D3 FF 02 00 00",  # extended length short
        "06 D3 FF FF 00" + " 00" * 254,
    ],
)
def test_apdu_length_mismatch(wire):
    with pytest.raises(ZvtDecodeError):
        decode_apdu(bytes.fromhex(wire))


def test_apdu_command_and_str():
    apdu = Apdu(0x06, 0x0F, b"\x00")
    assert apdu.command == (0x06, 0x0F)
    assert str(apdu) == "06 0F [1 bytes]"


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=600))
def test_apdu_round_trip(cls, instr, data):
    apdu = Apdu(cls, instr, data)
    wire = apdu.encode()
    assert len(wire) == len(data) + (3 if len(data) < 255 else 5)
    assert decode_apdu(wire) == apdu
    assert apdu_total_length(wire + b"trailing") == len(wire)
