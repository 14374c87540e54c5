"""How a simulated ZVT terminal answers each command, and how its state changes.

``ZvtDeviceModel.handle()`` turns one ECR command into a :class:`Reply`: the immediate answer
(``80 00`` or ``84 xx``), the messages the PT then sends as master (intermediate status, status
information, print lines, completion or abort), and the state change that takes effect when the
sequence has been delivered. Protocol mechanics (framing, ACKs, timers) live in ``engine.py``;
this module is only the terminal's behaviour, as PA00P015 describes it.

The behavioural faults a wipe must survive are decided here too, because they are about what the
terminal does, not about the wire: refusing a command (``fail_command``), losing power half-way
through one (``power_loss_at``: the handler says which part of its effect lands first) and
claiming success without doing the work (``lie_about``).

A tampered unit (device state 03, "fraud") behaves as one does: its security module erased the
keys and put it out of order, so it reports terminal status DF whatever its scenario said and
refuses the commands that need its keys and host (End-of-Day, Initialisation) with ``06 1E DF``.
Receipts print amounts as German units do ("12,50 EUR"), in the terminal's character set.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from posdiag.drivers.zvt.bcd import encode_bcd
from posdiag.drivers.zvt.bmp import encode_bmp
from posdiag.drivers.zvt.messages import (
    FEIG_FACTORY_RESET,
    FEIG_SYSTEM_INFO,
    AbortCommand,
    AbortFromTerminal,
    Completion,
    Diagnosis,
    EndOfDay,
    FeigRequest,
    Initialisation,
    IntermediateStatus,
    LogOff,
    Message,
    NegativeAck,
    PositiveAck,
    PrintLine,
    PrintSystemConfiguration,
    PrintTextBlock,
    Registration,
    ResetTerminal,
    SelfTest,
    SendTurnoverTotals,
    SetDateTimeInEcr,
    SetTerminalId,
    StatusEnquiry,
    StatusInformation,
)
from posdiag.drivers.zvt.payloads import (
    FeigSystemInfo,
    StatusReport,
    Totals,
    encode_status_completion,
    encode_totals,
)

from .hostile import hostile_lines, hostile_name
from .printout import render_printout
from .state import TerminalState

log = structlog.get_logger(__name__)

NOT_SUPPORTED = 0x83
WRONG_PASSWORD = 0x37
RC_NOT_POSSIBLE = 0x83
RC_COMMUNICATION = 0x7D
RC_SYSTEM_ERROR = 0xFF  # 84 FF: the refusal of an injected fault for commands without completion
RC_OUT_OF_ORDER = 0xDF  # a tampered unit's answer to what needs its keys (spec ch. 10/11: DF)
DEVICE_STATE_FRAUD = 0x03  # TLV 1F43 "fraud": the security module saw tampering
SERVICE_NO_SW_VERSION = 0x02
SERVICE_TLV = 0x04
CONFIG_RECEIPTS_TO_ECR = 0x80
CONFIG_ADMIN_RECEIPTS = 0x04
CONFIG_INTERMEDIATE = 0x08
LOG_OFF_CONFIG = 0x86
STATUS_HOST_CONNECTING = 0x17  # intermediate status: "please wait" while dialling the host
REGISTRATION_INIT_NECESSARY = 0x01
REGISTRATION_DIAGNOSIS_NECESSARY = 0x02
REGISTRATION_VENDING_MODE = 0x10  # a cVEND is a vending terminal (the capture's 19 10)
MAX_BLOCK_TEXT = 3800  # keep one 06 D3 under the 4 KB a real Feig sends


def german_amount(cents: int, currency: str) -> str:
    """An amount as a German receipt prints it: decimal comma, currency after ("12,50 EUR")."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100},{cents % 100:02d} {currency}"


@dataclass
class Reply:
    """What the PT does in answer to one command.

    Attributes:
        first: ``80 00`` or ``84 xx``, sent within T3.
        sequence: (delay before, message) sent while the PT is master; each is answered by the ECR.
        effect: state change, applied just before the PT sends the sequence's last message.
        restart: the PT reboots after the sequence (06 18).
        partial: the part of ``effect`` that has taken hold when power fails mid-command
            (the first half of a settlement, the TID without its status byte…); None: nothing.
        power_loss: the PT loses power where ``effect`` would apply: ``partial`` takes hold
            and the link drops before the last message (set by the ``power_loss_at`` fault).
    """

    first: Message
    sequence: list[tuple[float, Message]] = field(default_factory=list)
    effect: Callable[[], None] | None = None
    restart: bool = False
    partial: Callable[[], None] | None = None
    power_loss: bool = False


def command_matches(message: Message, spec: str) -> bool:
    """Whether a fault's command spec names ``message``.

    Names (``Message.NAME``, any case) read well in scenarios; hex codes (``061B``, ``06 50``)
    are what a trace shows, and only ``0FA10255`` can single out the Feig factory reset from the
    other Feig vendor requests, which share one name.

    Args:
        message: the command received.
        spec: the fault's value; empty never matches.
    """
    spec = spec.strip()
    if not spec:
        return False
    if spec.casefold() == message.NAME.casefold():
        return True
    code: tuple[int, int] | None = getattr(message, "CMD", None)
    if code is None:
        return False
    codes = {bytes(code).hex()}
    if isinstance(message, FeigRequest):
        codes.add(bytes(code).hex() + f"{message.function:04x}")
    return "".join(spec.split()).lower() in codes


def _ends_without_completion(message: Message) -> bool:
    """Log-Off and Abort end at the PT's ``80 00``: a refusal must be ``84 xx`` for them."""
    return isinstance(message, LogOff | AbortCommand)


class ZvtDeviceModel:
    """The behaviour of one simulated terminal; thread-safe over its state."""

    def __init__(self, state: TerminalState) -> None:
        self.state = state
        self.lock = threading.RLock()
        self.commands_seen: list[str] = []

    # --- helpers -------------------------------------------------------------------------------

    def _password_ok(self, password: str | None) -> bool:
        return password is None or password == self.state.password

    def _intermediate(self, status: int) -> list[tuple[float, Message]]:
        if self.state.config_byte & CONFIG_INTERMEDIATE:
            return [(0.0, IntermediateStatus(status))]
        return []

    def _print(self, lines: list[str]) -> list[tuple[float, Message]]:
        """Printout to the ECR if the config byte routes admin receipts there, else nothing."""
        state = self.state
        if not (state.config_byte & CONFIG_RECEIPTS_TO_ECR) or not (
            state.config_byte & CONFIG_ADMIN_RECEIPTS
        ):
            return []  # the PT would use its own printer
        if state.faults.hostile_text:
            lines = hostile_lines(lines)
        if not state.tlv_enabled:
            return [(0.0, PrintLine(0x00, line, state.charset)) for line in lines]
        blocks: list[tuple[float, Message]] = []
        chunk: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) + 2 > MAX_BLOCK_TEXT and chunk:
                blocks.append((0.0, PrintTextBlock.from_lines(chunk, charset=state.charset)))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 2
        if chunk:
            blocks.append((0.0, PrintTextBlock.from_lines(chunk, charset=state.charset)))
        return blocks

    def _totals(self) -> Totals:
        txs = self.state.transactions
        first = min((tx.receipt_number for tx in txs), default=0)
        last = max((tx.receipt_number for tx in txs), default=0)
        return Totals(first, last, self.state.totals_by_scheme())

    def _totals_info(self, with_amount: bool) -> StatusInformation:
        totals = self._totals()
        data = encode_bmp(0x27, b"\x00")
        if with_amount:
            data += encode_bmp(0x04, encode_bcd(totals.total_cents, 6))
        data += encode_bmp(0x60, encode_totals(totals))
        return StatusInformation(data)

    def _registration_status(self) -> int:
        """BMP 19 of the Registration completion: bit flags, not the terminal status code."""
        flags = REGISTRATION_VENDING_MODE if self.state.vendor_commands else 0
        if self.state.status_byte == 0x51 or self.state.device_state == 0x01:
            flags |= REGISTRATION_INIT_NECESSARY
        if self.state.status_byte == 0xC2:
            flags |= REGISTRATION_DIAGNOSIS_NECESSARY
        return flags

    @property
    def tampered(self) -> bool:
        """Whether the security module reports fraud (device state 03)."""
        return self.state.device_state == DEVICE_STATE_FRAUD

    def terminal_status(self) -> int:
        """The terminal status byte: DF (out of order) on a tampered unit, else the state's."""
        return RC_OUT_OF_ORDER if self.tampered else self.state.status_byte

    def status_report(self) -> StatusReport:
        """The state as a Status-Enquiry completion describes it."""
        s = self.state
        dress = hostile_name if s.faults.hostile_text else (lambda text: text)
        return StatusReport(
            terminal_status=self.terminal_status(),
            sw_version=dress(s.sw_version),
            terminal_id=s.terminal_id,
            device_name=dress(s.device_name),
            device_sw_version=dress(s.sw_version),
            serial=s.serial,
            device_state=s.device_state,
        )

    # --- dispatch ------------------------------------------------------------------------------

    def handle(self, message: Message) -> Reply:
        """Answer one command from the ECR, with the behavioural faults of the state applied.

        Faults come after the password check (a wrong password is refused first, as on the
        real unit) and in this order: ``fail_command``, ``lie_about``, ``power_loss_at``.
        """
        with self.lock:
            self.commands_seen.append(message.NAME)
            handler = self._HANDLERS.get(type(message))
            if handler is None:
                return Reply(NegativeAck(NOT_SUPPORTED))
            password = getattr(message, "password", None)
            if not self._password_ok(password):
                return Reply(NegativeAck(WRONG_PASSWORD))
            faults = self.state.faults
            if command_matches(message, faults.fail_command):
                log.debug("sim.zvt.fault", fault="fail_command", command=message.NAME)
                return self._refusal(message)
            reply = handler(self, message)
            if command_matches(message, faults.lie_about):
                log.debug("sim.zvt.fault", fault="lie_about", command=message.NAME)
                return self._pretend(message, reply)
            if command_matches(message, faults.power_loss_at):
                log.debug("sim.zvt.fault", fault="power_loss_at", command=message.NAME)
                faults.power_loss_at = ""  # one power cut; the rebooted unit works again
                reply.power_loss = True
            return reply

    @staticmethod
    def _refusal(message: Message) -> Reply:
        """The injected refusal: ``80 00`` then ``06 1E 83``, or ``84 FF`` without completion."""
        if _ends_without_completion(message):
            return Reply(NegativeAck(RC_SYSTEM_ERROR))
        return Reply(PositiveAck(), [(0.0, AbortFromTerminal(RC_NOT_POSSIBLE))])

    @staticmethod
    def _pretend(message: Message, reply: Reply) -> Reply:
        """Success as the ECR would see it, without the effect (and without the work).

        A reply that already ends in success keeps its messages (totals, printout) so the lie
        looks genuine; a refusal or abort becomes a bare ``80 00`` (… ``06 0F``).
        """
        succeeded = isinstance(reply.first, PositiveAck) and (
            not reply.sequence or isinstance(reply.sequence[-1][1], Completion)
        )
        if succeeded:
            return Reply(reply.first, reply.sequence, restart=reply.restart)
        if _ends_without_completion(message):
            return Reply(PositiveAck())
        return Reply(PositiveAck(), [(0.0, Completion())])

    def _registration(self, msg: Registration) -> Reply:
        s = self.state

        def effect() -> None:
            s.config_byte = msg.config_byte
            s.tlv_enabled = msg.tlv is not None or s.tlv_enabled
            s.registered = True

        data = encode_bmp(0x19, bytes([self._registration_status()]))
        if s.terminal_id:
            data += encode_bmp(0x29, encode_bcd(s.terminal_id, 4))
        data += encode_bmp(0x49, encode_bcd(s.currency_code, 2))
        # The config byte is in force from the completion on: the engine applies the effect
        # just before sending it. Returned rather than applied here, so that a lying or failing
        # terminal (faults) can withhold it.
        return Reply(PositiveAck(), [(0.0, Completion(data))], effect)

    def _log_off(self, msg: LogOff) -> Reply:
        s = self.state

        def effect() -> None:
            s.config_byte = LOG_OFF_CONFIG
            s.tlv_enabled = False
            s.registered = False

        def partial() -> None:
            s.tlv_enabled = False  # the config byte and the registration were not reset yet

        return Reply(PositiveAck(), effect=effect, partial=partial)

    def _status_enquiry(self, msg: StatusEnquiry) -> Reply:
        service = msg.service_byte or 0
        send_tlv = bool(service & SERVICE_TLV) or msg.tlv is not None or self.state.tlv_enabled
        data = encode_status_completion(
            self.status_report(),
            send_sw_version=not service & SERVICE_NO_SW_VERSION,
            send_tlv=send_tlv,
            charset=self.state.charset,
        )
        return Reply(PositiveAck(), [(0.0, Completion(data))])

    def _diagnosis(self, msg: Diagnosis) -> Reply:
        s = self.state
        seq = self._intermediate(STATUS_HOST_CONNECTING)
        host_wait = s.timing.host_latency
        if not s.host_reachable:
            return Reply(PositiveAck(), [*seq, (host_wait, AbortFromTerminal(RC_COMMUNICATION))])
        # PA00P015 §2.17: host connection, then the PT's date/time (04 01), receipt, completion.
        now = datetime.datetime.now().replace(microsecond=0)
        seq.append((host_wait, SetDateTimeInEcr(now)))
        lines = [
            "** Diagnose **".center(40),
            f"{now:%d.%m.%Y}" + f"{now:%H:%M:%S}".rjust(30),
            f"Terminal-ID{(s.terminal_id or '--------'):>29}",
            f"Host{'erreichbar':>36}",
        ]
        seq += self._print(lines)
        seq.append((0.0, Completion()))
        return Reply(PositiveAck(), seq)

    def _print_config(self, msg: PrintSystemConfiguration) -> Reply:
        seq = self._print(render_printout(self.state))
        return Reply(PositiveAck(), [*seq, (0.0, Completion())])

    def _turnover_totals(self, msg: SendTurnoverTotals) -> Reply:
        return Reply(PositiveAck(), [(0.0, self._totals_info(False)), (0.0, Completion())])

    def _end_of_day(self, msg: EndOfDay) -> Reply:
        s = self.state
        seq = self._intermediate(STATUS_HOST_CONNECTING)
        if self.tampered:
            # Keys erased, out of order: nothing to submit with, and a settlement must not run.
            return Reply(PositiveAck(), [*seq, (0.0, AbortFromTerminal(RC_OUT_OF_ORDER))])
        if not s.terminal_id:
            return Reply(PositiveAck(), [*seq, (0.0, AbortFromTerminal(0x6B))])
        if not s.host_reachable:
            return Reply(
                PositiveAck(), [*seq, (s.timing.host_latency, AbortFromTerminal(RC_COMMUNICATION))]
            )
        totals = self._totals()
        seq.append((s.timing.host_latency, self._totals_info(True)))
        seq += self._print(
            [
                "** Kassenschnitt **".center(40),
                f"Anzahl{totals.count:>34}",
                f"Summe{german_amount(totals.total_cents, s.currency):>35}",
            ]
        )
        seq.append((0.0, Completion()))

        def effect() -> None:
            s.transactions.clear()
            if s.status_byte in (0xB1, 0xF0):
                s.status_byte = 0x00

        def partial() -> None:
            # The host took the first half of the batch (rounded down); the rest stays open.
            del s.transactions[: len(s.transactions) // 2]

        return Reply(PositiveAck(), seq, effect, partial=partial)

    def _set_terminal_id(self, msg: SetTerminalId) -> Reply:
        s = self.state
        if not s.store_empty:
            return Reply(PositiveAck(), [(0.0, AbortFromTerminal(RC_NOT_POSSIBLE))])

        def effect() -> None:
            s.terminal_id = msg.terminal_id
            if msg.terminal_id is None:
                # Unbound: no merchant, no host, keys of the old TID are useless.
                s.status_byte = 0x51
                s.device_state = 0x01
                s.keys_present = False
                s.host_operator = ""
                s.host_address = ""
                s.host_port = 0
                s.merchant_lines = []

        def partial() -> None:
            s.terminal_id = msg.terminal_id  # status byte, keys and host data not updated yet

        return Reply(PositiveAck(), [(0.0, Completion())], effect, partial=partial)

    def _initialisation(self, msg: Initialisation) -> Reply:
        s = self.state
        seq = self._intermediate(STATUS_HOST_CONNECTING)
        if self.tampered:
            return Reply(PositiveAck(), [*seq, (0.0, AbortFromTerminal(RC_OUT_OF_ORDER))])
        if not s.host_reachable or not s.terminal_id:
            rc = RC_COMMUNICATION if not s.host_reachable else 0x6B
            return Reply(PositiveAck(), [*seq, (s.timing.host_latency, AbortFromTerminal(rc))])

        def effect() -> None:
            s.status_byte = 0x00
            s.device_state = 0x00
            s.keys_present = True

        def partial() -> None:
            s.keys_present = True  # keys loaded, status not yet updated

        return Reply(
            PositiveAck(), [*seq, (s.timing.host_latency, Completion())], effect, partial=partial
        )

    def _reset(self, msg: ResetTerminal) -> Reply:
        return Reply(PositiveAck(), [(0.0, Completion())], restart=True)

    def _self_test(self, msg: SelfTest) -> Reply:
        return Reply(PositiveAck(), [(0.0, Completion())])

    def _abort(self, msg: AbortCommand) -> Reply:
        return Reply(PositiveAck())

    def _feig(self, msg: FeigRequest) -> Reply:
        s = self.state
        if not s.vendor_commands:
            return Reply(NegativeAck(NOT_SUPPORTED))
        if msg.function == FEIG_SYSTEM_INFO:
            info = FeigSystemInfo(
                s.serial, s.sw_version, s.terminal_id or "00000000", s.temperature_c
            )
            return Reply(PositiveAck(), [(0.0, Completion(info.encode()))])
        if msg.function == FEIG_FACTORY_RESET:
            if not s.store_empty:
                return Reply(PositiveAck(), [(0.0, AbortFromTerminal(RC_NOT_POSSIBLE))])

            def effect() -> None:
                s.terminal_id = None
                s.status_byte = 0x51
                s.device_state = 0x01
                s.keys_present = False
                s.host_operator = ""
                s.host_address = ""
                s.host_port = 0
                s.merchant_lines = []
                s.config_byte = LOG_OFF_CONFIG
                s.tlv_enabled = False
                s.registered = False

            def partial() -> None:
                # Erased in order: binding first; host and merchant data, registration remain.
                s.terminal_id = None
                s.status_byte = 0x51
                s.device_state = 0x01
                s.keys_present = False

            return Reply(
                PositiveAck(), [(0.0, Completion())], effect, restart=True, partial=partial
            )
        return Reply(NegativeAck(NOT_SUPPORTED))

    _HANDLERS: dict[type, Callable[[ZvtDeviceModel, Message], Reply]] = {
        Registration: _registration,
        LogOff: _log_off,
        StatusEnquiry: _status_enquiry,
        Diagnosis: _diagnosis,
        PrintSystemConfiguration: _print_config,
        SendTurnoverTotals: _turnover_totals,
        EndOfDay: _end_of_day,
        SetTerminalId: _set_terminal_id,
        Initialisation: _initialisation,
        ResetTerminal: _reset,
        SelfTest: _self_test,
        AbortCommand: _abort,
        FeigRequest: _feig,
    }
