"""PAXSTORE Open API request signing, sans I/O: the query string and its HMAC.

Wire layout (third-party system API, reference §1.2)::

    GET /p-market-api/v1/3rdsys/terminal?sysKey=KEY&serialNo=SN&timestamp=1700000000000
    signature: 56BD4430FE26D1F9BC5B31A4554D864EE51850A9C4201F6E6CF372190E810367

* Every request carries the operation's own parameters plus ``sysKey`` (the external system's
  access key) and ``timestamp`` (epoch milliseconds) as query parameters.
* Parameters whose name or value is empty are dropped; each remaining one is written
  ``name=URLEncoder.encode(value, "UTF-8")`` and joined with ``&``.
* The order is the iteration order of the Java ``HashMap`` the vendor SDK collects them in: not
  sorted, not insertion order. :func:`sdk_order` reproduces it (bucket by the spread
  ``String.hashCode``, insertion order within a bucket), so this client sends byte for byte what
  the Java SDK sends; a server must verify over the raw query it received in any case.
* ``signature`` (an HTTP header, never in the query) is the uppercase hex HMAC-SHA256 of that
  exact string keyed with the UTF-8 secret; servers older than 9.5.0 use HmacMD5.
* The JSON body is not signed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote_plus

__all__ = [
    "ALGORITHMS",
    "build_query",
    "java_string_hash",
    "java_url_encode",
    "sdk_order",
    "sign",
    "signed_query",
]

ALGORITHMS = {"sha256": hashlib.sha256, "md5": hashlib.md5}
"""``signature`` setting → digest: HMAC-SHA256 since SDK 9.5.0, HmacMD5 before."""
_NAME = re.compile(r"[A-Za-z0-9_.]{1,64}")
_JAVA_DEFAULT_CAPACITY = 16
_JAVA_LOAD_FACTOR = 0.75

Pairs = Sequence[tuple[str, str | None]]


def java_url_encode(value: str) -> str:
    """``java.net.URLEncoder.encode(value, "UTF-8")``: space → ``+``, ``* - . _`` kept.

    Python's ``quote_plus`` also keeps ``~``, which Java encodes. A lone surrogate (which Java's
    UTF-8 encoder writes as ``?``) is replaced the same way, so any ``str`` encodes.
    """
    return quote_plus(value, safe="*", encoding="utf-8", errors="replace").replace("~", "%7E")


def java_string_hash(text: str) -> int:
    """``String.hashCode()`` as an unsigned 32-bit number (over UTF-16 code units)."""
    units = text.encode("utf-16-be", errors="surrogatepass")
    value = 0
    for index in range(0, len(units), 2):
        value = (31 * value + int.from_bytes(units[index : index + 2], "big")) & 0xFFFFFFFF
    return value


def sdk_order(pairs: Pairs) -> list[tuple[str, str | None]]:
    """The pairs in the order a Java ``HashMap`` built from them iterates.

    ``pairs`` is in insertion order (the operation's parameters, then ``sysKey`` and
    ``timestamp``, as the SDK adds them). The table grows from 16 buckets while the size exceeds
    three quarters of it; a bucket is ``(h ^ h >>> 16) & (buckets - 1)``; within a bucket the
    insertion order holds (resizing keeps it). Treeified buckets (8+ colliding names in a table of
    64+) do not occur for the API's parameter names.
    """
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("a parameter name appears twice")
    buckets = _JAVA_DEFAULT_CAPACITY
    while len(pairs) > buckets * _JAVA_LOAD_FACTOR:
        buckets *= 2

    def bucket(name: str) -> int:
        code = java_string_hash(name)
        return (code ^ (code >> 16)) & (buckets - 1)

    # sorted() is stable: equal buckets keep their insertion order.
    return sorted(pairs, key=lambda pair: bucket(pair[0]))


def build_query(pairs: Iterable[tuple[str, str | None]]) -> str:
    """The query string of ``pairs`` in the given order, empty names and values dropped.

    Names are the API's own identifiers and are written as they are; values are encoded with
    :func:`java_url_encode`.

    Raises:
        ValueError: a name that is not a plain identifier (it would change the signed string).
    """
    parts = []
    for name, value in pairs:
        if not name or value is None or value == "":
            continue
        if not _NAME.fullmatch(name):
            raise ValueError(f"parameter name {name[:20]!r} is not an identifier")
        parts.append(f"{name}={java_url_encode(value)}")
    return "&".join(parts)


def sign(query: str, secret: str, algorithm: str = "sha256") -> str:
    """Uppercase hex HMAC of the exact query string, keyed with the UTF-8 secret.

    Args:
        query: the string sent as the URL query.
        secret: the external system's secret.
        algorithm: ``sha256`` (SDK 9.5.0 and later) or ``md5`` (earlier servers).

    Raises:
        ValueError: an unknown algorithm.
    """
    digest = ALGORITHMS.get(algorithm)
    if digest is None:
        raise ValueError(f"signature algorithm must be one of {', '.join(ALGORITHMS)}")
    mac = hmac.new(secret.encode("utf-8"), query.encode("utf-8"), digest)
    return mac.hexdigest().upper()


def signed_query(
    params: Pairs,
    key: str,
    timestamp_ms: int,
    secret: str,
    algorithm: str = "sha256",
) -> tuple[str, str]:
    """``(query, signature)`` for one attempt of one operation, as the Java SDK builds them.

    Args:
        params: the operation's own parameters, in the order the SDK adds them.
        key: the access key, sent as ``sysKey``.
        timestamp_ms: the attempt's time in epoch milliseconds.
        secret: the signing secret.
        algorithm: see :func:`sign`.
    """
    pairs = [*params, ("sysKey", key), ("timestamp", str(timestamp_ms))]
    query = build_query(sdk_order(pairs))
    return query, sign(query, secret, algorithm)
