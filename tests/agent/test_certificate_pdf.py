"""The PDF certificate: one page for a typical wipe, two at most, CJK glyphs, hostile text inert.

PDFs are checked through their bytes: rendered uncompressed (``compress=False``) the text drawn
is in the page streams as written, so a serial, a fingerprint or an escaped ``<b>`` can be
found; fonts are named in the font resources (``/BaseFont /STSong-Light``). Where poppler's
``pdftoppm`` is installed, a page is also rasterised and must not be blank.
"""

from __future__ import annotations

import gettext
import json
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reportlab.lib.rl_accel import escapePDF

from posdiag.agent.certificate import (
    StationKey,
    render_pdf,
    sign_certificate,
    write_certificate_files,
)
from posdiag.agent.certificate.pdf import CJK_FONT, MAX_PAGES, page_count
from posdiag.agent.certificate.pdf import drawn_text as decoded_pdf
from posdiag.drivers import i18n
from posdiag.drivers.i18n import set_language

from .test_certificate import SERIAL, STEPS, content, report_json

MERCHANT = "深圳市福田区好又多便利店"
SUNMI_ADDRESS = "adb+sim://activated?model=sunmi-p2"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc0f0000003010100c9fe92ef0000000049454e44ae426082"
)


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    set_language("en")
    yield
    set_language("en")


@pytest.fixture
def key() -> StationKey:
    return StationKey.generate()


def sign(key: StationKey, **overrides: Any) -> dict[str, Any]:
    return sign_certificate(content(**overrides), key)


_SHOWN = re.compile(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj|(T\*)|(ET)", re.DOTALL)
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)", re.DOTALL)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _unescape(literal: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return _SIMPLE.get(code, code)

    return _ESCAPE.sub(one, literal)


def drawn_text(pdf: bytes) -> str:
    """The Latin text an uncompressed PDF draws: a paragraph's pieces joined, one per line."""
    parts = []
    for match in _SHOWN.finditer(pdf):
        if match.group(1) is not None:
            parts.append(_unescape(match.group(1)).decode("cp1252", "replace"))
        else:
            parts.append(" " if match.group(2) else "\n")
    return "".join(parts)


def cjk(text: str) -> bytes:
    """How ``text`` appears in a page stream when drawn in the CJK font (UCS-2, escaped)."""
    return escapePDF(text.encode("utf-16-be")).encode("latin-1")


def inflate(pdf: bytes) -> bytes:
    """The PDF with its streams decoded in place, to search what its pages draw."""
    return decoded_pdf(pdf).encode("latin-1")


def test_page_streams_are_binary_flate_without_the_ascii85_layer(key: StationKey) -> None:
    pdf = render_pdf(sign(key))
    assert b"/FlateDecode" in pdf
    assert b"ASCII85Decode" not in pdf
    assert b"Certificate" in inflate(pdf)  # every stream still decodes


def test_a_typical_certificate_is_one_a4_page(key: StationKey) -> None:
    document = sign(key)
    pdf = render_pdf(document, compress=False)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert page_count(pdf) == 1
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf  # A4
    drawn = drawn_text(pdf)
    for text in (
        SERIAL,
        key.fingerprint,
        "Certificate of Sanitization",
        "ERASED WITH EXCEPTIONS",
        f"posdiag verify {document['certificate']['report_id']}.json",
        "****2000",  # the masked terminal ID, as on the page
        "NIST SP 800-88",
        "Jana Nováková",
    ):
        assert text in drawn, text
    assert "52502000" not in drawn and b"52502000" not in pdf  # never the raw terminal ID
    assert CJK_FONT.encode() not in pdf  # Latin text only: Helvetica, nothing else


def test_compressed_output_holds_the_same_text(key: StationKey) -> None:
    document = sign(key)
    pdf = render_pdf(document)
    assert b"ERASED WITH EXCEPTIONS" not in pdf  # compressed: not readable as is
    assert "ERASED WITH EXCEPTIONS" in drawn_text(inflate(pdf))
    assert key.fingerprint in drawn_text(inflate(pdf))


def test_rendering_is_deterministic(key: StationKey) -> None:
    document = sign(key)
    assert render_pdf(document) == render_pdf(document)


def test_chinese_data_is_drawn_with_the_builtin_cjk_font(key: StationKey) -> None:
    report = report_json(model="A920 智能POS")
    document = sign(key, report=report, organisation=MERCHANT, operator="王小明")
    pdf = render_pdf(document, compress=False)
    assert f"/BaseFont /{CJK_FONT}".encode() in pdf
    assert b"/Encoding /UniGB-UCS2-H" in pdf
    assert b"Adobe" in pdf and b"GB1" in pdf  # the CID system every reader provides
    assert b"/FontFile" not in pdf  # nothing embedded: the font is built into readers
    assert page_count(pdf) == 1
    # Latin runs stay in Helvetica: the serial is still plain text in the page stream.
    assert SERIAL.encode() in pdf
    # The merchant name and the model's Chinese part are drawn as UCS-2 codes of the CJK font.
    assert cjk(MERCHANT) in pdf
    assert cjk("智能") in pdf
    assert cjk("王小明") in pdf


class _FakeChinese(gettext.NullTranslations):
    """Stands in for the zh_CN catalogue until it holds these labels."""

    def gettext(self, message: str) -> str:
        return {"Certificate of Sanitization": "数据清除证书", "Serial number": "序列号"}.get(
            message, message
        )


def test_chinese_labels_use_the_cjk_font_even_for_latin_data(
    key: StationKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = sign(key)
    assert CJK_FONT.encode() not in render_pdf(document, compress=False)
    set_language("zh_CN")
    monkeypatch.setattr(i18n, "_translations", _FakeChinese())
    pdf = render_pdf(document, compress=False)
    assert f"/BaseFont /{CJK_FONT}".encode() in pdf
    assert cjk("数据清除证书") in pdf
    assert b"/Lang (zh-CN)" in pdf
    assert page_count(pdf) == 1


def test_a_huge_certificate_stays_within_two_pages(key: StationKey) -> None:
    steps = [
        {
            "name": f"clear:com.example.app{i}",
            "erases": "app data " * 40,
            "status": "failed",
            "verified": False,
            "detail": "x" * 1000,
        }
        for i in range(120)
    ]
    exceptions = [f"exception {i}: " + "why " * 250 for i in range(60)]
    document = sign(key, steps=steps, exceptions=exceptions, outcome="not_erased")
    pdf = render_pdf(document, compress=False)
    assert 1 <= page_count(pdf) <= MAX_PAGES
    drawn = drawn_text(pdf)
    assert "more steps: see the signed record" in drawn
    assert "more exceptions: see the signed record" in drawn
    assert "clear:com.example.app0" in drawn
    assert key.fingerprint in drawn  # the signature block is never what gets cut


def test_one_enormous_word_does_not_break_the_layout(key: StationKey) -> None:
    steps = [{**STEPS[0], "detail": "W" * 1000, "erases": "E" * 1000}]
    document = sign(key, steps=steps, location="L" * 1000, outcome="erased", exceptions=[])
    pdf = render_pdf(document, compress=False)
    assert 1 <= page_count(pdf) <= MAX_PAGES


def test_hostile_text_is_shown_not_interpreted(key: StationKey) -> None:
    hostile = '<b>bold</b> & <font name="Courier">x</font> <img src="/etc/passwd"/>'
    steps = [{**STEPS[0], "detail": "ok\x1b[31m red\x07"}, STEPS[1], STEPS[2]]
    document = sign(key, report=report_json(model=hostile), steps=steps, operator="Jana <i>")
    pdf = render_pdf(document, compress=False)
    drawn = drawn_text(pdf)
    # Drawn literally (a markup tag would have been consumed, the image loaded).
    assert "<b>bold</b> & <font" in drawn
    assert "Jana <i>" in drawn
    assert b"/Subtype /Image" not in pdf
    assert "\x1b" not in drawn and "\x07" not in drawn and b"\x1b" not in pdf
    assert "ok red" in drawn
    # Unsigned or damaged documents are rendered too, with the warning.
    unsigned = render_pdf({"certificate": {"media": {"model": "<b>"}}}, compress=False)
    assert "NOT SIGNED" in drawn_text(unsigned) and "<b>" in drawn_text(unsigned)


def test_organisation_and_logo_go_in_the_header(key: StationKey, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG_1PX)
    pdf = render_pdf(sign(key), organisation="Depot Nord", logo=logo, compress=False)
    assert "Depot Nord" in drawn_text(pdf)
    assert b"/Subtype /Image" in pdf
    assert b"/Author (Depot Nord)" in pdf


def test_an_unusable_logo_is_left_out(key: StationKey, tmp_path: Path) -> None:
    document = sign(key)
    not_an_image = tmp_path / "logo.png"
    not_an_image.write_text("<svg>not a PNG</svg>")
    broken_png = tmp_path / "broken.png"
    broken_png.write_bytes(PNG_1PX[:30])
    for logo in (not_an_image, broken_png, tmp_path / "missing.png"):
        pdf = render_pdf(document, logo=logo, compress=False)
        assert page_count(pdf) == 1
        assert b"/Subtype /Image" not in pdf


def test_the_pdf_is_written_beside_the_json_privately(key: StationKey, tmp_path: Path) -> None:
    document = sign(key, report=report_json(model="A920 智能POS"))
    files = write_certificate_files(document, tmp_path / "certs", organisation=MERCHANT)
    assert files.pdf == files.json.with_suffix(".pdf")
    assert stat.S_IMODE(files.pdf.stat().st_mode) == 0o600
    data = files.pdf.read_bytes()
    assert data == render_pdf(document, organisation=MERCHANT)
    assert cjk(MERCHANT) in inflate(data)


def _dark_fraction(pgm: bytes) -> float:
    """Share of dark pixels in a binary PGM (P5) image."""
    magic, width, height, maxval, pixels = pgm.split(maxsplit=4)
    assert magic == b"P5" and int(maxval) == 255
    count = int(width) * int(height)
    return sum(1 for value in pixels[:count] if value < 128) / count


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
@pytest.mark.parametrize("chinese", [False, True])
def test_the_page_renders_with_poppler(key: StationKey, tmp_path: Path, chinese: bool) -> None:
    if chinese:
        set_language("zh_CN")
        document = sign(key, report=report_json(model="A920 智能POS"), organisation=MERCHANT)
    else:
        document = sign(key)
    pdf = tmp_path / "cert.pdf"
    pdf.write_bytes(render_pdf(document))
    done = subprocess.run(
        ["pdftoppm", "-r", "40", "-gray", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (image,) = tmp_path.glob("p*.pgm")
    dark = _dark_fraction(image.read_bytes())
    assert 0.01 < dark < 0.5, dark  # text and rules on white: neither blank nor a black box
    assert b"Syntax Error" not in done.stderr


def test_stations_render_from_parallel_threads(key: StationKey) -> None:
    from concurrent.futures import ThreadPoolExecutor

    documents = [sign(key, location=f"bench {i}") for i in range(6)]
    expected = [render_pdf(document) for document in documents]
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(render_pdf, documents)) == expected


def test_a_logo_that_unpacks_to_gigapixels_is_refused_before_decoding(
    key: StationKey, tmp_path: Path
) -> None:
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # a few kB of PNG, 400 megapixels
    assert bomb.stat().st_size < 200_000
    pdf = render_pdf(sign(key), logo=bomb, compress=False)
    assert page_count(pdf) == 1
    assert b"/Subtype /Image" not in pdf


@pytest.mark.parametrize(
    "address",
    ["zvt+sim://activated", "adb+sim://activated?model=pax-a920", SUNMI_ADDRESS],
)
def test_a_real_wipes_pdf_is_one_page(cli_home: Path, address: str) -> None:
    """The simulated terminals' wipes, as an operator runs them: the PDF is beside the JSON."""
    from click.testing import CliRunner

    from posdiag.agent import cli

    args = ["wipe", address, "--operator", "Jana", "--organisation", "Depot Nord", "--yes"]
    result = CliRunner().invoke(cli.main, [*args, "--json"])
    assert result.exit_code in (0, 1), result.output
    certificate = Path(json.loads(result.stdout)["certificate"])
    pdf = certificate.with_suffix(".pdf")
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600
    data = pdf.read_bytes()
    assert page_count(data) == 1
    assert "Depot Nord" in drawn_text(inflate(data))
