"""CRC-16/KERMIT of the ZVT serial link: the vectors quoted in shared/reference/zvt.md."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdiag.drivers.zvt.crc import crc16_kermit, crc_bytes
from posdiag.drivers.zvt.framing import ETX, encode_serial_frame


def test_check_value():
    assert crc16_kermit(b"123456789") == 0x2189


def test_empty_input_is_init_value():
    assert crc16_kermit(b"") == 0
    assert crc_bytes(b"") == b"\x00\x00"


@pytest.mark.parametrize(
    ("apdu", "crc"),
    [
        ("80 00 00", "F5 1F"),
        ("06 01 07 04 00 00 00 00 01 90", "76 57"),  # Portalum/Portalum.Zvt#56 wire log
        ("06 00 04 00 00 00 30", "24 89"),  # StephenCleary/HashAlgorithms#1
    ],
)
def test_wire_vectors_cover_apdu_plus_etx_low_byte_first(apdu, crc):
    data = bytes.fromhex(apdu)
    expected = bytes.fromhex(crc)
    assert crc_bytes(data + bytes([ETX])) == expected
    assert crc16_kermit(data + bytes([ETX])) == int.from_bytes(expected, "little")
    assert encode_serial_frame(data)[-2:] == expected


def test_positive_ack_frame():
    assert encode_serial_frame(bytes.fromhex("80 00 00")) == bytes.fromhex(
        "10 02 80 00 00 10 03 F5 1F"
    )


def test_crc_excludes_stuffing_dles():
    apdu = bytes.fromhex("80 00 02 10 10")
    frame = encode_serial_frame(apdu)
    assert frame == bytes.fromhex("10 02 80 00 02 10 10 10 10 10 03") + crc_bytes(apdu + b"\x03")


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_incremental_equals_one_shot(head, tail):
    assert crc16_kermit(tail, crc16_kermit(head)) == crc16_kermit(head + tail)


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_incremental_over_many_chunks(chunks):
    crc = 0
    for chunk in chunks:
        crc = crc16_kermit(chunk, crc)
    assert crc == crc16_kermit(b"".join(chunks))


@given(st.binary(max_size=200))
def test_crc_is_16_bit_and_crc_bytes_matches(data):
    value = crc16_kermit(data)
    assert 0 <= value <= 0xFFFF
    assert crc_bytes(data) == value.to_bytes(2, "little")


@given(st.binary(min_size=1, max_size=100), st.integers(0, 7), st.data())
def test_single_bit_flip_changes_crc(data, bit, draw):
    index = draw.draw(st.integers(0, len(data) - 1))
    flipped = bytearray(data)
    flipped[index] ^= 1 << bit
    assert crc16_kermit(bytes(flipped)) != crc16_kermit(data)


@given(st.binary(max_size=100))
def test_appending_crc_low_first_gives_zero_residue(data):
    # Reflected CRC with init 0 and no final XOR: the message plus its CRC (LSB first) checks to 0.
    assert crc16_kermit(data + crc_bytes(data)) == 0
