"""Structured payloads of ZVT answers: the Status-Enquiry completion, totals, Feig system info.

These are the data blocks inside messages whose layout is not BMPs alone, decoded to typed
records (sans-IO, pure functions over bytes). Wire layouts::

    06 0F (Status-Enquiry)  [<SW version LLLVAR>] <terminal status 1 byte> [06 <TLV>]
                            TLV: 1F44 TID, E4 {1F40 name, 1F41 SW, 1F42 serial, 1F43 state},
                                 34 {1F0E date, 1F0F time}
    BMP 60 (single totals)  <first receipt 2 BCD> <last receipt 2 BCD>
                            then per card scheme: <count 1 byte> <amount 6 BCD>
    0F A1 0001 answer       <serial 8> <SW version 17> <TID 8> <temperature, rest> (ASCII)

Text fields (SW version, device name) are decoded in the terminal's character set
(:mod:`.charset`), a parameter defaulting to the spec's CP437.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from .bcd import decode_bcd, decode_bcd_int, encode_bcd
from .bmp import decode_bmps, decode_lllvar_length, encode_lllvar_length, encode_tlv_bmp
from .charset import DEFAULT_CHARSET, decode_text, encode_text
from .errors import ZvtDecodeError
from .tlv import Tlv, find

__all__ = [
    "FeigSystemInfo",
    "StatusReport",
    "Totals",
    "decode_status_completion",
    "decode_totals",
    "encode_status_completion",
    "encode_totals",
]


@dataclass(frozen=True)
class StatusReport:
    """What a Status-Enquiry completion says about the PT (spec §2.56).

    Attributes:
        sw_version: the positional software-version string, when sent.
        terminal_status: the terminal status byte (00 ready, 51 initialisation required…).
        terminal_id: TLV 1F44.
        device_name / device_sw_version / serial / device_state: TLV E4 {1F40, 1F41, 1F42, 1F43}.
        date / time: TLV 34 {1F0E, 1F0F} as digit strings.
    """

    terminal_status: int
    sw_version: str | None = None
    terminal_id: str | None = None
    device_name: str | None = None
    device_sw_version: str | None = None
    serial: str | None = None
    device_state: int | None = None
    date: str | None = None
    time: str | None = None


def _text(value: bytes, charset: str = DEFAULT_CHARSET) -> str:
    """A text field in the terminal's character set, its NUL/space padding dropped."""
    return decode_text(value, charset).rstrip("\x00 ")


def _serial_text(value: bytes) -> str:
    # Spec says BCD; real Feig units put hex digits in 1F42 (17 FD 1E 3C), so render as hex.
    return value.hex().upper()


def _status_from_tlv(
    status: int, sw: str | None, tlv: tuple[Tlv, ...], charset: str
) -> StatusReport:
    def get(*path: int) -> bytes | None:
        found = find(tlv, *path)
        return found.value if found else None

    tid, name, dev_sw = get(0x1F44), get(0xE4, 0x1F40), get(0xE4, 0x1F41)
    serial, state = get(0xE4, 0x1F42), get(0xE4, 0x1F43)
    date, time = get(0x34, 0x1F0E), get(0x34, 0x1F0F)
    return StatusReport(
        terminal_status=status,
        sw_version=sw,
        terminal_id=decode_bcd(tid) if tid else None,
        device_name=_text(name, charset) if name is not None else None,
        device_sw_version=_text(dev_sw, charset) if dev_sw is not None else None,
        serial=_serial_text(serial) if serial else None,
        device_state=state[0] if state else None,
        date=date.hex() if date else None,
        time=time.hex() if time else None,
    )


def _try_status(data: bytes, with_sw: bool, charset: str) -> StatusReport:
    offset = 0
    sw: str | None = None
    if with_sw:
        length, offset = decode_lllvar_length(data, 0)
        if offset + length > len(data):
            raise ZvtDecodeError("SW version truncated")
        sw = _text(data[offset : offset + length], charset)
        offset += length
    if offset >= len(data):
        raise ZvtDecodeError("terminal status byte missing")
    status = data[offset]
    offset += 1
    tlv: tuple[Tlv, ...] = ()
    if offset < len(data):
        bmps = decode_bmps(data, offset)
        if [b.bmp_id for b in bmps] != [0x06]:
            raise ZvtDecodeError("unexpected BMPs after the terminal status byte")
        tlv = bmps[0].tlv()
    return _status_from_tlv(status, sw, tlv, charset)


def decode_status_completion(
    data: bytes, *, sw_version_expected: bool = True, charset: str = DEFAULT_CHARSET
) -> StatusReport:
    """Decode ``06 0F [<SW-version LLLVAR>] <terminal status> [06 <TLV>]``.

    ``charset`` is the terminal's character set for the SW version and device name.

    The SW version is optional and unmarked, so the layout is ambiguous (a status byte F0/F6
    looks like an LLLVAR digit). Try the expected layout first and accept it only when the whole
    block decodes; otherwise try the other.

    Raises:
        ZvtDecodeError: when neither layout fits.
    """
    errors = []
    for with_sw in (sw_version_expected, not sw_version_expected):
        try:
            return _try_status(data, with_sw, charset)
        except (ZvtDecodeError, UnicodeDecodeError) as exc:
            errors.append(str(exc))
    raise ZvtDecodeError(f"status completion does not decode: {'; '.join(errors)}")


def encode_status_completion(
    report: StatusReport,
    *,
    send_sw_version: bool,
    send_tlv: bool,
    charset: str = DEFAULT_CHARSET,
) -> bytes:
    """The PT side of ``decode_status_completion``."""
    data = b""
    if send_sw_version and report.sw_version is not None:
        sw = encode_text(report.sw_version, charset)
        data += encode_lllvar_length(len(sw)) + sw
    data += bytes([report.terminal_status])
    if send_tlv:
        objects: list[Tlv] = []
        if report.terminal_id:
            objects.append(Tlv(0x1F44, encode_bcd(report.terminal_id, 4)))
        device: list[Tlv] = []
        if report.device_name is not None:
            device.append(Tlv(0x1F40, encode_text(report.device_name, charset)))
        if report.device_sw_version is not None:
            device.append(Tlv(0x1F41, encode_text(report.device_sw_version, charset)))
        if report.serial is not None:
            device.append(Tlv(0x1F42, bytes.fromhex(report.serial)))
        if report.device_state is not None:
            device.append(Tlv(0x1F43, bytes([report.device_state])))
        if device:
            objects.append(Tlv.build(0xE4, device))
        if report.date and report.time:
            objects.append(
                Tlv.build(
                    0x34,
                    [
                        Tlv(0x1F0E, bytes.fromhex(report.date)),
                        Tlv(0x1F0F, bytes.fromhex(report.time)),
                    ],
                )
            )
        data += encode_tlv_bmp(objects)
    return data


@dataclass(frozen=True)
class Totals:
    """BMP 60 (single totals): receipt range and per-card-scheme count and amount."""

    receipt_first: int
    receipt_last: int
    per_scheme: tuple[tuple[int, int], ...]  # (count, cents) for each scheme slot

    @property
    def count(self) -> int:
        """Transactions in the store."""
        return sum(count for count, _ in self.per_scheme)

    @property
    def total_cents(self) -> int:
        """Sum of amounts in the store."""
        return sum(cents for _, cents in self.per_scheme)


def decode_totals(data: bytes) -> Totals:
    """Decode BMP 60: 2+2 BCD receipt numbers, then groups of count (1 byte) + amount (6 BCD)."""
    if len(data) < 4 or (len(data) - 4) % 7:
        raise ZvtDecodeError(f"totals of {len(data)} bytes do not fit 4 + n*7")
    groups = tuple((data[i], decode_bcd_int(data[i + 1 : i + 7])) for i in range(4, len(data), 7))
    return Totals(decode_bcd_int(data[0:2]), decode_bcd_int(data[2:4]), groups)


def encode_totals(totals: Totals) -> bytes:
    """The PT side of ``decode_totals``."""
    data = encode_bcd(totals.receipt_first, 2) + encode_bcd(totals.receipt_last, 2)
    for count, cents in totals.per_scheme:
        data += bytes([min(count, 255)]) + encode_bcd(cents, 6)
    return data


@dataclass(frozen=True)
class FeigSystemInfo:
    """Answer to Feig's 0F A1 0001: fixed-width ASCII fields (layout read off real captures)."""

    serial: str
    sw_version: str
    terminal_id: str
    temperature_c: float | None

    _WIDTHS: ClassVar[tuple[int, int, int]] = (8, 17, 8)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode ``serial(8) sw-version(17) TID(8) temperature(rest)``."""
        a, b, c = cls._WIDTHS
        if len(data) < a + b + c:
            raise ZvtDecodeError(f"Feig system info too short ({len(data)} bytes)")
        text = data.decode("ascii", errors="replace")
        temp_text = text[a + b + c :].strip()
        try:
            temperature = float(temp_text) if temp_text else None
        except ValueError:
            temperature = None
        return cls(
            text[:a].strip(), text[a : a + b].strip(), text[a + b : a + b + c].strip(), temperature
        )

    def encode(self) -> bytes:
        """The PT side of ``decode``."""
        a, b, c = self._WIDTHS
        temp = "" if self.temperature_c is None else f"{self.temperature_c:.1f}"
        text = (
            self.serial.ljust(a)[:a] + self.sw_version.ljust(b)[:b] + self.terminal_id.ljust(c)[:c]
        )
        return (text + temp).encode("ascii")
