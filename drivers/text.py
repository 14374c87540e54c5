"""The one sanitiser for text a terminal said.

Everything a device reports (model names, serials, SSIDs, file and app names, print lines,
status texts) is untrusted: a faulty or hostile terminal can send ANSI escape sequences that
repaint the operator's screen, bidi overrides that make a serial read backwards, NUL bytes that
truncate a log line, or a megabyte "model name". Every layer (drivers building typed records,
the agent's logs, tables, HTML and CSV) imports this module so there is exactly one definition
of "clean" and it cannot drift between places.

Rules, in order:

1. ``str()`` of the value (bytes are decoded as UTF-8 with replacement); a value whose
   ``__str__`` raises becomes a placeholder instead of an exception.
2. Whole terminal escape sequences are removed as a unit (CSI ``ESC [ ... final``, the string
   types OSC/DCS/SOS/PM/APC up to BEL or ST, and two-character ``ESC x``), so no ``[31m``
   residue is left behind; the 8-bit C1 introducers are treated the same way.
3. Tab, newline, carriage return, vertical tab, form feed and the Unicode line/paragraph
   separators become a space (so a multi-line answer stays readable on one line); every other
   control character (C0, DEL, C1), bidi override/isolate/mark and lone surrogate becomes
   U+FFFD so tampering stays visible; other invisible format characters (category Cf: zero-width
   space, BOM, tag characters, soft hyphen) are dropped.
4. The result is capped at ``limit`` characters, the last one being "…" when something was cut.

The function is idempotent (cleaning clean text changes nothing) and never raises.
"""

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any, Final, ParamSpec, TypeVar

__all__ = [
    "ELLIPSIS",
    "RECORD_LIMIT",
    "REPLACEMENT",
    "clean_record",
    "clean_text",
    "cleaned",
    "csv_cell",
    "mask_identifier",
]

_T = TypeVar("_T")
_P = ParamSpec("_P")

#: Longest text of one field in a typed record (evidence sentences quote device values).
RECORD_LIMIT = 512

ELLIPSIS = "\u2026"
REPLACEMENT = "\ufffd"

#: Raw text longer than this many characters per allowed output character is cut before the
#: regular expressions run, so a 100 MB "line" costs no more than a short one.
_RAW_FACTOR = 8
_RAW_MINIMUM = 4096

_ESCAPE_RE = re.compile(
    # CSI: ESC [ (or 8-bit CSI) parameters, intermediates, an optional final byte.
    "(?:\x1b\\[|\x9b)[0-?]*[ -/]*[@-~]?"
    # String sequences: OSC, DCS, SOS, PM, APC up to BEL, ST (ESC \\ or 8-bit ST) or the end.
    "|(?:\x1b[\\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\\\|\x9c|\\Z)"
    # Any other escape: ESC, intermediates, an optional final byte.
    "|\x1b[ -/]*[0-~]?",
    re.DOTALL,
)

_SPACE_CONTROLS = frozenset("\t\n\r\v\f\u2028\u2029")
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

# Cells a spreadsheet would read as a formula start with one of these (also the full-width forms
# some spreadsheet programs normalise).
_FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def _as_str(value: object) -> str:
    """Return the text of ``value`` without ever raising (a broken ``__str__`` is device data)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _clean_char(ch: str) -> str:
    """Map one character to its safe form (itself, a space, U+FFFD or nothing)."""
    code = ord(ch)
    if 0x20 <= code < 0x7F:
        return ch
    if ch in _SPACE_CONTROLS:
        return " "
    if code < 0x20 or 0x7F <= code <= 0x9F or ch in _BIDI_CONTROLS:
        return REPLACEMENT
    category = unicodedata.category(ch)
    if category == "Cs":
        return REPLACEMENT
    if category == "Cf":
        return ""
    return ch


def clean_text(value: object, limit: int = 256) -> str:
    """Return ``value`` as text that is safe to show, log or store.

    Args:
        value: Anything a terminal said (usually ``str``; bytes are decoded as UTF-8).
        limit: Maximum length of the result in characters (at least 1); longer text is cut and
            ends with "…".

    Returns:
        Text without control characters, escape sequences, bidi overrides, invisible format
        characters or lone surrogates, at most ``limit`` characters long.
    """
    limit = max(1, limit)
    text = _as_str(value)
    cut = False
    raw_cap = max(_RAW_MINIMUM, limit * _RAW_FACTOR)
    if len(text) > raw_cap:
        text, cut = text[:raw_cap], True
    if not (text.isascii() and text.isprintable()):
        text = _ESCAPE_RE.sub("", text)
        text = "".join(_clean_char(ch) for ch in text)
    if cut or len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return text


def csv_cell(value: object, limit: int = 1024) -> str:
    """Return ``value`` cleaned for one CSV cell, neutralising spreadsheet formula injection.

    A cell whose text starts (after any spaces) with ``= + - @``, a tab or a carriage return
    would be evaluated as a formula by spreadsheet programs; such a cell gets a leading
    apostrophe, which spreadsheets show as plain text.

    Args:
        value: The cell's value.
        limit: Maximum length of the cleaned text (before the apostrophe); cells hold whole
            reasons and lists, so the default is larger than :func:`clean_text`'s.

    Returns:
        The cleaned cell text.
    """
    text = clean_text(value, limit)
    stripped = text.lstrip(" ")
    raw_start = _as_str(value)[:1]  # a tab or CR became a space above; the cell is still suspect
    if (stripped and stripped[0] in _FORMULA_STARTS) or raw_start in ("\t", "\r"):
        return "'" + text
    return text


def clean_record(value: _T, limit: int = RECORD_LIMIT) -> _T:
    """Return ``value`` with every string inside it cleaned by :func:`clean_text`.

    Walks dataclass instances (rebuilt with ``dataclasses.replace``, so frozen records work),
    tuples, lists and dicts (keys and values); other values pass unchanged. The families apply it
    to every record a probe returns, so the agent never receives raw device text.

    Args:
        value: a record, a container of records, or a string.
        limit: the length cap of each string.
    """
    cleaned: _T = _clean_any(value, limit)
    return cleaned


_PASSING: Final = frozenset({int, float, bool, type(None), bytes})
"""Types :func:`clean_record` returns as they are, checked first: most fields are these."""

_init_fields: dict[type, tuple[str, ...]] = {}
"""The init fields of each dataclass met, by class: ``dataclasses.fields`` per record was a
tenth of a station's CPU."""


def _dataclass_fields(cls: type) -> tuple[str, ...]:
    names = _init_fields.get(cls)
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.init)
        _init_fields[cls] = names
    return names


def _clean_any(value: Any, limit: int) -> Any:
    """Recursive worker of :func:`clean_record` (typed loosely: it rebuilds any shape).

    A dataclass or tuple whose contents came back unchanged is returned as it is: most device
    text is already clean, and rebuilding every record was most of the cost.
    """
    kind = type(value)
    if kind is str:
        return clean_text(value, limit)
    if kind in _PASSING:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for name in _dataclass_fields(kind):
            old = getattr(value, name)
            new = _clean_any(old, limit)
            if new is not old:
                changes[name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, str):  # a str subclass: cleaned to a plain str
        return clean_text(value, limit)
    if isinstance(value, tuple):
        items = tuple(_clean_any(item, limit) for item in value)
        if kind is tuple and all(n is o for n, o in zip(items, value, strict=True)):
            return value
        return items
    if isinstance(value, list):
        return [_clean_any(item, limit) for item in value]
    if isinstance(value, dict):
        return {_clean_any(k, limit): _clean_any(v, limit) for k, v in value.items()}
    return value


def cleaned(func: Callable[_P, _T]) -> Callable[_P, _T]:
    """Decorate a probe so the record it returns passes through :func:`clean_record`.

    The families put it on every probe of their Terminal, the one place every record leaves
    the drivers, so no record can skip the cleaning whichever parser filled it.
    """

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        return clean_record(func(*args, **kwargs))

    return wrapper


_MASK = "****"


def mask_identifier(value: str | None, keep: int = 4) -> str | None:
    """Hide all but the last ``keep`` characters of a terminal or merchant identifier.

    The prefix is always four asterisks whatever the length, so the mask does not leak how long
    the identifier is; the tail stays so a person can still tell two terminals apart.

    Args:
        value: the identifier; None passes through so "not known" stays visible.
        keep: how many trailing characters stay readable.

    Returns:
        ``"****2000"`` for ``"52002000"``; ``"****"`` when the value is too short to show any of
        it safely; ``""`` for an empty value; None for None.
    """
    if value is None:
        return None
    text = str(value)
    if not text:
        return ""
    if keep <= 0 or len(text) <= keep:
        return _MASK
    return _MASK + text[-keep:]
