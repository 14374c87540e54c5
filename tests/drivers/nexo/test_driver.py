"""The nexo driver against a real HTTPS peer built on the codec's device role.

The peer in this file decrypts and decodes what the driver sends and answers with the codec's
response builders (or with raw bytes, for the error shapes Adyen documents), so every mapping is
tested over the real transport: the rejected key, a terminal without a key, Busy with the
running ServiceID, LoggedOut (log in, retry once), MessageFormat with hostile text, an answer to
another request; and the rules: one request in flight, encrypted both ways, nothing that moves
money.
"""

from __future__ import annotations

import ast
import inspect
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from posdiag.drivers.errors import AuthenticationError, DeadlineExceeded, DeviceError
from posdiag.drivers.nexo import driver as driver_module
from posdiag.drivers.nexo.crypto import NexoKey, decrypt_message, encrypt_message, is_encrypted
from posdiag.drivers.nexo.driver import NexoDriver, default_sale_id
from posdiag.drivers.nexo.errors import NexoCryptoError
from posdiag.drivers.nexo.failures import (
    NexoBusyError,
    NexoCertificateError,
    NexoCommandError,
    NexoKeyRejectedError,
    NexoKeyRequiredError,
    NexoMessageFormatError,
    NexoNoKeyOnTerminalError,
    NexoReplyError,
)
from posdiag.drivers.nexo.messages import (
    HostStatus,
    MessageHeader,
    NexoMessage,
    PaymentTotal,
    PoiStatus,
    TransactionTotal,
    decode_message,
    diagnosis_response,
    dumps,
    encode_message,
    failure_response,
    get_totals_response,
    loads,
    login_response,
    logout_response,
    reconciliation_response,
)
from posdiag.drivers.nexo.service_ids import ServiceIdStore
from posdiag.drivers.nexo.transport import HttpsTransport
from posdiag.simulators.nexo.tls import material_for, write_material

POIID = "V400m-324688179"
KEY = NexoKey("CryptoKeyIdentifier12345", 1, "p@ssw0rd123456")

Reply = NexoMessage | tuple[int, bytes] | None


@dataclass
class DevicePeer:
    """A terminal in a few dozen lines: the codec in the device role behind real HTTPS."""

    key: NexoKey | None = KEY
    encrypt_replies: bool = True
    delay: float = 0.0
    script: Callable[[NexoMessage], Reply] | None = None
    requests: list[NexoMessage] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)
    logged_in: set[str] = field(default_factory=set)
    active: int = 0
    max_active: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            obj = loads(body)
            was_encrypted = is_encrypted(obj)
            if was_encrypted:
                assert self.key is not None
                obj, _plain = decrypt_message(obj, self.key)
            message = decode_message(obj)
            with self.lock:
                self.requests.append(message)
                self.encrypted.append(was_encrypted)
            reply = (self.script or self.default)(message)
            if isinstance(reply, tuple):
                return reply
            if reply is None:
                return 200, b""
            wire = encode_message(reply)
            if was_encrypted and self.encrypt_replies and self.key is not None:
                wire = encrypt_message(wire, self.key)
            return 200, dumps(wire)
        finally:
            with self.lock:
                self.active -= 1

    @property
    def categories(self) -> list[str]:
        return [m.category for m in self.requests]

    def default(self, message: NexoMessage) -> Reply:
        sale = message.header.sale_id or ""
        if message.category == "Diagnosis":
            return diagnosis_response(
                message,
                poi_status=PoiStatus("OK", communication_ok=True, printer_status="OK"),
                host_status=[HostStatus("0", True)]
                if message.body.get("HostDiagnosisFlag")
                else [],
                logged_sale_ids=sorted(self.logged_in),
                additional={"firmwareVersion": "adyen_v1_49p5", "unconfirmedBatchCount": "0"},
            )
        if message.category == "Login":
            self.logged_in.add(sale)
            return login_response(
                message, date_time="2026-01-01T00:00:00Z", software_version="adyen_423314"
            )
        if message.category == "Logout":
            self.logged_in.discard(sale)
            return logout_response(message)
        if message.category in ("GetTotals", "Reconciliation"):
            if sale not in self.logged_in:
                return failure_response(message, "LoggedOut")
            totals = [
                TransactionTotal(
                    "Card",
                    currency="EUR",
                    payment_totals=(PaymentTotal("Debit", 2, Decimal("12.50")),),
                )
            ]
            if message.category == "GetTotals":
                return get_totals_response(message, poi_reconciliation_id="1000", totals=totals)
            return reconciliation_response(message, poi_reconciliation_id="999", totals=totals)
        if message.category == "Abort":
            return None
        return failure_response(message, "NotAllowed", {"message": "not in this test"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        status, answer = self.server.peer.handle(body)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    peer: DevicePeer


@dataclass
class Running:
    peer: DevicePeer
    port: int
    ca_file: Path


@pytest.fixture
def terminal_peer(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    servers: list[_Server] = []

    def start(peer: DevicePeer | None = None, *, poiid: str = POIID) -> Running:
        folder = tmp_path / f"tls{len(servers)}"
        folder.mkdir()
        ca, leaf, leaf_key = write_material(material_for(poiid), folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(leaf, leaf_key)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.peer = peer or DevicePeer()
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return Running(server.peer, server.server_address[1], ca)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def make_driver(
    running: Running,
    tmp_path: Path,
    *,
    key: NexoKey | None = KEY,
    poiid: str | None = POIID,
    store: ServiceIdStore | None = None,
    **kwargs: Any,
) -> NexoDriver:
    pipe = HttpsTransport("127.0.0.1", running.port, "/nexo", ca_file=running.ca_file, poiid=poiid)
    return NexoDriver(
        pipe,
        key=key,
        poiid=poiid,
        sale_id="posdiag-bench3",
        service_ids=store or ServiceIdStore(tmp_path / "ids"),
        **kwargs,
    )


# --- the normal dialogue -----------------------------------------------------------------------


def test_a_diagnosis_is_encrypted_both_ways_and_read(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer()
    driver = make_driver(running, tmp_path)
    diagnosis = driver.diagnosis()
    assert diagnosis.firmware_version == "adyen_v1_49p5"
    assert diagnosis.unconfirmed_batch_count == 0
    assert running.peer.encrypted == [True]
    header = running.peer.requests[0].header
    assert (header.message_class, header.sale_id, header.poiid) == (
        "Service",
        "posdiag-bench3",
        POIID,
    )
    assert running.peer.requests[0].body == {"HostDiagnosisFlag": False}


def test_without_a_key_the_dialogue_is_clear_text(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(DevicePeer(key=None))
    driver = make_driver(running, tmp_path, key=None)
    assert driver.diagnosis(host=True).host_status == (HostStatus("0", True),)
    assert running.peer.encrypted == [False]
    assert running.peer.requests[0].body["HostDiagnosisFlag"] is True


def test_login_totals_logout(terminal_peer: Callable[..., Running], tmp_path: Path) -> None:
    running = terminal_peer()
    driver = make_driver(running, tmp_path, clock=lambda: 1_767_225_600.0)
    login = driver.login()
    assert login.software_version == "adyen_423314"
    assert running.peer.requests[0].body["DateTime"] == "2026-01-01T00:00:00Z"
    totals = driver.get_totals()
    assert totals.poi_reconciliation_id == "1000"
    assert totals.totals[0].payment_totals[0].amount == Decimal("12.50")
    assert driver.logout().result == "Success"
    assert running.peer.categories == ["Login", "GetTotals", "Logout"]
    assert not driver.logged_in


def test_get_totals_logs_in_first(terminal_peer: Callable[..., Running], tmp_path: Path) -> None:
    running = terminal_peer()
    make_driver(running, tmp_path).get_totals()
    assert running.peer.categories == ["Login", "GetTotals"]


def test_the_poiid_is_read_from_the_certificate(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(poiid="P400Plus-275008565")
    driver = make_driver(running, tmp_path, poiid=None)
    driver.diagnosis()
    assert driver.poiid == "P400Plus-275008565"
    assert running.peer.requests[0].header.poiid == "P400Plus-275008565"


def test_a_legacy_certificate_needs_the_poiid_in_the_address(
    terminal_peer: Callable[..., Running], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posdiag.drivers.nexo.transport import PeerCertificate

    running = terminal_peer()
    driver = make_driver(running, tmp_path, poiid=None)
    legacy = PeerCertificate("legacy-terminal-certificate.test.terminal.adyen.com", "test", None)
    monkeypatch.setattr(driver.transport, "probe", lambda: legacy)
    with pytest.raises(NexoCertificateError, match=r"add its POIID to the address \(\?poiid="):
        driver.diagnosis()
    assert running.peer.requests == []


def test_an_abort_names_the_running_transaction_and_needs_no_answer(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer()
    driver = make_driver(running, tmp_path)
    assert driver.abort("P7X2K9Q1") is None
    request = running.peer.requests[0]
    assert request.category == "Abort"
    assert request.body["MessageReference"]["ServiceID"] == "P7X2K9Q1"
    assert request.header.service_id != "P7X2K9Q1"  # its own new ServiceID


def test_the_sale_id_is_posdiag_and_the_station(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_sale_id("bench-3.depot.example") == "posdiag-bench-3-depot-example"
    assert default_sale_id("\x1b[31m💥") == "posdiag-31m"
    assert len(default_sale_id("x" * 200)) <= 32
    assert default_sale_id("") == "posdiag"


# --- errors the terminal answers with ----------------------------------------------------------


def test_a_rejected_key_is_one_clear_line(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    body = json.dumps({"errors": ["Nexo Service: crypto error (3)"], "ServiceID": "-NULL-"})
    running = terminal_peer(DevicePeer(script=lambda m: (500, body.encode())))
    with pytest.raises(NexoKeyRejectedError) as caught:
        make_driver(running, tmp_path).diagnosis()
    assert str(caught.value) == (
        "the terminal rejected posdiag's key: check the key identifier, version and passphrase "
        "configured for it"
    )
    assert isinstance(caught.value, NexoCryptoError | AuthenticationError)


def test_crypto_error_9_in_a_200_answer_is_the_same(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    body = json.dumps({"errors": ["Nexo Service: crypto error (9)"]}).encode()
    running = terminal_peer(DevicePeer(script=lambda m: (200, body)))
    with pytest.raises(NexoKeyRejectedError):
        make_driver(running, tmp_path).diagnosis()


def test_an_answer_that_does_not_authenticate_is_a_crypto_error(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(DevicePeer(key=KEY))
    wrong = NexoKey(KEY.identifier, KEY.version, "another-passphrase1!")

    def impostor(message: NexoMessage) -> Reply:
        answer = encode_message(logout_response(message))
        return 200, dumps(encrypt_message(answer, wrong))

    running.peer.script = impostor
    with pytest.raises(NexoCryptoError):
        make_driver(running, tmp_path).logout()


def test_a_terminal_without_a_key_is_told_apart(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    def no_key(message: NexoMessage) -> Reply:
        answer = failure_response(
            message.header,
            "MessageFormat",
            {
                "errors": "At SaleToPOIRequest, field DiagnosisRequest: Missing",
                "warnings": "At SaleToPOIRequest, field NexoBlob: Unexpected",
            },
        )
        return 200, dumps(encode_message(answer))  # in clear: it cannot encrypt

    running = terminal_peer(DevicePeer(script=no_key))
    with pytest.raises(NexoNoKeyOnTerminalError, match="has no encryption key configured"):
        make_driver(running, tmp_path).diagnosis()


def test_a_bare_error_list_about_the_blob_means_no_key(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    body = {
        "errors": ["At SaleToPOIRequest, field X: Missing"],
        "warnings": ["At SaleToPOIRequest, field SecurityTrailer: Unexpected"],
    }
    running = terminal_peer(DevicePeer(script=lambda m: (400, json.dumps(body).encode())))
    with pytest.raises(NexoNoKeyOnTerminalError):
        make_driver(running, tmp_path).diagnosis()


def test_a_clear_answer_to_an_encrypted_request_is_refused(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(DevicePeer(encrypt_replies=False))
    with pytest.raises(NexoReplyError, match="in clear text"):
        make_driver(running, tmp_path).diagnosis()


def test_an_encrypted_answer_without_a_key_asks_for_one(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    def encrypted(message: NexoMessage) -> Reply:
        return 200, dumps(encrypt_message(encode_message(logout_response(message)), KEY))

    running = terminal_peer(DevicePeer(key=None, script=encrypted))
    with pytest.raises(NexoKeyRequiredError, match="accepts only encrypted requests"):
        make_driver(running, tmp_path, key=None).logout()


def test_a_live_terminal_refusing_clear_text_asks_for_a_key(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    note = "Direct API REQUIRES payload crypto on live, cleartext allowed for testing only"
    running = terminal_peer(
        DevicePeer(key=None, script=lambda m: failure_response(m, "MessageFormat", {"note": note}))
    )
    with pytest.raises(NexoKeyRequiredError):
        make_driver(running, tmp_path, key=None).diagnosis()


def test_busy_carries_the_running_service_id(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    said = "Forbidden Request, Service Dialogue PaymentRequest is in Progress"
    running = terminal_peer(
        DevicePeer(
            script=lambda m: failure_response(m, "Busy", {"message": said, "serviceId": "P7X2K9Q1"})
        )
    )
    with pytest.raises(NexoBusyError) as caught:
        make_driver(running, tmp_path).diagnosis()
    assert caught.value.service_id == "P7X2K9Q1"
    assert "service P7X2K9Q1" in str(caught.value)
    assert isinstance(caught.value, DeviceError)
    assert running.peer.categories == ["Diagnosis"]  # Adyen: do not retry a busy terminal


def test_busy_in_the_admin_menu_says_so(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(
        DevicePeer(script=lambda m: failure_response(m, "Busy", {"message": "ADMIN_MENU"}))
    )
    with pytest.raises(NexoBusyError, match="admin menu is open") as caught:
        make_driver(running, tmp_path).diagnosis()
    assert caught.value.admin_menu and caught.value.service_id is None


def test_logged_out_logs_in_and_retries_once(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer()
    driver = make_driver(running, tmp_path)
    driver.login()
    running.peer.logged_in.clear()  # the terminal restarted and forgot the login
    assert driver.get_totals().poi_reconciliation_id == "1000"
    assert running.peer.categories == ["Login", "GetTotals", "Login", "GetTotals"]
    service_ids = [m.header.service_id for m in running.peer.requests]
    assert len(set(service_ids)) == 4  # the retry is a new request


def test_logged_out_twice_is_an_error_not_a_loop(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    def forgetful(message: NexoMessage) -> Reply:
        if message.category == "GetTotals":
            return failure_response(message, "LoggedOut")
        return DevicePeer.default(running.peer, message)

    running = terminal_peer(DevicePeer())
    running.peer.script = forgetful
    driver = make_driver(running, tmp_path)
    driver.logged_in = True
    with pytest.raises(NexoCommandError) as caught:
        driver.get_totals()
    assert caught.value.condition == "LoggedOut"
    assert running.peer.categories == ["GetTotals", "Login", "GetTotals"]


def test_message_format_errors_are_cleaned_and_bounded(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    hostile = "At \x1b[2J\x1b]0;pwned\x07SaleToPOIRequest\u202e, field X: Missing " + "y" * 5000
    running = terminal_peer(
        DevicePeer(script=lambda m: failure_response(m, "MessageFormat", {"errors": hostile}))
    )
    with pytest.raises(NexoMessageFormatError) as caught:
        make_driver(running, tmp_path).diagnosis()
    text = str(caught.value)
    assert text.startswith("the terminal refused posdiag's Diagnosis request: At ")
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert len(text) < 400


def test_a_bare_http_error_list_is_a_message_format_error(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    body = {"errors": ["At toplevel, field SaleToPOIRequest: Missing", "\x1b[31mAt toplevel"]}
    running = terminal_peer(DevicePeer(script=lambda m: (400, json.dumps(body).encode())))
    with pytest.raises(NexoMessageFormatError, match="field SaleToPOIRequest: Missing") as caught:
        make_driver(running, tmp_path).diagnosis()
    assert "\x1b" not in str(caught.value)


def test_another_refusal_names_its_condition(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(
        DevicePeer(script=lambda m: failure_response(m, "NotAllowed", {"message": "\x1b[1mno"}))
    )
    with pytest.raises(NexoCommandError, match=r"refused the Diagnosis request \(NotAllowed\): "):
        make_driver(running, tmp_path).diagnosis()


def test_an_http_error_without_errors_is_a_reply_error(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(DevicePeer(script=lambda m: (404, b"<html>not here</html>")))
    with pytest.raises(NexoReplyError, match="HTTP status 404"):
        make_driver(running, tmp_path).diagnosis()


def test_an_answer_to_another_request_is_refused(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    def stale(message: NexoMessage) -> Reply:
        old = MessageHeader("Service", "Diagnosis", "Request", "OLD1", "posdiag-bench3", POIID)
        request = NexoMessage("SaleToPOIRequest", old, "DiagnosisRequest", {})
        return diagnosis_response(request)

    running = terminal_peer(DevicePeer(script=stale))
    with pytest.raises(NexoReplyError, match="another ServiceID"):
        make_driver(running, tmp_path).diagnosis()


def test_a_missing_answer_is_an_error_except_for_an_abort(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer(DevicePeer(script=lambda m: None))
    with pytest.raises(NexoReplyError, match="no answer to the Diagnosis request"):
        make_driver(running, tmp_path).diagnosis()


def test_garbage_is_a_protocol_error(terminal_peer: Callable[..., Running], tmp_path: Path) -> None:
    from posdiag.drivers.errors import ProtocolError

    running = terminal_peer(DevicePeer(script=lambda m: (200, b"\xff{not json")))
    with pytest.raises(ProtocolError):
        make_driver(running, tmp_path).diagnosis()


# --- rules -------------------------------------------------------------------------------------


def test_one_request_in_flight(terminal_peer: Callable[..., Running], tmp_path: Path) -> None:
    running = terminal_peer(DevicePeer(delay=0.05))
    driver = make_driver(running, tmp_path)
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            driver.diagnosis()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(running.peer.requests) == 4
    assert running.peer.max_active == 1


def test_service_ids_are_new_across_driver_instances(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer()
    folder = tmp_path / "shared-ids"
    draws = iter(["AAAA1", "AAAA1", "BBBB2", "AAAA1", "BBBB2", "CCCC3"])
    first = make_driver(running, tmp_path, store=ServiceIdStore(folder, draw=lambda: next(draws)))
    first.diagnosis()
    first.diagnosis()
    second = make_driver(running, tmp_path, store=ServiceIdStore(folder, draw=lambda: next(draws)))
    second.diagnosis()  # a new process (a new store on the same folder) must not reuse one
    assert [m.header.service_id for m in running.peer.requests] == ["AAAA1", "BBBB2", "CCCC3"]


def test_the_deadline_stops_requests(terminal_peer: Callable[..., Running], tmp_path: Path) -> None:
    running = terminal_peer()
    driver = make_driver(running, tmp_path)
    driver.set_deadline(time.monotonic() - 1)
    with pytest.raises(DeadlineExceeded):
        driver.diagnosis()
    driver.set_deadline(None)
    driver.diagnosis()


def test_previous_reconciliation_is_read_only(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    running = terminal_peer()
    result = make_driver(running, tmp_path).previous_reconciliation("999")
    assert result.poi_reconciliation_id == "999"
    request = running.peer.requests[-1]
    assert request.body["ReconciliationType"] == "PreviousReconciliation"


def test_nothing_the_driver_can_send_moves_money(
    terminal_peer: Callable[..., Running], tmp_path: Path
) -> None:
    """Every operation, run: no Payment, Reversal, refund or SaleReconciliation is sent."""
    public = {
        name
        for name, member in inspect.getmembers(NexoDriver, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == {
        "diagnosis",
        "login",
        "logout",
        "get_totals",
        "previous_reconciliation",
        "abort",
        "open",
        "close",
        "set_deadline",
    }
    running = terminal_peer()
    driver = make_driver(running, tmp_path)
    driver.diagnosis()
    driver.diagnosis(host=True)
    driver.login()
    driver.get_totals()
    driver.previous_reconciliation("1")
    driver.abort("X1")
    driver.logout()
    sent = [(m.category, m.body.get("ReconciliationType")) for m in running.peer.requests]
    assert {category for category, _ in sent} <= {
        "Diagnosis",
        "Login",
        "GetTotals",
        "Reconciliation",
        "Abort",
        "Logout",
    }
    assert all(kind in (None, "PreviousReconciliation") for _, kind in sent)
    # and the code itself names no builder or message that could: the codec has none to import
    tree = ast.parse(inspect.getsource(driver_module))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in ("builders", "messages")
        for alias in node.names
    }
    assert not {name for name in imported if name.endswith("_request")} - {
        "abort_request",
        "diagnosis_request",
        "get_totals_request",
        "login_request",
        "logout_request",
        "previous_reconciliation_request",
    }
    words = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 40
    }
    assert not words & {"SaleReconciliation", "Payment", "Reversal", "Refund"}


def test_the_key_never_shows(tmp_path: Path) -> None:
    pipe = HttpsTransport("127.0.0.1", 1, "/nexo", ca_file=tmp_path / "none.pem")
    driver = NexoDriver(pipe, key=KEY, poiid=POIID, service_ids=ServiceIdStore(tmp_path))
    assert KEY.passphrase not in repr(driver) and KEY.passphrase not in repr(KEY)
