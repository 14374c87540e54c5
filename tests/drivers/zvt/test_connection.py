"""ZvtConnection: the sans-IO state machine for both roles on serial and TCP."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdiag.drivers.zvt.apdu import Apdu
from posdiag.drivers.zvt.connection import (
    FrameRejected,
    GarbageReceived,
    Link,
    LinkAck,
    LinkNak,
    MessageReceived,
    Role,
    ZvtConnection,
)
from posdiag.drivers.zvt.framing import ACK, DLE, ETX, NAK, NEED_DATA, STX, encode_serial_frame
from posdiag.drivers.zvt.messages import (
    Completion,
    EndOfDay,
    IntermediateStatus,
    MalformedMessage,
    PositiveAck,
    PrintLine,
    StatusEnquiry,
    UnknownMessage,
)
from posdiag.drivers.zvt.payloads import (
    StatusReport,
    decode_status_completion,
    encode_status_completion,
)

POSITIVE = bytes.fromhex("80 00 00")
COMPLETION = bytes.fromhex("06 0F 00")


def _drain(connection: ZvtConnection) -> list:
    events = []
    while (event := connection.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def _feed(connection: ZvtConnection, data: bytes, *, bytewise: bool = False) -> list:
    if not bytewise:
        connection.receive_data(data)
        return _drain(connection)
    events = []
    for index in range(len(data)):
        connection.receive_data(data[index : index + 1])
        events += _drain(connection)
    return events


def _serial_pt() -> ZvtConnection:
    return ZvtConnection(Role.PT, Link.SERIAL)


# --- sending -------------------------------------------------------------------------------------


def test_send_serial_frames_and_tcp_is_bare():
    serial = ZvtConnection(Role.ECR, Link.SERIAL)
    serial.send(StatusEnquiry("123456", 0x06))
    wire = serial.data_to_send()
    assert wire == encode_serial_frame(bytes.fromhex("05 01 05 12 34 56 03 06"))
    assert serial.data_to_send() == b""
    tcp = ZvtConnection(Role.ECR, Link.TCP)
    tcp.send(StatusEnquiry("123456", 0x06))
    assert tcp.data_to_send() == bytes.fromhex("05 01 05 12 34 56 03 06")


def test_send_accepts_apdu_and_queues_in_order():
    connection = ZvtConnection(Role.PT, Link.TCP)
    connection.send(Apdu(0x80, 0x00))
    connection.send(Completion())
    assert connection.data_to_send() == POSITIVE + COMPLETION
    assert connection.last_sent == COMPLETION


@pytest.mark.parametrize("link", list(Link))
def test_resend_repeats_last_frame(link):
    connection = ZvtConnection(Role.ECR, link)
    connection.send(EndOfDay("123456"))
    first = connection.data_to_send()
    connection.resend()
    assert connection.data_to_send() == first
    connection.resend()
    connection.resend()
    assert connection.data_to_send() == first * 2
    connection.send(PositiveAck())
    connection.data_to_send()
    connection.resend()
    expected = POSITIVE if link is Link.TCP else encode_serial_frame(POSITIVE)
    assert connection.data_to_send() == expected


def test_resend_before_any_send_queues_nothing():
    connection = ZvtConnection(Role.ECR, Link.SERIAL)
    connection.resend()
    assert connection.data_to_send() == b""


def test_frame_with_crc_of_dles_survives_the_connection():
    apdu = bytes.fromhex("80 00 02 39 59")  # CRC 10 10
    sender = ZvtConnection(Role.PT, Link.SERIAL)
    sender.send(Apdu(0x80, 0x00, bytes.fromhex("39 59")))
    wire = sender.data_to_send()
    assert wire[-2:] == b"\x10\x10"
    receiver = ZvtConnection(Role.ECR, Link.SERIAL)
    [event] = _feed(receiver, wire + encode_serial_frame(COMPLETION))[:1]
    assert isinstance(event, MessageReceived)
    assert event.apdu.encode() == apdu


# --- receiving on serial -------------------------------------------------------------------------


@pytest.mark.parametrize("bytewise", [False, True])
def test_good_frame_queues_ack(bytewise):
    connection = _serial_pt()
    events = _feed(
        connection, encode_serial_frame(bytes.fromhex("06 50 03 12 34 56")), bytewise=bytewise
    )
    assert events == [
        MessageReceived(EndOfDay("123456"), Apdu(0x06, 0x50, bytes.fromhex("12 34 56")))
    ]
    assert connection.data_to_send() == bytes([ACK])


def test_bad_crc_is_rejected_with_nak():
    connection = _serial_pt()
    frame = bytearray(encode_serial_frame(COMPLETION))
    frame[-2] ^= 0x01
    events = _feed(connection, bytes(frame))
    assert len(events) == 1
    assert isinstance(events[0], FrameRejected)
    assert "CRC" in events[0].reason
    assert events[0].raw == bytes(frame)
    assert connection.data_to_send() == bytes([NAK])


def test_corrupted_data_byte_is_rejected_with_nak():
    connection = _serial_pt()
    frame = bytearray(encode_serial_frame(bytes.fromhex("06 50 03 12 34 56")))
    frame[5] = 0x99
    [event] = _feed(connection, bytes(frame))
    assert isinstance(event, FrameRejected)
    assert connection.data_to_send() == bytes([NAK])


def test_garbage_before_frame():
    connection = ZvtConnection(Role.ECR, Link.SERIAL)
    events = _feed(connection, b"VER|APP|MODEL|" + encode_serial_frame(POSITIVE))
    assert events == [
        GarbageReceived(b"VER|APP|MODEL|"),
        MessageReceived(PositiveAck(), Apdu(0x80, 0x00)),
    ]
    assert connection.data_to_send() == bytes([ACK])  # garbage is not answered


def test_ack_nak_between_frames():
    connection = ZvtConnection(Role.ECR, Link.SERIAL)
    stream = (
        bytes([ACK])
        + encode_serial_frame(POSITIVE)
        + bytes([NAK, ACK])
        + encode_serial_frame(COMPLETION)
    )
    for bytewise in (False, True):
        events = _feed(connection, stream, bytewise=bytewise)
        assert [type(e) for e in events] == [
            LinkAck,
            MessageReceived,
            LinkNak,
            LinkAck,
            MessageReceived,
        ]
        assert events[1].message == PositiveAck()
        assert events[4].message == Completion()
        assert connection.data_to_send() == bytes([ACK, ACK])  # link ACK/NAK are never answered


def test_dle_followed_by_illegal_byte():
    connection = _serial_pt()
    stream = bytes([DLE, STX, 0x06, 0x0F, DLE, 0x42, 0x00]) + encode_serial_frame(COMPLETION)
    events = _feed(connection, stream)
    assert isinstance(events[0], FrameRejected)
    assert "42" in events[0].reason
    assert isinstance(events[1], GarbageReceived)
    assert events[1].data == b"\x00"
    assert events[2].message == Completion()
    assert connection.data_to_send() == bytes([NAK, ACK])


@pytest.mark.parametrize("bytewise", [False, True])
def test_new_dle_stx_inside_frame_resyncs(bytewise):
    connection = ZvtConnection(Role.ECR, Link.SERIAL)
    cut = encode_serial_frame(bytes.fromhex("06 D1 05 00 41 42 43 44"))[:7]
    events = _feed(connection, cut + encode_serial_frame(POSITIVE), bytewise=bytewise)
    assert [type(e) for e in events] == [FrameRejected, MessageReceived]
    assert events[0].raw == cut
    assert events[1].message == PositiveAck()
    assert connection.data_to_send() == bytes([NAK, ACK])


def test_inter_byte_timeout_drops_partial_frame_and_naks():
    connection = _serial_pt()
    frame = encode_serial_frame(bytes.fromhex("06 50 03 12 34 56"))
    assert _feed(connection, frame[:6]) == []
    assert connection.frame_in_progress
    assert connection.inter_byte_timeout() is True
    assert not connection.frame_in_progress
    assert connection.data_to_send() == bytes([NAK])
    # The sender repeats; the repeat decodes normally.
    events = _feed(connection, frame)
    assert [e.message for e in events] == [EndOfDay("123456")]
    assert connection.data_to_send() == bytes([ACK])


def test_inter_byte_timeout_without_partial_frame_does_nothing():
    connection = _serial_pt()
    assert connection.inter_byte_timeout() is False
    _feed(connection, encode_serial_frame(COMPLETION))
    connection.data_to_send()
    assert connection.inter_byte_timeout() is False
    assert connection.data_to_send() == b""


def test_inter_byte_timeout_then_the_rest_of_the_old_frame_is_garbage():
    connection = _serial_pt()
    frame = encode_serial_frame(bytes.fromhex("06 50 03 12 34 56"))
    _feed(connection, frame[:4])
    connection.inter_byte_timeout()
    connection.data_to_send()
    events = _feed(connection, frame[4:] + frame)
    assert not any(isinstance(e, FrameRejected) for e in events)
    assert isinstance(events[-1], MessageReceived)
    assert events[-1].message == EndOfDay("123456")
    assert connection.data_to_send() == bytes([ACK])


def test_inter_byte_timeout_on_a_lone_dle():
    connection = _serial_pt()
    _feed(connection, bytes([DLE]))
    assert connection.frame_in_progress
    assert connection.inter_byte_timeout() is True
    assert connection.data_to_send() == bytes([NAK])


def test_tcp_inter_byte_timeout_drops_without_nak():
    connection = ZvtConnection(Role.ECR, Link.TCP)
    _feed(connection, COMPLETION[:2])
    assert connection.frame_in_progress
    assert connection.inter_byte_timeout() is True
    assert connection.data_to_send() == b""
    assert not connection.frame_in_progress
    assert [e.message for e in _feed(connection, POSITIVE)] == [PositiveAck()]


def test_unknown_and_malformed_messages_are_still_acked():
    connection = _serial_pt()
    events = _feed(
        connection,
        encode_serial_frame(bytes.fromhex("06 C0 01 0F"))
        + encode_serial_frame(bytes.fromhex("06 50 01 12")),
    )
    assert isinstance(events[0].message, UnknownMessage)
    assert isinstance(events[1].message, MalformedMessage)
    assert connection.data_to_send() == bytes([ACK, ACK])


def test_tcp_has_no_link_bytes():
    connection = ZvtConnection(Role.ECR, Link.TCP)
    events = _feed(connection, POSITIVE + COMPLETION, bytewise=True)
    assert [e.message for e in events] == [PositiveAck(), Completion()]
    assert connection.data_to_send() == b""


# --- a whole conversation ------------------------------------------------------------------------

REPORT = StatusReport(
    terminal_status=0x00,
    terminal_id="29001006",
    device_name="Simulated PT",
    device_sw_version="SIM-1.0",
    serial="0A1B2C3D",
    device_state=0,
)


def _pump(source: ZvtConnection, sink: ZvtConnection, bytewise: bool) -> list:
    return _feed(sink, source.data_to_send(), bytewise=bytewise)


def _messages(events: list) -> list:
    return [e.message for e in events if isinstance(e, MessageReceived)]


@pytest.mark.parametrize("link", list(Link))
@pytest.mark.parametrize("bytewise", [False, True])
def test_status_enquiry_conversation(link, bytewise):
    ecr = ZvtConnection(Role.ECR, link)
    pt = ZvtConnection(Role.PT, link)
    serial = link is Link.SERIAL
    acked = [LinkAck] if serial else []

    # ECR → PT: Status-Enquiry asking for TLV and no SW string.
    ecr.send(StatusEnquiry("123456", 0x06))
    events = _pump(ecr, pt, bytewise)
    assert _messages(events) == [StatusEnquiry("123456", 0x06)]

    # PT: link ACK, then 80 00 00.
    pt.send(PositiveAck())
    events = _pump(pt, ecr, bytewise)
    assert [type(e) for e in events] == [*acked, MessageReceived]
    assert events[-1].message == PositiveAck()

    # ECR's link ACK for the 80 00.
    events = _pump(ecr, pt, bytewise)
    assert [type(e) for e in events] == acked

    # PT is master: an intermediate status, then the completion.
    pt.send(IntermediateStatus(0x17))
    events = _pump(pt, ecr, bytewise)
    assert _messages(events) == [IntermediateStatus(0x17)]
    ecr.send(PositiveAck())
    events = _pump(ecr, pt, bytewise)
    assert [type(e) for e in events] == [*acked, MessageReceived]
    _pump(pt, ecr, bytewise)  # PT's link ACK

    pt.send(Completion(encode_status_completion(REPORT, send_sw_version=False, send_tlv=True)))
    events = _pump(pt, ecr, bytewise)
    [completion] = _messages(events)
    assert isinstance(completion, Completion)
    assert decode_status_completion(completion.data, sw_version_expected=False) == REPORT

    # ECR acknowledges the completion and is master again.
    ecr.send(PositiveAck())
    events = _pump(ecr, pt, bytewise)
    assert [type(e) for e in events] == [*acked, MessageReceived]
    assert events[-1].message == PositiveAck()
    events = _pump(pt, ecr, bytewise)
    assert [type(e) for e in events] == acked

    assert ecr.data_to_send() == b""
    assert pt.data_to_send() == b""
    assert not ecr.frame_in_progress
    assert not pt.frame_in_progress


def test_serial_conversation_with_nak_and_resend():
    ecr = ZvtConnection(Role.ECR, Link.SERIAL)
    pt = ZvtConnection(Role.PT, Link.SERIAL)
    ecr.send(StatusEnquiry("123456"))
    wire = bytearray(ecr.data_to_send())
    wire[4] ^= 0x40  # corrupted on the line
    [rejected] = _feed(pt, bytes(wire))
    assert isinstance(rejected, FrameRejected)
    events = _pump(pt, ecr, False)
    assert events == [LinkNak()]
    ecr.resend()
    events = _pump(ecr, pt, False)
    assert _messages(events) == [StatusEnquiry("123456")]
    assert _pump(pt, ecr, False) == [LinkAck()]


def test_print_lines_in_a_serial_session():
    pt = ZvtConnection(Role.PT, Link.SERIAL)
    ecr = ZvtConnection(Role.ECR, Link.SERIAL)
    lines = ["Terminal-ID: 29001006", "\x10\x10 DLE line \x10", "Ende"]
    for line in lines:
        pt.send(PrintLine(0x00, line))
    events = _pump(pt, ecr, True)
    assert [m.text for m in _messages(events)] == lines
    assert ecr.data_to_send() == bytes([ACK]) * 3


# --- properties ----------------------------------------------------------------------------------

APDUS = st.builds(
    lambda cls, instr, data: Apdu(cls, instr, data).encode(),
    st.sampled_from([0x04, 0x05, 0x06, 0x0F, 0x80, 0x84]),
    st.sampled_from([0x00, 0x01, 0x0F, 0x10, 0x1E, 0x50, 0xD1, 0xD3, 0xFF]),
    st.binary(max_size=300) | st.integers(0, 300).map(lambda n: bytes([DLE]) * n),
)


def _check_serial_invariants(connection: ZvtConnection, events: list) -> None:
    """Every event has the right type and every frame was answered exactly once."""
    allowed = (MessageReceived, LinkAck, LinkNak, FrameRejected, GarbageReceived)
    assert all(isinstance(e, allowed) for e in events)
    assert all(not isinstance(e, GarbageReceived) or e.data for e in events)
    answers = connection.data_to_send()
    expected = bytes(
        ACK if isinstance(e, MessageReceived) else NAK
        for e in events
        if isinstance(e, (MessageReceived, FrameRejected))
    )
    assert answers == expected


@given(st.binary(max_size=400), st.sampled_from(list(Role)), st.booleans())
def test_random_bytes_never_raise_serial(data, role, bytewise):
    connection = ZvtConnection(role, Link.SERIAL)
    events = _feed(connection, data, bytewise=bytewise)
    _check_serial_invariants(connection, events)
    if connection.frame_in_progress:
        assert connection.inter_byte_timeout() is True
        assert connection.data_to_send() == bytes([NAK])
    assert not connection.frame_in_progress


@given(st.binary(max_size=400), st.sampled_from(list(Role)), st.booleans())
def test_random_bytes_never_raise_tcp(data, role, bytewise):
    connection = ZvtConnection(role, Link.TCP)
    events = _feed(connection, data, bytewise=bytewise)
    assert all(isinstance(e, MessageReceived) for e in events)
    assert connection.data_to_send() == b""
    connection.inter_byte_timeout()
    assert not connection.frame_in_progress


@st.composite
def mutated_streams(draw):
    apdus = draw(st.lists(APDUS, min_size=1, max_size=3))
    stream = bytearray()
    for apdu in apdus:
        stream += encode_serial_frame(apdu)
        stream += bytes(draw(st.lists(st.sampled_from([ACK, NAK]), max_size=2)))
    for _ in range(draw(st.integers(1, 5))):
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


@given(mutated_streams(), st.booleans(), APDUS)
def test_mutated_frames_never_raise_and_valid_frame_still_decodes(stream, bytewise, apdu):
    connection = ZvtConnection(Role.ECR, Link.SERIAL)
    events = _feed(connection, stream, bytewise=bytewise)
    _check_serial_invariants(connection, events)
    connection.inter_byte_timeout()  # T1 after the noise
    connection.data_to_send()
    events = _feed(connection, encode_serial_frame(apdu), bytewise=bytewise)
    assert len(events) == 1
    assert isinstance(events[0], MessageReceived)
    assert events[0].apdu.encode() == apdu
    assert connection.data_to_send() == bytes([ACK])


@given(st.binary(max_size=200).filter(lambda g: DLE not in g), APDUS, st.booleans())
def test_valid_frame_after_garbage_without_timeout(garbage, apdu, bytewise):
    connection = ZvtConnection(Role.PT, Link.SERIAL)
    events = _feed(connection, garbage + encode_serial_frame(apdu), bytewise=bytewise)
    assert isinstance(events[-1], MessageReceived)
    assert events[-1].apdu.encode() == apdu
    others = events[:-1]
    assert all(isinstance(e, (GarbageReceived, LinkAck, LinkNak)) for e in others)
    kept = b"".join(
        e.data
        if isinstance(e, GarbageReceived)
        else bytes([ACK if isinstance(e, LinkAck) else NAK])
        for e in others
    )
    assert kept == garbage
    assert connection.data_to_send() == bytes([ACK])


@given(st.lists(APDUS, min_size=1, max_size=4), st.data())
def test_tcp_fragmentation_of_generated_apdus(apdus, data):
    stream = b"".join(apdus)
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=30))))
    connection = ZvtConnection(Role.ECR, Link.TCP)
    events = []
    start = 0
    for cut in [*cuts, len(stream)]:
        connection.receive_data(stream[start:cut])
        events += _drain(connection)
        start = cut
    assert [e.apdu.encode() for e in events] == apdus
