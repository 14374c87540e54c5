r"""The ADB connection state machine, sans-IO, in the h11 shape, for both roles.

Feed received bytes with ``receive_data()``, pull events with ``next_event()`` until
``NEED_DATA``, call the ``send_*``/stream methods, and write what ``data_to_send()`` (TCP) or
``transfers_to_send()`` (USB: header and payload as separate bulk transfers) returns. No I/O, no
clocks, no threads: timeouts, retries, key choice and the device's policy belong to the driver
or simulator that owns the connection.

Packet layout: see ``protocol.py``. What this module adds, with the AOSP rule behind each:

* Header checks on every packet (``transport.cpp`` check_header): magic, known command, length
  ≤ the negotiated maximum (CNXN/AUTH ≤ 4096 before negotiation, everything else ≤ our own
  maximum until then). Any failure raises ``AdbProtocolError`` and the connection is CLOSED:
  every later call raises too, because the peers' stream state can no longer agree.
* Negotiation on the peer's CNXN (``update_version``): ``protocol_version = min(peer, ours)``,
  ``max_payload = min(peer, ours)``; a peer below version 0x01000000 or with maxdata < 4096 is
  rejected.
* Checksums (``send_packet``): we write the byte sum until the negotiated version reaches
  0x01000001 and 0 afterwards, so our first CNXN always carries a real sum. We verify the sum
  while the negotiated version is below 0x01000001 and ignore data_check afterwards. Before
  negotiation a data_check of 0 is also accepted when we offered ≥ 0x01000001, because the peer
  may already have negotiated (adbd answers our CNXN with AUTH or CNXN carrying 0).
* Packets other than CNXN/AUTH/STLS received before the connection is online are ignored
  (protocol.txt: "Any messages received before a CONNECT message MUST be ignored").
* Streams: ``OPEN(local, 0, "service\0")`` → ``OKAY(remote, local)`` or ``CLSE(0, local)``.
  One WRTE in flight per stream: further writes queue until the peer's OKAY, and payloads
  longer than max_payload are split. Every WRTE received is acknowledged with OKAY at once.
* Closing, as AOSP ``sockets.cpp`` does it on both ends (host and adbd run the same code):

  - A graceful ``close_stream()`` sends its queued data one WRTE per OKAY and sends CLSE only
    once the last WRTE is acknowledged (adbd reads its service's EOF only after that OKAY), so
    a stream's packets are ``… WRTE, OKAY, CLSE``. ``abort=True`` sends CLSE at once.
  - A CLSE naming an established stream of ours that we have not closed yet is **answered
    with our own CLSE** (``local_socket_close`` shuts the remote socket down, which sends
    CLSE), in both roles, also when one of our WRTEs is still in flight (its queue is
    dropped). protocol.txt's "The recipient should not respond to a CLOSE" is not what adbd
    or the adb client do.
  - A CLSE answering ours (the stream is already gone) is the end of the stream and is not
    answered again; nothing waits for it either, because older devices never send it.
  - A CLSE with local-id 0 is a refused OPEN (not answered); on an established stream it also
    closes (old adbd bug, accepted by AOSP on the same transport).
  - OKAY naming a stream id we do not have (it crossed our CLSE, or our OPEN was abandoned)
    is answered with ``CLSE(our id, their id)`` so the peer's side is freed (``handle_packet``
    A_OKAY); WRTE or CLSE naming a stream we do not have, or with the wrong remote id, is
    dropped without an answer.

Roles: the HOST sends CNXN first, answers ``AuthToken`` with a signature or its public key and is
online when the device's CNXN arrives. The DEVICE sees the host's CNXN as ``Connected``, then
either calls ``send_connect()`` (online at once) or ``send_auth(TOKEN, …)`` and decides on
``AuthSignature``/``AuthPublicKey``. A HOST refuses stream requests from the device (reverse
forwarding) by itself; a DEVICE reports them as ``StreamOpenRequested``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

import structlog

from .protocol import (
    A_VERSION,
    A_VERSION_MIN,
    A_VERSION_SKIP_CHECKSUM,
    COMMAND_MAGIC,
    HEADER_SIZE,
    HEADER_STRUCT,
    MAX_PAYLOAD,
    MAX_PAYLOAD_V1,
    NEED_DATA,
    AdbPacket,
    AdbProtocolError,
    AdbUsageError,
    AuthType,
    Command,
    NeedData,
    build_banner,
    checksum,
    command_name,
    pack_header,
    parse_banner,
    unpack_header,
)

log = structlog.get_logger(__name__)

DEFAULT_FEATURES: tuple[str, ...] = ("shell_v2", "cmd")
"""What posdiag implements; never ``delayed_ack`` (its OPEN window is not implemented)."""

_UINT32 = 0xFFFFFFFF


class Role(Enum):
    """Which end of the ADB link this connection is."""

    HOST = "host"  # posdiag's drivers
    DEVICE = "device"  # posdiag's simulated terminals


class State(Enum):
    """The connection's life cycle."""

    HANDSHAKE = "handshake"  # CNXN/AUTH exchange in progress
    ONLINE = "online"  # streams may be opened
    CLOSED = "closed"  # after a protocol error or STLS; every call raises


_AUTH_SENT_BY = {
    Role.DEVICE: frozenset({AuthType.TOKEN}),
    Role.HOST: frozenset({AuthType.SIGNATURE, AuthType.RSAPUBLICKEY}),
}


@dataclass(frozen=True)
class Connected:
    """The peer's CNXN arrived and the link parameters are negotiated.

    On the HOST the connection is now online. On the DEVICE this is the host's hello: answer
    with ``send_connect()`` or ``send_auth(AuthType.TOKEN, token)``.

    Attributes:
        version: negotiated protocol version, min(peer, ours).
        max_payload: negotiated maximum payload, min(peer, ours).
        banner: the peer's identity string as sent (NUL and beyond dropped).
        system_type: ``device``, ``host``, ``recovery``…
        properties: banner ``key=value`` pairs other than ``features``.
        features: the features the peer advertised.
    """

    version: int
    max_payload: int
    banner: str
    system_type: str
    properties: dict[str, str] = field(default_factory=dict, hash=False)
    features: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AuthToken:
    """HOST: the device wants this token signed (AUTH TOKEN)."""

    token: bytes


@dataclass(frozen=True)
class AuthSignature:
    """DEVICE: the host signed the last token (AUTH SIGNATURE)."""

    signature: bytes


@dataclass(frozen=True)
class AuthPublicKey:
    """DEVICE: the host offers its public key (AUTH RSAPUBLICKEY), trailing NUL removed.

    ``key`` is ``base64(RSAPublicKey struct) + b" " + comment``; see ``auth.py``.
    """

    key: bytes


@dataclass(frozen=True)
class TlsRequested:
    """The peer sent STLS: it switches to TLS, which this codec does not implement.

    The connection is CLOSED once this event has been returned; the driver should report the
    device as unsupported (wireless debugging with TLS).
    """

    version: int


@dataclass(frozen=True)
class StreamOpenRequested:
    """DEVICE: the host asks for a service; answer with accept_stream() or refuse_stream()."""

    remote_id: int
    service: str


@dataclass(frozen=True)
class StreamOpened:
    """The peer accepted our OPEN; writes queued meanwhile are now being sent."""

    local_id: int


@dataclass(frozen=True)
class StreamRefused:
    """The peer answered our OPEN with CLSE: no such service or not permitted."""

    local_id: int


@dataclass(frozen=True)
class StreamData:
    """Data arrived on a stream; the codec has already queued the OKAY that acknowledges it."""

    local_id: int
    data: bytes


@dataclass(frozen=True)
class StreamClosed:
    """The peer closed the stream; its id is free and nothing more arrives for it."""

    local_id: int


Event = (
    Connected
    | AuthToken
    | AuthSignature
    | AuthPublicKey
    | TlsRequested
    | StreamOpenRequested
    | StreamOpened
    | StreamRefused
    | StreamData
    | StreamClosed
)


class _StreamState(Enum):
    OPENING = "opening"  # OPEN sent, waiting for OKAY or CLSE
    OPEN = "open"


@dataclass
class _Stream:
    local_id: int
    remote_id: int
    service: str
    state: _StreamState
    in_flight: bool = False
    queue: deque[bytes] = field(default_factory=deque)
    closing: bool = False  # close_stream() called; CLSE goes out once the queue is sent


class AdbConnection:
    """One end of an ADB link (HOST or DEVICE).

    Args:
        role: which end this is.
        max_payload: the largest payload we accept, advertised in our CNXN
            (4096 ≤ max_payload ≤ 1 MiB).
        version: the protocol version we offer; ``A_VERSION_MIN`` imitates an old peer that
            always checksums.
        features: advertised in the default banner of ``send_connect()``.
    """

    def __init__(
        self,
        role: Role,
        *,
        max_payload: int = MAX_PAYLOAD,
        version: int = A_VERSION,
        features: Iterable[str] = DEFAULT_FEATURES,
    ) -> None:
        if not MAX_PAYLOAD_V1 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be {MAX_PAYLOAD_V1}..{MAX_PAYLOAD}")
        if not A_VERSION_MIN <= version <= _UINT32:
            raise ValueError(f"version must be at least {A_VERSION_MIN:#010x}")
        self.role = role
        self.features: tuple[str, ...] = tuple(features)
        self._feature_set = frozenset(self.features)
        self._shared: frozenset[str] = frozenset()
        if "delayed_ack" in self.features:
            raise ValueError("delayed_ack is not implemented; do not advertise it")
        self._our_version = version
        self._our_max_payload = max_payload
        self._protocol_version = A_VERSION_MIN
        self._max_payload = max_payload
        self._negotiated = False
        self._state = State.HANDSHAKE
        self._closed_reason: str | None = None
        self._peer: Connected | None = None
        self._buffer = bytearray()
        self._header: tuple[int, int, int, int, int, int] | None = None  # awaiting its payload
        self._events: deque[Event] = deque()
        self._transfers: list[bytes] = []
        self._streams: dict[int, _Stream] = {}
        self._pending_opens: dict[int, str] = {}
        self._next_id = 1

    # ------------------------------------------------------------------ introspection

    @property
    def state(self) -> State:
        """HANDSHAKE, ONLINE or CLOSED."""
        return self._state

    @property
    def protocol_version(self) -> int:
        """The negotiated version (``A_VERSION_MIN`` until the peer's CNXN arrives)."""
        return self._protocol_version

    @property
    def max_payload(self) -> int:
        """The negotiated maximum payload (our own maximum until the peer's CNXN arrives)."""
        return self._max_payload

    @property
    def negotiated(self) -> bool:
        """Whether the peer's CNXN has been received."""
        return self._negotiated

    @property
    def peer(self) -> Connected | None:
        """The peer's last CNXN, as reported by the ``Connected`` event."""
        return self._peer

    @property
    def shared_features(self) -> frozenset[str]:
        """Features both sides advertised (e.g. ``shell_v2`` decides the shell service)."""
        return self._shared  # computed once per CNXN: the driver asks before every command

    def is_open(self, local_id: int) -> bool:
        """Whether a stream exists and has not been closed by either side."""
        stream = self._streams.get(local_id)
        return stream is not None and not stream.closing

    def is_write_pending(self, local_id: int) -> bool:
        """Whether a WRTE on this stream still waits for its OKAY or is queued behind one."""
        stream = self._streams.get(local_id)
        return stream is not None and (stream.in_flight or bool(stream.queue))

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> bytes:
        """Take everything queued for the wire as one byte string (TCP)."""
        if self._state is State.CLOSED:
            self._check_usable()
        if not self._transfers:  # the driver asks after every event; usually nothing is queued
            return b""
        data = b"".join(self._transfers)
        self._transfers.clear()
        return data

    def transfers_to_send(self) -> list[bytes]:
        """Take what is queued as separate transfers: each header, then its payload if any.

        USB needs header and payload in separate bulk transfers, never an empty one for an empty
        payload; the USB transport adds a zero-length packet after a transfer whose length is a
        multiple of wMaxPacketSize.
        """
        self._check_usable()
        transfers = list(self._transfers)
        self._transfers.clear()
        return transfers

    def _send(self, command: Command, arg0: int, arg1: int, data: bytes = b"") -> None:
        check = 0 if self._protocol_version >= A_VERSION_SKIP_CHECKSUM else checksum(data)
        self._transfers.append(pack_header(command, arg0, arg1, len(data), check))
        if data:
            self._transfers.append(bytes(data))

    # ------------------------------------------------------------------ handshake API

    def send_connect(self, banner: bytes | str | None = None) -> None:
        """Queue our CNXN.

        The HOST calls this first. The DEVICE calls it to accept the host (after ``Connected``
        when no authentication is required, or after a good ``AuthSignature``/``AuthPublicKey``)
        and is online from then on. Once negotiated we advertise the negotiated values, so a
        naive peer that uses our maxdata as its own write size stays within its limit.

        Args:
            banner: the identity string; None builds ``host::features=…`` or
                ``device::features=…`` from ``features``.
        """
        self._check_usable()
        if banner is None:
            banner = build_banner(self.role.value, features=self.features)
        payload = banner.encode() if isinstance(banner, str) else bytes(banner)
        if len(payload) > MAX_PAYLOAD_V1:
            raise AdbUsageError(f"a CNXN banner must stay within {MAX_PAYLOAD_V1} bytes")
        if self._negotiated:
            version, max_payload = self._protocol_version, self._max_payload
        else:
            version, max_payload = self._our_version, self._our_max_payload
        self._send(Command.CNXN, version, max_payload, payload)
        if self.role is Role.DEVICE:
            self._state = State.ONLINE

    def send_auth(self, auth_type: AuthType | int, data: bytes) -> None:
        """Queue an AUTH packet.

        The DEVICE sends TOKEN (20 random bytes, instead of or before its CNXN); the HOST
        answers with SIGNATURE or RSAPUBLICKEY. A public key gets its trailing NUL added here
        because adbd expects it.
        """
        self._check_usable()
        try:
            kind = AuthType(auth_type)
        except ValueError:
            raise AdbUsageError(f"unknown AUTH type {auth_type}") from None
        if kind not in _AUTH_SENT_BY[self.role]:
            raise AdbUsageError(f"a {self.role.value} does not send AUTH {kind.name}")
        if self.role is Role.DEVICE and self._state is State.ONLINE:
            raise AdbUsageError("the device already accepted the host with CNXN")
        payload = bytes(data)
        if kind is AuthType.RSAPUBLICKEY and not payload.endswith(b"\0"):
            payload += b"\0"
        if len(payload) > MAX_PAYLOAD_V1:
            raise AdbUsageError(f"an AUTH payload must stay within {MAX_PAYLOAD_V1} bytes")
        self._send(Command.AUTH, kind, 0, payload)

    # ------------------------------------------------------------------ stream API

    def open_stream(self, service: str) -> int:
        """Queue OPEN for a service (``shell,v2,raw:…``, ``sync:``…) and return its local id.

        Writes may be queued at once; they go out after the peer's OKAY (``StreamOpened``).
        """
        self._require_online()
        payload = service.encode() + b"\0"
        if len(payload) > self._max_payload:
            raise AdbUsageError(f"service name longer than max_payload ({self._max_payload})")
        local_id = self._allocate_id()
        self._streams[local_id] = _Stream(local_id, 0, service, _StreamState.OPENING)
        self._send(Command.OPEN, local_id, 0, payload)
        return local_id

    def accept_stream(self, remote_id: int) -> int:
        """DEVICE: accept a ``StreamOpenRequested`` with OKAY and return the new local id."""
        self._require_online()
        service = self._pending_opens.pop(remote_id, None)
        if service is None:
            raise AdbUsageError(f"no pending OPEN from remote stream {remote_id}")
        local_id = self._allocate_id()
        self._streams[local_id] = _Stream(local_id, remote_id, service, _StreamState.OPEN)
        self._send(Command.OKAY, local_id, remote_id)
        return local_id

    def refuse_stream(self, remote_id: int) -> None:
        """DEVICE: refuse a ``StreamOpenRequested`` with ``CLSE(0, remote_id)``."""
        self._require_online()
        if self._pending_opens.pop(remote_id, None) is None:
            raise AdbUsageError(f"no pending OPEN from remote stream {remote_id}")
        self._send(Command.CLSE, 0, remote_id)

    def write(self, local_id: int, data: bytes) -> None:
        """Queue data on a stream; split at max_payload, one WRTE in flight at a time.

        An empty write sends nothing (an empty WRTE is legal but useless, and an empty USB
        transfer has broken other implementations).
        """
        self._check_usable()
        stream = self._streams.get(local_id)
        if stream is None or stream.closing:
            raise AdbUsageError(f"stream {local_id} is not open")
        size = self._max_payload
        view = bytes(data)
        for start in range(0, len(view), size):
            stream.queue.append(view[start : start + size])
        self._pump(stream)

    def close_stream(self, local_id: int, *, abort: bool = False) -> None:
        """Close a stream from our side; the codec reports nothing more for this id.

        By default data already queued is still sent (one WRTE per OKAY) and CLSE follows the
        OKAY of the last chunk, as adbd's sockets close; ``abort=True`` drops the queue and
        sends CLSE now. A stream still waiting for its OPEN's OKAY is closed as soon as that
        OKAY arrives. Closing an unknown or already closed id does nothing: the peer may have
        closed it first. Nothing waits for the peer's answering CLSE (older devices send none).
        """
        self._check_usable()
        stream = self._streams.get(local_id)
        if stream is None or stream.closing:
            return
        stream.closing = True
        if abort:
            stream.queue.clear()
            stream.in_flight = False  # its OKAY, if it comes, names a stream we no longer have
        self._pump(stream)

    def _pump(self, stream: _Stream) -> None:
        if stream.state is not _StreamState.OPEN:
            return
        if not stream.in_flight and stream.queue:
            self._send(Command.WRTE, stream.local_id, stream.remote_id, stream.queue.popleft())
            stream.in_flight = True
        if stream.closing and not stream.queue and not stream.in_flight:
            self._send(Command.CLSE, stream.local_id, stream.remote_id)
            del self._streams[stream.local_id]

    def _allocate_id(self) -> int:
        while True:
            local_id = self._next_id
            self._next_id = local_id % _UINT32 + 1
            if local_id not in self._streams:
                return local_id

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the transport (any fragmentation; b"" is ignored)."""
        self._check_usable()
        self._buffer += data

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA when more bytes are needed.

        Raises:
            AdbProtocolError: the peer broke the protocol; the connection is now CLOSED.
        """
        if self._events:
            return self._events.popleft()
        if self._state is State.CLOSED:
            self._check_usable()
        try:
            while not self._events:
                packet = self._next_packet()
                if packet is None:
                    return NEED_DATA
                self._handle(packet)
        except AdbProtocolError as exc:
            self._close(str(exc))
            raise
        return self._events.popleft()

    def _next_packet(self) -> AdbPacket | None:
        # The hot path of every packet received: plain tuples and inlined checks, because in
        # CPython each call and object costs as much as the parsing itself.
        buffer = self._buffer
        header = self._header
        if header is None:
            if len(buffer) < HEADER_SIZE:
                return None
            header = HEADER_STRUCT.unpack_from(buffer)
            command = header[0]
            if COMMAND_MAGIC.get(command) != header[5]:
                unpack_header(bytes(buffer[:HEADER_SIZE]))  # raises the precise error
            limit = self._max_payload if self._negotiated else self._receive_limit(command)
            if header[3] > limit:
                raise AdbProtocolError(
                    f"{command_name(command)} announces {header[3]} payload "
                    f"bytes, more than the {limit} allowed"
                )
            del buffer[:HEADER_SIZE]
            self._header = header
        command, arg0, arg1, length, data_check, _ = header
        if len(buffer) < length:
            return None
        data = bytes(buffer[:length])
        del buffer[:length]
        self._header = None
        if not (self._negotiated and self._protocol_version >= A_VERSION_SKIP_CHECKSUM):
            self._check_checksum(command, data_check, data)
        return AdbPacket(command, arg0, arg1, data)

    def _receive_limit(self, command: int) -> int:
        if self._negotiated:
            return self._max_payload
        if command in (Command.CNXN, Command.AUTH):
            return MAX_PAYLOAD_V1
        return self._our_max_payload

    def _check_checksum(self, command: int, data_check: int, data: bytes) -> None:
        if self._negotiated and self._protocol_version >= A_VERSION_SKIP_CHECKSUM:
            return
        expected = checksum(data)
        if data_check == expected:
            return
        modern = self._our_version >= A_VERSION_SKIP_CHECKSUM
        if not self._negotiated and data_check == 0 and modern:
            return
        raise AdbProtocolError(
            f"{command_name(command)} payload checksum {data_check:#x} does not "
            f"match the byte sum {expected:#x}"
        )

    def _handle(self, packet: AdbPacket) -> None:
        command = packet.command
        if command == Command.CNXN:
            self._on_connect(packet)
        elif command == Command.AUTH:
            self._on_auth(packet)
        elif command == Command.STLS:
            self._events.append(TlsRequested(packet.arg1))
            self._close("the peer switched to TLS (STLS), which posdiag does not implement")
        elif self._state is not State.ONLINE:
            self._ignore(packet, "before the connection is online")
        elif command == Command.OPEN:
            self._on_open(packet)
        elif command == Command.OKAY:
            self._on_okay(packet)
        elif command == Command.WRTE:
            self._on_write(packet)
        else:
            self._on_close(packet)

    def _ignore(self, packet: AdbPacket, reason: str) -> None:
        log.debug(
            "adb.packet_ignored",
            command=command_name(packet.command),
            arg0=packet.arg0,
            arg1=packet.arg1,
            reason=reason,
        )

    def _on_connect(self, packet: AdbPacket) -> None:
        if packet.arg0 < A_VERSION_MIN:
            raise AdbProtocolError(
                f"the peer offers ADB protocol version {packet.arg0:#010x}, "
                f"older than {A_VERSION_MIN:#010x}"
            )
        if packet.arg1 < MAX_PAYLOAD_V1:
            raise AdbProtocolError(
                f"the peer accepts payloads of only {packet.arg1} bytes; ADB needs {MAX_PAYLOAD_V1}"
            )
        self._reset_streams()
        self._protocol_version = min(packet.arg0, self._our_version)
        self._max_payload = min(packet.arg1, self._our_max_payload)
        self._negotiated = True
        banner = parse_banner(packet.data)
        text = packet.data.split(b"\0", 1)[0].decode("utf-8", "replace")
        event = Connected(
            self._protocol_version,
            self._max_payload,
            text,
            banner.system_type,
            dict(banner.properties),
            banner.features,
        )
        self._peer = event
        self._shared = event.features & self._feature_set
        self._state = State.ONLINE if self.role is Role.HOST else State.HANDSHAKE
        self._events.append(event)

    def _reset_streams(self) -> None:
        """A CNXN on a live link means the peer restarted: every stream it knew is gone."""
        for stream in self._streams.values():
            if stream.closing:
                continue
            if stream.state is _StreamState.OPENING:
                self._events.append(StreamRefused(stream.local_id))
            else:
                self._events.append(StreamClosed(stream.local_id))
        self._streams.clear()
        self._pending_opens.clear()

    def _on_auth(self, packet: AdbPacket) -> None:
        try:
            kind = AuthType(packet.arg0)
        except ValueError:
            raise AdbProtocolError(f"the peer sent AUTH of unknown type {packet.arg0}") from None
        if self.role is Role.HOST:
            if kind is not AuthType.TOKEN:
                raise AdbProtocolError(f"the device sent AUTH {kind.name}, which only hosts send")
            self._events.append(AuthToken(packet.data))
            return
        if kind is AuthType.TOKEN:
            raise AdbProtocolError("the host sent AUTH TOKEN, which only devices send")
        if not self._negotiated:
            self._ignore(packet, "AUTH before the host's CNXN")
        elif kind is AuthType.SIGNATURE:
            self._events.append(AuthSignature(packet.data))
        else:
            self._events.append(AuthPublicKey(packet.data.rstrip(b"\0")))

    def _on_open(self, packet: AdbPacket) -> None:
        remote_id = packet.arg0
        if remote_id == 0:
            self._ignore(packet, "OPEN with local-id 0")
            return
        service = packet.data.split(b"\0", 1)[0].decode("utf-8", "replace")
        if self.role is Role.HOST:
            log.debug("adb.reverse_open_refused", remote_id=remote_id)
            self._send(Command.CLSE, 0, remote_id)
            return
        if remote_id in self._pending_opens:
            self._ignore(packet, "duplicate OPEN for a pending request")
            return
        self._pending_opens[remote_id] = service
        self._events.append(StreamOpenRequested(remote_id, service))

    def _on_okay(self, packet: AdbPacket) -> None:
        remote_id, local_id = packet.arg0, packet.arg1
        if remote_id == 0 or local_id == 0:
            self._ignore(packet, "OKAY with a zero id")
            return
        stream = self._streams.get(local_id)
        if stream is None:
            # Their side still thinks the stream is open (the OKAY of an OPEN we abandoned, or
            # of a WRTE that crossed our CLSE): close it, as adbd does.
            self._ignore(packet, "OKAY for no open stream; answered with CLSE")
            self._send(Command.CLSE, local_id, remote_id)
            return
        if stream.state is _StreamState.OPENING:
            stream.remote_id = remote_id
            stream.state = _StreamState.OPEN
            if not stream.closing:
                self._events.append(StreamOpened(local_id))
        elif remote_id != stream.remote_id or not stream.in_flight:
            self._ignore(packet, "OKAY with no WRTE in flight")
            return
        else:
            stream.in_flight = False
        self._pump(stream)

    def _on_write(self, packet: AdbPacket) -> None:
        remote_id, local_id = packet.arg0, packet.arg1
        stream = self._streams.get(local_id)
        if (
            stream is None
            or stream.state is not _StreamState.OPEN
            or remote_id == 0
            or remote_id != stream.remote_id
        ):
            self._ignore(packet, "WRTE for no open stream")
            return
        self._send(Command.OKAY, local_id, remote_id)
        if packet.data and not stream.closing:
            self._events.append(StreamData(local_id, packet.data))

    def _on_close(self, packet: AdbPacket) -> None:
        remote_id, local_id = packet.arg0, packet.arg1
        stream = self._streams.get(local_id)
        if stream is None:
            # The answer to our own CLSE, or one that crossed it: the stream is over.
            self._ignore(packet, "CLSE for no open stream (the end of one we closed)")
            return
        if stream.state is _StreamState.OPEN and remote_id not in (0, stream.remote_id):
            self._ignore(packet, "CLSE from a different remote stream")
            return
        del self._streams[local_id]
        if stream.state is _StreamState.OPENING:
            if not stream.closing:
                self._events.append(StreamRefused(local_id))
            return  # a refused OPEN has no socket on their side to close
        # Ours has not sent its CLSE yet (else it would be gone): answer, as adbd does.
        self._send(Command.CLSE, local_id, stream.remote_id)
        if not stream.closing:
            self._events.append(StreamClosed(local_id))

    # ------------------------------------------------------------------ state helpers

    def _close(self, reason: str) -> None:
        self._state = State.CLOSED
        self._closed_reason = reason
        self._buffer.clear()
        self._transfers.clear()
        self._header = None

    def _check_usable(self) -> None:
        if self._state is State.CLOSED:
            raise AdbProtocolError(f"the ADB connection is closed: {self._closed_reason}")

    def _require_online(self) -> None:
        self._check_usable()
        if self._state is not State.ONLINE:
            raise AdbUsageError("the ADB connection is not online yet")
