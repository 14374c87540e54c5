"""Tests for posdiag.agent.certificate: content fields, canonical JSON, signing, files, HTML."""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from posdiag.agent.certificate import (
    OUTCOMES,
    SCHEMA,
    CertificateError,
    StationKey,
    VerifyResult,
    build_certificate,
    canonical_json,
    default_key_path,
    fingerprint_of,
    render_html,
    sign_certificate,
    verify_certificate,
    write_certificate,
)
from posdiag.agent.report import DeviceReport, Verdict, VerdictStatus, to_json
from posdiag.drivers.errors import PosdiagError
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

TID = "52502000"
MID = "4711000123"
SERIAL = "17F59B1F"
HOSTILE = "<script>alert(1)</script>"


def report_json(model: str = "cVEND plug", terminal_id: str = TID) -> dict[str, Any]:
    """A check report as ``posdiag check --json`` would give it (identifiers masked by to_json)."""
    report = DeviceReport(
        address="zvt+tcp://192.168.23.51:20007",
        family="zvt",
        checked_at="2026-01-01T09:55:00Z",
        identity=Identity(vendor="FEIG ELECTRONIC", model=model, serial=SERIAL, hardware=model),
        activation=Activation(
            ActivationState.ACTIVATED,
            terminal_id=terminal_id,
            merchant_id=MID,
            keys_loaded=True,
            host_registered=True,
            evidence=(Evidence("status enquiry", "terminal ID ****2000 assigned"),),
        ),
        firmware=Firmware({"ZVT application": "GER-APP-v2.0.9", "SDK": "02.01.01.09"}),
        merchant_data=MerchantData(pending_transactions=PendingTransactions(0, 0, "EUR")),
        tamper=Tamper(False),
        verdict=Verdict(VerdictStatus.WIPE_REQUIRED, ("terminal is activated",)),
    )
    return to_json(report)


STEPS: list[dict[str, Any]] = [
    {
        "name": "end_of_day",
        "erases": "settles and empties the turnover store (0 pending transactions)",
        "status": "ok",
        "verified": True,
        "detail": "turnover store read back empty",
    },
    {
        "name": "merchant_reset",
        "erases": "terminal ID, merchant data and payment host registration",
        "status": "ok",
        "verified": True,
        "detail": "status enquiry shows no terminal ID",
    },
    {
        "name": "delete_journal",
        "erases": "transaction journal",
        "status": "unavailable",
        "verified": None,
        "detail": "not offered by this firmware",
        "password": "000000",  # must never reach the certificate
    },
]


def content(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "report": report_json(),
        "outcome": "erased_with_exceptions",
        "steps": STEPS,
        "operator": "Jana Nováková",
        "operator_title": "Depot technician",
        "organisation": "Example Depot GmbH",
        "location": "Hamburg depot, bench 3",
        "destination": "external reuse (re-issue to a new merchant)",
        "method": "merchant reset through ZVT (end-of-day, then vendor reset)",
        "verification_method": "read-back of activation state and turnover store",
        "exceptions": ["transaction journal could not be deleted: not offered by this firmware"],
        "tool_version": "0.1.0",
        "started_at": "2026-01-01T10:00:00+01:00",
        "finished_at": "2026-01-01T09:03:30Z",
        "property_number": "ASSET-0042",
        "contact": "+49 40 1234567",
    }
    args.update(overrides)
    return build_certificate(**args)


@pytest.fixture
def key() -> StationKey:
    return StationKey.generate()


@pytest.fixture
def signed(key: StationKey) -> dict[str, Any]:
    return sign_certificate(content(), key)


# --- content ----------------------------------------------------------------------------------


def test_content_has_every_nist_appendix_g_field() -> None:
    cert = content()
    assert cert["schema"] == SCHEMA
    expected = {
        ("media", "manufacturer"): "FEIG ELECTRONIC",
        ("media", "model"): "cVEND plug",
        ("media", "serial_number"): SERIAL,
        ("media", "property_number"): "ASSET-0042",
        ("media", "media_type"): "payment terminal (flash, secure element)",
        ("media", "media_source"): "returned merchant terminal",
        ("media", "pre_sanitization_confidentiality"): "not categorized",
        ("sanitization", "technique"): "Clear",
        ("sanitization", "method"): "merchant reset through ZVT (end-of-day, then vendor reset)",
        ("sanitization", "tool"): "posdiag 0.1.0",
        ("sanitization", "verification_method"): (
            "read-back of activation state and turnover store"
        ),
        ("sanitization", "date"): "2026-01-01",
        ("sanitization", "location"): "Hamburg depot, bench 3",
        ("destination", "destination"): "external reuse (re-issue to a new merchant)",
        ("destination", "post_sanitization_confidentiality"): "not categorized",
        ("person", "name"): "Jana Nováková",
        ("person", "title"): "Depot technician",
        ("person", "organisation"): "Example Depot GmbH",
        ("person", "location"): "Hamburg depot, bench 3",
        ("person", "contact"): "+49 40 1234567",
    }
    for (section, name), value in expected.items():
        assert cert[section][name] == value, (section, name)
    assert "Ed25519" in cert["person"]["signature_method"]
    assert cert["media"]["data_backup"]
    # Times are normalised to UTC.
    assert cert["sanitization"]["started_at"] == "2026-01-01T09:00:00Z"
    assert cert["sanitization"]["finished_at"] == "2026-01-01T09:03:30Z"
    assert cert["sanitization"]["duration_s"] == 210


def test_content_pci_inventory_state_steps_and_ids() -> None:
    cert = content()
    inventory = cert["inventory"]
    assert inventory["device_type"].startswith("payment terminal")
    assert (inventory["manufacturer"], inventory["model"], inventory["serial_number"]) == (
        "FEIG ELECTRONIC",
        "cVEND plug",
        SERIAL,
    )
    assert inventory["firmware_versions"] == {
        "ZVT application": "GER-APP-v2.0.9",
        "SDK": "02.01.01.09",
    }
    assert inventory["location"] == "Hamburg depot, bench 3"
    assert "review" in inventory["status"]
    assert cert["firmware"]["components"] == inventory["firmware_versions"]
    activation = cert["pre_wipe"]["activation"]
    assert activation["state"] == "activated"
    assert activation["terminal_id"] == "****2000"
    assert activation["merchant_id"] == "****0123"
    assert cert["outcome"] == "erased_with_exceptions"
    assert cert["exceptions"] == [
        "transaction journal could not be deleted: not offered by this firmware"
    ]
    assert [s["name"] for s in cert["steps"]] == ["end_of_day", "merchant_reset", "delete_journal"]
    assert set(cert["steps"][2]) == {"name", "erases", "status", "verified", "detail"}
    assert cert["steps"][0]["verified"] is True
    assert cert["sanitization"]["performed"] == [STEPS[0]["erases"], STEPS[1]["erases"]]
    assert cert["sanitization"]["not_performed"] == ["transaction journal (unavailable)"]
    assert "Not done: transaction journal (unavailable)" in cert["sanitization"]["summary"]
    assert uuid.UUID(cert["report_id"]).version == 4
    assert cert["issued_at"].endswith("Z")
    assert "000000" not in json.dumps(cert)


def test_given_report_id_and_every_outcome() -> None:
    for outcome in OUTCOMES:
        exceptions = ["x"] if outcome != "erased" else []
        cert = content(outcome=outcome, exceptions=exceptions, report_id=f"cert-{outcome}")
        assert cert["report_id"] == f"cert-{outcome}"
        assert cert["inventory"]["status"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"outcome": "wiped"}, "unknown outcome"),
        ({"outcome": "erased"}, "cannot have exceptions"),
        ({"exceptions": []}, "must say which"),
        ({"operator": "  "}, "operator"),
        ({"sanitization": "shred"}, "unknown sanitization"),
        ({"started_at": "2026-01-01T10:00:00"}, "time zone"),
        ({"finished_at": "yesterday"}, "ISO 8601"),
        ({"started_at": "2026-01-02T10:00:00Z"}, "before"),
        ({"report_id": "../evil"}, "report_id"),
        ({"report": {"schema": "other/1"}}, "posdiag.report/1"),
        ({"steps": [{"name": "x", "status": "ok", "verified": "yes"}]}, "verified"),
        ({"steps": [{"status": "ok"}]}, "name"),
    ],
)
def test_bad_input_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CertificateError, match=message):
        content(**overrides)
    assert issubclass(CertificateError, PosdiagError)


def test_unmasked_identifiers_are_masked_and_scrubbed() -> None:
    report = report_json()
    # A report built by hand (or by a buggy version) that forgot to mask.
    report["activation"]["terminal_id"] = TID
    report["activation"]["evidence"] = [{"source": "status", "fact": f"TID {TID} assigned"}]
    steps = [{"name": "reset", "erases": "TID", "status": "ok", "detail": f"cleared {TID}"}]
    cert = content(report=report, steps=steps, outcome="erased", exceptions=[])
    text = canonical_json(cert).decode()
    assert TID not in text
    assert cert["pre_wipe"]["activation"]["terminal_id"] == "****2000"
    assert cert["steps"][0]["detail"] == "cleared ****2000"


def test_simulated_report_is_marked() -> None:
    report = report_json()
    report["simulated"] = True
    cert = content(report=report)
    assert cert["simulated"] is True
    assert "SIMULATED TERMINAL" in render_html(cert)


# --- canonical JSON ---------------------------------------------------------------------------


def test_canonical_json_is_stable() -> None:
    a = {"b": 1, "a": {"z": [1, 2, {"y": None, "x": True}], "é": "Nováková ✔"}}
    b = {"a": {"é": "Nováková ✔", "z": [1, 2, {"x": True, "y": None}]}, "b": 1}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(a) == (
        '{"a":{"z":[1,2,{"x":true,"y":null}],"é":"Nováková ✔"},"b":1}'.encode()
    )
    assert canonical_json(json.loads(json.dumps(a, indent=4))) == canonical_json(a)
    with pytest.raises(CertificateError):
        canonical_json({"x": float("nan")})
    with pytest.raises(CertificateError):
        canonical_json({"x": object()})


# --- signing and verification -----------------------------------------------------------------


def test_sign_then_verify(signed: dict[str, Any], key: StationKey) -> None:
    assert set(signed) == {"certificate", "signature"}
    sig = signed["signature"]
    assert sig["algorithm"] == "Ed25519"
    assert base64.b64decode(sig["public_key"]) == key.public_key_raw
    assert len(base64.b64decode(sig["value"])) == 64
    assert sig["fingerprint"] == key.fingerprint
    result = verify_certificate(signed)
    assert isinstance(result, VerifyResult)
    assert result.ok, result.reason
    assert result.content == signed["certificate"]
    assert result.fingerprint == key.fingerprint
    # The exact JCS bytes verify, as text and as bytes; a pretty-printed copy does not.
    exact = canonical_json(signed)
    assert verify_certificate(exact).ok
    assert verify_certificate(exact.decode()).ok
    pretty = json.dumps(signed, indent=2, ensure_ascii=False)
    assert "not exactly as signed" in verify_certificate(pretty).reason
    assert not verify_certificate(pretty.encode()).ok


def test_any_changed_byte_of_the_content_fails(signed: dict[str, Any]) -> None:
    text = canonical_json(signed["certificate"]).decode()
    rng = random.Random(1)
    positions = sorted(rng.sample(range(len(text)), 300))
    checked = 0
    for pos in positions:
        char = text[pos]
        replacement = chr(ord(char) ^ 1) if ord(char) > 32 else "x"
        mutated = text[:pos] + replacement + text[pos + 1 :]
        try:
            parsed = json.loads(mutated)
        except ValueError:
            continue  # not JSON any more: nothing to verify
        if parsed == signed["certificate"]:
            continue  # same value spelt differently: not a change of content
        result = verify_certificate({"certificate": parsed, "signature": signed["signature"]})
        assert not result.ok, (pos, text[max(0, pos - 20) : pos + 20])
        assert result.content is None
        checked += 1
    assert checked > 100


def test_changed_value_gives_clear_reason(signed: dict[str, Any]) -> None:
    forged = copy.deepcopy(signed)
    forged["certificate"]["outcome"] = "erased"
    result = verify_certificate(forged)
    assert not result.ok
    assert "changed after signing" in result.reason


def test_any_changed_byte_of_the_signature_fails(signed: dict[str, Any]) -> None:
    raw = base64.b64decode(signed["signature"]["value"])
    for pos in range(len(raw)):
        for bit in (0, 7):
            flipped = bytearray(raw)
            flipped[pos] ^= 1 << bit
            doc = copy.deepcopy(signed)
            doc["signature"]["value"] = base64.b64encode(bytes(flipped)).decode()
            assert not verify_certificate(doc).ok, pos
    # Character edits in the base64 text, including the spare bits of the last character.
    value = signed["signature"]["value"]
    for pos in range(len(value)):
        for replacement in {"A", "B", "=", chr(ord(value[pos]) ^ 1)} - {value[pos]}:
            doc = copy.deepcopy(signed)
            doc["signature"]["value"] = value[:pos] + replacement + value[pos + 1 :]
            assert not verify_certificate(doc).ok, (pos, replacement)


def test_changed_public_key_or_fingerprint_fails(signed: dict[str, Any]) -> None:
    other = StationKey.generate()
    doc = copy.deepcopy(signed)
    doc["signature"]["public_key"] = base64.b64encode(other.public_key_raw).decode()
    doc["signature"]["fingerprint"] = other.fingerprint
    assert not verify_certificate(doc).ok
    doc = copy.deepcopy(signed)
    doc["signature"]["fingerprint"] = other.fingerprint
    result = verify_certificate(doc)
    assert not result.ok
    assert "fingerprint" in result.reason


def test_trusted_key(signed: dict[str, Any], key: StationKey) -> None:
    raw_b64 = base64.b64encode(key.public_key_raw).decode()
    for trusted in (key.public_key_pem(), key.public_key_pem().encode(), raw_b64):
        result = verify_certificate(signed, trusted_public_key=trusted)
        assert result.ok, result.reason
        assert "trusted" in result.reason
    stranger = StationKey.generate()
    result = verify_certificate(signed, trusted_public_key=stranger.public_key_pem())
    assert not result.ok
    assert stranger.fingerprint in result.reason
    assert result.content is None
    # A forger re-signing with their own key is caught by the trusted key only.
    forged_content = copy.deepcopy(signed["certificate"])
    forged_content["outcome"] = "erased"
    forged = sign_certificate(forged_content, stranger)
    assert verify_certificate(forged).ok
    assert not verify_certificate(forged, trusted_public_key=key.public_key_pem()).ok
    bad = verify_certificate(signed, trusted_public_key="not a key")
    assert not bad.ok
    assert "trusted public key" in bad.reason


@pytest.mark.parametrize(
    "document",
    [
        "",
        "{",
        "[]",
        "null",
        b"\xff\xfe",
        '{"certificate": {}}',
        '{"certificate": 1, "signature": 2}',
        '{"certificate": {"schema": "posdiag.certificate/1"}, "signature": {}}',
        '{"a": 1, "a": 2}',
        "[" * 100_000,
    ],
)
def test_malformed_input_is_not_ok(document: str | bytes) -> None:
    result = verify_certificate(document)
    assert not result.ok
    assert result.reason
    assert result.content is None


def test_structure_problems_have_reasons(signed: dict[str, Any]) -> None:
    doc = copy.deepcopy(signed)
    doc["note"] = "added later"
    assert "outside the signed content" in verify_certificate(doc).reason
    doc = copy.deepcopy(signed)
    doc["signature"]["algorithm"] = "RSA"
    assert "algorithm" in verify_certificate(doc).reason
    text = json.dumps(signed)
    duplicated = text.replace('"outcome":', '"outcome": "erased", "outcome":', 1)
    assert "duplicate" in verify_certificate(duplicated).reason


def test_only_certificates_are_signed(key: StationKey) -> None:
    with pytest.raises(CertificateError):
        sign_certificate({"schema": "something/1"}, key)


# --- station key ------------------------------------------------------------------------------


def test_station_key_created_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "config" / "posdiag" / "station_ed25519.pem"
    assert default_key_path() == path
    first = StationKey.load_or_create()
    assert first.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert [p.name for p in path.parent.iterdir()] == ["station_ed25519.pem"]
    second = StationKey.load_or_create()
    assert second.public_key_raw == first.public_key_raw
    assert second.fingerprint == first.fingerprint
    assert "PRIVATE" not in repr(first)


def test_station_keys_created_at_once_agree(tmp_path: Path) -> None:
    path = tmp_path / "posdiag" / "station_ed25519.pem"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: StationKey.load_or_create(path), range(16)))
    assert len({k.public_key_raw for k in keys}) == 1
    assert [p.name for p in path.parent.iterdir()] == ["station_ed25519.pem"]


def test_station_key_file_mode_ignores_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = StationKey.load_or_create(tmp_path / "k" / "station.pem")
    finally:
        os.umask(old)
    assert key.path is not None
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.path.parent.stat().st_mode) == 0o700


def test_default_path_falls_back_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_key_path() == tmp_path / ".config" / "posdiag" / "station_ed25519.pem"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert default_key_path() == tmp_path / ".config" / "posdiag" / "station_ed25519.pem"
    key = StationKey.load_or_create()
    assert key.path == default_key_path()


def test_station_key_refuses_readable_or_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "station.pem"
    StationKey.load_or_create(path)
    path.chmod(0o644)
    with pytest.raises(CertificateError, match="readable by other users"):
        StationKey.load_or_create(path)
    junk = tmp_path / "junk.pem"
    fd = os.open(junk, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(CertificateError, match="PKCS#8"):
        StationKey.load_or_create(junk)


def test_public_key_export_round_trips(tmp_path: Path) -> None:
    key = StationKey.load_or_create(tmp_path / "station.pem")
    pem = key.public_key_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, Ed25519PublicKey)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw == key.public_key_raw
    public.verify(key.sign(b"data"), b"data")
    assert key.fingerprint == fingerprint_of(raw)
    assert len(key.fingerprint.replace(":", "")) == 16


# --- files ------------------------------------------------------------------------------------


def test_write_certificate(tmp_path: Path, signed: dict[str, Any]) -> None:
    out = tmp_path / "certs" / "2026"
    json_path, html_path = write_certificate(signed, out)
    report_id = signed["certificate"]["report_id"]
    assert json_path == out / f"{report_id}.json"
    assert html_path == out / f"{report_id}.html"
    for path in (json_path, html_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(json_path.read_text(encoding="utf-8")) == signed
    assert json_path.read_bytes() == canonical_json(signed)
    assert verify_certificate(json_path.read_bytes()).ok
    assert "Certificate of Sanitization" in html_path.read_text(encoding="utf-8")
    with pytest.raises(CertificateError, match="already exists"):
        write_certificate(signed, out)
    assert json.loads(json_path.read_text(encoding="utf-8")) == signed


def test_write_refuses_when_only_html_exists(tmp_path: Path, signed: dict[str, Any]) -> None:
    report_id = signed["certificate"]["report_id"]
    (tmp_path / f"{report_id}.html").write_text("older")
    with pytest.raises(CertificateError, match="already exists"):
        write_certificate(signed, tmp_path)
    assert not (tmp_path / f"{report_id}.json").exists()


def test_write_refuses_invalid_documents(tmp_path: Path, signed: dict[str, Any]) -> None:
    forged = copy.deepcopy(signed)
    forged["certificate"]["outcome"] = "erased"
    with pytest.raises(CertificateError, match="invalid certificate"):
        write_certificate(forged, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- printable page ---------------------------------------------------------------------------


def test_html_escapes_and_shows_what_matters(key: StationKey) -> None:
    steps = [{**STEPS[0], "detail": "<b>bold</b> & more"}, STEPS[1], STEPS[2]]
    cert = content(report=report_json(model=HOSTILE), steps=steps)
    page = render_html(sign_certificate(cert, key))
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page
    lowered = page.lower()
    assert "<script" not in lowered
    for external in ("<link", "src=", "@import", "url(", "http://", "https://"):
        assert external not in lowered, external
    assert "Certificate of Sanitization" in page
    assert "ERASED WITH EXCEPTIONS" in page
    assert "Jana Nováková" in page
    assert SERIAL in page
    for step in STEPS:
        assert step["name"] in page
        assert step["erases"] in page
    assert "transaction journal could not be deleted" in page
    assert "****2000" in page
    assert key.fingerprint in page
    assert f"posdiag verify {cert['report_id']}.json" in page
    assert "000000" not in page


def test_no_unmasked_tid_anywhere(tmp_path: Path, key: StationKey) -> None:
    report = report_json()
    assert report["activation"]["terminal_id"] == "****2000"
    document = sign_certificate(content(report=report), key)
    json_path, html_path = write_certificate(document, tmp_path)
    for blob in (json_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")):
        assert TID not in blob
        assert MID not in blob
        assert "****2000" in blob


def test_html_for_each_outcome_and_unsigned(key: StationKey) -> None:
    words = {
        "erased": "ERASED",
        "erased_with_exceptions": "ERASED WITH EXCEPTIONS",
        "not_erased": "NOT ERASED",
        "aborted": "ABORTED",
        "refused": "REFUSED",
    }
    for outcome, word in words.items():
        exceptions = [] if outcome == "erased" else ["reason"]
        cert = content(outcome=outcome, exceptions=exceptions)
        assert word in render_html(sign_certificate(cert, key))
    unsigned = render_html(content())
    assert "NOT SIGNED" in unsigned
