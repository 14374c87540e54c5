"""Typed fields of a Status-Information (``04 0F``): what a command's result says.

A ``04 0F`` is a list of BMPs (PA00P015 §3.6; reference zvt.md §2 "Key BMPs")::

    27 <result code>            04 <amount 6 BCD, cents>      49 <currency 2 BCD>
    0B <trace 3 BCD>            0C <time HHMMSS BCD>          0D <date MMDD BCD>
    87 <receipt no. 2 BCD>      29 <TID 4 BCD>                19 <payment type>
    8A <card type>              8C <card type id>             8B <card name LLVAR>
    3B <AID 8, ASCII>           22 <PAN LLVAR BCD, F-padded, E = masked digit>
    60 <totals LLLVAR>          06 <TLV>                      (and others, kept raw)

:func:`decode_status_details` turns them into :class:`StatusDetails`, a record the driver and
reports can use without knowing BMP ids. It never raises on a field's content: a field whose
bytes are not what the spec says (BCD with letters, a month 13) becomes None, because one odd
field must not hide the result code beside it.

Card data: the PAN is never kept whole. Terminals usually mask it themselves (Feig sends
``559883EEEEEE8074``); some send it in full (a girocard in the EVerest captures). Either way only
:func:`masked_pan` of it is stored, the project's identifier mask (``****`` and the last four
digits, :func:`posdiag.drivers.text.mask_identifier`), so no record, log line or report built
from this can carry a card number.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from ..text import clean_text, mask_identifier
from .bcd import decode_bcd, decode_bcd_int
from .bmp import Bmp, bmp_map
from .charset import DEFAULT_CHARSET, decode_text
from .errors import ZvtDecodeError
from .payloads import Totals, decode_totals
from .tlv import Tlv

__all__ = ["StatusDetails", "decode_status_details", "masked_pan"]

_TEXT_LIMIT = 64
"""Longest text field kept (a card name is a few words; more is a faulty terminal)."""


@dataclass(frozen=True)
class StatusDetails:
    """The typed fields of one ``04 0F``; None where the terminal did not send a field.

    ``terminal_id`` and the masked PAN identify a merchant and a card, so they are left out of
    ``repr()`` (logs and tracebacks); read them explicitly.

    Attributes:
        result_code: BMP 27 (00 success; see ``constants.RESULT_CODES``).
        amount_cents: BMP 04.
        currency: BMP 49, ISO 4217 numeric (978 = EUR).
        trace_number: BMP 0B.
        time: BMP 0C.
        date: BMP 0D as ISO 8601 month-day ``--MM-DD`` (ZVT sends no year).
        receipt_number: BMP 87.
        terminal_id: BMP 29, 8 digits.
        payment_type: BMP 19 (in ``04 0F`` the payment type, not a status byte).
        card_type: BMP 8A, the ZVT card-type id.
        card_type_id: BMP 8C.
        card_name: BMP 8B, cleaned text ("MasterCard", "girocard").
        aid: BMP 3B, the authorisation attribute (8 ASCII characters), cleaned.
        masked_pan: BMP 22, masked by :func:`masked_pan`.
        totals: BMP 60.
        tlv: BMP 06's data objects.
    """

    result_code: int | None = None
    amount_cents: int | None = None
    currency: int | None = None
    trace_number: int | None = None
    time: datetime.time | None = None
    date: str | None = None
    receipt_number: int | None = None
    terminal_id: str | None = field(default=None, repr=False)
    payment_type: int | None = None
    card_type: int | None = None
    card_type_id: int | None = None
    card_name: str | None = None
    aid: str | None = None
    masked_pan: str | None = field(default=None, repr=False)
    totals: Totals | None = None
    tlv: tuple[Tlv, ...] | None = None


def masked_pan(data: bytes) -> str | None:
    """BMP 22's digits masked: ``****`` and the last four digits, whatever the terminal sent.

    The PAN is BCD padded with ``F``; terminals mark digits they masked with ``E``. Those become
    ``*`` before the project's mask is applied, so a PAN the terminal already masked stays
    masked, and one it sent whole is masked here. Returns None for an empty field.
    """
    digits = data.hex().upper().rstrip("F").replace("E", "*")
    if not digits:
        return None
    if any(char not in "0123456789*" for char in digits):
        return mask_identifier("*" * len(digits))  # not a PAN as the spec writes it: show none
    return mask_identifier(digits)


def _int(bmp: Bmp | None) -> int | None:
    if bmp is None:
        return None
    try:
        return decode_bcd_int(bmp.data)
    except ZvtDecodeError:
        return None


def _byte(bmp: Bmp | None) -> int | None:
    return bmp.data[0] if bmp is not None and bmp.data else None


def _time(bmp: Bmp | None) -> datetime.time | None:
    if bmp is None:
        return None
    try:
        digits = decode_bcd(bmp.data)
        return datetime.time(int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except (ZvtDecodeError, ValueError):
        return None


def _date(bmp: Bmp | None) -> str | None:
    if bmp is None:
        return None
    try:
        digits = decode_bcd(bmp.data)
        month, day = int(digits[0:2]), int(digits[2:4])
        datetime.date(2000, month, day)  # a leap year: 29 February is a real date
    except (ZvtDecodeError, ValueError):
        return None
    return f"--{month:02d}-{day:02d}"


def _text(bmp: Bmp | None, charset: str) -> str | None:
    if bmp is None:
        return None
    text = clean_text(decode_text(bmp.data, charset).rstrip("\x00 "), _TEXT_LIMIT)
    return text or None


def _terminal_id(bmp: Bmp | None) -> str | None:
    if bmp is None:
        return None
    try:
        return decode_bcd(bmp.data)
    except ZvtDecodeError:
        return None


def _totals(bmp: Bmp | None) -> Totals | None:
    if bmp is None:
        return None
    try:
        return decode_totals(bmp.data)
    except ZvtDecodeError:
        return None


def _tlv(bmp: Bmp | None) -> tuple[Tlv, ...] | None:
    if bmp is None:
        return None
    try:
        return bmp.tlv()
    except ZvtDecodeError:
        return None


def decode_status_details(bmps: tuple[Bmp, ...], charset: str = DEFAULT_CHARSET) -> StatusDetails:
    """The typed fields of a ``04 0F``'s BMPs (the first of each id wins, as a receiver reads).

    Args:
        bmps: the decoded BMPs of the message.
        charset: the terminal's character set, for the card name and AID.
    """
    fields = bmp_map(bmps)
    get = fields.get
    pan = get(0x22)
    return StatusDetails(
        result_code=_byte(get(0x27)),
        amount_cents=_int(get(0x04)),
        currency=_int(get(0x49)),
        trace_number=_int(get(0x0B)),
        time=_time(get(0x0C)),
        date=_date(get(0x0D)),
        receipt_number=_int(get(0x87)),
        terminal_id=_terminal_id(get(0x29)),
        payment_type=_byte(get(0x19)),
        card_type=_byte(get(0x8A)),
        card_type_id=_byte(get(0x8C)),
        card_name=_text(get(0x8B), charset),
        aid=_text(get(0x3B), charset),
        masked_pan=masked_pan(pan.data) if pan is not None else None,
        totals=_totals(get(0x60)),
        tlv=_tlv(get(0x06)),
    )
