"""ZVT link-layer framers, sans-IO: bytes in, frame events out; no clocks, no sockets.

Serial (PA00P016 §3)::

    DLE STX <APDU with every 10 doubled> DLE ETX <CRC lo> <CRC hi>
    10  02   ...                         10  03   CRC-16/KERMIT(APDU + ETX)

    and the unframed single bytes ACK 06 / NAK 15 that acknowledge each frame.

TCP (PA00P016 §4): bare APDUs back to back, each delimited by its own length field, arriving in
arbitrary fragments.

The serial framer is a state machine (DLE DLE → data, DLE ETX → two raw CRC bytes), because
checking "ETX three bytes from the end" misreads stuffed data. Bytes outside a frame that are
neither ACK, NAK nor DLE STX are reported as garbage and skipped, so a noisy line resynchronises
on the next DLE STX.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from .apdu import apdu_total_length
from .crc import crc16_kermit

DLE, STX, ETX, ACK, NAK = 0x10, 0x02, 0x03, 0x06, 0x15
MAX_FRAME = 5 + 0xFFFF


@dataclass(frozen=True)
class Frame:
    """A complete APDU received (CRC checked on serial)."""

    apdu: bytes


@dataclass(frozen=True)
class AckByte:
    """The peer acknowledged our last frame."""


@dataclass(frozen=True)
class NakByte:
    """The peer rejected our last frame; it must be repeated."""


@dataclass(frozen=True)
class BadFrame:
    """A frame that failed (bad CRC, bad DLE sequence, length mismatch); answered with NAK."""

    reason: str
    raw: bytes


@dataclass(frozen=True)
class Garbage:
    """Bytes outside any frame, skipped."""

    data: bytes


class NeedData:
    """Sentinel: nothing complete yet; feed more bytes."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()
LinkEvent = Frame | AckByte | NakByte | BadFrame | Garbage


def stuff(apdu: bytes) -> bytes:
    """Double every DLE in the APDU."""
    return apdu.replace(bytes([DLE]), bytes([DLE, DLE]))


def encode_serial_frame(apdu: bytes) -> bytes:
    """Frame an APDU for the serial link."""
    crc = crc16_kermit(apdu + bytes([ETX]))
    return bytes([DLE, STX]) + stuff(apdu) + bytes([DLE, ETX]) + crc.to_bytes(2, "little")


class _State(Enum):
    IDLE = auto()
    START = auto()  # DLE seen outside a frame
    DATA = auto()
    DATA_DLE = auto()
    CRC = auto()


class SerialFramer:
    """Incremental decoder of the serial link layer."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = _State.IDLE
        self._payload = bytearray()
        self._raw = bytearray()
        self._crc = bytearray()
        self._garbage = bytearray()

    @property
    def in_frame(self) -> bool:
        """Whether a frame has started and is not complete (the T1 timer is running)."""
        return self._state not in (_State.IDLE,)

    def receive_data(self, data: bytes) -> None:
        """Queue received bytes."""
        self._buffer += data

    def discard_partial(self) -> bytes:
        """Drop a half-received frame (T1 expired); returns what was dropped."""
        dropped = bytes(self._raw)
        self._reset()
        return dropped

    def _reset(self) -> None:
        self._state = _State.IDLE
        self._payload.clear()
        self._raw.clear()
        self._crc.clear()

    def _flush_garbage(self) -> Garbage | None:
        if not self._garbage:
            return None
        event = Garbage(bytes(self._garbage))
        self._garbage.clear()
        return event

    def next_event(self) -> LinkEvent | NeedData:
        """Return the next complete event, or NEED_DATA."""
        while self._buffer:
            byte = self._buffer.pop(0)
            state = self._state
            if state is _State.IDLE:
                if byte in (ACK, NAK, DLE):
                    garbage = self._flush_garbage()
                    if byte == DLE:
                        self._state = _State.START
                        self._raw.append(byte)
                    else:
                        # Report garbage first so the ACK/NAK keeps its place in the stream.
                        if garbage is not None:
                            self._buffer.insert(0, byte)
                            return garbage
                        return AckByte() if byte == ACK else NakByte()
                    if garbage is not None:
                        return garbage
                else:
                    self._garbage.append(byte)
            elif state is _State.START:
                if byte == STX:
                    self._raw.append(byte)
                    self._state = _State.DATA
                else:
                    self._garbage += self._raw
                    self._raw.clear()
                    self._state = _State.IDLE
                    self._buffer.insert(0, byte)
            elif state is _State.DATA:
                self._raw.append(byte)
                if byte == DLE:
                    self._state = _State.DATA_DLE
                else:
                    self._payload.append(byte)
                    if len(self._payload) > MAX_FRAME:
                        raw = bytes(self._raw)
                        self._reset()
                        return BadFrame("frame longer than any APDU", raw)
            elif state is _State.DATA_DLE:
                self._raw.append(byte)
                if byte == DLE:
                    self._payload.append(DLE)
                    self._state = _State.DATA
                elif byte == ETX:
                    self._state = _State.CRC
                else:
                    raw = bytes(self._raw)
                    self._reset()
                    if byte == STX:  # a new frame began inside the old one: resync on it
                        raw = raw[:-2]  # that DLE STX belongs to the new frame, not the bad one
                        self._raw += bytes([DLE, STX])
                        self._state = _State.DATA
                    return BadFrame(f"DLE followed by {byte:02x} inside a frame", raw)
            else:  # CRC
                self._raw.append(byte)
                self._crc.append(byte)
                if len(self._crc) == 2:
                    return self._finish()
        garbage = self._flush_garbage()
        return garbage if garbage is not None else NEED_DATA

    def _finish(self) -> Frame | BadFrame:
        payload, raw, received = bytes(self._payload), bytes(self._raw), bytes(self._crc)
        self._reset()
        expected = crc16_kermit(payload + bytes([ETX])).to_bytes(2, "little")
        if received != expected:
            return BadFrame(f"CRC {received.hex()} != {expected.hex()}", raw)
        total = apdu_total_length(payload)
        if total is None or total != len(payload):
            return BadFrame(
                f"APDU length field does not match the {len(payload)} bytes framed", raw
            )
        return Frame(payload)


class TcpFramer:
    """Incremental splitter of back-to-back APDUs on a TCP stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def in_frame(self) -> bool:
        """Whether part of an APDU is buffered."""
        return bool(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Queue received bytes."""
        self._buffer += data

    def discard_partial(self) -> bytes:
        """Drop buffered bytes (used when T3 expires and the command counts as aborted)."""
        dropped = bytes(self._buffer)
        self._buffer.clear()
        return dropped

    def next_event(self) -> Frame | NeedData:
        """Return the next complete APDU, or NEED_DATA."""
        total = apdu_total_length(self._buffer)
        if total is None or len(self._buffer) < total:
            return NEED_DATA
        apdu = bytes(self._buffer[:total])
        del self._buffer[:total]
        return Frame(apdu)
