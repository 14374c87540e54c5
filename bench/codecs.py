"""Figure 4: codecs, frames per second, and the CPU a full check spends in them.

ZVT: every real APDU captured from Feig terminals (``../shared/captures/zvt-everest``, read in
place, never copied), framed for the serial link and parsed back through ``ZvtConnection`` (DLE
unstuffing, CRC, APDU, message decoding); built back from the messages; and the 4 KB
system-configuration printout taken from frame to facts (``parse_printout``). A ZVT codec only
has to keep up with a 9600-baud line (872 bytes/s), so the ratio is its throughput over the
line's, and the goal is to serve a 64-port station's lines from one core: at least 64.

ADB: the packet layer (header, checksum, payload) built and parsed side by side with adb-shell's
``AdbMessage.pack``/``unpack`` (both computing the checksum), on the packets a command produces;
and whole shell round trips through two ``AdbConnection`` codecs (host and device) in memory.

CPU per full check: the host side's codec entry points are metered with the thread's CPU clock
during a real check at realistic timing (the simulator's thread is not counted); the share of
the check's wall time spent in codecs must stay under 1/64, so 64 parallel checks' codecs fit on
one core.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .simserver import ADB_LATENCY, ROOT
from .stats import Goal, Row, Sample, Settings, ratios, side_by_side

FIGURE = "4 Codecs"
CAPTURES = ROOT.parent / "shared" / "captures" / "zvt-everest"
PRINTOUT = "print_system_configuration_reply.blob"
LINE_BYTES_PER_S = 9600 / 11  # 8N2: 11 bit times a byte
STATION = Goal(">=", 64)
SHARE = Goal("<=", 1 / 64, "1/64")
PEER = Goal("<=", 1.0)


def _blobs() -> list[Path]:
    return sorted(CAPTURES.glob("*.blob")) if CAPTURES.is_dir() else []


def _skipped(name: str) -> Row:
    return Row(
        FIGURE,
        name,
        None,
        "",
        goal=STATION,
        note=f"SKIPPED: no captures at {CAPTURES} (shared/captures/zvt-everest)",
    )


def _repeat_for(func: Callable[[], Any], seconds: float) -> Callable[[], float]:
    """A contender: seconds per call, calling ``func`` for about ``seconds``."""

    def measure() -> float:
        count, started = 0, time.perf_counter()
        deadline = started + seconds
        while True:
            func()
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                return (now - started) / count

    return measure


# --- ZVT ---------------------------------------------------------------------------------------


def _zvt(settings: Settings) -> list[Row]:
    from posdiag.drivers.zvt.apdu import decode_apdu
    from posdiag.drivers.zvt.connection import Link, MessageReceived, Role, ZvtConnection
    from posdiag.drivers.zvt.framing import NEED_DATA, encode_serial_frame
    from posdiag.drivers.zvt.messages import PrintTextBlock, decode_message
    from posdiag.drivers.zvt.printout import parse_printout

    blobs = _blobs()
    names = ("ZVT parse: captures framed for serial", "ZVT build", "ZVT 4 KB printout to facts")
    if not blobs:
        return [_skipped(name) for name in names]
    apdus = [blob.read_bytes() for blob in blobs]
    stream = b"".join(encode_serial_frame(apdu) for apdu in apdus)
    messages = [decode_message(decode_apdu(apdu)) for apdu in apdus]
    printout_frame = encode_serial_frame((CAPTURES / PRINTOUT).read_bytes())

    def parse_all() -> None:
        conn = ZvtConnection(Role.ECR, Link.SERIAL)
        conn.receive_data(stream)
        count = 0
        while (event := conn.next_event()) is not NEED_DATA:
            count += isinstance(event, MessageReceived)
        conn.data_to_send()  # the ACKs it queued
        if count != len(apdus):
            raise RuntimeError(f"parsed {count} of {len(apdus)} captured frames")

    def build_all() -> None:
        conn = ZvtConnection(Role.PT, Link.SERIAL)
        for message in messages:
            conn.send(message)
            conn.data_to_send()

    def printout_facts() -> None:
        conn = ZvtConnection(Role.ECR, Link.SERIAL)
        conn.receive_data(printout_frame)
        event = conn.next_event()
        assert isinstance(event, MessageReceived) and isinstance(event.message, PrintTextBlock)
        facts = parse_printout(event.message.lines())
        if facts.serial is None:
            raise RuntimeError("the captured printout gave no serial number")

    window = 0.05 if settings.quick else 0.3
    samples = {
        name: Sample.of([_repeat_for(func, window)() for _ in range(settings.runs)])
        for name, func in zip(names, (parse_all, build_all, printout_facts), strict=True)
    }
    frames, size = len(apdus), len(stream)
    rows = []
    for name in names[:2]:
        per_pass = samples[name]
        rows.append(
            Row(
                FIGURE,
                name,
                per_pass.inverted(frames),
                "frames/s",
                ratio=per_pass.inverted(size / LINE_BYTES_PER_S),
                ratio_label="bytes/s ÷ 9600-baud line",
                goal=STATION,
                note=f"{frames} captured APDUs, {size} bytes framed, incl. the 4 KB printout",
            )
        )
    printout = samples[names[2]]
    rows.append(
        Row(
            FIGURE,
            names[2],
            printout.inverted(),
            "printouts/s",
            ratio=printout.inverted(len(printout_frame) / LINE_BYTES_PER_S),
            ratio_label="its line time ÷ its parse time",
            goal=STATION,
            note=(
                f"{len(printout_frame)} bytes framed ({len(printout_frame) / LINE_BYTES_PER_S:.1f}"
                " s on the line): frame, CRC, APDU, print lines, parse_printout"
            ),
        )
    )
    return rows


# --- ADB ---------------------------------------------------------------------------------------


def _adb_packets() -> list[tuple[int, int, int, bytes]]:
    """What one command puts on the wire: OPEN, OKAYs, a 2 KB WRTE of output, CLSEs."""
    from posdiag.drivers.adb.protocol import Command

    output = bytes(range(256)) * 8
    service = b"shell,v2,TERM=xterm,raw:dumpsys battery\0"
    return [
        (Command.OPEN, 1, 0, service),
        (Command.OKAY, 7, 1, b""),
        (Command.WRTE, 7, 1, output),
        (Command.OKAY, 1, 7, b""),
        (Command.CLSE, 7, 1, b""),
    ]


def _adb_peer(settings: Settings) -> list[Row]:
    from posdiag.drivers.adb.protocol import AdbPacket, checksum, decode_packet, pack_header

    packets = _adb_packets()
    wire = [AdbPacket(*p).encode() for p in packets]
    contenders_build: dict[str, Callable[[], float]] = {}
    contenders_parse: dict[str, Callable[[], float]] = {}
    window = 0.05 if settings.quick else 0.3

    def ours_build() -> None:  # as AdbConnection._send builds a packet that carries a checksum
        for command, arg0, arg1, data in packets:
            pack_header(command, arg0, arg1, len(data), checksum(data)) + data

    def ours_parse() -> None:
        for raw in wire:
            decode_packet(raw)

    contenders_build["ours"] = _repeat_for(ours_build, window)
    contenders_parse["ours"] = _repeat_for(ours_parse, window)
    missing = ""
    try:
        from adb_shell.adb_message import AdbMessage, checksum, unpack
    except ImportError as exc:
        missing = f"NO PEER: adb-shell not installed ({exc.name}): pip install -e '.[bench]'"
    else:
        named = [(c.to_bytes(4, "little"), a0, a1, d) for c, a0, a1, d in packets]  # b"OPEN"

        def theirs_build() -> None:
            for command, arg0, arg1, data in named:
                AdbMessage(command, arg0, arg1, data).pack() + data

        def theirs_parse() -> None:
            for raw in wire:
                _command, _arg0, _arg1, length, check = unpack(raw[:24])
                data = raw[24 : 24 + length]
                if checksum(data) != check:
                    raise RuntimeError("adb-shell saw a bad checksum")

        contenders_build["adb-shell"] = _repeat_for(theirs_build, window)
        contenders_parse["adb-shell"] = _repeat_for(theirs_parse, window)
    rows = []
    size = sum(len(raw) for raw in wire)
    for name, contenders in (("build", contenders_build), ("parse", contenders_parse)):
        samples = side_by_side(contenders, settings.runs)
        mine = samples["ours"].inverted(len(packets))
        title = f"ADB {name}: packet layer (header, checksum, payload)"
        if "adb-shell" in samples:
            theirs = samples["adb-shell"].inverted(len(packets))
            rows.append(
                Row(
                    FIGURE,
                    title,
                    mine,
                    "packets/s",
                    ratio=ratios(samples["ours"], samples["adb-shell"]),
                    ratio_label="ours / adb-shell (time)",
                    goal=PEER,
                    note=(
                        f"adb-shell {theirs.median:,.0f} packets/s; a command's {len(packets)} "
                        f"packets ({size} bytes), checksums computed by both"
                    ),
                )
            )
        else:
            rows.append(Row(FIGURE, title, mine, "packets/s", goal=PEER, note=missing))
    return rows


def _adb_session(settings: Settings) -> Row:
    """Shell round trips through a host and a device codec, no I/O: the live codec's speed."""
    from posdiag.drivers.adb.codec import AdbConnection, Role, StreamOpenRequested
    from posdiag.drivers.adb.protocol import NEED_DATA
    from posdiag.drivers.adb.shell import ShellId, encode_exit, encode_shell_data

    host = AdbConnection(Role.HOST)
    device = AdbConnection(Role.DEVICE)
    host.send_connect()
    device.receive_data(host.data_to_send())
    device.next_event()
    device.send_connect()
    host.receive_data(device.data_to_send())
    host.next_event()
    output = encode_shell_data(ShellId.STDOUT, b"x" * 2048) + encode_exit(0)
    packets = 0

    def drain(conn: AdbConnection) -> list[object]:
        events = []
        while (event := conn.next_event()) is not NEED_DATA:
            events.append(event)
        return events

    def round_trip() -> None:
        nonlocal packets
        local = host.open_stream("shell,v2,TERM=xterm,raw:dumpsys battery")
        device.receive_data(host.data_to_send())
        (request,) = drain(device)
        assert isinstance(request, StreamOpenRequested)
        remote = device.accept_stream(request.remote_id)
        device.write(remote, output)
        device.close_stream(remote)
        host.receive_data(device.data_to_send())
        drain(host)
        device.receive_data(host.data_to_send())
        drain(device)
        host.data_to_send()
        device.data_to_send()
        packets += 5  # OPEN, OKAY, WRTE, CLSE, OKAY
        del local

    window = 0.05 if settings.quick else 0.3
    per_trip = Sample.of([_repeat_for(round_trip, window)() for _ in range(settings.runs)])
    return Row(
        FIGURE,
        "ADB live codec: shell round trips, host and device codecs",
        per_trip.inverted(5),
        "packets/s",
        note=(
            f"{per_trip.inverted().median:,.0f} round trips/s (2 KB of output each), both roles' "
            "AdbConnection state machines, no I/O"
        ),
    )


# --- CPU per check -----------------------------------------------------------------------------


class _Meter:
    """Thread CPU spent inside chosen callables, on one thread, outermost calls only."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._thread = threading.get_ident()
        self._depth = 0
        self._patched: list[tuple[Any, str, Any, bool]] = []

    def patch(self, owner: Any, name: str) -> None:
        """Wrap ``owner.name`` (a class, instance or module attribute) while metering."""
        own = name in vars(owner)
        original = getattr(owner, name)
        meter = self

        def metered(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != meter._thread or meter._depth:
                return original(*args, **kwargs)
            meter._depth += 1
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                meter.seconds += time.thread_time() - started
                meter.calls += 1
                meter._depth -= 1

        setattr(owner, name, metered)
        self._patched.append((owner, name, vars(owner).get(name) if own else None, own))

    def restore(self) -> None:
        """Put every wrapped callable back."""
        for owner, name, original, own in reversed(self._patched):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
        self._patched.clear()


@contextlib.contextmanager
def _metering() -> Iterator[_Meter]:
    meter = _Meter()
    try:
        yield meter
    finally:
        meter.restore()


def _zvt_check_codec_cpu(time_scale: float) -> tuple[float, float, int]:
    """(codec CPU s, check wall s, metered calls) for one ZVT check at the given timing."""
    import posdiag.drivers.zvt.driver as zvt_driver
    import posdiag.drivers.zvt.status_info as zvt_status_info
    import posdiag.drivers.zvt.terminal as zvt_terminal
    from posdiag.agent.connect import open_terminal
    from posdiag.agent.inspect import inspect_terminal
    from posdiag.agent.policy import load_policy
    from posdiag.drivers.address import parse_address
    from posdiag.drivers.zvt.connection import ZvtConnection
    from posdiag.drivers.zvt.messages import PrintTextBlock
    from posdiag.simulators.attach import PtyAttachment
    from posdiag.simulators.registry import create_zvt

    policy = load_policy(None)
    simulator = create_zvt("activated", {"time_scale": str(time_scale)})
    with PtyAttachment(simulator) as attachment, _metering() as meter:
        for name in ("receive_data", "next_event", "send", "data_to_send", "resend"):
            meter.patch(ZvtConnection, name)
        meter.patch(PrintTextBlock, "lines")
        meter.patch(zvt_driver, "decode_status_completion")
        meter.patch(zvt_status_info, "decode_totals")  # Status Information's BMP 60
        meter.patch(zvt_terminal, "parse_printout")
        started = time.perf_counter()
        report = inspect_terminal(
            open_terminal(parse_address(f"zvt+serial://{attachment.path}")), policy
        )
        wall = time.perf_counter() - started
    if report.identity is None or report.errors:
        raise RuntimeError(f"the ZVT check did not complete: {report.errors}")
    return meter.seconds, wall, meter.calls


def _adb_check_codec_cpu(time_scale: float) -> tuple[float, float, int]:
    """(codec CPU s, check wall s, metered calls) for one Android check at the given timing."""
    from posdiag.agent.connect import open_terminal
    from posdiag.agent.inspect import inspect_terminal
    from posdiag.agent.policy import load_policy
    from posdiag.drivers.adb.codec import AdbConnection
    from posdiag.drivers.adb.shell import ShellDecoder
    from posdiag.drivers.adb.sync import SyncResponseDecoder
    from posdiag.drivers.address import parse_address

    policy = load_policy(None)
    address = parse_address(
        f"adb+sim://activated?model=pax-a920&latency={ADB_LATENCY}&time_scale={time_scale}"
    )
    with _metering() as meter:
        for name in (
            "receive_data",
            "next_event",
            "data_to_send",
            "transfers_to_send",
            "send_connect",
            "send_auth",
            "open_stream",
            "write",
            "close_stream",
        ):
            meter.patch(AdbConnection, name)
        for decoder in (ShellDecoder, SyncResponseDecoder):
            for name in ("receive_data", "next_packet", "next_event", "expect"):
                if hasattr(decoder, name):
                    meter.patch(decoder, name)
        started = time.perf_counter()
        report = inspect_terminal(open_terminal(address), policy, simulated=True)
        wall = time.perf_counter() - started
    if report.identity is None or report.errors:
        raise RuntimeError(f"the Android check did not complete: {report.errors}")
    return meter.seconds, wall, meter.calls


def _per_check(settings: Settings) -> list[Row]:
    time_scale = 0.1 if settings.quick else 1.0
    runs = min(settings.runs, 3)  # a realistic ZVT check takes seconds
    rows = []
    for family, measure, what in (
        ("ZVT", _zvt_check_codec_cpu, "framing, APDU, messages, printout, status, totals"),
        ("Android", _adb_check_codec_cpu, "ADB packets, streams, shell v2, sync"),
    ):
        measure(time_scale)  # warm caches and imports
        cpu, walls, calls = [], [], 0
        for _ in range(runs):
            seconds, wall, calls = measure(time_scale)
            cpu.append(seconds)
            walls.append(wall)
        cpu_sample, wall_sample = Sample.of(cpu), Sample.of(walls)
        note = (
            f"{what}; {calls} metered calls; check wall {wall_sample.median:.2f} s at realistic "
            "timing; host thread only"
        )
        if settings.quick:
            note += "; QUICK: time_scale 0.1, so the share is 10× what it really is"
        rows.append(
            Row(
                FIGURE,
                f"CPU per full {family} check spent in codecs",
                cpu_sample.scaled(1000.0),
                "ms",
                ratio=ratios(cpu_sample, wall_sample),
                ratio_label="codec CPU / check wall",
                goal=SHARE,
                note=note,
            )
        )
    return rows


def run(settings: Settings) -> list[Row]:
    """ZVT and ADB codec throughput, the peer comparison, and codec CPU per check."""
    return [*_zvt(settings), *_adb_peer(settings), _adb_session(settings), *_per_check(settings)]
