"""CRC-16/KERMIT as the ZVT serial link layer computes it.

The spec text calls it "CRC-XModem" (PA00P016 §3.1) but every implementation and every captured
frame uses the reflected CCITT polynomial (table 0x8408), init 0x0000, no final XOR, computed over
the unstuffed APDU plus ETX and sent low byte first. ``crc16_kermit(b"123456789") == 0x2189``.
"""

from __future__ import annotations


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_kermit(data: bytes, crc: int = 0) -> int:
    """Return the CRC-16/KERMIT of ``data``, continuing from ``crc`` for incremental use."""
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def crc_bytes(data: bytes) -> bytes:
    """The two CRC bytes as they go on the wire (low byte first)."""
    return crc16_kermit(data).to_bytes(2, "little")
