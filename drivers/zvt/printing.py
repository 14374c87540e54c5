"""The print messages a PT sends the ECR: ``06 D1`` Print Line and ``06 D3`` Print Text-Block.

Wire layouts (PA00P015 §3.4–3.5)::

    06 D1 <attribute 1 byte> <text, the terminal's character set>
    06 D3 06 <TLV: 1F07 <receipt type>,
                   25 { 09 <attribute>, 07 <line>, 07 <line>, 09 <attribute>, 07 <line> … }>

A text block's tag 09 carries the print attributes for the tag-07 lines after it, until the
next tag 09; a line before any tag 09 has none. The attribute byte is the one a ``06 D1`` carries
(how the line is printed: width, height, last line); it is kept as the terminal sent it, for
the ECR's printer to interpret, and not dropped as it once was.

Text is single-byte, in the terminal's character set (:mod:`.charset`): CP437 by default,
ISO-8859-1 on card complete units. The codec takes the charset as a parameter and stays sans-IO;
which charset a terminal uses is the driver's decision (catalogue, then detection). Decoded text
is not cleaned here: the driver cleans every line before anything shows or keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from .apdu import Apdu
from .bmp import encode_tlv_bmp
from .charset import DEFAULT_CHARSET, decode_text, encode_text
from .errors import ZvtDecodeError
from .message_base import Message, _bmps, _tlv_from
from .tlv import Tlv, find

__all__ = ["PrintLine", "PrintTextBlock", "PrintTextLine"]

TAG_RECEIPT_TYPE = 0x1F07
TAG_PRINT_TEXTS = 0x25
TAG_TEXT_LINE = 0x07
TAG_ATTRIBUTE = 0x09


@dataclass(frozen=True)
class PrintTextLine:
    """One printed line and its print attribute (None when the terminal sent none)."""

    text: str
    attribute: int | None = None


@dataclass(frozen=True)
class PrintLine(Message):
    """06 D1: one line for the ECR's printer (attribute byte, then text in ``charset``)."""

    CMD = (0x06, 0xD1)
    NAME = "Print line"
    attribute: int
    text: str
    charset: str = DEFAULT_CHARSET

    def to_apdu(self) -> Apdu:
        """The APDU, the text encoded in the line's character set."""
        return Apdu(*self.CMD, bytes([self.attribute]) + encode_text(self.text, self.charset))

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, charset: str = DEFAULT_CHARSET) -> Self:
        """Decode with the terminal's character set (every byte maps: never a decode error)."""
        if not apdu.data:
            raise ZvtDecodeError("Print line without attribute")
        return cls(apdu.data[0], decode_text(apdu.data[1:], charset).rstrip(), charset)

    @property
    def raw(self) -> bytes:
        """The text's bytes as sent (trailing spaces dropped): charsets map bytes one to one."""
        return encode_text(self.text, self.charset)

    def text_line(self, charset: str | None = None) -> PrintTextLine:
        """The line and its attribute, decoded again in ``charset`` when one is given."""
        text = self.text if charset is None else decode_text(self.raw, charset)
        return PrintTextLine(text, self.attribute)


@dataclass(frozen=True)
class PrintTextBlock(Message):
    """06 D3: a block of print lines as TLV (tag 25 holds tag-09 attributes and tag-07 lines)."""

    CMD = (0x06, 0xD3)
    NAME = "Print text block"
    tlv: tuple[Tlv, ...]
    charset: str = DEFAULT_CHARSET

    def to_apdu(self) -> Apdu:
        """The APDU: the TLV as held (lines stay the bytes they were built or received as)."""
        return Apdu(*self.CMD, encode_tlv_bmp(self.tlv))

    @classmethod
    def from_apdu(cls, apdu: Apdu, *, charset: str = DEFAULT_CHARSET) -> Self:
        """Decode; the lines stay bytes in the TLV until read, in ``charset`` by default."""
        tlv = _tlv_from(_bmps(apdu.data))
        if tlv is None:
            raise ZvtDecodeError("Print text block without TLV container")
        return cls(tlv, charset)

    @classmethod
    def from_lines(
        cls,
        lines: Sequence[str | PrintTextLine],
        receipt_type: int = 3,
        charset: str = DEFAULT_CHARSET,
    ) -> Self:
        """Build a block as a PT would send it (receipt type in 1F07).

        A :class:`PrintTextLine` whose attribute differs from the one in force is preceded by a
        tag 09 with its attribute; plain strings print with whatever attribute is in force.
        """
        items: list[Tlv] = []
        current: int | None = None
        for line in lines:
            if isinstance(line, PrintTextLine):
                if line.attribute is not None and line.attribute != current:
                    items.append(Tlv(TAG_ATTRIBUTE, bytes([line.attribute])))
                    current = line.attribute
                line = line.text
            items.append(Tlv(TAG_TEXT_LINE, encode_text(line, charset)))
        block = (Tlv(TAG_RECEIPT_TYPE, bytes([receipt_type])), Tlv.build(TAG_PRINT_TEXTS, items))
        return cls(block, charset)

    @property
    def receipt_type(self) -> int | None:
        """1F07: which receipt this is (merchant, customer, administration…)."""
        found = find(self.tlv, TAG_RECEIPT_TYPE)
        return found.value[0] if found and found.value else None

    def _items(self) -> tuple[Tlv, ...]:
        container = find(self.tlv, TAG_PRINT_TEXTS)
        return container.children() if container is not None else ()

    def raw_lines(self) -> list[bytes]:
        """The tag-07 lines' bytes, undecoded (for character-set detection)."""
        return [item.value for item in self._items() if item.tag == TAG_TEXT_LINE]

    def text_lines(self, charset: str | None = None) -> list[PrintTextLine]:
        """The printed lines with their attributes (tag 09 applies to the lines after it).

        Args:
            charset: decode in this character set instead of the block's own.
        """
        use = charset or self.charset
        out: list[PrintTextLine] = []
        attribute: int | None = None
        for item in self._items():
            if item.tag == TAG_ATTRIBUTE:
                attribute = item.value[0] if item.value else None
            elif item.tag == TAG_TEXT_LINE:
                out.append(PrintTextLine(decode_text(item.value, use).rstrip(), attribute))
        return out

    def lines(self, charset: str | None = None) -> list[str]:
        """The printed lines' text, trailing spaces removed."""
        return [line.text for line in self.text_lines(charset)]
