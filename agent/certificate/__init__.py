"""Certificates of sanitization: the signed record that a terminal's merchant data was wiped.

A depot hands a wiped terminal on (to another merchant, to the vendor, to recycling) and has to
prove what was done to it: NIST SP 800-88 Rev. 1 §4.8 asks for a certificate "for each piece of
electronic media" with the fields of its Appendix G form, and PCI DSS 9.5.1.1 asks for an inventory
of POI devices (make/model, location, serial) that is updated when a device is decommissioned. One
certificate carries both, plus what the check saw before the wipe (activation, firmware) and every
step's result, so an auditor can read what actually happened rather than a bare "OK".

**Format** (schema ``posdiag.certificate/2``). The file is exactly the RFC 8785 (JSON
Canonicalization Scheme, "JCS") bytes of ``{"certificate": CONTENT, "signature": SIG}``, UTF-8,
with no trailing newline and no byte order mark. ``SIG`` is ``{"algorithm": "Ed25519",
"public_key": base64(32 raw bytes), "fingerprint": …, "value": base64(64 bytes)}`` and ``value``
is the Ed25519 signature of the station key over ``JCS(CONTENT)``. So any changed byte of the file
fails verification: a value change breaks the signature, and a change of form (whitespace, key
order, escapes, number spelling, trailing data, a BOM, a duplicate key) makes the file differ
from ``JCS(parse(file))``.

**Verifying without posdiag** (Python, with the ``rfc8785`` and ``cryptography`` packages; any
RFC 8785 and Ed25519 implementation does the same)::

    import base64, json, rfc8785
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = open("CERTIFICATE.json", "rb").read()
    doc = json.loads(data)
    assert rfc8785.dumps(doc) == data, "the file is not exactly as signed"
    sig = doc["signature"]
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sig["public_key"]))
    key.verify(base64.b64decode(sig["value"]), rfc8785.dumps(doc["certificate"]))  # raises
    # Then compare sig["public_key"] with the station's published key (posdiag station-key).

The embedded key proves the file is intact; only comparing it with the station's published key
proves which station signed. ``posdiag verify CERT --ledger URL`` also checks the file is the one
the depot's ledger recorded (its SHA-256).

Certificates of the older schema ``posdiag.certificate/1`` (signed over sorted-keys JSON, stored
pretty-printed) still verify, by that rule, and ``verify`` says: "old format: whitespace is not
protected".

Certificates are stored, printed and handed to customers, so they obey the same policy as reports:
terminal and merchant identifiers appear masked (last four characters), no password or key ever
enters one, and all device text is cleaned of control and escape characters. Serial numbers are
not secret: the certificate exists to name the device.

The package's rooms: ``keys`` (the station key), ``content`` (building), ``canonical`` (JCS and
the strict parser), ``signing`` (sign and verify), ``files`` (atomic private writes and the
pre-wipe check of the folder), ``page`` (the printable HTML), ``pdf`` (the PDF to hand over,
with built-in CJK fonts), ``view`` (the wording the renderings share) and ``summary`` (what
``posdiag verify`` tells a person).
"""

from __future__ import annotations

from .canonical import canonical_json, legacy_canonical_json, parse_strict
from .content import (
    DATA_BACKUP,
    DEFAULT_MEDIA_SOURCE,
    DEFAULT_MEDIA_TYPE,
    DEVICE_TYPE,
    NOT_CATEGORIZED,
    OUTCOMES,
    SCHEMA,
    SCHEMA_V1,
    SIGNATURE_METHOD,
    STANDARDS,
    build_certificate,
)
from .errors import CertificateError
from .files import (
    FILE_MODE,
    FOLDER_MODE,
    MIN_FREE_BYTES,
    CertificateFiles,
    certificate_paths,
    ensure_private_folder,
    pdf_path,
    preflight_out_dir,
    write_certificate,
    write_certificate_files,
    write_private_atomic,
)
from .keys import KEY_FILE_NAME, StationKey, default_key_path, fingerprint_of
from .page import render_html
from .pdf import render_pdf
from .signing import (
    ALGORITHM,
    OLD_FORMAT_NOTE,
    VerifyResult,
    document_bytes,
    sign_certificate,
    verify_certificate,
)

__all__ = [
    "ALGORITHM",
    "DATA_BACKUP",
    "DEFAULT_MEDIA_SOURCE",
    "DEFAULT_MEDIA_TYPE",
    "DEVICE_TYPE",
    "FILE_MODE",
    "FOLDER_MODE",
    "KEY_FILE_NAME",
    "MIN_FREE_BYTES",
    "NOT_CATEGORIZED",
    "OLD_FORMAT_NOTE",
    "OUTCOMES",
    "SCHEMA",
    "SCHEMA_V1",
    "SIGNATURE_METHOD",
    "STANDARDS",
    "CertificateError",
    "CertificateFiles",
    "StationKey",
    "VerifyResult",
    "build_certificate",
    "canonical_json",
    "certificate_paths",
    "default_key_path",
    "document_bytes",
    "ensure_private_folder",
    "fingerprint_of",
    "legacy_canonical_json",
    "parse_strict",
    "pdf_path",
    "preflight_out_dir",
    "render_html",
    "render_pdf",
    "sign_certificate",
    "verify_certificate",
    "write_certificate",
    "write_certificate_files",
    "write_private_atomic",
]
