"""The simulated Android POS's ADB daemon: the device side of the protocol over any transport.

``AdbSimulator.serve()`` runs one connection with a DEVICE-role
:class:`~posdiag.drivers.adb.codec.AdbConnection`: it answers the host's CNXN (directly, or with
an AUTH token when the scenario requires authentication, accepting a new public key when the
simulated operator taps "Allow"), accepts ``shell`` (v2 with exit codes, and plain), ``exec`` and
``sync`` streams, runs commands in :class:`~.shell.AndroidShell`, and refuses the rest. The same
engine serves TCP (``adb connect``), the simulated USB device and in-memory links.

Timing is a real adbd's: the ``latency`` (scaled by ``scale``) is the fork+exec of the shell
process adbd starts for each ``shell``/``exec`` stream, paid once per stream (one command line,
however many ``;``-separated commands it holds), never for ``sync`` (a thread of adbd), and
concurrently for streams opened together (see ``_Session._open``).

Faults are injected on the way out: bad checksums on the first CNXN, dropped and split packets,
stalls before stream answers, and a device that vanishes after a number of commands. The shell
decides the behavioural faults (refuse, lie, lose power); on a power cut this engine vanishes as
``vanish_after`` does, without answering: a TCP or memory link drops and the next connection
finds the rebooted device with whatever part of the command had taken hold; the simulated USB
device drops off the bus until it is plugged in again (``SimulatedUsbDevice.plug()``). The
state lives in the :class:`AdbSimulator`: reconnect a memory link with a new
``MemoryAttachment`` on the same simulator object (an attachment starts only once).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import structlog

from posdiag.drivers.adb.auth import (
    AdbKeyError,
    parse_android_public_key,
    verify_token_signature,
)
from posdiag.drivers.adb.codec import (
    AdbConnection,
    AuthPublicKey,
    AuthSignature,
    Connected,
    Role,
    StreamClosed,
    StreamData,
    StreamOpenRequested,
)
from posdiag.drivers.adb.protocol import NEED_DATA, AdbProtocolError, AuthType, build_banner
from posdiag.drivers.adb.shell import ShellDecoder, ShellId, encode_exit, encode_shell_data
from posdiag.drivers.errors import TransportError
from posdiag.drivers.transport.base import Transport

from .hostile import ANSI, BIDI
from .releases import link_parameters
from .shell import AndroidShell, PowerLoss, ShellResult
from .state import AndroidState
from .sync_service import SyncService

log = structlog.get_logger(__name__)

POLL = 0.1
TOKEN_SIZE = 20
FILE_MODE = 0o100644
"""``st_mode`` of an ordinary file outside shared storage (``-rw-r--r--``)."""
ROOT_REFUSED = b"adbd cannot run as root in production builds\n"
"""``root:`` on a user build (``ro.debuggable`` not 1): AOSP ``restart_root_service``."""
UNROOT_ANSWER = b"adbd not running as root\n"
REMOUNT_REFUSED = b'Not running as root. Try "adb root" first.\n'
"""``remount:`` while adbd runs as shell: AOSP ``remount_service``."""
SIDELOAD_REFUSED = b"'adb root' is required for 'adb reboot sideload'.\n"
REBOOT_REFUSED = b"reboot failed: -1\n"
"""A reboot target the unit's locked boot chain refuses: adbd's text for a failed reboot."""
FLOOD_LINE = b"I/posdiag-flood( 1234): the terminal keeps talking and never stops\n"
FLOOD_CHUNK = FLOOD_LINE * (256 * 1024 // len(FLOOD_LINE))
"""What a ``flood_output`` device writes each time the host has taken the previous chunk."""


class _Stream:
    """One open stream on the device side."""

    def __init__(
        self, kind: str, command: str = "", v2: bool = False, sync: SyncService | None = None
    ) -> None:
        self.kind = kind
        self.command = command
        self.v2 = v2
        self.shell = ShellDecoder()
        self.sync = sync
        self.flood = False  # flood_output: write FLOOD_CHUNK whenever the last one was taken
        self.ready_at: float | None = None  # a shell still starting: runs at this monotonic time


class AdbSimulator:
    """A simulated Android POS, attachable to any transport.

    Args:
        state: the device state, shared by every connection.
        packetized: write header and payload separately (the simulated USB device).
    """

    def __init__(self, state: AndroidState, *, packetized: bool = False) -> None:
        self.state = state
        self.shell = AndroidShell(state)
        self.packetized = packetized
        self.lock = threading.RLock()
        self.streams_opened = 0
        self.opened: Counter[str] = Counter()
        """Streams opened per service kind (``shell``, ``exec``, ``sync``, or the refused
        ``other``): how many shell processes a client made the device start."""
        self.prompts_shown = 0
        self.offline_until = 0.0
        """Monotonic time the unit is back from a reboot; connections before it are dropped."""
        self.reboots = 0

    @property
    def online(self) -> bool:
        """Whether adbd is up: debugging enabled and not rebooting."""
        return self.state.usb_debugging and time.monotonic() >= self.offline_until

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        """Serve one connection until it closes or ``stop`` is set.

        A unit whose debugging is disabled, or which is still rebooting, has no adbd to answer:
        the connection is dropped at once, without a packet.
        """
        if not self.online:
            log.debug("sim.adb.refused", debugging=self.state.usb_debugging)
            transport.close()
            return
        _Session(self, transport, stop).run()

    def reboot(self) -> None:
        """Go down for ``reboot_seconds`` (scaled); the state stays as it was."""
        with self.lock:
            self.reboots += 1
            delay = self.state.reboot_seconds * self.state.scale
            self.offline_until = time.monotonic() + delay

    def banner(self) -> bytes:
        """The device's CNXN identity string (no serial: it comes from USB iSerialNumber)."""
        s = self.state
        # The banner's own separators (";", ":", "=") and NUL cannot be in a value.
        suffix = ANSI + BIDI if s.faults.hostile_text else ""
        return build_banner(
            "device",
            {
                "ro.product.name": s.product,
                "ro.product.model": s.model + suffix,
                "ro.product.device": s.device,
            },
            s.features,
        )


class _Session:
    def __init__(self, sim: AdbSimulator, transport: Transport, stop: threading.Event) -> None:
        self.sim = sim
        self.transport = transport
        self.stop = stop
        link = link_parameters(sim.state.release)
        self.conn = AdbConnection(
            Role.DEVICE,
            features=sim.state.features,
            max_payload=link.max_payload,
            version=link.version,
        )
        self.streams: dict[int, _Stream] = {}
        self.token = b""
        self.cnxn_sent = False

    # --- output with faults ----------------------------------------------------------------------

    def _flush(self) -> None:
        faults = self.sim.state.faults
        transfers = self.conn.transfers_to_send()
        stream: list[bytes] = []  # a byte stream (TCP, memory) gets one write per flush
        index = 0
        while index < len(transfers):
            header = transfers[index]
            has_payload = int.from_bytes(header[12:16], "little") > 0
            packet = [header, transfers[index + 1]] if has_payload else [header]
            index += len(packet)
            if faults.drop_packets > 0 and self.cnxn_sent:
                faults.drop_packets -= 1
                log.debug("sim.adb.fault", fault="drop_packet")
                continue
            if faults.bad_checksum > 0 and header[:4] == b"CNXN" and has_payload:
                faults.bad_checksum -= 1
                check = (int.from_bytes(header[16:20], "little") + 1) & 0xFFFFFFFF
                header = header[:16] + check.to_bytes(4, "little") + header[20:]
                packet[0] = header
                log.debug("sim.adb.fault", fault="bad_checksum")
            if header[:4] == b"CNXN":
                self.cnxn_sent = True
            if self.sim.packetized:
                for transfer in packet:
                    self.transport.write(transfer)
            elif faults.split_packets:
                data = b"".join(packet)
                for i in range(0, len(data), 7):
                    self.transport.write(data[i : i + 7])
            else:
                stream.extend(packet)
        if stream:
            # One write for everything an event produced (OKAY and the output's WRTE), as a
            # device's TCP stack coalesces them; a write per packet would make every client
            # read, and answer, each one separately.
            self.transport.write(b"".join(stream))

    # --- loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                data = self.transport.read(1024 * 1024, self._wait())
                if data:
                    self.conn.receive_data(data)
                while True:
                    event = self.conn.next_event()
                    if event is NEED_DATA:
                        break
                    if not self._handle(event):
                        return
                if not self._start_ready_shells():
                    return
                self._feed_floods()
                self._flush()
        except AdbProtocolError as exc:
            log.debug("sim.adb.protocol_error", reason=str(exc))
        except TransportError:
            log.debug("sim.adb.closed")
        finally:
            if not self.stop.is_set():
                self.transport.close()

    def _handle(self, event: object) -> bool:
        state = self.sim.state
        if isinstance(event, Connected):
            if state.auth_required:
                self.token = os.urandom(TOKEN_SIZE)
                self.conn.send_auth(AuthType.TOKEN, self.token)
            else:
                self.conn.send_connect(self.sim.banner())
        elif isinstance(event, AuthSignature):
            if self._trusted(event.signature):
                self.conn.send_connect(self.sim.banner())
            else:
                self.token = os.urandom(TOKEN_SIZE)
                self.conn.send_auth(AuthType.TOKEN, self.token)
        elif isinstance(event, AuthPublicKey):
            self.sim.prompts_shown += 1
            if state.accept_new_keys:
                key = event.key.rstrip(b"\0").decode("ascii", errors="replace")
                with self.sim.lock:
                    state.trusted_keys.append(key)
                self.conn.send_connect(self.sim.banner())
            # else: the prompt stays unanswered on the screen; the host times out
        elif isinstance(event, StreamOpenRequested):
            return self._open(event)
        elif isinstance(event, StreamData):
            self._data(event.local_id, event.data)
        elif isinstance(event, StreamClosed):
            self.streams.pop(event.local_id, None)
        return True

    def _trusted(self, signature: bytes) -> bool:
        for line in self.sim.state.trusted_keys:
            try:
                key = parse_android_public_key(line.encode())
            except (ValueError, AdbProtocolError, AdbKeyError):
                continue  # adbd skips unreadable adb_keys lines
            if verify_token_signature(key, self.token, signature):
                return True
        return False

    # --- services --------------------------------------------------------------------------------

    def _open(self, request: StreamOpenRequested) -> bool:
        """Answer an OPEN: a shell starts (after its fork+exec time), sync serves, rest refused.

        Timing, as a real adbd's: every ``shell``/``exec`` stream is a process adbd forks and
        execs (``/system/bin/sh -c LINE``), and that start is the ``latency`` (scaled) a real
        unit shows per ``adb shell`` command. It is paid once per stream, that is per command
        line, never per ``;``-separated command inside it: the shell runs those itself, without
        another exec of its own. No per-command cost is added on top, because the reference
        gives no figure for one. ``sync`` runs in a thread of adbd's own (no fork), so it costs
        no latency. Shells opened together start together, as forked processes do: the OKAY
        goes out at once, each stream's output when its own latency has passed, and the loop
        keeps serving the link meanwhile instead of sleeping through it.
        """
        faults = self.sim.state.faults
        service = request.service
        name, _, command = service.partition(":")
        kind, *args = name.split(",")
        shell = kind in ("shell", "exec") and bool(command)
        with self.sim.lock:
            self.sim.streams_opened += 1
            self.sim.opened[kind if shell or service == "sync:" else "other"] += 1
            opened = self.sim.streams_opened
        if faults.vanish_after is not None and opened > faults.vanish_after:
            self._vanish("vanish")
            return False
        if faults.stall:
            self.stop.wait(faults.stall)
        if shell:
            v2 = kind == "shell" and "v2" in args and "shell_v2" in self.sim.state.features
            local_id = self.conn.accept_stream(request.remote_id)
            stream = self.streams[local_id] = _Stream("shell", command, v2)
            if faults.hang:
                log.debug("sim.adb.fault", fault="hang", command=command.split()[0])
                return True  # the stream is open; no output, no exit, no close: ever
            if faults.flood_output:
                log.debug("sim.adb.fault", fault="flood_output", command=command.split()[0])
                stream.flood = True
                return True
            delay = self.sim.state.latency * self.sim.state.scale
            if delay > 0:
                stream.ready_at = time.monotonic() + delay
                return True
            return self._run_shell(local_id)
        elif service.startswith("sync:"):  # adbd compares the first 5 bytes only
            local_id = self.conn.accept_stream(request.remote_id)
            with self.sim.lock:
                tree = self.sim.state.tree
            sync = SyncService(tree, frozenset(self.sim.state.features))
            self.streams[local_id] = _Stream("sync", sync=sync)
        elif service.startswith("reboot:"):
            return self._reboot(request.remote_id, service[len("reboot:") :])
        elif service.startswith(("root:", "unroot:", "remount:")):
            answer = {"root": ROOT_REFUSED, "unroot": UNROOT_ANSWER, "remount": REMOUNT_REFUSED}
            self._answer_and_close(request.remote_id, answer[name])
        else:
            self.conn.refuse_stream(request.remote_id)
        return True

    def _answer_and_close(self, remote_id: int, text: bytes) -> None:
        """A service thread of adbd's that writes one line and closes (root:, remount:…)."""
        local_id = self.conn.accept_stream(remote_id)
        self.conn.write(local_id, text)
        self.conn.close_stream(local_id)

    def _reboot(self, remote_id: int, target: str) -> bool:
        """``reboot:[target]``: accepted, then the unit goes down and the link drops.

        adbd accepts, sets the reboot property and never answers; the unit is back after
        ``reboot_seconds`` (scaled), its state as it was.

        ``sideload`` needs root, which a user build's adbd is not; ``bootloader``/``fastboot``
        are refused by a unit whose boot chain is locked (``bootloader_locked``), with adbd's
        text for a failed reboot. ``recovery`` reboots and comes back as a plain reboot does:
        the simulated recovery has nothing to do and boots Android again.
        """
        state = self.sim.state
        if target in ("sideload", "sideload-auto-reboot"):
            self._answer_and_close(remote_id, SIDELOAD_REFUSED)
            return True
        if target in ("bootloader", "fastboot") and state.bootloader_locked:
            self._answer_and_close(remote_id, REBOOT_REFUSED)
            return True
        self.conn.accept_stream(remote_id)
        self._flush()
        log.debug("sim.adb.reboot", target=target or "android")
        self.sim.reboot()
        self._vanish("reboot")
        return False

    def _wait(self) -> float:
        """How long the next read may block: POLL, or less when a shell is about to start."""
        starts = [s.ready_at for s in self.streams.values() if s.ready_at is not None]
        if not starts:
            return POLL
        return max(0.0, min(POLL, min(starts) - time.monotonic()))

    def _start_ready_shells(self) -> bool:
        """Run every shell whose start time has come; False when the device died doing so."""
        now = time.monotonic()
        for local_id, stream in list(self.streams.items()):
            if stream.ready_at is not None and stream.ready_at <= now:
                stream.ready_at = None
                if not self._run_shell(local_id):
                    return False
        return True

    def _feed_floods(self) -> None:
        """``flood_output``: top up every flooding stream the host has caught up with.

        ADB allows one WRTE in flight per stream, so a chunk goes out each time the host's OKAY
        for the previous one arrives: the flood runs exactly as fast as the host reads it, until
        the host closes the stream (its CLSE removes it from ``streams``).
        """
        for local_id, stream in list(self.streams.items()):
            if (
                stream.flood
                and self.conn.is_open(local_id)
                and not self.conn.is_write_pending(local_id)
            ):
                chunk = encode_shell_data(ShellId.STDOUT, FLOOD_CHUNK) if stream.v2 else FLOOD_CHUNK
                self.conn.write(local_id, chunk)

    def _vanish(self, fault: str) -> None:
        """Leave the link as a device that died does: a pulled cable, or a closed socket."""
        log.debug("sim.adb.fault", fault=fault)
        disconnect = getattr(self.transport, "disconnect", self.transport.close)
        disconnect()

    def _run_shell(self, local_id: int) -> bool:
        """Run the stream's command and answer it; False when the device died doing so."""
        stream = self.streams[local_id]
        try:
            with self.sim.lock:
                result = self.sim.shell.run(stream.command)
        except PowerLoss as loss:
            # The OKAY for the stream went out already, and what the line's earlier commands
            # printed streamed out as they ran: the host sees that, then silence.
            self._write_output(local_id, stream, loss.before, exit_code=None)
            self._flush()
            self._vanish("power_loss")
            return False
        log.debug("sim.adb.shell", command=stream.command.split()[0], exit=result.exit_code)
        self._write_output(local_id, stream, result, exit_code=result.exit_code)
        self.conn.close_stream(local_id)
        self.streams.pop(local_id, None)
        return True

    def _write_output(
        self, local_id: int, stream: _Stream, result: ShellResult, *, exit_code: int | None
    ) -> None:
        """A shell's output on its stream: v2 packets (exit code last), or one raw channel."""
        if stream.v2:
            payload = encode_shell_data(ShellId.STDOUT, result.stdout.encode()) + encode_shell_data(
                ShellId.STDERR, result.stderr.encode()
            )
            if exit_code is not None:
                payload += encode_exit(exit_code)
        else:
            payload = result.merged.encode()  # stdout and stderr as the commands wrote them
        if payload:
            self.conn.write(local_id, payload)

    def _data(self, local_id: int, data: bytes) -> None:
        stream = self.streams.get(local_id)
        if stream is None or stream.sync is None:
            return  # shell stdin / close-stdin: the commands read no input
        with self.sim.lock:
            reply = stream.sync.receive(data)
        if reply.data:
            self.conn.write(local_id, reply.data)
        if reply.done:  # QUIT, or a failure: adbd's sync thread ends and its socket closes
            self.conn.close_stream(local_id)
            self.streams.pop(local_id, None)
