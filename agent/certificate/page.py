"""The printable certificate: one self-contained HTML page a person understands at a glance.

It renders signed content; it is not itself evidence (the JSON file is). Every value passes
through :func:`posdiag.drivers.text.clean_text` and is HTML-escaped, so terminal-sourced text can
inject neither markup nor control sequences, even from a certificate an older version wrote.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from posdiag.drivers.text import clean_text

from .content import ANY_TEXT_LIMIT, DONE_STATUSES, SKIPPED_STATUSES

__all__ = ["render_html"]

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
    return html.escape(clean_text(value, ANY_TEXT_LIMIT), quote=True)


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
    if text in DONE_STATUSES:
        css = "ok"
    elif text in SKIPPED_STATUSES:
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


def _backends_html(backends: Any) -> str:
    """Each backend's binding before and after the wipe: the proof of a release step."""
    if not isinstance(backends, Mapping):
        return ""
    rows = []
    for when, label in (("before", "Before the wipe"), ("after", "After the wipe")):
        views = backends.get(when)
        if not isinstance(views, list):
            continue
        rows.append(_group(label))
        for view in views:
            if not isinstance(view, Mapping):
                continue
            if view.get("consulted"):
                state = f"{view.get('binding')} (status {view.get('status') or '-'})"
                if view.get("merchant"):
                    state += f", merchant {view.get('merchant')}"
            else:
                state = f"not consulted: {view.get('error') or 'no answer'}"
            rows.append(_row(f"{view.get('name')} ({view.get('kind')})", state))
    if not rows:
        return ""
    table = '<table class="kv">' + "".join(rows) + "</table>"
    return f"<section>\n<h2>Terminal management / acquirer backends</h2>\n{table}\n</section>\n"


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
  <div class="word">{mark} {html.escape(clean_text(word.upper(), 64))}</div>
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
{_backends_html(cert.get("backends"))}
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
