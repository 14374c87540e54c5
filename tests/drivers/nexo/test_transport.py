"""The nexo HTTPS transport against a real TLS peer: the CN rule, the chain, bounds, deadlines.

The peer is a tiny threaded HTTPS server in this file with certificates made here (a private CA
and leaves named as Adyen names terminals, or not), so each rule of the reference (nexo.md §7)
is tested against a real handshake: the right name passes, ``localhost`` fails, another POIID
fails, a chain to another CA fails; and a failed name check means the request never left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from posdiag.drivers.errors import (
    AuthenticationError,
    ConnectionRefused,
    DeadlineExceeded,
    ResponseTooLarge,
    TransportError,
    TransportOpenError,
    TransportTimeout,
)
from posdiag.drivers.nexo import transport as transport_module
from posdiag.drivers.nexo.failures import NexoCertificateError, NexoConfigError
from posdiag.drivers.nexo.transport import HttpsTransport, check_common_name, ssl_context

POIID = "V400m-324688179"
GOOD_CN = f"{POIID}.test.terminal.adyen.com"


# --- certificates ----------------------------------------------------------------------------


@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_ca(name: str = "test CA") -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Ca(key, cert)


def write_leaf(ca: Ca, common_name: str, folder: Path) -> tuple[Path, Path]:
    """A leaf with ``common_name`` signed by ``ca``: (certificate PEM, key PEM) paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path = folder / "leaf.pem"
    key_path = folder / "leaf.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def write_ca(ca: Ca, path: Path) -> Path:
    path.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    return path


# --- the peer --------------------------------------------------------------------------------

Answer = Callable[[bytes], tuple[int, bytes]]


@dataclass
class Peer:
    host: str
    port: int
    ca_file: Path
    bodies: list[bytes] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        self.server.bodies.append(body)
        status, answer = self.server.answer(body)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (a bound): what the test wants
            self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    bodies: list[bytes]
    answer: Answer


@pytest.fixture
def https_peer(tmp_path: Path) -> Iterator[Callable[..., Peer]]:
    servers: list[_Server] = []

    def start(
        common_name: str = GOOD_CN, answer: Answer | None = None, *, signer: Ca | None = None
    ) -> Peer:
        ca = make_ca()
        folder = tmp_path / f"peer{len(servers)}"
        cert, key = write_leaf(signer or ca, common_name, folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.bodies = []
        server.answer = answer or (lambda body: (200, b'{"ok":true}'))
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return Peer(
            "127.0.0.1", server.server_address[1], write_ca(ca, folder / "ca.pem"), server.bodies
        )

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def transport(peer: Peer, **kwargs: object) -> HttpsTransport:
    return HttpsTransport(peer.host, peer.port, "/nexo", ca_file=peer.ca_file, **kwargs)  # type: ignore[arg-type]


# --- the CN rule, as a function ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "environment", "poiid"),
    [
        (GOOD_CN, "test", POIID),
        (f"{POIID}.live.terminal.adyen.com", "live", POIID),
        ("P400Plus-275008565.TEST.terminal.adyen.com", "test", "P400Plus-275008565"),
        ("legacy-terminal-certificate.live.terminal.adyen.com", "live", None),
    ],
)
def test_adyen_terminal_names_pass(name: str, environment: str, poiid: str | None) -> None:
    peer = check_common_name(name, None)
    assert (peer.environment, peer.poiid, peer.legacy) == (environment, poiid, poiid is None)


@pytest.mark.parametrize(
    "name",
    [
        "localhost",
        "",
        None,
        "terminal.adyen.com",
        f"{POIID}.prod.terminal.adyen.com",
        f"{POIID}.test.terminal.adyen.com.evil.example",
        f"evil.example/{GOOD_CN}",
        "V400m_324688179.test.terminal.adyen.com",
        f"{POIID}.test.terminal.adyen.com\x00.evil",
    ],
)
def test_other_names_fail(name: str | None) -> None:
    with pytest.raises(NexoCertificateError, match="not to an Adyen terminal"):
        check_common_name(name, None)


def test_a_certificate_of_another_terminal_fails() -> None:
    with pytest.raises(NexoCertificateError, match="V400m-324688179, not V400m-111"):
        check_common_name(GOOD_CN, "V400m-111")


def test_a_legacy_certificate_leaves_the_poiid_to_the_address() -> None:
    assert check_common_name("legacy-terminal-certificate.test.terminal.adyen.com", POIID).legacy


def test_a_hostile_name_is_cleaned_in_the_message() -> None:
    with pytest.raises(NexoCertificateError) as caught:
        check_common_name("\x1b[31mevil\u202e" + "x" * 500, None)
    assert "\x1b" not in str(caught.value) and "\u202e" not in str(caught.value)
    assert len(str(caught.value)) < 400
    assert isinstance(caught.value, AuthenticationError)  # one line, usage exit code


# --- the CN rule on a real handshake ---------------------------------------------------------


def test_the_right_name_passes_and_the_answer_comes_back(https_peer: Callable[..., Peer]) -> None:
    peer = https_peer()
    pipe = transport(peer, poiid=POIID)
    reply = pipe.post(b'{"hello":1}')
    assert (reply.status, reply.body, reply.content_type) == (
        200,
        b'{"ok":true}',
        "application/json",
    )
    assert peer.bodies == [b'{"hello":1}']
    assert pipe.peer is not None and pipe.peer.poiid == POIID and pipe.peer.environment == "test"
    pipe.close()


def test_probe_tells_the_poiid_without_sending_anything(https_peer: Callable[..., Peer]) -> None:
    peer = https_peer()
    assert transport(peer).probe().poiid == POIID
    assert peer.bodies == []


def test_a_localhost_certificate_fails_before_the_request_is_sent(
    https_peer: Callable[..., Peer],
) -> None:
    peer = https_peer("localhost")
    with pytest.raises(NexoCertificateError, match="'localhost', not to an Adyen terminal"):
        transport(peer).post(b'{"secret":"cleartext"}')
    assert peer.bodies == []  # the name is checked the moment TLS is up


def test_another_poiid_fails_before_the_request_is_sent(https_peer: Callable[..., Peer]) -> None:
    peer = https_peer()
    with pytest.raises(NexoCertificateError, match="not V400m-999999999 as the address says"):
        transport(peer, poiid="V400m-999999999").post(b"{}")
    assert peer.bodies == []
    with pytest.raises(NexoCertificateError):
        transport(peer, poiid="V400m-999999999").probe()


def test_a_chain_to_another_ca_fails(https_peer: Callable[..., Peer]) -> None:
    peer = https_peer(signer=make_ca("somebody else"))
    with pytest.raises(NexoCertificateError, match="could not be verified against"):
        transport(peer).post(b"{}")
    assert peer.bodies == []
    with pytest.raises(NexoCertificateError, match="could not be verified"):
        transport(peer).probe()


def test_requests_say_connection_close_and_no_proxy_is_used(
    https_peer: Callable[..., Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # would fail if it were used
    seen: list[str] = []

    def answer(body: bytes) -> tuple[int, bytes]:
        return 200, b"{}"

    peer = https_peer(answer=answer)
    pipe = transport(peer)
    pipe.open()
    assert pipe._client is not None
    seen.append(pipe._client.headers["connection"])
    pipe.post(b"{}")
    assert seen == ["close"]


# --- failures become posdiag's typed errors ----------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_connection_refused(tmp_path: Path) -> None:
    ca = write_ca(make_ca(), tmp_path / "ca.pem")
    pipe = HttpsTransport("127.0.0.1", _closed_port(), "/nexo", ca_file=ca)
    with pytest.raises(ConnectionRefused, match="refused the connection"):
        pipe.post(b"{}")
    with pytest.raises(ConnectionRefused):
        pipe.probe()


def test_something_that_does_not_speak_tls_is_an_open_error(tmp_path: Path) -> None:
    ca = write_ca(make_ca(), tmp_path / "ca.pem")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def babble() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(b"HTTP/1.0 200 OK\r\n\r\nnot tls at all\r\n" * 4)

    threading.Thread(target=babble, daemon=True).start()
    try:
        pipe = HttpsTransport("127.0.0.1", listener.getsockname()[1], "/nexo", ca_file=ca)
        with pytest.raises(TransportError) as caught:
            pipe.post(b"{}")
        assert isinstance(caught.value, TransportOpenError | TransportError)
        assert not isinstance(caught.value, NexoCertificateError)
    finally:
        listener.close()


def test_an_answer_over_the_bound_is_refused(
    https_peer: Callable[..., Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "MAX_ANSWER", 1024)
    peer = https_peer(answer=lambda body: (200, b"[" + b"1," * 100_000 + b"1]"))
    with pytest.raises(ResponseTooLarge, match="larger than 1 KiB"):
        transport(peer).post(b"{}")


def test_a_slow_answer_times_out(https_peer: Callable[..., Peer]) -> None:
    def slow(body: bytes) -> tuple[int, bytes]:
        time.sleep(1.0)
        return 200, b"{}"

    peer = https_peer(answer=slow)
    started = time.monotonic()
    with pytest.raises(TransportTimeout):
        transport(peer, timeout_s=0.2).post(b"{}")
    assert time.monotonic() - started < 0.9


def test_the_terminal_deadline_clips_every_request(https_peer: Callable[..., Peer]) -> None:
    def slow(body: bytes) -> tuple[int, bytes]:
        time.sleep(1.0)
        return 200, b"{}"

    peer = https_peer(answer=slow)
    pipe = transport(peer, timeout_s=30)
    pipe.set_deadline(time.monotonic() + 0.2)
    started = time.monotonic()
    with pytest.raises(TransportTimeout):
        pipe.post(b"{}")
    assert time.monotonic() - started < 0.9
    with pytest.raises(DeadlineExceeded):
        pipe.post(b"{}")  # the instant has passed: nothing is even tried


def test_a_file_without_a_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(NexoConfigError, match="holds no certificate"):
        ssl_context(bogus)


def test_the_context_checks_chains_not_host_names(tmp_path: Path) -> None:
    context = ssl_context(write_ca(make_ca(), tmp_path / "ca.pem"))
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is False
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
