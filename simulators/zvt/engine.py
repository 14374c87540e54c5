"""The simulated ZVT terminal's protocol loop: the PT side of the link, with timing and faults.

``ZvtSimulator.serve()`` owns one connection: it reads the ECR's bytes into a PT-role
:class:`~posdiag.drivers.zvt.connection.ZvtConnection`, acknowledges frames (serial), hands each
command to the device model, then plays the PT's master sequence, waiting for the ECR's
``80 00 00`` after every message and repeating frames the ECR NAKs, as PA00P016 requires.

Faults are injected here, at the wire: corrupt CRCs, dropped or late ACKs, split writes, stalls
inside a frame, garbage, silence, babble, and a pulled cable. A power cut (``power_loss_at``,
decided by the device model) ends here too: the link drops where the command's effect would
have taken hold. On TCP and memory links the connection is dropped and the next one finds the
rebooted terminal; on a pty the serial line stays (an unpowered PT is simply silent, the ECR
runs into T3/T4) and the terminal answers again after its reboot. The state lives in the
:class:`ZvtSimulator`, not in the link: a memory link cannot be re-laid (a ``MemoryAttachment``
starts once), so reconnect with a new ``MemoryAttachment`` on the same simulator object.

Timing (``Timing``): on serial every byte costs 11 bit times at the line speed (8N2) in both
directions, the ECR's frames and ACKs as well as the PT's, because the attachments themselves
(memory, pty) deliver instantly; the terminal thinks ``latency`` before each answer and waits out
its modelled host dial-ups and reboots. Every such wait is counted in
:attr:`ZvtSimulator.busy_time`: the floor below which no ECR can finish the same session, which
the benchmark divides a check's wall time by.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque

import structlog

from posdiag.drivers.errors import TransportClosed, TransportError
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.zvt.connection import (
    Link,
    LinkAck,
    LinkNak,
    MessageReceived,
    Role,
    ZvtConnection,
)
from posdiag.drivers.zvt.framing import ACK, NEED_DATA
from posdiag.drivers.zvt.messages import (
    IntermediateStatus,
    MalformedMessage,
    Message,
    NegativeAck,
    PositiveAck,
    PrintLine,
    UnknownMessage,
)

from ..attach import FdTransport
from .device import NOT_SUPPORTED, Reply, ZvtDeviceModel
from .state import TerminalState

log = structlog.get_logger(__name__)

POLL = 0.1
MAX_REPEATS = 2
BABBLE = b"\xfe\x00?ZVT\xff\x13\x37"
POWER_UP = 5.0
"""Seconds (scaled by ``Timing.scale``) the terminal takes to boot after a power cut."""
ENDLESS_STATUS = 0x17
"""The status an ``endless_status`` terminal repeats: "please wait" (dialling its host)."""
ENDLESS_INTERVAL = 1.0
COMMAND_LOG_SIZE = 256
"""Commands the simulator remembers (a long-running simulator must not grow without bound)."""
"""Seconds (scaled) between two messages of an endless sequence: well within any T4."""


class _LinkLost(Exception):
    """The ECR stopped answering or the transport closed; abandon the running sequence."""


class _PowerLost(Exception):
    """The terminal lost power mid-command (the ``power_loss_at`` fault); end the session."""


class ZvtSimulator:
    """A simulated ZVT payment terminal, attachable to any transport.

    Args:
        state: the terminal's state (shared by every connection, as a real unit's memory is).
        link: serial framing or TCP.
        ack_timeout: T2 on the PT side, seconds to wait for the ECR's ACK.
        answer_timeout: seconds to wait for the ECR's ``80 00 00`` while the PT is master.
    """

    def __init__(
        self,
        state: TerminalState,
        link: Link = Link.SERIAL,
        *,
        ack_timeout: float = 5.0,
        answer_timeout: float = 5.0,
    ) -> None:
        self.model = ZvtDeviceModel(state)
        self.link = link
        self.ack_timeout = ack_timeout
        self.answer_timeout = answer_timeout
        self.commands_received = 0
        self.command_log: deque[str] = deque(maxlen=COMMAND_LOG_SIZE)
        """The last commands' class and instruction (``"06 01"``), oldest first: what an ECR
        asked, for tests that pin how much a check costs the line."""
        self.bytes_sent = 0
        self.bytes_received = 0
        self._busy_s = 0.0
        self._busy_lock = threading.Lock()

    @property
    def state(self) -> TerminalState:
        """The live terminal state."""
        return self.model.state

    @property
    def busy_time(self) -> float:
        """Seconds the wire and the terminal were necessarily busy since the last reset.

        The sum of every delay the simulator modelled (scaled by ``Timing.scale``): line time of
        the bytes it sent and received on serial (11 bit times a byte at ``Timing.baud``), its
        latency before each answer, the host dial-ups and reboots of its replies, and injected
        delays. A ZVT session is strictly one message at a time, so no ECR can finish the same
        session faster: this is the protocol floor a check's wall time is measured against.
        """
        with self._busy_lock:
            return self._busy_s

    def reset_busy_time(self) -> None:
        """Start counting busy time and bytes afresh (before the session to be measured)."""
        with self._busy_lock:
            self._busy_s = 0.0
            self.bytes_sent = self.bytes_received = 0

    def _account(self, seconds: float = 0.0, *, sent: int = 0, received: int = 0) -> None:
        with self._busy_lock:
            self._busy_s += seconds
            self.bytes_sent += sent
            self.bytes_received += received

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        """Serve one connection until it closes or ``stop`` is set."""
        _Session(self, transport, stop).run()


class _Session:
    """One connection's protocol state."""

    def __init__(self, sim: ZvtSimulator, transport: Transport, stop: threading.Event) -> None:
        self.sim = sim
        self.transport = transport
        self.stop = stop
        self.conn = ZvtConnection(Role.PT, sim.link)
        self.pending: deque[MessageReceived] = deque()
        self.last_command: bytes | None = None

    @property
    def state(self) -> TerminalState:
        return self.sim.state

    @property
    def serial(self) -> bool:
        return self.sim.link is Link.SERIAL

    # --- wire -----------------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Wait a modelled delay; it counts towards the simulator's busy time."""
        if seconds > 0:
            self.sim._account(seconds)
            self.stop.wait(seconds)

    def _write(self, data: bytes) -> None:
        self.sim._account(sent=len(data))
        self.transport.write(data)

    def _write_acks(self) -> None:
        """Send the immediate ACK/NAK the codec queued, unless a fault eats or delays it."""
        out = self.conn.data_to_send()
        if not out:
            return
        faults = self.state.faults
        if out == bytes([ACK]) and faults.drop_ack > 0:
            faults.drop_ack -= 1
            log.debug("sim.zvt.fault", fault="drop_ack")
            return
        if faults.ack_delay:
            self._sleep(faults.ack_delay)
        if self.serial:
            self._sleep(self.state.timing.line_time(len(out)))
        self._write(out)

    def _write_frame(self, wire: bytes) -> None:
        faults = self.state.faults
        timing = self.state.timing
        if faults.garbage:
            self._write(faults.garbage)
        if self.serial:
            self._sleep(timing.line_time(len(wire)))
            if faults.corrupt_crc > 0:
                faults.corrupt_crc -= 1
                wire = wire[:-1] + bytes([wire[-1] ^ 0xFF])
                log.debug("sim.zvt.fault", fault="corrupt_crc")
        if faults.stall_mid_frame > 0 and len(wire) > 4:
            half = len(wire) // 2
            self._write(wire[:half])
            stall, faults.stall_mid_frame = faults.stall_mid_frame, 0.0
            log.debug("sim.zvt.fault", fault="stall_mid_frame", seconds=stall)
            self._sleep(stall)
            self._write(wire[half:])
        elif faults.split_writes:
            for i in range(0, len(wire), 3):
                self._write(wire[i : i + 3])
        else:
            self._write(wire)

    def _next(self, timeout: float) -> object | None:
        """The next codec event within ``timeout`` seconds, or None."""
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            event = self.conn.next_event()
            self._write_acks()
            if event is not NEED_DATA:
                return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            data = self.transport.read(4096, min(POLL, remaining))
            if data:
                self.sim._account(received=len(data))
                if self.serial:
                    # The ECR's bytes took their line time to arrive; the link delivered them
                    # at once, so the last of them is "on the wire" for that long yet.
                    self._sleep(self.state.timing.line_time(len(data)))
                self.conn.receive_data(data)
            elif self.conn.frame_in_progress and self.serial:
                # T1 on the PT side: a stalled frame is dropped and NAKed.
                self.conn.inter_byte_timeout()
                self._write_acks()
        return None

    def _send(self, message: Message) -> None:
        """Send one message and, on serial, wait for the ECR's ACK with up to two repeats."""
        self.conn.send(message)
        wire = self.conn.data_to_send()
        self._write_frame(wire)
        if not self.serial:
            return
        for attempt in range(MAX_REPEATS + 1):
            deadline = time.monotonic() + self.sim.ack_timeout
            while True:
                event = self._next(max(0.0, deadline - time.monotonic()))
                if event is None or isinstance(event, LinkNak):
                    break
                if isinstance(event, LinkAck):
                    return
                if isinstance(event, MessageReceived):
                    if self.serial and event.apdu.encode() == self.last_command:
                        # The ECR repeated its command because our ACK was lost (it was ACKed
                        # again just now); that is no answer to our frame, so keep waiting.
                        continue
                    self.pending.append(event)  # the ECR answered: it has our frame
                    return
            if self.stop.is_set():
                raise _LinkLost("stopped")
            if attempt < MAX_REPEATS:
                log.debug("sim.zvt.repeat", message=message.NAME, attempt=attempt + 1)
                self._write_frame(wire)
        raise _LinkLost(f"ECR did not acknowledge {message.NAME}")

    def _receive(self, timeout: float) -> MessageReceived | None:
        if self.pending:
            return self.pending.popleft()
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(max(0.0, deadline - time.monotonic()))
            if event is None:
                return None
            if isinstance(event, MessageReceived):
                return event

    # --- behaviour ------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                faults = self.state.faults
                if faults.silent:
                    self.transport.read(4096, POLL)
                    continue
                received = self._receive(POLL)
                if received is None:
                    continue
                if faults.babble:
                    self._write(BABBLE)
                    continue
                self.sim.commands_received += 1
                if (
                    faults.disconnect_after is not None
                    and self.sim.commands_received > faults.disconnect_after
                ):
                    log.debug("sim.zvt.fault", fault="disconnect")
                    disconnect = getattr(self.transport, "disconnect", self.transport.close)
                    disconnect()
                    return
                self.last_command = received.apdu.encode()
                self.sim.command_log.append(self.last_command[:2].hex(" "))
                self._handle(received.message)
        except _LinkLost as exc:
            log.debug("sim.zvt.link_lost", reason=str(exc))
        except _PowerLost as exc:
            self._power_cut(str(exc))
        except (TransportClosed, TransportError):
            log.debug("sim.zvt.closed")

    def _power_cut(self, command: str) -> None:
        """Drop the link as an unpowered terminal does, then boot before serving again.

        A socket or memory link is dropped (the ECR reads TransportClosed) and the attachment
        serves the next connection from the same state. A pty is not closed: that would end
        its attachment for good, and a serial line does not vanish when the PT loses power;
        the ECR just hears nothing until its timer expires. Whatever it sent meanwhile is lost.
        """
        log.debug("sim.zvt.fault", fault="power_loss", command=command)
        if not isinstance(self.transport, FdTransport):
            disconnect = getattr(self.transport, "disconnect", self.transport.close)
            disconnect()
        self._sleep(self.state.timing.delay(POWER_UP))
        if isinstance(self.transport, FdTransport):
            with contextlib.suppress(TransportError):
                self.transport.reset_input()

    def _handle(self, message: Message) -> None:
        if isinstance(message, PositiveAck | NegativeAck):
            return  # a stray acknowledgement while idle needs no answer
        if isinstance(message, MalformedMessage | UnknownMessage):
            reply = Reply(NegativeAck(NOT_SUPPORTED))
        else:
            reply = self.sim.model.handle(message)
        timing = self.state.timing
        self._sleep(timing.delay(timing.latency) + self.state.faults.answer_delay)
        log.debug("sim.zvt.command", command=message.NAME, answer=reply.first.NAME)
        # The effect takes hold before the PT sends its last message: once the ECR sees the
        # command end (80 00 for Log-Off, else the completion) the new state must be visible.
        if not reply.sequence:
            self._apply(reply, message.NAME)
        self._send(reply.first)
        faults = self.state.faults
        if reply.sequence and (faults.endless_status or faults.flood_print):
            self._endless(message.NAME)
            return
        for index, (delay, follow_up) in enumerate(reply.sequence):
            self._sleep(timing.delay(delay))
            if index == len(reply.sequence) - 1:
                self._apply(reply, message.NAME)
            self._send(follow_up)
            answer = self._receive(self.sim.answer_timeout)
            if answer is None:
                raise _LinkLost(f"ECR did not answer {follow_up.NAME}")
        if reply.restart:
            reboot = timing.delay(1.0)
            self.last_command = None
            if reboot > 0:
                # Bytes that arrive while the terminal reboots are lost, as on a real unit (the
                # ECR repeats on serial after T2). A zero-time reboot (time_scale 0) loses none,
                # so fast tests do not race the restart.
                self._sleep(reboot)
                self.conn = ZvtConnection(Role.PT, self.sim.link)

    def _endless(self, command: str) -> None:
        """``endless_status``/``flood_print``: stay master forever, never completing.

        Each message is answered by the ECR as usual; the sequence ends only when the ECR stops
        answering (it gave up and dropped the line) or the simulator stops.
        """
        faults = self.state.faults
        log.debug("sim.zvt.fault", fault="endless", command=command)
        count = 0
        while not self.stop.is_set():
            count += 1
            follow_up: Message = (
                IntermediateStatus(ENDLESS_STATUS)
                if faults.endless_status
                else PrintLine(0x00, f"Zeile {count:>10} ... und so weiter")
            )
            self._sleep(self.state.timing.delay(ENDLESS_INTERVAL))
            self._send(follow_up)
            if self._receive(self.sim.answer_timeout) is None:
                raise _LinkLost(f"ECR did not answer {follow_up.NAME}")
        raise _LinkLost("stopped")

    def _apply(self, reply: Reply, command: str) -> None:
        """Let the command's effect take hold, or, on a power cut, only its first part.

        Raises:
            _PowerLost: the reply carries the ``power_loss_at`` fault.
        """
        with self.sim.model.lock:
            if reply.power_loss:
                if reply.partial is not None:
                    reply.partial()
                raise _PowerLost(command)
            if reply.effect is not None:
                reply.effect()
