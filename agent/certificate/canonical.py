"""The canonical form certificates are signed and stored in: RFC 8785 (JCS), and a strict parser.

RFC 8785, the JSON Canonicalization Scheme, is a published rule for writing one JSON value as
exactly one byte string: object members sorted by the UTF-16 code units of their names, no
whitespace, strings with the minimal escapes, numbers as ECMAScript prints them. Anyone can
reproduce it with an off-the-shelf implementation (we use Trail of Bits' ``rfc8785``), so a third
party checks a certificate without posdiag's code.

The parser is the other half: a file is read back only when it could have come from JCS
(no duplicate keys, no NaN/Infinity, no lone surrogates, no number JCS cannot represent), so two
readers can never see different content in the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from .errors import CertificateError

__all__ = ["canonical_json", "legacy_canonical_json", "parse_strict"]


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` by RFC 8785 (JCS): the bytes signatures are computed over and stored.

    The same content always gives the same bytes, whatever order it was built in.

    Args:
        obj: JSON-compatible data (dicts with string keys, lists, strings, numbers, bools, None).

    Returns:
        The canonical UTF-8 bytes.

    Raises:
        CertificateError: when ``obj`` holds something JCS cannot represent exactly (NaN,
            infinity, integers beyond 2**53, lone surrogates, non-string keys, other types).
    """
    try:
        return rfc8785.dumps(obj)
    except (ValueError, TypeError, RecursionError) as exc:
        # CanonicalizationError and UnicodeEncodeError (lone surrogates) are ValueErrors.
        if isinstance(exc, UnicodeError) or isinstance(exc.__cause__, UnicodeError):
            why = "it holds a lone surrogate (not Unicode text)"
        elif isinstance(exc, RecursionError):
            why = "it is nested too deeply"
        else:
            why = str(exc)
        raise CertificateError(f"certificate content is not plain JSON data: {why}") from exc


def legacy_canonical_json(obj: Any) -> bytes:
    """The canonical form of ``posdiag.certificate/1``: sorted keys, no whitespace, raw UTF-8.

    Kept only to verify certificates issued before JCS; it is close to, but not exactly, RFC
    8785 (key order by code point, Python's number and escape spelling).

    Raises:
        CertificateError: when ``obj`` holds something JSON cannot represent exactly.
    """
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise CertificateError(f"certificate content is not plain JSON data: {exc}") from exc


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


def _reject_constant(name: str) -> Any:
    """``json.loads`` hook for ``NaN``/``Infinity``/``-Infinity``: not JSON (RFC 8259), refused."""
    raise ValueError(f"{name} is not a JSON number")


def parse_strict(data: bytes | str, *, check_jcs: bool = True) -> Any:
    """Parse certificate bytes the way only JCS output could be read.

    Refuses invalid UTF-8, a byte order mark, duplicate keys, ``NaN``/``Infinity`` and anything
    JCS itself cannot write (lone surrogates, integers beyond 2**53, numbers that overflow to
    infinity), each with a reason.

    Args:
        data: the file's bytes (or its text).
        check_jcs: also prove JCS can write the value; a caller that canonicalises the result
            anyway (and handles its :class:`CertificateError`) skips the second pass.

    Returns:
        The parsed JSON value.

    Raises:
        ValueError: with a one-line reason when the data is not strict JSON.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if raw.startswith(b"\xef\xbb\xbf"):
            raise ValueError("the file starts with a byte order mark")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    try:
        value = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not check_jcs:
        return value
    try:
        rfc8785.dumps(value)
    except (ValueError, TypeError, RecursionError) as exc:
        if isinstance(exc, UnicodeError) or isinstance(exc.__cause__, UnicodeError):
            raise ValueError("holds a lone surrogate (not Unicode text)") from None
        raise ValueError(f"holds a value JCS cannot represent: {exc}") from None
    return value
