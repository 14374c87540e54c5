"""The ADB shell protocol v2: stdin/stdout/stderr and the exit code multiplexed on one stream.

Used when the device advertises the ``shell_v2`` feature; without it ``shell:<cmd>`` gives raw
output and the exit code is lost. Wire layout of each packet (``adb:shell_protocol.h``)::

    offset size field
    0      1    id       0 stdin, 1 stdout, 2 stderr, 3 exit, 4 close-stdin, 5 window-size,
                         255 invalid
    1      4    length   uint32 little-endian, bytes of data that follow
    5      n    data     for exit: exactly 1 byte, the exit code (0x80|signal if killed)

Packets are independent of ADB's WRTE boundaries: one WRTE may carry several packets or part of
one, so the decoder is incremental. The stock client sends close-stdin right after the stream
opens when it has no input to give.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .protocol import NEED_DATA, AdbProtocolError, NeedData


class ShellProtocolError(AdbProtocolError):
    """A shell v2 packet is malformed (oversized, or an exit packet without exactly one byte)."""


class ShellId(IntEnum):
    """Packet ids of the shell protocol."""

    STDIN = 0
    STDOUT = 1
    STDERR = 2
    EXIT = 3
    CLOSE_STDIN = 4
    WINDOW_SIZE = 5
    INVALID = 255


SHELL_HEADER_SIZE = 5
MAX_SHELL_PACKET = 1024 * 1024
"""Largest packet the decoder accepts; adbd's are far smaller, so more means lost sync."""
SHELL_CHUNK = 4096
"""Encoders split data into packets of at most this size, which any adbd buffer accepts."""

_HEADER = struct.Struct("<BI")


@dataclass(frozen=True)
class ShellPacket:
    """One shell v2 packet. ``id`` stays an int so unknown ids pass through to the caller."""

    id: int
    data: bytes = b""

    @property
    def exit_code(self) -> int | None:
        """The exit code if this is an exit packet, else None."""
        return self.data[0] if self.id == ShellId.EXIT else None


def shell_service(command: str, v2: bool) -> str:
    """The OPEN service string for running a command, exactly as the stock adb client builds it.

    ``shell,v2,TERM=xterm,raw:<cmd>`` when the device has ``shell_v2`` (exit codes come back),
    ``shell:<cmd>`` when not.

    Raises:
        ValueError: the command is empty; that would start an interactive PTY shell, which
            waits for input forever.
    """
    if not command.strip():
        raise ValueError("a shell command is required (no interactive shells)")
    return f"shell,v2,TERM=xterm,raw:{command}" if v2 else f"shell:{command}"


def encode_shell_packet(packet_id: int, data: bytes = b"") -> bytes:
    """One packet, unsplit.

    Raises:
        ValueError: the id is not a byte, or an exit packet does not carry exactly one byte.
    """
    if not 0 <= packet_id <= 0xFF:
        raise ValueError(f"shell packet id {packet_id} is not a byte")
    if packet_id == ShellId.EXIT and len(data) != 1:
        raise ValueError("an exit packet carries exactly one byte")
    return _HEADER.pack(packet_id, len(data)) + bytes(data)


def encode_shell_data(packet_id: int, data: bytes, *, chunk: int = SHELL_CHUNK) -> bytes:
    """Data for stdin, stdout or stderr, split into packets of at most ``chunk`` bytes.

    Empty data encodes to nothing: an empty stdin packet would mean nothing to the peer.
    """
    return b"".join(
        encode_shell_packet(packet_id, data[start : start + chunk])
        for start in range(0, len(data), chunk)
    )


def encode_stdin(data: bytes) -> bytes:
    """Host → device: input for the command."""
    return encode_shell_data(ShellId.STDIN, data)


def encode_close_stdin() -> bytes:
    """Host → device: no more input (the command sees EOF on stdin)."""
    return encode_shell_packet(ShellId.CLOSE_STDIN)


def encode_exit(code: int) -> bytes:
    """Device → host: the command ended with this exit code (0–255)."""
    if not 0 <= code <= 0xFF:
        raise ValueError(f"exit code {code} is not a byte")
    return encode_shell_packet(ShellId.EXIT, bytes([code]))


class ShellDecoder:
    """Incremental decoder of shell v2 packets, for either direction."""

    def __init__(self, *, max_length: int = MAX_SHELL_PACKET) -> None:
        self._buffer = bytearray()
        self._max_length = max_length

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a packet (non-zero at EOF means truncation)."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Queue bytes from the stream (the payloads of ``StreamData`` events)."""
        self._buffer += data

    def next_packet(self) -> ShellPacket | NeedData:
        """The next complete packet, or NEED_DATA.

        Raises:
            ShellProtocolError: the length exceeds ``max_length`` or an exit packet does not
                carry exactly one byte.
        """
        if len(self._buffer) < SHELL_HEADER_SIZE:
            return NEED_DATA
        packet_id, length = _HEADER.unpack_from(self._buffer)
        if length > self._max_length:
            raise ShellProtocolError(
                f"shell packet {packet_id} announces {length} bytes, more than "
                f"{self._max_length}: the stream is not shell protocol v2"
            )
        if packet_id == ShellId.EXIT and length != 1:
            raise ShellProtocolError(f"shell exit packet carries {length} bytes instead of 1")
        end = SHELL_HEADER_SIZE + length
        if len(self._buffer) < end:
            return NEED_DATA
        data = bytes(self._buffer[SHELL_HEADER_SIZE:end])
        del self._buffer[:end]
        return ShellPacket(packet_id, data)
