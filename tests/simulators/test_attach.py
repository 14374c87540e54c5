"""Attachments: a trivial echo engine reached over pty, TCP, memory and possim:// URLs."""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator

import pytest
import serial

from posdiag.drivers.errors import ConnectionRefused, TransportClosed, TransportOpenError
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.simulators.attach import (
    URL_HANDLER_PACKAGE,
    DeviceEngine,
    FdTransport,
    MemoryAttachment,
    PtyAttachment,
    TcpAttachment,
    register_url_handler,
)


class EchoEngine:
    """Sends back whatever arrives; counts connections served."""

    def __init__(self) -> None:
        self.connections = 0

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        self.connections += 1
        while not stop.is_set():
            data = transport.read(4096, 0.05)
            if data:
                transport.write(data)


class FailOnceEngine(EchoEngine):
    """Crashes on its first connection, then echoes: attachments must keep serving."""

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        if self.connections == 0:
            self.connections += 1
            raise RuntimeError("simulated engine bug")
        super().serve(transport, stop)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    assert [t for t in threading.enumerate() if t not in threads_before] == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


@pytest.fixture
def pty_sim() -> Iterator[PtyAttachment]:
    attachment = PtyAttachment(EchoEngine())
    attachment.start()
    yield attachment
    attachment.stop()


@pytest.fixture
def tcp_sim() -> Iterator[tuple[TcpAttachment, int]]:
    attachment = TcpAttachment(EchoEngine())
    _, port = attachment.start()
    yield attachment, port
    attachment.stop()


@pytest.fixture
def possim(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, str]]]:
    """Route possim:// to an echo engine; return the create_engine calls seen."""
    calls: list[tuple[str, str, dict[str, str]]] = []

    def create_engine(family: str, scenario: str, options: dict[str, str]) -> DeviceEngine:
        calls.append((family, scenario, options))
        if family != "zvt":
            raise KeyError(f"unknown simulator family {family!r}")
        return EchoEngine()

    registry = types.ModuleType("posdiag.simulators.registry")
    registry.create_engine = create_engine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "posdiag.simulators.registry", registry)
    monkeypatch.setattr(serial, "protocol_handler_packages", list(serial.protocol_handler_packages))
    register_url_handler()
    return calls


# --- pty ---------------------------------------------------------------------------------------


def test_pty_path_is_a_tty(pty_sim: PtyAttachment) -> None:
    assert pty_sim.path.startswith("/dev/")
    assert os.path.exists(pty_sim.path)
    assert pty_sim.running


def test_pty_survives_repeated_open_and_close(pty_sim: PtyAttachment) -> None:
    payload = bytes(range(256))
    for _ in range(3):  # every `posdiag check` opens and closes the port
        with SerialTransport(pty_sim.path) as port:
            port.write(payload)
            assert port.read_exact(len(payload), 2.0) == payload
    assert pty_sim.running


def test_pty_keeps_serving_after_engine_error() -> None:
    engine = FailOnceEngine()
    with PtyAttachment(engine) as sim, SerialTransport(sim.path) as port:
        port.write(b"ping")
        assert port.read_exact(4, 2.0) == b"ping"
    assert engine.connections == 2


def test_pty_stop_is_prompt_and_idempotent(pty_sim: PtyAttachment) -> None:
    started = time.monotonic()
    pty_sim.stop()
    pty_sim.stop()
    assert time.monotonic() - started < 1.0
    assert not pty_sim.running


def test_pty_path_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not been started"):
        _ = PtyAttachment(EchoEngine()).path


def test_attachment_cannot_start_twice(pty_sim: PtyAttachment) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        pty_sim.start()


def test_fd_transport_reads_silence_when_no_client() -> None:
    master, slave = os.openpty()
    os.close(slave)  # nobody holds the slave: the master reports EIO
    with FdTransport(master, "lonely pty") as transport:
        started = time.monotonic()
        assert transport.read(10, 0.1) == b""
        assert time.monotonic() - started >= 0.09
        transport.write(b"into the void")  # dropped, like bytes on an unplugged cable
        transport.reset_input()
    with pytest.raises(TransportOpenError):
        transport.open()


# --- tcp ---------------------------------------------------------------------------------------


def test_tcp_port_zero_resolves_to_real_loopback_port() -> None:
    attachment = TcpAttachment(EchoEngine())
    host, port = attachment.start()
    attachment.stop()
    assert host == "127.0.0.1"
    assert port > 0


def test_tcp_serves_successive_connections(tcp_sim: tuple[TcpAttachment, int]) -> None:
    attachment, port = tcp_sim
    for word in (b"first", b"second"):
        with TcpTransport("127.0.0.1", port) as client:
            client.write(word)
            assert client.read_exact(len(word), 2.0) == word
    assert isinstance(attachment.engine, EchoEngine)
    assert attachment.engine.connections == 2


def test_tcp_serves_one_connection_at_a_time(tcp_sim: tuple[TcpAttachment, int]) -> None:
    _, port = tcp_sim
    with TcpTransport("127.0.0.1", port) as first, TcpTransport("127.0.0.1", port) as second:
        first.write(b"1")
        assert first.read_exact(1, 2.0) == b"1"
        second.write(b"2")
        assert second.read(1, 0.2) == b""  # waiting in the backlog
        first.close()
        assert second.read_exact(1, 2.0) == b"2"


def test_tcp_stop_is_prompt_with_a_client_connected(tcp_sim: tuple[TcpAttachment, int]) -> None:
    attachment, port = tcp_sim
    with TcpTransport("127.0.0.1", port) as client:
        client.write(b"x")
        assert client.read_exact(1, 2.0) == b"x"
        started = time.monotonic()
        attachment.stop()
        assert time.monotonic() - started < 1.0
        with pytest.raises(TransportClosed):
            client.read(1, 1.0)
    with pytest.raises(TransportOpenError, match="refused"):
        TcpTransport("127.0.0.1", port).open()


def test_tcp_context_manager() -> None:
    with TcpAttachment(EchoEngine()) as sim:
        assert sim.running
    assert not sim.running


# --- memory ------------------------------------------------------------------------------------


def test_memory_attachment_echoes_on_open_host_end() -> None:
    sim = MemoryAttachment(EchoEngine())
    host = sim.start()
    try:
        assert host.is_open
        host.write(b"hello")
        assert host.read_exact(5, 2.0) == b"hello"
    finally:
        sim.stop()
    assert not sim.running
    with pytest.raises(TransportClosed):
        host.read(1, 0.1)


def test_memory_attachment_applies_manipulators() -> None:
    sim = MemoryAttachment(EchoEngine(), manipulator_device=lambda data: [data.upper()])
    with sim:
        sim.host.write(b"abc")
        assert sim.host.read_exact(3, 2.0) == b"ABC"


def test_memory_engine_ends_when_host_closes() -> None:
    sim = MemoryAttachment(EchoEngine())
    host = sim.start()
    host.close()
    deadline = time.monotonic() + 1.0
    while sim.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not sim.running
    sim.stop()


# --- possim:// URL handler ---------------------------------------------------------------------


def test_register_url_handler_is_idempotent(possim: list[tuple[str, str, dict[str, str]]]) -> None:
    register_url_handler()
    assert serial.protocol_handler_packages.count(URL_HANDLER_PACKAGE) == 1


def test_possim_url_opens_simulator_with_options(
    possim: list[tuple[str, str, dict[str, str]]],
) -> None:
    port = serial.serial_for_url("possim://zvt/activated?latency=0", timeout=1.0)
    try:
        assert possim == [("zvt", "activated", {"latency": "0"})]
        assert port.is_open
        assert port.cts and port.dsr and port.cd and not port.ri
        port.write(b"\x06abc")
        assert port.read(4) == b"\x06abc"
        port.timeout = 0
        assert port.read(10) == b""
        port.write(b"xy")
        deadline = time.monotonic() + 1.0
        while port.in_waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert port.in_waiting == 2
        port.reset_input_buffer()
        assert port.in_waiting == 0
        port.timeout = None
        port.write(b"z")
        assert port.read(1) == b"z"
    finally:
        port.close()
    assert not port.is_open


def test_possim_through_serial_transport(possim: list[tuple[str, str, dict[str, str]]]) -> None:
    for _ in range(2):  # reopening starts a fresh simulator
        with SerialTransport("possim://zvt/activated") as transport:
            transport.write(b"ping")
            assert transport.read_exact(4, 2.0) == b"ping"
            assert transport.read(10, 0.05) == b""
    assert len(possim) == 2


def test_possim_unknown_family_is_an_open_error(
    possim: list[tuple[str, str, dict[str, str]]],
) -> None:
    with pytest.raises(TransportOpenError, match=r"cannot open possim://nope/x: .*nope"):
        SerialTransport("possim://nope/x").open()


def test_possim_url_without_family_is_rejected(
    possim: list[tuple[str, str, dict[str, str]]],
) -> None:
    with pytest.raises(serial.SerialException, match="names no simulator family"):
        serial.serial_for_url("possim:///activated")
    assert possim == []


class SwitchableEngine(EchoEngine):
    """An echo engine with the ``online`` switch the ADB simulator has (debugging, reboots)."""

    def __init__(self, online: bool) -> None:
        super().__init__()
        self.online = online


def refused(port: int) -> bool:
    transport = TcpTransport("127.0.0.1", port, connect_timeout=1.0)
    try:
        transport.open()
    except ConnectionRefused:
        return True
    transport.close()
    return False


def wait_until(condition: Callable[[], bool], seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_tcp_port_of_an_offline_engine_refuses_connects() -> None:
    engine = SwitchableEngine(online=False)
    attachment = TcpAttachment(engine)
    _, port = attachment.start()
    try:
        assert refused(port)  # refused at once, not accepted and dropped
        assert engine.connections == 0

        engine.online = True  # debugging switched on, or back from a reboot
        assert wait_until(lambda: not refused(port))
        transport = TcpTransport("127.0.0.1", port)
        transport.open()
        transport.write(b"ping")
        assert transport.read_exact(4, 2.0) == b"ping"
        transport.close()

        engine.online = False  # going down again closes the same port
        assert wait_until(lambda: refused(port))
    finally:
        attachment.stop()
