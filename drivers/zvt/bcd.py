"""Packed BCD helpers: ZVT carries amounts, passwords, TIDs, trace and receipt numbers as BCD."""

from __future__ import annotations

from .errors import ZvtDecodeError


def encode_bcd(digits: str | int, length: int) -> bytes:
    """Pack decimal digits into ``length`` bytes, left-padded with zeros.

    Raises:
        ValueError: when the value has non-digits or does not fit.
    """
    text = str(digits)
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"BCD value must be decimal digits, got {text!r}")
    if len(text) > 2 * length:
        raise ValueError(f"{text!r} does not fit in {length} BCD bytes")
    return bytes.fromhex(text.rjust(2 * length, "0"))


def decode_bcd(data: bytes) -> str:
    """Unpack BCD into its digit string, refusing nibbles above 9."""
    text = data.hex()
    if not text.isdigit():
        raise ZvtDecodeError(f"not BCD: {data.hex(' ')}")
    return text


def decode_bcd_int(data: bytes) -> int:
    """Unpack BCD into an integer (amounts in cents, counters)."""
    return int(decode_bcd(data) or "0")


def encode_password(password: str) -> bytes:
    """Encode the 6-digit ZVT password as 3 BCD bytes (spec §1.2: ``123456`` → ``12 34 56``)."""
    if len(password) != 6 or not (password.isascii() and password.isdigit()):
        raise ValueError("the ZVT password is exactly 6 digits")
    return bytes.fromhex(password)
