"""Section 1: the sans-IO codecs under random and mutated bytes, whole and byte by byte.

Each codec is fed the same input twice: in one piece, and one byte at a time (draining events
after every byte). Valid inputs come from encoding typed messages and, for ZVT, from the real
captures in ``../shared/captures/zvt-everest`` (read in place, never copied); mutations flip,
insert, delete, duplicate and cut bytes, and for ZVT serial also re-frame a mutated APDU with a
correct CRC so the mutation reaches the APDU and message layers instead of dying at the CRC.

Defects:
    exception: anything raised that is not the codec's documented typed error
        (``ZvtDecodeError`` for ZVT decoders, ``AdbProtocolError`` for the ADB codecs,
        ``NexoError`` for nexo bodies: :mod:`.codecs_nexo`, one JSON document at a time).
    whole != bytewise: the two feedings gave different events, output or errors (output is
        compared when no error ended the feeding: a connection that died drops its queue, and
        what it wrote before then depends on where the reads happened to end).
    hang: a decoder kept returning events past a bound proportional to its input.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from posdiag.drivers.adb.codec import (
    AdbConnection,
    AuthToken,
    Connected,
    StreamOpenRequested,
)
from posdiag.drivers.adb.codec import Role as AdbRole
from posdiag.drivers.adb.protocol import (
    A_VERSION_SKIP_CHECKSUM,
    MAX_PAYLOAD,
    NEED_DATA,
    AdbPacket,
    AdbProtocolError,
    AdbUsageError,
    AuthType,
    Command,
)
from posdiag.drivers.adb.shell import ShellDecoder, encode_exit, encode_shell_data
from posdiag.drivers.adb.sync import (
    SyncRequestDecoder,
    SyncResponseDecoder,
    encode_data,
    encode_dent,
    encode_done,
    encode_list,
    encode_list_done,
    encode_recv,
    encode_stat,
    encode_stat_response,
)
from posdiag.drivers.zvt.bmp import decode_bmps
from posdiag.drivers.zvt.connection import GarbageReceived, Link, MessageReceived, ZvtConnection
from posdiag.drivers.zvt.connection import Role as ZvtRole
from posdiag.drivers.zvt.errors import ZvtDecodeError
from posdiag.drivers.zvt.framing import encode_serial_frame
from posdiag.drivers.zvt.messages import (
    AbortFromTerminal,
    Completion,
    Diagnosis,
    EndOfDay,
    FeigRequest,
    IntermediateStatus,
    LogOff,
    Message,
    NegativeAck,
    PositiveAck,
    PrintLine,
    PrintSystemConfiguration,
    PrintTextBlock,
    Registration,
    SendTurnoverTotals,
    SetTerminalId,
    StatusEnquiry,
    StatusInformation,
)
from posdiag.drivers.zvt.payloads import (
    FeigSystemInfo,
    StatusReport,
    Totals,
    decode_status_completion,
    decode_totals,
    encode_status_completion,
    encode_totals,
)
from posdiag.drivers.zvt.tlv import Tlv, decode_tlv

from .codecs_nexo import feed_nexo, nexo_inputs
from .common import CAPTURES, SectionResult, Settings

KEY = "codecs"
TITLE = "1 Codec fuzzing"
COLUMNS = ("exception", "whole != bytewise", "hang")

Outcome = tuple[list[Any], bytes, str | None]
"""What one feeding produced: events (normalised), bytes the codec queued, the typed error."""


class Hang(Exception):
    """A decoder returned more events than its input could hold."""


# --- inputs ------------------------------------------------------------------------------------


def zvt_messages() -> list[Message]:
    """Typed messages of both directions, encoded by the codec itself."""
    status = StatusReport(
        terminal_status=0x00,
        sw_version="GER-APP-v2.0.9",
        terminal_id="52502000",
        device_name="cVEND plug",
        device_sw_version="02.01",
        serial="17F59B1F",
        device_state=0,
        date="1122",
        time="230200",
    )
    lines = PrintTextBlock.from_lines(["Terminal-ID 52502000", "Firmware cR02.01", "=" * 20])
    return [
        Registration("000000", 0x86, tlv=()),
        LogOff(),
        StatusEnquiry("000000", tlv=()),
        Diagnosis(2),
        PrintSystemConfiguration(),
        EndOfDay("000000"),
        SendTurnoverTotals("000000", tlv=()),
        SetTerminalId("000000", None),
        SetTerminalId("000000", "29001006"),
        FeigRequest(0x0001),
        FeigRequest(0x0255, "000000"),
        PositiveAck(),
        NegativeAck(0x83),
        Completion(encode_status_completion(status, send_sw_version=True, send_tlv=True)),
        Completion(),
        AbortFromTerminal(0x6C),
        IntermediateStatus(0x17, 2, ()),
        StatusInformation(b"\x27\x00\x60" + encode_totals(Totals(1, 3, ((2, 3458), (1, 1299))))),
        PrintLine(0x00, "Café Beispiel GmbH"),
        lines,
        Completion(FeigSystemInfo("17F59B1F", "GER-APP-v2.0.9", "52502000", 46.8).encode()),
    ]


def zvt_apdus() -> list[bytes]:
    """Every valid APDU: the typed messages' and the captured ones (when the captures exist)."""
    apdus = [message.encode() for message in zvt_messages()]
    if CAPTURES.is_dir():
        apdus.extend(path.read_bytes() for path in sorted(CAPTURES.glob("*.blob")))
    return apdus


def _handshake() -> tuple[bytes, bytes]:
    """A whole ADB session between two real codecs: what the host sent, what the device sent."""
    host, device = AdbConnection(AdbRole.HOST), AdbConnection(AdbRole.DEVICE)
    host.send_connect()
    from_host, from_device = bytearray(), bytearray()
    opened = False
    for _ in range(8):  # a few round trips carry the whole exchange
        chunk = host.data_to_send()
        from_host += chunk
        device.receive_data(chunk)
        while (event := device.next_event()) is not NEED_DATA:
            _session_answer(device, event)
            if isinstance(event, StreamOpenRequested):
                local = device.accept_stream(event.remote_id)
                device.write(local, encode_shell_data(1, b"PAX A920\n") + encode_exit(0))
                device.close_stream(local)
        chunk = device.data_to_send()
        from_device += chunk
        host.receive_data(chunk)
        while (event := host.next_event()) is not NEED_DATA:
            _host_answer(host, event)
            if isinstance(event, Connected) and not opened:
                opened = True
                host.open_stream("shell,v2,raw:getprop ro.serialno")
    # An AUTH TOKEN and a stray OPEN from the device reach the host paths a plain CNXN does not.
    extra = AdbPacket(Command.AUTH, AuthType.TOKEN, 0, b"\x07" * 20).encode(with_checksum=False)
    extra += AdbPacket(Command.OPEN, 9, 0, b"tcp:1\0").encode(with_checksum=False)
    cnxn = AdbPacket(Command.CNXN, A_VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, b"device::").encode(
        with_checksum=False
    )
    return bytes(from_host), extra + bytes(from_device) + cnxn


def _session_answer(conn: AdbConnection, event: Any) -> None:
    if not isinstance(event, StreamOpenRequested):
        _device_answer(conn, event)


def _device_answer(conn: AdbConnection, event: Any) -> None:
    """What a simulated device does on each event (so fuzzed input reaches the stream code)."""
    try:
        if isinstance(event, Connected):
            conn.send_connect()
        elif isinstance(event, StreamOpenRequested):
            if event.service.startswith("shell"):
                conn.accept_stream(event.remote_id)
            else:
                conn.refuse_stream(event.remote_id)
    except AdbUsageError:
        pass  # the responder's own misuse of the API, not the codec's fault


def _host_answer(conn: AdbConnection, event: Any) -> None:
    """What the driver does on each event: sign tokens, open a stream once online."""
    try:
        if isinstance(event, AuthToken):
            conn.send_auth(AuthType.SIGNATURE, b"\x01" * 256)
        elif isinstance(event, Connected) and not conn.is_open(1):
            conn.open_stream("shell:x")
    except AdbUsageError:
        pass


def shell_inputs() -> list[bytes]:
    """Shell v2 streams as a device sends them."""
    return [
        encode_shell_data(1, b"hello\n") + encode_shell_data(2, b"oops\n") + encode_exit(3),
        encode_shell_data(1, bytes(range(256)) * 4) + encode_exit(0),
    ]


def sync_request_inputs() -> list[bytes]:
    """Sync requests as a host sends them."""
    return [
        encode_stat("/sdcard/x") + encode_list("/sdcard") + encode_recv("/data/a b"),
        encode_data(b"abc" * 100) + encode_done(12),
    ]


def sync_response_inputs() -> list[tuple[list[str], bytes]]:
    """Sync responses as a device sends them, with the requests they answer."""
    return [
        (["STAT"], encode_stat_response(0o100644, 12, 1700000000)),
        (
            ["LIST"],
            encode_dent(0o100644, 3, 1, "merchant.xml")
            + encode_dent(0o40755, 0, 2, "d")
            + encode_list_done(),
        ),
        (["RECV"], encode_data(b"x" * 300) + encode_done()),
    ]


# --- mutation ----------------------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: flip, insert, delete, zero, duplicate a slice, cut."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buffer:
            buffer.append(rng.randrange(256))
            continue
        index = rng.randrange(len(buffer))
        kind = rng.randrange(6)
        if kind == 0:
            buffer[index] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buffer.insert(
                index, rng.choice((0x10, 0x02, 0x03, 0x06, 0x15, 0xFF, rng.randrange(256)))
            )
        elif kind == 2:
            del buffer[index]
        elif kind == 3:
            buffer[index] = rng.choice((0, 0xFF))
        elif kind == 4:
            end = min(len(buffer), index + rng.randint(1, 16))
            buffer[index:index] = buffer[index:end]
        else:
            del buffer[index:]
    return bytes(buffer)


def random_bytes(rng: random.Random, limit: int = 300) -> bytes:
    """Bytes from nowhere, biased towards the protocols' special values."""
    size = rng.randint(0, limit)
    specials = (0x10, 0x02, 0x03, 0x06, 0x15, 0x80, 0x84, 0x06, 0xFF, 0x00)
    return bytes(
        rng.choice(specials) if rng.random() < 0.3 else rng.randrange(256) for _ in range(size)
    )


# --- feeding -----------------------------------------------------------------------------------


def _coalesce(events: list[Any]) -> list[Any]:
    """Merge adjacent garbage events: how skipped bytes are grouped depends on the chunks."""
    merged: list[Any] = []
    for event in events:
        if (
            isinstance(event, GarbageReceived)
            and merged
            and isinstance(merged[-1], GarbageReceived)
        ):
            merged[-1] = GarbageReceived(merged[-1].data + event.data)
        else:
            merged.append(event)
    return merged


def _zvt_message_checks(event: Any) -> None:
    """Run the message-level decoders a driver runs on what arrived (typed errors allowed)."""
    if not isinstance(event, MessageReceived):
        return
    data = event.apdu.data
    for decode in (
        lambda: decode_bmps(data),
        lambda: decode_tlv(data),
        lambda: decode_totals(data),
        lambda: FeigSystemInfo.decode(data),
        lambda: decode_status_completion(data),
        lambda: decode_status_completion(data, sw_version_expected=False),
    ):
        with contextlib.suppress(ZvtDecodeError):
            decode()
    message = event.message
    for accessor in ("bmps", "lines"):
        method = getattr(message, accessor, None)
        if callable(method):
            try:
                result = method()
                if accessor == "bmps":
                    for bmp in result:
                        if bmp.bmp_id == 0x06:
                            for item in bmp.tlv():
                                _walk_tlv(item, 0)
            except ZvtDecodeError:
                pass


def _walk_tlv(item: Tlv, depth: int) -> None:
    if depth > 8 or not item.constructed:
        return
    try:
        for child in item.children():
            _walk_tlv(child, depth + 1)
    except ZvtDecodeError:
        pass


def feed_zvt(role: ZvtRole, link: Link, chunks: list[bytes]) -> Outcome:
    """Feed a ZVT connection; ``ZvtDecodeError`` from the message decoders is allowed."""
    conn = ZvtConnection(role, link)
    events: list[Any] = []
    bound = 4 * sum(len(c) for c in chunks) + 16
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is NEED_DATA or type(event).__name__ == "NeedData":
                break
            events.append(event)
            if len(events) > bound:
                raise Hang(f"{len(events)} events from {bound // 4} bytes")
            _zvt_message_checks(event)
    conn.inter_byte_timeout()
    out = conn.data_to_send()
    return _coalesce(events), out, None


def feed_adb(role: AdbRole, chunks: list[bytes]) -> Outcome:
    """Feed an ADB connection that answers like the real driver/simulator would."""
    conn = AdbConnection(role)
    if role is AdbRole.HOST:
        conn.send_connect()
        conn.data_to_send()
    answer = _host_answer if role is AdbRole.HOST else _device_answer
    events: list[Any] = []
    out = bytearray()
    bound = 4 * sum(len(c) for c in chunks) + 16
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not NEED_DATA:
                events.append(event)
                if len(events) > bound:
                    raise Hang(f"{len(events)} events from {bound // 4} bytes")
                answer(conn, event)
                out += conn.data_to_send()  # after every event: an error later drops the queue
            out += conn.data_to_send()
    except AdbProtocolError as exc:
        # A dead connection drops its queue; what it wrote before depends on where reads ended.
        return events, b"", type(exc).__name__
    return events, bytes(out), None


def _drain(
    receive: Callable[[bytes], None], next_event: Callable[[], Any], chunks: list[bytes], name: str
) -> Outcome:
    """Feed a decoder that only receives (no answers to send) and collect what it yields."""
    events: list[Any] = []
    bound = sum(len(c) for c in chunks) + 16
    try:
        for chunk in chunks:
            receive(chunk)
            while (event := next_event()) is not NEED_DATA:
                events.append(event)
                if len(events) > bound:
                    raise Hang(name)
    except AdbProtocolError as exc:
        return events, b"", type(exc).__name__
    return events, b"", None


def feed_shell(chunks: list[bytes]) -> Outcome:
    """Feed a shell v2 decoder."""
    decoder = ShellDecoder()
    return _drain(decoder.receive_data, decoder.next_packet, chunks, "shell decoder")


def feed_sync_requests(chunks: list[bytes]) -> Outcome:
    """Feed the device side's sync request decoder."""
    decoder = SyncRequestDecoder()
    return _drain(decoder.receive_data, decoder.next_event, chunks, "sync request decoder")


def feed_sync_responses(expect: list[str], chunks: list[bytes]) -> Outcome:
    """Feed the host side's sync response decoder, expecting the given requests' answers."""
    decoder = SyncResponseDecoder()
    for request in expect:
        decoder.expect(request)
    events: list[Any] = []
    bound = sum(len(c) for c in chunks) + 16
    try:
        for chunk in chunks:
            decoder.receive_data(chunk)
            while (event := decoder.next_event()) is not NEED_DATA:
                events.append(event)
                if len(events) > bound:
                    raise Hang("sync response decoder")
    except AdbProtocolError as exc:
        return events, b"", type(exc).__name__
    return events, b"", None


def check(
    result: SectionResult, label: str, feed: Callable[[list[bytes]], Outcome], data: bytes
) -> None:
    """Feed ``data`` whole and byte by byte; count the input and any defect."""
    row = result.row(label)
    row.tried += 1
    outcomes: list[Outcome] = []
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        try:
            outcomes.append(feed(chunks))
        except Hang as exc:
            row.defect("hang", f"{exc}; input {data[:64].hex()}")
            return
        except Exception as exc:
            row.defect("exception", f"{type(exc).__name__}: {exc}; input {data[:64].hex()}")
            return
    if outcomes[0] != outcomes[1]:
        whole, bytewise = outcomes
        row.defect(
            "whole != bytewise",
            f"whole {len(whole[0])} events err={whole[2]}, bytewise {len(bytewise[0])} events "
            f"err={bytewise[2]}; input {data[:64].hex()}",
        )


def run(settings: Settings, outputs: Any = None) -> SectionResult:
    """Fuzz every codec in both roles."""
    del outputs  # nothing here is written anywhere
    rng = settings.rng(KEY)
    result = SectionResult(KEY, TITLE, COLUMNS)
    per_codec = settings.size(400, 10_000)
    apdus = zvt_apdus()
    started = time.monotonic()
    host_bytes, device_bytes = _handshake()
    for link in (Link.SERIAL, Link.TCP):
        for role in (ZvtRole.ECR, ZvtRole.PT):
            label = f"ZVT {link.value} {role.value}"

            def feed(chunks: list[bytes], role: ZvtRole = role, link: Link = link) -> Outcome:
                return feed_zvt(role, link, chunks)

            frame = encode_serial_frame if link is Link.SERIAL else (lambda apdu: apdu)
            for apdu in apdus:  # every valid APDU as it is
                check(result, label, feed, frame(apdu))
            for _ in range(per_codec):
                pick = rng.randrange(4)
                sample = b"".join(frame(rng.choice(apdus)) for _ in range(rng.randint(1, 3)))
                if pick == 0:
                    data = random_bytes(rng)
                elif pick == 1 or link is Link.TCP:
                    data = mutate(sample, rng)
                elif pick == 2:  # a mutated APDU in a correct frame: reaches the decoders
                    data = encode_serial_frame(mutate(rng.choice(apdus), rng))
                else:
                    data = random_bytes(rng, 40) + sample + random_bytes(rng, 40)
                check(result, label, feed, data)
    for role, transcript in ((AdbRole.DEVICE, host_bytes), (AdbRole.HOST, device_bytes)):
        label = f"ADB codec {role.value}"

        def feed_conn(chunks: list[bytes], role: AdbRole = role) -> Outcome:
            return feed_adb(role, chunks)

        check(result, label, feed_conn, transcript)
        for _ in range(per_codec):
            data = random_bytes(rng) if rng.random() < 0.25 else mutate(transcript, rng)
            check(result, label, feed_conn, data)
    small = max(10, per_codec // 4)
    for label, feed_small, inputs in (
        ("ADB shell v2 (host)", feed_shell, shell_inputs()),
        ("ADB sync requests (device)", feed_sync_requests, sync_request_inputs()),
    ):
        for data in inputs:
            check(result, label, feed_small, data)
        for _ in range(small):
            base = rng.choice(inputs)
            check(
                result,
                label,
                feed_small,
                random_bytes(rng) if rng.random() < 0.25 else mutate(base, rng),
            )
    bodies = nexo_inputs()
    for data in bodies:
        check(result, "nexo JSON + crypto (both roles)", feed_nexo, data)
    for _ in range(per_codec):
        data = random_bytes(rng) if rng.random() < 0.1 else mutate(rng.choice(bodies), rng)
        check(result, "nexo JSON + crypto (both roles)", feed_nexo, data)
    responses = sync_response_inputs()
    for _ in range(small + len(responses)):
        expect, base = rng.choice(responses)

        def feed_resp(chunks: list[bytes], expect: list[str] = expect) -> Outcome:
            return feed_sync_responses(expect, chunks)

        check(result, "ADB sync responses (host)", feed_resp, mutate(base, rng))
    result.rows[
        0
    ].info = f"{len(apdus)} valid APDUs ({'with' if CAPTURES.is_dir() else 'no'} captures)"
    result.seconds = time.monotonic() - started
    return result
