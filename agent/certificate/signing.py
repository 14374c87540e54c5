"""Signing and verifying certificates: Ed25519 over RFC 8785 bytes, and the exact file bytes.

A ``posdiag.certificate/2`` file is exactly ``JCS({"certificate": …, "signature": …})``, so
verification is two checks, both needed: the signature over ``JCS(certificate)``, and that the
file's bytes are the canonical form of what they parse to (any changed byte, including
whitespace, key order, escapes, a BOM or trailing data, fails). ``posdiag.certificate/1`` files
(signed over sorted-keys JSON, stored pretty-printed) still verify by their old rule, with a
reason saying their whitespace is not protected.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from posdiag.drivers.i18n import N_, _

from ..logs import get_logger
from .canonical import canonical_json, legacy_canonical_json, parse_strict
from .content import SCHEMA, SCHEMA_V1
from .errors import CertificateError
from .keys import StationKey, fingerprint_of, raw_public

__all__ = [
    "ALGORITHM",
    "OLD_FORMAT_NOTE",
    "VerifyResult",
    "document_bytes",
    "sign_certificate",
    "verify_certificate",
]

log = get_logger(__name__)

ALGORITHM = "Ed25519"
OLD_FORMAT_NOTE = N_(
    "old format (posdiag.certificate/1): whitespace is not protected, only the values are"
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _strict_b64(text: Any, what: str, length: int) -> bytes:
    """Decode base64 that must be canonical and of an exact length.

    Canonical, because base64 has spare bits: two different strings can decode to the same
    bytes, and a changed character in a certificate must never go unnoticed.
    """
    if not isinstance(text, str):
        raise ValueError(_("{what} is not a base64 string").format(what=what))
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(_("{what} is not valid base64").format(what=what)) from exc
    if _b64(raw) != text:
        raise ValueError(_("{what} is not canonical base64").format(what=what))
    if len(raw) != length:
        raise ValueError(
            _("{what} is {size} bytes, expected {length}").format(
                what=what, size=len(raw), length=length
            )
        )
    return raw


def sign_certificate(content: Mapping[str, Any], key: StationKey) -> dict[str, Any]:
    """Sign certificate content with the station key.

    Args:
        content: what :func:`build_certificate` returned (or content stored in the ledger).
        key: the station key.

    Returns:
        ``{"certificate": content, "signature": {algorithm, public_key, fingerprint, value}}``,
        the signature being Ed25519 over ``canonical_json(content)`` (RFC 8785); the embedded
        public key lets anyone check integrity, a trusted key (``verify_certificate``) checks
        who signed. Ed25519 is deterministic: the same content and key give the same document,
        which is what lets a certificate be re-issued from the ledger byte for byte.

    Raises:
        CertificateError: if ``content`` is not a certificate or not plain JSON data.
    """
    if not isinstance(content, Mapping) or content.get("schema") != SCHEMA:
        raise CertificateError(f"only {SCHEMA} content is signed")
    data = canonical_json(content)
    signature = key.sign(data)
    log.info("certificate signed", report_id=content.get("report_id"), station=key.fingerprint)
    return {
        "certificate": parse_strict(data),
        "signature": {
            "algorithm": ALGORITHM,
            "public_key": _b64(key.public_key_raw),
            "fingerprint": key.fingerprint,
            "value": _b64(signature),
        },
    }


def document_bytes(document: Mapping[str, Any]) -> bytes:
    """The exact bytes a signed ``posdiag.certificate/2`` document is stored as: its JCS form.

    No trailing newline, no byte order mark: a third party reproduces the file from its parsed
    value with any RFC 8785 implementation.

    Raises:
        CertificateError: if the document holds something JCS cannot represent.
    """
    return canonical_json(document)


@dataclass(frozen=True)
class VerifyResult:
    """What verification concluded.

    Attributes:
        ok: the signature is valid (and by the trusted key, when one was given), and for a file
            of the current schema its bytes are exactly the canonical form.
        reason: one line for the person, why it is or is not valid.
        content: the certificate content, only when ``ok``: unverified content is never handed out.
        fingerprint: the signer's key fingerprint, computed from the embedded key when readable.
        old_format: the certificate is ``posdiag.certificate/1`` (whitespace not protected).
    """

    ok: bool
    reason: str
    content: dict[str, Any] | None = None
    fingerprint: str | None = None
    old_format: bool = False


def _parse_trusted(key: str | bytes) -> bytes:
    """Raw 32 bytes of a trusted key given as PEM (str/bytes), base64 raw, or raw bytes."""
    data = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    if data.lstrip().startswith(b"-----BEGIN"):
        public = serialization.load_pem_public_key(data)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(_("the trusted public key is not an Ed25519 public key"))
        return raw_public(public)
    if isinstance(key, bytes) and len(data) == 32:
        return data
    return _strict_b64(data.decode("ascii").strip(), _("trusted public key"), 32)


def _first_difference(actual: bytes, expected: bytes) -> int:
    """Offset of the first byte where ``actual`` and ``expected`` differ (or the shorter end)."""
    for index, (a, b) in enumerate(zip(actual, expected, strict=False)):
        if a != b:
            return index
    return min(len(actual), len(expected))


def verify_certificate(
    document: Mapping[str, Any] | bytes | str, trusted_public_key: str | bytes | None = None
) -> VerifyResult:
    """Check a signed certificate; never raises for bad input, it says what is wrong instead.

    Give the file's bytes: only then is the exact form checked (a parsed mapping can only be
    checked for its values). Checks, in order: strict parsing (no duplicate keys, NaN, lone
    surrogates or numbers JCS cannot represent), the structure, the algorithm, the embedded key
    and fingerprint, the Ed25519 signature over the content's canonical form, and for
    ``posdiag.certificate/2`` that the bytes are exactly ``JCS(document)``. With
    ``trusted_public_key`` it also checks the signer is that station: the embedded key alone
    proves integrity, not origin.

    Args:
        document: the file's bytes (preferred), its text, or the parsed document.
        trusted_public_key: the expected station key, as PEM or base64 of the raw 32 bytes.

    Returns:
        A :class:`VerifyResult`.
    """
    exact: bytes | None = None
    if isinstance(document, str):
        try:
            exact = document.encode("utf-8")
        except UnicodeEncodeError:
            return VerifyResult(False, _("not a certificate: holds a lone surrogate (not text)"))
    elif isinstance(document, bytes | bytearray | memoryview):
        exact = bytes(document)
    expected: bytes | None = None
    if exact is not None:
        try:
            doc: Any = parse_strict(exact, check_jcs=False)
            expected = canonical_json(doc)
        except ValueError as exc:
            return VerifyResult(
                False, _("not a certificate: unreadable JSON ({error})").format(error=exc)
            )
        except CertificateError as exc:
            return VerifyResult(False, _("not a certificate: {error}").format(error=exc))
    else:
        doc = document
    if not isinstance(doc, Mapping):
        return VerifyResult(False, _("not a certificate: expected a JSON object"))
    missing = {"certificate", "signature"} - set(doc)
    if missing:
        return VerifyResult(
            False,
            _("not a signed certificate: missing {fields}").format(
                fields=", ".join(sorted(missing))
            ),
        )
    extra = set(doc) - {"certificate", "signature"}
    if extra:
        return VerifyResult(
            False,
            _("unexpected field(s) outside the signed content: {fields}").format(
                fields=", ".join(sorted(extra))
            ),
        )
    content, sig = doc["certificate"], doc["signature"]
    if not isinstance(content, Mapping) or not isinstance(sig, Mapping):
        return VerifyResult(False, _("certificate and signature must be JSON objects"))
    schema = content.get("schema")
    if schema not in (SCHEMA, SCHEMA_V1):
        return VerifyResult(
            False, _("unknown certificate schema {schema}").format(schema=repr(schema))
        )
    old = schema == SCHEMA_V1
    if sig.get("algorithm") != ALGORITHM:
        return VerifyResult(
            False,
            _("unsupported signature algorithm {algorithm}").format(
                algorithm=repr(sig.get("algorithm"))
            ),
        )
    try:
        raw_key = _strict_b64(sig.get("public_key"), _("signature public key"), 32)
    except ValueError as exc:
        return VerifyResult(False, str(exc))
    fingerprint = fingerprint_of(raw_key)
    if sig.get("fingerprint") != fingerprint:
        return VerifyResult(
            False,
            _("the signature's fingerprint does not match its public key"),
            None,
            fingerprint,
        )
    try:
        value = _strict_b64(sig.get("value"), _("signature value"), 64)
        data = legacy_canonical_json(content) if old else canonical_json(content)
        public = Ed25519PublicKey.from_public_bytes(raw_key)
    except (ValueError, CertificateError) as exc:
        return VerifyResult(False, str(exc), None, fingerprint)
    try:
        public.verify(value, data)
    except InvalidSignature:
        return VerifyResult(
            False,
            _("signature does not match the content: the certificate was changed after signing"),
            None,
            fingerprint,
        )
    if exact is not None and expected is not None and not old and exact != expected:
        at = _first_difference(exact, expected)
        return VerifyResult(
            False,
            _(
                "the file is not exactly as signed (byte {at} differs from its RFC 8785 form: "
                "whitespace, key order, escapes or trailing data were changed)"
            ).format(at=at),
            None,
            fingerprint,
        )
    if trusted_public_key is not None:
        try:
            trusted = _parse_trusted(trusted_public_key)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            return VerifyResult(
                False, _("the trusted public key is unreadable: {error}").format(error=exc), None
            )
        if not hmac.compare_digest(trusted, raw_key):
            return VerifyResult(
                False,
                _("signed by station {fingerprint}, not by the trusted station {trusted}").format(
                    fingerprint=fingerprint, trusted=fingerprint_of(trusted)
                ),
                None,
                fingerprint,
            )
        reason = _("valid signature by the trusted station {fingerprint}").format(
            fingerprint=fingerprint
        )
    else:
        reason = _(
            "valid signature by station {fingerprint} (signer not checked against a key)"
        ).format(fingerprint=fingerprint)
    if old:
        reason = _("{reason}; {note}").format(reason=reason, note=_(OLD_FORMAT_NOTE))
    return VerifyResult(True, reason, json.loads(data), fingerprint, old)
