"""Issue 14 (ZVT): charset per terminal, bare-status-byte completions, tag 09, BMP 19, 04 0F fields.

Bytes are built from the spec (PA00P015 layouts in ``shared/reference/zvt.md``) where no shared
capture has them; the real EVerest captures are read from ``../shared/captures`` where they do.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from posdiag.drivers.catalogue import Catalogue, CatalogueError, ModelEntry, load_catalogue
from posdiag.drivers.zvt.apdu import Apdu, decode_apdu
from posdiag.drivers.zvt.bmp import Bmp, bmp_map, bmp_name, encode_bmp, encode_tlv_bmp
from posdiag.drivers.zvt.charset import (
    DEFAULT_CHARSET,
    check_charset,
    decode_text,
    detect_charset,
)
from posdiag.drivers.zvt.connection import Link, MessageReceived, Role, ZvtConnection
from posdiag.drivers.zvt.messages import (
    Completion,
    PrintLine,
    PrintTextBlock,
    SetDateTimeInEcr,
    StatusByteCompletion,
    StatusInformation,
    decode_message,
)
from posdiag.drivers.zvt.printing import PrintTextLine
from posdiag.drivers.zvt.printout import decode_print_text
from posdiag.drivers.zvt.status_info import masked_pan
from posdiag.drivers.zvt.tlv import Tlv

CAPTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "captures" / "zvt-everest"
needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared captures not found")

# "HÄNDLERBELEG" as a card complete unit sends it (ISO-8859-1: Ä = C4) and as CP437 has it (8E).
HAENDLERBELEG_LATIN1 = b"H\xc4NDLERBELEG"
HAENDLERBELEG_CP437 = b"H\x8eNDLERBELEG"


def _block(lines: list[bytes], *, items: list[Tlv] | None = None) -> bytes:
    """A 06 D3 APDU built by hand from the spec: 06 <TLV 1F07 type, 25 {09 attr, 07 line…}>."""
    children = items if items is not None else [Tlv(0x07, line) for line in lines]
    tlv = [Tlv(0x1F07, b"\x01"), Tlv.build(0x25, children)]
    return Apdu(0x06, 0xD3, encode_tlv_bmp(tlv)).encode()


# --- 1. character set ----------------------------------------------------------------------------


def test_the_bug_cp437_reads_card_complete_text_wrongly() -> None:
    assert decode_text(HAENDLERBELEG_LATIN1) == "H─NDLERBELEG"  # what the issue saw
    assert decode_text(HAENDLERBELEG_LATIN1, "iso-8859-1") == "HÄNDLERBELEG"


def test_check_charset_accepts_single_byte_sets_only() -> None:
    assert check_charset("CP437") == "cp437"
    assert check_charset("latin-1") == check_charset("ISO-8859-1") == "iso8859-1"
    for bad in ("utf-8", "cp1252", "no-such-charset"):
        with pytest.raises(ValueError):
            check_charset(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([HAENDLERBELEG_LATIN1, b"KUNDENBELEG"], "iso8859-1"),
        ([HAENDLERBELEG_CP437, b"KUNDENBELEG"], "cp437"),
        ([b"W\xe4hrung:   EUR"], "iso8859-1"),  # Währung, ISO-8859-1
        ([b"W\x84hrung:   EUR"], "cp437"),  # Währung, CP437 (the Feig capture)
        ([b"KUNDENBELEG", b"Betrag  12,50 EUR"], None),  # ASCII: nothing to decide
        ([b"\xff\xfe"], None),  # no letters around: undecided, the catalogue's stays
    ],
)
def test_detect_charset_by_known_label(raw: list[bytes], expected: str | None) -> None:
    assert detect_charset(raw) == expected


def test_detect_charset_without_label_by_letters_between_letters() -> None:
    # "Zahlungsbestätigung" is no listed label; ä between letters still decides.
    assert detect_charset([b"Zahlungsbest\xe4tigung erfolgt"]) == "iso8859-1"
    assert detect_charset([b"Gr\x94\xe1e"]) == "cp437"  # CP437 "Größe"; 94 is a C1 control
    assert detect_charset([b"Stra\xe1e"]) is None  # "Straße" or "Straáe": both letters, a tie


@needs_captures
def test_detect_charset_on_the_real_feig_printout_is_cp437() -> None:
    raw = (CAPTURES / "print_system_configuration_reply.blob").read_bytes()
    block = decode_message(decode_apdu(raw))
    assert isinstance(block, PrintTextBlock)
    assert detect_charset(block.raw_lines()) == "cp437"
    # decoded as ISO-8859-1 the same bytes would be wrong: the detection is not a default
    assert any("G\x81ltig" in line for line in block.lines("iso-8859-1"))


def test_codec_decodes_print_text_in_the_charset_it_is_given() -> None:
    wire = _block([HAENDLERBELEG_LATIN1])
    default = decode_message(decode_apdu(wire))
    latin = decode_message(decode_apdu(wire), charset="iso-8859-1")
    assert isinstance(default, PrintTextBlock) and isinstance(latin, PrintTextBlock)
    assert default.lines() == ["H─NDLERBELEG"]
    assert latin.lines() == ["HÄNDLERBELEG"]
    assert default.lines("iso-8859-1") == ["HÄNDLERBELEG"]  # the bytes are kept
    line = decode_message(Apdu(0x06, 0xD1, b"\x00" + HAENDLERBELEG_LATIN1), charset="latin-1")
    assert isinstance(line, PrintLine)
    assert line.text == "HÄNDLERBELEG" and line.raw == HAENDLERBELEG_LATIN1
    assert decode_print_text(HAENDLERBELEG_LATIN1 + b"  ", "iso-8859-1") == "HÄNDLERBELEG"


def test_connection_threads_its_charset_to_the_codec() -> None:
    ecr = ZvtConnection(Role.ECR, Link.TCP, charset="iso-8859-1")
    ecr.receive_data(Apdu(0x06, 0xD1, b"\x00" + HAENDLERBELEG_LATIN1).encode())
    event = ecr.next_event()
    assert isinstance(event, MessageReceived)
    assert isinstance(event.message, PrintLine)
    assert event.message.text == "HÄNDLERBELEG"
    with pytest.raises(ValueError):
        ZvtConnection(Role.ECR, Link.TCP, charset="utf-8")


def test_encoding_in_a_charset_round_trips() -> None:
    block = PrintTextBlock.from_lines(["HÄNDLERBELEG"], charset="iso-8859-1")
    wire = block.encode()
    assert HAENDLERBELEG_LATIN1 in wire
    again = decode_message(decode_apdu(wire), charset="iso-8859-1")
    assert again == block
    assert PrintLine(0, "Ä", "iso-8859-1").encode() == Apdu(0x06, 0xD1, b"\x00\xc4").encode()


def test_catalogue_entries_carry_a_charset_with_the_spec_default() -> None:
    catalogue = load_catalogue()
    assert catalogue.generic("zvt").charset == DEFAULT_CHARSET
    feig = catalogue.by_name("zvt", "cVEND plug")
    assert feig.charset == "cp437"  # the real Feig printout is CP437
    with pytest.raises(ValueError):
        check_charset(ModelEntry("x", "v", "m", "zvt", charset="utf-8").charset)


def test_catalogue_rejects_a_charset_that_is_not_single_byte(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from posdiag.drivers import catalogue as module

    class Files:
        @staticmethod
        def files(_package: str) -> Path:
            return tmp_path

    (tmp_path / "x.toml").write_text(
        '[[model]]\nid = "x"\nvendor = "v"\nmodel = "m"\nfamily = "zvt"\ncharset = "utf-8"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(module, "resources", Files)
    with pytest.raises(CatalogueError, match="utf-8"):
        module._parse_catalogue.__wrapped__()  # uncached: the shipped catalogue stays cached


def test_catalogue_type_is_unchanged_for_callers() -> None:
    entry = ModelEntry("cc", "card complete", "SMART", "zvt", ("SMART",), charset="iso-8859-1")
    catalogue = Catalogue((entry, load_catalogue().generic("zvt")), ())
    assert catalogue.by_name("zvt", "SMART T1").charset == "iso-8859-1"


# --- 2. 06 0F with a status byte only ------------------------------------------------------------


def test_completion_with_one_byte_is_a_typed_status_byte_completion() -> None:
    message = decode_message(decode_apdu(bytes.fromhex("06 0F 01 DC")))
    assert isinstance(message, StatusByteCompletion)
    assert isinstance(message, Completion)  # still ends the command for any receiver
    assert message.status_byte == 0xDC
    assert message.encode() == bytes.fromhex("06 0F 01 DC")
    assert type(decode_message(decode_apdu(bytes.fromhex("06 0F 00")))) is Completion
    two = decode_message(decode_apdu(bytes.fromhex("06 0F 02 27 00")))
    assert type(two) is Completion


# --- 3. TLV tag 09 in 06 D3 ----------------------------------------------------------------------


def test_print_attributes_tag_09_are_decoded_and_exposed() -> None:
    items = [
        Tlv(0x07, b"ohne Attribut"),
        Tlv(0x09, b"\x20"),
        Tlv(0x07, b"Kopf"),
        Tlv(0x07, b"Kopf 2"),
        Tlv(0x09, b"\x00"),
        Tlv(0x07, b"normal"),
    ]
    block = decode_message(decode_apdu(_block([], items=items)))
    assert isinstance(block, PrintTextBlock)
    assert block.text_lines() == [
        PrintTextLine("ohne Attribut", None),
        PrintTextLine("Kopf", 0x20),
        PrintTextLine("Kopf 2", 0x20),
        PrintTextLine("normal", 0x00),
    ]
    assert block.lines() == ["ohne Attribut", "Kopf", "Kopf 2", "normal"]


def test_print_attributes_are_encoded_only_when_they_change() -> None:
    block = PrintTextBlock.from_lines(
        [PrintTextLine("a", 0x20), PrintTextLine("b", 0x20), "c", PrintTextLine("d", 0)]
    )
    container = next(t for t in block.tlv if t.tag == 0x25)
    assert [t.tag for t in container.children()] == [0x09, 0x07, 0x07, 0x07, 0x09, 0x07]
    assert block.text_lines() == [
        PrintTextLine("a", 0x20),
        PrintTextLine("b", 0x20),
        PrintTextLine("c", 0x20),
        PrintTextLine("d", 0),
    ]


def test_print_line_exposes_its_attribute() -> None:
    line = decode_message(Apdu(0x06, 0xD1, b"\x80Ende"))
    assert isinstance(line, PrintLine)
    assert line.text_line() == PrintTextLine("Ende", 0x80)


# --- 4. BMP 19 by context ------------------------------------------------------------------------


def test_bmp_19_is_the_payment_type_except_in_a_registration_completion() -> None:
    assert Bmp(0x19, b"\x60").name == "payment_type"
    assert bmp_name(0x19, (0x04, 0x0F)) == "payment_type"
    assert bmp_name(0x19, (0x06, 0x0F)) == "status_byte"
    assert Bmp(0x19, b"\x10").name_in((0x06, 0x0F)) == "status_byte"
    assert bmp_name(0x04, (0x06, 0x0F)) == "amount"


# --- 5. typed Status Information -----------------------------------------------------------------


def _status_info_from_spec() -> StatusInformation:
    """A payment's 04 0F built from the spec's BMP list (values like the Feig capture's)."""
    fields = [
        encode_bmp(0x27, b"\x00"),
        encode_bmp(0x04, bytes.fromhex("000000001250")),
        encode_bmp(0x49, bytes.fromhex("0978")),
        encode_bmp(0x0C, bytes.fromhex("225558")),
        encode_bmp(0x0D, bytes.fromhex("0405")),
        encode_bmp(0x22, bytes.fromhex("4711008005757038004F")),  # a whole PAN, F-padded
        encode_bmp(0x87, bytes.fromhex("0231")),
        encode_bmp(0x3B, b"750071\x00\x00"),
        encode_bmp(0x0B, bytes.fromhex("000975")),
        encode_bmp(0x19, b"\x60"),
        encode_bmp(0x29, bytes.fromhex("52523535")),
        encode_bmp(0x8A, b"\x06"),
        encode_bmp(0x8B, b"MasterCard\x00"),
    ]
    return StatusInformation(b"".join(fields))


def test_status_information_typed_fields() -> None:
    details = _status_info_from_spec().details()
    assert details.result_code == 0
    assert details.amount_cents == 1250
    assert details.currency == 978
    assert details.time == datetime.time(22, 55, 58)
    assert details.date == "--04-05"
    assert details.receipt_number == 231
    assert details.trace_number == 975
    assert details.terminal_id == "52523535"
    assert details.payment_type == 0x60
    assert details.card_type == 0x06
    assert details.card_name == "MasterCard"
    assert details.aid == "750071"
    assert details.masked_pan == "****8004"


def test_no_full_pan_in_records_or_reprs() -> None:
    info = _status_info_from_spec()
    details = info.details()
    everything = repr(info) + repr(details) + str(details.masked_pan)
    assert "4711008005757038004" not in everything
    assert "5757038" not in everything
    assert "52523535" not in repr(details)  # the TID stays out of reprs too


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("559883EEEEEE8074", "****8074"),  # masked by the terminal (E digits)
        ("4711008005757038004F", "****8004"),  # sent whole: masked here
        ("12", "****"),  # too short to show any of it
        ("", None),
        ("4A11", "****"),  # not BCD: nothing of it is shown
    ],
)
def test_masked_pan(raw: str, expected: str | None) -> None:
    assert masked_pan(bytes.fromhex(raw)) == expected


def test_status_information_odd_fields_become_none() -> None:
    info = StatusInformation(
        encode_bmp(0x27, b"\x6c")
        + encode_bmp(0x0C, bytes.fromhex("256199"))  # hour 25
        + encode_bmp(0x0D, bytes.fromhex("1332"))  # month 13
        + encode_bmp(0x0B, bytes.fromhex("0A0B0C"))  # not BCD
        + encode_bmp(0x8B, b"\x1b[31mVISA\x00")  # an escape sequence in the card name
    )
    details = info.details()
    assert details.result_code == 0x6C
    assert (details.time, details.date, details.trace_number) == (None, None, None)
    assert details.card_name == "VISA"


@needs_captures
@pytest.mark.parametrize(
    ("name", "amount", "receipt", "pan"),
    [
        ("1680728165.675509000_pt_ecr.blob", 2500, 231, "****8074"),
        ("1682066249.409078000_pt_ecr.blob", 2500, 249, "****8004"),
    ],
)
def test_status_information_fields_of_real_captures(
    name: str, amount: int, receipt: int, pan: str
) -> None:
    message = decode_message(decode_apdu((CAPTURES / name).read_bytes()))
    assert isinstance(message, StatusInformation)
    details = message.details()
    assert (details.amount_cents, details.receipt_number, details.masked_pan) == (
        amount,
        receipt,
        pan,
    )
    assert details.terminal_id == "52523535"
    assert details.currency == 978
    assert details.card_name in ("MasterCard", "girocard")
    assert details.payment_type == 0x60
    assert details.time is not None and details.date is not None
    assert bmp_map(message.bmps())[0x19].name_in(message.CMD) == "payment_type"


@needs_captures
def test_registration_completion_capture_names_bmp_19_status_byte() -> None:
    raw = (CAPTURES / "1680761818.641601000_pt_ecr.blob").read_bytes()
    message = decode_message(decode_apdu(raw))
    assert isinstance(message, Completion)
    assert bmp_map(message.bmps())[0x19].name_in(message.CMD) == "status_byte"


# --- 8. 04 01 date/time --------------------------------------------------------------------------


def test_set_date_time_in_ecr_from_spec_bytes() -> None:
    wire = bytes.fromhex("04 01 08 AA 26 03 14 0C 09 30 05")
    message = decode_message(decode_apdu(wire))
    assert message == SetDateTimeInEcr(datetime.datetime(2026, 3, 14, 9, 30, 5))
    assert message.encode() == wire
    bad = decode_message(decode_apdu(bytes.fromhex("04 01 08 AA 26 13 14 0C 09 30 05")))
    assert bad == SetDateTimeInEcr(None)  # month 13: the clock is reported as unknown
