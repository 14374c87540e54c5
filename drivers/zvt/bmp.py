"""ZVT bitmaps (BMPs): the tagged fields after a message's positional prefix (PA00P016 §5.2.7).

Wire layout of one BMP::

    ID  fixed-size data                  e.g. 27 <rc>, 29 <TID 4 BCD>, 04 <amount 6 BCD>
    ID  Fx Fy data                       LLVAR: length = x*10 + y (the low nibbles)
    ID  Fx Fy Fz data                    LLLVAR
    06  <BER length> <TLV objects>       BMP 06 is a TLV container (§9.2), not LLLVAR

A BMP id this table does not know cannot be skipped (its size is unknown), so decoding stops
with ZvtDecodeError; the spec answers unknown bitmaps with ``84 83 00``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from .errors import ZvtDecodeError
from .tlv import Tlv, decode_length, decode_tlv, encode_length, encode_tlv


class BmpKind(Enum):
    """How a BMP's data length is known."""

    FIXED = "fixed"
    LLVAR = "llvar"
    LLLVAR = "lllvar"
    TLV = "tlv"


@dataclass(frozen=True)
class BmpSpec:
    """Name and size rule of one BMP id."""

    name: str
    kind: BmpKind
    size: int = 0


def _f(name: str, size: int) -> BmpSpec:
    return BmpSpec(name, BmpKind.FIXED, size)


def _ll(name: str) -> BmpSpec:
    return BmpSpec(name, BmpKind.LLVAR)


def _lll(name: str) -> BmpSpec:
    return BmpSpec(name, BmpKind.LLLVAR)


BMP_SPECS: dict[int, BmpSpec] = {
    0x01: _f("timeout", 1),
    0x02: _f("max_status_infos", 1),
    0x03: _f("service_byte", 1),
    0x04: _f("amount", 6),
    0x05: _f("pump_number", 1),
    0x06: BmpSpec("tlv", BmpKind.TLV),
    0x0B: _f("trace_number", 3),
    0x0C: _f("time", 3),
    0x0D: _f("date", 2),
    0x0E: _f("expiry_date", 2),
    0x17: _f("card_sequence_number", 2),
    0x19: _f("payment_type", 1),  # the status byte in a Registration's 06 0F: see bmp_name
    0x22: _ll("pan"),
    0x23: _ll("track2"),
    0x24: _lll("track3"),
    0x27: _f("result_code", 1),
    0x29: _f("terminal_id", 4),
    0x2A: _f("vu_number", 15),
    0x2D: _ll("track1"),
    0x2E: _lll("sync_chip_data"),
    0x37: _f("original_trace_number", 3),
    0x3A: _f("cvv", 2),
    0x3B: _f("aid", 8),
    0x3C: _lll("additional_text"),
    0x3D: _f("password", 3),
    0x49: _f("currency_code", 2),
    0x60: _lll("totals"),
    0x87: _f("receipt_number", 2),
    0x88: _f("turnover_number", 3),
    0x8A: _f("card_type", 1),
    0x8B: _ll("card_name"),
    0x8C: _f("card_type_id", 1),
    0x92: _lll("additional_data_ec_cash"),
    0x9A: _lll("geldkarte_payment_record"),
    0xA0: _f("result_code_as", 1),
    0xA7: _ll("chip_data"),
    0xAA: _f("date_yymmdd", 3),
    0xAF: _lll("ec_cash_net_data"),
    0xBA: _f("aid_parameter", 5),
    0xD0: _f("algorithm_key", 1),
    0xD1: _ll("card_output_offset"),
    0xD2: _f("card_output_direction", 1),
    0xD3: _f("dukpt_key_identifier", 1),
    0xE0: _f("min_input_length", 1),
    0xE1: _ll("text_line_1"),
    0xE2: _ll("text_line_2"),
    0xE3: _ll("text_line_3"),
    0xE4: _ll("text_line_4"),
    0xE5: _ll("text_line_5"),
    0xE6: _ll("text_line_6"),
    0xE7: _ll("text_line_7"),
    0xE8: _ll("text_line_8"),
    0xE9: _f("max_input_length", 1),
    0xEA: _f("echo_input", 1),
    0xEB: _f("mac", 8),
    0xF0: _f("display_duration", 1),
    0xF1: _ll("text_line_1b"),
    0xF2: _ll("text_line_2b"),
    0xF3: _ll("text_line_3b"),
    0xF4: _ll("text_line_4b"),
    0xF5: _ll("text_line_5b"),
    0xF6: _ll("text_line_6b"),
    0xF7: _ll("text_line_7b"),
    0xF8: _ll("text_line_8b"),
    0xFA: _f("card_reader_activation", 1),
    0xFC: _f("dialog_control", 1),
}


CONTEXT_NAMES: dict[tuple[tuple[int, int], int], str] = {
    ((0x06, 0x0F), 0x19): "status_byte",
}
"""Names a BMP has in one message only, by (CLASS INSTR, BMP id).

BMP 19 is the payment type in an Authorisation (06 01) and a Status-Information (04 0F), but in
the Completion of a Registration (06 0F) the same id carries the PT's status byte (bit flags:
01 initialisation necessary, 02 diagnosis necessary…; PA00P015 §2.1).
"""


def bmp_name(bmp_id: int, command: tuple[int, int] | None = None) -> str:
    """The name of a BMP id, as the message ``command`` (CLASS, INSTR) uses it when given."""
    if command is not None and (command, bmp_id) in CONTEXT_NAMES:
        return CONTEXT_NAMES[(command, bmp_id)]
    spec = BMP_SPECS.get(bmp_id)
    return spec.name if spec else f"bmp_{bmp_id:02x}"


@dataclass(frozen=True)
class Bmp:
    """One decoded BMP: its id and raw data (for BMP 06, the TLV objects' bytes)."""

    bmp_id: int
    data: bytes

    @property
    def name(self) -> str:
        """The BMP's name from the table, without a message's context (see :func:`bmp_name`)."""
        return bmp_name(self.bmp_id)

    def name_in(self, command: tuple[int, int]) -> str:
        """The BMP's name as the message ``command`` (CLASS, INSTR) uses it."""
        return bmp_name(self.bmp_id, command)

    def tlv(self) -> tuple[Tlv, ...]:
        """For BMP 06, the data objects it carries."""
        if self.bmp_id != 0x06:
            raise ZvtDecodeError(f"BMP {self.bmp_id:02X} is not a TLV container")
        return decode_tlv(self.data)


def _var_length(data: bytes, offset: int, digits: int, bmp_id: int) -> tuple[int, int]:
    if offset + digits > len(data):
        raise ZvtDecodeError(f"BMP {bmp_id:02X} length truncated")
    value = 0
    for byte in data[offset : offset + digits]:
        if byte & 0xF0 != 0xF0 or byte & 0x0F > 9:
            raise ZvtDecodeError(f"BMP {bmp_id:02X} has a bad length byte {byte:02x}")
        value = value * 10 + (byte & 0x0F)
    return value, offset + digits


def _var_prefix(length: int, digits: int) -> bytes:
    if length >= 10**digits:
        raise ValueError(f"{length} bytes do not fit a {digits}-digit length")
    return bytes(0xF0 | int(d) for d in str(length).rjust(digits, "0"))


def decode_bmps(data: bytes, offset: int = 0) -> tuple[Bmp, ...]:
    """Decode BMPs from ``offset`` to the end of ``data``.

    Raises:
        ZvtDecodeError: unknown BMP id, truncated field, bad length nibble.
    """
    items: list[Bmp] = []
    while offset < len(data):
        bmp_id = data[offset]
        spec = BMP_SPECS.get(bmp_id)
        if spec is None:
            raise ZvtDecodeError(f"unknown BMP {bmp_id:02X} at offset {offset}")
        offset += 1
        if spec.kind is BmpKind.FIXED:
            length = spec.size
        elif spec.kind is BmpKind.LLVAR:
            length, offset = _var_length(data, offset, 2, bmp_id)
        elif spec.kind is BmpKind.LLLVAR:
            length, offset = _var_length(data, offset, 3, bmp_id)
        else:
            length, offset = decode_length(data, offset)
        if offset + length > len(data):
            raise ZvtDecodeError(
                f"BMP {bmp_id:02X} ({spec.name}) needs {length} bytes, {len(data) - offset} left"
            )
        items.append(Bmp(bmp_id, bytes(data[offset : offset + length])))
        offset += length
    return tuple(items)


def encode_bmp(bmp_id: int, data: bytes) -> bytes:
    """Encode one BMP by the table's size rule (fixed sizes are checked)."""
    spec = BMP_SPECS.get(bmp_id)
    if spec is None:
        raise ValueError(f"unknown BMP {bmp_id:02X}")
    if spec.kind is BmpKind.FIXED:
        if len(data) != spec.size:
            raise ValueError(f"BMP {bmp_id:02X} takes {spec.size} bytes, got {len(data)}")
        return bytes([bmp_id]) + data
    if spec.kind is BmpKind.LLVAR:
        return bytes([bmp_id]) + _var_prefix(len(data), 2) + data
    if spec.kind is BmpKind.LLLVAR:
        return bytes([bmp_id]) + _var_prefix(len(data), 3) + data
    return bytes([bmp_id]) + encode_length(len(data)) + data


def encode_tlv_bmp(items: Iterable[Tlv]) -> bytes:
    """BMP 06 holding the given objects (``06 00`` when empty: the ECR's TLV permission)."""
    return encode_bmp(0x06, encode_tlv(items))


def bmp_map(bmps: Sequence[Bmp]) -> dict[int, Bmp]:
    """Index BMPs by id (the first occurrence wins, as a receiver would read them)."""
    out: dict[int, Bmp] = {}
    for bmp in bmps:
        out.setdefault(bmp.bmp_id, bmp)
    return out


def encode_lllvar_length(length: int) -> bytes:
    """LLLVAR length prefix, also used positionally (the Status-Enquiry SW version)."""
    return _var_prefix(length, 3)


def decode_lllvar_length(data: bytes, offset: int) -> tuple[int, int]:
    """Read an LLLVAR length prefix at ``offset``."""
    return _var_length(data, offset, 3, 0)
