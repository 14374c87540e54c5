"""Real ZVT traffic (EVerest/zvt captures, Apache-2.0) through the codec and both link layers.

The captures are read from ``../shared/captures/zvt-everest`` next to the repository; they are
never copied into the project. Each ``.blob`` is one APDU as it crossed a TCP link.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdiag.drivers.zvt.apdu import decode_apdu
from posdiag.drivers.zvt.bcd import decode_bcd
from posdiag.drivers.zvt.bmp import bmp_map, decode_bmps
from posdiag.drivers.zvt.connection import (
    Link,
    MessageReceived,
    Role,
    ZvtConnection,
)
from posdiag.drivers.zvt.framing import ACK, NEED_DATA, encode_serial_frame
from posdiag.drivers.zvt.messages import (
    AbortFromTerminal,
    Completion,
    EndOfDay,
    FeigRequest,
    IntermediateStatus,
    MalformedMessage,
    PositiveAck,
    PrintTextBlock,
    Registration,
    StatusInformation,
    UnknownMessage,
    decode_message,
)
from posdiag.drivers.zvt.payloads import FeigSystemInfo, decode_status_completion
from posdiag.drivers.zvt.tlv import find

CAPTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "captures" / "zvt-everest"
BLOBS = sorted(CAPTURES.glob("*.blob")) if CAPTURES.is_dir() else []

pytestmark = pytest.mark.skipif(
    not BLOBS, reason=f"ZVT captures not found at {CAPTURES} (shared/captures/zvt-everest)"
)

# At least one parametrised case must exist even without captures, so the skip is visible.
BLOB_PARAMS = [pytest.param(path, id=path.name) for path in BLOBS] or [
    pytest.param(None, id="no-captures")
]

STATUS_COMPLETION = "1680728219.054216000_pt_ecr.blob"
REGISTRATION = "1681273860.511128000_ecr_pt.blob"
REGISTRATION_COMPLETION = "1680761818.641601000_pt_ecr.blob"
FEIG_REQUEST = "1680761818.690979000_ecr_pt.blob"
FEIG_ANSWER = "1680761818.768770000_pt_ecr.blob"
PRINT_CONFIG = "print_system_configuration_reply.blob"
END_OF_DAY = "1681282621.302434000_ecr_pt.blob"
INTERMEDIATE = "1680728162.647465000_pt_ecr.blob"
PARTIAL_REVERSAL = "partial_reversal.blob"
LONG_ACK = "1682080310.907262000_192.168.0.139_192.168.0.59.blob"

# Expected message class per command, for the commands the codec types.
EXPECTED_CLASS = {
    (0x06, 0x00): Registration,
    (0x06, 0x0F): Completion,
    (0x06, 0x50): EndOfDay,
    (0x06, 0x1E): AbortFromTerminal,
    (0x06, 0xD3): PrintTextBlock,
    (0x04, 0x0F): StatusInformation,
    (0x04, 0xFF): IntermediateStatus,
    (0x0F, 0xA1): FeigRequest,
    (0x80, 0x00): PositiveAck,
}


def _raw(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def _message(name: str):
    return decode_message(decode_apdu(_raw(name)))


def _receiver(path: Path) -> Role:
    """Which role receives this capture: ``_ecr_pt`` goes to the PT, ``_pt_ecr`` to the ECR."""
    name = path.name
    if "_ecr_pt" in name or "_192.168.0.139_" in name:
        return Role.PT
    if "_pt_ecr" in name or "_192.168.0.59_" in name:
        return Role.ECR
    # Unnamed direction: commands from the ECR are 05 xx, 06 xx (not 0F/1E/D1/D3), 08 xx.
    apdu = decode_apdu(path.read_bytes())
    from_pt = apdu.cls in (0x04, 0x80, 0x84) or apdu.command in {
        (0x06, 0x0F),
        (0x06, 0x1E),
        (0x06, 0xD1),
        (0x06, 0xD3),
    }
    return Role.ECR if from_pt else Role.PT


def _drain(connection: ZvtConnection) -> list:
    events = []
    while (event := connection.next_event()) is not NEED_DATA:
        events.append(event)
    return events


# --- every capture -------------------------------------------------------------------------------


def test_capture_folder_is_complete():
    assert len(BLOBS) >= 25
    assert (CAPTURES / "LICENSE").is_file()


@pytest.mark.parametrize("path", BLOB_PARAMS)
def test_capture_decodes_and_re_encodes_exactly(path):
    raw = path.read_bytes()
    apdu = decode_apdu(raw)
    assert apdu.encode() == raw
    message = decode_message(apdu)
    assert not isinstance(message, MalformedMessage), getattr(message, "reason", "")
    expected = EXPECTED_CLASS.get(apdu.command, UnknownMessage)
    assert type(message) is expected
    assert message.to_apdu() == apdu
    assert message.encode() == raw
    if apdu.command == (0x04, 0x0F):
        bmps = decode_bmps(apdu.data)
        assert bmps
        assert bmps[0].bmp_id == 0x27  # result code first
        for bmp in bmps:
            if bmp.bmp_id == 0x06:
                assert bmp.tlv() is not None


@pytest.mark.parametrize("path", BLOB_PARAMS)
def test_unknown_captured_commands_still_parse_as_bmps(path):
    apdu = decode_apdu(path.read_bytes())
    message = decode_message(apdu)
    if not isinstance(message, UnknownMessage):
        return
    # The untyped commands (06 22/23/25/C0, 08 13/14, 04 0C) carry BMPs, after a positional
    # prefix for 06 C0 (timeout byte) and 08 14 (password).
    offset = {(0x06, 0xC0): 1, (0x08, 0x14): 3}.get(apdu.command, 0)
    bmps = message.bmps(offset)
    assert bmps


# --- specific captures ---------------------------------------------------------------------------


def test_status_enquiry_completion():
    message = _message(STATUS_COMPLETION)
    assert isinstance(message, Completion)
    for expected in (True, False):
        report = decode_status_completion(message.data, sw_version_expected=expected)
        assert report.terminal_id == "52523535"
        assert report.device_name == "cVEND plug"
        assert report.sw_version == "GER-APP-v2.0.9;cS02.01.01-10.10-2-2;CC26"
        assert report.device_sw_version == report.sw_version
        assert report.serial == "17FD1E3C"
        assert report.device_state == 0
        assert report.terminal_status == 0
        assert report.date is not None
        assert report.time is not None


def test_registration():
    message = _message(REGISTRATION)
    assert message == Registration("123456", 0xDE, 978)
    assert message.config_byte == 0xDE


def test_registration_completion():
    message = _message(REGISTRATION_COMPLETION)
    assert isinstance(message, Completion)
    fields = bmp_map(message.bmps())
    assert fields[0x19].data == b"\x10"
    assert decode_bcd(fields[0x29].data) == "52523535"
    assert fields[0x49].data.hex() == "0978"


def test_feig_system_info_request_and_answer():
    request = _message(FEIG_REQUEST)
    assert request == FeigRequest(0x0001)
    answer = _message(FEIG_ANSWER)
    assert isinstance(answer, Completion)
    info = FeigSystemInfo.decode(answer.data)
    assert info.serial == "17FD1E3C"
    assert info.sw_version.startswith("GER-APP-v2.0.9")
    assert info.terminal_id == "52523535"
    assert info.temperature_c is not None
    assert -40 < info.temperature_c < 100
    assert info.encode() == answer.data


def test_print_system_configuration():
    raw = _raw(PRINT_CONFIG)
    assert raw[2] == 0xFF  # extended length
    assert len(raw) == 5 + 4088
    message = _message(PRINT_CONFIG)
    assert isinstance(message, PrintTextBlock)
    lines = message.lines()
    assert len(lines) > 50
    serial_lines = [line for line in lines if "Terminal Serien-Nr.:" in line]
    assert serial_lines
    assert "17F59B1F" in serial_lines[0]
    assert message.receipt_type is not None


def test_end_of_day():
    assert _message(END_OF_DAY) == EndOfDay("123456")


def test_intermediate_status():
    message = _message(INTERMEDIATE)
    assert isinstance(message, IntermediateStatus)
    assert message.timeout_minutes is None
    assert message.tlv is None


def test_partial_reversal_abort():
    message = _message(PARTIAL_REVERSAL)
    assert isinstance(message, AbortFromTerminal)
    assert decode_bmps(message.data)  # the rest are BMPs


def test_long_positive_ack_carries_tlv():
    message = _message(LONG_ACK)
    assert isinstance(message, PositiveAck)
    assert len(message.data) > 254
    tlv = bmp_map(decode_bmps(message.data))[0x06].tlv()
    assert tlv
    assert find(tlv, tlv[0].tag) is not None


# --- through the serial link ---------------------------------------------------------------------


@pytest.mark.parametrize("path", BLOB_PARAMS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "byte-by-byte"])
def test_capture_over_serial(path, bytewise):
    raw = path.read_bytes()
    expected = decode_message(decode_apdu(raw))
    receiver = ZvtConnection(_receiver(path), Link.SERIAL)
    frame = encode_serial_frame(raw)
    events = []
    if bytewise:
        for index in range(len(frame)):
            receiver.receive_data(frame[index : index + 1])
            events += _drain(receiver)
            if index < len(frame) - 1:
                assert receiver.frame_in_progress
    else:
        receiver.receive_data(frame)
        events = _drain(receiver)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, MessageReceived)
    assert event.message == expected
    assert event.apdu.encode() == raw
    assert receiver.data_to_send() == bytes([ACK])
    assert not receiver.frame_in_progress


@pytest.mark.parametrize("path", BLOB_PARAMS)
def test_capture_sent_by_its_sender_codec(path):
    raw = path.read_bytes()
    role = _receiver(path)
    sender = ZvtConnection(Role.ECR if role is Role.PT else Role.PT, Link.SERIAL)
    sender.send(decode_message(decode_apdu(raw)))
    wire = sender.data_to_send()
    assert wire == encode_serial_frame(raw)
    receiver = ZvtConnection(role, Link.SERIAL)
    receiver.receive_data(wire)
    [event] = _drain(receiver)
    assert event.apdu.encode() == raw


def test_all_captures_in_one_serial_stream():
    receiver = ZvtConnection(Role.ECR, Link.SERIAL)
    stream = b"".join(encode_serial_frame(path.read_bytes()) for path in BLOBS)
    receiver.receive_data(stream)
    events = _drain(receiver)
    assert [e.apdu.encode() for e in events] == [path.read_bytes() for path in BLOBS]
    assert receiver.data_to_send() == bytes([ACK]) * len(BLOBS)


# --- through the TCP link ------------------------------------------------------------------------


def _feed_in_pieces(connection: ZvtConnection, stream: bytes, cuts: list[int]) -> list:
    events = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        connection.receive_data(stream[start:cut])
        events += _drain(connection)
        start = cut
    return events


@pytest.mark.parametrize("path", BLOB_PARAMS)
def test_capture_over_tcp_whole_and_bytewise(path):
    raw = path.read_bytes()
    expected = decode_message(decode_apdu(raw))
    for cuts in ([], list(range(1, len(raw)))):
        receiver = ZvtConnection(_receiver(path), Link.TCP)
        events = _feed_in_pieces(receiver, raw, cuts)
        assert len(events) == 1
        assert isinstance(events[0], MessageReceived)
        assert events[0].message == expected
        assert receiver.data_to_send() == b""  # no link ACK on TCP
        assert not receiver.frame_in_progress


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_capture_over_tcp_random_fragmentation(data):
    if not BLOBS:
        pytest.skip("no captures")
    path = data.draw(st.sampled_from(BLOBS))
    raw = path.read_bytes()
    cuts = data.draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=20))
    receiver = ZvtConnection(_receiver(path), Link.TCP)
    events = _feed_in_pieces(receiver, raw, cuts)
    assert [e.message for e in events] == [decode_message(decode_apdu(raw))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_all_captures_concatenated_over_tcp(data):
    if not BLOBS:
        pytest.skip("no captures")
    order = data.draw(st.permutations(BLOBS))
    raws = [path.read_bytes() for path in order]
    stream = b"".join(raws)
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=60))
    receiver = ZvtConnection(Role.ECR, Link.TCP)
    events = _feed_in_pieces(receiver, stream, cuts)
    assert all(isinstance(e, MessageReceived) for e in events)
    assert [e.apdu.encode() for e in events] == raws
    assert [e.message for e in events] == [decode_message(decode_apdu(r)) for r in raws]
    assert not receiver.frame_in_progress


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_all_captures_concatenated_over_serial_random_fragmentation(data):
    if not BLOBS:
        pytest.skip("no captures")
    order = data.draw(st.permutations(BLOBS))
    raws = [path.read_bytes() for path in order]
    stream = b"".join(encode_serial_frame(raw) for raw in raws)
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=60))
    receiver = ZvtConnection(Role.ECR, Link.SERIAL)
    events = _feed_in_pieces(receiver, stream, cuts)
    assert [e.apdu.encode() for e in events] == raws
    assert receiver.data_to_send() == bytes([ACK]) * len(raws)
