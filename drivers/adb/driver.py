"""AdbDriver: the host side of ADB over any Transport (USB bulk or TCP), with its timers.

The codec knows packets; this module knows time and policy: it connects (CNXN), authenticates
(sign the device's token with our key; if the device does not know the key, send the public key
and ask the operator to allow it on the terminal's screen, within a timeout), opens streams for
``shell`` (v2 with exit codes when the device offers ``shell_v2``, plain ``shell:`` otherwise) and
``sync`` (STAT/RECV to read a file), and closes them. Nothing here prints.

One stream at a time: ``shell()`` and ``read_file()`` each open their stream, read only its events
and close it before returning (the codec would multiplex more; the check needs no more, because it
sends its commands as one command line: ``posdiag.drivers.adb.facts``, ``_read_batch``). For such a
long line ``shell()`` bounds the silence between outputs (``idle_timeout``) rather than only the
whole, and hands stdout over as it arrives (``on_stdout``), so progress can be shown and what
arrived kept if the link fails; its total output stays under ``max_response`` like any command.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog

from ..activity import announce, received
from ..deadline import Deadline, check_seconds
from ..errors import ConnectionRefused, ResponseTooLarge, TransportClosed, UsbDebuggingOff
from ..i18n import _
from ..text import clean_text
from ..transport.base import Transport
from .auth import AdbKey, load_or_create_key
from .codec import (
    AdbConnection,
    AuthToken,
    Connected,
    Role,
    StreamClosed,
    StreamData,
    StreamOpened,
    StreamRefused,
    TlsRequested,
)
from .errors import (
    AdbAuthError,
    AdbCommandError,
    AdbDebuggingDisabledError,
    AdbDebuggingLockedError,
    AdbPortClosedError,
    AdbTimeoutError,
    AdbUnsupportedError,
    AdbUsbDebuggingOffError,
)
from .protocol import HEADER_SIZE, NEED_DATA, AuthType, build_banner
from .shell import ShellDecoder, ShellId, encode_close_stdin, shell_service
from .sync import (
    SyncData,
    SyncDone,
    SyncFail,
    SyncId,
    SyncResponseDecoder,
    SyncStat,
    encode_quit,
    encode_recv,
    encode_stat,
)

log = structlog.get_logger(__name__)

HOST_FEATURES = ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir")
READ_CHUNK = 1024 * 1024
POLL = 0.1
DEFAULT_MAX_RESPONSE = 8 * 1024 * 1024
"""Most bytes one command (shell output, a pulled file) may return: a device that sends more
is faulty or hostile, and the station's memory must not depend on it."""


def _size(count: int) -> str:
    """A byte count for people: ``8 MB``, ``64 KB``."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MB"
    return f"{count / 1024:g} KB" if count >= 1024 else f"{count} bytes"


@dataclass(frozen=True)
class ShellOutput:
    """What a shell command printed, and its exit status (None without shell_v2)."""

    exit_code: int | None
    stdout: bytes
    stderr: bytes = b""

    @property
    def text(self) -> str:
        """Stdout as text (UTF-8, undecodable bytes replaced)."""
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        """Whether the command succeeded (unknown exit codes count as success)."""
        return self.exit_code in (None, 0)


@dataclass(frozen=True)
class DeviceInfo:
    """What the device said about itself in its CNXN."""

    system_type: str
    properties: dict[str, str]
    features: frozenset[str]
    version: int
    max_payload: int


class AdbDriver:
    """Speak ADB as the host over a Transport.

    Args:
        transport: the byte pipe (``UsbBulkTransport`` or ``TcpTransport``).
        key: the host key; loaded or created on first use when None.
        packetized: write header and payload as separate transfers (USB bulk needs this).
        timeout: seconds for each answer from the device.
        auth_timeout: seconds the operator has to allow our key on the terminal's screen.
        on_auth_prompt: called once when the device must show its "Allow USB debugging?" prompt;
            the CLI uses it to tell the operator to look at the terminal.
        clock: monotonic time source.
        max_response: most bytes one shell command or file read may return
            (``ResponseTooLarge`` past it).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        key: AdbKey | None = None,
        key_loader: Callable[[], AdbKey] = load_or_create_key,
        packetized: bool = False,
        timeout: float = 10.0,
        auth_timeout: float = 60.0,
        on_auth_prompt: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_response: int = DEFAULT_MAX_RESPONSE,
    ) -> None:
        check_seconds("timeout", timeout)
        check_seconds("auth_timeout", auth_timeout)
        if max_response < 1:
            raise ValueError("max_response must be at least 1 byte")
        self.max_response = max_response
        self.deadline = Deadline()
        self.transport = transport
        self._key = key
        self._bytes_in = 0  # bytes the device ever sent: none at all means it hung up mute
        self._key_loader = key_loader
        self.packetized = packetized
        self.timeout = timeout
        self.auth_timeout = auth_timeout
        self.on_auth_prompt = on_auth_prompt
        self._clock = clock
        self._conn = AdbConnection(Role.HOST, features=HOST_FEATURES)
        self.device: DeviceInfo | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def open(self) -> DeviceInfo:
        """Open the transport and connect; returns what the device announced.

        Raises:
            AdbUsbDebuggingOffError: a terminal is attached on USB, but its USB debugging is
                off (no ADB interface); the message sends the operator to its backend.
            AdbPortClosedError: the network address refused the connection (network debugging
                off, or a wrong port or address: both are named).
        """
        try:
            self.transport.open()
        except UsbDebuggingOff as exc:
            # The transport's words are English for the log; the operator reads these.
            raise AdbUsbDebuggingOffError(
                _(
                    "a terminal is attached ({device}), but its USB debugging is off (it offers "
                    "no ADB interface, as a production-locked unit does): check its binding "
                    "through its backend instead (posdiag check with its TMS backend configured)"
                ).format(device=exc.device),
                exc.device,
            ) from exc
        except ConnectionRefused as exc:
            raise AdbPortClosedError(
                _(
                    "{where} refused the connection: nothing listens on that ADB port. If it is "
                    "the terminal and the port is right, its network debugging is off (as on a "
                    "production-locked unit): check its binding through its backend instead "
                    "(posdiag check with its TMS backend configured)"
                ).format(where=self.transport.description)
            ) from exc
        return self.connect()

    def close(self) -> None:
        """Close the transport (never raises)."""
        self.transport.close()

    def set_deadline(self, at: float | None) -> None:
        """After ``at`` (a ``time.monotonic()`` instant) every read raises DeadlineExceeded."""
        self.deadline.set(at)

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

    # --- I/O ---------------------------------------------------------------------------------

    def _flush(self) -> None:
        if self.packetized:
            for transfer in self._conn.transfers_to_send():
                self.transport.write(transfer)
        else:
            data = self._conn.data_to_send()
            if data:
                self.transport.write(data)

    def _next_event(self, deadline: float, waiting_for: str) -> object:
        """The next codec event before the deadline (raises AdbTimeoutError after it)."""
        while True:
            self.deadline.check()  # also while the device keeps sending
            event = self._conn.next_event()
            self._flush()  # OKAYs for received writes go out at once
            if event is not NEED_DATA:
                return event
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise AdbTimeoutError(
                    f"the device on {self.transport.description} sent no {waiting_for} in time"
                )
            wait = self.deadline.clip(min(POLL * 5, remaining))
            if self.packetized:
                self._read_usb_packet(wait)
                continue
            data = self.transport.read(READ_CHUNK, wait)
            if data:
                self._bytes_in += len(data)
                received(len(data))  # the watcher's byte count (one lookup when nobody watches)
                self._conn.receive_data(data)

    def _read_usb_packet(self, wait: float) -> None:
        """USB: read the 24-byte header, then exactly its payload.

        The device sends no zero-length packets, so a read larger than the message would only
        end at its timeout when the message fills whole USB packets; sized reads never wait.
        """
        header = self.transport.read(HEADER_SIZE, wait)
        if not header:
            return
        self._bytes_in += len(header)
        if len(header) < HEADER_SIZE:
            header += self.transport.read_exact(
                HEADER_SIZE - len(header), self.deadline.clip(self.timeout)
            )
        received(len(header))
        self._conn.receive_data(header)
        length = int.from_bytes(header[12:16], "little")
        if 0 < length <= self._conn.max_payload:
            payload = self.transport.read_exact(length, self.deadline.clip(self.timeout))
            received(len(payload))
            self._conn.receive_data(payload)

    # --- connection --------------------------------------------------------------------------

    @staticmethod
    def _debugging_disabled() -> AdbDebuggingDisabledError:
        """The link dropped before the device said a word.

        adbd with debugging disabled (or not listening for us) drops the link before it says
        anything: a locked unit, which its backend can still be asked about.
        """
        return AdbDebuggingDisabledError(
            _(
                "the terminal's debugging is locked (it ended the connection at once): "
                "check its binding through its backend instead (posdiag check with its "
                "TMS backend configured)"
            )
        )

    def connect(self) -> DeviceInfo:
        """CNXN, then AUTH when the device asks for it.

        Raises:
            AdbAuthError: the device did not accept our key within ``auth_timeout``.
            AdbTimeoutError: the device never answered.
            AdbUnsupportedError: the device wants TLS (wireless debugging pairing).
        """
        self._conn.send_connect(build_banner("host", {}, HOST_FEATURES))
        try:
            self._flush()
        except TransportClosed:
            if self._bytes_in:
                raise
            raise self._debugging_disabled() from None  # gone before our CNXN was even taken
        deadline = self._clock() + self.timeout
        signed = sent_key = False
        heard = False
        while True:
            try:
                event = self._next_event(deadline, "answer to CNXN")
            except AdbTimeoutError:
                if sent_key:
                    raise AdbDebuggingLockedError(
                        _(
                            "the terminal did not accept posdiag's key within {seconds} s: "
                            "allow USB debugging on its screen and try again; if its debugging "
                            "is locked, check its binding through its backend instead (posdiag "
                            "check with its TMS backend configured)"
                        ).format(seconds=f"{self.auth_timeout:g}")
                    ) from None
                raise
            except TransportClosed:
                if heard or self._bytes_in:
                    raise
                raise self._debugging_disabled() from None
            heard = True
            if isinstance(event, Connected):
                self.device = DeviceInfo(
                    event.system_type,
                    dict(event.properties),
                    event.features,
                    event.version,
                    event.max_payload,
                )
                log.info(
                    "adb.connected",
                    transport=self.transport.description,
                    model=clean_text(event.properties.get("ro.product.model") or "", 80),
                    shell_v2="shell_v2" in event.features,
                )
                return self.device
            if isinstance(event, TlsRequested):
                raise AdbUnsupportedError(
                    _("the device asks for TLS (wireless debugging pairing); connect over USB")
                )
            if isinstance(event, AuthToken):
                key = self._load_key()
                if not signed:
                    signed = True
                    self._conn.send_auth(AuthType.SIGNATURE, key.sign_token(event.token))
                elif not sent_key:
                    sent_key = True
                    self._conn.send_auth(AuthType.RSAPUBLICKEY, key.android_public_key())
                    log.info("adb.auth_prompt", transport=self.transport.description)
                    # the operator must tap "Allow" on the terminal: up to auth_timeout of waiting
                    announce(_("waiting for USB debugging to be allowed on the terminal's screen"))
                    if self.on_auth_prompt is not None:
                        self.on_auth_prompt()
                    deadline = self._clock() + self.auth_timeout
                else:
                    raise AdbAuthError(
                        _("the terminal refused posdiag's key (the debugging prompt was denied)")
                    )
                self._flush()

    def _load_key(self) -> AdbKey:
        if self._key is None:
            self._key = self._key_loader()
        return self._key

    # --- streams -----------------------------------------------------------------------------

    def _open(self, service: str) -> int:
        local_id = self._conn.open_stream(service)
        self._flush()
        deadline = self._clock() + self.timeout
        waiting_for = f"answer to OPEN {service.split(':')[0]}"  # once, not per event
        while True:
            event = self._next_event(deadline, waiting_for)
            if isinstance(event, StreamOpened) and event.local_id == local_id:
                return local_id
            if isinstance(event, StreamRefused) and event.local_id == local_id:
                raise AdbCommandError(f"the device refused the {service.split(':')[0]} service")

    @property
    def shell_v2(self) -> bool:
        """Whether exit codes come back (the device offers shell_v2)."""
        return "shell_v2" in self._conn.shared_features

    @property
    def max_command_length(self) -> int:
        """Longest command line one shell OPEN can carry, in bytes.

        The service string (``shell,v2,TERM=xterm,raw:`` + command + NUL) must fit the
        negotiated max payload: 4 KiB on old devices, up to 1 MiB on new ones.
        """
        return self._conn.max_payload - len(shell_service("x", self.shell_v2))

    def shell(
        self,
        command: str,
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        on_stdout: Callable[[bytes], None] | None = None,
        what: str | None = None,
    ) -> ShellOutput:
        """Run a command; with shell_v2 the exit code and stderr come back separately.

        The command is a fixed string built by posdiag, never from text the device sent.

        Args:
            command: the command line.
            timeout: seconds the whole command may take (default ``self.timeout``).
            idle_timeout: seconds the device may stay silent once the stream is open (default:
                only ``timeout``). A batch of many commands gets a long ``timeout`` and each
                command's own budget as ``idle_timeout``: a hung command is caught as soon as
                one command would be, a long but busy batch is not cut short.
            on_stdout: called with every piece of stdout as it arrives (legacy shell: all
                output), so a caller can follow a long command line; it must not raise.
            what: the command in error messages (default: its first word).
        """
        v2 = self.shell_v2
        local_id = self._open(shell_service(command, v2))
        decoder = ShellDecoder()
        stdout, stderr = bytearray(), bytearray()
        exit_code: int | None = None
        close_stdin = v2
        name = what or repr(command.split()[0])
        deadline = self._clock() + (timeout or self.timeout)
        heard = self._clock()
        waiting_for = ""
        while True:
            self.deadline.check()
            if len(stdout) + len(stderr) > self.max_response:
                self._abandon(local_id)
                raise self._too_large(f"the output of {name}")
            if self._clock() >= deadline:
                # Output that never ends is caught here: _next_event only times out on silence.
                self._abandon(local_id)
                raise AdbTimeoutError(
                    f"{name} did not finish within {timeout or self.timeout:g} s"
                    f" on {self.transport.description}"
                )
            event: object = self._conn.next_event()
            if event is NEED_DATA:
                if close_stdin and self._conn.is_open(local_id):
                    # The command still runs: end its stdin, as the stock client does. One that
                    # has finished (output, exit and CLSE already read) is spared the packet.
                    self._conn.write(local_id, encode_close_stdin())
                close_stdin = False
                waiting_for = waiting_for or f"output of {name}"
                wait_until = deadline
                if idle_timeout is not None:
                    wait_until = min(deadline, heard + idle_timeout)
                event = self._next_event(wait_until, waiting_for)
            if isinstance(event, StreamData) and event.local_id == local_id:
                heard = self._clock()
                if not v2:
                    stdout += event.data
                    if on_stdout is not None:
                        on_stdout(event.data)
                    continue
                decoder.receive_data(event.data)
                while True:
                    packet = decoder.next_packet()
                    if packet is NEED_DATA:
                        break
                    if packet.id == ShellId.STDOUT:
                        stdout += packet.data
                        if on_stdout is not None:
                            on_stdout(packet.data)
                    elif packet.id == ShellId.STDERR:
                        stderr += packet.data
                    elif packet.id == ShellId.EXIT:
                        exit_code = packet.exit_code
            elif isinstance(event, StreamClosed) and event.local_id == local_id:
                break
        if v2 and self._conn.is_open(local_id):
            self._conn.close_stream(local_id)
        self._flush()  # the OKAYs for output read without waiting, and our CLSE
        return ShellOutput(exit_code, bytes(stdout), bytes(stderr))

    def _abandon(self, local_id: int) -> None:
        """Close a stream we stop reading, dropping what is queued, so the device stops too."""
        if self._conn.is_open(local_id):
            self._conn.close_stream(local_id, abort=True)
            self._flush()

    def _too_large(self, what: str) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"the terminal sent more than {_size(self.max_response)} for {what} on "
            f"{self.transport.description}; it may be faulty"
        )

    def getprop(self, name: str | None = None) -> str:
        """``getprop`` (the full listing) or one property's value."""
        if name is not None and not all(c.isalnum() or c in "._-" for c in name):
            raise ValueError(f"not a property name: {name!r}")
        return self.shell(f"getprop {name}" if name else "getprop").text

    def read_file(self, path: str, *, limit: int | None = None) -> bytes:
        """Read a file through the sync service (STAT, then RECV).

        Args:
            path: the file on the device.
            limit: most bytes accepted (default ``max_response``); a device that announces or
                sends more is refused, whatever its STAT said.

        Raises:
            AdbCommandError: no such file, the device refused it, or STAT says it is too large.
            ResponseTooLarge: the device sent more data than ``limit``.
        """
        limit = self.max_response if limit is None else limit
        local_id = self._open("sync:")
        decoder = SyncResponseDecoder()
        try:
            self._conn.write(local_id, encode_stat(path))
            decoder.expect(SyncId.STAT)
            self._flush()
            stat = self._sync_event(local_id, decoder)
            if not isinstance(stat, SyncStat) or not stat.exists:
                raise AdbCommandError(f"no such file on the device: {path}")
            if stat.size > limit:
                raise AdbCommandError(f"{path} is {stat.size} bytes, more than {limit}")
            self._conn.write(local_id, encode_recv(path))
            decoder.expect(SyncId.RECV)
            self._flush()
            content = bytearray()
            while True:
                event = self._sync_event(local_id, decoder)
                if isinstance(event, SyncData):
                    content += event.data
                    if len(content) > limit:
                        self._abandon(local_id)
                        raise ResponseTooLarge(
                            f"the terminal sent more than {_size(limit)} for {path} on "
                            f"{self.transport.description}; it may be faulty"
                        )
                elif isinstance(event, SyncDone):
                    break
                elif isinstance(event, SyncFail):
                    raise AdbCommandError(f"the device refused to send {path}: {event.message}")
            self._conn.write(local_id, encode_quit())
            self._flush()
            return bytes(content)
        finally:
            if self._conn.is_open(local_id):
                self._conn.close_stream(local_id)
                self._flush()

    def _sync_event(self, local_id: int, decoder: SyncResponseDecoder) -> object:
        deadline = self._clock() + self.timeout
        while True:
            event = decoder.next_event()
            if event is not NEED_DATA:
                return event
            codec_event = self._next_event(deadline, "sync answer")
            if isinstance(codec_event, StreamData) and codec_event.local_id == local_id:
                decoder.receive_data(codec_event.data)
            elif isinstance(codec_event, StreamClosed) and codec_event.local_id == local_id:
                raise TransportClosed("the device closed the sync stream")
