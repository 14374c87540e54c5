"""Typed ZVT messages: encode/decode round trips, robustness, status completion, totals, Feig."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdiag.drivers.zvt.apdu import Apdu, decode_apdu
from posdiag.drivers.zvt.bmp import decode_bmps, encode_bmp, encode_lllvar_length, encode_tlv_bmp
from posdiag.drivers.zvt.errors import ZvtDecodeError
from posdiag.drivers.zvt.message_base import EUR
from posdiag.drivers.zvt.messages import (
    FEIG_FACTORY_RESET,
    FEIG_SYSTEM_INFO,
    MESSAGE_TYPES,
    AbortCommand,
    AbortFromTerminal,
    Completion,
    Diagnosis,
    EndOfDay,
    FeigRequest,
    Initialisation,
    IntermediateStatus,
    LogOff,
    MalformedMessage,
    Message,
    NegativeAck,
    PositiveAck,
    PrintLine,
    PrintSystemConfiguration,
    PrintTextBlock,
    Registration,
    ResetTerminal,
    SelfTest,
    SendTurnoverTotals,
    SetTerminalId,
    StatusByteCompletion,
    StatusEnquiry,
    StatusInformation,
    UnknownMessage,
    decode_message,
)
from posdiag.drivers.zvt.payloads import (
    FeigSystemInfo,
    StatusReport,
    Totals,
    decode_status_completion,
    decode_totals,
    encode_status_completion,
    encode_totals,
)
from posdiag.drivers.zvt.tlv import Tlv, find

PASSWORDS = st.text("0123456789", min_size=6, max_size=6)
TIDS = st.text("0123456789", min_size=8, max_size=8)
BYTE = st.integers(0, 255)
OPT_BYTE = st.none() | BYTE

_TAGS = st.one_of(
    st.integers(0, 0xFF).filter(lambda b: b & 0x1F != 0x1F),
    st.integers(0, 0x7F).map(lambda b: 0x1F00 | b),
    st.integers(0, 0x7F).map(lambda b: 0xDF00 | b),
)
TLV_LISTS = st.lists(
    st.recursive(
        st.builds(Tlv, _TAGS, st.binary(max_size=40)),
        lambda kids: st.builds(Tlv.build, _TAGS, st.lists(kids, max_size=3)),
        max_leaves=6,
    ),
    max_size=4,
).map(tuple)
OPT_TLV = st.none() | TLV_LISTS

# Text a CP437 printer line can carry and that survives the decoder's rstrip().
PRINT_TEXT = st.text(st.characters(codec="cp437"), max_size=60).filter(lambda s: s == s.rstrip())


def _round_trip(message: Message) -> Message:
    apdu = message.to_apdu()
    wire = apdu.encode()
    assert message.encode() == wire
    decoded = decode_message(decode_apdu(wire))
    assert not isinstance(decoded, MalformedMessage), decoded
    assert decoded.to_apdu() == apdu
    return decoded


# --- fixed examples ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (Registration("123456", 0xDE), "06 00 06 12 34 56 DE 09 78"),
        (Registration("123456", 0xBA, currency=None), "06 00 04 12 34 56 BA"),
        (
            Registration("000000", 0x86, service_byte=0x01, tlv=()),
            "06 00 0A 00 00 00 86 09 78 03 01 06 00",
        ),
        (LogOff(), "06 02 00"),
        (StatusEnquiry(), "05 01 00"),
        (StatusEnquiry("123456", 0x06), "05 01 05 12 34 56 03 06"),
        (Diagnosis(), "06 70 00"),
        (Diagnosis(0x02), "06 70 05 06 03 1B 01 02"),
        (PrintSystemConfiguration(), "06 1A 00"),
        (EndOfDay("123456"), "06 50 03 12 34 56"),
        (SendTurnoverTotals("123456"), "06 10 03 12 34 56"),
        (Initialisation("123456"), "06 93 03 12 34 56"),
        (SetTerminalId("123456"), "06 1B 03 12 34 56"),
        (SetTerminalId("123456", "29001006"), "06 1B 08 12 34 56 29 29 00 10 06"),
        (ResetTerminal(), "06 18 00"),
        (SelfTest(), "06 79 00"),
        (AbortCommand(), "06 B0 00"),
        (FeigRequest(FEIG_SYSTEM_INFO), "0F A1 02 00 01"),
        (FeigRequest(FEIG_FACTORY_RESET, "123456"), "0F A1 05 12 34 56 02 55"),
        (PositiveAck(), "80 00 00"),
        (NegativeAck(0x83), "84 83 00"),
        (NegativeAck(0x1E, b"\x6f"), "84 1E 01 6F"),
        (Completion(), "06 0F 00"),
        (
            Completion(bytes.fromhex("19 00 29 29 00 10 06 49 09 78")),
            "06 0F 0A 19 00 29 29 00 10 06 49 09 78",
        ),
        (AbortFromTerminal(0x6C), "06 1E 01 6C"),
        (IntermediateStatus(0x17), "04 FF 01 17"),
        (IntermediateStatus(0x0A, 5), "04 FF 02 0A 05"),
        (StatusInformation(bytes.fromhex("27 00")), "04 0F 02 27 00"),
        (PrintLine(0x00, "Hallo"), "06 D1 06 00 48 61 6C 6C 6F"),
    ],
)
def test_known_wire_forms(message, wire):
    raw = bytes.fromhex(wire)
    assert message.encode() == raw
    decoded = decode_message(decode_apdu(raw))
    assert decoded == message
    assert type(decoded) is type(message)


def test_every_registered_command_has_a_distinct_class():
    assert len(MESSAGE_TYPES) == len(set(MESSAGE_TYPES.values()))
    assert all(cmd == cls.CMD for cmd, cls in MESSAGE_TYPES.items())
    assert (0x84, 0x00) not in MESSAGE_TYPES  # 84 xx is matched on CLASS alone


def test_registration_defaults_to_euro():
    assert EUR == 978
    assert Registration("123456", 0xBA).currency == 978


def test_unknown_and_malformed():
    unknown = Apdu(0x06, 0xC0, bytes.fromhex("0F 19 10"))
    message = decode_message(unknown)
    assert isinstance(message, UnknownMessage)
    assert message.to_apdu() == unknown
    assert message.bmps(1) == decode_bmps(bytes.fromhex("19 10"))

    bad = Apdu(0x06, 0x00, b"\x12\x34")  # Registration without config byte
    malformed = decode_message(bad)
    assert isinstance(malformed, MalformedMessage)
    assert malformed.to_apdu() == bad
    assert "config byte" in malformed.reason


@pytest.mark.parametrize(
    "wire",
    [
        "06 00 02 12 34",  # Registration, short
        "06 00 06 12 34 56 DE 0A 78",  # currency not BCD
        "06 00 08 12 34 56 DE 09 78 07 00",  # unknown BMP 07
        "06 00 08 12 34 56 DE 09 78 06 05",  # TLV truncated
        "05 01 02 12 34",  # password cut
        "05 01 04 12 34 56 03",  # service byte missing
        "06 1B 08 12 34 56 29 2A 00 10 06",  # TID not BCD
        "06 50 02 12 34",
        "0F A1 03 00 01 02",  # Feig request with 3 bytes
        "06 1E 00",  # abort without result code
        "04 FF 00",  # intermediate status without status
        "04 FF 02 17 AA",  # timeout not BCD
        "04 0F 02 07 00",  # unknown BMP
        "06 D1 00",  # print line without attribute
        "06 D3 02 19 00",  # print block without TLV container
        "06 D3 03 06 05 07",  # print block TLV truncated
        "06 70 02 06 05",  # diagnosis TLV truncated
    ],
)
def test_bad_data_becomes_malformed(wire):
    raw = bytes.fromhex(wire)
    message = decode_message(decode_apdu(raw))
    assert isinstance(message, MalformedMessage)
    assert message.apdu.encode() == raw
    assert message.reason


def test_intermediate_status_06_without_tlv_is_six_minutes():
    # "06" after the status byte is either a T4 of six minutes or a TLV container; with nothing
    # that decodes as TLV it must be the timeout.
    decoded = decode_message(decode_apdu(bytes.fromhex("04 FF 02 0A 06")))
    assert decoded == IntermediateStatus(0x0A, 6)
    decoded = decode_message(decode_apdu(bytes.fromhex("04 FF 04 0A 06 06 00")))
    assert decoded == IntermediateStatus(0x0A, 6, ())
    decoded = decode_message(decode_apdu(bytes.fromhex("04 FF 06 0A 06 03 1F 0E 00")))
    assert decoded == IntermediateStatus(0x0A, None, (Tlv(0x1F0E, b""),))


def test_print_text_block_from_lines():
    block = PrintTextBlock.from_lines(["  ** Test **", "Zeile 2 äöü", ""], receipt_type=2)
    assert block.receipt_type == 2
    assert block.lines() == ["  ** Test **", "Zeile 2 äöü", ""]
    decoded = _round_trip(block)
    assert isinstance(decoded, PrintTextBlock)
    assert decoded.lines() == block.lines()
    assert PrintTextBlock((Tlv(0x1F07, b"\x01"),)).lines() == []
    assert PrintTextBlock(()).receipt_type is None


def test_print_line_strips_trailing_spaces():
    decoded = decode_message(decode_apdu(bytes.fromhex("06 D1 04 00 41 20 20")))
    assert decoded == PrintLine(0, "A")


def test_completion_bmps_and_with_bmps():
    completion = Completion.with_bmps(
        encode_bmp(0x19, b"\x10"), encode_bmp(0x29, bytes.fromhex("29001006"))
    )
    assert [b.bmp_id for b in completion.bmps()] == [0x19, 0x29]
    assert _round_trip(completion) == completion


def test_status_information_bmps():
    info = StatusInformation(encode_bmp(0x27, b"\x00") + encode_bmp(0x04, bytes(6)))
    assert [b.bmp_id for b in info.bmps()] == [0x27, 0x04]


def test_diagnosis_without_type_tag():
    decoded = decode_message(Apdu(0x06, 0x70, encode_tlv_bmp([Tlv(0x1F0E, b"\x01")])))
    assert decoded == Diagnosis(None)


# --- round trips (hypothesis) --------------------------------------------------------------------


@given(
    PASSWORDS,
    BYTE,
    st.none() | st.tuples(st.integers(0, 9999), OPT_BYTE, OPT_TLV),
)
def test_registration_round_trip(password, config, tail):
    if tail is None:
        message = Registration(password, config, currency=None)
    else:
        currency, service, tlv = tail
        message = Registration(password, config, currency, service, tlv)
    assert _round_trip(message) == message


@given(st.none() | st.tuples(PASSWORDS, OPT_BYTE, OPT_TLV))
def test_status_enquiry_round_trip(args):
    message = StatusEnquiry() if args is None else StatusEnquiry(*args)
    assert _round_trip(message) == message


@given(OPT_BYTE)
def test_diagnosis_round_trip(kind):
    assert _round_trip(Diagnosis(kind)) == Diagnosis(kind)


@pytest.mark.parametrize("cls", [EndOfDay, SendTurnoverTotals, Initialisation])
@given(password=PASSWORDS, tlv=OPT_TLV)
def test_password_commands_round_trip(cls, password, tlv):
    message = cls(password, tlv)
    assert _round_trip(message) == message


@given(PASSWORDS, st.none() | TIDS)
def test_set_terminal_id_round_trip(password, tid):
    message = SetTerminalId(password, tid)
    assert _round_trip(message) == message


@pytest.mark.parametrize(
    "cls", [LogOff, PrintSystemConfiguration, ResetTerminal, SelfTest, AbortCommand]
)
def test_empty_commands_round_trip(cls):
    assert _round_trip(cls()) == cls()
    assert cls().encode() == bytes([*cls.CMD, 0])


@given(st.integers(0, 0xFFFF), st.none() | PASSWORDS)
def test_feig_request_round_trip(function, password):
    message = FeigRequest(function, password)
    assert _round_trip(message) == message


@given(st.binary(max_size=300))
def test_positive_ack_round_trip(data):
    assert _round_trip(PositiveAck(data)) == PositiveAck(data)


@given(BYTE, st.binary(max_size=300))
def test_negative_ack_round_trip(code, data):
    assert _round_trip(NegativeAck(code, data)) == NegativeAck(code, data)


@given(st.binary(max_size=300))
def test_completion_round_trip(data):
    # One byte alone is a bare status byte: the codec types it, the bytes stay the same.
    expected = StatusByteCompletion(data) if len(data) == 1 else Completion(data)
    assert _round_trip(Completion(data)) == expected


@given(BYTE, st.binary(max_size=300))
def test_abort_from_terminal_round_trip(code, data):
    message = AbortFromTerminal(code, data)
    assert _round_trip(message) == message


@given(BYTE, st.none() | st.integers(0, 99), OPT_TLV)
def test_intermediate_status_round_trip(status, minutes, tlv):
    # "04 FF <status> 06 ..." is ambiguous (T4 of six minutes or TLV); the codec prefers the TLV
    # reading, so six minutes followed by a TLV is left out of the generated cases.
    if minutes == 6 and tlv is not None:
        minutes = 7
    message = IntermediateStatus(status, minutes, tlv)
    assert _round_trip(message) == message


@given(
    st.lists(
        st.sampled_from(
            [
                encode_bmp(0x27, b"\x00"),
                encode_bmp(0x04, bytes.fromhex("000000002500")),
                encode_bmp(0x49, bytes.fromhex("0978")),
                encode_bmp(0x0B, bytes.fromhex("000123")),
                encode_bmp(0x29, bytes.fromhex("29001006")),
                encode_bmp(0x60, bytes(11)),
                encode_bmp(0x3C, b"free text"),
                encode_tlv_bmp([Tlv(0x1F0E, b"\x01")]),
            ]
        ),
        max_size=8,
    )
)
def test_status_information_round_trip(fields):
    message = StatusInformation(b"".join(fields))
    assert _round_trip(message) == message


@given(BYTE, PRINT_TEXT)
def test_print_line_round_trip(attribute, text):
    message = PrintLine(attribute, text)
    assert _round_trip(message) == message


@given(st.lists(PRINT_TEXT, max_size=30), BYTE)
def test_print_text_block_round_trip(lines, receipt_type):
    block = PrintTextBlock.from_lines(lines, receipt_type)
    decoded = _round_trip(block)
    assert decoded == block
    assert decoded.lines() == lines
    assert decoded.receipt_type == receipt_type


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300))
def test_decode_message_never_raises(cls, instr, data):
    apdu = Apdu(cls, instr, data)
    message = decode_message(apdu)
    assert isinstance(message, Message)
    if isinstance(message, (UnknownMessage, MalformedMessage)):
        assert message.to_apdu() == apdu


@given(st.sampled_from(sorted(MESSAGE_TYPES)), st.binary(max_size=120))
def test_decode_message_never_raises_for_known_commands(command, data):
    apdu = Apdu(*command, data)
    message = decode_message(apdu)
    assert isinstance(message, (MESSAGE_TYPES[command], MalformedMessage))
    if isinstance(message, MalformedMessage):
        assert message.apdu == apdu


@given(
    st.sampled_from(sorted(MESSAGE_TYPES)),
    st.lists(
        st.sampled_from(
            [
                b"\x12\x34\x56",
                b"\x06",
                b"\x00",
                b"\x03\x01",
                b"\x29",
                b"\x1f\x44",
                b"\xf0",
                b"\xff",
                b"\x81",
                b"\x82\x01",
                b"\x07\x01a",
                b"\x25\x03",
            ]
        ),
        max_size=10,
    ),
)
def test_decode_message_never_raises_for_plausible_data(command, parts):
    decode_message(Apdu(*command, b"".join(parts)))


# --- Status-Enquiry completion -------------------------------------------------------------------

FULL_REPORT = StatusReport(
    terminal_status=0x00,
    sw_version="SIM-APP-v1.2.3;base-01.02.03-04;XY12",
    terminal_id="29001006",
    device_name="Sim PT",
    device_sw_version="SIM-APP-v1.2.3",
    serial="0A1B2C3D",
    device_state=0,
    date="20240102",
    time="123000",
)


def test_status_completion_with_sw_version_and_tlv():
    data = encode_status_completion(FULL_REPORT, send_sw_version=True, send_tlv=True)
    assert data[:3] == encode_lllvar_length(len(FULL_REPORT.sw_version))
    assert decode_status_completion(data) == FULL_REPORT


def test_status_completion_minimal():
    assert decode_status_completion(b"\xdc") == StatusReport(0xDC)
    assert decode_status_completion(b"\x00", sw_version_expected=False) == StatusReport(0)
    assert encode_status_completion(StatusReport(0xDC), send_sw_version=True, send_tlv=False) == (
        b"\xdc"
    )


@pytest.mark.parametrize("status", [0xF0, 0xF1, 0xF6, 0xF9, 0x00, 0x51, 0xDC])
@pytest.mark.parametrize("expected", [True, False])
def test_status_completion_without_sw_version(status, expected):
    # A status byte F0/F6 looks like the first digit of an LLLVAR length.
    report = StatusReport(status, terminal_id="29001006", device_state=1)
    data = encode_status_completion(report, send_sw_version=False, send_tlv=True)
    assert data[0] == status
    assert decode_status_completion(data, sw_version_expected=expected) == report
    bare = encode_status_completion(report, send_sw_version=False, send_tlv=False)
    assert bare == bytes([status])
    assert decode_status_completion(bare, sw_version_expected=expected) == StatusReport(status)


@pytest.mark.parametrize("status", [0xF0, 0xF6, 0x00])
@pytest.mark.parametrize("expected", [True, False])
def test_status_completion_with_sw_version_any_expectation(status, expected):
    report = StatusReport(status, sw_version="SW 1.0")
    data = encode_status_completion(report, send_sw_version=True, send_tlv=False)
    assert decode_status_completion(data, sw_version_expected=expected) == report
    with_tlv = encode_status_completion(
        StatusReport(status, sw_version="SW 1.0", terminal_id="12345678"),
        send_sw_version=True,
        send_tlv=True,
    )
    decoded = decode_status_completion(with_tlv, sw_version_expected=expected)
    assert decoded == StatusReport(status, sw_version="SW 1.0", terminal_id="12345678")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes.fromhex("F0 F1 F0 41"),  # SW truncated and no status byte
        bytes.fromhex("00 27 00"),  # a BMP other than 06 after the status
        bytes.fromhex("00 06 05 1F 44"),  # TLV truncated
        bytes.fromhex("00 06 04 1F 44 02 1A"),  # TID not BCD
    ],
)
def test_status_completion_errors(data):
    with pytest.raises(ZvtDecodeError):
        decode_status_completion(data)


def test_status_completion_tolerates_missing_device_fields():
    tlv = encode_tlv_bmp([Tlv(0x1F44, bytes.fromhex("12345678")), Tlv.build(0xE4, [])])
    assert decode_status_completion(b"\x00" + tlv) == StatusReport(0, terminal_id="12345678")


_NAME = st.text(st.characters(codec="cp437"), max_size=30).filter(lambda s: s == s.rstrip("\x00 "))


@given(
    status=BYTE,
    sw=st.none() | _NAME,
    tid=st.none() | TIDS,
    name=st.none() | _NAME,
    dev_sw=st.none() | _NAME,
    serial=st.none() | st.binary(min_size=1, max_size=8).map(lambda b: b.hex().upper()),
    state=st.none() | st.integers(0, 3),
    when=st.none()
    | st.tuples(st.text("0123456789", min_size=8, max_size=8), TIDS.map(lambda t: t[:6])),
    send_sw=st.booleans(),
    send_tlv=st.booleans(),
)
def test_status_completion_round_trip(
    status, sw, tid, name, dev_sw, serial, state, when, send_sw, send_tlv
):
    date, time = when if when else (None, None)
    report = StatusReport(status, sw, tid, name, dev_sw, serial, state, date, time)
    data = encode_status_completion(report, send_sw_version=send_sw, send_tlv=send_tlv)
    expected = StatusReport(
        status,
        sw if send_sw else None,
        *((tid, name, dev_sw, serial, state, date, time) if send_tlv else (None,) * 7),
    )
    decoded = decode_status_completion(data, sw_version_expected=send_sw and sw is not None)
    assert decoded == expected
    # The completion travels as 06 0F and stays a plain Completion on the wire.
    message = _round_trip(Completion(data))
    assert isinstance(message, Completion)


# --- totals --------------------------------------------------------------------------------------


def test_totals_example():
    data = (
        bytes.fromhex("0001 0005")
        + b"\x02"
        + bytes.fromhex("000000001000")
        + b"\x03"
        + (bytes.fromhex("000000000250"))
    )
    totals = decode_totals(data)
    assert totals == Totals(1, 5, ((2, 1000), (3, 250)))
    assert totals.count == 5
    assert totals.total_cents == 1250
    assert encode_totals(totals) == data


def test_totals_empty_store():
    totals = decode_totals(bytes.fromhex("0000 0000"))
    assert totals == Totals(0, 0, ())
    assert totals.count == 0
    assert totals.total_cents == 0


@pytest.mark.parametrize("size", [0, 3, 5, 10, 12])
def test_totals_bad_size(size):
    with pytest.raises(ZvtDecodeError):
        decode_totals(bytes(size))


def test_totals_not_bcd():
    with pytest.raises(ZvtDecodeError):
        decode_totals(bytes.fromhex("00 0A 00 01"))


def test_totals_count_clamped_to_one_byte():
    data = encode_totals(Totals(1, 2, ((300, 5),)))
    assert decode_totals(data).per_scheme == ((255, 5),)


@given(
    st.integers(0, 9999),
    st.integers(0, 9999),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 10**12 - 1)), max_size=20),
)
def test_totals_round_trip(first, last, groups):
    totals = Totals(first, last, tuple(groups))
    data = encode_totals(totals)
    assert len(data) == 4 + 7 * len(groups)
    assert decode_totals(data) == totals
    # BMP 60 is LLLVAR inside a 04 0F.
    info = StatusInformation(encode_bmp(0x27, b"\x00") + encode_bmp(0x60, data))
    decoded = _round_trip(info)
    assert decode_totals(decoded.bmps()[1].data) == totals


# --- Feig system info ----------------------------------------------------------------------------


def test_feig_system_info_example():
    info = FeigSystemInfo("0A1B2C3D", "SIM-APP-v1.2.3", "29001006", 31.5)
    data = info.encode()
    assert data == b"0A1B2C3DSIM-APP-v1.2.3   2900100631.5"
    assert FeigSystemInfo.decode(data) == info


def test_feig_system_info_without_temperature():
    info = FeigSystemInfo("1", "2", "3", None)
    assert len(info.encode()) == 33
    assert FeigSystemInfo.decode(info.encode()) == info
    assert FeigSystemInfo.decode(info.encode() + b"n/a").temperature_c is None


def test_feig_system_info_too_short():
    with pytest.raises(ZvtDecodeError):
        FeigSystemInfo.decode(b"x" * 32)


_ASCII_FIELD = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(
    _ASCII_FIELD.filter(lambda s: len(s) <= 8),
    _ASCII_FIELD.filter(lambda s: len(s) <= 17),
    _ASCII_FIELD.filter(lambda s: len(s) <= 8),
    st.none() | st.integers(-400, 1200).map(lambda t: t / 10),
)
def test_feig_system_info_round_trip(serial, sw, tid, temperature):
    info = FeigSystemInfo(serial, sw, tid, temperature)
    assert FeigSystemInfo.decode(info.encode()) == info
    # It travels as the data of a 06 0F completion.
    assert FeigSystemInfo.decode(_round_trip(Completion(info.encode())).data) == info


def test_find_on_print_block_tlv():
    block = PrintTextBlock.from_lines(["a", "b"])
    assert find(block.tlv, 0x25, 0x07).value == b"a"
