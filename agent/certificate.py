"""Certificates of sanitization: the signed record that a terminal's merchant data was wiped.

A depot hands a wiped terminal on (to another merchant, to the vendor, to recycling) and has to
prove what was done to it: NIST SP 800-88 Rev. 1 §4.8 asks for a certificate "for each piece of
electronic media" with the fields of its Appendix G form, and PCI DSS 9.5.1.1 asks for an inventory
of POI devices (make/model, location, serial) that is updated when a device is decommissioned. One
certificate carries both, plus what the check saw before the wipe (activation, firmware) and every
step's result, so an auditor can read what actually happened rather than a bare "OK".

The record is plain JSON (schema ``posdiag.certificate/1``), serialised canonically and signed with
the station's Ed25519 key, so that a single changed byte is detected by ``posdiag verify`` long
after the terminal has left. A printable HTML page renders the same content for people and files.

Certificates are stored, printed and handed to customers, so they obey the same policy as reports:
terminal and merchant identifiers appear masked (last four characters), and no password or key
ever enters one. Serial numbers are not secret: the certificate exists to name the device.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from posdiag.drivers.errors import PosdiagError

from .logs import get_logger, mask_identifier, redact
from .report import SCHEMA as REPORT_SCHEMA

__all__ = [
    "OUTCOMES",
    "SCHEMA",
    "CertificateError",
    "StationKey",
    "VerifyResult",
    "build_certificate",
    "canonical_json",
    "default_key_path",
    "fingerprint_of",
    "render_html",
    "sign_certificate",
    "verify_certificate",
    "write_certificate",
]

log = get_logger(__name__)

SCHEMA = "posdiag.certificate/1"
ALGORITHM = "Ed25519"
OUTCOMES = ("erased", "erased_with_exceptions", "not_erased", "aborted", "refused")

DEFAULT_MEDIA_TYPE = "payment terminal (flash, secure element)"
DEFAULT_MEDIA_SOURCE = "returned merchant terminal"
DEVICE_TYPE = "payment terminal (POI device)"
NOT_CATEGORIZED = "not categorized"
DATA_BACKUP = "not performed by posdiag"
SIGNATURE_METHOD = "digital: Ed25519 signature of the station key over this record"
STANDARDS = (
    "NIST SP 800-88 Rev. 1 §4.8 and Appendix G (certificate of sanitization fields; Rev. 2 of "
    "September 2025 keeps certificates within an organisation's sanitization program)",
    "PCI DSS v4.0 9.5.1.1 (POI device inventory: make/model, location, serial, status)",
)
KEY_FILE_NAME = "station_ed25519.pem"

_TECHNIQUES = {
    "clear": (
        "Clear",
        "Clear (NIST SP 800-88): the terminal's own merchant/vendor reset functions remove data "
        "from user-addressable storage against simple, non-invasive recovery. It is not a Purge: "
        "recovery with laboratory techniques is not ruled out.",
    ),
    "purge": (
        "Purge",
        "Purge (NIST SP 800-88): techniques that make recovery infeasible even with "
        "state-of-the-art laboratory techniques, leaving the media usable.",
    ),
    "destroy": (
        "Destroy",
        "Destroy (NIST SP 800-88): recovery is infeasible with laboratory techniques and the "
        "media can no longer store data.",
    ),
}

# What the inventory (PCI DSS 9.5.1.1) should say about the unit after each outcome.
_INVENTORY_STATUS = {
    "erased": "decommissioned: sanitized, ready for its destination",
    "erased_with_exceptions": "decommissioned: sanitized with exceptions, review before release",
    "not_erased": "not sanitized: hold for rework or destruction",
    "aborted": "not sanitized (wipe aborted): hold for rework",
    "refused": "not sanitized (wipe refused): hold, see exceptions",
}

# Step statuses meaning "its effect is in place"; the wipe workflow reports one of these when a
# step ran (or was found already done on resume). Anything else counts as not done.
_DONE_STATUSES = frozenset(
    {"ok", "done", "already_done", "verified", "completed", "passed", "success", "succeeded"}
)
_SKIPPED_STATUSES = frozenset({"skipped", "unavailable", "unsupported", "not_applicable"})

_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MASK_PREFIX = "****"


class CertificateError(PosdiagError):
    """A certificate could not be built, signed, stored or the station key could not be used."""


# --- canonical form -------------------------------------------------------------------------


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` the one way its signature is computed over.

    Sorted keys, no whitespace, UTF-8 with non-ASCII text written as is (not escaped) and no NaN or
    infinity, so the same content always gives the same bytes, whatever order it was built in and
    however the stored file is pretty-printed.

    Args:
        obj: JSON-compatible data (dicts with string keys, lists, strings, numbers, bools, None).

    Returns:
        The canonical UTF-8 bytes.

    Raises:
        CertificateError: when ``obj`` holds something JSON cannot represent exactly.
    """
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise CertificateError(f"certificate content is not plain JSON data: {exc}") from exc
    return text.encode("utf-8")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` hook refusing duplicate keys.

    Parsers disagree on which duplicate wins, so a file with two ``outcome`` keys could verify here
    and read differently elsewhere; such a file is never a certificate we wrote.
    """
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


# --- station key ----------------------------------------------------------------------------


def fingerprint_of(raw_public_key: bytes) -> str:
    """Short display fingerprint of a raw Ed25519 public key.

    The first 64 bits of SHA-256, in colon-separated groups, are enough for a person to compare a
    printout with a station's screen; trust decisions compare the full key, never this.

    Args:
        raw_public_key: the 32 raw public key bytes.

    Returns:
        Something like ``"3f2a:9c1d:07be:55e0"``.
    """
    digest = hashlib.sha256(raw_public_key).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


def default_key_path() -> Path:
    """Where the station key lives unless told otherwise.

    ``$XDG_CONFIG_HOME/posdiag/station_ed25519.pem``, or ``~/.config/posdiag/…`` when the variable
    is unset or not absolute (the XDG spec says to ignore relative values).
    """
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "posdiag" / KEY_FILE_NAME


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class StationKey:
    """The station's Ed25519 signing key.

    One key per station, kept in a file only its user can read: whoever holds it can issue
    certificates in the station's name. It is created on first use so a new station works out of
    the box; its public key is exported so others can verify certificates against it.
    """

    def __init__(self, private_key: Ed25519PrivateKey, path: Path | None = None) -> None:
        self._private_key = private_key
        self.path = path
        self._raw_public = _raw_public(private_key.public_key())

    @classmethod
    def generate(cls) -> StationKey:
        """A fresh key held only in memory (tests, one-off signing)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> StationKey:
        """Load the station key, creating it (and its folder) on first use.

        A new folder is made 0700 (an existing one is left as it is) and the file is created 0600
        from the start (``os.open`` with ``O_EXCL``), never loosened and tightened afterwards, so
        the private key is not readable by others even for a moment. It is written to a temporary
        name and hard-linked into place, so two stations starting together never read a
        half-written key.

        Args:
            path: key file; :func:`default_key_path` when None.

        Returns:
            The key, the same one on every later call.

        Raises:
            CertificateError: if the file is unreadable, not an Ed25519 PKCS#8 key, or readable by
                other users.
        """
        target = Path(path) if path is not None else default_key_path()
        if not target.exists():
            cls._create(target)
        return cls._load(target)

    @classmethod
    def _create(cls, target: Path) -> None:
        """Write a new key to ``target`` unless another process got there first."""
        folder = target.parent
        if not folder.exists():
            try:
                folder.mkdir(mode=0o700, parents=True)
                # Nothing is in it yet, so making the mode exact (whatever the umask) is safe.
                os.chmod(folder, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise CertificateError(f"cannot create key folder {folder}: {exc}") from exc
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = folder / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(tmp, flags, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                return  # another station process created it first: use theirs
            except OSError:
                # File systems without hard links: publish by rename, still never overwriting.
                if target.exists():
                    return
                os.rename(tmp, target)
        except OSError as exc:
            raise CertificateError(f"cannot write station key {target}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        log.info(
            "station key created",
            path=str(target),
            fingerprint=fingerprint_of(_raw_public(key.public_key())),
        )

    @classmethod
    def _load(cls, target: Path) -> StationKey:
        """Read and check an existing key file."""
        try:
            mode = target.stat().st_mode
            data = target.read_bytes()
        except OSError as exc:
            raise CertificateError(f"cannot read station key {target}: {exc}") from exc
        if mode & 0o077:
            raise CertificateError(
                f"station key {target} is readable by other users (mode {mode & 0o777:o}); "
                f"anyone who can read it can forge certificates. Run: chmod 600 {target}"
            )
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CertificateError(
                f"station key {target} is not an unencrypted PKCS#8 PEM key: {exc}"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CertificateError(f"station key {target} is not an Ed25519 key")
        return cls(key, target)

    @property
    def public_key_raw(self) -> bytes:
        """The 32 raw public key bytes, as embedded in signatures."""
        return self._raw_public

    @property
    def fingerprint(self) -> str:
        """Short SHA-256 fingerprint of the public key, for display (see :func:`fingerprint_of`)."""
        return fingerprint_of(self._raw_public)

    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM, to hand to whoever verifies certificates."""
        return (
            self._private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``."""
        return self._private_key.sign(data)

    def __repr__(self) -> str:
        # Never show key material, even by accident in a traceback.
        return f"StationKey(fingerprint={self.fingerprint!r}, path={self.path!r})"


# --- building -------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A stripped string, or None for missing/blank values, so "not given" stays visible."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _required(name: str, value: Any) -> str:
    text = _text(value)
    if text is None:
        raise CertificateError(f"a certificate needs {name}")
    return text


def _utc(name: str, value: str) -> datetime:
    """Parse an ISO 8601 timestamp that states its time zone; naive times are ambiguous."""
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise CertificateError(f"{name} is not an ISO 8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise CertificateError(f"{name} must state its time zone (e.g. a trailing Z): {value!r}")
    return parsed.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _section(report: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = report.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise CertificateError(f"report field {name!r} is not an object")
    # Reports are masked already; redacting again costs nothing and catches a report built by
    # hand or by an older version that forgot.
    return redact(dict(value))


def _raw_identifiers(activation: Mapping[str, Any] | None) -> list[str]:
    """Unmasked terminal/merchant identifiers found in the report, to scrub from free text."""
    if not activation:
        return []
    found = []
    for key in ("terminal_id", "merchant_id"):
        value = activation.get(key)
        if value is None:
            continue
        text = str(value)
        if len(text) > 4 and not text.startswith(_MASK_PREFIX):
            found.append(text)
    return found


def _scrub(value: Any, raw_ids: Sequence[str]) -> Any:
    """Replace raw identifiers anywhere in strings (keys included) with their masked form."""
    if not raw_ids:
        return value
    if isinstance(value, str):
        for raw in raw_ids:
            if raw in value:
                value = value.replace(raw, mask_identifier(raw) or _MASK_PREFIX)
        return value
    if isinstance(value, Mapping):
        return {_scrub(k, raw_ids): _scrub(v, raw_ids) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, raw_ids) for item in value]
    return value


def _step(index: int, step: Mapping[str, Any]) -> dict[str, Any]:
    """Keep only the fields a certificate shows, so nothing else a step carries leaks in."""
    if not isinstance(step, Mapping):
        raise CertificateError(f"step {index + 1} is not an object")
    verified = step.get("verified")
    if verified is not None and not isinstance(verified, bool):
        raise CertificateError(f"step {index + 1}: verified must be true, false or null")
    return {
        "name": _required(f"a name for step {index + 1}", step.get("name")),
        "erases": _text(step.get("erases")),
        "status": _required(f"a status for step {index + 1}", step.get("status")).lower(),
        "verified": verified,
        "detail": _text(step.get("detail")),
    }


def _summary(technique: str, performed: list[str], not_performed: list[str]) -> str:
    """One honest sentence of what was done, from the steps rather than from the outcome."""
    parts = []
    if performed:
        how = "Clear by the terminal's merchant/vendor reset" if technique == "Clear" else technique
        parts.append(f"{how}. Done: ")
        parts.append("; ".join(performed) + ".")
    else:
        parts.append("Nothing was erased.")
    if not_performed:
        parts.append(" Not done: " + "; ".join(not_performed) + ".")
    return "".join(parts)


def build_certificate(
    *,
    report: Mapping[str, Any],
    outcome: str,
    steps: Sequence[Mapping[str, Any]],
    operator: str,
    operator_title: str | None = None,
    organisation: str | None = None,
    location: str | None = None,
    destination: str | None = None,
    sanitization: str = "Clear",
    method: str,
    verification_method: str,
    exceptions: Sequence[str] = (),
    tool_version: str,
    started_at: str,
    finished_at: str,
    report_id: str | None = None,
    contact: str | None = None,
    property_number: str | None = None,
    media_type: str = DEFAULT_MEDIA_TYPE,
    media_source: str = DEFAULT_MEDIA_SOURCE,
    confidentiality: str | None = None,
    post_confidentiality: str | None = None,
) -> dict[str, Any]:
    """Assemble the certificate content (schema ``posdiag.certificate/1``), not yet signed.

    The content holds every NIST SP 800-88 Appendix G field and the PCI DSS 9.5.1.1 inventory
    fields, the device's pre-wipe state from the check report, and each step's result. What was
    erased is taken from the steps' own ``erases`` texts and statuses, so the certificate says
    what was actually done, not what a reset is supposed to do.

    Args:
        report: the ``posdiag.report/1`` JSON of the check before the wipe (identifiers masked).
        outcome: ``erased``, ``erased_with_exceptions``, ``not_erased``, ``aborted`` or ``refused``.
        steps: per-step results: ``name``, ``erases``, ``status``, ``verified``, ``detail``; any
            other key is dropped.
        operator: name of the person performing the sanitization.
        operator_title: that person's position or title.
        organisation: the organisation performing it.
        location: where it was performed (also the inventory location).
        destination: post-sanitization destination (internal/external reuse, recycling, vendor…).
        sanitization: NIST category, ``Clear`` for a merchant/vendor reset.
        method: the method used (e.g. "vendor factory reset via ZVT").
        verification_method: how the result was verified (e.g. "read-back of activation state").
        exceptions: what could not be done or verified; required for ``erased_with_exceptions``
            and forbidden for ``erased``, so the outcome never contradicts them.
        tool_version: posdiag's version; the tool is recorded as ``posdiag <version>``.
        started_at: ISO 8601 start of the wipe, with a time zone.
        finished_at: ISO 8601 end of the wipe, with a time zone.
        report_id: certificate ID (also the file name); a random UUID4 when None.
        contact: phone or other contact of the person (NIST lists it, optional here).
        property_number: organisationally assigned media/property number (asset tag).
        media_type: NIST media type.
        media_source: NIST media source (where the unit came from).
        confidentiality: pre-sanitization confidentiality categorization; "not categorized" when
            None, since posdiag cannot know the owner's categorization.
        post_confidentiality: post-sanitization categorization; "not categorized" when None.

    Returns:
        The certificate content, plain JSON data.

    Raises:
        CertificateError: for a missing required field, an unknown outcome or technique, a
            timestamp without time zone or finishing before it started, a report of another
            schema, or exceptions that contradict the outcome.
    """
    if not isinstance(report, Mapping) or report.get("schema") != REPORT_SCHEMA:
        raise CertificateError(f"a certificate is built from a {REPORT_SCHEMA} report")
    outcome = _required("an outcome", outcome)
    if outcome not in OUTCOMES:
        raise CertificateError(f"unknown outcome {outcome!r} (use one of {', '.join(OUTCOMES)})")
    technique_key = _required("a sanitization technique", sanitization).lower()
    if technique_key not in _TECHNIQUES:
        raise CertificateError(f"unknown sanitization {sanitization!r} (Clear, Purge or Destroy)")
    technique, technique_meaning = _TECHNIQUES[technique_key]

    exception_list = [text for text in (_text(item) for item in exceptions) if text]
    if outcome == "erased" and exception_list:
        raise CertificateError(
            "outcome 'erased' cannot have exceptions; use erased_with_exceptions"
        )
    if outcome == "erased_with_exceptions" and not exception_list:
        raise CertificateError("outcome 'erased_with_exceptions' must say which exceptions")

    start = _utc("started_at", started_at)
    finish = _utc("finished_at", finished_at)
    if finish < start:
        raise CertificateError("finished_at is before started_at")

    if report_id is None:
        report_id = str(uuid.uuid4())
    elif not _SAFE_ID.fullmatch(report_id):
        raise CertificateError(
            f"report_id {report_id!r} must be letters, digits, '.', '_' or '-' (it names files)"
        )

    step_list = [_step(i, step) for i, step in enumerate(steps)]
    performed: list[str] = []
    not_performed: list[str] = []
    for step in step_list:
        what = step["erases"] or step["name"]
        if step["status"] in _DONE_STATUSES:
            performed.append(what)
        else:
            not_performed.append(f"{what} ({step['status']})")

    device = report.get("device") or {}
    if not isinstance(device, Mapping):
        raise CertificateError("report field 'device' is not an object")
    activation = _section(report, "activation")
    firmware = report.get("firmware") or {}
    if not isinstance(firmware, Mapping):
        raise CertificateError("report field 'firmware' is not an object")
    components = firmware.get("components") or {}
    if not isinstance(components, Mapping):
        raise CertificateError("report firmware components are not an object")
    components = {
        str(name): str(version) for name, version in components.items() if version is not None
    }
    raw_ids = _raw_identifiers(report.get("activation"))
    if activation:
        for key in ("terminal_id", "merchant_id"):
            activation[key] = mask_identifier(activation.get(key))

    manufacturer = _text(device.get("vendor"))
    model = _text(device.get("model"))
    serial = _text(device.get("serial"))
    where = _text(location)
    verdict = report.get("verdict")
    tool_version = _required("the tool version", tool_version)

    content: dict[str, Any] = {
        "schema": SCHEMA,
        "report_id": report_id,
        "issued_at": _iso(datetime.now(UTC)),
        "standards": list(STANDARDS),
        "simulated": bool(report.get("simulated", False)),
        "outcome": outcome,
        "exceptions": exception_list,
        "person": {
            "name": _required("the operator's name", operator),
            "title": _text(operator_title),
            "organisation": _text(organisation),
            "location": where,
            "contact": _text(contact),
            "signature_method": SIGNATURE_METHOD,
        },
        "media": {
            "manufacturer": manufacturer,
            "model": model,
            "serial_number": serial,
            "imei": _text(device.get("imei")),
            "property_number": _text(property_number),
            "media_type": _required("a media type", media_type),
            "media_source": _required("a media source", media_source),
            "pre_sanitization_confidentiality": _text(confidentiality) or NOT_CATEGORIZED,
            "data_backup": DATA_BACKUP,
        },
        "sanitization": {
            "technique": technique,
            "technique_meaning": technique_meaning,
            "method": _required("the method used", method),
            "summary": _summary(technique, performed, not_performed),
            "performed": performed,
            "not_performed": not_performed,
            "tool": f"posdiag {tool_version}",
            "tool_version": tool_version,
            "verification_method": _required("the verification method", verification_method),
            "started_at": _iso(start),
            "finished_at": _iso(finish),
            "duration_s": int((finish - start).total_seconds()),
            "date": finish.date().isoformat(),
            "location": where,
        },
        "destination": {
            "post_sanitization_confidentiality": _text(post_confidentiality) or NOT_CATEGORIZED,
            "destination": _text(destination),
        },
        "inventory": {
            "device_type": DEVICE_TYPE,
            "manufacturer": manufacturer,
            "model": model,
            "serial_number": serial,
            "firmware_versions": components,
            "location": where,
            "status": _INVENTORY_STATUS[outcome],
        },
        "device": {
            "family": _text(report.get("family") or device.get("family")),
            "address": _text(report.get("address") or device.get("address")),
            "hardware": _text(device.get("hardware")),
            "device_name": _text(device.get("device_name")),
        },
        "pre_wipe": {
            "checked_at": _text(report.get("checked_at")),
            "activation": activation,
            "tamper": _section(report, "tamper"),
            "merchant_data": _section(report, "merchant_data"),
            "verdict": redact(dict(verdict)) if isinstance(verdict, Mapping) else None,
        },
        "firmware": {"components": components},
        "steps": step_list,
    }
    content = _scrub(content, raw_ids)
    # Round-trip through the canonical form: proves it serialises and turns tuples into lists,
    # so the content a caller holds is exactly what will be signed and stored.
    result: dict[str, Any] = json.loads(canonical_json(content))
    log.info("certificate built", report_id=report_id, outcome=outcome, steps=len(step_list))
    return result


# --- signing and verification ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _strict_b64(text: Any, what: str, length: int) -> bytes:
    """Decode base64 that must be canonical and of an exact length.

    Canonical, because base64 has spare bits: two different strings can decode to the same
    bytes, and a changed character in a certificate must never go unnoticed.
    """
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"{what} is not valid base64") from exc
    if _b64(raw) != text:
        raise ValueError(f"{what} is not canonical base64")
    if len(raw) != length:
        raise ValueError(f"{what} is {len(raw)} bytes, expected {length}")
    return raw


def sign_certificate(content: Mapping[str, Any], key: StationKey) -> dict[str, Any]:
    """Sign certificate content with the station key.

    Args:
        content: what :func:`build_certificate` returned.
        key: the station key.

    Returns:
        ``{"certificate": content, "signature": {algorithm, public_key, fingerprint, value}}``,
        the signature being Ed25519 over ``canonical_json(content)``; the embedded public key lets
        anyone check integrity, a trusted key (``verify_certificate``) checks who signed.

    Raises:
        CertificateError: if ``content`` is not a certificate or not plain JSON data.
    """
    if not isinstance(content, Mapping) or content.get("schema") != SCHEMA:
        raise CertificateError(f"only {SCHEMA} content is signed")
    data = canonical_json(content)
    signature = key.sign(data)
    log.info("certificate signed", report_id=content.get("report_id"), station=key.fingerprint)
    return {
        "certificate": json.loads(data),
        "signature": {
            "algorithm": ALGORITHM,
            "public_key": _b64(key.public_key_raw),
            "fingerprint": key.fingerprint,
            "value": _b64(signature),
        },
    }


@dataclass(frozen=True)
class VerifyResult:
    """What verification concluded.

    Attributes:
        ok: the signature is valid (and by the trusted key, when one was given).
        reason: one line for the person, why it is or is not valid.
        content: the certificate content, only when ``ok``: unverified content is never handed out.
        fingerprint: the signer's key fingerprint, computed from the embedded key when readable.
    """

    ok: bool
    reason: str
    content: dict[str, Any] | None = None
    fingerprint: str | None = None


def _parse_trusted(key: str | bytes) -> bytes:
    """Raw 32 bytes of a trusted key given as PEM (str/bytes), base64 raw, or raw bytes."""
    data = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    if data.lstrip().startswith(b"-----BEGIN"):
        public = serialization.load_pem_public_key(data)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError("the trusted key is not an Ed25519 public key")
        return _raw_public(public)
    if isinstance(key, bytes) and len(data) == 32:
        return data
    return _strict_b64(data.decode("ascii").strip(), "trusted public key", 32)


def _load_document(document: Mapping[str, Any] | bytes | str) -> Any:
    if isinstance(document, bytes | bytearray):
        document = bytes(document).decode("utf-8")
    if isinstance(document, str):
        return json.loads(document, object_pairs_hook=_reject_duplicates)
    return document


def verify_certificate(
    document: Mapping[str, Any] | bytes | str, trusted_public_key: str | bytes | None = None
) -> VerifyResult:
    """Check a signed certificate; never raises for bad input, it says what is wrong instead.

    Checks the structure, the algorithm, the embedded key and fingerprint, and the Ed25519
    signature over the canonical form of the content (so pretty-printing the file is harmless,
    while any changed value is caught). With ``trusted_public_key`` it also checks the signer is
    that station: the embedded key alone proves integrity, not origin.

    Args:
        document: the signed document as parsed JSON, or its JSON text/bytes.
        trusted_public_key: the expected station key, as PEM or base64 of the raw 32 bytes.

    Returns:
        A :class:`VerifyResult`.
    """
    try:
        doc = _load_document(document)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return VerifyResult(False, f"not a certificate: unreadable JSON ({exc})")
    if not isinstance(doc, Mapping):
        return VerifyResult(False, "not a certificate: expected a JSON object")
    missing = {"certificate", "signature"} - set(doc)
    if missing:
        return VerifyResult(
            False, f"not a signed certificate: missing {', '.join(sorted(missing))}"
        )
    extra = set(doc) - {"certificate", "signature"}
    if extra:
        return VerifyResult(
            False, f"unexpected field(s) outside the signed content: {', '.join(sorted(extra))}"
        )
    content, sig = doc["certificate"], doc["signature"]
    if not isinstance(content, Mapping) or not isinstance(sig, Mapping):
        return VerifyResult(False, "certificate and signature must be JSON objects")
    if content.get("schema") != SCHEMA:
        return VerifyResult(False, f"unknown certificate schema {content.get('schema')!r}")
    if sig.get("algorithm") != ALGORITHM:
        return VerifyResult(False, f"unsupported signature algorithm {sig.get('algorithm')!r}")
    try:
        raw_key = _strict_b64(sig.get("public_key"), "signature public key", 32)
    except ValueError as exc:
        return VerifyResult(False, str(exc))
    fingerprint = fingerprint_of(raw_key)
    if sig.get("fingerprint") != fingerprint:
        return VerifyResult(
            False, "the signature's fingerprint does not match its public key", None, fingerprint
        )
    try:
        value = _strict_b64(sig.get("value"), "signature value", 64)
        data = canonical_json(content)
        public = Ed25519PublicKey.from_public_bytes(raw_key)
    except (ValueError, CertificateError) as exc:
        return VerifyResult(False, str(exc), None, fingerprint)
    try:
        public.verify(value, data)
    except InvalidSignature:
        return VerifyResult(
            False,
            "signature does not match the content: the certificate was changed after signing",
            None,
            fingerprint,
        )
    if trusted_public_key is not None:
        try:
            trusted = _parse_trusted(trusted_public_key)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            return VerifyResult(False, f"the trusted public key is unreadable: {exc}", None)
        if not hmac.compare_digest(trusted, raw_key):
            return VerifyResult(
                False,
                f"signed by station {fingerprint}, not by the trusted station "
                f"{fingerprint_of(trusted)}",
                None,
                fingerprint,
            )
        reason = f"valid signature by the trusted station {fingerprint}"
    else:
        reason = f"valid signature by station {fingerprint} (signer not checked against a key)"
    return VerifyResult(True, reason, json.loads(data), fingerprint)


# --- files ----------------------------------------------------------------------------------


def _create_exclusive(path: Path, data: bytes) -> None:
    """Create ``path`` 0644 with ``data``; fails if it exists (certificates are never replaced)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.fchmod(fd, 0o644)  # public documents: exact mode whatever the umask
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        if fd >= 0:
            os.close(fd)


def write_certificate(document: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Store a signed certificate as ``<report_id>.json`` and its printable ``<report_id>.html``.

    The document is verified first, so a damaged or unsigned certificate is never filed. Neither
    file may exist already: a certificate is evidence, and replacing one silently would destroy
    evidence.

    Args:
        document: what :func:`sign_certificate` returned.
        out_dir: the folder, created when missing.

    Returns:
        ``(json_path, html_path)``.

    Raises:
        CertificateError: if the document does not verify, its report ID is unsafe as a file name,
            either file exists, or writing fails.
    """
    result = verify_certificate(document)
    if not result.ok or result.content is None:
        raise CertificateError(f"refusing to store an invalid certificate: {result.reason}")
    report_id = str(result.content.get("report_id", ""))
    if not _SAFE_ID.fullmatch(report_id):
        raise CertificateError(f"report_id {report_id!r} is not a safe file name")
    out_dir = Path(out_dir)
    json_path = out_dir / f"{report_id}.json"
    html_path = out_dir / f"{report_id}.html"
    for path in (json_path, html_path):
        if path.exists() or path.is_symlink():
            raise CertificateError(f"certificate {path} already exists; it is never overwritten")
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    page = render_html(document)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _create_exclusive(json_path, text.encode("utf-8"))
    except FileExistsError as exc:
        raise CertificateError(f"certificate {json_path} already exists") from exc
    except OSError as exc:
        raise CertificateError(f"cannot write certificate {json_path}: {exc}") from exc
    try:
        _create_exclusive(html_path, page.encode("utf-8"))
    except OSError as exc:
        json_path.unlink(missing_ok=True)  # keep the pair together: both or neither
        if isinstance(exc, FileExistsError):
            raise CertificateError(f"certificate {html_path} already exists") from exc
        raise CertificateError(f"cannot write certificate {html_path}: {exc}") from exc
    log.info("certificate written", report_id=report_id, json=str(json_path), html=str(html_path))
    return json_path, html_path


# --- printable page -------------------------------------------------------------------------

_OUTCOME_VIEW = {
    "erased": (
        "Erased",
        "#1b7a3a",
        "✔",
        "Every step of the wipe completed; how each was verified is listed below.",
    ),
    "erased_with_exceptions": (
        "Erased with exceptions",
        "#a85d00",
        "⚠",
        "The wipe ran, but not everything could be done or verified: see the exceptions.",
    ),
    "not_erased": (
        "Not erased",
        "#b3261e",
        "✘",
        "The wipe did not complete. Merchant data may still be on this terminal.",
    ),
    "aborted": (
        "Aborted",
        "#b3261e",
        "■",
        "The wipe was stopped before it finished. Merchant data may still be on this terminal.",
    ),
    "refused": (
        "Refused",
        "#4a5568",
        "⊘",
        "posdiag refused to wipe this terminal (see the exceptions); nothing was erased.",
    ),
}

_CSS = """
@page { size: A4; margin: 14mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; color: #1a1a1a;
       margin: 0 auto; max-width: 820px; padding: 24px; font-size: 13px; line-height: 1.4; }
header { display: flex; justify-content: space-between; align-items: flex-end;
         border-bottom: 3px solid #1a1a1a; padding-bottom: 8px; }
h1 { font-size: 26px; margin: 0; letter-spacing: 0.3px; }
.sub { color: #555; font-size: 12px; }
.ids { text-align: right; font-size: 12px; color: #333; }
.ids code { font-size: 12px; }
.outcome { margin: 16px 0; padding: 12px 18px 14px; border: 3px solid var(--c);
           border-left-width: 12px; border-radius: 6px; }
.outcome .word { font-size: 36px; font-weight: 800; color: var(--c); line-height: 1.15; }
.outcome .meaning { font-size: 14px; margin: 2px 0 8px; }
.glance { display: flex; flex-wrap: wrap; gap: 6px 28px; font-size: 13px; }
.glance div span { display: block; font-size: 10px; text-transform: uppercase; color: #666;
                   letter-spacing: 0.5px; }
.glance div b { font-size: 14px; }
.simulated { background: #fff3cd; border: 2px dashed #a85d00; padding: 8px 12px; margin: 8px 0;
             font-weight: 700; }
h2 { font-size: 15px; margin: 18px 0 6px; padding-bottom: 3px; border-bottom: 1px solid #bbb;
     text-transform: uppercase; letter-spacing: 0.6px; color: #333; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 4px 6px;
         border-bottom: 1px solid #e2e2e2; }
table.kv th { width: 30%; color: #444; font-weight: 600; }
table.kv td.group { background: #f2f2f2; font-weight: 700; color: #222; padding-top: 6px; }
table.steps th { background: #f2f2f2; font-size: 12px; }
.nowrap { white-space: nowrap; }
.ok { color: #1b7a3a; font-weight: 700; }
.warn { color: #a85d00; font-weight: 700; }
.bad { color: #b3261e; font-weight: 700; }
.muted { color: #777; }
ul { margin: 4px 0; padding-left: 20px; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
.break { word-break: break-all; }
.signs { display: flex; gap: 24px; margin-top: 8px; }
.signs > div { flex: 1; border: 1px solid #ccc; border-radius: 4px; padding: 8px 10px; }
.line { border-bottom: 1px solid #333; height: 26px; margin: 4px 0 2px; }
.small { font-size: 11px; color: #555; }
section { break-inside: avoid; page-break-inside: avoid; }
table.steps tr { break-inside: avoid; page-break-inside: avoid; }
footer { margin-top: 16px; font-size: 11px; color: #666; border-top: 1px solid #ccc;
         padding-top: 6px; }
"""


def _e(value: Any, missing: str = "not recorded") -> str:
    """HTML-escape a value for display; missing values say so instead of leaving a blank."""
    if value is None or value == "" or value == [] or value == {}:
        return f'<span class="muted">{html.escape(missing)}</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(str(value), quote=True)


def _when(value: Any) -> Any:
    """``2026-01-01T09:03:30Z`` as ``2026-01-01 09:03:30 UTC``: same instant, easier to read."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # shown as recorded rather than hidden
    if moment.tzinfo is None:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(label: str, value: Any, missing: str = "not recorded") -> str:
    return f"<tr><th>{html.escape(label)}</th><td>{_e(value, missing)}</td></tr>"


def _group(label: str) -> str:
    return f'<tr><td class="group" colspan="2">{html.escape(label)}</td></tr>'


def _get(mapping: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(name)
    return mapping


def _status_cell(status: Any) -> str:
    text = str(status or "").lower()
    if text in _DONE_STATUSES:
        css = "ok"
    elif text in _SKIPPED_STATUSES:
        css = "warn"
    else:
        css = "bad"
    return f'<span class="{css}">{_e(status, "unknown")}</span>'


def _verified_cell(verified: Any) -> str:
    if verified is True:
        return '<span class="ok">✔ read back</span>'
    if verified is False:
        return '<span class="bad">✘ not confirmed</span>'
    return '<span class="muted">not checked</span>'


def _steps_html(steps: Any) -> str:
    if not isinstance(steps, list) or not steps:
        return '<p class="muted">No wipe step ran.</p>'
    rows = []
    for number, step in enumerate(steps, 1):
        step = step if isinstance(step, Mapping) else {}
        detail = step.get("detail")
        rows.append(
            "<tr>"
            f"<td>{number}</td>"
            f'<td><span class="mono">{_e(step.get("name"), "unnamed")}</span></td>'
            f"<td>{_e(step.get('erases'), '—')}</td>"
            f'<td class="nowrap">{_status_cell(step.get("status"))}</td>'
            f'<td class="nowrap">{_verified_cell(step.get("verified"))}</td>'
            f"<td>{_e(detail, '')}</td>"
            "</tr>"
        )
    return (
        '<table class="steps"><thead><tr><th>#</th><th>Step</th><th>What it erases</th>'
        "<th>Result</th><th>Verified</th><th>Detail</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _list_html(items: Any, empty: str) -> str:
    if not isinstance(items, list) or not items:
        return f'<p class="muted">{html.escape(empty)}</p>'
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


def _firmware_text(components: Any) -> str:
    if not isinstance(components, Mapping) or not components:
        return _e(None)
    return "<br>".join(
        f"{_e(name)}: <span class='mono'>{_e(version)}</span>"
        for name, version in sorted(components.items())
    )


def _pre_wipe_html(pre: Any) -> str:
    activation = _get(pre, "activation")
    rows = [_row("Checked at", _when(_get(pre, "checked_at")))]
    if isinstance(activation, Mapping):
        rows += [
            _row("Activation", activation.get("state"), "unknown"),
            _row("Terminal ID (masked)", activation.get("terminal_id"), "none"),
            _row("Merchant ID (masked)", activation.get("merchant_id"), "none"),
            _row("Keys loaded", activation.get("keys_loaded"), "unknown"),
            _row("Registered with host", activation.get("host_registered"), "unknown"),
        ]
        evidence = activation.get("evidence")
        if isinstance(evidence, list) and evidence:
            facts = "".join(
                f"<li>{_e(_get(item, 'source'))}: {_e(_get(item, 'fact'))}</li>"
                for item in evidence
            )
            rows.append(f"<tr><th>Evidence</th><td><ul>{facts}</ul></td></tr>")
    else:
        rows.append(_row("Activation", None, "not checked"))
    tamper = _get(pre, "tamper")
    if isinstance(tamper, Mapping):
        rows.append(_row("Tampered", tamper.get("tampered"), "unknown"))
    pending = _get(pre, "merchant_data", "pending_transactions")
    if isinstance(pending, Mapping):
        rows.append(_row("Unsettled transactions", pending.get("count"), "unknown"))
    verdict = _get(pre, "verdict")
    if isinstance(verdict, Mapping):
        reasons = verdict.get("reasons")
        text = str(verdict.get("status") or "")
        if isinstance(reasons, list) and reasons:
            text += " (" + "; ".join(str(r) for r in reasons) + ")"
        rows.append(_row("Check verdict", text))
    return '<table class="kv">' + "".join(rows) + "</table>"


def render_html(document: Mapping[str, Any]) -> str:
    """The printable certificate: one self-contained page a person understands at a glance.

    Inline CSS only (no scripts, fonts or images to fetch), so it prints and archives the same in
    ten years. Every value is HTML-escaped: model names and step details come from the terminal
    and must not be able to inject markup. Identifiers are shown as the content holds them
    (masked); serial numbers are shown in full because they name the device.

    Args:
        document: a signed document (``{"certificate": …, "signature": …}``); unsigned content is
            shown with a warning that it is not signed.

    Returns:
        The HTML text.
    """
    cert = document.get("certificate", document) if isinstance(document, Mapping) else {}
    sig = document.get("signature") if isinstance(document, Mapping) else None
    cert = cert if isinstance(cert, Mapping) else {}
    outcome = str(cert.get("outcome", ""))
    word, colour, mark, meaning = _OUTCOME_VIEW.get(
        outcome, (outcome or "Unknown", "#4a5568", "?", "Unknown outcome.")
    )
    media = cert.get("media") or {}
    person = cert.get("person") or {}
    san = cert.get("sanitization") or {}
    dest = cert.get("destination") or {}
    inv = cert.get("inventory") or {}
    report_id = cert.get("report_id")

    device_line = " ".join(
        str(part) for part in (media.get("manufacturer"), media.get("model")) if part
    )
    serial = media.get("serial_number")
    simulated = (
        '<div class="simulated">SIMULATED TERMINAL: this records a test against a simulator, '
        "not the sanitization of a real device.</div>"
        if cert.get("simulated")
        else ""
    )

    who = [
        _group("Who: person performing the sanitization"),
        _row("Name", person.get("name")),
        _row("Position / title", person.get("title")),
        _row("Organisation", person.get("organisation")),
        _row("Contact", person.get("contact")),
    ]
    what = [
        _group("What: media information"),
        _row("Manufacturer", media.get("manufacturer")),
        _row("Model", media.get("model")),
        _row("Serial number", media.get("serial_number")),
    ]
    if media.get("imei"):
        what.append(_row("IMEI", media.get("imei")))
    what += [
        _row("Property / asset number", media.get("property_number")),
        _row("Media type", media.get("media_type")),
        _row("Media source", media.get("media_source")),
        _row("Pre-sanitization confidentiality", media.get("pre_sanitization_confidentiality")),
        _row("Data backup", media.get("data_backup")),
        f"<tr><th>Firmware</th><td>{_firmware_text(inv.get('firmware_versions'))}</td></tr>",
    ]
    when = [
        _group("When"),
        _row("Started", _when(san.get("started_at"))),
        _row("Finished", _when(san.get("finished_at"))),
        _row("Certificate issued", _when(cert.get("issued_at"))),
    ]
    where = [_group("Where"), _row("Location", san.get("location") or person.get("location"))]
    how = [
        _group("How: sanitization details"),
        _row("Sanitization", san.get("technique")),
        _row("Meaning", san.get("technique_meaning")),
        _row("Method used", san.get("method")),
        _row("What was done", san.get("summary")),
        _row("Tool used", san.get("tool")),
        _row("Verification method", san.get("verification_method")),
        _group("Afterwards: media destination"),
        _row("Post-sanitization destination", dest.get("destination")),
        _row("Post-sanitization confidentiality", dest.get("post_sanitization_confidentiality")),
        _row("Inventory status", inv.get("status")),
        _row("Device type", inv.get("device_type")),
    ]

    if isinstance(sig, Mapping):
        json_name = f"{report_id}.json" if report_id else "<certificate>.json"
        rows = [
            _row("Algorithm", sig.get("algorithm")),
            "<tr><th>Station key fingerprint</th>"
            f"<td><code>{_e(sig.get('fingerprint'))}</code></td></tr>",
            "<tr><th>Station public key</th>"
            f"<td><code class='break'>{_e(sig.get('public_key'))}</code></td></tr>",
            "<tr><th>Signature</th>"
            f"<td><code class='break small'>{_e(sig.get('value'))}</code></td></tr>",
        ]
        signature = (
            '<table class="kv">' + "".join(rows) + "</table>"
            '<p class="small">This page is a rendering. The signed record is the file '
            f"<code>{_e(json_name)}</code>; check it with <code>posdiag verify "
            f"{_e(json_name)}</code> and compare the fingerprint with the station's. Any change "
            "to the record makes verification fail.</p>"
        )
    else:
        signature = '<p class="bad">NOT SIGNED: this content carries no signature.</p>'

    technique = san.get("technique")
    if technique and outcome in ("not_erased", "aborted", "refused"):
        technique = f"{technique}: not achieved"
    standards = cert.get("standards") or []
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Certificate of Sanitization {_e(report_id, "")}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
  <div>
    <h1>Certificate of Sanitization</h1>
    <div class="sub">Payment terminal · NIST SP 800-88 record with PCI DSS inventory fields</div>
  </div>
  <div class="ids">Certificate ID<br><code>{_e(report_id)}</code><br>
    Issued {_e(_when(cert.get("issued_at")))}</div>
</header>
{simulated}
<div class="outcome" style="--c: {colour}">
  <div class="word">{mark} {html.escape(word.upper())}</div>
  <div class="meaning">{html.escape(meaning)}</div>
  <div class="glance">
    <div><span>Device</span><b>{_e(device_line, "unknown device")}</b></div>
    <div><span>Serial number</span><b>{_e(serial, "unknown")}</b></div>
    <div><span>Sanitization</span><b>{_e(technique)}</b></div>
    <div><span>Operator</span><b>{_e(person.get("name"))}</b></div>
    <div><span>Finished</span><b>{_e(_when(san.get("finished_at")))}</b></div>
    <div><span>Location</span><b>{_e(san.get("location"))}</b></div>
  </div>
</div>

<section>
<h2>Exceptions</h2>
{_list_html(cert.get("exceptions"), "None.")}
</section>

<section>
<h2>Wipe steps and how each was verified</h2>
<p>Verification method: {_e(san.get("verification_method"))}</p>
{_steps_html(cert.get("steps"))}
</section>

<section>
<h2>Details</h2>
<table class="kv">{"".join(who + what + when + where + how)}</table>
</section>

<section>
<h2>Device before the wipe</h2>
{_pre_wipe_html(cert.get("pre_wipe"))}
</section>

<section>
<h2>Signatures</h2>
<div class="signs">
  <div><strong>Sanitized by</strong> {_e(person.get("name"))}<br>
    <span class="small">{_e(person.get("title"), "")} · {_e(san.get("date"))}</span>
    <div class="line"></div><span class="small">Signature and date</span></div>
  <div><strong>Validated by</strong> (second person, optional)<br>
    <span class="small">Name and position</span>
    <div class="line"></div><span class="small">Signature and date</span></div>
</div>
</section>

<section>
<h2>Digital signature</h2>
{signature}
</section>

<footer>{"<br>".join(_e(item) for item in standards)}<br>
Terminal and merchant identifiers are masked (last four characters). Serial numbers are shown
in full: they identify the device this certificate is about.</footer>
</body>
</html>
"""
