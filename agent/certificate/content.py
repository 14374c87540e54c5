"""Building certificate content: every NIST SP 800-88 Appendix G and PCI DSS 9.5.1.1 field.

The content is what gets signed. Everything in it that a terminal said (model, serial, firmware
versions, step details, evidence) is untrusted device text: it passes through
:func:`posdiag.drivers.text.clean_text` before it enters, so no certificate, HTML page or log line
made from it can carry an escape sequence, a bidi override or a megabyte "model name".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from posdiag.drivers.i18n import N_
from posdiag.drivers.text import clean_text

from ..logs import get_logger, mask_identifier, redact
from ..report import SCHEMA as REPORT_SCHEMA
from .canonical import canonical_json, parse_strict
from .errors import CertificateError

__all__ = [
    "DONE_STATUSES",
    "INVENTORY_STATUS",
    "OUTCOMES",
    "SAFE_ID",
    "SCHEMA",
    "SCHEMA_V1",
    "SKIPPED_STATUSES",
    "TECHNIQUES",
    "build_certificate",
]

log = get_logger(__name__)

SCHEMA = "posdiag.certificate/2"  # signed and stored as RFC 8785 (JCS) bytes
SCHEMA_V1 = "posdiag.certificate/1"  # older: signed over sorted-keys JSON, file pretty-printed
OUTCOMES = ("erased", "erased_with_exceptions", "not_erased", "aborted", "refused")

DEFAULT_MEDIA_TYPE = N_("payment terminal (flash, secure element)")
DEFAULT_MEDIA_SOURCE = N_("returned merchant terminal")
DEVICE_TYPE = N_("payment terminal (POI device)")
NOT_CATEGORIZED = N_("not categorized")
DATA_BACKUP = N_("not performed by posdiag")
SIGNATURE_METHOD = N_("digital: Ed25519 signature of the station key over this record")
# Marked for translation: the content keeps the English, the renderings show it translated.
STANDARDS = (
    N_(
        "NIST SP 800-88 Rev. 1 §4.8 and Appendix G (certificate of sanitization fields; Rev. 2 of "
        "September 2025 keeps certificates within an organisation's sanitization program)"
    ),
    N_("PCI DSS v4.0 9.5.1.1 (POI device inventory: make/model, location, serial, status)"),
)

# One field of text, and any string at all: generous (a summary lists every step), but bounded.
FIELD_LIMIT = 1024
ANY_TEXT_LIMIT = 8192

_TECHNIQUES = {
    "clear": (
        N_("Clear"),
        N_(
            "Clear (NIST SP 800-88): the terminal's own merchant/vendor reset functions remove "
            "data from user-addressable storage against simple, non-invasive recovery. It is not "
            "a Purge: recovery with laboratory techniques is not ruled out."
        ),
    ),
    "purge": (
        N_("Purge"),
        N_(
            "Purge (NIST SP 800-88): techniques that make recovery infeasible even with "
            "state-of-the-art laboratory techniques, leaving the media usable."
        ),
    ),
    "destroy": (
        N_("Destroy"),
        N_(
            "Destroy (NIST SP 800-88): recovery is infeasible with laboratory techniques and the "
            "media can no longer store data."
        ),
    ),
}
TECHNIQUES = _TECHNIQUES  # name and meaning per technique: the renderings translate them

# What the inventory (PCI DSS 9.5.1.1) should say about the unit after each outcome.
_INVENTORY_STATUS = {
    "erased": N_("decommissioned: sanitized, ready for its destination"),
    "erased_with_exceptions": N_(
        "decommissioned: sanitized with exceptions, review before release"
    ),
    "not_erased": N_("not sanitized: hold for rework or destruction"),
    "aborted": N_("not sanitized (wipe aborted): hold for rework"),
    "refused": N_("not sanitized (wipe refused): hold, see exceptions"),
}
INVENTORY_STATUS = _INVENTORY_STATUS

# Step statuses meaning "its effect is in place"; the wipe workflow reports one of these when a
# step ran (or was found already done on resume). Anything else counts as not done.
DONE_STATUSES = frozenset(
    {"ok", "done", "already_done", "verified", "completed", "passed", "success", "succeeded"}
)
SKIPPED_STATUSES = frozenset({"skipped", "unavailable", "unsupported", "not_applicable"})

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MASK_PREFIX = "****"


# --- building -------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A clean, stripped string, or None for missing/blank values, so "not given" stays visible.

    Cleaned here because most fields come from the terminal (see the module docstring).
    """
    if value is None:
        return None
    text = clean_text(value, FIELD_LIMIT).strip()
    return text or None


def _clean_tree(value: Any) -> Any:
    """Every string of ``value`` (object keys included) through ``clean_text``, recursively.

    Sections copied from the report (activation evidence, merchant data, verdict reasons) hold
    device text at any depth; one pass over the finished content leaves none of it raw.
    """
    if isinstance(value, str):
        return clean_text(value, ANY_TEXT_LIMIT)
    if isinstance(value, Mapping):
        return {clean_text(k, FIELD_LIMIT): _clean_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_tree(item) for item in value]
    return value


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
        for text in {str(value), clean_text(value, FIELD_LIMIT)}:
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
    backends: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the certificate content (schema ``posdiag.certificate/2``), not yet signed.

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
        backends: each TMS/acquirer backend's view before and after (``{"before": […],
            "after": […]}``), the proof of a release step; omitted when none is configured.

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
    elif not SAFE_ID.fullmatch(report_id):
        raise CertificateError(
            f"report_id {report_id!r} must be letters, digits, '.', '_' or '-' (it names files)"
        )

    step_list = [_step(i, step) for i, step in enumerate(steps)]
    performed: list[str] = []
    not_performed: list[str] = []
    for step in step_list:
        what = step["erases"] or step["name"]
        if step["status"] in DONE_STATUSES:
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
        clean_text(name): clean_text(version)
        for name, version in components.items()
        if version is not None
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
    if backends:
        # the TMS / acquirer binding before and after (a release step's proof); masked already
        content["backends"] = redact(dict(backends))
    content = _scrub(_clean_tree(content), raw_ids)
    # Round-trip through the canonical form: proves it serialises and turns tuples into lists,
    # so the content a caller holds is exactly what will be signed and stored.
    result: dict[str, Any] = parse_strict(canonical_json(content))
    log.info("certificate built", report_id=report_id, outcome=outcome, steps=len(step_list))
    return result
