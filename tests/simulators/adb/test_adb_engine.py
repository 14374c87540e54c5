"""The simulated adbd, spoken to with the bare host codec: services, sync, auth, options.

The driver picks one service string per call; these tests open the others too (plain
``shell:``, ``exec:``, services the device refuses, raw sync requests) to pin down what the
simulator answers at the protocol level.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from posdiag.drivers.adb.auth import AdbKey
from posdiag.drivers.adb.codec import (
    AdbConnection,
    AuthToken,
    Connected,
    Role,
    StreamClosed,
    StreamData,
    StreamOpened,
    StreamRefused,
)
from posdiag.drivers.adb.parsers import parse_diskstats
from posdiag.drivers.adb.protocol import NEED_DATA, AdbPacket, AuthType, Command, build_banner
from posdiag.drivers.adb.shell import ShellDecoder, ShellId, ShellPacket, encode_close_stdin
from posdiag.drivers.adb.sync import (
    SYNC_DATA_MAX,
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
from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.transport.memory import MemoryTransport
from posdiag.simulators import registry
from posdiag.simulators.adb.engine import (
    REBOOT_REFUSED,
    REMOUNT_REFUSED,
    ROOT_REFUSED,
    AdbSimulator,
)
from posdiag.simulators.adb.state import AdbScenarioError, load_android
from posdiag.simulators.attach import MemoryAttachment
from posdiag.simulators.pytest_plugin import AdbDriverFactory, SimulatedAdb

WAIT = 2.0
HOST_FEATURES = ("shell_v2", "cmd", "stat_v2")


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    deadline = time.monotonic() + 2
    while True:
        leaked = [t.name for t in threading.enumerate() if t not in threads_before]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert leaked == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


@dataclass
class Answer:
    """What came back on one stream."""

    opened: bool
    data: bytes = b""
    closed: bool = False

    def shell_packets(self) -> list[ShellPacket]:
        decoder = ShellDecoder()
        decoder.receive_data(self.data)
        packets = []
        while (packet := decoder.next_packet()) is not NEED_DATA:
            packets.append(packet)
        return packets


class Host:
    """The host side of one ADB connection to the simulator, on an in-process link."""

    def __init__(self, simulator: AdbSimulator) -> None:
        self.simulator = simulator
        self.attachment = MemoryAttachment(simulator)
        self.transport: MemoryTransport = self.attachment.start()
        self.conn = AdbConnection(Role.HOST, features=HOST_FEATURES)

    def stop(self) -> None:
        self.attachment.stop()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.transport.write(data)

    def event(self, timeout: float = WAIT) -> object:
        deadline = time.monotonic() + timeout
        while True:
            event = self.conn.next_event()
            self.flush()
            if event is not NEED_DATA:
                return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the simulator did not answer")
            self.conn.receive_data(self.transport.read(1 << 20, min(remaining, 0.1)))

    def hello(self) -> None:
        self.conn.send_connect(build_banner("host", {}, HOST_FEATURES))
        self.flush()

    def connect(self) -> Connected:
        self.hello()
        event = self.event()
        assert isinstance(event, Connected), event
        return event

    def open(self, service: str, *, data: bytes = b"") -> Answer:
        """Open a service, send ``data``, collect everything until the device closes it."""
        local_id = self.conn.open_stream(service)
        if data:
            self.conn.write(local_id, data)
        self.flush()
        answer = Answer(opened=False)
        while True:
            event = self.event()
            if isinstance(event, StreamRefused) and event.local_id == local_id:
                return answer
            if isinstance(event, StreamOpened) and event.local_id == local_id:
                answer.opened = True
            elif isinstance(event, StreamData) and event.local_id == local_id:
                answer.data += event.data
            elif isinstance(event, StreamClosed) and event.local_id == local_id:
                answer.closed = True
                return answer


@pytest.fixture
def host() -> Iterator[Callable[..., Host]]:
    hosts: list[Host] = []

    def make(
        scenario: str = "activated", profile: str = "pax-a920", overrides: dict | None = None
    ) -> Host:
        simulator = AdbSimulator(load_android(scenario, profile, overrides))
        hosts.append(Host(simulator))
        return hosts[-1]

    yield make
    for made in hosts:
        made.stop()


# --- CNXN ----------------------------------------------------------------------------------------


def test_banner_names_the_model_but_not_the_serial(host: Callable[..., Host]) -> None:
    link = host("activated", "sunmi-p2")

    hello = link.connect()

    assert hello.system_type == "device"
    assert hello.properties == {
        "ro.product.name": "P2_PRO",
        "ro.product.model": "P2_PRO",
        "ro.product.device": "P2_PRO",
    }
    assert hello.features == frozenset(link.simulator.state.features)
    assert "P2PRO0123456" not in hello.banner
    assert "PC02P0CN01234" not in hello.banner


def test_a_new_cnxn_on_the_same_link_starts_over(host: Callable[..., Host]) -> None:
    link = host()
    link.connect()
    assert link.open("shell:echo one").data == b"one\n"

    link.connect()

    assert link.open("shell:echo two").data == b"two\n"


# --- shell services ------------------------------------------------------------------------------


def test_shell_v2_frames_stdout_stderr_and_the_exit_code(host: Callable[..., Host]) -> None:
    link = host()
    link.connect()

    ok = link.open("shell,v2,TERM=xterm,raw:getprop ro.serialno", data=encode_close_stdin())
    failed = link.open("shell,v2,raw:frobnicate")

    assert ok.opened and ok.closed
    assert ok.shell_packets() == [
        ShellPacket(ShellId.STDOUT, b"82617703\n"),
        ShellPacket(ShellId.EXIT, b"\x00"),
    ]
    packets = failed.shell_packets()
    assert packets[0] == ShellPacket(
        ShellId.STDERR, b"/system/bin/sh: frobnicate: inaccessible or not found\n"
    )
    assert packets[-1].exit_code == 127


def test_plain_shell_is_raw_and_loses_the_exit_code(host: Callable[..., Host]) -> None:
    link = host()
    link.connect()

    assert link.open("shell:getprop ro.serialno").data == b"82617703\n"
    assert link.open("shell:frobnicate").data == (
        b"/system/bin/sh: frobnicate: inaccessible or not found\n"
    )
    silent = link.open("shell:exit 3")
    assert silent.opened and silent.closed
    assert silent.data == b""


def test_shell_v2_request_to_a_device_without_shell_v2_gets_raw_output(
    host: Callable[..., Host],
) -> None:
    link = host(overrides={"device": {"features": ["cmd"]}})
    hello = link.connect()
    assert "shell_v2" not in hello.features

    assert link.open("shell,v2,TERM=xterm,raw:getprop ro.serialno").data == b"82617703\n"


def test_exec_service_is_raw(host: Callable[..., Host]) -> None:
    link = host()
    link.connect()

    assert link.open("exec:getprop ro.product.model").data == b"A920\n"
    assert link.open("exec:cat /sdcard/PAX/params/merchant.xml").data == (
        b'<merchant id="MID-0042"/>'
    )


@pytest.mark.parametrize(
    "service",
    [
        "tcp:5555",
        "localabstract:jdwp-control",
        "framebuffer:",
        "shell:",  # an interactive PTY shell
        "exec:",
    ],
)
def test_other_services_are_refused(host: Callable[..., Host], service: str) -> None:
    link = host()
    link.connect()

    refused = link.open(service)

    assert not refused.opened
    assert refused.data == b""
    # the connection survives the refusal
    assert link.open("shell,v2,raw:echo ok").shell_packets()[0].data == b"ok\n"


def test_shell_commands_change_the_shared_state(host: Callable[..., Host]) -> None:
    link = host("activated", "sunmi-p2")
    link.connect()
    state = link.simulator.state
    second = Host(link.simulator)
    try:
        second.connect()

        assert link.open("shell:pm clear com.sunmi.payment.service").data == b"Success\n"

        app = state.app("com.sunmi.payment.service")
        assert app is not None and app.data_files == {}
        stats = parse_diskstats(second.open("shell:dumpsys diskstats").data.decode())
        assert stats.app_data_sizes["com.sunmi.payment.service"] == 0
        assert stats.app_data_sizes["com.sunmi.mdm"] > 0
    finally:
        second.stop()


@pytest.mark.parametrize(
    ("service", "answer"),
    [
        ("root:", ROOT_REFUSED),
        ("remount:", REMOUNT_REFUSED),
        ("unroot:", b"adbd not running as root\n"),
        ("reboot:bootloader", REBOOT_REFUSED),
        ("reboot:sideload", b"'adb root' is required for 'adb reboot sideload'.\n"),
    ],
)
def test_production_build_answers(host: Callable[..., Host], service: str, answer: bytes) -> None:
    link = host()
    link.connect()

    reply = link.open(service)

    assert reply.opened and reply.closed
    assert reply.data == answer
    assert link.simulator.reboots == 0


def test_reboot_drops_the_link_and_refuses_until_back(host: Callable[..., Host]) -> None:
    link = host(overrides={"device": {"reboot_seconds": 0.4, "scale": 1.0}})
    link.connect()
    state = link.simulator.state
    state.tree.write("/data/local/tmp/kept", b"1")

    local_id = link.conn.open_stream("reboot:")
    link.flush()
    assert link.event() == StreamOpened(local_id)
    with pytest.raises(PosdiagError):  # the link drops, no CLSE
        link.event()
    assert link.simulator.reboots == 1

    early = Host(link.simulator)  # still booting: dropped without a word
    try:
        with pytest.raises(PosdiagError):
            early.hello()
            early.event(timeout=0.3)
    finally:
        early.stop()
    time.sleep(0.4)
    back = Host(link.simulator)
    try:
        assert isinstance(back.connect(), Connected)
        assert state.tree.read("/data/local/tmp/kept") == b"1"
    finally:
        back.stop()


def test_banner_and_payload_follow_the_release(host: Callable[..., Host]) -> None:
    old = host("activated", "pax-a920-android7").connect()
    assert old.features == frozenset({"shell_v2", "cmd"})
    assert old.max_payload == 256 * 1024
    assert old.version == 0x01000000
    new = host("activated", "sunmi-p2").connect()
    assert {"shell_v2", "stat_v2", "ls_v2", "fixed_push_mkdir"} <= new.features
    assert "sendrecv_v2" not in new.features  # not simulated: never advertised
    assert new.max_payload == 1024 * 1024


def test_debugging_disabled_drops_every_connection(host: Callable[..., Host]) -> None:
    link = host("debugging-disabled")
    with pytest.raises(PosdiagError):
        link.hello()
        link.event(timeout=0.5)


# --- sync ----------------------------------------------------------------------------------------


def sync(link: Host, *requests: tuple[SyncId, bytes]) -> tuple[list[object], bool]:
    """Send sync requests in one stream (QUIT last); return the decoded answers, closed."""
    answer = link.open("sync:", data=b"".join(wire for _, wire in requests) + encode_quit())
    assert answer.opened
    decoder = SyncResponseDecoder()
    for request_id, _ in requests:
        decoder.expect(request_id)
    decoder.receive_data(answer.data)
    events = []
    while (event := decoder.next_event()) is not NEED_DATA:
        events.append(event)
    return events, answer.closed


def test_sync_stat_and_recv_of_a_file(host: Callable[..., Host]) -> None:
    link = host()
    link.connect()
    content = b'<merchant id="MID-0042"/>'

    events, closed = sync(
        link,
        (SyncId.STAT, encode_stat("/sdcard/PAX/params/merchant.xml")),
        (SyncId.RECV, encode_recv("/sdcard/PAX/params/merchant.xml")),
    )

    stat = events[0]
    assert isinstance(stat, SyncStat)
    assert stat.exists
    assert stat.mode == 0o100660  # shared storage (sdcardfs): root:sdcard_rw 0660
    assert stat.size == len(content)
    assert stat.mtime > 0
    assert events[1:] == [SyncData(content), SyncDone()]
    assert closed  # QUIT ends the stream


def test_sync_of_a_missing_file(host: Callable[..., Host]) -> None:
    link = host()
    link.connect()

    events, _ = sync(
        link,
        (SyncId.STAT, encode_stat("/sdcard/missing.txt")),
        (SyncId.RECV, encode_recv("/sdcard/missing.txt")),
    )

    stat = events[0]
    assert stat == SyncStat(0, 0, 0)
    assert isinstance(stat, SyncStat) and not stat.exists
    assert events[1] == SyncFail("open failed: No such file or directory")


def test_sync_cannot_read_other_apps_data(host: Callable[..., Host]) -> None:
    link = host()
    link.connect()
    path = "/data/data/com.pax.ipp.manager/databases/transactions.db"

    events, _ = sync(link, (SyncId.STAT, encode_stat(path)))

    assert events == [SyncStat(0, 0, 0)]


def test_sync_recv_sends_64k_chunks(host: Callable[..., Host]) -> None:
    content = "".join(f"{n:07d}\n" for n in range(30_000))  # 240 000 bytes
    link = host(overrides={"files": {"/sdcard/big.txt": content}})
    link.connect()

    events, _ = sync(link, (SyncId.RECV, encode_recv("/sdcard/big.txt")))

    chunks = [event.data for event in events if isinstance(event, SyncData)]
    assert len(chunks) == 4
    assert all(len(chunk) <= SYNC_DATA_MAX for chunk in chunks)
    assert b"".join(chunks) == content.encode()
    assert events[-1] == SyncDone()


# --- auth ----------------------------------------------------------------------------------------


def test_auth_token_then_public_key_prompt(host: Callable[..., Host]) -> None:
    link = host("auth-required")
    link.hello()
    first = link.event()
    assert isinstance(first, AuthToken)
    assert len(first.token) == 20

    stranger = AdbKey.generate()
    link.conn.send_auth(AuthType.SIGNATURE, stranger.sign_token(first.token))
    link.flush()
    second = link.event()
    assert isinstance(second, AuthToken)  # not trusted: a fresh token
    assert second.token != first.token
    assert link.simulator.prompts_shown == 0

    link.conn.send_auth(AuthType.RSAPUBLICKEY, stranger.android_public_key())
    link.flush()
    assert isinstance(link.event(), Connected)  # the operator tapped "Allow"
    assert link.simulator.prompts_shown == 1
    assert link.simulator.state.trusted_keys == [stranger.android_public_key().decode()]


def test_auth_with_a_trusted_key(host: Callable[..., Host]) -> None:
    key = AdbKey.generate()
    link = host("auth-required", overrides={"device": {"trusted_keys": ["not a key", ""]}})
    link.simulator.state.trusted_keys.append(key.android_public_key().decode())
    link.hello()
    token = link.event()
    assert isinstance(token, AuthToken)

    link.conn.send_auth(AuthType.SIGNATURE, key.sign_token(token.token))
    link.flush()

    assert isinstance(link.event(), Connected)
    assert link.simulator.prompts_shown == 0


def test_auth_prompt_left_unanswered(host: Callable[..., Host]) -> None:
    link = host("auth-required", overrides={"device": {"accept_new_keys": False}})
    link.hello()
    assert isinstance(link.event(), AuthToken)
    key = AdbKey.generate()

    link.conn.send_auth(AuthType.RSAPUBLICKEY, key.android_public_key())
    link.flush()

    with pytest.raises(TimeoutError):
        link.event(timeout=0.3)
    assert link.simulator.prompts_shown == 1
    assert link.simulator.state.trusted_keys == []


def test_services_need_authentication_first(host: Callable[..., Host]) -> None:
    link = host("auth-required", overrides={"files": {"/sdcard/PAX/params/merchant.xml": "x"}})
    link.hello()
    assert isinstance(link.event(), AuthToken)
    opened_before = link.simulator.streams_opened

    # an OPEN before the device is online is not answered (adbd ignores it), nor run
    link.transport.write(AdbPacket(Command.OPEN, 1, 0, b"shell:rm -rf /sdcard/PAX\0").encode())
    with pytest.raises(TimeoutError):
        link.event(timeout=0.3)
    assert link.simulator.streams_opened == opened_before
    assert "/sdcard/PAX/params/merchant.xml" in link.simulator.state.files


# --- registry options (posdiag simulate, adb+sim:// addresses) -----------------------------------


def test_create_adb_reads_string_options() -> None:
    simulator = registry.create_adb(
        "activated",
        "pax-a920",
        {
            "bad-checksum": "1",
            "split_packets": "1",
            "drop_packets": "2",
            "stall": "0.25",
            "vanish_after": "4",
            "auth": "yes",
            "accept_keys": "0",
        },
    )

    state = simulator.state
    assert state.profile == "pax-a920"
    assert state.faults.bad_checksum == 1
    assert state.faults.split_packets is True
    assert state.faults.drop_packets == 2
    assert state.faults.stall == 0.25
    assert state.faults.vanish_after == 4
    assert state.auth_required is True
    assert state.accept_new_keys is False
    assert not simulator.packetized


def test_create_adb_defaults() -> None:
    state = registry.create_adb("fresh").state
    assert state.profile == "android-generic"
    assert state.faults.vanish_after is None
    assert not state.auth_required
    assert state.accept_new_keys


def test_create_adb_rejects_bad_input() -> None:
    with pytest.raises(PosdiagError, match="stall='soon' is not a number"):
        registry.create_adb("activated", options={"stall": "soon"})
    with pytest.raises(AdbScenarioError):
        registry.create_adb("activated", "verifone-p400")
    with pytest.raises(AdbScenarioError):
        registry.create_adb("stolen")


# --- the pytest fixtures -------------------------------------------------------------------------


def test_fixture_attach_modes(adb_terminal: Callable[..., SimulatedAdb]) -> None:
    memory = adb_terminal()
    tcp = adb_terminal("fresh", "sunmi-p2", "tcp")
    usb = adb_terminal("unsettled", "pax-a920", "usb")

    assert (memory.address, memory.packetized, memory.usb_backend) == (None, False, None)
    assert tcp.address is not None and tcp.address.startswith("adb+tcp://127.0.0.1:")
    assert not tcp.packetized
    assert usb.address is None and usb.packetized
    assert usb.usb_device is not None and usb.usb_device.serial == "82617703"
    assert (usb.usb_device.vid, usb.usb_device.pid) == (0x2FB8, 0x2201)
    assert (memory.model, tcp.model, usb.scenario) == ("android-generic", "sunmi-p2", "unsettled")
    assert usb.state is usb.simulator.state


def test_fixture_options(adb_terminal: Callable[..., SimulatedAdb]) -> None:
    terminal = adb_terminal(
        "activated",
        stall="0.5",
        split_packets="1",
        vanish_after=3,
        auth=True,
        accept_keys=False,
        latency=0.01,
        overrides={"battery": {"level": 12}, "faults": {"drop_packets": 1}},
    )

    state = terminal.state
    assert (state.faults.stall, state.faults.split_packets, state.faults.vanish_after) == (
        0.5,
        True,
        3,
    )
    assert state.faults.drop_packets == 1
    assert state.auth_required and not state.accept_new_keys
    assert state.latency == 0.01
    assert state.battery.level == 12


def test_fixture_rejects_bad_arguments(adb_terminal: Callable[..., SimulatedAdb]) -> None:
    with pytest.raises(ValueError, match="attach must be one of memory, tcp, usb"):
        adb_terminal(attach="pty")
    with pytest.raises(ValueError, match="manipulators need attach='memory'"):
        adb_terminal(attach="tcp", manipulator_host=lambda data: [data])
    with pytest.raises(AdbScenarioError, match="unknown fault or device option 'colour'"):
        adb_terminal(colour="red")
    with pytest.raises(AdbScenarioError):
        adb_terminal("stolen")


def test_fixture_transports_reach_the_same_device(
    adb_terminal: Callable[..., SimulatedAdb], adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("activated", "sunmi-p2")
    first = adb_driver(terminal)
    second = adb_driver(terminal)

    assert first.shell("pm clear com.sunmi.mdm").exit_code == 0
    assert "com.sunmi.mdm" in second.shell("pm list packages").text
    app = terminal.state.app("com.sunmi.mdm")
    assert app is not None and not app.has_data
    assert len(adb_driver.drivers) == 2


def test_fixture_driver_unopened_and_key(
    adb_terminal: Callable[..., SimulatedAdb], adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("auth-required")
    driver = adb_driver(terminal, open=False, timeout=0.5)
    assert driver.device is None
    assert driver.timeout == 0.5

    driver.open()

    assert (
        terminal.state.trusted_keys[0].split(" ")[0]
        == (adb_driver.key.android_public_key().decode().split(" ")[0])
    )
