"""Typed ZVT messages: every APDU the diagnostic and de-provisioning commands need.

Each message is a frozen dataclass with ``to_apdu()`` and ``from_apdu()``; ``decode_message()``
picks the class by ``CLASS INSTR``. The same classes serve both roles: the ECR encodes commands
and decodes the PT's answers, the simulated PT does the reverse.

Data-block layouts (PA00P015; positional fields first, then BMPs)::

    06 00 Registration     <pwd 3 BCD> <config byte> [<currency 2 BCD> [03 <svc>] [06 <TLV>]]
    06 02 Log-Off          (empty)
    05 01 Status-Enquiry   [<pwd 3 BCD> [03 <svc>] [06 <TLV>]]
    06 70 Diagnosis        [06 <TLV 1B=<type>>]
    06 1A Print Sys Config (empty)
    06 10 Turnover Totals  <pwd 3 BCD> [06 <TLV>]
    06 50 End-of-Day       <pwd 3 BCD> [06 <TLV>]
    06 1B Set/Reset TID    <pwd 3 BCD> [29 <TID 4 BCD>]      (no BMP 29: reset)
    06 18 Reset Terminal   (empty)
    06 93 Initialisation   <pwd 3 BCD>
    06 79 Selftest         (empty)
    06 B0 Abort (ECR)      [BMPs]
    0F A1 Feig request     [<pwd 3 BCD>] <function u16 BE>   (0001 system info, 0255 factory reset)
    80 00 Positive ack     [BMPs, usually 06 <TLV>]
    84 xx Negative ack     xx = error id, [data]
    06 0F Completion       [BMPs] (Status-Enquiry: positional, see decode_status_completion;
                           one byte alone: a status byte, StatusByteCompletion)
    06 1E Abort (PT)       <result code> [BMPs]
    04 FF Intermediate     <status> [<T4 minutes BCD>] [06 <TLV>]
    04 0F Status info      BMPs (27 result, 04 amount, 60 totals, …; typed by .details())
    04 01 Set date/time    BMPs AA <date YYMMDD> 0C <time HHMMSS> (PT → ECR, e.g. in Diagnosis)
    06 D1 Print line       <attribute> <text, terminal charset>       (printing.py)
    06 D3 Print text block 06 <TLV: 1F07 receipt type, 25 { 09 <attr>, 07 <line> … }>

Text is decoded in the terminal's character set, which ``decode_message`` takes as a parameter
(CP437 by default, :mod:`.charset`). The message base and shared helpers are in
``message_base.py``, the print messages in ``printing.py``, the payload records (Status-Enquiry
report, totals, Feig system info) in ``payloads.py``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Self

from .apdu import Apdu
from .bcd import decode_bcd, decode_bcd_int, encode_bcd, encode_password
from .bmp import Bmp, bmp_map, decode_bmps, encode_bmp, encode_tlv_bmp
from .charset import DEFAULT_CHARSET
from .errors import ZvtDecodeError
from .message_base import (
    EUR,
    Message,
    _bmps,
    _Empty,
    _password,
    _tlv_from,
    _tlv_suffix,
)
from .printing import PrintLine, PrintTextBlock
from .status_info import StatusDetails, decode_status_details
from .tlv import Tlv, find

# Feig cVEND vendor functions (0F A1), from the EVerest captures and constants.
FEIG_SYSTEM_INFO = 0x0001
FEIG_FACTORY_RESET = 0x0255


# --- ECR → PT commands ---------------------------------------------------------------------


@dataclass(frozen=True)
class Registration(Message):
    """06 00: register the ECR, set the config byte, and optionally allow TLV (``tlv=()``)."""

    CMD = (0x06, 0x00)
    NAME = "Registration"
    password: str
    config_byte: int
    currency: int | None = EUR
    service_byte: int | None = None
    tlv: tuple[Tlv, ...] | None = None

    def to_apdu(self) -> Apdu:
        data = encode_password(self.password) + bytes([self.config_byte])
        if self.currency is not None:
            data += encode_bcd(self.currency, 2)
            if self.service_byte is not None:
                data += encode_bmp(0x03, bytes([self.service_byte]))
            data += _tlv_suffix(self.tlv)
        return Apdu(*self.CMD, data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        data = apdu.data
        if len(data) < 4:
            raise ZvtDecodeError("Registration needs password and config byte")
        currency = decode_bcd_int(data[4:6]) if len(data) >= 6 else None
        bmps = _bmps(data, 6) if len(data) > 6 else ()
        service = bmp_map(bmps).get(0x03)
        return cls(
            password=_password(data),
            config_byte=data[3],
            currency=currency,
            service_byte=service.data[0] if service else None,
            tlv=_tlv_from(bmps),
        )


@dataclass(frozen=True)
class LogOff(_Empty):
    """06 02: end the session; the config byte returns to 86 and TLV is switched off."""

    CMD = (0x06, 0x02)
    NAME = "Log-Off"


@dataclass(frozen=True)
class StatusEnquiry(Message):
    """05 01: ask the PT for its status; service byte 04 asks for TLV, 02 omits the SW string."""

    CMD = (0x05, 0x01)
    NAME = "Status-Enquiry"
    password: str | None = None
    service_byte: int | None = None
    tlv: tuple[Tlv, ...] | None = None

    def to_apdu(self) -> Apdu:
        if self.password is None:
            return Apdu(*self.CMD)
        data = encode_password(self.password)
        if self.service_byte is not None:
            data += encode_bmp(0x03, bytes([self.service_byte]))
        data += _tlv_suffix(self.tlv)
        return Apdu(*self.CMD, data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        if not apdu.data:
            return cls()
        bmps = _bmps(apdu.data, 3)
        service = bmp_map(bmps).get(0x03)
        return cls(_password(apdu.data), service.data[0] if service else None, _tlv_from(bmps))


@dataclass(frozen=True)
class Diagnosis(Message):
    """06 70: the PT tests its host connection; type in TLV tag 1B (02 extended is default)."""

    CMD = (0x06, 0x70)
    NAME = "Diagnosis"
    diagnosis_type: int | None = None

    def to_apdu(self) -> Apdu:
        if self.diagnosis_type is None:
            return Apdu(*self.CMD)
        return Apdu(*self.CMD, encode_tlv_bmp([Tlv(0x1B, bytes([self.diagnosis_type]))]))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        tlv = _tlv_from(_bmps(apdu.data)) if apdu.data else None
        kind = find(tlv, 0x1B) if tlv else None
        return cls(kind.value[0] if kind and kind.value else None)


@dataclass(frozen=True)
class PrintSystemConfiguration(_Empty):
    """06 1A: the PT prints its configuration, to the ECR when the config byte routes receipts."""

    CMD = (0x06, 0x1A)
    NAME = "Print System Configuration"


@dataclass(frozen=True)
class _PasswordCommand(Message):
    """A command whose data is the password, optionally followed by BMPs."""

    password: str
    tlv: tuple[Tlv, ...] | None = None

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, encode_password(self.password) + _tlv_suffix(self.tlv))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        return cls(_password(apdu.data), _tlv_from(_bmps(apdu.data, 3)))


@dataclass(frozen=True)
class EndOfDay(_PasswordCommand):
    """06 50: settle; the PT submits its turnover store to the host and empties it."""

    CMD = (0x06, 0x50)
    NAME = "End-of-Day"


@dataclass(frozen=True)
class SendTurnoverTotals(_PasswordCommand):
    """06 10: report the turnover store's totals without settling (an X-report)."""

    CMD = (0x06, 0x10)
    NAME = "Send Turnover Totals"


@dataclass(frozen=True)
class Initialisation(_PasswordCommand):
    """06 93: network initialisation with the host (activation-like)."""

    CMD = (0x06, 0x93)
    NAME = "Initialisation"


@dataclass(frozen=True)
class SetTerminalId(Message):
    """06 1B: set the TID, or reset it when ``terminal_id`` is None (store must be empty)."""

    CMD = (0x06, 0x1B)
    NAME = "Set/Reset Terminal-ID"
    password: str
    terminal_id: str | None = None

    def to_apdu(self) -> Apdu:
        data = encode_password(self.password)
        if self.terminal_id is not None:
            data += encode_bmp(0x29, encode_bcd(self.terminal_id, 4))
        return Apdu(*self.CMD, data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        tid = bmp_map(_bmps(apdu.data, 3)).get(0x29)
        return cls(_password(apdu.data), decode_bcd(tid.data) if tid else None)


@dataclass(frozen=True)
class ResetTerminal(_Empty):
    """06 18: restart the PT."""

    CMD = (0x06, 0x18)
    NAME = "Reset Terminal"


@dataclass(frozen=True)
class SelfTest(_Empty):
    """06 79: the PT tests itself and prints system information."""

    CMD = (0x06, 0x79)
    NAME = "Selftest"


@dataclass(frozen=True)
class AbortCommand(_Empty):
    """06 B0: the ECR asks the PT to abort the running command."""

    CMD = (0x06, 0xB0)
    NAME = "Abort"


@dataclass(frozen=True)
class FeigRequest(Message):
    """0F A1: Feig cVEND vendor command (system info ``0001``, factory reset ``0255``)."""

    CMD = (0x0F, 0xA1)
    NAME = "Feig vendor request"
    function: int
    password: str | None = None

    def to_apdu(self) -> Apdu:
        prefix = encode_password(self.password) if self.password is not None else b""
        return Apdu(*self.CMD, prefix + self.function.to_bytes(2, "big"))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        if len(apdu.data) == 2:
            return cls(int.from_bytes(apdu.data, "big"))
        if len(apdu.data) == 5:
            return cls(int.from_bytes(apdu.data[3:5], "big"), _password(apdu.data))
        raise ZvtDecodeError(f"Feig request with {len(apdu.data)} data bytes")


# --- answers (both roles) ------------------------------------------------------------------


@dataclass(frozen=True)
class PositiveAck(Message):
    """80 00: positive acknowledgement; may carry BMPs (a TLV container)."""

    CMD = (0x80, 0x00)
    NAME = "ACK"
    data: bytes = b""

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, self.data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        return cls(apdu.data)


@dataclass(frozen=True)
class NegativeAck(Message):
    """84 xx: the receiver refuses; ``84 83 00`` means command or bitmap not supported."""

    CMD = (0x84, 0x00)
    NAME = "NAK"
    error_code: int
    data: bytes = b""

    def to_apdu(self) -> Apdu:
        return Apdu(0x84, self.error_code, self.data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        return cls(apdu.instr, apdu.data)


@dataclass(frozen=True)
class Completion(Message):
    """06 0F: the PT ends a command successfully; the data layout depends on the command."""

    CMD = (0x06, 0x0F)
    NAME = "Completion"
    data: bytes = b""

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, self.data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        return cls(apdu.data)

    def bmps(self) -> tuple[Bmp, ...]:
        """The data as BMPs (raises ZvtDecodeError for positional or vendor layouts)."""
        return decode_bmps(self.data)

    @classmethod
    def with_bmps(cls, *fields: bytes) -> Self:
        """A completion from encoded BMPs."""
        return cls(b"".join(fields))


@dataclass(frozen=True)
class StatusByteCompletion(Completion):
    """06 0F carrying one byte and nothing else: a status byte whose meaning is the caller's.

    One byte cannot be BMPs (the shortest BMP has two), so it is a bare status byte, and only
    the command it answers says which: the terminal status after a Status-Enquiry (``06 0F 01
    DC``: card inserted; bezahl-online's capture), the status-byte flags of a Registration.
    The codec says what it is; the driver, which knows the command, interprets it.
    """

    NAME = "Completion (status byte)"

    @property
    def status_byte(self) -> int:
        """The byte the terminal sent."""
        return self.data[0]


def decode_completion(apdu: Apdu) -> Completion:
    """06 0F as its typed form: :class:`StatusByteCompletion` for one data byte, else Completion."""
    if len(apdu.data) == 1:
        return StatusByteCompletion(apdu.data)
    return Completion(apdu.data)


@dataclass(frozen=True)
class AbortFromTerminal(Message):
    """06 1E: the PT aborts the running command with a result code."""

    CMD = (0x06, 0x1E)
    NAME = "Abort"
    result_code: int
    data: bytes = b""

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, bytes([self.result_code]) + self.data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        if not apdu.data:
            raise ZvtDecodeError("Abort without result code")
        return cls(apdu.data[0], apdu.data[1:])


@dataclass(frozen=True)
class IntermediateStatus(Message):
    """04 FF: progress from the PT; every one restarts T4, and may set a new T4 in minutes."""

    CMD = (0x04, 0xFF)
    NAME = "Intermediate status"
    status: int
    timeout_minutes: int | None = None
    tlv: tuple[Tlv, ...] | None = None

    def to_apdu(self) -> Apdu:
        data = bytes([self.status])
        if self.timeout_minutes is not None:
            data += encode_bcd(self.timeout_minutes, 1)
        return Apdu(*self.CMD, data + _tlv_suffix(self.tlv))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        data = apdu.data
        if not data:
            raise ZvtDecodeError("Intermediate status without status byte")
        rest = data[1:]
        if rest and rest[0] == 0x06:
            try:
                return cls(data[0], None, _tlv_from(_bmps(rest)))
            except ZvtDecodeError:
                pass  # not a TLV container: 06 is a timeout of six minutes
        timeout = decode_bcd_int(rest[:1]) if rest else None
        tlv = _tlv_from(_bmps(rest, 1)) if len(rest) > 1 else None
        return cls(data[0], timeout, tlv)


@dataclass(frozen=True)
class StatusInformation(Message):
    """04 0F: result details of a command (result code, amount, totals, card data).

    ``data`` may hold card data (BMP 22, the PAN), so it stays out of ``repr()``; read the typed
    fields with :meth:`details`, which masks the PAN.
    """

    CMD = (0x04, 0x0F)
    NAME = "Status information"
    data: bytes = field(default=b"", repr=False)

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, self.data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        decode_bmps(apdu.data)  # validate now: a malformed one must not surface later
        return cls(apdu.data)

    def bmps(self) -> tuple[Bmp, ...]:
        """The BMPs carried."""
        return decode_bmps(self.data)

    def details(self, charset: str = DEFAULT_CHARSET) -> StatusDetails:
        """The typed fields (amount, trace, time, date, receipt, TID, card type, AID, PAN masked).

        Args:
            charset: the terminal's character set, for the card name and AID.
        """
        return decode_status_details(self.bmps(), charset)


@dataclass(frozen=True)
class SetDateTimeInEcr(Message):
    """04 01: the PT tells the ECR its date and time (in Diagnosis, between host and receipt).

    The ECR answers ``80 00 00`` like any message the PT sends as master. The date (BMP AA,
    YYMMDD) and time (BMP 0C, HHMMSS) are what the terminal's clock says, which the driver
    reports: a wrong clock is terminal status 62.
    """

    CMD = (0x04, 0x01)
    NAME = "Set date and time in ECR"
    moment: datetime.datetime | None = None

    def to_apdu(self) -> Apdu:
        if self.moment is None:
            return Apdu(*self.CMD)
        date = encode_bcd(self.moment.strftime("%y%m%d"), 3)
        time = encode_bcd(self.moment.strftime("%H%M%S"), 3)
        return Apdu(*self.CMD, encode_bmp(0xAA, date) + encode_bmp(0x0C, time))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        """Decode; a date or time that is no real date becomes None (the clock is reported)."""
        fields = bmp_map(_bmps(apdu.data))
        date, time = fields.get(0xAA), fields.get(0x0C)
        if date is None or time is None:
            return cls(None)
        try:
            moment = datetime.datetime.strptime(
                decode_bcd(date.data) + decode_bcd(time.data), "%y%m%d%H%M%S"
            )
        except (ZvtDecodeError, ValueError):
            return cls(None)
        return cls(moment)


@dataclass(frozen=True)
class UnknownMessage(Message):
    """A command this codec has no class for; the PT answers it with ``84 83 00``."""

    CMD = (0x00, 0x00)
    NAME = "Unknown"
    apdu: Apdu

    def to_apdu(self) -> Apdu:
        return self.apdu

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        return cls(apdu)

    def bmps(self, offset: int = 0) -> tuple[Bmp, ...]:
        """Best effort: the data as BMPs after a positional prefix of ``offset`` bytes."""
        return decode_bmps(self.apdu.data, offset)


@dataclass(frozen=True)
class MalformedMessage(Message):
    """A known command whose data did not decode; kept so the receiver can answer it."""

    CMD = (0x00, 0x00)
    NAME = "Malformed"
    apdu: Apdu
    reason: str

    def to_apdu(self) -> Apdu:
        return self.apdu


MESSAGE_TYPES: dict[tuple[int, int], type[Message]] = {
    cls.CMD: cls
    for cls in (
        Registration,
        LogOff,
        StatusEnquiry,
        Diagnosis,
        PrintSystemConfiguration,
        EndOfDay,
        SendTurnoverTotals,
        Initialisation,
        SetTerminalId,
        ResetTerminal,
        SelfTest,
        AbortCommand,
        FeigRequest,
        PositiveAck,
        Completion,
        AbortFromTerminal,
        IntermediateStatus,
        StatusInformation,
        SetDateTimeInEcr,
        PrintLine,
        PrintTextBlock,
    )
}


def decode_message(apdu: Apdu, *, charset: str = DEFAULT_CHARSET) -> Message:
    """Decode an APDU into its typed message; never raises.

    Unknown commands become UnknownMessage and known commands with bad data MalformedMessage,
    so a receiver can always answer (``84 83 00``) instead of dropping the line.

    Args:
        apdu: the APDU received.
        charset: the sender's character set for print text (the terminal's, :mod:`.charset`).
    """
    cls: type[Message] | None = NegativeAck if apdu.cls == 0x84 else MESSAGE_TYPES.get(apdu.command)
    if cls is None:
        return UnknownMessage(apdu)
    try:
        if cls is Completion:
            return decode_completion(apdu)
        if cls is PrintLine:
            return PrintLine.from_apdu(apdu, charset=charset)
        if cls is PrintTextBlock:
            return PrintTextBlock.from_apdu(apdu, charset=charset)
        return cls.from_apdu(apdu)
    except (ZvtDecodeError, UnicodeDecodeError, ValueError) as exc:
        return MalformedMessage(apdu, str(exc))

__all__ = [
    name
    for name in dir()
    if not name.startswith("_")
    and name not in {"annotations", "dataclass", "field", "datetime", "Self"}
]
