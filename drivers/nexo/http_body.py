"""Reading one HTTP request body that a nexo peer POSTs, bounded in size, count and time.

Two places receive nexo bodies over HTTP: the simulated terminal (requests from POS clients) and
the station's event receiver (EventNotifications from terminals). Both face the same framing —
the official Node library sends ``Transfer-Encoding: chunked`` with no length, .NET and httpx a
``Content-Length`` — and the same hostile peers, so the body is read here once::

    Content-Length: N            N bytes (at most ``max_body``)
    Transfer-Encoding: chunked   { <hex size>[;ext] CRLF <size bytes> CRLF }  0 CRLF
                                 { trailer CRLF }  CRLF

Every refusal is a :class:`BodyError` carrying the HTTP status to answer (400, 411, 413, 408,
501). ``strict`` is the receiver's stance toward unauthenticated peers on a shop LAN: a request
carrying both headers (a smuggling shape), an unknown transfer coding or no length at all is
refused; without it (a simulated terminal taking what clients send), the transfer coding wins,
an unknown one is 501 and a body without a length is empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from io import BufferedIOBase

__all__ = ["BodyError", "read_body"]

_HEX = re.compile(rb"[0-9A-Fa-f]{1,8}")
"""A chunk size: at most 8 hex digits (far beyond any body we accept)."""
MAX_CHUNK_LINE = 1024
"""Longest chunk-size or trailer line."""
MAX_TRAILERS = 32
"""Trailer lines after the last chunk."""
_READ = 65536
"""Largest single read: a peer trickling bytes meets the deadline between reads."""


class BodyError(Exception):
    """The request body cannot be read: answer ``status`` and close.

    Attributes:
        status: the HTTP status to answer.
        reason: a short English reason (for a log or a simulator's ``errors`` reply).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def read_body(
    rfile: BufferedIOBase,
    headers: Mapping[str, str],
    *,
    max_body: int,
    strict: bool,
    arm: Callable[[], None] | None = None,
    max_chunks: int | None = None,
) -> bytes:
    """The body of the request whose ``headers`` were read from ``rfile``.

    Args:
        rfile: the connection's buffered reader, positioned after the headers.
        headers: the request headers (``http.server``'s message object will do).
        max_body: the largest body accepted (413 beyond).
        strict: refuse ambiguous framing (see the module docstring).
        arm: called before every blocking read, e.g. to set the socket timeout to what is left
            of the request's deadline (it raises :class:`BodyError` 408 when none is left).
        max_chunks: the most chunks accepted (400 beyond); None: only ``max_body`` bounds them.

    Raises:
        BodyError: the body is refused; a socket timeout is reported as 408.
    """
    try:
        return _read(rfile, headers, max_body, strict, arm or _unarmed, max_chunks)
    except TimeoutError:
        raise BodyError(408, "request took too long") from None


def _unarmed() -> None:
    """No deadline of its own: the socket's timeout bounds each read."""


def _read(
    rfile: BufferedIOBase,
    headers: Mapping[str, str],
    max_body: int,
    strict: bool,
    arm: Callable[[], None],
    max_chunks: int | None,
) -> bytes:
    transfer = headers.get("Transfer-Encoding")
    length = headers.get("Content-Length")
    coding = (transfer or "").strip().lower()
    if transfer is not None and (strict or coding):
        if strict and length is not None:
            raise BodyError(400, "both Content-Length and Transfer-Encoding")
        if coding != "chunked":
            raise BodyError(400 if strict else 501, "unsupported transfer encoding")
        return _chunked(rfile, max_body, arm, max_chunks)
    if length is None:
        if strict:
            raise BodyError(411, "length required")
        return b""
    text = length.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise BodyError(400, "bad Content-Length")
    size = int(text)
    if size > max_body:
        raise BodyError(413, "body too large")
    return _exact(rfile, size, arm)


def _chunked(
    rfile: BufferedIOBase, max_body: int, arm: Callable[[], None], max_chunks: int | None
) -> bytes:
    body = bytearray()
    chunks = 0
    while True:
        size_text = _line(rfile, arm).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise BodyError(400, "bad chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        chunks += 1
        if max_chunks is not None and chunks > max_chunks:
            raise BodyError(400, "too many chunks")
        if len(body) + size > max_body:
            raise BodyError(413, "body too large")
        body += _exact(rfile, size, arm)
        if _line(rfile, arm).strip():
            raise BodyError(400, "chunk not followed by CRLF")
    for _ in range(MAX_TRAILERS):
        arm()
        line = rfile.readline(MAX_CHUNK_LINE + 1)
        if not line.strip():  # the blank line that ends the message (or the peer's close)
            return bytes(body)
        if not line.endswith(b"\n"):
            raise BodyError(400, "bad trailer line")
    raise BodyError(400, "too many trailers")


def _line(rfile: BufferedIOBase, arm: Callable[[], None]) -> bytes:
    arm()
    line = rfile.readline(MAX_CHUNK_LINE + 1)
    if len(line) > MAX_CHUNK_LINE or not line.endswith(b"\n"):
        raise BodyError(400, "bad chunk line")
    return line


def _exact(rfile: BufferedIOBase, size: int, arm: Callable[[], None]) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        arm()
        piece = rfile.read1(min(left, _READ))
        if not piece:
            raise BodyError(400, "body ended early")
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)
