"""Tests for posdiag.agent.logs: formats, hex rendering, redaction, levels, reconfiguration."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from posdiag.agent.logs import (
    REDACTED,
    configure_logging,
    get_logger,
    hex_bytes,
    mask_identifier,
    redact,
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave no posdiag handler (pointing at a dead StringIO) behind for other tests."""
    root = logging.getLogger()
    saved_level = root.level
    yield
    for handler in list(root.handlers):
        if handler.get_name() == "posdiag":
            root.removeHandler(handler)
    root.setLevel(saved_level)
    structlog.reset_defaults()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def log_json(**fields: Any) -> dict[str, Any]:
    """Log one info event with ``fields`` as JSON and return the parsed line."""
    stream = io.StringIO()
    configure_logging("json", "debug", stream)
    get_logger("posdiag.test").info("probe", **fields)
    (line,) = json_lines(stream)
    return line


# --- JSON format ----------------------------------------------------------------------------


def test_json_lines_parse_and_carry_fields() -> None:
    stream = io.StringIO()
    configure_logging("json", "debug", stream)
    log = get_logger("posdiag.drivers.zvt")
    log.info("status enquiry", attempt=1, link="serial")
    log.warning("slow answer", seconds=2.5)

    first, second = json_lines(stream)
    assert first["event"] == "status enquiry"
    assert first["level"] == "info"
    assert first["logger"] == "posdiag.drivers.zvt"
    assert first["attempt"] == 1
    assert first["link"] == "serial"
    assert second["level"] == "warning"
    assert second["seconds"] == 2.5
    stamp = datetime.fromisoformat(first["timestamp"])
    assert first["timestamp"].endswith("Z")
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_json_one_object_per_line_even_with_newlines_in_values() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    get_logger("posdiag.test").info("multi\nline", note="a\nb")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["note"] == "a\nb"


def test_json_bound_context_is_included() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    get_logger("posdiag.test").bind(session="s1").info("bound")
    (line,) = json_lines(stream)
    assert line["session"] == "s1"


def test_json_exception_carries_traceback() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    try:
        raise RuntimeError("cable pulled")
    except RuntimeError:
        get_logger("posdiag.test").exception("transport failed")
    (line,) = json_lines(stream)
    assert line["level"] == "error"
    assert "RuntimeError: cable pulled" in line["exception"]


def test_stdlib_logging_is_routed_through_structlog() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    logging.getLogger("usb.core").warning("claimed %s", "interface 0", extra={"token": "abc"})
    (line,) = json_lines(stream)
    assert line["event"] == "claimed interface 0"
    assert line["logger"] == "usb.core"
    assert line["level"] == "warning"
    assert line["token"] == REDACTED
    assert "timestamp" in line


# --- bytes as hex ---------------------------------------------------------------------------


def test_bytes_become_spaced_lowercase_hex() -> None:
    line = log_json(frame=b"\x10\x02\x80\x00\x00\x10\x03\xf5\x1f")
    assert line["frame"] == "10 02 80 00 00 10 03 f5 1f"


@pytest.mark.parametrize("value", [bytearray(b"\xab\xcd"), memoryview(b"\xab\xcd")])
def test_bytearray_and_memoryview_become_hex(value: bytearray | memoryview) -> None:
    assert log_json(data=value)["data"] == "ab cd"


def test_nested_bytes_become_hex() -> None:
    line = log_json(frames={"sent": [b"\x06\x00"], "received": b"\x80\x00\x00"})
    assert line["frames"] == {"sent": ["06 00"], "received": "80 00 00"}


def test_long_bytes_are_truncated_with_count() -> None:
    rendered = log_json(blob=bytes(range(256)) * 3)["blob"]
    shown, _, suffix = rendered.partition(" … ")
    assert suffix == "(+256 bytes)"
    assert len(shown.split(" ")) == 512


def test_hex_bytes_limits() -> None:
    assert hex_bytes(b"") == ""
    assert hex_bytes(bytes(512)) == " ".join(["00"] * 512)
    assert hex_bytes(bytes(513)).endswith("00 … (+1 bytes)")
    assert hex_bytes(b"\x01\x02\x03", limit=2) == "01 02 … (+1 bytes)"


# --- redaction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PIN",
        "pan",
        "Key",
        "secret",
        "token",
        "signature",
        "private_key",
        "ADBKEY",
    ],
)
def test_secret_fields_are_redacted(key: str) -> None:
    line = log_json(**{key: "4111111111111111"})
    assert line[key] == REDACTED
    assert "4111111111111111" not in json.dumps(line)


def test_secret_bytes_are_redacted_not_hexed() -> None:
    line = log_json(key=b"\x01\x02\x03\x04")
    assert line["key"] == REDACTED


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("tid", "52002000", "****2000"),
        ("terminal_id", 52002000, "****2000"),
        ("TID", "52002000", "****2000"),
        ("merchant_id", "123456789012345", "****2345"),
        ("mid", "987654321", "****4321"),
        ("vu_number", "VU0000042", "****0042"),
        ("tid", b"\x52\x00\x20\x00", "****2000"),  # BCD on the wire
    ],
)
def test_identifiers_keep_last_four(key: str, value: object, expected: str) -> None:
    assert log_json(**{key: value})[key] == expected


def test_nested_redaction_in_dicts_and_lists() -> None:
    line = log_json(
        config={"password": "000000", "baud": 9600, "terminals": [{"tid": "52002000", "pin": 1}]},
        keys=[{"signature": "abc"}, "plain"],
    )
    assert line["config"] == {
        "password": REDACTED,
        "baud": 9600,
        "terminals": [{"tid": "****2000", "pin": REDACTED}],
    }
    assert line["keys"] == [{"signature": REDACTED}, "plain"]


def test_redact_returns_copy_and_leaves_input_alone() -> None:
    inner = {"pan": "4111111111111111", "amount": 100}
    event = {"event": "paid", "receipt": inner, "tid": "52002000"}
    result = redact(event)
    assert result == {
        "event": "paid",
        "receipt": {"pan": REDACTED, "amount": 100},
        "tid": "****2000",
    }
    assert inner == {"pan": "4111111111111111", "amount": 100}
    assert event["tid"] == "52002000"


def test_redact_keeps_none_and_unrelated_keys() -> None:
    assert redact({"password": None, "tid": None, "keyboard": "de", "pins": 3}) == {
        "password": None,
        "tid": None,
        "keyboard": "de",
        "pins": 3,
    }


def test_redact_matches_dashed_keys() -> None:
    assert redact({"Private-Key": "x"}) == {"Private-Key": REDACTED}


@pytest.mark.parametrize(
    ("value", "keep", "expected"),
    [
        ("52002000", 4, "****2000"),
        ("12345678901234567890", 4, "****7890"),
        ("12345", 4, "****2345"),
        ("1234", 4, "****"),
        ("12", 4, "****"),
        ("52002000", 2, "****00"),
        ("52002000", 0, "****"),
        ("", 4, ""),
        (None, 4, None),
    ],
)
def test_mask_identifier(value: str | None, keep: int, expected: str | None) -> None:
    assert mask_identifier(value, keep) == expected


# --- console format, streams, levels -------------------------------------------------------


def test_console_goes_to_given_stream(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream)
    get_logger("posdiag.test").info("hello bench", tid="52002000", frame=b"\x06\x00")
    text = stream.getvalue()
    assert "hello bench" in text
    assert "****2000" in text
    assert "52002000" not in text
    assert "06 00" in text
    assert "\x1b[" not in text  # a StringIO is not a tty: no colour codes
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


class _FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_uses_colour_on_a_tty() -> None:
    stream = _FakeTty()
    configure_logging("console", "info", stream)
    get_logger("posdiag.test").warning("coloured")
    assert "\x1b[" in stream.getvalue()


def test_console_traceback_shows_no_local_variables() -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream)

    def fail() -> None:
        terminal_pin = "98765"  # a local that a locals-printing traceback would leak
        raise ValueError(f"bad length {len(terminal_pin)}")

    try:
        fail()
    except ValueError:
        get_logger("posdiag.test").exception("failed")
    text = stream.getvalue()
    assert "ValueError: bad length 5" in text
    assert "98765" not in text


def test_default_stream_is_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    get_logger("posdiag.test").warning("to stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["event"] == "to stderr"


def test_default_level_is_warning() -> None:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    log = get_logger("posdiag.test")
    log.info("dropped")
    log.warning("kept")
    assert [line["event"] for line in json_lines(stream)] == ["kept"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("debug", ["d", "i", "w", "e"]),
        ("INFO", ["i", "w", "e"]),
        ("warning", ["w", "e"]),
        ("error", ["e"]),
        ("critical", []),
    ],
)
def test_level_filtering(level: str, expected: list[str]) -> None:
    stream = io.StringIO()
    configure_logging("json", level, stream)
    log = get_logger("posdiag.test")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [line["event"] for line in json_lines(stream)] == expected


def test_level_filtering_applies_to_stdlib_loggers() -> None:
    stream = io.StringIO()
    configure_logging("json", "warning", stream)
    logging.getLogger("serial").info("dropped")
    logging.getLogger("serial").error("kept")
    assert [line["event"] for line in json_lines(stream)] == ["kept"]


def test_reconfigure_replaces_previous_setup() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        first, second = io.StringIO(), io.StringIO()
        log = get_logger("posdiag.test")  # created before reconfiguration on purpose
        configure_logging("json", "info", first)
        configure_logging("console", "debug", second)
        log.debug("after")
        assert first.getvalue() == ""
        assert "after" in second.getvalue()
        assert [h.get_name() for h in root.handlers].count("posdiag") == 1
        assert foreign in root.handlers
    finally:
        root.removeHandler(foreign)


def test_unknown_level_and_format_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("json", "loud", io.StringIO())
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        configure_logging("xml", "info", io.StringIO())  # type: ignore[arg-type, unused-ignore]
