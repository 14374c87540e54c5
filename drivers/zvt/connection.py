"""The ZVT connection state machine, sans-IO, in the h11 shape, for both roles.

Feed received bytes with ``receive_data()``, pull events with ``next_event()`` until
``NEED_DATA``, queue messages with ``send()`` and write whatever ``data_to_send()`` returns.
No I/O and no clocks: timers (T1–T4) and retries belong to the driver or simulator that owns the
connection, which calls ``inter_byte_timeout()`` when T1 expires.

On the serial link every received frame is answered at once (PA00P016 §3.2): a good frame queues
ACK ``06`` before the message is even decoded, a bad one queues NAK ``15``. On TCP there are no
link acknowledgements; the application-level ``80 00 00`` takes their place.

Print text is decoded in :attr:`ZvtConnection.charset`, the peer terminal's character set
(CP437 unless the owner sets another; see :mod:`.charset`): a parameter, not a discovery, so
the connection stays sans-IO and the driver decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .apdu import Apdu, decode_apdu
from .charset import DEFAULT_CHARSET, check_charset
from .errors import ZvtDecodeError
from .framing import (
    ACK,
    NAK,
    NEED_DATA,
    AckByte,
    BadFrame,
    Frame,
    Garbage,
    NakByte,
    NeedData,
    SerialFramer,
    TcpFramer,
    encode_serial_frame,
)
from .messages import MalformedMessage, Message, decode_message


class Role(Enum):
    """Which end of the link this connection is."""

    ECR = "ecr"  # the cash register: posdiag's drivers
    PT = "pt"  # the payment terminal: posdiag's simulators


class Link(Enum):
    """The transport framing."""

    SERIAL = "serial"
    TCP = "tcp"


@dataclass(frozen=True)
class MessageReceived:
    """A complete message from the peer."""

    message: Message
    apdu: Apdu


@dataclass(frozen=True)
class LinkAck:
    """Serial: the peer acknowledged our last frame."""


@dataclass(frozen=True)
class LinkNak:
    """Serial: the peer rejected our last frame."""


@dataclass(frozen=True)
class FrameRejected:
    """Serial: a corrupt frame arrived and was answered with NAK."""

    reason: str
    raw: bytes


@dataclass(frozen=True)
class GarbageReceived:
    """Bytes outside any frame were skipped."""

    data: bytes


Event = MessageReceived | LinkAck | LinkNak | FrameRejected | GarbageReceived


class ZvtConnection:
    """One end of a ZVT link."""

    def __init__(self, role: Role, link: Link, *, charset: str = DEFAULT_CHARSET) -> None:
        self.role = role
        self.link = link
        self.charset = check_charset(charset)
        self._framer: SerialFramer | TcpFramer = (
            SerialFramer() if link is Link.SERIAL else TcpFramer()
        )
        self._outgoing = bytearray()
        self.last_sent: bytes = b""

    @property
    def frame_in_progress(self) -> bool:
        """Whether a partial frame is buffered (T1 running on serial)."""
        return self._framer.in_frame

    def send(self, message: Message | Apdu) -> None:
        """Queue a message; ``last_sent`` keeps its wire bytes for a repeat after NAK/T2."""
        apdu = message if isinstance(message, Apdu) else message.to_apdu()
        raw = apdu.encode()
        wire = encode_serial_frame(raw) if self.link is Link.SERIAL else raw
        self.last_sent = wire
        self._outgoing += wire

    def resend(self) -> None:
        """Queue the last frame again (after NAK or T2, at most twice; the driver counts)."""
        self._outgoing += self.last_sent

    def data_to_send(self) -> bytes:
        """Take the bytes queued for the wire."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the transport."""
        self._framer.receive_data(data)

    def inter_byte_timeout(self) -> bool:
        """T1 expired: drop the partial frame and, on serial, answer NAK.

        Returns:
            True when a partial frame was dropped.
        """
        dropped = self._framer.discard_partial()
        if dropped and self.link is Link.SERIAL:
            self._outgoing.append(NAK)
        return bool(dropped)

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA when more bytes are needed."""
        event = self._framer.next_event()
        if isinstance(event, NeedData):
            return NEED_DATA
        if isinstance(event, AckByte):
            return LinkAck()
        if isinstance(event, NakByte):
            return LinkNak()
        if isinstance(event, Garbage):
            return GarbageReceived(event.data)
        if isinstance(event, BadFrame):
            self._outgoing.append(NAK)
            return FrameRejected(event.reason, event.raw)
        assert isinstance(event, Frame)
        if self.link is Link.SERIAL:
            self._outgoing.append(ACK)
        try:
            apdu = decode_apdu(event.apdu)
        except ZvtDecodeError as exc:  # unreachable via the framers, kept for safety
            bogus = Apdu(0, 0, event.apdu)
            return MessageReceived(MalformedMessage(bogus, str(exc)), bogus)
        return MessageReceived(decode_message(apdu, charset=self.charset), apdu)
