"""The printable certificate: one self-contained HTML page a person understands at a glance.

It renders signed content; it is not itself evidence (the JSON file is). Every value passes
through :func:`posdiag.drivers.text.clean_text` and is HTML-escaped, so terminal-sourced text can
inject neither markup nor control sequences, even from a certificate an older version wrote.
Labels are in the reader's language (``_()``), dates in their locale; a field the content does
not hold is left out rather than announced, so the page shows what is known.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from posdiag.drivers.i18n import _, language
from posdiag.drivers.text import clean_text

from .view import (
    MASKING_NOTE,
    backend_state,
    get,
    is_missing,
    outcome_view,
    status_kind,
    status_word,
    text,
    verdict_text,
    when,
)

__all__ = ["render_html"]

_MARKS = {
    "erased": "✔",
    "erased_with_exceptions": "⚠",
    "not_erased": "✘",
    "aborted": "■",
    "refused": "⊘",
}

# Nothing is fetched and nothing runs: the page prints and archives the same in ten years.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


_CSS = """
@page { size: A4; margin: 14mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: "Helvetica Neue", Arial, "DejaVu Sans", "Noto Sans CJK SC", "PingFang SC",
       "Microsoft YaHei", "WenQuanYi Zen Hei", sans-serif; color: #1a1a1a;
       margin: 0 auto; max-width: 820px; padding: 24px; font-size: 13px; line-height: 1.4; }
header { display: flex; justify-content: space-between; align-items: flex-end;
         border-bottom: 3px solid #1a1a1a; padding-bottom: 8px; }
h1 { font-size: 26px; margin: 0; letter-spacing: 0.3px; }
.sub { color: #555; font-size: 12px; }
.org { font-size: 15px; font-weight: 700; color: #333; }
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


def _e(value: Any) -> str:
    """A value as escaped display text; "" when the content holds nothing for it."""
    if is_missing(value):
        return ""
    return html.escape(text(value), quote=True)


def _v(value: Any) -> str:
    """A value for a place that must show something: escaped text, or a quiet grey dash."""
    shown = _e(value)
    return shown if shown else '<span class="muted">—</span>'


def _row(label: str, value: Any) -> str:
    """One labelled row, or nothing when the value is missing: unknowns are not shouted."""
    if is_missing(value):
        return ""
    return f"<tr><th>{html.escape(label)}</th><td>{_e(value)}</td></tr>"


def _group(label: str, rows: list[str]) -> list[str]:
    """A titled group of rows; a group with no row left is left out as a whole."""
    kept = [row for row in rows if row]
    if not kept:
        return []
    return [f'<tr><td class="group" colspan="2">{html.escape(label)}</td></tr>', *kept]


def _verified_cell(verified: Any) -> str:
    if verified is True:
        return f'<span class="ok">✔ {html.escape(_("read back"))}</span>'
    if verified is False:
        return f'<span class="bad">✘ {html.escape(_("not confirmed"))}</span>'
    return f'<span class="muted">{html.escape(_("not checked"))}</span>'


def _steps_html(steps: Any) -> str:
    if not isinstance(steps, list) or not steps:
        return f'<p class="muted">{html.escape(_("No wipe step ran."))}</p>'
    rows = []
    for number, step in enumerate(steps, 1):
        step = step if isinstance(step, Mapping) else {}
        status = step.get("status")
        rows.append(
            "<tr>"
            f"<td>{number}</td>"
            f'<td><span class="mono">{_v(step.get("name"))}</span></td>'
            f"<td>{_v(step.get('erases'))}</td>"
            f'<td class="nowrap"><span class="{status_kind(status)}">'
            f"{html.escape(status_word(status))}</span></td>"
            f'<td class="nowrap">{_verified_cell(step.get("verified"))}</td>'
            f"<td>{_e(step.get('detail'))}</td>"
            "</tr>"
        )
    head = "".join(
        f"<th>{html.escape(label)}</th>"
        for label in ("#", _("Step"), _("What it erases"), _("Result"), _("Verified"), _("Detail"))
    )
    return (
        f'<table class="steps"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table>"
    )


def _list_html(items: Any, empty: str) -> str:
    if not isinstance(items, list) or not items:
        return f'<p class="muted">{html.escape(empty)}</p>'
    return "<ul>" + "".join(f"<li>{_v(item)}</li>" for item in items) + "</ul>"


def _firmware_row(components: Any) -> str:
    if not isinstance(components, Mapping) or not components:
        return ""
    lines = "<br>".join(
        f"{_v(name)}: <span class='mono'>{_v(version)}</span>"
        for name, version in sorted(components.items())
    )
    return f"<tr><th>{html.escape(_('Firmware'))}</th><td>{lines}</td></tr>"


def _pre_wipe_html(pre: Any) -> str:
    activation = get(pre, "activation")
    rows = [_row(_("Checked at"), when(get(pre, "checked_at")))]
    if isinstance(activation, Mapping):
        rows += [
            _row(_("Activation"), activation.get("state")),
            _row(_("Terminal ID (masked)"), activation.get("terminal_id")),
            _row(_("Merchant ID (masked)"), activation.get("merchant_id")),
            _row(_("Keys loaded"), activation.get("keys_loaded")),
            _row(_("Registered with host"), activation.get("host_registered")),
        ]
        evidence = activation.get("evidence")
        if isinstance(evidence, list) and evidence:
            facts = "".join(
                f"<li>{_v(get(item, 'source'))}: {_v(get(item, 'fact'))}</li>" for item in evidence
            )
            rows.append(f"<tr><th>{html.escape(_('Evidence'))}</th><td><ul>{facts}</ul></td></tr>")
    rows.append(_row(_("Tampered"), get(pre, "tamper", "tampered")))
    pending = get(pre, "merchant_data", "pending_transactions", "count")
    rows.append(_row(_("Unsettled transactions"), pending))
    rows.append(_row(_("Check verdict"), verdict_text(get(pre, "verdict"))))
    kept = "".join(rows)
    if not kept:
        return f'<p class="muted">{html.escape(_("Not checked."))}</p>'
    return f'<table class="kv">{kept}</table>'


def _backends_html(backends: Any) -> str:
    """Each backend's binding before and after the wipe: the proof of a release step."""
    if not isinstance(backends, Mapping):
        return ""
    rows: list[str] = []
    for moment, label in (("before", _("Before the wipe")), ("after", _("After the wipe"))):
        views = backends.get(moment)
        if not isinstance(views, list):
            continue
        rows += _group(
            label,
            [
                _row(
                    _("{name} ({kind})").format(
                        name=text(view.get("name")), kind=text(view.get("kind"))
                    ),
                    backend_state(view),
                )
                for view in views
                if isinstance(view, Mapping)
            ],
        )
    if not rows:
        return ""
    table = '<table class="kv">' + "".join(rows) + "</table>"
    title = html.escape(_("Terminal management / acquirer backends"))
    return f"<section>\n<h2>{title}</h2>\n{table}\n</section>\n"


def _signature_html(sig: Any, report_id: Any) -> str:
    """The digital signature and how to check it; a loud warning when there is none."""
    if not isinstance(sig, Mapping):
        warning = html.escape(_("NOT SIGNED: this content carries no signature."))
        return f'<p class="bad">{warning}</p>'
    json_name = f"{text(report_id)}.json" if not is_missing(report_id) else "<certificate>.json"
    rows = [
        _row(_("Algorithm"), sig.get("algorithm")),
        f"<tr><th>{html.escape(_('Station key fingerprint'))}</th>"
        f"<td><code>{_v(sig.get('fingerprint'))}</code></td></tr>",
        f"<tr><th>{html.escape(_('Station public key'))}</th>"
        f"<td><code class='break'>{_v(sig.get('public_key'))}</code></td></tr>",
        f"<tr><th>{html.escape(_('Signature'))}</th>"
        f"<td><code class='break small'>{_v(sig.get('value'))}</code></td></tr>",
    ]
    how = html.escape(
        _(
            "This page is a rendering. The signed record is the file {file}; check it with "
            "{command} and compare the fingerprint with the station's. Any change to the record "
            "makes verification fail."
        )
    ).format(
        file=f"<code>{html.escape(json_name)}</code>",
        command=f"<code>posdiag verify {html.escape(json_name)}</code>",
    )
    return '<table class="kv">' + "".join(rows) + f'</table><p class="small">{how}</p>'


def _glance(label: str, value: Any) -> str:
    return f"<div><span>{html.escape(label)}</span><b>{_v(value)}</b></div>"


def render_html(document: Mapping[str, Any], organisation: str | None = None) -> str:
    """The printable certificate: one self-contained page a person understands at a glance.

    Inline CSS only (no scripts, fonts or images to fetch, and a Content-Security-Policy that
    forbids them), so it prints and archives the same in ten years. Every value is HTML-escaped:
    model names and step details come from the terminal and must not be able to inject markup.
    Identifiers are shown as the content holds them (masked); serial numbers are shown in full
    because they name the device. Labels are in the language in force.

    Args:
        document: a signed document (``{"certificate": …, "signature": …}``); unsigned content is
            shown with a warning that it is not signed.
        organisation: the depot's name for the header (station settings); the certificate's own
            organisation when None.

    Returns:
        The HTML text.
    """
    cert = document.get("certificate", document) if isinstance(document, Mapping) else {}
    sig = document.get("signature") if isinstance(document, Mapping) else None
    cert = cert if isinstance(cert, Mapping) else {}
    outcome = str(cert.get("outcome", ""))
    word, colour, meaning = outcome_view(outcome)
    mark = _MARKS.get(outcome, "?")
    media = get(cert, "media") or {}
    person = get(cert, "person") or {}
    san = get(cert, "sanitization") or {}
    dest = get(cert, "destination") or {}
    inv = get(cert, "inventory") or {}
    report_id = cert.get("report_id")
    depot = organisation if not is_missing(organisation) else get(person, "organisation")

    device_line = " ".join(
        text(part, 256) for part in (get(media, "manufacturer"), get(media, "model")) if part
    )
    simulated = (
        '<div class="simulated">'
        + html.escape(
            _(
                "SIMULATED TERMINAL: this records a test against a simulator, not the "
                "sanitization of a real device."
            )
        )
        + "</div>"
        if cert.get("simulated")
        else ""
    )
    location = get(san, "location") or get(person, "location")
    details = [
        *_group(
            _("Who: person performing the sanitization"),
            [
                _row(_("Name"), get(person, "name")),
                _row(_("Position / title"), get(person, "title")),
                _row(_("Organisation"), get(person, "organisation")),
                _row(_("Contact"), get(person, "contact")),
            ],
        ),
        *_group(
            _("What: media information"),
            [
                _row(_("Manufacturer"), get(media, "manufacturer")),
                _row(_("Model"), get(media, "model")),
                _row(_("Serial number"), get(media, "serial_number")),
                _row(_("IMEI"), get(media, "imei")),
                _row(_("Property / asset number"), get(media, "property_number")),
                _row(_("Media type"), get(media, "media_type")),
                _row(_("Media source"), get(media, "media_source")),
                _row(
                    _("Pre-sanitization confidentiality"),
                    get(media, "pre_sanitization_confidentiality"),
                ),
                _row(_("Data backup"), get(media, "data_backup")),
                _firmware_row(get(inv, "firmware_versions")),
            ],
        ),
        *_group(
            _("When"),
            [
                _row(_("Started"), when(get(san, "started_at"))),
                _row(_("Finished"), when(get(san, "finished_at"))),
                _row(_("Certificate issued"), when(cert.get("issued_at"))),
            ],
        ),
        *_group(_("Where"), [_row(_("Location"), location)]),
        *_group(
            _("How: sanitization details"),
            [
                _row(_("Sanitization"), get(san, "technique")),
                _row(_("Meaning"), get(san, "technique_meaning")),
                _row(_("Method used"), get(san, "method")),
                _row(_("What was done"), get(san, "summary")),
                _row(_("Tool used"), get(san, "tool")),
                _row(_("Verification method"), get(san, "verification_method")),
            ],
        ),
        *_group(
            _("Afterwards: media destination"),
            [
                _row(_("Post-sanitization destination"), get(dest, "destination")),
                _row(
                    _("Post-sanitization confidentiality"),
                    get(dest, "post_sanitization_confidentiality"),
                ),
                _row(_("Inventory status"), get(inv, "status")),
                _row(_("Device type"), get(inv, "device_type")),
            ],
        ),
    ]

    technique: Any = get(san, "technique")
    if not is_missing(technique) and outcome in ("not_erased", "aborted", "refused"):
        technique = _("{technique}: not achieved").format(technique=text(technique))
    standards = cert.get("standards") or []
    footer = [_e(item) for item in standards if not is_missing(item)]
    footer.append(html.escape(_(MASKING_NOTE)))
    depot_line = f'<div class="org">{_e(depot)}</div>' if not is_missing(depot) else ""
    verification = get(san, "verification_method")
    verification_line = (
        "<p>"
        + html.escape(_("Verification method: {method}")).format(method=_e(verification))
        + "</p>"
        if not is_missing(verification)
        else ""
    )
    lang = "zh-CN" if language() == "zh_CN" else "en"
    subtitle = html.escape(
        _("Payment terminal · NIST SP 800-88 record with PCI DSS inventory fields")
    )
    title_and_date = " · ".join(
        part for part in (_e(get(person, "title")), _e(get(san, "date"))) if part
    )
    optional = html.escape(_("(second person, optional)"))
    title = html.escape(_("Certificate of Sanitization"))
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} {_e(report_id)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
  <div>
    {depot_line}
    <h1>{title}</h1>
    <div class="sub">{subtitle}</div>
  </div>
  <div class="ids">{html.escape(_("Certificate ID"))}<br><code>{_v(report_id)}</code><br>
    {html.escape(_("Issued {moment}").format(moment=when(cert.get("issued_at")) or "—"))}</div>
</header>
{simulated}
<div class="outcome" style="--c: {colour}">
  <div class="word">{mark} {html.escape(clean_text(word.upper(), 64))}</div>
  <div class="meaning">{html.escape(meaning)}</div>
  <div class="glance">
    {_glance(_("Device"), device_line)}
    {_glance(_("Serial number"), get(media, "serial_number"))}
    {_glance(_("Sanitization"), technique)}
    {_glance(_("Operator"), get(person, "name"))}
    {_glance(_("Finished"), when(get(san, "finished_at")))}
    {_glance(_("Location"), get(san, "location"))}
  </div>
</div>

<section>
<h2>{html.escape(_("Exceptions"))}</h2>
{_list_html(cert.get("exceptions"), _("None."))}
</section>

<section>
<h2>{html.escape(_("Wipe steps and how each was verified"))}</h2>
{verification_line}
{_steps_html(cert.get("steps"))}
</section>

<section>
<h2>{html.escape(_("Details"))}</h2>
<table class="kv">{"".join(details)}</table>
</section>

<section>
<h2>{html.escape(_("Device before the wipe"))}</h2>
{_pre_wipe_html(cert.get("pre_wipe"))}
</section>
{_backends_html(cert.get("backends"))}
<section>
<h2>{html.escape(_("Signatures"))}</h2>
<div class="signs">
  <div><strong>{html.escape(_("Sanitized by"))}</strong> {_v(get(person, "name"))}<br>
    <span class="small">{title_and_date}</span>
    <div class="line"></div><span class="small">{html.escape(_("Signature and date"))}</span></div>
  <div><strong>{html.escape(_("Validated by"))}</strong> {optional}<br>
    <span class="small">{html.escape(_("Name and position"))}</span>
    <div class="line"></div><span class="small">{html.escape(_("Signature and date"))}</span></div>
</div>
</section>

<section>
<h2>{html.escape(_("Digital signature"))}</h2>
{_signature_html(sig, report_id)}
</section>

<footer>{"<br>".join(footer)}</footer>
</body>
</html>
"""
