r"""ADB transport packets: the 24-byte header, the command set and the CNXN banner.

Pure encode/decode helpers without state; the connection state machine is ``codec.py``.

Wire layout of every packet (six little-endian uint32, ``adb:types.h`` struct amessage)::

    offset size field
    0      4    command      four ASCII bytes read as LE uint32: b"CNXN" -> 0x4E584E43
    4      4    arg0
    8      4    arg1
    12     4    data_length  number of payload bytes that follow the header
    16     4    data_check   byte sum of the payload mod 2**32 (the docs say "crc32"; it is not a
                             CRC); written as 0 once the negotiated version is >= 0x01000001
    20     4    magic        command ^ 0xFFFFFFFF
    24     n    payload      data_length bytes

Commands (``adb:adb.h``)::

    CNXN(version, maxdata, "systemtype:serial:banner")   hello; both sides send one
    AUTH(type, 0, data)         TOKEN=1 (device -> host, 20 random bytes), SIGNATURE=2,
                                RSAPUBLICKEY=3 (host -> device, base64 key + " comment" + NUL)
    OPEN(local-id, 0, "service\0")  open a stream; local-id != 0
    OKAY(local-id, remote-id, "")   stream ready / acknowledges one WRTE
    WRTE(local-id, remote-id, data) stream data; one in flight per stream until OKAY
    CLSE(local-id or 0, remote-id, "")  stream closed (local-id 0: the OPEN failed)
    STLS(type, version, "")         switch to TLS (wireless debugging)

CNXN banner: ``"<systemtype>:<serial>:<key=value;key=value;features=a,b,c>"``. A device sends
``device::ro.product.name=X;ro.product.model=Y;ro.product.device=Z;features=a,b,c`` (the serial
field is empty: over USB the serial comes from the USB descriptor), a host sends
``host::features=shell_v2,cmd``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Final, NamedTuple

from ..errors import ProtocolError


class AdbProtocolError(ProtocolError):
    """The peer's bytes break the ADB protocol; the connection carrying them is unusable.

    The ADB spec says any bad header, payload or command must close the connection because both
    ends share stream state that can no longer be trusted.
    """


class AdbUsageError(RuntimeError):
    """The caller asked the codec for something its current state does not allow.

    A bug in the driver or simulator (writing to a stream that is not open, sending AUTH from the
    wrong role), not a fault of the peer, so it is deliberately not a ``PosdiagError``: it should
    surface as a traceback. The connection stays usable.
    """


class NeedData(Enum):
    """Sentinel type: nothing complete yet; feed more bytes.

    A one-member enum rather than a plain object so that ``if event is NEED_DATA`` narrows the
    type for mypy as well as ``isinstance(event, NeedData)`` does.
    """

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA


class Command(IntEnum):
    """The packet commands that may appear on the wire (``adb:adb.h``)."""

    CNXN = 0x4E584E43
    AUTH = 0x48545541
    OPEN = 0x4E45504F
    OKAY = 0x59414B4F
    WRTE = 0x45545257
    CLSE = 0x45534C43
    STLS = 0x534C5453


A_CNXN = Command.CNXN
A_AUTH = Command.AUTH
A_OPEN = Command.OPEN
A_OKAY = Command.OKAY
A_WRTE = Command.WRTE
A_CLSE = Command.CLSE
A_STLS = Command.STLS
A_SYNC = 0x434E5953
"""Obsolete internal command; never valid on the wire, so it is rejected like any unknown one."""


class AuthType(IntEnum):
    """arg0 of an AUTH packet (``adb:adb_auth.h``)."""

    TOKEN = 1
    SIGNATURE = 2
    RSAPUBLICKEY = 3


A_VERSION_MIN = 0x01000000
"""The original protocol version; every transport starts here until CNXN is exchanged."""
A_VERSION_SKIP_CHECKSUM = 0x01000001
"""From this version on the sender writes data_check 0 and the receiver does not check it."""
A_VERSION = A_VERSION_SKIP_CHECKSUM
"""The version posdiag offers by default (the current AOSP one)."""

MAX_PAYLOAD_V1 = 4096
"""Old adb's hard limit; CNXN and AUTH never exceed it because they precede the peer's maxdata."""
MAX_PAYLOAD = 1024 * 1024
"""The largest payload posdiag offers to receive (the current AOSP value)."""

HEADER_SIZE = 24
TOKEN_SIZE = 20
"""adbd's AUTH token length; the token is signed as if it were a SHA-1 digest."""
STLS_VERSION = 0x01000000

DEVICE_SYSTEM_TYPES = frozenset({"device", "bootloader", "recovery", "sideload", "rescue"})
"""Banner system types adb treats as a device; anything else counts as a host."""

_HEADER = struct.Struct("<6I")
_UINT32 = 0xFFFFFFFF
HEADER_STRUCT = _HEADER
"""The header's layout, for the codec's per-packet fast path (``unpack_header`` checks it)."""


def command_name(command: int) -> str:
    """A readable name for a command value, for error messages and logs.

    Unknown values are shown as their four bytes so a garbage stream is recognisable.
    """
    try:
        return Command(command).name
    except ValueError:
        raw = (command & _UINT32).to_bytes(4, "little")
        text = raw.decode("ascii") if all(0x20 <= b < 0x7F for b in raw) else raw.hex()
        return f"unknown command {text!r} ({command:#010x})"


COMMAND_MAGIC: Final = {int(command): int(command) ^ _UINT32 for command in Command}
"""Each known command's magic word: one dictionary look-up checks both (an unknown command
has no entry), cheaper per packet than the Enum's own look-up."""


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The ADB "data_check": the plain byte sum of the payload, mod 2**32 (not a CRC)."""
    return sum(data if isinstance(data, bytes | bytearray) else bytes(data)) & _UINT32


@dataclass(frozen=True, slots=True)
class AdbHeader:
    """The six header words as read from the wire, before the payload arrives."""

    command: int
    arg0: int
    arg1: int
    data_length: int
    data_check: int
    magic: int


class AdbPacket(NamedTuple):
    """One ADB packet: a command, two arguments and an optional payload.

    A named tuple rather than a frozen dataclass: one is built for every packet received, and
    a tuple is built several times faster (immutable all the same).
    """

    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    def encode(self, *, with_checksum: bool = True) -> bytes:
        """The packet's wire bytes.

        Args:
            with_checksum: write the byte sum into data_check (needed until the negotiated
                version reaches 0x01000001); False writes 0.
        """
        check = checksum(self.data) if with_checksum else 0
        return pack_header(self.command, self.arg0, self.arg1, len(self.data), check) + self.data


def pack_header(command: int, arg0: int, arg1: int, data_length: int, data_check: int) -> bytes:
    """Build the 24-byte header; the magic is derived from the command.

    Raises:
        ValueError: a field does not fit in an unsigned 32-bit integer.
    """
    try:  # struct range-checks every field; it is the hot path of every packet sent
        return _HEADER.pack(command, arg0, arg1, data_length, data_check, command ^ _UINT32)
    except struct.error:
        values = (command, arg0, arg1, data_length, data_check)
        raise ValueError(f"ADB header fields must be uint32: {values}") from None


def unpack_header(raw: bytes | bytearray | memoryview) -> AdbHeader:
    """Parse and check the parts of a header that need no connection state.

    The magic and the command are checked here; the length limit and the checksum depend on
    what the connection has negotiated and are checked by the codec.

    Raises:
        AdbProtocolError: not 24 bytes, the magic does not match, or the command is unknown.
    """
    if len(raw) != HEADER_SIZE:
        raise AdbProtocolError(f"an ADB header is {HEADER_SIZE} bytes, got {len(raw)}")
    header = AdbHeader(*_HEADER.unpack_from(raw))
    if header.magic != header.command ^ _UINT32:
        raise AdbProtocolError(
            f"bad ADB header magic {header.magic:#010x} for {command_name(header.command)}: "
            "the peer does not speak ADB or the stream lost sync"
        )
    if header.command not in COMMAND_MAGIC:
        raise AdbProtocolError(f"the peer sent an {command_name(header.command)}")
    return header


def decode_packet(
    raw: bytes, *, max_payload: int = MAX_PAYLOAD, verify_checksum: bool = True
) -> AdbPacket:
    """Decode exactly one complete packet (header and payload) from a buffer.

    For tests and one-shot tools; a live link uses ``AdbConnection``, which also handles
    fragments and negotiation.

    Raises:
        AdbProtocolError: the header is bad, the payload is too long, truncated, followed by
            extra bytes, or (with verify_checksum) does not match data_check.
    """
    try:
        command, arg0, arg1, data_length, data_check, magic = _HEADER.unpack_from(raw)
    except struct.error:
        unpack_header(raw[:HEADER_SIZE])  # raises: too short
        raise
    if COMMAND_MAGIC.get(command) != magic:  # unknown command or bad magic
        unpack_header(raw[:HEADER_SIZE])  # raises the precise error (checked once, inline)
    held = len(raw) - HEADER_SIZE
    if data_length > max_payload or held != data_length:  # one test on the hot path
        if data_length > max_payload:
            raise AdbProtocolError(
                f"{command_name(command)} payload of {data_length} bytes exceeds "
                f"the maximum of {max_payload}"
            )
        raise AdbProtocolError(
            f"{command_name(command)} announces {data_length} payload bytes, buffer holds {held}"
        )
    data = raw[HEADER_SIZE:] if type(raw) is bytes else bytes(raw[HEADER_SIZE:])
    if verify_checksum and data_check != (sum(data) & _UINT32 if data else 0):
        raise AdbProtocolError(
            f"{command_name(command)} payload checksum {data_check:#x} != {checksum(data):#x}"
        )
    return AdbPacket(command, arg0, arg1, data)


@dataclass(frozen=True)
class Banner:
    """A parsed CNXN identity string.

    Attributes:
        system_type: ``device``, ``host``, ``recovery``…
        serial: the middle field; empty from modern adbd.
        properties: ``key=value`` pairs except ``features``, in wire order.
        features: the advertised feature names.
    """

    system_type: str
    serial: str = ""
    properties: Mapping[str, str] = field(default_factory=dict, hash=False)
    features: frozenset[str] = frozenset()

    @property
    def is_device(self) -> bool:
        """Whether adb would treat the sender as a device rather than a host."""
        return self.system_type in DEVICE_SYSTEM_TYPES


def build_banner(
    system_type: str,
    properties: Mapping[str, str] | None = None,
    features: Iterable[str] = (),
    *,
    serial: str = "",
) -> bytes:
    """Build a CNXN identity string the way adb does (``adb.cpp`` get_connection_string).

    Properties keep the mapping's order and ``features=`` comes last; a set of features is
    sorted so the banner is reproducible. No trailing NUL: current adb sends none.

    Raises:
        ValueError: a field contains a separator (``:`` in the type or serial, ``;`` or ``=`` in
            a key, ``;`` in a value, ``,`` or ``;`` in a feature) that would corrupt the banner.
    """
    if ":" in system_type or ":" in serial:
        raise ValueError("banner system type and serial must not contain ':'")
    parts: list[str] = []
    for key, value in (properties or {}).items():
        if not key or any(c in key for c in ";=") or ";" in value:
            raise ValueError(f"banner property {key!r} contains a separator")
        parts.append(f"{key}={value}")
    names = sorted(features) if isinstance(features, (set, frozenset)) else list(features)
    for name in names:
        if not name or any(c in name for c in ",;"):
            raise ValueError(f"banner feature {name!r} is empty or contains a separator")
    parts.append("features=" + ",".join(names))
    return f"{system_type}:{serial}:{';'.join(parts)}".encode()


def parse_banner(data: bytes | str) -> Banner:
    """Parse a CNXN identity string; never raises, whatever the peer sent.

    Tolerates what real peers send: a trailing NUL (old adb, adb-shell), a trailing ``;``,
    segments without ``=``, invalid UTF-8 (replaced), and banners with fewer than two colons.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, bytes | bytearray) else data
    text = text.split("\0", 1)[0]
    system_type, _, rest = text.partition(":")
    serial, _, props = rest.partition(":")
    properties: dict[str, str] = {}
    features: frozenset[str] = frozenset()
    for segment in props.split(";"):
        key, sep, value = segment.partition("=")
        if not sep or not key:
            continue
        if key == "features":
            features = frozenset(name for name in value.split(",") if name)
        else:
            properties[key] = value
    return Banner(system_type, serial, properties, features)
