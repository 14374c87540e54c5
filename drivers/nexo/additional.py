"""``AdditionalResponse`` and ``EventDetails``: the free key/value strings of nexo messages.

Adyen writes them in one of two encodings (reference nexo.md §2), and a reader must take both:

- form-encoded, as in every official example::

      batteryLevel=100%25&firmwareVersion=adyen_v1_49p5&networkProfile=W3sg...&unconfirmedBatchCount=0

- a Base64 string whose decoding is a JSON object::

      eyJtZXNzYWdlIjoiVGVybWluYWwgaXMgbm90IHJlYWNoYWJsZSJ9
      (that is {"message":"Terminal is not reachable"})

Inside the form encoding, ``networkProfile`` is itself Base64 of a JSON *array*
(``[{"Address": "192.168.2.2", "Iface": "wlan0"}]``). Terminals do not always percent-encode the
``+`` of Base64, which form decoding turns into a space; the network profile reader puts it
back. Everything here is device input: parsing never raises, it yields less (an empty mapping,
an empty profile) when the text is garbage, and bounds the number of entries.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .errors import NexoDecodeError
from .jsonwire import dumps, loads_any

__all__ = [
    "MAX_ADDITIONAL_FIELDS",
    "NetworkProfileEntry",
    "b64decode_lenient",
    "encode_additional",
    "encode_network_profile",
    "parse_additional",
    "parse_network_profile",
]

MAX_ADDITIONAL_FIELDS = 128
"""Most key/value pairs read from one AdditionalResponse; the rest is ignored."""
MAX_NETWORK_PROFILE = 32
"""Most network interfaces read from one networkProfile."""

_WHITESPACE = re.compile(r"\s+", re.ASCII)
_BASE64_JSON_START = re.compile(r"\s*\{")


def b64decode_lenient(text: object) -> bytes | None:
    """Decode standard Base64, ignoring whitespace and missing padding; None when it is not.

    Strict about the alphabet (``validate=True``): a form-encoded string must never be
    mistaken for Base64.
    """
    if not isinstance(text, str):
        return None
    compact = _WHITESPACE.sub("", text)
    if not compact or not compact.isascii():
        return None
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _flatten(value: object) -> str:
    """A JSON value as the text a form field would carry: strings as is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _parse_base64_json(text: str) -> dict[str, str] | None:
    """The object a Base64-JSON AdditionalResponse holds, flattened to strings; None if not one."""
    raw = b64decode_lenient(text)
    if raw is None or not _BASE64_JSON_START.match(raw[:64].decode("latin-1")):
        return None
    try:
        value = loads_any(raw)
    except NexoDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    return {str(key): _flatten(item) for key, item in list(value.items())[:MAX_ADDITIONAL_FIELDS]}


def parse_additional(text: object) -> dict[str, str]:
    """Read an AdditionalResponse (or EventDetails) in either encoding; never raises.

    Base64 JSON is tried first: no form-encoded text with a ``=`` between key and value is valid
    Base64 that decodes to ``{``. Form fields are decoded with blank values kept; when a key
    repeats, the first value wins (a later copy cannot override what a check already read).

    Returns:
        Raw (uncleaned) strings; the typed readers clean what they show.
    """
    if not isinstance(text, str) or not text:
        return {}
    decoded = _parse_base64_json(text)
    if decoded is not None:
        return decoded
    parts = text.split("&", MAX_ADDITIONAL_FIELDS)[:MAX_ADDITIONAL_FIELDS]
    result: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl("&".join(parts), keep_blank_values=True):
        result.setdefault(key, value)
    return result


def encode_additional(
    values: Mapping[str, str], encoding: Literal["form", "base64json"] = "form"
) -> str:
    """Write key/value pairs as an AdditionalResponse: form-encoded or Base64 of a JSON object."""
    if encoding == "form":
        return urllib.parse.urlencode(
            [(str(key), str(value)) for key, value in values.items()], quote_via=urllib.parse.quote
        )
    if encoding == "base64json":
        return base64.b64encode(dumps(dict(values))).decode("ascii")
    raise ValueError(f"unknown AdditionalResponse encoding {encoding!r}")


@dataclass(frozen=True)
class NetworkProfileEntry:
    """One interface of Adyen's ``networkProfile``: its address and interface name (raw)."""

    address: str
    iface: str


def parse_network_profile(text: object) -> tuple[NetworkProfileEntry, ...]:
    """Decode ``networkProfile`` (Base64 of a JSON array of {Address, Iface}); garbage → ().

    Form decoding turns an unescaped ``+`` into a space, so spaces are read back as ``+``.
    Entries that are not objects with string fields are skipped; at most
    :data:`MAX_NETWORK_PROFILE` are kept. The strings are raw: callers clean them.
    """
    if not isinstance(text, str):
        return ()
    raw = b64decode_lenient(text.strip().replace(" ", "+"))
    if raw is None:
        return ()
    try:
        value = loads_any(raw)
    except NexoDecodeError:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return ()
    entries: list[NetworkProfileEntry] = []
    for item in value:
        if len(entries) >= MAX_NETWORK_PROFILE:
            break
        if not isinstance(item, dict):
            continue
        address, iface = item.get("Address"), item.get("Iface")
        if isinstance(address, str) or isinstance(iface, str):
            entries.append(
                NetworkProfileEntry(
                    address if isinstance(address, str) else "",
                    iface if isinstance(iface, str) else "",
                )
            )
    return tuple(entries)


def encode_network_profile(entries: Sequence[NetworkProfileEntry]) -> str:
    """Write a ``networkProfile`` value: Base64 of the JSON array Adyen's example shows."""
    array = [{"Address": entry.address, "Iface": entry.iface} for entry in entries]
    text = json.dumps(array, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
