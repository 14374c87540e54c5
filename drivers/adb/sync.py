"""The ADB sync sub-protocol (v1, and v2 STAT/LIST), spoken inside a stream opened with ``sync:``.

Both directions: the host encodes requests and decodes responses, the simulated device decodes
requests and encodes responses. Every integer is uint32 little-endian; ids are 4 ASCII bytes
(``adb:file_sync_protocol.h``, ``adb:docs/dev/sync.md``).

Requests (host → device)::

    STAT|LIST|RECV|SEND|QUIT  u32 path_length  path (≤ 1024 bytes, no NUL; QUIT: length 0)
    SEND's path is "<path>,<decimal mode>"; it is followed by
    DATA  u32 length  bytes (≤ 64 KiB)    repeated
    DONE  u32 mtime                       no payload: the length field carries the mtime

Responses (device → host)::

    STAT request:  STAT u32 mode u32 size u32 mtime                (16 bytes; all 0: no such file)
    LIST request:  DENT u32 mode u32 size u32 mtime u32 namelen name   per entry, then
                   DONE u32 0 u32 0 u32 0 u32 0                    (20 bytes, a blank DENT)
    RECV request:  DATA u32 length bytes (≤ 64 KiB)  repeated, then  DONE u32 0  (8 bytes)
    SEND request:  OKAY u32 0                                      after the host's DONE
    any request:   FAIL u32 length message                         then the device closes

v2 (only when the device's banner offers ``stat_v2`` / ``ls_v2``; ``adb:file_sync_protocol.h``)::

    STA2|LST2 u32 path_length path       stat() / lstat()
    LIS2      u32 path_length path       directory entries with v2 metadata
    STA2|LST2 response (72 bytes): id u32 error u64 dev u64 ino u32 mode u32 nlink u32 uid
              u32 gid u64 size i64 atime i64 mtime i64 ctime   (error: Linux errno, rest 0)
    LIS2 response: DNT2 + the same 68 bytes + u32 namelen + name, per entry, then
              DONE + 72 zero bytes (76 bytes)

The shape of DONE depends on the request (20 bytes after LIST, 8 after RECV), so the response
decoder must be told which request each response answers (``expect()``); requests may be
pipelined and are answered in order. The request decoder needs no context.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from .protocol import NEED_DATA, AdbProtocolError, NeedData


class SyncProtocolError(AdbProtocolError):
    """A sync message is malformed or does not answer the outstanding request."""


class SyncId(StrEnum):
    """Message ids of sync v1."""

    STAT = "STAT"
    LIST = "LIST"
    RECV = "RECV"
    SEND = "SEND"
    QUIT = "QUIT"
    DATA = "DATA"
    DONE = "DONE"
    DENT = "DENT"
    OKAY = "OKAY"
    FAIL = "FAIL"
    STA2 = "STA2"
    LST2 = "LST2"
    LIS2 = "LIS2"
    DNT2 = "DNT2"


SYNC_HEADER_SIZE = 8
SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024
MAX_FAIL_MESSAGE = SYNC_DATA_MAX
"""Longest FAIL text accepted; adbd's are one line, so more means lost sync."""

_HEADER = struct.Struct("<4sI")
_STAT = struct.Struct("<4sIII")
_DENT = struct.Struct("<4sIIII")
_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")
_DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")
_ANSWERED_REQUESTS = frozenset(
    {SyncId.STAT, SyncId.LIST, SyncId.RECV, SyncId.SEND, SyncId.STA2, SyncId.LST2, SyncId.LIS2}
)


@dataclass(frozen=True)
class SyncRequest:
    """Device side: a request. ``id`` is kept as text so unknown ids can be answered with FAIL."""

    id: str
    path: str = ""


@dataclass(frozen=True)
class SyncData:
    """A DATA chunk (RECV response, or SEND content)."""

    data: bytes


@dataclass(frozen=True)
class SyncDone:
    """End of LIST/RECV, or of SEND content (then ``mtime`` is the file's modification time)."""

    mtime: int = 0


@dataclass(frozen=True)
class SyncStat:
    """STAT response: lstat() of the path; adbd reports a missing file as all zeros."""

    mode: int
    size: int
    mtime: int

    @property
    def exists(self) -> bool:
        """Whether the path exists (adbd cannot report a failed stat other than by mode 0)."""
        return self.mode != 0


@dataclass(frozen=True)
class SyncStatV2:
    """STA2/LST2 response: the whole stat, or the Linux errno of a failed one (``error``)."""

    error: int
    dev: int
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    atime: int
    mtime: int
    ctime: int

    @property
    def exists(self) -> bool:
        """Whether the stat succeeded."""
        return self.error == 0


@dataclass(frozen=True)
class SyncDentV2:
    """One LIS2 entry: v2 metadata and the name."""

    error: int
    dev: int
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    atime: int
    mtime: int
    ctime: int
    name: str


@dataclass(frozen=True)
class SyncDent:
    """One LIST entry (``.`` and ``..`` included, as adbd lists them)."""

    mode: int
    size: int
    mtime: int
    name: str


@dataclass(frozen=True)
class SyncOkay:
    """SEND response: the file was written."""


@dataclass(frozen=True)
class SyncFail:
    """The device refused the request; it closes the stream after this."""

    message: str


RequestEvent = SyncRequest | SyncData | SyncDone
ResponseEvent = (
    SyncStat | SyncStatV2 | SyncDent | SyncDentV2 | SyncData | SyncDone | SyncOkay | SyncFail
)


def _uint32(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{what} {value} does not fit the sync protocol's uint32")
    return value


def _encode_path(path: str) -> bytes:
    raw = path.encode()
    if len(raw) > SYNC_PATH_MAX or b"\0" in raw:
        raise ValueError(f"sync paths are at most {SYNC_PATH_MAX} bytes without NUL")
    return raw


def _request(request_id: SyncId, path: str) -> bytes:
    raw = _encode_path(path)
    return _HEADER.pack(request_id.encode(), len(raw)) + raw


# ---------------------------------------------------------------------- host → device


def encode_stat(path: str) -> bytes:
    """STAT request (lstat: mode, size, mtime)."""
    return _request(SyncId.STAT, path)


def encode_list(path: str) -> bytes:
    """LIST request (directory entries, then DONE)."""
    return _request(SyncId.LIST, path)


def encode_stat_v2(path: str, *, follow: bool = True) -> bytes:
    """STA2 (``stat``, follows symlinks) or, with ``follow=False``, LST2 (``lstat``)."""
    return _request(SyncId.STA2 if follow else SyncId.LST2, path)


def encode_list_v2(path: str) -> bytes:
    """LIS2 request (v2 directory entries, then a 76-byte DONE)."""
    return _request(SyncId.LIS2, path)


def encode_recv(path: str) -> bytes:
    """RECV request (file content as DATA chunks, then DONE)."""
    return _request(SyncId.RECV, path)


def encode_send(path: str, mode: int = 0o644) -> bytes:
    """SEND request; follow with ``encode_data(content)`` and ``encode_done(mtime)``."""
    return _request(SyncId.SEND, f"{path},{mode}")


def encode_quit() -> bytes:
    """QUIT: leave sync mode; the device closes the stream."""
    return _HEADER.pack(SyncId.QUIT.encode(), 0)


def encode_data(data: bytes) -> bytes:
    """Content as DATA messages of at most 64 KiB each; empty content encodes to nothing."""
    return b"".join(
        _HEADER.pack(SyncId.DATA.encode(), len(chunk)) + chunk
        for chunk in (data[i : i + SYNC_DATA_MAX] for i in range(0, len(data), SYNC_DATA_MAX))
    )


def encode_done(mtime: int = 0) -> bytes:
    """8-byte DONE: ends SEND content (with the mtime) or, with 0, a RECV response."""
    return _HEADER.pack(SyncId.DONE.encode(), _uint32(mtime, "mtime"))


def parse_send_path(spec: str) -> tuple[str, int]:
    """Split SEND's ``"<path>,<mode>"`` at the last comma, as adbd does.

    The mode is read like C's strtoul with base 0 (decimal, ``0`` octal, ``0x`` hex), which is
    what adbd uses; the stock client sends decimal.

    Raises:
        SyncProtocolError: no comma, or a mode that is not a number.
    """
    path, comma, mode = spec.rpartition(",")
    if not comma:
        raise SyncProtocolError("SEND path has no ',<mode>'")
    text = mode.strip()
    try:
        if text[:2].lower() == "0x":
            value = int(text[2:], 16)
        elif text.startswith("0") and len(text) > 1:
            value = int(text[1:], 8)
        else:
            value = int(text, 10)
    except ValueError:
        raise SyncProtocolError(f"SEND mode {mode!r} is not a number") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise SyncProtocolError(f"SEND mode {mode!r} is out of range")
    return path, value


# ---------------------------------------------------------------------- device → host


def encode_stat_response(mode: int, size: int, mtime: int) -> bytes:
    """16-byte STAT response; all zeros means the path does not exist."""
    return _STAT.pack(
        SyncId.STAT.encode(),
        _uint32(mode, "mode"),
        _uint32(size & 0xFFFFFFFF, "size"),
        _uint32(mtime, "mtime"),
    )


def encode_dent(mode: int, size: int, mtime: int, name: str) -> bytes:
    """One LIST entry."""
    raw = _encode_path(name)
    return (
        _DENT.pack(
            SyncId.DENT.encode(),
            _uint32(mode, "mode"),
            _uint32(size & 0xFFFFFFFF, "size"),
            _uint32(mtime, "mtime"),
            len(raw),
        )
        + raw
    )


def encode_list_done(*, v2: bool = False) -> bytes:
    """DONE that ends a LIST response (a DENT with every field zero: 20 bytes, 76 for LIS2)."""
    if v2:
        return _DENT_V2.pack(SyncId.DONE.encode(), *([0] * 12))
    return _DENT.pack(SyncId.DONE.encode(), 0, 0, 0, 0)


def encode_stat_v2_response(
    request: str,
    *,
    error: int = 0,
    dev: int = 0,
    ino: int = 0,
    mode: int = 0,
    nlink: int = 0,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    atime: int = 0,
    mtime: int = 0,
    ctime: int = 0,
) -> bytes:
    """72-byte STA2/LST2 response (its id is the request's); a failed stat carries only errno."""
    if request not in (SyncId.STA2, SyncId.LST2):
        raise ValueError(f"{request!r} is not a v2 stat request")
    return _STAT_V2.pack(
        request.encode(), error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime
    )


def encode_dent_v2(
    name: str,
    *,
    error: int = 0,
    dev: int = 0,
    ino: int = 0,
    mode: int = 0,
    nlink: int = 0,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    atime: int = 0,
    mtime: int = 0,
    ctime: int = 0,
) -> bytes:
    """One LIS2 entry (DNT2)."""
    raw = _encode_path(name)
    fields = (error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime, len(raw))
    return _DENT_V2.pack(SyncId.DNT2.encode(), *fields) + raw


def encode_okay() -> bytes:
    """OKAY that confirms a SEND."""
    return _HEADER.pack(SyncId.OKAY.encode(), 0)


def encode_fail(message: str) -> bytes:
    """FAIL with a reason; the device closes the stream after sending it."""
    raw = message.encode()
    if len(raw) > MAX_FAIL_MESSAGE:
        raise ValueError("FAIL message too long")
    return _HEADER.pack(SyncId.FAIL.encode(), len(raw)) + raw


# ---------------------------------------------------------------------- decoders


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class SyncRequestDecoder:
    """Device side: incremental decoder of requests and SEND content."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet decoded."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Queue bytes from the stream."""
        self._buffer += data

    def next_event(self) -> RequestEvent | NeedData:
        """The next request, DATA chunk or DONE, or NEED_DATA.

        Unknown ids are returned as a ``SyncRequest`` with their path (adbd reads the path
        before it answers ``FAIL unknown command``).

        Raises:
            SyncProtocolError: a path over 1024 bytes or a DATA chunk over 64 KiB.
        """
        if len(self._buffer) < SYNC_HEADER_SIZE:
            return NEED_DATA
        raw_id, length = _HEADER.unpack_from(self._buffer)
        request_id = raw_id.decode("latin-1")
        if request_id == SyncId.DONE:
            del self._buffer[:SYNC_HEADER_SIZE]
            return SyncDone(length)
        if request_id == SyncId.QUIT:
            length = 0  # adbd stops reading at QUIT; nothing of it is a path
        if request_id == SyncId.DATA:
            if length > SYNC_DATA_MAX:
                raise SyncProtocolError(f"DATA chunk of {length} bytes exceeds {SYNC_DATA_MAX}")
        elif length > SYNC_PATH_MAX:
            raise SyncProtocolError(f"{request_id!r} path of {length} bytes exceeds 1024")
        end = SYNC_HEADER_SIZE + length
        if len(self._buffer) < end:
            return NEED_DATA
        payload = bytes(self._buffer[SYNC_HEADER_SIZE:end])
        del self._buffer[:end]
        if request_id == SyncId.DATA:
            return SyncData(payload)
        return SyncRequest(request_id, _text(payload))


class SyncResponseDecoder:
    """Host side: incremental decoder of responses, told by ``expect()`` what each answers."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: deque[SyncId] = deque()

    @property
    def pending(self) -> tuple[SyncId, ...]:
        """Requests sent whose response has not finished yet, oldest first."""
        return tuple(self._pending)

    def expect(self, request: SyncId | str) -> None:
        """Record that a STAT, LIST, RECV or SEND request was sent (QUIT has no response)."""
        request = SyncId(request)
        if request not in _ANSWERED_REQUESTS:
            raise ValueError(f"{request} has no response to expect")
        self._pending.append(request)

    def receive_data(self, data: bytes) -> None:
        """Queue bytes from the stream."""
        self._buffer += data

    def next_event(self) -> ResponseEvent | NeedData:
        """The next response message, or NEED_DATA.

        A response ends, and the next expected request becomes current, with STAT, the DONE of
        LIST/RECV, OKAY, or FAIL.

        Raises:
            SyncProtocolError: bytes arrive with no request outstanding, the id does not answer
                the current request, or a length is out of range.
        """
        if len(self._buffer) < SYNC_HEADER_SIZE:
            return NEED_DATA
        if not self._pending:
            raise SyncProtocolError("sync response bytes arrived with no request outstanding")
        current = self._pending[0]
        raw_id, length = _HEADER.unpack_from(self._buffer)
        response_id = raw_id.decode("latin-1")
        event: ResponseEvent | None
        if response_id == SyncId.FAIL:
            if length > MAX_FAIL_MESSAGE:
                raise SyncProtocolError(f"FAIL message of {length} bytes exceeds the maximum")
            raw = self._take(SYNC_HEADER_SIZE + length)
            event = None if raw is None else SyncFail(_text(raw[SYNC_HEADER_SIZE:]))
        elif current is SyncId.STAT and response_id == SyncId.STAT:
            raw = self._take(_STAT.size)
            event = None if raw is None else SyncStat(*_STAT.unpack(raw)[1:])
        elif current in (SyncId.STA2, SyncId.LST2) and response_id == current:
            raw = self._take(_STAT_V2.size)
            event = None if raw is None else SyncStatV2(*_STAT_V2.unpack(raw)[1:])
        elif current is SyncId.LIS2 and response_id == SyncId.DNT2:
            return self._dent_v2()
        elif current is SyncId.LIS2 and response_id == SyncId.DONE:
            event = None if self._take(_DENT_V2.size) is None else SyncDone()
        elif current is SyncId.LIST and response_id == SyncId.DENT:
            return self._dent()
        elif current is SyncId.LIST and response_id == SyncId.DONE:
            event = None if self._take(_DENT.size) is None else SyncDone()
        elif current is SyncId.RECV and response_id == SyncId.DATA:
            if length > SYNC_DATA_MAX:
                raise SyncProtocolError(f"DATA chunk of {length} bytes exceeds {SYNC_DATA_MAX}")
            raw = self._take(SYNC_HEADER_SIZE + length)
            return NEED_DATA if raw is None else SyncData(raw[SYNC_HEADER_SIZE:])
        elif current is SyncId.RECV and response_id == SyncId.DONE:
            event = None if self._take(SYNC_HEADER_SIZE) is None else SyncDone()
        elif current is SyncId.SEND and response_id == SyncId.OKAY:
            event = None if self._take(SYNC_HEADER_SIZE) is None else SyncOkay()
        else:
            raise SyncProtocolError(f"sync response {raw_id!r} does not answer {current}")
        if event is None:
            return NEED_DATA
        self._pending.popleft()
        return event

    def _take(self, size: int) -> bytes | None:
        if len(self._buffer) < size:
            return None
        raw = bytes(self._buffer[:size])
        del self._buffer[:size]
        return raw

    def _dent_v2(self) -> SyncDentV2 | NeedData:
        if len(self._buffer) < _DENT_V2.size:
            return NEED_DATA
        fields = _DENT_V2.unpack_from(self._buffer)
        namelen = fields[-1]
        if namelen > SYNC_PATH_MAX:
            raise SyncProtocolError(f"DNT2 name of {namelen} bytes exceeds {SYNC_PATH_MAX}")
        raw = self._take(_DENT_V2.size + namelen)
        if raw is None:
            return NEED_DATA
        error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime = fields[1:-1]
        name = _text(raw[_DENT_V2.size :])
        return SyncDentV2(error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime, name)

    def _dent(self) -> SyncDent | NeedData:
        if len(self._buffer) < _DENT.size:
            return NEED_DATA
        _, mode, size, mtime, namelen = _DENT.unpack_from(self._buffer)
        if namelen > SYNC_PATH_MAX:
            raise SyncProtocolError(f"DENT name of {namelen} bytes exceeds {SYNC_PATH_MAX}")
        raw = self._take(_DENT.size + namelen)
        if raw is None:
            return NEED_DATA
        return SyncDent(mode, size, mtime, _text(raw[_DENT.size :]))
