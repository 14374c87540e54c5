"""The batch codec: one command line, its output cut back into sections by unforgeable markers.

Outputs are built byte for byte to the layout of :mod:`posdiag.drivers.adb.batch` (what ``sh``
prints for ``echo BEGIN; CMD; echo END.$?``), then damaged the ways a broken or hostile device
could: the nonce inside a command's output, forged or missing markers, a line cut short at any
byte, bytes after the end, non-UTF-8 and huge bodies. A damaged batch must be refused (the
terminal then asks one command at a time); a body is never handed to the wrong command.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.adb.batch import (
    BatchLine,
    BatchProgress,
    BatchTruncated,
    BatchUntrusted,
    CommandBatch,
    SectionOutput,
    batchable,
)

NONCE = "0123456789abcdef" * 2
COMMANDS = ["getprop", "dumpsys battery", "ls -1Ap /sdcard/PAX/", "cat /sdcard/x.json"]


def marker(index: int, what: str, nonce: str = NONCE) -> bytes:
    return f"posdiag.{nonce}.{index}.{what}".encode()


def output(
    bodies: list[bytes], statuses: list[int] | None = None, *, eol: bytes = b"\n", first: int = 0
) -> bytes:
    """What the shell prints for a line whose commands printed ``bodies``."""
    statuses = statuses or [0] * len(bodies)
    return b"".join(
        marker(first + i, "begin") + eol + body + marker(first + i, "end." + str(status)) + eol
        for i, (body, status) in enumerate(zip(bodies, statuses, strict=True))
    )


@pytest.fixture
def batch() -> CommandBatch:
    return CommandBatch(COMMANDS, nonce=NONCE)


def whole(batch: CommandBatch) -> BatchLine:
    (line,) = batch.lines(1 << 20)
    return line


BODIES = [b"[ro.serialno]: [123]\n", b"level: 87\n", b"", b'{"count": 2}']


# --- the command line ----------------------------------------------------------------------------


def test_the_line_brackets_every_command_with_its_markers_and_status(batch: CommandBatch) -> None:
    line = whole(batch)
    assert line.text.split(";")[:3] == [
        f"echo posdiag.{NONCE}.0.begin",
        "getprop",
        f"echo posdiag.{NONCE}.0.end.$?",
    ]
    assert line.text.count(";") == 3 * len(COMMANDS) - 1
    assert (line.first, line.count) == (0, len(COMMANDS))


def test_each_batch_draws_a_fresh_nonce() -> None:
    nonces = {CommandBatch(["getprop"]).nonce for _ in range(50)}
    assert len(nonces) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", n) for n in nonces)


@pytest.mark.parametrize(
    "command",
    [
        "getprop; reboot",
        "ls $HOME",
        "ls `id`",
        "cat /a && rm /b",
        "cat /a | sh",
        "ls '/sdcard/x'",
        'ls "/sdcard/x"',
        "ls /sdcard/x\nreboot",
        "ls > /sdcard/out",
        "ls /sdcard/*",
        "-rf /",
        "",
        "ls /a ",
        "ls /sdcard/é",
    ],
)
def test_only_plain_words_may_go_into_a_batch(command: str) -> None:
    assert not batchable(command)
    with pytest.raises(ValueError):
        CommandBatch(["getprop", command])


def test_catalogue_style_commands_are_plain_words() -> None:
    for command in [*COMMANDS, "settings get global airplane_mode_on", "dumpsys package com.a.b"]:
        assert batchable(command)


@pytest.mark.parametrize("nonce", ["", "xyz", "ABCDEF0123456789", "0" * 15, "0" * 65])
def test_a_nonce_must_be_hex(nonce: str) -> None:
    with pytest.raises(ValueError):
        CommandBatch(["getprop"], nonce=nonce)


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError):
        CommandBatch([])


@pytest.mark.parametrize("max_length", [150, 200, 300, 500, 1000])
def test_a_batch_longer_than_one_open_is_packed_into_consecutive_lines(max_length: int) -> None:
    batch = CommandBatch([f"dumpsys package com.example.app{i}" for i in range(12)], nonce=NONCE)
    lines = batch.lines(max_length)
    assert all(len(line.text) <= max_length for line in lines)
    assert [i for line in lines for i in line.indices] == list(range(12))
    assert [s for line in lines for s in line.text.split(";")] == whole(batch).text.split(";")


def test_a_section_longer_than_one_open_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="longer than"):
        CommandBatch(["dumpsys package " + "a" * 200], nonce=NONCE).lines(150)


# --- the output ----------------------------------------------------------------------------------


def test_sections_come_back_byte_for_byte_with_their_status(batch: CommandBatch) -> None:
    sections = batch.split(whole(batch), output(BODIES, [0, 0, 1, 0]))
    assert sections == [
        SectionOutput(0, 0, BODIES[0]),
        SectionOutput(1, 0, BODIES[1]),
        SectionOutput(2, 1, b""),
        SectionOutput(3, 0, b'{"count": 2}'),  # no final line break: kept exactly
    ]


def test_a_pty_line_ending_is_accepted_around_the_markers(batch: CommandBatch) -> None:
    bodies = [b"a\r\nb\r\n", b"", b"x", b"y\r\n"]
    sections = batch.split(whole(batch), output(bodies, [0, 255, 127, 2], eol=b"\r\n"))
    assert [s.body for s in sections] == bodies
    assert [s.status for s in sections] == [0, 255, 127, 2]


def test_non_utf8_and_binary_bodies_pass_untouched(batch: CommandBatch) -> None:
    bodies = [b"\xff\xfe\x00\x80", bytes(range(256)), b"\x1b[2J\x1b]0;x\x07", b"\n\n\n"]
    assert [s.body for s in batch.split(whole(batch), output(bodies))] == bodies


def test_a_huge_body_is_split_in_linear_time(batch: CommandBatch) -> None:
    huge = (b"posdiag.not-the-nonce.1.end.0\n" + bytes(range(256))) * 30_000  # ~8.6 MB
    started = time.perf_counter()
    sections = batch.split(whole(batch), output([huge, b"", b"", b""]))
    assert time.perf_counter() - started < 2.0
    assert sections[0].body == huge


def test_markers_with_another_nonce_are_only_data(batch: CommandBatch) -> None:
    other = "f" * 32
    forged = marker(0, "end.0", other) + b"\n" + marker(1, "begin", other) + b"\n"
    sections = batch.split(whole(batch), output([forged, b"", b"", b""]))
    assert sections[0].body == forged


@pytest.mark.parametrize(
    "forged",
    [
        NONCE.encode(),  # the bare nonce
        b"x" + NONCE.encode() + b"y",
        marker(0, "end.0") + b"\n",  # a forged END of its own section
        marker(1, "begin") + b"\n",  # the next section's BEGIN
        marker(0, "end.0") + b"\n" + marker(1, "begin") + b"\nfake\n" + marker(1, "end.0") + b"\n",
        marker(3, "end.0") + b"\n",
        b"posdiag" + NONCE.encode(),
    ],
)
@pytest.mark.parametrize("where", [0, 1, 3])
def test_the_nonce_inside_any_output_makes_the_batch_untrusted(
    batch: CommandBatch, forged: bytes, where: int
) -> None:
    bodies = list(BODIES)
    bodies[where] = bodies[where] + forged
    with pytest.raises(BatchUntrusted):
        batch.split(whole(batch), output(bodies))
    with pytest.raises(BatchUntrusted):  # not even the sections before it are believed
        batch.split(whole(batch), output(bodies), partial=True)


def _sections(data: bytes) -> list[bytes]:
    """The marker-delimited pieces of an output, to rearrange."""
    return re.findall(
        rb"posdiag\.[0-9a-f]+\.\d+\.begin\n.*?posdiag\.[0-9a-f]+\.\d+\.end\.\d+\n", data, re.S
    )


@pytest.mark.parametrize(
    "rearrange",
    [
        lambda s: s[:2] + s[3:],  # a section missing
        lambda s: s[:3],  # the last one missing
        lambda s: [s[0], s[1], s[1], s[2], s[3]],  # one twice
        lambda s: [s[1], s[0], s[2], s[3]],  # out of order
        lambda s: [s[0], s[2], s[1], s[3]],
        lambda s: [*s, s[3]],
        lambda s: [b"garbage\n", *s],  # something before the first
        lambda s: [*s, b"x"],  # something after the last
        lambda s: [s[0], b"\n", *s[1:]],  # something between two
    ],
)
def test_missing_duplicated_or_reordered_sections_are_refused(
    batch: CommandBatch, rearrange: object
) -> None:
    pieces = _sections(output(BODIES))
    assert len(pieces) == 4
    damaged = b"".join(rearrange(pieces))  # type: ignore[operator]
    with pytest.raises(BatchUntrusted):
        batch.split(whole(batch), damaged)


@pytest.mark.parametrize(
    "end",
    [b"end.", b"end.256", b"end.1000", b"end.-1", b"end.x", b"end. 0", b"end.0 ", b"end.0x"],
)
def test_an_end_without_a_status_of_0_to_255_is_refused(batch: CommandBatch, end: bytes) -> None:
    good = output(BODIES)
    damaged = good.replace(marker(1, "end.0") + b"\n", marker(1, end.decode()) + b"\n")
    assert damaged != good
    with pytest.raises(BatchUntrusted):
        batch.split(whole(batch), damaged)


def test_a_marker_not_ending_its_line_is_refused(batch: CommandBatch) -> None:
    damaged = output(BODIES).replace(marker(2, "begin") + b"\n", marker(2, "begin") + b" x\n")
    with pytest.raises(BatchUntrusted):
        batch.split(whole(batch), damaged)


def test_a_missing_trailer_is_a_truncated_batch(batch: CommandBatch) -> None:
    good = output(BODIES)
    cut = good[: good.rindex(marker(3, "end.0"))]
    with pytest.raises(BatchTruncated):
        batch.split(whole(batch), cut)
    assert [s.index for s in batch.split(whole(batch), cut, partial=True)] == [0, 1, 2]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_a_line_cut_at_any_byte_is_never_believed_whole_nor_misattributed(
    batch: CommandBatch, eol: bytes
) -> None:
    bodies = [b"one\n", b"two", b"", b"three\n"]
    statuses = [0, 127, 1, 0]
    good = output(bodies, statuses, eol=eol)
    expected = [
        SectionOutput(i, s, b) for i, (b, s) in enumerate(zip(bodies, statuses, strict=True))
    ]
    for cut in range(len(good)):
        with pytest.raises(BatchUntrusted):  # BatchTruncated is one
            batch.split(whole(batch), good[:cut])
        kept = batch.split(whole(batch), good[:cut], partial=True)
        assert kept == expected[: len(kept)]  # only whole sections, each its own
    assert batch.split(whole(batch), good) == expected


def test_a_later_line_expects_its_own_indices(batch: CommandBatch) -> None:
    lines = batch.lines(len(whole(batch).text) // 2 + 1)
    second = lines[1]
    assert len(lines) > 1 and second.first > 0
    bodies = [b"x\n"] * second.count
    assert [s.index for s in batch.split(second, output(bodies, first=second.first))] == list(
        second.indices
    )
    with pytest.raises(BatchUntrusted):  # the first line's markers are not the second's
        batch.split(second, output(bodies))


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=300), min_size=4, max_size=4),
    statuses=st.lists(st.integers(0, 255), min_size=4, max_size=4),
    crlf=st.booleans(),
)
def test_any_bodies_without_the_nonce_come_back_exactly(
    bodies: list[bytes], statuses: list[int], crlf: bool
) -> None:
    batch = CommandBatch(COMMANDS, nonce=NONCE)
    data = output(bodies, statuses, eol=b"\r\n" if crlf else b"\n")
    sections = batch.split(whole(batch), data)
    assert [(s.body, s.status) for s in sections] == list(zip(bodies, statuses, strict=True))


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(st.binary(max_size=100), min_size=4, max_size=4),
    where=st.integers(0, 3),
    at=st.integers(0, 100),
    junk=st.binary(max_size=40),
)
def test_the_nonce_anywhere_in_any_body_is_refused(
    bodies: list[bytes], where: int, at: int, junk: bytes
) -> None:
    batch = CommandBatch(COMMANDS, nonce=NONCE)
    body = bodies[where]
    bodies[where] = body[:at] + junk + NONCE.encode() + junk + body[at:]
    with pytest.raises(BatchUntrusted):
        batch.split(whole(batch), output(bodies))


# --- following the output as it arrives ----------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 10_000])
def test_progress_tells_each_section_once_in_order_whatever_the_chunks(
    batch: CommandBatch, chunk: int
) -> None:
    data = output(BODIES)
    told: list[int] = []
    progress = BatchProgress(batch, whole(batch), told.append, limit=1 << 20)
    for start in range(0, len(data), chunk):
        progress(data[start : start + chunk])
    assert told == [0, 1, 2, 3]
    assert bytes(progress.received) == data


def test_progress_tells_a_section_only_once_its_begin_has_arrived(batch: CommandBatch) -> None:
    data = output(BODIES)
    told: list[int] = []
    progress = BatchProgress(batch, whole(batch), told.append, limit=1 << 20)
    begin2 = data.index(marker(2, "begin"))
    progress(data[: begin2 + 10])
    assert told == [0, 1]
    progress(data[begin2 + 10 :])
    assert told == [0, 1, 2, 3]


def test_progress_keeps_no_more_than_its_limit(batch: CommandBatch) -> None:
    progress = BatchProgress(batch, whole(batch), lambda index: None, limit=100)
    for _ in range(10):
        progress(b"x" * 60)
    assert len(progress.received) <= 100
