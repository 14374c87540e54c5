r"""The character set of a terminal's text: a property of the terminal, with detection.

ZVT text (print lines, the Status-Enquiry's software version and device name, additional text)
is single-byte text whose character set the protocol does not mark. The spec's default is code
page 437 (PA00P015; ``0x81`` is ``ü``), which Feig units use (the EVerest captures print
``G\x81ltig``); card complete terminals send ISO-8859-1 instead (``0xC4`` is ``Ä``), which read as
CP437 turns "HÄNDLERBELEG" into "H─NDLERBELEG" (Portalum's "known deviations"; real traffic).

So the character set comes from the catalogue entry of the model (``charset`` in
``drivers/catalogue/zvt.toml``), defaults to CP437, and :func:`detect_charset` can overrule it
when the text itself proves otherwise: a known German receipt or printout label that has an
umlaut ("HÄNDLERBELEG", "Währung", "Gültig"…) appears in exactly one of the candidate decodings.
This module is pure functions over bytes (sans-IO): the codec takes the charset as a parameter
and the driver decides which one to pass.

Only character sets that map every one of the 256 byte values to a distinct character are
allowed, so decoding never raises on garbage and the raw bytes can always be recovered from the
text (the driver re-reads a decoded line under another charset after detection).
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterable
from functools import cache
from typing import Final

__all__ = [
    "CANDIDATE_CHARSETS",
    "DEFAULT_CHARSET",
    "KNOWN_LABELS",
    "check_charset",
    "decode_text",
    "detect_charset",
    "encode_text",
]

DEFAULT_CHARSET: Final = "cp437"
"""The spec's character set for ZVT text (PA00P015; reference zvt.md §2 "Characters")."""

CANDIDATE_CHARSETS: Final = ("cp437", "iso8859-1")
"""What detection chooses between: the spec's default and card complete's ISO-8859-1.

ISO-8859-15 differs from ISO-8859-1 only in symbols no German label contains, so it could never
be told apart by a label; a model that needs it says so in the catalogue.
"""

KNOWN_LABELS: Final = (
    "HÄNDLERBELEG",
    "HÄNDLER-BELEG",
    "KUNDENBELEG",
    "Händlerbeleg",
    "Händler",
    "Kassenschnitt",
    "Währung",
    "Gültig",
    "Rückgeld",
    "Rückgeb",
    "Zähler",
    "Gerät",
    "Höchst",
    "Prüf",
    "Schlüssel",
    "Einschränkung",
    "Bestätigung",
)
"""Labels German receipts and printouts carry. Only those with an umlaut can decide between
character sets (ASCII reads the same in all of them); the ASCII ones are kept so the list says
which receipts it was drawn from ("KUNDENBELEG" is the customer's copy of the same receipt)."""

_MAX_SCAN_BYTES: Final = 64 * 1024
"""Detection reads at most this much text: the labels sit in a printout's first lines."""


@cache
def check_charset(name: str) -> str:
    """Return the codec's canonical name if ``name`` is a usable ZVT character set.

    Raises:
        ValueError: the name is no codec, or the codec does not map all 256 byte values to
            distinct characters (UTF-8, CP1252…): such text could fail to decode or lose bytes.
    """
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown character set {name!r}") from None
    every_byte = bytes(range(256))
    try:
        text = every_byte.decode(canonical)
        round_trip = text.encode(canonical)
    except (UnicodeError, ValueError):
        raise ValueError(
            f"character set {name!r} does not map every byte (not single-byte)"
        ) from None
    if len(text) != 256 or round_trip != every_byte:
        raise ValueError(f"character set {name!r} is not a single-byte set ZVT text can use")
    return canonical


def decode_text(raw: bytes, charset: str = DEFAULT_CHARSET) -> str:
    """Decode terminal text in ``charset``; never raises (every byte maps)."""
    return bytes(raw).decode(check_charset(charset))


def encode_text(text: str, charset: str = DEFAULT_CHARSET) -> bytes:
    """Encode text for the wire in ``charset``; characters it lacks become ``?``.

    The simulator prints through this: a "²" or an emoji in a scenario must not crash it, and a
    real terminal without the glyph prints a substitute too.
    """
    return text.encode(check_charset(charset), errors="replace")


@cache
def _folded_labels() -> tuple[str, ...]:
    """The labels that decide between character sets (non-ASCII), case-folded."""
    return tuple(label.casefold() for label in KNOWN_LABELS if not label.isascii())


def _label_hits(text: str) -> int:
    folded = text.casefold()
    return sum(folded.count(label) for label in _folded_labels())


def _letter_score(text: str) -> int:
    r"""Letters between letters count for a decoding, symbols and controls there against it.

    ``ä`` inside "Zähler" is a letter between letters; CP437's ``─`` or ISO-8859-1's C1 control
    ``\x84`` in the same place is not. Used only when no known label decides.
    """
    score = 0
    for index in range(1, len(text) - 1):
        char = text[index]
        if char.isascii():
            continue
        if not (text[index - 1].isalpha() and text[index + 1].isalpha()):
            continue
        score += 1 if unicodedata.category(char).startswith("L") else -1
    return score


def detect_charset(
    raw_lines: Iterable[bytes], candidates: Iterable[str] = CANDIDATE_CHARSETS
) -> str | None:
    r"""The character set the lines are written in, when their text proves it; else None.

    A known label with an umlaut (:data:`KNOWN_LABELS`) found in one decoding and not (as often)
    in the others decides. Without one, non-ASCII letters between letters ("Zähler") against
    symbols or control characters there ("Z─hler", "Z\x84hler") decide, if one decoding wins
    clearly. Pure-ASCII text, or text where no decoding wins, gives None: the caller keeps what
    the catalogue says.

    Args:
        raw_lines: the undecoded print lines.
        candidates: the character sets to choose between (canonical or alias names).
    """
    data = b"\n".join(bytes(line) for line in raw_lines)[:_MAX_SCAN_BYTES]
    if data.isascii():
        return None
    names = [check_charset(name) for name in candidates]
    texts = {name: data.decode(name) for name in names}
    for score in (_label_hits, _letter_score):
        scored = sorted(((score(text), name) for name, text in texts.items()), reverse=True)
        best, runner_up = scored[0], scored[1] if len(scored) > 1 else None
        if best[0] > 0 and (runner_up is None or best[0] > runner_up[0]):
            return best[1]
    return None
