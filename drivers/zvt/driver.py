"""ZvtDriver: the ECR side of ZVT over a Transport, with the protocol's timers and retries.

The codec (``connection.py``) knows bytes; this module knows time. It owns:

* T1 (inter-byte, 200 ms): a frame that stalls is dropped and answered with NAK;
* T2 (frame → ACK, 5 s) and the NAK/T2 repeats, at most 2 (PA00P016 §3.4–3.5);
* T3 (command → ``80 00``/``84 xx``, 5 s) and T4 (``80 00`` → completion, 180 s, restarted by every
  ``04 FF``/``04 0F`` and set anew by a ``04 FF`` that carries minutes);
* the master/slave hand-over: every message the PT sends while it is master is answered with
  ``80 00 00`` (unknown ones with ``84 83 00``) until it ends with ``06 0F`` or ``06 1E``;
* the terminal's character set: the catalogue's (``set_charset``) or the spec's CP437, passed
  to the sans-IO codec, and overruled for the rest of the session when a printout's known label
  proves another (:func:`.charset.detect_charset`);
* the context a bare-status-byte completion needs: the codec types it
  (``StatusByteCompletion``), the operation that sent the command says what the byte means.

Operations return typed results or raise typed errors; nothing here prints or guesses.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Self

import structlog

from ..activity import received
from ..deadline import Deadline
from ..errors import PosdiagError, ResponseTooLarge
from ..i18n import _
from ..text import clean_text
from ..transport.base import Transport
from .charset import DEFAULT_CHARSET, check_charset, decode_text, detect_charset, encode_text
from .connection import (
    FrameRejected,
    GarbageReceived,
    Link,
    LinkAck,
    LinkNak,
    MessageReceived,
    Role,
    ZvtConnection,
)
from .constants import error_text, result_text_en
from .errors import (
    ZvtCommandError,
    ZvtNoAnswerError,
    ZvtNotSupportedError,
    ZvtPasswordError,
    ZvtProtocolError,
    ZvtTimeoutError,
    ZvtTransmissionError,
)
from .framing import NEED_DATA
from .limits import PRINT_LINE_LIMIT, ZvtLimits, ZvtTimers
from .messages import (
    FEIG_FACTORY_RESET,
    FEIG_SYSTEM_INFO,
    AbortCommand,
    AbortFromTerminal,
    Completion,
    Diagnosis,
    EndOfDay,
    FeigRequest,
    IntermediateStatus,
    LogOff,
    MalformedMessage,
    Message,
    NegativeAck,
    PositiveAck,
    PrintLine,
    PrintSystemConfiguration,
    PrintTextBlock,
    Registration,
    ResetTerminal,
    SendTurnoverTotals,
    SetDateTimeInEcr,
    SetTerminalId,
    StatusByteCompletion,
    StatusEnquiry,
    StatusInformation,
)
from .payloads import FeigSystemInfo, StatusReport, Totals, decode_status_completion
from .printing import PrintTextLine
from .results import (
    CommandResult,
    DiagnosisResult,
    EndOfDayResult,
    result_code,
    totals_of,
)

log = structlog.get_logger(__name__)

# Config byte for a diagnostic session: receipts and admin printouts come to the ECR as
# 06 D1/06 D3 (0x80 | 0x04 | 0x02) and the PT sends intermediate status (0x08).
DIAGNOSTIC_CONFIG_BYTE = 0x8E
# Status-Enquiry service byte: send TLV in the completion (0x04); keep the SW-version string.
STATUS_SERVICE_TLV = 0x04
PASSWORD_ERRORS = frozenset({0x37})
NOT_SUPPORTED = 0x83
MAX_REPEATS = 2
POLL = 0.05


class ZvtDriver:
    """Speak ZVT as the ECR over any Transport.

    Args:
        transport: an unopened or open byte pipe (serial, TCP, memory).
        link: serial framing (DLE/STX/CRC/ACK) or TCP (bare APDUs).
        password: the 6-digit ZVT password; never logged.
        timers: T1–T4.
        currency: ISO 4217 numeric code for Registration (some PTs ignore a wrong one).
        clock: monotonic time source (tests may pass a fake).
        limits: caps on one command's time, status messages, print lines and bytes.
        charset: the terminal's character set for text, when known (the catalogue's); None
            starts from the spec's CP437. Either may be overruled by detection.
    """

    def __init__(
        self,
        transport: Transport,
        link: Link,
        *,
        password: str = "000000",
        timers: ZvtTimers | None = None,
        currency: int = 978,
        clock: Callable[[], float] = time.monotonic,
        limits: ZvtLimits | None = None,
        charset: str | None = None,
    ) -> None:
        if len(password) != 6 or not (password.isascii() and password.isdigit()):
            raise ValueError("the ZVT password is exactly 6 digits")
        self.transport = transport
        self.link = link
        self.timers = timers or ZvtTimers()
        self.currency = currency
        self._password = password
        self._clock = clock
        self.charset = check_charset(charset or DEFAULT_CHARSET)
        self._charset_detected = False
        self._conn = ZvtConnection(Role.ECR, link, charset=self.charset)
        self._inbox: deque[MessageReceived] = deque()
        self._noise = 0  # bytes of garbage or corrupt frames seen since the last command
        self._rejected_in_row = 0  # consecutive corrupt frames: the PT's repeats that failed
        self.limits = limits or ZvtLimits()
        self.deadline = Deadline()
        self._answer_bytes = 0  # bytes received since the current command was sent

    # --- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open the transport and drop stale bytes a previous session left in the line."""
        self.transport.open()
        self.transport.reset_input()

    def close(self) -> None:
        """Close the transport (never raises)."""
        self.transport.close()

    def set_deadline(self, at: float | None) -> None:
        """After ``at`` (a ``time.monotonic()`` instant) every exchange raises DeadlineExceeded."""
        self.deadline.set(at)

    def set_charset(self, charset: str) -> None:
        """The terminal's character set as its catalogue entry says (e.g. ISO-8859-1).

        A charset this session already detected from the terminal's own text wins over the
        catalogue: the bytes proved it.

        Raises:
            ValueError: not a single-byte character set.
        """
        canonical = check_charset(charset)
        if self._charset_detected:
            return
        self.charset = self._conn.charset = canonical

    def _decode_printed(self, result: CommandResult, raw: list[tuple[bytes, int | None]]) -> None:
        """Decode the command's print lines, after detecting the charset from all of them.

        Detection sees the whole printout at once, because the label that decides may be on
        any line; a charset it proves stays for the rest of the session (a property of the
        terminal), and the change is logged once.
        """
        detected = detect_charset(line for line, _ in raw)
        if detected is not None and detected != self.charset:
            log.info("zvt.charset_detected", charset=detected, was=self.charset)
            self.charset = self._conn.charset = detected
        if detected is not None:
            self._charset_detected = True
        result.charset = self.charset
        result.printed = [
            PrintTextLine(_print_text(decode_text(line, self.charset)), attribute)
            for line, attribute in raw
        ]
        result.print_lines = [line.text for line in result.printed]

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- link layer --------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            self.transport.write(data)

    def _pump(self, deadline: float) -> bool:
        """Read once (bounded by the deadline and T1) and feed the codec.

        Returns:
            False when the deadline passed without any byte.
        """
        now = self._clock()
        if now >= deadline:
            self.deadline.check()
            return False
        wait = min(deadline - now, self.timers.t1 if self._conn.frame_in_progress else POLL * 4)
        data = self.transport.read(4096, self.deadline.clip(wait))
        if data:
            received(len(data))  # the watcher's byte count (one lookup when nobody watches)
            self._answer_bytes += len(data)
            if self._answer_bytes > self.limits.max_answer_bytes:
                self._give_up()
                raise ResponseTooLarge(
                    f"the terminal on {self.transport.description} sent more than "
                    f"{_size(self.limits.max_answer_bytes)} for one command; it may be faulty"
                )
            self._conn.receive_data(data)
            return True
        if (
            self._conn.frame_in_progress
            and self.link is Link.SERIAL
            and self._conn.inter_byte_timeout()
        ):
            log.debug("zvt.t1_expired", action="nak")
            self._flush()
        return self._clock() < deadline

    def _events(self, deadline: float) -> object | None:
        """Next link event before the deadline, or None on timeout; ACKs go out at once."""
        while True:
            event = self._conn.next_event()
            self._flush()  # the immediate ACK/NAK for a frame just parsed
            if event is not NEED_DATA:
                return event
            if not self._pump(deadline):
                event = self._conn.next_event()
                self._flush()
                return None if event is NEED_DATA else event

    def _send(self, message: Message) -> None:
        """Send one message; on serial wait for ACK, repeating on NAK/T2 at most twice."""
        log.debug("zvt.tx", message=message.NAME)
        self._conn.send(message)
        self._flush()
        if self.link is Link.TCP:
            return
        for attempt in range(MAX_REPEATS + 1):
            deadline = self._clock() + self.timers.t2
            while True:
                event = self._events(deadline)
                if event is None:
                    reason = "no ACK within T2"
                    break
                if isinstance(event, LinkAck):
                    return
                if isinstance(event, LinkNak):
                    reason = "NAK"
                    break
                if isinstance(event, MessageReceived):
                    # Our ACK was lost but the PT acted on the frame: its answer proves receipt.
                    self._inbox.append(event)
                    return
                self._note(event)
            if attempt < MAX_REPEATS:
                log.debug("zvt.repeat", message=message.NAME, reason=reason, attempt=attempt + 1)
                self._conn.resend()
                self._flush()
        silent = reason == "no ACK within T2" and not self._noise
        raise (ZvtNoAnswerError if silent else ZvtTransmissionError)(
            f"the terminal did not acknowledge {message.NAME} ({reason}, "
            f"{MAX_REPEATS + 1} attempts on {self.transport.description})"
        )

    def _note(self, event: object) -> None:
        if isinstance(event, FrameRejected):
            self._noise += len(event.raw)
            log.debug("zvt.frame_rejected", reason=event.reason)
        elif isinstance(event, GarbageReceived):
            self._noise += len(event.data)
            log.debug("zvt.garbage", length=len(event.data))

    def _silence_error(self, waiting_for: str) -> ZvtTimeoutError | ZvtProtocolError:
        """The error for a timer that expired: silence, or a line full of non-ZVT bytes."""
        if self._noise:
            return ZvtProtocolError(
                f"the terminal on {self.transport.description} sent {self._noise} bytes that are"
                f" not ZVT frames instead of the {waiting_for} (wrong protocol or baud rate?)"
            )
        return ZvtTimeoutError(
            f"the terminal sent no {waiting_for} in time on {self.transport.description}"
        )

    def _receive(self, deadline: float, waiting_for: str) -> Message:
        """The next message from the PT before the deadline."""
        if self._inbox:
            return self._inbox.popleft().message
        while True:
            self.deadline.check()  # a terminal that never stops talking still meets the deadline
            event = self._events(deadline)
            if event is None:
                raise self._silence_error(waiting_for)
            if isinstance(event, MessageReceived):
                log.debug("zvt.rx", message=event.message.NAME)
                self._rejected_in_row = 0
                return event.message
            self._note(event)
            if isinstance(event, FrameRejected):
                self._rejected_in_row += 1
                if self._rejected_in_row > MAX_REPEATS:
                    # PA00P016 §3.5: after the original and two repeats both sides give up.
                    self._rejected_in_row = 0
                    raise ZvtTransmissionError(
                        f"{MAX_REPEATS + 1} frames in a row from the terminal on "
                        f"{self.transport.description} arrived corrupted ({event.reason}); "
                        "line noise, a wrong baud rate or a bad cable?"
                    )

    def _drain_stale(self) -> None:
        """Acknowledge and drop anything left from an earlier command (e.g. a repeated frame)."""
        self._inbox.clear()
        while True:
            event = self._events(self._clock())
            if event is None:
                return
            self._note(event)

    # --- master/slave sequence ---------------------------------------------------------------

    def transact(self, command: Message, *, expect_completion: bool = True) -> CommandResult:
        """Run one ECR command to its end, answering the PT while it is master.

        Raises:
            ZvtNotSupportedError: ``84 83``.
            ZvtPasswordError: the PT rejected the password.
            ZvtCommandError: any other refusal or an abort from the PT.
            ZvtTimeoutError: T3 or T4 expired.
            ZvtTransmissionError: the link layer gave up.
        """
        self.deadline.check()
        self._drain_stale()
        self._noise = 0
        self._answer_bytes = 0
        command_end = self._clock() + self.limits.max_command_s
        self._send(command)
        result = CommandResult(charset=self.charset)
        printed: list[tuple[bytes, int | None]] = []  # raw text: decoded once the charset is known
        try:
            first = self._receive(self._clock() + self.timers.t3, f"answer to {command.NAME} (T3)")
        except (ZvtTimeoutError, ZvtProtocolError):
            if self.link is Link.TCP:
                # PA00P016 §5.2.5: the command counts as aborted and the ECR closes the socket;
                # left open, a late answer would be taken for the next command's.
                self.transport.close()
            raise
        if isinstance(first, NegativeAck):
            raise self._refusal(command, first.error_code)
        if not isinstance(first, PositiveAck):
            if self.link is Link.TCP:
                self.transport.close()  # PA00P016 §5.2.5: no valid answer within T3 aborts
            raise ZvtCommandError(
                f"the terminal answered {command.NAME} with {first.NAME} instead of 80 00",
                command=command.NAME,
            )
        result.positive_ack = first
        if not expect_completion:
            return result
        t4_deadline = self._clock() + self.timers.t4
        try:
            while True:
                try:
                    message = self._receive(
                        min(t4_deadline, command_end), f"completion of {command.NAME} (T4)"
                    )
                except ZvtTimeoutError:
                    if self._clock() < command_end:
                        raise
                    self._give_up()
                    raise ZvtTimeoutError(
                        f"the terminal did not finish {command.NAME} within "
                        f"{self.limits.max_command_s:g} s; it may be stuck"
                    ) from None
                if isinstance(message, IntermediateStatus):
                    result.intermediate.append(message.status)
                    if len(result.intermediate) > self.limits.max_intermediate:
                        self._give_up()
                        raise ZvtTimeoutError(
                            f"the terminal kept reporting progress ({len(result.intermediate)}"
                            f" status messages) without finishing {command.NAME}; it may be stuck"
                        )
                    t4 = message.timeout_minutes * 60 if message.timeout_minutes else self.timers.t4
                    t4_deadline = self._clock() + t4
                elif isinstance(message, StatusInformation):
                    result.status_infos.append(message)
                    t4_deadline = self._clock() + self.timers.t4
                elif isinstance(message, PrintLine):
                    printed.append((message.raw, message.attribute))
                elif isinstance(message, PrintTextBlock):
                    printed.extend(
                        (encode_text(line.text, message.charset), line.attribute)
                        for line in message.text_lines()
                    )
                elif isinstance(message, SetDateTimeInEcr):
                    result.terminal_time = message.moment
                    log.debug("zvt.terminal_time", at=str(message.moment))
                if len(printed) > self.limits.max_print_lines:
                    self._give_up()
                    raise ResponseTooLarge(
                        f"the terminal printed more than {self.limits.max_print_lines} lines for"
                        f" {command.NAME}; it may be faulty"
                    )
                elif isinstance(message, Completion):
                    self._send(PositiveAck())
                    result.completion = message
                    if isinstance(message, StatusByteCompletion):
                        result.status_byte = message.status_byte
                    self._decode_printed(result, printed)
                    return result
                elif isinstance(message, AbortFromTerminal):
                    self._send(PositiveAck())
                    said = result_text_en(message.result_code)
                    raise ZvtCommandError(
                        f"the terminal aborted {command.NAME}: {said}",
                        code=message.result_code,
                        command=command.NAME,
                    )
                if isinstance(message, MalformedMessage) or message.NAME == "Unknown":
                    self._send(NegativeAck(NOT_SUPPORTED))
                else:
                    self._send(PositiveAck())
        except KeyboardInterrupt:
            self._try_abort()
            raise

    def _refusal(self, command: Message, code: int) -> ZvtCommandError:
        text = error_text(code)
        if code == NOT_SUPPORTED:
            return ZvtNotSupportedError(
                f"the terminal does not support {command.NAME} (84 83)",
                code=code,
                command=command.NAME,
            )
        if code in PASSWORD_ERRORS:
            # the operator reads this one (the CLI's error line): their language, their next move
            return ZvtPasswordError(
                _(
                    "the terminal rejected the ZVT password for {command} "
                    "(give the right one with --password or ?password=NNNNNN)"
                ).format(command=command.NAME),
                code=code,
                command=command.NAME,
            )
        return ZvtCommandError(
            f"the terminal refused {command.NAME}: {text} (84 {code:02X})",
            code=code,
            command=command.NAME,
        )

    def _try_abort(self) -> None:
        try:
            self._send(AbortCommand())
        except (PosdiagError, OSError):
            log.debug("zvt.abort_failed")

    def _give_up(self) -> None:
        """Drop the line after a cap was hit mid-command: the PT is still master and talking.

        Further commands on this session then fail at once (``TransportClosed``) instead of
        reading the rest of the runaway answer as theirs.
        """
        log.warning("zvt.command_capped", transport=self.transport.description)
        self.transport.close()

    # --- operations --------------------------------------------------------------------------

    def register(
        self, config_byte: int = DIAGNOSTIC_CONFIG_BYTE, *, allow_tlv: bool = True
    ) -> Completion:
        """06 00 Registration: route printouts to us and allow TLV until Log-Off."""
        command = Registration(
            password=self._password,
            config_byte=config_byte,
            currency=self.currency,
            tlv=() if allow_tlv else None,
        )
        result = self.transact(command)
        assert result.completion is not None
        if result.status_byte is not None:
            # In a Registration's context the byte is BMP 19's status-byte flags sent bare.
            log.info("zvt.registration_status", status_byte=f"{result.status_byte:02X}")
        return result.completion

    def status_enquiry(self) -> StatusReport:
        """05 01 Status-Enquiry, asking for TLV (device name, SW, serial, state, TID).

        A completion with one byte alone is the terminal status (``06 0F 01 DC``): the terminal
        sent neither SW version nor TLV.
        """
        command = StatusEnquiry(password=self._password, service_byte=STATUS_SERVICE_TLV)
        result = self.transact(command)
        assert result.completion is not None
        if result.status_byte is not None:
            return StatusReport(terminal_status=result.status_byte)
        return decode_status_completion(
            result.completion.data, sw_version_expected=True, charset=self.charset
        )

    def diagnosis(self, diagnosis_type: int | None = None) -> DiagnosisResult:
        """06 70 Diagnosis: the PT dials its host; an abort means the host was not reached."""
        try:
            result = self.transact(Diagnosis(diagnosis_type))
        except ZvtNotSupportedError:
            raise
        except ZvtCommandError as exc:
            if exc.code is None:
                raise
            return DiagnosisResult(False, exc.code, result_text_en(exc.code), ())
        code = result_code(result)
        reachable = code in (None, 0)
        text = "host reached" if reachable else result_text_en(code or 0)
        return DiagnosisResult(
            reachable, code, text, tuple(result.print_lines), result.terminal_time
        )

    def print_system_configuration(self) -> list[str]:
        """06 1A: the PT's configuration printout, collected from 06 D1/06 D3."""
        return self.transact(PrintSystemConfiguration()).print_lines

    def turnover_totals(self) -> Totals | None:
        """06 10 Send Turnover Totals: what the store holds, without settling it."""
        return totals_of(self.transact(SendTurnoverTotals(self._password)))

    def end_of_day(self) -> EndOfDayResult:
        """06 50 End-of-Day: settle and empty the turnover store."""
        result = self.transact(EndOfDay(self._password))
        return EndOfDayResult(totals_of(result), result_code(result), tuple(result.print_lines))

    def set_terminal_id(self, terminal_id: str | None) -> None:
        """06 1B: set the TID, or reset it with None (refused while the store holds turnover)."""
        self.transact(SetTerminalId(self._password, terminal_id))

    def log_off(self) -> None:
        """06 02 Log-Off: the PT answers 80 00 only; config byte back to 86, TLV off."""
        self.transact(LogOff(), expect_completion=False)

    def reset_terminal(self) -> None:
        """06 18 Reset: the PT restarts after its completion."""
        self.transact(ResetTerminal())

    def abort(self) -> None:
        """06 B0 Abort, sent while we are master."""
        self.transact(AbortCommand(), expect_completion=False)

    def feig_system_info(self) -> FeigSystemInfo:
        """Feig 0F A1 0001: serial, SW version, TID and temperature."""
        result = self.transact(FeigRequest(FEIG_SYSTEM_INFO))
        assert result.completion is not None
        return FeigSystemInfo.decode(result.completion.data)

    def feig_factory_reset(self) -> None:
        """Feig 0F A1 0255: factory reset (destructive; only the wipe workflow calls it)."""
        self.transact(FeigRequest(FEIG_FACTORY_RESET, self._password))


def _size(count: int) -> str:
    """A byte count for people: ``4 MB``, ``512 KB``."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MB"
    return f"{count / 1024:g} KB" if count >= 1024 else f"{count} bytes"


def _print_text(text: str) -> str:
    """One print line as safe text: padding dropped, control bytes and escapes removed."""
    return clean_text(text.rstrip(" \x00"), PRINT_LINE_LIMIT)


# The records live in results.py; callers import them from here as before.
__all__ = ["CommandResult", "DiagnosisResult", "EndOfDayResult", "ZvtDriver", "ZvtLimits"]
__all__ += ["ZvtTimers"]
