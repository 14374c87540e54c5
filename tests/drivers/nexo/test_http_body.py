"""The shared request-body reader: both framings, both stances, every bound."""

from __future__ import annotations

import io

import pytest

from posdiag.drivers.nexo.http_body import BodyError, read_body


def _read(raw: bytes, headers: dict[str, str], *, strict: bool, **kwargs: int) -> bytes:
    return read_body(
        io.BufferedReader(io.BytesIO(raw)), headers, max_body=64, strict=strict, **kwargs
    )


@pytest.mark.parametrize("strict", [True, False])
def test_length_and_chunked_bodies_read_the_same(strict: bool) -> None:
    assert _read(b"hello", {"Content-Length": "5"}, strict=strict) == b"hello"
    chunked = b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n"
    assert _read(chunked, {"Transfer-Encoding": "chunked"}, strict=strict) == b"hello"


@pytest.mark.parametrize(
    ("raw", "headers", "strict", "status"),
    [
        (b"", {}, True, 411),
        (b"x", {"Content-Length": "1", "Transfer-Encoding": "chunked"}, True, 400),
        (b"", {"Transfer-Encoding": "gzip"}, True, 400),
        (b"", {"Transfer-Encoding": "gzip"}, False, 501),
        (b"", {"Content-Length": "65"}, False, 413),
        (b"", {"Content-Length": "-1"}, False, 400),
        (b"abc", {"Content-Length": "5"}, False, 400),
        (b"41\r\n" + b"x" * 65 + b"\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}, False, 413),
        (b"zz\r\n", {"Transfer-Encoding": "chunked"}, False, 400),
        (b"1\r\nab\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}, False, 400),
        (b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}, True, 400),
    ],
)
def test_refusals_carry_the_status_to_answer(
    raw: bytes, headers: dict[str, str], strict: bool, status: int
) -> None:
    with pytest.raises(BodyError) as caught:
        _read(raw, headers, strict=strict, max_chunks=1)
    assert caught.value.status == status


def test_a_lenient_reader_takes_an_unframed_body_as_empty() -> None:
    assert _read(b"", {}, strict=False) == b""


def test_the_deadline_is_asked_before_every_read() -> None:
    def expired() -> None:
        raise BodyError(408, "request took too long")

    with pytest.raises(BodyError) as caught:
        read_body(
            io.BufferedReader(io.BytesIO(b"hello")),
            {"Content-Length": "5"},
            max_body=64,
            strict=False,
            arm=expired,
        )
    assert caught.value.status == 408
