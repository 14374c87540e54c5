"""The PDF certificate's content: its sections as reportlab flowables, within a budget.

:mod:`.pdf` renders and measures; this module says what a page holds. Every value passes
:func:`clean_text` and is escaped for reportlab's paragraph markup (``&``, ``<``, ``>``), so a
model name cannot inject markup; text is written in runs, characters Helvetica can show
(Windows-1252) in Helvetica and every other one (CJK and the rest) in the built-in
``STSong-Light``. A :class:`Budget` bounds how much of long texts and lists is shown, so the
caller can tighten it until the certificate fits its pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, Paragraph, Spacer, Table

from posdiag.drivers.i18n import _, ngettext
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

__all__ = [
    "BUDGETS",
    "CJK_FONT",
    "GREY",
    "LATIN",
    "MARGIN",
    "MAX_PAGES",
    "Budget",
    "latin",
    "story",
]

CJK_FONT = "STSong-Light"
LATIN = "Helvetica"
MAX_PAGES = 2
MARGIN = 14 * mm
GREY = colors.HexColor("#666666")
_LATIN_BOLD = "Helvetica-Bold"
_MONO = "Courier"
_WIDTH = A4[0] - 2 * MARGIN
_LINE = colors.HexColor("#d0d0d0")
_HEAD = colors.HexColor("#f2f2f2")
_KIND_COLOURS = {"ok": "#1b7a3a", "warn": "#a85d00", "bad": "#b3261e", "muted": "#777777"}


def latin(char: str) -> bool:
    """Whether Helvetica (WinAnsi encoding, i.e. Windows-1252) can show ``char``."""
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _markup(value: str) -> str:
    """Paragraph markup of plain text: escaped, with non-Latin runs in the CJK font."""
    if value.isascii():  # most of a page: no run to split, no character to test
        return escape(value)
    parts = []
    for is_latin, chunk in groupby(value, key=latin):
        piece = escape("".join(chunk))
        parts.append(piece if is_latin else f'<font name="{CJK_FONT}">{piece}</font>')
    return "".join(parts)


@dataclass(frozen=True)
class Budget:
    """How much of a long certificate is shown; tighter budgets are tried until it fits."""

    cell: int  # characters of one table cell (a step's detail, what it erases)
    item: int  # characters of one exception or one long detail
    steps: int  # steps listed
    exceptions: int  # exceptions listed
    evidence: bool  # the long NIST meaning and the backends' table
    pages: int  # the most pages this budget may take; else the next budget is tried
    tight: bool = False  # less space between sections, the signature boxes lower


# A typical certificate fits one page as it is, or with less space between sections; a long
# one gets two pages, showing less of each long text and list until it fits.
BUDGETS = (
    Budget(cell=400, item=400, steps=60, exceptions=20, evidence=True, pages=1),
    Budget(cell=400, item=400, steps=60, exceptions=20, evidence=True, pages=1, tight=True),
    Budget(cell=400, item=400, steps=60, exceptions=20, evidence=True, pages=MAX_PAGES),
    Budget(cell=160, item=200, steps=30, exceptions=10, evidence=True, pages=MAX_PAGES),
    Budget(cell=80, item=120, steps=16, exceptions=6, evidence=False, pages=MAX_PAGES),
    Budget(cell=40, item=80, steps=8, exceptions=3, evidence=False, pages=MAX_PAGES),
)


class _Styles:
    """Paragraph styles by name and colour, made once per rendering."""

    _BASE: dict[str, dict[str, Any]] = {
        "body": {"fontName": LATIN, "fontSize": 8, "leading": 10},
        "small": {"fontName": LATIN, "fontSize": 6.8, "leading": 8.4, "textColor": GREY},
        "label": {"fontName": LATIN, "fontSize": 6.5, "leading": 8, "textColor": GREY},
        "value": {"fontName": _LATIN_BOLD, "fontSize": 8.5, "leading": 10.5},
        "cell": {"fontName": LATIN, "fontSize": 7.2, "leading": 8.8},
        "head": {"fontName": _LATIN_BOLD, "fontSize": 7.2, "leading": 8.8},
        "mono": {"fontName": _MONO, "fontSize": 7.2, "leading": 8.8},
        "h2": {
            "fontName": _LATIN_BOLD,
            "fontSize": 9.5,
            "leading": 12,
            "spaceBefore": 4,
            "spaceAfter": 2,
        },
        "title": {"fontName": _LATIN_BOLD, "fontSize": 17, "leading": 20},
        "org": {"fontName": _LATIN_BOLD, "fontSize": 10.5, "leading": 13},
        "word": {"fontName": _LATIN_BOLD, "fontSize": 18, "leading": 21},
        "right": {"fontName": LATIN, "fontSize": 7.2, "leading": 9, "alignment": 2},
    }

    def __init__(self, tight: bool) -> None:
        self._made: dict[tuple[str, str | None], ParagraphStyle] = {}
        self._tight = tight

    def get(self, name: str, colour: str | None = None) -> ParagraphStyle:
        key = (name, colour)
        if key not in self._made:
            extra: dict[str, Any] = dict(self._BASE[name])
            if colour is not None:
                extra["textColor"] = colors.HexColor(colour)
            if self._tight and "spaceBefore" in extra:
                extra["spaceBefore"] = 2
            self._made[key] = ParagraphStyle(f"{name}-{colour}", **extra)
        return self._made[key]


class _Page:
    """Builds the flowables of one certificate within a budget."""

    def __init__(self, cert: Mapping[str, Any], budget: Budget) -> None:
        self.cert = cert
        self.budget = budget
        self.styles = _Styles(budget.tight)

    def p(self, value: Any, style: str = "body", colour: str | None = None) -> Paragraph:
        """A paragraph of plain text (cleaned, escaped, CJK runs in the CJK font)."""
        shown = value if isinstance(value, str) else text(value)
        return Paragraph(_markup(clean_text(shown, 8192)), self.styles.get(style, colour))

    def raw(self, markup: str, style: str = "body", colour: str | None = None) -> Paragraph:
        """A paragraph of markup this module built from escaped pieces."""
        return Paragraph(markup, self.styles.get(style, colour))

    def cut(self, value: Any, limit: int) -> str:
        """Display text of a value, cut to ``limit`` characters (with "…")."""
        return clean_text(text(value), limit)

    def h2(self, title: str) -> Paragraph:
        return self.p(title, "h2")

    def quiet(self) -> Paragraph:
        return self.p("—", "cell", _KIND_COLOURS["muted"])


def _table(
    rows: list[list[Any]],
    widths: Sequence[float],
    commands: Sequence[tuple[Any, ...]] = (),
    repeat: int = 0,
) -> Table:
    table = Table(rows, colWidths=list(widths), repeatRows=repeat)
    table.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            *commands,
        ]
    )
    return table


def _tint(hex_colour: str, strength: float) -> colors.Color:
    """``hex_colour`` mixed with white: a background that prints lightly."""
    base = colors.HexColor(hex_colour)
    return colors.Color(
        1 - (1 - base.red) * strength,
        1 - (1 - base.green) * strength,
        1 - (1 - base.blue) * strength,
    )


def _header(page: _Page, depot: Any, logo: Image | None) -> list[Flowable]:
    cert = page.cert
    titles: list[Flowable] = []
    if not is_missing(depot):
        titles.append(page.p(page.cut(depot, 120), "org"))
    titles += [
        page.p(_("Certificate of Sanitization"), "title"),
        page.p(
            _("Payment terminal · NIST SP 800-88 record with PCI DSS inventory fields"), "small"
        ),
    ]
    issued = when(cert.get("issued_at")) or "—"
    ids = [
        page.p(_("Certificate ID"), "right"),
        page.raw(
            f'<font name="{_MONO}">{escape(page.cut(cert.get("report_id") or "—", 80))}</font>',
            "right",
        ),
        page.p(_("Issued {moment}").format(moment=issued), "right"),
    ]
    cells: list[Any] = [titles, ids]
    widths = [_WIDTH - 58 * mm, 58 * mm]
    if logo is not None:
        logo_width = logo.drawWidth + 4 * mm
        cells.insert(0, logo)
        widths = [logo_width, _WIDTH - 58 * mm - logo_width, 58 * mm]
    head = _table(
        [cells],
        widths,
        [
            ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ("LINEBELOW", (0, 0), (-1, 0), 2, colors.black),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ],
    )
    flow: list[Flowable] = [head]
    if cert.get("simulated"):
        flow += [
            Spacer(1, 3),
            _table(
                [
                    [
                        page.p(
                            _(
                                "SIMULATED TERMINAL: this records a test against a simulator, "
                                "not the sanitization of a real device."
                            ),
                            "value",
                            "#7a4400",
                        )
                    ]
                ],
                [_WIDTH],
                [
                    ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fff3cd")),
                    ("BOX", (0, 0), (-1, -1), 1, colors.HexColor("#a85d00")),
                ],
            ),
        ]
    return flow


def _outcome(page: _Page) -> Flowable:
    cert = page.cert
    outcome = str(cert.get("outcome", ""))
    word, colour, meaning = outcome_view(outcome)
    media, person, san = (get(cert, name) or {} for name in ("media", "person", "sanitization"))
    device = " ".join(
        page.cut(part, 120) for part in (get(media, "manufacturer"), get(media, "model")) if part
    )
    technique: Any = get(san, "technique")
    if not is_missing(technique) and outcome in ("not_erased", "aborted", "refused"):
        technique = _("{technique}: not achieved").format(technique=text(technique))
    glance = [
        (_("Device"), device),
        (_("Serial number"), get(media, "serial_number")),
        (_("Sanitization"), technique),
        (_("Operator"), get(person, "name")),
        (_("Finished"), when(get(san, "finished_at"))),
        (_("Location"), get(san, "location")),
    ]
    cells = [
        [
            page.p(label, "label"),
            page.p(page.cut(value, 120), "value") if not is_missing(value) else page.quiet(),
        ]
        for label, value in glance
    ]
    third = (_WIDTH - 14) / 3
    grid = _table(
        [cells[0:3], cells[3:6]],
        [third] * 3,
        [("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 3)],
    )
    box = [page.p(word.upper(), "word", colour), page.p(meaning, "body"), grid]
    return _table(
        [[box]],
        [_WIDTH],
        [
            ("BOX", (0, 0), (-1, -1), 1.2, colors.HexColor(colour)),
            ("LINEBEFORE", (0, 0), (0, -1), 6, colors.HexColor(colour)),
            ("BACKGROUND", (0, 0), (-1, -1), _tint(colour, 0.07)),
            ("LEFTPADDING", (0, 0), (-1, -1), 9),
            ("TOPPADDING", (0, 0), (-1, -1), 5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ],
    )


def _exceptions(page: _Page) -> list[Flowable]:
    items = page.cert.get("exceptions")
    flow: list[Flowable] = [page.h2(_("Exceptions"))]
    if not isinstance(items, list) or not items:
        return [*flow, page.p(_("None."), "small")]
    shown = items[: page.budget.exceptions]
    flow += [page.p("• " + page.cut(item, page.budget.item), "body") for item in shown]
    if len(items) > len(shown):
        more = len(items) - len(shown)
        note = ngettext(
            "… and {n} more exception: see the signed record",
            "… and {n} more exceptions: see the signed record",
            more,
        ).format(n=more)
        flow.append(page.p(note, "small"))
    return flow


def _verified(page: _Page, verified: Any) -> Paragraph:
    if verified is True:
        return page.p(_("read back"), "cell", _KIND_COLOURS["ok"])
    if verified is False:
        return page.p(_("not confirmed"), "cell", _KIND_COLOURS["bad"])
    return page.p(_("not checked"), "cell", _KIND_COLOURS["muted"])


def _steps(page: _Page) -> list[Flowable]:
    cert, budget = page.cert, page.budget
    flow: list[Flowable] = [page.h2(_("Wipe steps and how each was verified"))]
    verification = get(cert, "sanitization", "verification_method")
    if not is_missing(verification):
        line = _("Verification method: {method}").format(method=page.cut(verification, budget.item))
        flow.append(page.p(line, "small"))
    steps = cert.get("steps")
    if not isinstance(steps, list) or not steps:
        return [*flow, page.p(_("No wipe step ran."), "small")]
    head = [
        page.p(label, "head")
        for label in ("#", _("Step"), _("What it erases"), _("Result"), _("Verified"), _("Detail"))
    ]
    rows: list[list[Any]] = [head]
    for number, step in enumerate(steps[: budget.steps], 1):
        step = step if isinstance(step, Mapping) else {}
        status = step.get("status")
        erases, detail = step.get("erases"), step.get("detail")
        rows.append(
            [
                page.p(str(number), "cell"),
                page.p(page.cut(step.get("name") or "—", 60), "mono"),
                page.p(page.cut(erases, budget.cell), "cell")
                if not is_missing(erases)
                else page.quiet(),
                page.p(status_word(status), "cell", _KIND_COLOURS[status_kind(status)]),
                _verified(page, step.get("verified")),
                page.p(page.cut(detail, budget.cell), "cell") if not is_missing(detail) else "",
            ]
        )
    widths = [6 * mm, 41 * mm, 56 * mm, 17 * mm, 18 * mm]
    widths.append(_WIDTH - sum(widths))
    flow.append(
        _table(
            rows,
            widths,
            [
                ("BACKGROUND", (0, 0), (-1, 0), _HEAD),
                ("LINEBELOW", (0, 0), (-1, -1), 0.4, _LINE),
            ],
            repeat=1,
        )
    )
    if len(steps) > budget.steps:
        more = len(steps) - budget.steps
        note = ngettext(
            "… and {n} more step: see the signed record",
            "… and {n} more steps: see the signed record",
            more,
        ).format(n=more)
        flow.append(page.p(note, "small"))
    return flow


def _firmware(components: Any) -> str | None:
    if not isinstance(components, Mapping) or not components:
        return None
    return "; ".join(
        f"{text(name)} {text(version)}" for name, version in sorted(components.items())
    )


def _details(page: _Page) -> list[Flowable]:
    """Every recorded NIST / PCI field in two label–value columns; missing ones left out."""
    cert, budget = page.cert, page.budget
    media, person, san, dest, inv, pre = (
        get(cert, name) or {}
        for name in ("media", "person", "sanitization", "destination", "inventory", "pre_wipe")
    )
    pairs = [
        (_("Name"), get(person, "name")),
        (_("Position / title"), get(person, "title")),
        (_("Organisation"), get(person, "organisation")),
        (_("Contact"), get(person, "contact")),
        (_("Manufacturer"), get(media, "manufacturer")),
        (_("Model"), get(media, "model")),
        (_("Serial number"), get(media, "serial_number")),
        (_("IMEI"), get(media, "imei")),
        (_("Property / asset number"), get(media, "property_number")),
        (_("Firmware"), _firmware(get(inv, "firmware_versions"))),
        (_("Media type"), get(media, "media_type")),
        (_("Media source"), get(media, "media_source")),
        (_("Pre-sanitization confidentiality"), get(media, "pre_sanitization_confidentiality")),
        (_("Data backup"), get(media, "data_backup")),
        (_("Started"), when(get(san, "started_at"))),
        (_("Finished"), when(get(san, "finished_at"))),
        (_("Method used"), get(san, "method")),
        (_("Tool used"), get(san, "tool")),
        (_("Post-sanitization destination"), get(dest, "destination")),
        (_("Post-sanitization confidentiality"), get(dest, "post_sanitization_confidentiality")),
        (_("Inventory status"), get(inv, "status")),
        (_("Device type"), get(inv, "device_type")),
        (_("Checked at"), when(get(pre, "checked_at"))),
        (_("Activation"), get(pre, "activation", "state")),
        (_("Terminal ID (masked)"), get(pre, "activation", "terminal_id")),
        (_("Merchant ID (masked)"), get(pre, "activation", "merchant_id")),
        (_("Keys loaded"), get(pre, "activation", "keys_loaded")),
        (_("Tampered"), get(pre, "tamper", "tampered")),
        (_("Unsettled transactions"), get(pre, "merchant_data", "pending_transactions", "count")),
        (_("Check verdict"), verdict_text(get(pre, "verdict"))),
    ]
    # Tight: what the outcome box already shows (operator, device, serial, finish) is not repeated.
    shown_above = {_("Name"), _("Manufacturer"), _("Model"), _("Serial number"), _("Finished")}
    kept = [
        [page.p(label, "label"), page.p(page.cut(value, budget.item), "cell")]
        for label, value in pairs
        if not is_missing(value) and not (budget.tight and label in shown_above)
    ]
    half = (len(kept) + 1) // 2
    left, right = kept[:half], kept[half:]
    rows = [left[i] + (right[i] if i < len(right) else ["", ""]) for i in range(len(left))]
    label_w = 27 * mm
    value_w = _WIDTH / 2 - label_w
    flow: list[Flowable] = [page.h2(_("Details"))]
    if rows:
        flow.append(
            _table(
                rows,
                [label_w, value_w, label_w, value_w],
                [("LINEBELOW", (0, 0), (-1, -1), 0.3, _LINE)],
            )
        )
    meaning = get(san, "technique_meaning")
    if budget.evidence and not is_missing(meaning):
        flow += [Spacer(1, 2), page.p(page.cut(meaning, budget.item), "small")]
    if budget.evidence:
        flow += _backends(page)
    return flow


def _backends(page: _Page) -> list[Flowable]:
    """Each backend's binding before and after (the proof of a release step), when recorded."""
    backends = page.cert.get("backends")
    if not isinstance(backends, Mapping):
        return []
    names: dict[str, dict[str, str]] = {}
    for moment in ("before", "after"):
        views = backends.get(moment)
        for view in views if isinstance(views, list) else []:
            if isinstance(view, Mapping):
                name = _("{name} ({kind})").format(
                    name=text(view.get("name")), kind=text(view.get("kind"))
                )
                names.setdefault(name, {})[moment] = backend_state(view)
    if not names:
        return []
    cell = page.budget.cell
    rows: list[list[Any]] = [
        [
            page.p(label, "head")
            for label in (_("Backend"), _("Before the wipe"), _("After the wipe"))
        ]
    ]
    for name, states in list(names.items())[:8]:
        rows.append(
            [page.p(page.cut(name, 80), "cell")]
            + [page.p(page.cut(states.get(m) or "—", cell), "cell") for m in ("before", "after")]
        )
    return [
        page.h2(_("Terminal management / acquirer backends")),
        _table(
            rows,
            [50 * mm, (_WIDTH - 50 * mm) / 2, (_WIDTH - 50 * mm) / 2],
            [("BACKGROUND", (0, 0), (-1, 0), _HEAD), ("LINEBELOW", (0, 0), (-1, -1), 0.3, _LINE)],
        ),
    ]


def _signatures(page: _Page) -> list[Flowable]:
    cert = page.cert
    person = get(cert, "person") or {}
    sub = " · ".join(
        page.cut(part, 80)
        for part in (get(person, "title"), get(cert, "sanitization", "date"))
        if not is_missing(part)
    )
    name = get(person, "name")
    left = [
        page.p(_("Sanitized by"), "label"),
        page.p(page.cut(name, 80), "value") if not is_missing(name) else page.quiet(),
        page.p(sub, "small"),
        Spacer(1, (5 if page.budget.tight else 8) * mm),
        page.p(_("Signature and date"), "small"),
    ]
    right = [
        page.p(_("Validated by"), "label"),
        page.p(_("(second person, optional)"), "body"),
        page.p(_("Name and position"), "small"),
        Spacer(1, (5 if page.budget.tight else 8) * mm),
        page.p(_("Signature and date"), "small"),
    ]
    half = (_WIDTH - 6 * mm) / 2
    boxes = _table(
        [[left, "", right]],
        [half, 6 * mm, half],
        [
            ("BOX", (0, 0), (0, 0), 0.6, _LINE),
            ("BOX", (2, 0), (2, 0), 0.6, _LINE),
            ("TOPPADDING", (0, 0), (-1, -1), 4),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ],
    )
    return [page.h2(_("Signatures")), boxes]


def _digital_signature(page: _Page, sig: Any) -> list[Flowable]:
    flow: list[Flowable] = [page.h2(_("Digital signature"))]
    if not isinstance(sig, Mapping):
        warning = _("NOT SIGNED: this content carries no signature.")
        return [*flow, page.p(warning, "value", _KIND_COLOURS["bad"])]
    report_id = page.cert.get("report_id")
    json_name = f"{page.cut(report_id, 130)}.json" if not is_missing(report_id) else "CERT.json"

    def mono(value: Any) -> str:
        return f'<font name="{_MONO}">{escape(page.cut(value, 200))}</font>'

    rows = [
        [
            page.p(_("Station key fingerprint"), "label"),
            page.raw(mono(sig.get("fingerprint"))),
            page.p(_("Algorithm"), "label"),
            page.p(sig.get("algorithm") or "—", "cell"),
        ],
        [
            page.p(_("Station public key"), "label"),
            page.raw(mono(sig.get("public_key")), "cell"),
            "",
            "",
        ],
    ]
    label = 30 * mm
    widths = [label, _WIDTH / 2 - label, label, _WIDTH / 2 - label]
    how = _markup(
        _(
            "This page is a rendering. The signed record is the file {file}; check it with "
            "{command} and compare the fingerprint with the station's. Any change to the record "
            "makes verification fail."
        )
    ).format(file=mono(json_name), command=mono(f"posdiag verify {json_name}"))
    return [
        *flow,
        _table(rows, widths, [("SPAN", (1, 1), (3, 1))]),
        Spacer(1, 2),
        page.raw(how, "small"),
    ]


def _footer(page: _Page) -> list[Flowable]:
    standards = page.cert.get("standards")
    lines = [text(item) for item in standards] if isinstance(standards, list) else []
    lines.append(_(MASKING_NOTE))
    if page.budget.tight:
        return [Spacer(1, 3), page.p(" · ".join(lines), "small")]
    return [Spacer(1, 5), *(page.p(line, "small") for line in lines)]


def story(
    cert: Mapping[str, Any], sig: Any, budget: Budget, depot: Any, logo: Image | None
) -> list[Flowable]:
    """Every section of the certificate, in page order, within ``budget``."""
    page = _Page(cert, budget)
    return [
        *_header(page, depot, logo),
        Spacer(1, 5),
        _outcome(page),
        *_exceptions(page),
        *_steps(page),
        *_details(page),
        *_signatures(page),
        *_digital_signature(page, sig),
        *_footer(page),
    ]
