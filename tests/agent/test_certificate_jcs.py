"""Certificates in RFC 8785 form: every byte protected, reproducible by a third party.

The byte-edit test flips, inserts and deletes every byte of a real certificate file, one at a
time, and requires every edit to fail verification (it also serves the reliability campaign).
"""

from __future__ import annotations

import base64
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from posdiag.agent.certificate import (
    OLD_FORMAT_NOTE,
    SCHEMA,
    SCHEMA_V1,
    CertificateError,
    StationKey,
    build_certificate,
    canonical_json,
    document_bytes,
    legacy_canonical_json,
    parse_strict,
    render_html,
    sign_certificate,
    verify_certificate,
    write_certificate,
)
from posdiag.agent.report import DeviceReport, Verdict, VerdictStatus, to_json
from posdiag.drivers.model import (
    Activation,
    ActivationState,
    Evidence,
    Firmware,
    Identity,
    MerchantData,
    PendingTransactions,
    Tamper,
)

SERIAL = "17F59B1F"


def report_json(**identity: Any) -> dict[str, Any]:
    fields = {"vendor": "FEIG ELECTRONIC", "model": "cVEND plug", "serial": SERIAL}
    fields.update(identity)
    report = DeviceReport(
        address="zvt+tcp://192.168.23.51:20007",
        family="zvt",
        checked_at="2026-01-01T09:55:00Z",
        identity=Identity(**fields),
        activation=Activation(
            ActivationState.ACTIVATED,
            terminal_id="52502000",
            evidence=(Evidence("status enquiry", "terminal ID ****2000 assigned"),),
        ),
        firmware=Firmware({"ZVT application": "GER-APP-v2.0.9"}),
        merchant_data=MerchantData(pending_transactions=PendingTransactions(0, 0, "EUR")),
        tamper=Tamper(False),
        verdict=Verdict(VerdictStatus.WIPE_REQUIRED, ("terminal is activated",)),
    )
    return to_json(report)


def content(report: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "report": report or report_json(),
        "outcome": "erased",
        "steps": [
            {"name": "reset_terminal_id", "erases": "terminal ID", "status": "done"},
            {"name": "log_off", "erases": "host session", "status": "done", "verified": True},
        ],
        "operator": "Jana Nováková",
        "location": "Hamburg \u00e9 bench 3",
        "method": "ZVT reset",
        "verification_method": "read back",
        "tool_version": "0.1.0",
        "started_at": "2026-01-01T09:00:00Z",
        "finished_at": "2026-01-01T09:03:30Z",
    }
    args.update(overrides)
    return build_certificate(**args)


@pytest.fixture(scope="module")
def key() -> StationKey:
    return StationKey.generate()


@pytest.fixture(scope="module")
def certificate_file(key: StationKey, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real certificate file as the wipe writes it."""
    json_path, _ = write_certificate(
        sign_certificate(content(), key), tmp_path_factory.mktemp("certs")
    )
    return json_path.read_bytes()


def test_the_file_is_exactly_the_jcs_bytes(certificate_file: bytes) -> None:
    doc = json.loads(certificate_file)
    assert doc["certificate"]["schema"] == SCHEMA == "posdiag.certificate/2"
    assert certificate_file == rfc8785.dumps(doc) == document_bytes(doc)
    assert not certificate_file.endswith(b"\n")
    assert b"\n" not in certificate_file and b"  " not in certificate_file
    result = verify_certificate(certificate_file)
    assert result.ok, result.reason
    assert result.content == doc["certificate"]
    assert not result.old_format


def test_a_third_party_verifies_with_rfc8785_and_cryptography(certificate_file: bytes) -> None:
    # The recipe of the package docstring, line for line.
    doc = json.loads(certificate_file)
    assert rfc8785.dumps(doc) == certificate_file, "the file is not exactly as signed"
    sig = doc["signature"]
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig["public_key"]))
    public.verify(base64.b64decode(sig["value"]), rfc8785.dumps(doc["certificate"]))


def _edits(data: bytes) -> list[tuple[str, int, bytes]]:
    """Every single-byte edit: flip, insert and delete at each position."""
    inserts = (b" ", b"\n", b"0", b"x", b"\\", b"\xef")
    edits: list[tuple[str, int, bytes]] = []
    for pos in range(len(data)):
        flip = bytes([data[pos] ^ (0x01 if pos % 2 else 0x20)])
        edits.append(("flip", pos, data[:pos] + flip + data[pos + 1 :]))
        insert = inserts[pos % len(inserts)]
        edits.append(("insert", pos, data[:pos] + insert + data[pos:]))
        edits.append(("delete", pos, data[:pos] + data[pos + 1 :]))
    edits.append(("insert", len(data), data + b"\n"))
    edits.append(("insert", len(data), data + b" "))
    return edits


def test_every_byte_edit_fails(certificate_file: bytes) -> None:
    tried = detected = 0
    for kind, pos, edited in _edits(certificate_file):
        assert edited != certificate_file
        result = verify_certificate(edited)
        tried += 1
        if not result.ok:
            detected += 1
            assert result.reason and result.content is None
        else:
            pytest.fail(f"{kind} at byte {pos} passed verification")
    assert tried == detected == 3 * len(certificate_file) + 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b" " + b, "not exactly as signed (byte 0"),
        (lambda b: b + b"\n", "not exactly as signed"),
        (lambda b: b"\xef\xbb\xbf" + b, "byte order mark"),
        (lambda b: b.replace(b'"Jana', b'"\\u004aana', 1), "not exactly as signed"),
        (lambda b: json.dumps(json.loads(b), indent=1).encode(), "not exactly as signed"),
        (lambda b: json.dumps(json.loads(b), sort_keys=False).encode(), "not exactly"),
        (lambda b: b[:-1] + b',"signature":{}}', "duplicate key"),
        (lambda b: b[:-2] + b'"}x', "unreadable JSON"),
        (lambda b: b.replace(b"\xc3\xa9", b"\xe9", 1), "not UTF-8"),
    ],
)
def test_form_changes_fail_with_a_reason(certificate_file: bytes, change: Any, reason: str) -> None:
    result = verify_certificate(change(certificate_file))
    assert not result.ok
    assert reason in result.reason, result.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": Infinity}', "Infinity"),
        ('{"a": -Infinity}', "Infinity"),
        ('{"a": 1e400}', "JCS cannot represent"),
        ('{"a": 9007199254740993}', "JCS cannot represent"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"\\udc00": 1}', "lone surrogate"),
        ('{"a": 1, "a": 1}', "duplicate key"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_the_strict_parser_refuses_what_jcs_cannot_write(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_strict(text.encode())
    result = verify_certificate(text.encode())
    assert not result.ok and result.content is None


def test_numbers_are_written_as_jcs_writes_them(key: StationKey) -> None:
    signed = sign_certificate(content(), key)
    data = canonical_json(signed)
    duration = signed["certificate"]["sanitization"]["duration_s"]
    assert f'"duration_s":{duration}'.encode() in data
    field = f'"duration_s":{duration}'.encode()
    spelled = data.replace(field, field + b".0")
    result = verify_certificate(spelled)
    assert not result.ok and "not exactly as signed" in result.reason
    with pytest.raises(CertificateError, match="not plain JSON"):
        canonical_json({"a": float("nan")})
    with pytest.raises(CertificateError, match="lone surrogate"):
        canonical_json({"a": "\ud800"})


# --- the older format ------------------------------------------------------------------------


def v1_document(key: StationKey) -> dict[str, Any]:
    """A posdiag.certificate/1 document as versions before JCS signed it."""
    cert = {**content(), "schema": SCHEMA_V1}
    value = key.sign(legacy_canonical_json(cert))
    return {
        "certificate": cert,
        "signature": {
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(key.public_key_raw).decode(),
            "fingerprint": key.fingerprint,
            "value": base64.b64encode(value).decode(),
        },
    }


def test_old_certificates_verify_and_say_whitespace_is_not_protected(key: StationKey) -> None:
    document = v1_document(key)
    pretty = (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    result = verify_certificate(pretty)
    assert result.ok, result.reason
    assert result.old_format
    assert OLD_FORMAT_NOTE in result.reason
    assert "whitespace is not protected" in result.reason
    # whitespace is not protected (documented), values still are
    assert verify_certificate(pretty.replace(b"\n", b"\n ")).ok
    assert not verify_certificate(pretty.replace(b'"erased"', b'"refused"', 1)).ok
    # the old format is verified, never written again
    with pytest.raises(CertificateError, match=r"only posdiag\.certificate/2"):
        sign_certificate(document["certificate"], key)


def test_a_schema_downgrade_breaks_the_signature(certificate_file: bytes) -> None:
    downgraded = certificate_file.replace(SCHEMA.encode(), SCHEMA_V1.encode(), 1)
    result = verify_certificate(downgraded)
    assert not result.ok
    assert "changed after signing" in result.reason


# --- no control sequences --------------------------------------------------------------------

HOSTILE_MODEL = "cVEND\x1b[2J\x1b]0;pwned\x07 plug\u202e\x00"
HOSTILE_SERIAL = "17F5\x1b[31m9B1F\u200b"


def _has_controls(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch not in "\n" for ch in text)


def test_device_text_is_cleaned_before_it_enters(key: StationKey, tmp_path: Path) -> None:
    report = report_json(model=HOSTILE_MODEL, serial=HOSTILE_SERIAL, vendor="FEIG\r\nX-Evil: 1")
    report["firmware"]["components"] = {"app\x1b[1m": "v1\x9b2J"}
    report["verdict"]["reasons"] = ["bad\x1b[0m reason"]
    steps = [{"name": "reset", "erases": "TID\x07", "status": "done", "detail": "ok\x1b[K"}]
    cert = content(report=report, steps=steps)
    text = json.dumps(cert, ensure_ascii=False)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert not _has_controls(json.dumps(cert, ensure_ascii=False).replace("\\", ""))
    for value in (cert["media"]["model"], cert["media"]["serial_number"]):
        assert not _has_controls(value)
    assert cert["media"]["serial_number"] == "17F59B1F"
    assert cert["media"]["manufacturer"] == "FEIG  X-Evil: 1"
    json_path, html_path = write_certificate(sign_certificate(cert, key), tmp_path)
    for blob in (json_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")):
        assert not _has_controls(blob.replace("\n", ""))
    assert verify_certificate(json_path.read_bytes()).ok


def test_html_of_an_unclean_document_is_still_clean(key: StationKey) -> None:
    # A document written by an older version (or by hand) with raw control characters.
    document = v1_document(key)
    document["certificate"]["media"]["model"] = HOSTILE_MODEL
    document["certificate"]["steps"][0]["detail"] = "\x1b[2Jgone"
    page = render_html(document)
    assert not _has_controls(page.replace("\n", ""))
    assert "gone" in page
