"""Bounded, strict JSON for nexo messages: the only way bytes from a peer become Python values.

The nexo wire is one JSON object per HTTP body (reference nexo.md §1–2). Python's :mod:`json` is
lenient where a peer can hurt us (NaN, repeated keys, unlimited nesting and size), so every
message goes through :func:`loads`, which turns every problem into a
:class:`~.errors.NexoDecodeError` and never raises anything else. :func:`dumps` writes the
compact form Adyen's libraries send (no spaces, keys in insertion order, UTF-8).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from .errors import NexoDecodeError

__all__ = ["MAX_DEPTH", "MAX_MESSAGE_BYTES", "dumps", "loads", "loads_any"]

MAX_MESSAGE_BYTES = 1 << 20
"""Largest message accepted (1 MiB): a diagnosis reply is a few kilobytes."""
MAX_DEPTH = 32
"""Deepest nesting of objects and arrays accepted; real messages nest about six deep."""

# A JSON string; an unterminated one runs to the end of the text, so that every quote starts
# exactly one match and the scan stays linear (a failing match would be retried at each escaped
# quote inside it: quadratic on a hostile ``"\"\"\"…``).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class _JsonRejected(ValueError):
    """Raised inside the JSON parser's hooks; turned into NexoDecodeError by :func:`loads`."""


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build an object, refusing a repeated key (two parsers could read two different values)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonRejected("a key appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    """Refuse NaN and Infinity: not JSON, and no amount or count may be one."""
    raise _JsonRejected(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    """Parse a JSON number with a fraction, refusing one that overflows to infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise _JsonRejected("a number is too large")
    return value


def _depth(text: str) -> int:
    """Deepest nesting of ``text``, measured before parsing so a deep input costs nothing.

    Strings are removed first (brackets inside them do not nest); for valid JSON the count is
    exact, for broken JSON any answer is fine because the parser rejects it next.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    return max(0, *accumulate(_BRACKET_STEP[ch] for ch in brackets))


def _has_lone_surrogate(value: Any) -> bool:
    """True when a decoded string holds a lone surrogate, which UTF-8 cannot carry."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads_any(data: bytes | bytearray | memoryview, limit: int = MAX_MESSAGE_BYTES) -> Any:
    """Parse bounded, strict JSON of any top-level type (nested values such as a network profile).

    Same rules as :func:`loads` except that the top level need not be an object.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise NexoDecodeError("the message is not bytes")
    if len(data) > limit:
        raise NexoDecodeError(f"the message is larger than {limit} bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise NexoDecodeError("the message is not valid UTF-8") from None
    if _depth(text) > MAX_DEPTH:
        raise NexoDecodeError(f"the message nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs_without_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except _JsonRejected as exc:
        raise NexoDecodeError(str(exc)) from None
    except (ValueError, RecursionError):
        raise NexoDecodeError("the message is not valid JSON") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise NexoDecodeError("the message holds text that is not valid Unicode")
    return value


def loads(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Parse one message body, bounded and strict; every problem is a :class:`NexoDecodeError`.

    Rules: at most :data:`MAX_MESSAGE_BYTES`, nesting at most :data:`MAX_DEPTH`, strict UTF-8,
    a JSON object at the top, no repeated key, no NaN or Infinity (and no number that overflows
    to one), no lone surrogate. Never raises anything else, whatever the bytes.
    """
    value = loads_any(data)
    if not isinstance(value, dict):
        raise NexoDecodeError("the message is not a JSON object")
    return value


def dumps(obj: Mapping[str, Any]) -> bytes:
    """Serialise compactly to UTF-8 JSON, as Adyen's libraries do (no spaces, keys in order).

    Raises ValueError or TypeError for a value JSON cannot carry (NaN, a set): a programming
    error on our side, not device input.
    """
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
