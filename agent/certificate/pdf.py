"""The certificate as a PDF a depot can hand over: one A4 page for a typical wipe, two at most.

Like the HTML page it is a rendering of the signed content, not evidence: the JSON file is the
proof, and the PDF carries the same key fingerprint and says how to check it.

**Why reportlab**: it draws with the PDF standard fonts (Helvetica, Courier: nothing to embed)
and has Adobe's CJK CID fonts built in (``STSong-Light``, Adobe-GB1 with the UniGB-UCS2-H
encoding), which every PDF reader provides. So Chinese labels, merchant names and model names
render with no font file shipped and no system font to install on a fresh station. Text is
written in runs: characters Helvetica can show (Windows-1252) in Helvetica, every other
character (CJK and the rest) in STSong-Light, so a mixed line like "PAX A920 深圳市…" reads well.

**Untrusted text**: every value passes :func:`clean_text` (no control or bidi characters) and is
escaped for reportlab's paragraph markup (``&``, ``<``, ``>``), so a model name cannot inject
markup. Long device text is cut and long lists are shortened (saying how many were left out),
so a hostile or unusual certificate still fits two pages instead of growing without bound.

**Deterministic**: the same content, language, organisation and logo give the same bytes
(reportlab's invariant mode), like the signed JSON re-issued from the ledger.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, SimpleDocTemplate
from reportlab.platypus.doctemplate import LayoutError

from posdiag.drivers.i18n import _, language
from posdiag.drivers.text import clean_text

from ..logs import get_logger
from .pdf_story import BUDGETS, CJK_FONT, GREY, LATIN, MARGIN, MAX_PAGES, Budget, latin, story
from .view import get, is_missing, text

__all__ = ["CJK_FONT", "MAX_LOGO_BYTES", "MAX_PAGES", "drawn_text", "page_count", "render_pdf"]

log = get_logger(__name__)

MAX_LOGO_BYTES = 4 * 1024 * 1024  # a depot logo is a few kB; more is a mistake, not a logo
MAX_LOGO_PIXELS = 16_000_000
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")

_font_lock = threading.Lock()
# reportlab does not promise thread safety; a station wipes in parallel threads, and a page
# takes a few tens of milliseconds: one rendering at a time.
_render_lock = threading.Lock()


def _register_cjk() -> None:
    """Register the built-in CJK font once per process (stations render from many threads).

    Streams are written Flate-compressed in binary, without reportlab's default ASCII85 layer:
    that layer only made the file 7-bit clean (for mail gateways of the 1990s), costs a fifth
    of a page's rendering time in pure Python, and every PDF reader takes binary streams.
    """
    from reportlab import rl_config

    with _font_lock:
        rl_config.useA85 = 0
        if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


@dataclass(frozen=True)
class _Logo:
    """A logo file read and checked once, drawn in each rendering attempt."""

    data: bytes
    width: float
    height: float

    def image(self) -> Image:
        return Image(io.BytesIO(self.data), width=self.width, height=self.height)


def _read_logo(logo: Path | None) -> _Logo | None:
    """The depot's logo scaled to the header, or None (with a warning) when it cannot be used.

    A broken logo never stops a certificate: the page is printed without it.
    """
    if logo is None:
        return None
    try:
        path = Path(logo)
        if path.stat().st_size > MAX_LOGO_BYTES:
            raise ValueError(f"larger than {MAX_LOGO_BYTES // (1024 * 1024)} MB")
        data = path.read_bytes()[: MAX_LOGO_BYTES + 1]
        if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
            raise ValueError("not a PNG or JPEG file")
        from reportlab.lib.utils import ImageReader

        reader = ImageReader(io.BytesIO(data))
        width, height = reader.getSize()
        if width <= 0 or height <= 0:
            raise ValueError("an empty image")
        if width * height > MAX_LOGO_PIXELS:  # a few kB can unpack to gigabytes
            raise ValueError(f"{width}x{height} pixels is too large for a logo")
        reader.getRGBData()  # decodes it: a truncated or corrupt file fails here, not mid-page
        scale = min(40 * mm / width, 16 * mm / height)
        return _Logo(data, width * scale, height * scale)
    except Exception as exc:  # any unreadable image (PIL raises its own kinds): no logo
        log.warning("certificate.logo_unusable", path=str(logo), error=str(exc)[:200])
        return None


def _draw_text(canvas: Canvas, x: float, y: float, value: str, size: float) -> None:
    """Draw a line in runs (Helvetica / CJK), as paragraphs are written."""
    for is_latin, chunk in groupby(value, key=latin):
        piece = "".join(chunk)
        font = LATIN if is_latin else CJK_FONT
        canvas.setFont(font, size)
        canvas.drawString(x, y, piece)
        x += pdfmetrics.stringWidth(piece, font, size)


def _render(
    cert: Mapping[str, Any],
    sig: Any,
    budget: Budget,
    depot: Any,
    logo: _Logo | None,
    *,
    compress: bool,
) -> tuple[bytes, int]:
    """One rendering attempt: the PDF bytes and how many pages they have."""
    report_id = clean_text(cert.get("report_id") or "", 80)
    title = _("Certificate of Sanitization")
    buffer = io.BytesIO()

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFillColor(GREY)
        line = _("{title} · {report_id} · page {page}").format(
            title=title, report_id=report_id, page=doc.page
        )
        _draw_text(canvas, MARGIN, 8 * mm, line, 6.5)
        canvas.restoreState()

    media = get(cert, "media") or {}
    subject = " ".join(
        text(part, 120)
        for part in (get(media, "manufacturer"), get(media, "model"), get(media, "serial_number"))
        if not is_missing(part)
    )
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"{title} {report_id}".strip(),
        author=text(depot, 120) if not is_missing(depot) else "posdiag",
        subject=subject,
        creator="posdiag",
        producer="posdiag",
        invariant=1,
        pageCompression=1 if compress else 0,
        lang="zh-CN" if language() == "zh_CN" else "en",
    )
    flowables = story(cert, sig, budget, depot, logo.image() if logo else None)
    doc.build(flowables, onFirstPage=on_page, onLaterPages=on_page)
    data = buffer.getvalue()
    return data, page_count(data)


def page_count(pdf: bytes) -> int:
    """How many pages a PDF reportlab wrote has (its ``/Type /Page`` objects)."""
    return len(_PAGE_OBJECT.findall(pdf))


def render_pdf(
    document: Mapping[str, Any],
    *,
    organisation: str | None = None,
    logo: Path | None = None,
    compress: bool = True,
) -> bytes:
    """The certificate as an A4 PDF: one page for a typical wipe, never more than two.

    Args:
        document: a signed document (``{"certificate": …, "signature": …}``); unsigned content
            is rendered with a warning that it is not signed.
        organisation: the depot's name for the header (station settings); the certificate's
            own organisation when None.
        logo: a PNG or JPEG printed in the header (station settings); one that cannot be read
            is left out with a warning, never stopping the certificate.
        compress: compress page streams (False: text stays readable in the bytes, for tests).

    Returns:
        The PDF bytes; the same for the same inputs and language.
    """
    _register_cjk()
    cert = document.get("certificate", document) if isinstance(document, Mapping) else {}
    cert = cert if isinstance(cert, Mapping) else {}
    sig = document.get("signature") if isinstance(document, Mapping) else None
    depot = organisation if not is_missing(organisation) else get(cert, "person", "organisation")
    with _render_lock:
        return _fitted(cert, sig, depot, _read_logo(logo), compress=compress)


def _fitted(
    cert: Mapping[str, Any], sig: Any, depot: Any, logo: _Logo | None, *, compress: bool
) -> bytes:
    """The first rendering that fits its budget's pages, tightening the budget as needed."""
    data = b""
    for budget in BUDGETS:
        try:
            data, pages = _render(cert, sig, budget, depot, logo, compress=compress)
        except LayoutError as exc:  # something too tall for a page: tighten the budget
            log.info("certificate.pdf_layout", error=str(exc)[:200])
            continue
        if pages <= budget.pages:
            return data
    log.warning("certificate.pdf_long", report_id=cert.get("report_id"))
    if not data:
        data, _pages = _render(cert, sig, BUDGETS[-1], depot, None, compress=compress)
    return data


_STREAM = re.compile(rb"<<(.*?)>>\s*stream\r?\n(.*?)endstream", re.S)


def drawn_text(pdf: bytes) -> str:
    """A PDF of ours with every stream decoded in place (ASCII85, Flate), as searchable text.

    reportlab compresses its page streams (and ASCII85-encodes them unless told not to), so a
    plain byte search for a secret or a control character in a certificate PDF would search
    compressed bytes; the campaign's sweeps and the tests search this instead. Latin text is in
    the ``(...) Tj`` operands as written; CJK text is CID codes (a secret is digits and Latin
    letters, drawn in Helvetica or Courier). A stream that does not decode stays as it was.
    """
    import base64
    import zlib

    def decoded(match: re.Match[bytes]) -> bytes:
        head, data = match.group(1), match.group(2)
        try:
            if b"ASCII85Decode" in head:
                text = data.strip().removesuffix(b"~>")
                data = base64.a85decode(text, ignorechars=b" \t\r\n")
            if b"FlateDecode" in head:
                # binary streams end with the end-of-line before "endstream": the decompressor
                # stops at the end of its own data and leaves those bytes unused
                data = zlib.decompressobj().decompress(data)
        except ValueError:  # zlib.error and binascii.Error are ValueErrors: keep the raw bytes
            return match.group(0)
        return b"<<" + head + b">>\nstream\n" + data + b"\nendstream"

    return _STREAM.sub(decoded, pdf).decode("latin-1")
