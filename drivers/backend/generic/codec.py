"""The wire of a profile-described platform, both sides (sans-IO).

Request (always ``POST <operation path>``), a flat set of string fields:

* ``json`` body: one JSON object, UTF-8, ``Content-Type: application/json;charset=utf-8``;
* ``form`` body: ``application/x-www-form-urlencoded;charset=utf-8``, UTF-8 percent-encoding.

The fields are the transport's ``constants``, the operation's ``constants``, the terminal field
(``sn_field`` or ``tusn_field``), the agent number (``agent_field``), the timestamp
(``timestamp_field``, e.g. ``1700000000000`` or ``20231115061320``), a nonce, and last the
signature (``signing.field``) over all of them (signing.py).

Answer: one JSON object. Its business code and message sit at the profile's dotted paths
(``code``, ``msg``; ``head.retCode`` style nesting works too); the query's fields likewise
(``data.bindStatus``; a digit segment indexes a list: ``data.list.0.bindStatus``). A signed
answer carries the signature in the top-level ``signing.field`` over its other top-level fields.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .profile import Profile, Signing
from .signing import value_text

__all__ = [
    "MISSING",
    "Envelope",
    "decode_request",
    "encode_request",
    "get_path",
    "read_envelope",
    "scalar",
    "set_path",
    "timestamp",
]

MISSING: Any = object()
"""What :func:`get_path` returns when the path leads nowhere."""
MAX_SCALAR = 1024


@dataclass(frozen=True)
class Envelope:
    """An answer's business code and message, and the whole document."""

    code: str | None
    message: str
    document: dict[str, Any]

    def ok(self, profile: Profile) -> bool:
        """True when the code is one of the profile's success values."""
        return self.code is not None and self.code in profile.transport.success_values


def get_path(document: object, path: str) -> Any:
    """The value at a dotted path, or :data:`MISSING` (never raises on any JSON shape)."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and len(part) < 6:
            index = int(part)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path, creating the objects on the way (the simulator's answers)."""
    parts = path.split(".")
    current = document
    for part in parts[:-1]:
        nxt = current.get(part)
        if not isinstance(nxt, dict):
            nxt = current[part] = {}
        current = nxt
    current[parts[-1]] = value


def scalar(value: object) -> str | None:
    """A JSON scalar as text (None for null or missing); objects and arrays are not scalars.

    Raises:
        TypeError: an object or array where a scalar belongs (the caller names the path).
    """
    if value is None or value is MISSING:
        return None
    if isinstance(value, dict | list):
        raise TypeError("not a scalar")
    text = value_text(value)
    return text[:MAX_SCALAR]


def timestamp(signing: Signing, now: float | None = None) -> str:
    """The request timestamp in the profile's format (strftime patterns in its UTC offset)."""
    moment = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    if signing.timestamp_format == "unix":
        return str(int(moment.timestamp()))
    if signing.timestamp_format == "unix_ms":
        return str(int(moment.timestamp() * 1000))
    zone = timezone(timedelta(minutes=signing.timestamp_utc_offset_min))
    return moment.astimezone(zone).strftime(signing.timestamp_format)


def nonce() -> str:
    """A fresh random nonce (32 hex digits)."""
    return secrets.token_hex(16)


def encode_request(profile: Profile, params: Mapping[str, str]) -> tuple[bytes, str]:
    """The request body and its content type."""
    if profile.transport.body == "form":
        body = urlencode(list(params.items()), encoding="utf-8").encode("ascii")
        return body, "application/x-www-form-urlencoded;charset=utf-8"
    body = json.dumps(dict(params), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return body, "application/json;charset=utf-8"


def decode_request(profile: Profile, body: bytes) -> dict[str, Any]:
    """A request's fields, as a platform reads them (the simulator's side).

    Raises:
        ValueError: not UTF-8, not the profile's body format, or not a flat object.
    """
    text = body.decode("utf-8")
    if profile.transport.body == "form":
        return dict(
            parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=256)
        )
    try:
        document = json.loads(text)
    except RecursionError:
        raise ValueError("too deeply nested") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


def read_envelope(profile: Profile, document: object) -> Envelope | None:
    """The answer's code and message, or None when the document is not the profile's envelope.

    A numeric code (``0``, ``200``) is read as its decimal text, so ``"200"`` in the profile
    matches either. The message is returned raw: the caller sanitises it before quoting it.
    """
    if not isinstance(document, dict):
        return None
    try:
        code = scalar(get_path(document, profile.transport.success_field))
    except TypeError:
        return None
    if code is None:
        return None
    message = ""
    if profile.transport.message_field:
        raw = get_path(document, profile.transport.message_field)
        if isinstance(raw, str | int | float):
            message = value_text(raw)[:MAX_SCALAR]
    return Envelope(code=code, message=message, document=document)
