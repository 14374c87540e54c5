"""What ``posdiag verify CERT`` tells a person, and the one JSON object ``--json`` prints.

A person checking a certificate wants the verdict first (is the signature valid, and whose key
made it), then who wiped what, when, how and with what outcome: a dozen lines, not the whole
record. The record itself is one ``--json`` away. Nothing here prints (only ``cli*`` modules
do); it says what to print. Unverified content is never summarised: an invalid certificate
gets its verdict and reason only.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posdiag.drivers.i18n import _, ngettext
from posdiag.drivers.text import clean_text

from ..logs import get_logger
from .content import DONE_STATUSES
from .errors import CertificateError
from .keys import StationKey, default_key_path
from .signing import VerifyResult
from .view import get, is_missing, outcome_view, status_kind, status_word, text, when

__all__ = [
    "SCHEMA",
    "SIGNER_OTHER",
    "SIGNER_THIS_STATION",
    "SIGNER_TRUSTED",
    "Line",
    "signer_of",
    "station_public_key",
    "summary_lines",
    "verdict_lines",
    "verify_json",
]

log = get_logger(__name__)

SCHEMA = "posdiag.verify/1"
SIGNER_TRUSTED = "trusted_key"  # the key given with --public-key
SIGNER_THIS_STATION = "this_station"  # the key of the station verify runs on
SIGNER_OTHER = "other_station"  # valid, by a key this station does not know


@dataclass(frozen=True)
class Line:
    """One line of the summary: a label (empty: continues the line above), text and a tone.

    ``tone`` is ``ok``, ``warn``, ``bad`` or None, for the console's colour.
    """

    label: str
    value: str
    tone: str | None = None


def station_public_key(path: Path | None = None) -> bytes | None:
    """This station's public key, if it has one; verifying never creates a key.

    Returns:
        The 32 raw bytes, or None when there is no key file or it cannot be used (then the
        summary simply does not claim the certificate is this station's).
    """
    target = Path(path) if path is not None else default_key_path()
    if not target.is_file():
        return None
    try:
        return StationKey.load_or_create(target).public_key_raw
    except CertificateError as exc:
        log.info("verify.station_key_unusable", path=str(target), error=str(exc)[:200])
        return None


def signer_of(data: bytes, checked: VerifyResult, trusted: bool, station: bytes | None) -> str:
    """Whose key signed a valid certificate: the trusted one, this station's, or another's.

    Compares the full public key embedded in the file, never only the short fingerprint.

    Args:
        data: the certificate file's bytes (already verified).
        checked: the verification result.
        trusted: ``--public-key`` was given (and the verification checked against it).
        station: this station's raw public key, or None.
    """
    if not checked.ok:
        return ""
    if trusted:
        return SIGNER_TRUSTED
    try:
        embedded = base64.b64decode(json.loads(data)["signature"]["public_key"], validate=True)
    except (ValueError, KeyError, TypeError):
        return SIGNER_OTHER
    if station is not None and hmac.compare_digest(embedded, station):
        return SIGNER_THIS_STATION
    return SIGNER_OTHER


def verdict_lines(checked: VerifyResult, signer: str) -> list[Line]:
    """The verdict of the signature, first thing a person reads: valid by whom, or why not."""
    if not checked.ok:
        return [Line("", _("INVALID: {reason}").format(reason=checked.reason), "bad")]
    lines = [
        Line(
            "",
            _("VALID signature by station {fingerprint}").format(fingerprint=checked.fingerprint),
            "ok",
        )
    ]
    if signer == SIGNER_TRUSTED:
        lines.append(Line("", _("the key you gave with --public-key made it"), "ok"))
    elif signer == SIGNER_THIS_STATION:
        lines.append(Line("", _("signed with this station's key"), "ok"))
    else:
        lines.append(
            Line(
                "",
                _(
                    "not this station's key: compare the fingerprint with the signing "
                    "station's (posdiag station-key there), or check with --public-key"
                ),
                "warn",
            )
        )
    return lines


def _steps_line(steps: Any) -> Line:
    if not isinstance(steps, list) or not steps:
        return Line(_("Steps"), _("no wipe step ran"), "warn")
    entries = [step for step in steps if isinstance(step, Mapping)]
    done = sum(1 for step in entries if str(step.get("status", "")).lower() in DONE_STATUSES)
    verified = sum(1 for step in entries if step.get("verified") is True)
    total = len(steps)
    value = ngettext(
        "{total} step: {done} done, {verified} verified by reading the terminal back",
        "{total} steps: {done} done, {verified} verified by reading the terminal back",
        total,
    ).format(total=total, done=done, verified=verified)
    return Line(_("Steps"), value, "ok" if done == total else "warn")


def _failed_steps(steps: Any) -> list[Line]:
    """The steps that did not take effect, by name: what a person has to look at."""
    lines = []
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, Mapping) or status_kind(step.get("status")) == "ok":
            continue
        name = clean_text(step.get("name") or "?", 80)
        status = status_word(step.get("status"))
        lines.append(Line("", _("{name}: {status}").format(name=name, status=status), "warn"))
    return lines[:10]


def summary_lines(content: Mapping[str, Any]) -> list[Line]:
    """Who, what, when, how and the outcome of a verified certificate, one fact per line.

    Missing optional fields are left out. Terminal and merchant identifiers appear as the
    certificate holds them (masked); the serial in full, as on the certificate.
    """
    media, person, san, dest = (
        get(content, name) or {} for name in ("media", "person", "sanitization", "destination")
    )
    activation = get(content, "pre_wipe", "activation") or {}
    outcome = str(content.get("outcome", ""))
    word, _colour, _meaning = outcome_view(outcome)
    tone = {"erased": "ok", "erased_with_exceptions": "warn"}.get(outcome, "bad")
    lines = [Line(_("Certificate"), text(content.get("report_id") or "?", 130))]
    if content.get("simulated"):
        lines.append(Line("", _("simulated terminal: a test, not a real device"), "warn"))
    lines.append(Line(_("Outcome"), word, tone))
    exceptions = content.get("exceptions")
    for index, item in enumerate(exceptions if isinstance(exceptions, list) else []):
        lines.append(Line(_("Exceptions") if index == 0 else "", text(item, 300), "warn"))
    device = " ".join(
        text(part, 120) for part in (get(media, "manufacturer"), get(media, "model")) if part
    )
    serial = get(media, "serial_number")
    if not is_missing(serial):
        device = _("{device}, serial {serial}").format(
            device=device or _("terminal"), serial=text(serial, 80)
        )
    facts: list[tuple[str, Any]] = [
        (_("Terminal"), device),
        (_("Terminal ID (masked)"), get(activation, "terminal_id")),
        (_("Merchant ID (masked)"), get(activation, "merchant_id")),
        (_("Operator"), _person(person)),
        (_("Organisation"), get(person, "organisation")),
        (_("Location"), get(san, "location") or get(person, "location")),
        (_("Started"), when(get(san, "started_at"))),
        (_("Finished"), when(get(san, "finished_at"))),
        (_("Method"), _method(san)),
        (_("Destination"), get(dest, "destination")),
    ]
    lines += [Line(label, text(value, 300)) for label, value in facts if not is_missing(value)]
    lines.append(_steps_line(content.get("steps")))
    lines += _failed_steps(content.get("steps"))
    issued = when(content.get("issued_at"))
    if issued:
        lines.append(Line(_("Issued"), issued))
    return lines


def _person(person: Mapping[str, Any]) -> str | None:
    name = get(person, "name")
    if is_missing(name):
        return None
    title = get(person, "title")
    if is_missing(title):
        return text(name, 120)
    return _("{name} ({title})").format(name=text(name, 120), title=text(title, 120))


def _method(san: Mapping[str, Any]) -> str | None:
    technique, method = get(san, "technique"), get(san, "method")
    if is_missing(method):
        return None if is_missing(technique) else text(technique)
    if is_missing(technique):
        return text(method, 300)
    return _("{technique}: {method}").format(technique=text(technique), method=text(method, 300))


def verify_json(
    path: Path,
    checked: VerifyResult,
    signer: str,
    ledger: tuple[bool, str] | None = None,
) -> dict[str, Any]:
    """The one object ``posdiag verify CERT --json`` prints (schema ``posdiag.verify/1``).

    Field names and ``signer`` values are stable identifiers; ``reason`` is the sentence a
    person reads. ``certificate`` is the full content, only when the signature is valid.
    """
    return {
        "schema": SCHEMA,
        "file": str(path),
        "valid": checked.ok,
        "reason": checked.reason,
        "fingerprint": checked.fingerprint,
        "signer": signer or None,
        "old_format": checked.old_format,
        "ledger": None if ledger is None else {"recorded": ledger[0], "reason": ledger[1]},
        "certificate": checked.content if checked.ok else None,
    }
