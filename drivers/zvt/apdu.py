"""The ZVT APDU (PA00P016 §5.2).

Wire layout::

    CLASS INSTR LEN DATA...          LEN 00..FE: that many data bytes
    CLASS INSTR FF  LO HI DATA...    extended length, little-endian, up to 65535 data bytes

Responses use the same layout with ``80 00`` (positive) or ``84 xx`` (negative) as CLASS INSTR.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ZvtDecodeError

MAX_DATA = 0xFFFF


@dataclass(frozen=True)
class Apdu:
    """One APDU: a command (or response) code and its data block."""

    cls: int
    instr: int
    data: bytes = b""

    @property
    def command(self) -> tuple[int, int]:
        """``(CLASS, INSTR)``, the key messages are looked up by."""
        return (self.cls, self.instr)

    def encode(self) -> bytes:
        """The APDU's wire bytes, choosing the extended length form past 254 bytes."""
        size = len(self.data)
        if size > MAX_DATA:
            raise ValueError(f"APDU data of {size} bytes exceeds {MAX_DATA}")
        if size < 0xFF:
            header = bytes([self.cls, self.instr, size])
        else:
            header = bytes([self.cls, self.instr, 0xFF]) + size.to_bytes(2, "little")
        return header + self.data

    def __str__(self) -> str:
        return f"{self.cls:02X} {self.instr:02X} [{len(self.data)} bytes]"


def apdu_total_length(buffer: bytes | bytearray) -> int | None:
    """Total wire length of the APDU starting ``buffer``, or None until the header is complete."""
    if len(buffer) < 3:
        return None
    if buffer[2] != 0xFF:
        return 3 + buffer[2]
    if len(buffer) < 5:
        return None
    return 5 + int.from_bytes(buffer[3:5], "little")


def decode_apdu(raw: bytes) -> Apdu:
    """Decode exactly one APDU; its length field must match the bytes given."""
    total = apdu_total_length(raw)
    if total is None:
        raise ZvtDecodeError(f"APDU too short ({len(raw)} bytes)")
    if total != len(raw):
        raise ZvtDecodeError(f"APDU length field says {total} bytes, frame holds {len(raw)}")
    offset = 5 if raw[2] == 0xFF else 3
    return Apdu(raw[0], raw[1], bytes(raw[offset:]))
