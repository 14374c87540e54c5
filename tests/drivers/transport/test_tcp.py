"""TCP specifics: readable connect errors, Nagle off, server-side wrapping."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from posdiag.drivers.errors import TransportClosed, TransportOpenError
from posdiag.drivers.transport.tcp import TcpTransport


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.settimeout(5)
    yield sock
    sock.close()


@pytest.fixture
def connected(listener: socket.socket) -> Iterator[tuple[TcpTransport, TcpTransport]]:
    port = listener.getsockname()[1]
    client = TcpTransport("127.0.0.1", port)
    client.open()
    conn, _ = listener.accept()
    server = TcpTransport.from_socket(conn, "cash register connection")
    yield client, server
    client.close()
    server.close()


def test_description_names_host_and_port() -> None:
    assert TcpTransport("127.0.0.1", 20007).description == "tcp 127.0.0.1:20007"
    assert TcpTransport("::1", 20007).description == "tcp [::1]:20007"


def test_client_disables_nagle(connected: tuple[TcpTransport, TcpTransport]) -> None:
    client, server = connected
    for end in (client, server):
        assert end._sock is not None
        assert end._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_from_socket_is_open_and_knows_its_peer(
    connected: tuple[TcpTransport, TcpTransport],
) -> None:
    _, server = connected
    assert server.is_open
    assert server.description == "cash register connection"
    assert server.host == "127.0.0.1"
    assert server.port > 0
    server.open()  # already open: no-op


def test_reopen_after_close_connects_again(listener: socket.socket) -> None:
    client = TcpTransport("127.0.0.1", listener.getsockname()[1])
    with client:
        first, _ = listener.accept()
    first.close()
    with client:
        second, _ = listener.accept()
        second.sendall(b"hi")
        assert client.read(10, 1.0) == b"hi"
    second.close()


def test_reset_input_drops_received_bytes_but_keeps_eof(
    connected: tuple[TcpTransport, TcpTransport],
) -> None:
    client, server = connected
    server.write(b"stale")
    server.close()
    assert client.read_exact(1, 1.0) == b"s"
    client.reset_input()
    with pytest.raises(TransportClosed, match="closed by peer"):
        client.read(10, 1.0)


def test_write_to_reset_connection_raises_closed(
    connected: tuple[TcpTransport, TcpTransport],
) -> None:
    client, server = connected
    server.close()
    with pytest.raises(TransportClosed):
        for _ in range(100):  # the first writes may still be accepted by the kernel
            client.write(b"x" * 1024)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection to h:1 refused"),
        (TimeoutError("timed out"), "connection to h:1 timed out after 0.5 s"),
        (
            OSError(errno.EHOSTUNREACH, "No route to host"),
            "h:1 is unreachable: no route to host",
        ),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "cannot resolve host 'h': Name or service not known",
        ),
        (OSError(errno.EACCES, "Permission denied"), "connection to h:1 failed: permission denied"),
    ],
    ids=["refused", "timeout", "unreachable", "dns", "other"],
)
def test_connect_errors_become_one_readable_line(
    monkeypatch: pytest.MonkeyPatch, error: OSError, message: str
) -> None:
    def fail(address: tuple[str, int], timeout: float) -> socket.socket:
        raise error

    monkeypatch.setattr(socket, "create_connection", fail)
    transport = TcpTransport("h", 1, connect_timeout=0.5)
    with pytest.raises(TransportOpenError) as info:
        transport.open()
    assert str(info.value) == message
    assert info.value.__cause__ is error
    assert not transport.is_open
