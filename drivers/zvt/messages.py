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
    06 0F Completion       [BMPs] (Status-Enquiry: positional, see decode_status_completion)
    06 1E Abort (PT)       <result code> [BMPs]
    04 FF Intermediate     <status> [<T4 minutes BCD>] [06 <TLV>]
    04 0F Status info      BMPs (27 result, 04 amount, 60 totals, …)
    06 D1 Print line       <attribute> <text, CP437>
    06 D3 Print text block 06 <TLV: 1F07 receipt type, 25 { 07 <line> … }>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from .apdu import Apdu
from .bcd import decode_bcd, decode_bcd_int, encode_bcd, encode_password
from .bmp import (
    Bmp,
    bmp_map,
    decode_bmps,
    decode_lllvar_length,
    encode_bmp,
    encode_lllvar_length,
    encode_tlv_bmp,
)
from .errors import ZvtDecodeError
from .tlv import Tlv, find

TEXT_ENCODING = "cp437"
EUR = 978

# Feig cVEND vendor functions (0F A1), from the EVerest captures and constants.
FEIG_SYSTEM_INFO = 0x0001
FEIG_FACTORY_RESET = 0x0255


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
    """04 0F: result details of a command (result code, amount, totals, card data)."""

    CMD = (0x04, 0x0F)
    NAME = "Status information"
    data: bytes = b""

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, self.data)

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        decode_bmps(apdu.data)  # validate now: a malformed one must not surface later
        return cls(apdu.data)

    def bmps(self) -> tuple[Bmp, ...]:
        """The BMPs carried."""
        return decode_bmps(self.data)


@dataclass(frozen=True)
class PrintLine(Message):
    """06 D1: one line for the ECR's printer (attribute byte, then text)."""

    CMD = (0x06, 0xD1)
    NAME = "Print line"
    attribute: int
    text: str

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, bytes([self.attribute]) + self.text.encode(TEXT_ENCODING))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        if not apdu.data:
            raise ZvtDecodeError("Print line without attribute")
        return cls(apdu.data[0], apdu.data[1:].decode(TEXT_ENCODING).rstrip())


@dataclass(frozen=True)
class PrintTextBlock(Message):
    """06 D3: a block of print lines as TLV (tag 25 holds one tag-07 object per line)."""

    CMD = (0x06, 0xD3)
    NAME = "Print text block"
    tlv: tuple[Tlv, ...]

    def to_apdu(self) -> Apdu:
        return Apdu(*self.CMD, encode_tlv_bmp(self.tlv))

    @classmethod
    def from_apdu(cls, apdu: Apdu) -> Self:
        tlv = _tlv_from(_bmps(apdu.data))
        if tlv is None:
            raise ZvtDecodeError("Print text block without TLV container")
        return cls(tlv)

    @classmethod
    def from_lines(cls, lines: list[str], receipt_type: int = 3) -> Self:
        """Build a block as a PT would send it (receipt type in 1F07)."""
        texts = [Tlv(0x07, line.encode(TEXT_ENCODING)) for line in lines]
        return cls((Tlv(0x1F07, bytes([receipt_type])), Tlv.build(0x25, texts)))

    @property
    def receipt_type(self) -> int | None:
        """1F07: which receipt this is (merchant, customer, administration…)."""
        found = find(self.tlv, 0x1F07)
        return found.value[0] if found and found.value else None

    def lines(self) -> list[str]:
        """The printed lines, decoded from CP437, trailing spaces removed."""
        container = find(self.tlv, 0x25)
        if container is None:
            return []
        return [
            item.value.decode(TEXT_ENCODING).rstrip()
            for item in container.children()
            if item.tag == 0x07
        ]


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
        PrintLine,
        PrintTextBlock,
    )
}


def decode_message(apdu: Apdu) -> Message:
    """Decode an APDU into its typed message; never raises.

    Unknown commands become UnknownMessage and known commands with bad data MalformedMessage,
    so a receiver can always answer (``84 83 00``) instead of dropping the line.
    """
    cls: type[Message] | None = NegativeAck if apdu.cls == 0x84 else MESSAGE_TYPES.get(apdu.command)
    if cls is None:
        return UnknownMessage(apdu)
    try:
        return cls.from_apdu(apdu)
    except (ZvtDecodeError, UnicodeDecodeError, ValueError) as exc:
        return MalformedMessage(apdu, str(exc))


# --- structured payloads ---------------------------------------------------------------------


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


def _text(value: bytes) -> str:
    return value.decode(TEXT_ENCODING).rstrip("\x00 ")


def _serial_text(value: bytes) -> str:
    # Spec says BCD; real Feig units put hex digits in 1F42 (17 FD 1E 3C), so render as hex.
    return value.hex().upper()


def _status_from_tlv(status: int, sw: str | None, tlv: tuple[Tlv, ...]) -> StatusReport:
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
        device_name=_text(name) if name is not None else None,
        device_sw_version=_text(dev_sw) if dev_sw is not None else None,
        serial=_serial_text(serial) if serial else None,
        device_state=state[0] if state else None,
        date=date.hex() if date else None,
        time=time.hex() if time else None,
    )


def _try_status(data: bytes, with_sw: bool) -> StatusReport:
    offset = 0
    sw: str | None = None
    if with_sw:
        length, offset = decode_lllvar_length(data, 0)
        if offset + length > len(data):
            raise ZvtDecodeError("SW version truncated")
        sw = _text(data[offset : offset + length])
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
    return _status_from_tlv(status, sw, tlv)


def decode_status_completion(data: bytes, *, sw_version_expected: bool = True) -> StatusReport:
    """Decode ``06 0F [<SW-version LLLVAR>] <terminal status> [06 <TLV>]``.

    The SW version is optional and unmarked, so the layout is ambiguous (a status byte F0/F6
    looks like an LLLVAR digit). Try the expected layout first and accept it only when the whole
    block decodes; otherwise try the other.

    Raises:
        ZvtDecodeError: when neither layout fits.
    """
    errors = []
    for with_sw in (sw_version_expected, not sw_version_expected):
        try:
            return _try_status(data, with_sw)
        except (ZvtDecodeError, UnicodeDecodeError) as exc:
            errors.append(str(exc))
    raise ZvtDecodeError(f"status completion does not decode: {'; '.join(errors)}")


def encode_status_completion(
    report: StatusReport, *, send_sw_version: bool, send_tlv: bool
) -> bytes:
    """The PT side of ``decode_status_completion``."""
    data = b""
    if send_sw_version and report.sw_version is not None:
        sw = report.sw_version.encode(TEXT_ENCODING)
        data += encode_lllvar_length(len(sw)) + sw
    data += bytes([report.terminal_status])
    if send_tlv:
        objects: list[Tlv] = []
        if report.terminal_id:
            objects.append(Tlv(0x1F44, encode_bcd(report.terminal_id, 4)))
        device: list[Tlv] = []
        if report.device_name is not None:
            device.append(Tlv(0x1F40, report.device_name.encode(TEXT_ENCODING)))
        if report.device_sw_version is not None:
            device.append(Tlv(0x1F41, report.device_sw_version.encode(TEXT_ENCODING)))
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


__all__ = [
    name
    for name in dir()
    if not name.startswith("_") and name not in {"annotations", "dataclass", "ClassVar", "Self"}
]
