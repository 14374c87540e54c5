"""BER-TLV as ZVT carries it inside BMP 06 (PA00P015 §9).

Wire layout of one data object::

    tag     1..n bytes; low 5 bits 11111 in the first byte mean "more tag bytes follow",
            and each following byte with b8=1 continues the tag (e.g. 1F 41, FF 40)
    length  00..7F          one byte
            81 LL           one length byte
            82 HH LL        two length bytes, big-endian (unlike the APDU's little-endian length)
    value   length bytes; for a constructed tag (b6 of the first tag byte) a list of objects

Tags are kept as the integer of their bytes (``0x1F44``). Values are kept raw; ``children()``
parses a constructed value on demand, because vendors put primitive payloads under tags whose
constructed bit is set (Feig's ``FF40`` carries a plain password), so eager recursion would
reject real traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import ZvtDecodeError


@dataclass(frozen=True)
class Tlv:
    """One BER-TLV data object with its raw value."""

    tag: int
    value: bytes = b""

    @property
    def constructed(self) -> bool:
        """Whether the tag's class byte marks a constructed object."""
        return bool(tag_bytes(self.tag)[0] & 0x20)

    def children(self) -> tuple[Tlv, ...]:
        """Parse the value as a list of data objects (raises ZvtDecodeError if it is not one)."""
        return decode_tlv(self.value)

    @classmethod
    def build(cls, tag: int, children: Iterable[Tlv]) -> Tlv:
        """A constructed object from its children."""
        return cls(tag, encode_tlv(children))

    def encode(self) -> bytes:
        """The object's wire bytes."""
        return tag_bytes(self.tag) + encode_length(len(self.value)) + self.value


def tag_bytes(tag: int) -> bytes:
    """The wire bytes of a tag held as an integer."""
    if tag < 0:
        raise ValueError("negative tag")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    """BER definite length in the short, ``81`` or ``82`` form."""
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise ValueError(f"TLV value of {length} bytes is too long for ZVT")


def encode_tlv(items: Iterable[Tlv]) -> bytes:
    """Concatenate the wire bytes of several objects."""
    return b"".join(item.encode() for item in items)


def decode_length(data: bytes, offset: int) -> tuple[int, int]:
    """Read a BER length at ``offset``; return (length, offset after it)."""
    if offset >= len(data):
        raise ZvtDecodeError("TLV length missing")
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if count not in (1, 2):
        raise ZvtDecodeError(f"unsupported TLV length form {first:02x}")
    if offset + 1 + count > len(data):
        raise ZvtDecodeError("TLV length truncated")
    return int.from_bytes(data[offset + 1 : offset + 1 + count], "big"), offset + 1 + count


def decode_tlv(data: bytes) -> tuple[Tlv, ...]:
    """Parse a sequence of data objects that must fill ``data`` exactly."""
    items: list[Tlv] = []
    offset = 0
    while offset < len(data):
        start = offset
        first = data[offset]
        offset += 1
        if first & 0x1F == 0x1F:
            while True:
                if offset >= len(data):
                    raise ZvtDecodeError("TLV tag truncated")
                more = data[offset] & 0x80
                offset += 1
                if not more:
                    break
                if offset - start >= 4:
                    raise ZvtDecodeError("TLV tag longer than 4 bytes")
        tag = int.from_bytes(data[start:offset], "big")
        length, offset = decode_length(data, offset)
        if offset + length > len(data):
            raise ZvtDecodeError(
                f"TLV tag {tag:X} claims {length} bytes, only {len(data) - offset} left"
            )
        items.append(Tlv(tag, bytes(data[offset : offset + length])))
        offset += length
    return tuple(items)


def find(items: Sequence[Tlv], *path: int) -> Tlv | None:
    """Follow a path of tags through constructed objects; None when any step is missing.

    Args:
        items: the top-level objects.
        path: tags, outermost first (``find(objs, 0xE4, 0x1F42)``).
    """
    current: Sequence[Tlv] = items
    found: Tlv | None = None
    for depth, tag in enumerate(path):
        found = next((item for item in current if item.tag == tag), None)
        if found is None:
            return None
        if depth < len(path) - 1:
            try:
                current = found.children()
            except ZvtDecodeError:
                return None
    return found
