"""The base of the typed ZVT messages and the helpers their codecs share (sans-IO).

An APDU is ``CLASS INSTR LEN DATA`` (PA00P016 §5.2.4); every typed message is a frozen dataclass
that builds its APDU (``to_apdu``) and decodes from one (``from_apdu``). The data block starts
with positional fields (a 3-byte BCD password, a config byte…) and goes on with BMPs, of which
BMP 06 is a TLV container; the helpers here read and write those common pieces.
"""

from __future__ import annotations

from typing import ClassVar, Self

from .apdu import Apdu
from .bmp import Bmp, bmp_map, decode_bmps, encode_tlv_bmp
from .charset import DEFAULT_CHARSET
from .errors import ZvtDecodeError
from .tlv import Tlv

TEXT_ENCODING = DEFAULT_CHARSET
"""The spec's character set, kept under its old name; text codecs take a ``charset`` now."""

EUR = 978


def _password(data: bytes) -> str:
    if len(data) < 3:
        raise ZvtDecodeError("password missing")
    return data[:3].hex()


def _bmps(data: bytes, offset: int = 0) -> tuple[Bmp, ...]:
    return decode_bmps(data, offset)


def _tlv_from(bmps: tuple[Bmp, ...]) -> tuple[Tlv, ...] | None:
    container = bmp_map(bmps).get(0x06)
    return container.tlv() if container else None


def _tlv_suffix(tlv: tuple[Tlv, ...] | None) -> bytes:
    return b"" if tlv is None else encode_tlv_bmp(tlv)


class Message:
    """Base of all typed messages."""

    CMD: ClassVar[tuple[int, int]]
    NAME: ClassVar[str]

    def to_apdu(self) -> Apdu:
        """The APDU carrying this message."""
        raise NotImplementedError

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        """Decode from an APDU whose command matches ``CMD``."""
        raise NotImplementedError

    def encode(self) -> bytes:
        """Wire bytes of the APDU (no serial framing)."""
        return self.to_apdu().encode()


class _Empty(Message):
    """A command without data; the spec sends ``LEN 00``."""

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        return cls()
