"""The simulated Adyen terminal's HTTPS side: paths, chunked bodies, bounds, errors, TLS, faults."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from posdiag.drivers.nexo.crypto import encrypt_message
from posdiag.drivers.nexo.messages import diagnosis_request, dumps, encode_message
from posdiag.simulators.nexo.engine import MALFORMED
from posdiag.simulators.nexo.server import MAX_BODY
from posdiag.simulators.nexo.tls import common_name


def encrypted_diagnosis(client: Any) -> bytes:
    message = encode_message(diagnosis_request(client.sid(), client.sale_id, client.poiid))
    return dumps(encrypt_message(message, client.key))


def test_chunked_body_to_nexo_slash_as_the_node_library_sends(
    nexo_terminal: Any, nexo_client: Any
) -> None:
    client = nexo_client(nexo_terminal("activated"))
    body = encrypted_diagnosis(client)
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]  # many small chunks
    reply = client.post_raw(pieces, path="/nexo/", chunked=True)
    assert reply.status == 200 and reply.encrypted
    assert reply.body("DiagnosisResponse")["Response"]["Result"] == "Success"


def test_content_length_body_and_keep_alive(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("activated"))
    conn = client.connection()
    try:
        for _ in range(3):  # one connection, three requests
            conn.request("POST", "/nexo?:8443/nexo/", body=encrypted_diagnosis(client))
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Type") == "application/json"
            assert response.read()
    finally:
        conn.close()


def test_other_paths_and_methods(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("activated"))
    assert client.post_raw(b"{}", path="/").status == 404
    assert client.post_raw(b"{}", path="/nexo/extra").status == 404
    conn = client.connection()
    try:
        conn.request("GET", "/nexo")
        response = conn.getresponse()
        assert response.status == 405 and response.getheader("Allow") == "POST"
    finally:
        conn.close()


def test_bad_json_and_missing_wrapper(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("activated"))
    bad = client.post_raw(b'{"SaleToPOIRequest": {\n  "MessageHeader": ,}}')
    assert bad.status == 400
    assert bad.obj["errors"][0].startswith("Bad JSON: line 2, column")
    assert client.post_raw(b"\xff\xfe").obj["errors"] == [
        "Bad JSON: line 1, column 1: not valid UTF-8"
    ]
    for body in (b"{}", b"[1, 2]", b'{"SaleToPOIResponse": {}}', b'"text"'):
        reply = client.post_raw(body)
        assert reply.status == 400
        assert reply.obj == {
            "errors": ["At toplevel, field SaleToPOIRequest: Missing", "At toplevel: Missing"]
        }


def test_missing_body_field_is_a_message_format_response(
    nexo_terminal: Any, nexo_client: Any
) -> None:
    client = nexo_client(nexo_terminal("activated"))
    header = diagnosis_request(client.sid(), client.sale_id, client.poiid).header.to_json()
    reply = client.post_raw(dumps({"SaleToPOIRequest": {"MessageHeader": header}}))
    assert reply.status == 200
    assert reply.additional("DiagnosisResponse")["errors"] == (
        "At SaleToPOIRequest, field DiagnosisRequest: Missing"
    )


def test_oversized_body_is_refused(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("activated"))
    assert client.post_raw(b" " * (MAX_BODY + 1)).status == 413
    many_chunks = [b"x" * 65536 for _ in range(MAX_BODY // 65536 + 1)]
    assert client.post_raw(many_chunks, chunked=True).status == 413
    assert client.post_raw([b"y" * (MAX_BODY + 1)], chunked=True).status == 413


def test_tls_certificate_names_the_poiid_and_chains_to_the_ca(nexo_terminal: Any) -> None:
    terminal = nexo_terminal("activated", model="P400Plus")
    context = ssl.create_default_context(cafile=str(terminal.ca_path))  # verifies chain + IP SAN
    with (
        socket.create_connection((terminal.host, terminal.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=terminal.host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "P400Plus-275008565.test.terminal.adyen.com" == common_name(terminal.poiid)
    ca = x509.load_pem_x509_certificate(terminal.ca_path.read_bytes())
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    # An untrusting client (no CA) fails: the certificate is not a public one.
    with (
        socket.create_connection((terminal.host, terminal.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_private_files_and_address(nexo_terminal: Any) -> None:
    terminal = nexo_terminal("activated")
    directory = terminal.ca_path.parent
    assert directory.stat().st_mode & 0o777 == 0o700
    assert terminal.key_path.stat().st_mode & 0o777 == 0o600
    assert (directory / "leaf.key").stat().st_mode & 0o777 == 0o600
    text = terminal.key_path.read_text()
    assert f'identifier = "{terminal.key.identifier}"' in text and "version = 1" in text
    assert terminal.address == (
        f"nexo+https://127.0.0.1:{terminal.port}?poiid={terminal.poiid}"
        f"&ca={terminal.ca_path}&key={terminal.key_path}"
    )
    terminal.simulator.stop()
    assert not directory.exists()


def test_drop_fault_closes_without_answering(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("activated", drop=1)
    client = nexo_client(terminal)
    with pytest.raises((http.client.HTTPException, ConnectionError, ssl.SSLError)):
        client.post_raw(encrypted_diagnosis(client))
    assert terminal.state.faults.drop == 0
    assert client.post_raw(encrypted_diagnosis(client)).status == 200


def test_malformed_json_fault(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("activated", malformed_json=2))
    for _ in range(2):
        reply = client.post_raw(encrypted_diagnosis(client))
        assert reply.status == 200 and reply.raw == MALFORMED and reply.obj is None
    assert client.post_raw(encrypted_diagnosis(client)).encrypted


def test_slow_fault_delays_every_answer(nexo_terminal: Any, nexo_client: Any) -> None:
    client = nexo_client(nexo_terminal("activated", slow=0.3))
    started = time.monotonic()
    assert client.post_raw(encrypted_diagnosis(client)).status == 200
    assert time.monotonic() - started >= 0.3


def test_unknown_fault_is_refused(nexo_terminal: Any) -> None:
    from posdiag.simulators.pytest_support import UnknownFaultError

    with pytest.raises(UnknownFaultError, match="did you mean 'wrong_key'"):
        nexo_terminal("activated", wrong_kye=True)


def test_a_stalled_body_ends_at_the_read_deadline(
    nexo_terminal: Any, nexo_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posdiag.simulators.nexo import server

    monkeypatch.setattr(server, "READ_DEADLINE_S", 0.3)
    client = nexo_client(nexo_terminal("activated"))
    conn = client.connection()
    try:
        conn.putrequest("POST", "/nexo")
        conn.putheader("Content-Length", "100")
        conn.endheaders(b'{"SaleToPOI')  # 11 of 100 bytes, then nothing
        started = time.monotonic()
        response = conn.getresponse()
        assert response.status == 408
        assert time.monotonic() - started < 3
    finally:
        conn.close()
