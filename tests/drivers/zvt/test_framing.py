"""The ZVT link-layer framers (serial DLE/STX/CRC state machine and TCP length splitter)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdiag.drivers.zvt.apdu import Apdu
from posdiag.drivers.zvt.crc import crc_bytes
from posdiag.drivers.zvt.framing import (
    ACK,
    DLE,
    ETX,
    MAX_FRAME,
    NAK,
    NEED_DATA,
    STX,
    AckByte,
    BadFrame,
    Frame,
    Garbage,
    NakByte,
    SerialFramer,
    TcpFramer,
    encode_serial_frame,
    stuff,
)

# 80 00 02 39 59: both CRC bytes are 0x10 (sent raw, never stuffed).
CRC_ALL_DLE = bytes.fromhex("80 00 02 39 59")
# 80 00 02 10 33: data DLE stuffed, CRC low byte 0x10.
CRC_LOW_DLE = bytes.fromhex("80 00 02 10 33")
# 80 00 3E + 62 x 10: length byte and all data are DLE, and the CRC low byte is DLE too.
ALL_DLE = bytes([0x80, 0x00, 0x3E]) + bytes([DLE]) * 0x3E


def _events(framer) -> list:
    events = []
    while (event := framer.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def _serial(data: bytes, *, bytewise: bool = False) -> tuple[list, SerialFramer]:
    framer = SerialFramer()
    if bytewise:
        events = []
        for index in range(len(data)):
            framer.receive_data(data[index : index + 1])
            events += _events(framer)
    else:
        framer.receive_data(data)
        events = _events(framer)
    return events, framer


def _wire(event) -> bytes:
    """The bytes of the stream an event stands for."""
    if isinstance(event, Frame):
        return encode_serial_frame(event.apdu)
    if isinstance(event, AckByte):
        return bytes([ACK])
    if isinstance(event, NakByte):
        return bytes([NAK])
    if isinstance(event, BadFrame):
        return event.raw
    assert isinstance(event, Garbage)
    assert event.data
    return event.data


# --- encoding ------------------------------------------------------------------------------------


def test_stuff_doubles_every_dle():
    assert stuff(b"") == b""
    assert stuff(b"\x10") == b"\x10\x10"
    assert stuff(b"\x01\x10\x10\x02") == b"\x01\x10\x10\x10\x10\x02"


def test_frame_layout():
    frame = encode_serial_frame(bytes.fromhex("80 00 00"))
    assert frame == bytes.fromhex("10 02 80 00 00 10 03 F5 1F")


@pytest.mark.parametrize("apdu", [CRC_ALL_DLE, CRC_LOW_DLE, ALL_DLE])
def test_crc_bytes_equal_to_dle_are_not_stuffed(apdu):
    frame = encode_serial_frame(apdu)
    crc = crc_bytes(apdu + bytes([ETX]))
    assert DLE in crc
    assert frame == bytes([DLE, STX]) + stuff(apdu) + bytes([DLE, ETX]) + crc
    assert len(frame) == 2 + len(apdu) + apdu.count(DLE) + 2 + 2


def test_crc_all_dle_vector():
    assert crc_bytes(CRC_ALL_DLE + bytes([ETX])) == b"\x10\x10"


# --- serial decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("apdu", [CRC_ALL_DLE, CRC_LOW_DLE, ALL_DLE, bytes.fromhex("06 0F 00")])
@pytest.mark.parametrize("bytewise", [False, True])
def test_dle_heavy_frames_decode(apdu, bytewise):
    events, framer = _serial(encode_serial_frame(apdu), bytewise=bytewise)
    assert events == [Frame(apdu)]
    assert not framer.in_frame


def test_frame_followed_by_frame_after_dle_crc():
    # The CRC's raw 10 10 must not be mistaken for a stuffed DLE or a new DLE STX.
    stream = encode_serial_frame(CRC_ALL_DLE) + encode_serial_frame(ALL_DLE)
    for bytewise in (False, True):
        events, _ = _serial(stream, bytewise=bytewise)
        assert events == [Frame(CRC_ALL_DLE), Frame(ALL_DLE)]


def test_extended_length_frame_of_dles():
    apdu = Apdu(0x06, 0xD3, bytes([DLE]) * 300).encode()
    events, _ = _serial(encode_serial_frame(apdu))
    assert events == [Frame(apdu)]


def test_bad_crc():
    frame = bytearray(encode_serial_frame(bytes.fromhex("06 0F 00")))
    frame[-1] ^= 0xFF
    events, framer = _serial(bytes(frame))
    assert len(events) == 1
    assert isinstance(events[0], BadFrame)
    assert "CRC" in events[0].reason
    assert events[0].raw == bytes(frame)
    assert not framer.in_frame


@pytest.mark.parametrize(
    ("apdu", "reason"),
    [
        (b"", "length field"),
        (bytes.fromhex("06"), "length field"),
        (bytes.fromhex("06 0F 02 00"), "length field"),
        (bytes.fromhex("06 0F 00 00"), "length field"),
    ],
)
def test_good_crc_but_bad_apdu_length(apdu, reason):
    events, _ = _serial(encode_serial_frame(apdu))
    assert len(events) == 1
    assert isinstance(events[0], BadFrame)
    assert reason in events[0].reason


def test_garbage_before_frame_is_reported_and_skipped():
    frame = encode_serial_frame(bytes.fromhex("80 00 00"))
    events, _ = _serial(b"\x00\xffABC\x02\x03" + frame)
    assert events == [Garbage(b"\x00\xffABC\x02\x03"), Frame(bytes.fromhex("80 00 00"))]


def test_garbage_bytewise_comes_out_in_pieces_but_complete():
    frame = encode_serial_frame(bytes.fromhex("80 00 00"))
    events, _ = _serial(b"xyz" + frame, bytewise=True)
    assert isinstance(events[-1], Frame)
    assert b"".join(e.data for e in events[:-1]) == b"xyz"


def test_lone_dle_outside_frame_is_garbage():
    frame = encode_serial_frame(bytes.fromhex("80 00 00"))
    events, _ = _serial(b"\x10A" + frame)
    assert events == [Garbage(b"\x10A"), Frame(bytes.fromhex("80 00 00"))]
    events, _ = _serial(b"\x10\x10\x02" + bytes.fromhex("80 00 00 10 03 F5 1F"))
    assert events == [Garbage(b"\x10"), Frame(bytes.fromhex("80 00 00"))]


def test_ack_and_nak_between_frames():
    one = encode_serial_frame(bytes.fromhex("80 00 00"))
    two = encode_serial_frame(bytes.fromhex("06 0F 00"))
    stream = bytes([ACK]) + one + bytes([ACK, NAK]) + two + bytes([NAK])
    for bytewise in (False, True):
        events, _ = _serial(stream, bytewise=bytewise)
        assert events == [
            AckByte(),
            Frame(bytes.fromhex("80 00 00")),
            AckByte(),
            NakByte(),
            Frame(bytes.fromhex("06 0F 00")),
            NakByte(),
        ]


def test_ack_after_garbage_keeps_its_place():
    events, _ = _serial(b"zz\x06yy\x15")
    assert events == [Garbage(b"zz"), AckByte(), Garbage(b"yy"), NakByte()]


def test_ack_byte_inside_frame_is_data():
    apdu = bytes.fromhex("80 00 02 06 15")
    events, _ = _serial(encode_serial_frame(apdu))
    assert events == [Frame(apdu)]


@pytest.mark.parametrize("illegal", [0x00, 0x01, 0x04, 0x06, 0x15, 0xFF])
def test_dle_followed_by_illegal_byte(illegal):
    good = encode_serial_frame(bytes.fromhex("06 0F 00"))
    broken = bytes([DLE, STX, 0x80, 0x00, 0x00, DLE, illegal])
    events, framer = _serial(broken + good)
    assert isinstance(events[0], BadFrame)
    assert f"{illegal:02x}" in events[0].reason
    assert events[0].raw == broken
    assert events[-1] == Frame(bytes.fromhex("06 0F 00"))
    assert not framer.in_frame


def test_new_dle_stx_inside_frame_resyncs():
    partial = bytes([DLE, STX, 0x06, 0x0F, 0x05, 0x01])
    good = encode_serial_frame(bytes.fromhex("80 00 00"))
    for bytewise in (False, True):
        events, framer = _serial(partial + good, bytewise=bytewise)
        assert len(events) == 2
        assert isinstance(events[0], BadFrame)
        assert events[0].raw == partial  # the new frame's DLE STX belongs to the new frame
        assert events[1] == Frame(bytes.fromhex("80 00 00"))
        assert not framer.in_frame


def test_dle_stx_stuffed_inside_frame_is_data():
    apdu = bytes.fromhex("80 00 02 10 02")
    frame = encode_serial_frame(apdu)
    assert bytes([DLE, DLE, STX]) in frame
    assert _serial(frame)[0] == [Frame(apdu)]


def test_partial_frame_and_discard():
    frame = encode_serial_frame(bytes.fromhex("06 0F 00"))
    framer = SerialFramer()
    assert not framer.in_frame
    framer.receive_data(frame[:5])
    assert framer.next_event() is NEED_DATA
    assert framer.in_frame
    assert framer.discard_partial() == frame[:5]
    assert not framer.in_frame
    assert framer.discard_partial() == b""
    framer.receive_data(frame)
    assert _events(framer) == [Frame(bytes.fromhex("06 0F 00"))]


@pytest.mark.parametrize("split", range(1, 9))
def test_partial_frame_in_every_state(split):
    frame = encode_serial_frame(bytes.fromhex("80 00 00"))  # 10 02 80 00 00 10 03 F5 1F
    framer = SerialFramer()
    framer.receive_data(frame[:split])
    assert framer.next_event() is NEED_DATA
    assert framer.in_frame
    framer.receive_data(frame[split:])
    assert _events(framer) == [Frame(bytes.fromhex("80 00 00"))]


def test_frame_longer_than_any_apdu():
    framer = SerialFramer()
    framer.receive_data(bytes([DLE, STX]) + b"A" * (MAX_FRAME + 1))
    events = _events(framer)
    assert len(events) == 1
    assert isinstance(events[0], BadFrame)
    assert "longer" in events[0].reason
    assert not framer.in_frame


def test_need_data_repr():
    assert repr(NEED_DATA) == "NEED_DATA"
    assert SerialFramer().next_event() is NEED_DATA


# --- properties ----------------------------------------------------------------------------------

APDUS = st.builds(
    lambda cls, instr, data: Apdu(cls, instr, data).encode(),
    st.sampled_from([0x06, 0x80, 0x84, 0x04, 0x10]),
    st.sampled_from([0x0F, 0x00, 0x10, 0xD3, 0xFF]),
    st.binary(max_size=300) | st.integers(0, 300).map(lambda n: bytes([DLE]) * n),
)


def _check_accounting(stream: bytes, bytewise: bool) -> list:
    events, framer = _serial(stream, bytewise=bytewise)
    pending = framer.discard_partial()
    assert b"".join(_wire(e) for e in events) + pending == stream
    return events


@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_are_all_accounted_for(data, bytewise):
    _check_accounting(data, bytewise)


@given(st.lists(APDUS, min_size=1, max_size=5))
def test_valid_frames_round_trip(apdus):
    stream = b"".join(encode_serial_frame(a) for a in apdus)
    events, framer = _serial(stream)
    assert events == [Frame(a) for a in apdus]
    assert not framer.in_frame


@given(st.binary(max_size=100), APDUS, st.booleans())
def test_valid_frame_decodes_after_garbage(garbage, apdu, bytewise):
    # Garbage may leave a partial frame open; a T1 expiry (discard) or the new DLE STX recovers.
    framer = SerialFramer()
    framer.receive_data(garbage)
    _events(framer)
    framer.discard_partial()
    frame = encode_serial_frame(apdu)
    if bytewise:
        events = []
        for index in range(len(frame)):
            framer.receive_data(frame[index : index + 1])
            events += _events(framer)
    else:
        framer.receive_data(frame)
        events = _events(framer)
    assert events == [Frame(apdu)]


@given(st.binary(max_size=100).filter(lambda g: DLE not in g), APDUS)
def test_valid_frame_decodes_after_dle_free_garbage_without_discard(garbage, apdu):
    events, _ = _serial(garbage + encode_serial_frame(apdu))
    assert events[-1] == Frame(apdu)
    assert all(not isinstance(e, BadFrame) for e in events)


@given(st.binary(max_size=60), APDUS)
def test_new_frame_always_recovers_from_garbage_inside_a_frame(noise, apdu):
    # A frame cut off by noise is abandoned when the next DLE STX arrives inside it.
    opener = bytes([DLE, STX]) + noise.replace(bytes([DLE]), b"")
    events, _ = _serial(opener + encode_serial_frame(apdu))
    assert events[-1] == Frame(apdu)


@st.composite
def mutated_frames(draw):
    apdus = draw(st.lists(APDUS, min_size=1, max_size=3))
    stream = bytearray(b"".join(encode_serial_frame(a) for a in apdus))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete"]))
        if kind == "insert":
            index = draw(st.integers(0, len(stream)))
            stream.insert(index, draw(st.sampled_from([DLE, STX, ETX, ACK, NAK, 0x00, 0xFF])))
        elif stream:
            index = draw(st.integers(0, len(stream) - 1))
            if kind == "flip":
                stream[index] ^= 1 << draw(st.integers(0, 7))
            else:
                del stream[index]
    return bytes(stream)


@given(mutated_frames(), st.booleans())
def test_mutated_frames_never_raise_and_are_accounted_for(stream, bytewise):
    events = _check_accounting(stream, bytewise)
    for event in events:
        if isinstance(event, Frame):
            assert len(event.apdu) >= 3


@given(mutated_frames(), APDUS)
def test_valid_frame_after_mutated_frames(stream, apdu):
    framer = SerialFramer()
    framer.receive_data(stream)
    _events(framer)
    framer.discard_partial()  # T1 after the noise
    framer.receive_data(encode_serial_frame(apdu))
    assert _events(framer) == [Frame(apdu)]


# --- TCP -----------------------------------------------------------------------------------------


def test_tcp_splits_back_to_back_apdus():
    framer = TcpFramer()
    first = bytes.fromhex("80 00 00")
    second = Apdu(0x06, 0xD3, bytes(300)).encode()
    framer.receive_data(first + second + second[:4])
    assert _events(framer) == [Frame(first), Frame(second)]
    assert framer.in_frame
    framer.receive_data(second[4:])
    assert _events(framer) == [Frame(second)]
    assert not framer.in_frame


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4])
def test_tcp_incomplete_headers(size):
    framer = TcpFramer()
    framer.receive_data(bytes.fromhex("06 D3 FF 2C 01")[:size])
    assert framer.next_event() is NEED_DATA
    assert framer.in_frame == bool(size)
    assert framer.discard_partial() == bytes.fromhex("06 D3 FF 2C 01")[:size]
    assert not framer.in_frame


def test_tcp_has_no_dle_stuffing():
    apdu = bytes.fromhex("80 00 02 10 10")
    framer = TcpFramer()
    framer.receive_data(apdu)
    assert _events(framer) == [Frame(apdu)]


@given(st.lists(APDUS, max_size=6), st.data())
def test_tcp_any_fragmentation(apdus, data):
    stream = b"".join(apdus)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=20))))
    framer = TcpFramer()
    events = []
    start = 0
    for cut in [*cuts, len(stream)]:
        framer.receive_data(stream[start:cut])
        events += _events(framer)
        start = cut
    assert events == [Frame(a) for a in apdus]
    assert not framer.in_frame


@given(st.binary(max_size=600))
def test_tcp_random_bytes_are_all_accounted_for(data):
    framer = TcpFramer()
    framer.receive_data(data)
    events = _events(framer)
    assert all(isinstance(e, Frame) for e in events)
    assert b"".join(e.apdu for e in events) + framer.discard_partial() == data
