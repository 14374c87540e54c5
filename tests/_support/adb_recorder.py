"""A raw ADB client that records every packet on the wire, built on posdiag's sans-IO codec.

Why: the differential tests must compare what a client *observes* from the real adbd and from
the simulator at the packet level (OPEN/OKAY/WRTE/CLSE per stream, who closes first, whether a
close is answered), which no high-level client shows. The session speaks through
``AdbConnection`` in the HOST role (so it is exactly posdiag's framing, checks and flow control)
and, beside it, splits the same bytes in both directions into packets for the transcript; the
codec's own events give the decoded stream data.

Normalisations of the transcript, each because a client cannot and must not rely on it:

* stream ids are renamed ``h1, h2…`` (ours, by order of OPEN) and ``d1, d2…`` (the device's, by
  first appearance): their numeric values are the device's allocator's business;
* consecutive device WRTEs on a stream become one ``WRTE*`` entry (the bytes are compared
  decoded, separately): how a
  device cuts its output into packets depends on pipe reads and scheduling (adbd reads the
  child's pipe as data comes), and ADB promises only the byte order;
* our own OKAYs acknowledging the device's WRTEs are left out: the codec sends them itself, they
  are not an observation of the device.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from posdiag.drivers.adb.codec import (
    AdbConnection,
    Connected,
    Role,
    StreamClosed,
    StreamData,
    StreamOpened,
    StreamRefused,
)
from posdiag.drivers.adb.protocol import HEADER_SIZE, HEADER_STRUCT, NEED_DATA, command_name
from posdiag.drivers.adb.shell import ShellDecoder, ShellId

HOST_FEATURES = ("shell_v2", "cmd")


@dataclass(frozen=True)
class WirePacket:
    """One packet as it crossed the wire: ``>`` host to device, ``<`` device to host."""

    direction: str
    command: str
    arg0: int
    arg1: int
    data: bytes
    at: float


class _Splitter:
    """Cuts one direction's byte stream into packets (headers are trusted only for length)."""

    def __init__(self, direction: str, sink: list[WirePacket]) -> None:
        self.direction = direction
        self.sink = sink
        self.buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= HEADER_SIZE:
            command, arg0, arg1, length, _, _ = HEADER_STRUCT.unpack_from(self.buffer)
            if len(self.buffer) < HEADER_SIZE + length:
                return
            payload = bytes(self.buffer[HEADER_SIZE : HEADER_SIZE + length])
            del self.buffer[: HEADER_SIZE + length]
            name = command_name(command)
            self.sink.append(
                WirePacket(self.direction, name, arg0, arg1, payload, time.monotonic())
            )


@dataclass
class StreamLog:
    """What happened to one stream we opened."""

    service: str
    opened: bool = False
    refused: bool = False
    closed_by_device: bool = False
    data: bytearray = field(default_factory=bytearray)


class RawSession:
    """One TCP connection to a device, driven packet by packet.

    Args:
        host, port: where the device (or the relay to it) listens.
        timeout: default seconds for each wait.
    """

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(0.05)
        self.conn = AdbConnection(Role.HOST, features=HOST_FEATURES)
        self.packets: list[WirePacket] = []
        self._out = _Splitter(">", self.packets)
        self._in = _Splitter("<", self.packets)
        self.streams: dict[int, StreamLog] = {}
        self.peer: Connected | None = None
        self.eof = False
        self.error: str | None = None

    # -------------------------------------------------------------- sending

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.eof:
            self._out.feed(data)
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self.eof, self.error = True, f"send failed: {exc}"

    def connect(self) -> Connected:
        """CNXN both ways; the device's announcement."""
        self.conn.send_connect()
        self._flush()
        self.pump(lambda: self.peer is not None)
        if self.peer is None:
            raise AssertionError(f"no CNXN from the device: {self.error or 'timeout'}")
        return self.peer

    def open(self, service: str) -> int:
        """OPEN a service; its local id (wait with :meth:`pump` for the answer)."""
        local_id = self.conn.open_stream(service)
        self.streams[local_id] = StreamLog(service)
        self._flush()
        return local_id

    def write(self, local_id: int, data: bytes) -> None:
        """Queue data on a stream (the codec splits it at max_payload and paces it)."""
        self.conn.write(local_id, data)
        self._flush()

    def close(self, local_id: int) -> None:
        """Send our CLSE for a stream."""
        self.conn.close_stream(local_id)
        self._flush()

    # -------------------------------------------------------------- receiving

    def pump(self, until: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read and handle packets until ``until()`` holds, EOF or the timeout; whether it held."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not until():
            if self.eof or time.monotonic() > deadline:
                return until()
            try:
                data = self.sock.recv(262144)
            except TimeoutError:
                continue
            except OSError as exc:
                self.eof, self.error = True, f"receive failed: {exc}"
                continue
            if not data:
                self.eof = True
                continue
            self._in.feed(data)
            try:
                self.conn.receive_data(data)
                self._drain()
            except Exception as exc:  # a protocol error is an observation too
                self.eof, self.error = True, f"{type(exc).__name__}: {exc}"
        return True

    def _drain(self) -> None:
        while (event := self.conn.next_event()) is not NEED_DATA:
            if isinstance(event, Connected):
                self.peer = event
            elif isinstance(event, StreamOpened):
                self.streams[event.local_id].opened = True
            elif isinstance(event, StreamRefused):
                self.streams[event.local_id].refused = True
            elif isinstance(event, StreamData):
                self.streams[event.local_id].data += event.data
            elif isinstance(event, StreamClosed):
                self.streams[event.local_id].closed_by_device = True
        self._flush()

    def settle(self, seconds: float = 0.3) -> None:
        """Keep reading for a while: catches packets that would come late (an answered CLSE)."""
        self.pump(lambda: False, timeout=seconds)

    def wait_answered(self, local_id: int) -> bool:
        """Wait until an OPEN is accepted or refused."""
        log = self.streams[local_id]
        return self.pump(lambda: log.opened or log.refused)

    def wait_device_close(self, local_id: int, timeout: float | None = None) -> bool:
        """Wait for the device's CLSE on a stream (also after our own CLSE, on the wire)."""
        return self.pump(lambda: self._device_closed(local_id), timeout)

    def _device_closed(self, local_id: int) -> bool:
        return any(
            p.direction == "<" and p.command == "CLSE" and p.arg1 == local_id for p in self.packets
        )

    def close_connection(self) -> None:
        """Close the socket."""
        self.sock.close()

    # -------------------------------------------------------------- observations

    def stream_transcript(self, local_id: int) -> list[str]:
        """One stream's packets in order up to its first CLSE, then how the close went.

        Normalised as the module docstring says. After the first CLSE the stream is gone on
        the side that sent it; what follows are answers to packets that crossed it (adbd
        answers an OKAY for a stream it already closed with CLSE), whose number depends on
        whether our acknowledgement left before the device's CLSE arrived: timing, not
        behaviour. So the tail is reduced to ``closed first by …`` and, when we closed first,
        whether the device answered our CLSE with its own.
        """
        device_names: dict[int, str] = {}
        ours_name = f"h{list(self.streams).index(local_id) + 1}"
        lines: list[str] = []
        first_close: str | None = None
        answered = False
        for p in self.packets:
            ours = p.arg0 if p.direction == ">" else p.arg1
            if p.command in ("CNXN", "AUTH") or ours != local_id:
                continue
            if first_close is not None:
                if first_close == ">" and p.direction == "<" and p.command == "CLSE":
                    answered = True
                continue
            if p.direction == ">" and p.command == "OKAY":
                continue  # our acknowledgement of a device WRTE (a host accepts no OPEN)
            theirs = p.arg1 if p.direction == ">" else p.arg0
            if theirs and theirs not in device_names:
                device_names[theirs] = f"d{len(device_names) + 1}"
            ids = f"{ours_name},{device_names.get(theirs, '0')}"
            if p.command == "OPEN":
                lines.append(
                    f"> OPEN({ours_name}) {p.data.rstrip(bytes(1)).decode(errors='replace')}"
                )
            elif p.command == "WRTE" and p.direction == "<":
                # No byte count: within shell v2 it includes one 5-byte header per packet, and
                # packets follow the child's writes (cat writes its error message in pieces).
                if not (lines and lines[-1] == f"< WRTE*({ids})"):
                    lines.append(f"< WRTE*({ids})")
            elif p.command == "WRTE":
                lines.append(f"> WRTE({ids}) {len(p.data)}")
            else:
                lines.append(f"{p.direction} {p.command}({ids})")
                if p.command == "CLSE":
                    first_close = p.direction
        if first_close == "<":
            lines.append("closed first by the device")
        elif first_close == ">":
            lines.append(
                "closed first by the host; "
                + ("the device answered with CLSE" if answered else "no CLSE answer")
            )
        return lines

    def max_device_write(self) -> int:
        """The largest WRTE payload the device sent."""
        return max(
            (len(p.data) for p in self.packets if p.direction == "<" and p.command == "WRTE"),
            default=0,
        )

    def transcript(self) -> str:
        """Every packet, for a failure message (payloads abbreviated)."""
        lines = []
        start = self.packets[0].at if self.packets else 0.0
        for p in self.packets:
            data = p.data[:60]
            more = "…" if len(p.data) > 60 else ""
            lines.append(
                f"{p.at - start:7.3f} {p.direction} {p.command} {p.arg0:#x} {p.arg1:#x} "
                f"{len(p.data)}B {data!r}{more}"
            )
        if self.eof:
            lines.append(f"        connection ended{': ' + self.error if self.error else ''}")
        return "\n".join(lines)


def decode_shell_v2(data: bytes) -> list[tuple[str, bytes]]:
    """Shell protocol v2 packets as (kind, bytes), consecutive stdout/stderr runs merged.

    Merging is legitimate for the same reason as for WRTEs: the split of a child's output
    into packets follows its pipe reads.
    """
    decoder = ShellDecoder()
    decoder.receive_data(data)
    packets: list[tuple[str, bytes]] = []
    while (packet := decoder.next_packet()) is not NEED_DATA:
        kind = ShellId(packet.id).name.lower()
        body = packet.data
        if packets and packets[-1][0] == kind and kind in ("stdout", "stderr"):
            packets[-1] = (kind, packets[-1][1] + body)
        else:
            packets.append((kind, body))
    if decoder.buffered:
        packets.append(("truncated", bytes(decoder.buffered)))
    return packets


_SYNC_HEADER = struct.Struct("<4sI")


def decode_sync(data: bytes, requests: list[str]) -> list[tuple[str, object]]:
    """Sync responses as (id, fields), given the requests they answer in order.

    Tolerant: an unexpected id ends the decoding with ``("?", rest)`` instead of raising, so a
    device that answers wrongly is recorded, not hidden behind a decoder exception.
    """
    out: list[tuple[str, object]] = []
    pending = [r for r in requests if r != "QUIT"]
    pos = 0
    while pending and pos + 8 <= len(data):
        raw_id, length = _SYNC_HEADER.unpack_from(data, pos)
        rid = raw_id.decode("latin-1")
        current = pending[0]
        if rid == "FAIL":
            out.append(("FAIL", data[pos + 8 : pos + 8 + length].decode(errors="replace")))
            pos += 8 + length
            pending.pop(0)
        elif rid == "STAT" and current == "STAT":
            mode, size, mtime = struct.unpack_from("<3I", data, pos + 4)
            out.append(("STAT", (mode, size, mtime)))
            pos += 16
            pending.pop(0)
        elif rid == "DENT" and current == "LIST":
            mode, size, mtime, namelen = struct.unpack_from("<4I", data, pos + 4)
            name = data[pos + 20 : pos + 20 + namelen].decode(errors="replace")
            out.append(("DENT", (name, mode, size, mtime)))
            pos += 20 + namelen
        elif rid == "DONE" and current == "LIST":
            out.append(("DONE", None))
            pos += 20
            pending.pop(0)
        elif rid == "DATA" and current == "RECV":
            chunk = data[pos + 8 : pos + 8 + length]
            if out and out[-1][0] == "DATA":
                previous = out[-1][1]
                assert isinstance(previous, bytes)
                out[-1] = ("DATA", previous + chunk)
            else:
                out.append(("DATA", chunk))
            pos += 8 + length
        elif rid in ("DONE", "OKAY") and current in ("RECV", "SEND"):
            out.append((rid, None))
            pos += 8
            pending.pop(0)
        else:
            out.append(("?", data[pos : pos + 64]))
            return out
    if pos < len(data):
        out.append(("trailing", data[pos : pos + 64]))
    return out
