"""AdbDriver against a misbehaving device: every fault ends in a typed error, promptly.

The simulator injects faults on its side of the wire (split, dropped and corrupt packets,
stalls, a device that vanishes); scripted devices and a raw TCP server play peers that speak
garbage or hang up in the middle of a command. Elapsed times are asserted as lower bounds
where a timeout must be waited out, plus generous upper bounds that only catch hangs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import pytest

from posdiag.drivers.adb.auth import AdbKey
from posdiag.drivers.adb.codec import (
    AdbConnection,
    Connected,
    Role,
    StreamOpenRequested,
)
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.adb.errors import AdbTimeoutError
from posdiag.drivers.adb.protocol import NEED_DATA, AdbProtocolError, build_banner
from posdiag.drivers.adb.shell import ShellId, encode_shell_data
from posdiag.drivers.errors import PosdiagError, ProtocolError, TransportClosed
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.simulators.attach import MemoryAttachment, TcpAttachment
from posdiag.simulators.pytest_plugin import AdbDriverFactory, SimulatedAdb

ATTACHES = ("memory", "tcp", "usb")
TIMEOUT = 0.3  # the driver's answer timeout in these tests
HANG = 3.0  # beyond any expected wait: only a hang takes this long

Terminal = Callable[..., SimulatedAdb]


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


@pytest.fixture(params=ATTACHES)
def attach(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def key() -> AdbKey:
    return AdbKey.generate()


class Recorder:
    """A memory manipulator that records every write and passes it on unchanged."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def __call__(self, data: bytes) -> Iterable[bytes]:
        self.writes.append(data)
        return [data]


# --- simulator faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("attach_mode", ["memory", "tcp"])
def test_split_packets_still_work(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach_mode: str
) -> None:
    recorder = Recorder()
    extra = {"manipulator_device": recorder} if attach_mode == "memory" else {}
    terminal = adb_terminal("activated", "pax-a920", attach_mode, split_packets=True, **extra)
    driver = adb_driver(terminal, timeout=TIMEOUT)

    assert driver.shell("getprop ro.serialno").stdout == b"82617703\n"
    assert driver.shell("exit 5").exit_code == 5
    assert driver.read_file("/sdcard/PAX/params/merchant.xml") == b'<merchant id="MID-0042"/>'
    if attach_mode == "memory":
        assert recorder.writes
        assert max(len(write) for write in recorder.writes) <= 7  # the fault was on


def test_dropped_answer_times_out(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    """The device's whole answer to an OPEN (OKAY, WRTE) is lost.

    Its CLSE would follow the host's OKAY for the WRTE (adbd closes only once its last write is
    acknowledged), so with the WRTE lost it never comes.
    """
    terminal = adb_terminal("activated", attach=attach, drop_packets=2)
    driver = adb_driver(terminal, timeout=TIMEOUT)
    start = time.monotonic()

    with pytest.raises(AdbTimeoutError, match=r"sent no answer to OPEN shell.* in time"):
        driver.shell("getprop ro.serialno")

    assert TIMEOUT <= time.monotonic() - start < HANG
    assert terminal.state.faults.drop_packets == 0  # both were dropped


@pytest.mark.parametrize("dropped", [1, 2])
def test_partly_dropped_answer_fails_typed_without_hanging(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, dropped: int
) -> None:
    terminal = adb_terminal("activated", drop_packets=dropped)
    driver = adb_driver(terminal, timeout=TIMEOUT)
    start = time.monotonic()

    with pytest.raises(PosdiagError):
        driver.shell("getprop ro.serialno")

    assert time.monotonic() - start < HANG


def test_bad_checksum_on_the_device_cnxn(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", attach=attach, bad_checksum=1)
    start = time.monotonic()

    with pytest.raises(AdbProtocolError) as caught:
        adb_driver(terminal, timeout=TIMEOUT)

    assert isinstance(caught.value, ProtocolError)
    assert isinstance(caught.value, PosdiagError)
    message = str(caught.value)
    assert "CNXN" in message
    assert "checksum" in message
    assert time.monotonic() - start < TIMEOUT  # rejected at once, not timed out


def test_stall_longer_than_the_timeout(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", attach=attach, stall=1.5)
    driver = adb_driver(terminal, timeout=TIMEOUT)
    start = time.monotonic()

    with pytest.raises(AdbTimeoutError) as caught:
        driver.shell("getprop ro.serialno")

    assert TIMEOUT <= time.monotonic() - start < 1.5
    assert "in time" in str(caught.value)
    assert driver.transport.description in str(caught.value)


def test_stall_shorter_than_the_timeout_is_fine(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("activated", stall=0.1)
    driver = adb_driver(terminal, timeout=1.0)

    assert driver.shell("exit 2").exit_code == 2


def test_device_vanishing_after_a_command(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", attach=attach, vanish_after=1)
    driver = adb_driver(terminal, timeout=1.0)
    assert driver.shell("id").exit_code == 0
    start = time.monotonic()

    with pytest.raises(TransportClosed):
        driver.shell("getprop ro.serialno")

    assert time.monotonic() - start < 1.0  # noticed at once, not after the timeout


def test_cable_pulled_during_a_command(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("activated", stall=2.0)
    driver = adb_driver(terminal, timeout=HANG)
    attachment = terminal.attachment
    assert isinstance(attachment, MemoryAttachment)
    puller = threading.Timer(0.1, attachment.host.disconnect)
    puller.start()
    start = time.monotonic()
    try:
        with pytest.raises(TransportClosed, match="disconnected"):
            driver.shell("getprop ro.serialno")
    finally:
        puller.join()

    assert time.monotonic() - start < 2.0


def test_usb_unplugged_during_a_command(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("activated", attach="usb", stall=2.0)
    driver = adb_driver(terminal, timeout=HANG)
    device = terminal.usb_device
    assert device is not None
    puller = threading.Timer(0.1, device.unplug)
    puller.start()
    start = time.monotonic()
    try:
        with pytest.raises(TransportClosed):
            driver.shell("getprop ro.serialno")
    finally:
        puller.join()

    assert time.monotonic() - start < 2.0


# --- peers that are not (quite) adbd -------------------------------------------------------------


class HangUpMidCommand:
    """A device engine that connects, accepts the first stream, sends part of the output and
    hangs up (adbd killed, cable pulled) in the middle of the command."""

    def __init__(self) -> None:
        self.served = threading.Event()

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        conn = AdbConnection(Role.DEVICE, features=("shell_v2",))
        while not stop.is_set():
            data = transport.read(65536, 0.05)
            conn.receive_data(data)
            while (event := conn.next_event()) is not NEED_DATA:
                if isinstance(event, Connected):
                    conn.send_connect(
                        build_banner("device", {"ro.product.model": "X"}, ["shell_v2"])
                    )
                elif isinstance(event, StreamOpenRequested):
                    local_id = conn.accept_stream(event.remote_id)
                    conn.write(local_id, encode_shell_data(ShellId.STDOUT, b"x" * 1000))
                    wire = conn.data_to_send()
                    transport.write(wire[: len(wire) - 500])  # the WRTE is cut short
                    self.served.set()
                    disconnect = getattr(transport, "disconnect", transport.close)
                    disconnect()
                    return
            transport.write(conn.data_to_send())


@pytest.mark.parametrize("link", ["memory", "tcp"])
def test_peer_closes_mid_command(key: AdbKey, link: str) -> None:
    engine = HangUpMidCommand()
    attachment: MemoryAttachment | TcpAttachment
    if link == "memory":
        attachment = MemoryAttachment(engine)
        transport: Transport = attachment.start()
    else:
        attachment = TcpAttachment(engine)
        host, port = attachment.start()
        transport = TcpTransport(host, port)
    driver = AdbDriver(transport, key=key, timeout=HANG)
    try:
        driver.open()
        start = time.monotonic()
        with pytest.raises(TransportClosed):
            driver.shell("getprop ro.serialno")
        assert time.monotonic() - start < HANG / 2
        assert engine.served.is_set()
    finally:
        driver.close()
        attachment.stop()


class RawServer:
    """A loopback TCP server that is not adbd: it answers every connection with ``reply``,
    then keeps the socket open (``close=False``) or hangs up."""

    def __init__(self, reply: bytes, *, close: bool) -> None:
        self.reply = reply
        self.close = close
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="raw-tcp-server", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.recv(4096)  # the host's CNXN
            if self.reply:
                conn.sendall(self.reply)
            if not self.close:
                self.stop.wait(HANG)

    def shutdown(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):  # unblock accept() when nobody connected
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        self.thread.join(HANG)
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(reply: bytes, *, close: bool = False) -> RawServer:
        server = RawServer(reply, close=close)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.shutdown()


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        bytes(range(256)),
    ],
    ids=["ssh", "http", "binary"],
)
def test_garbage_instead_of_adb_is_a_protocol_error(
    raw_server: Callable[..., RawServer], key: AdbKey, reply: bytes
) -> None:
    server = raw_server(reply)
    driver = AdbDriver(TcpTransport("127.0.0.1", server.port), key=key, timeout=2.0)
    start = time.monotonic()
    try:
        with pytest.raises(AdbProtocolError) as caught:
            driver.open()
    finally:
        driver.close()

    assert isinstance(caught.value, PosdiagError)
    assert "does not speak ADB" in str(caught.value)
    assert time.monotonic() - start < 1.0  # recognised at once, well before the timeout


def test_short_garbage_then_silence_times_out(
    raw_server: Callable[..., RawServer], key: AdbKey
) -> None:
    server = raw_server(b"hello\n")
    driver = AdbDriver(TcpTransport("127.0.0.1", server.port), key=key, timeout=TIMEOUT)
    start = time.monotonic()
    try:
        with pytest.raises(AdbTimeoutError, match="answer to CNXN"):
            driver.open()
    finally:
        driver.close()

    assert TIMEOUT <= time.monotonic() - start < HANG


@pytest.mark.parametrize("reply", [b"", b"CNXN"], ids=["silent", "partial-header"])
def test_server_hanging_up_before_answering(
    raw_server: Callable[..., RawServer], key: AdbKey, reply: bytes
) -> None:
    server = raw_server(reply, close=True)
    driver = AdbDriver(TcpTransport("127.0.0.1", server.port), key=key, timeout=HANG)
    start = time.monotonic()
    try:
        with pytest.raises(TransportClosed):
            driver.open()
    finally:
        driver.close()

    assert time.monotonic() - start < HANG / 2
