r"""Many shell commands in one command line, their outputs told apart by unforgeable markers.

adbd forks and execs a shell for every ``shell:`` stream it opens, which costs a real Android POS
tens of milliseconds before the command itself starts; a shell runs a whole command line. So the
check's fact commands go out as one line, ``echo BEGIN; CMD; echo END $?; echo BEGIN; CMD; …``,
and this module builds that line and cuts its output back into one section per command, each
exactly the bytes the command alone would have printed, with its exit status.

Wire layout of the stdout of one batch line (sections ``first`` … ``last`` in order, nothing
before, between or after them)::

    stdout     := section(first) section(first+1) ... section(last)
    section(i) := BEGIN(i) body(i) END(i, status)
    BEGIN(i)   := "posdiag." NONCE "." i ".begin" EOL   a line of its own (the previous END,
                                                         or the start of the output, ends a line)
    body(i)    := the command's output, any bytes (stdout; with a legacy ``shell:`` stdout and
                  stderr as the device interleaves them); it need not end with a line break
    END(i, s)  := "posdiag." NONCE "." i ".end." s EOL  straight after the body; s is ``$?``,
                                                         1-3 ASCII digits, 0..255
    EOL        := "\n" | "\r\n"                           a PTY (pre-Android-7 legacy shell)
                                                         turns "\n" into "\r\n"
    NONCE      := 32 lowercase hex digits, secrets.token_hex(16), new for every batch
    i          := the section's index in the batch, decimal

The command line is the same sequence spelt for ``sh``::

    echo posdiag.NONCE.0.begin;getprop;echo posdiag.NONCE.0.end.$?;echo posdiag.NONCE.1.begin;…

Why a section boundary cannot be forged or shifted: the nonce is drawn when the check starts, so
nothing stored on the device (a property, an SSID, a file name, a file's content) can hold it.
:meth:`CommandBatch.split` takes the *first* occurrence of the nonce after a BEGIN as that
section's END, so a body holding the nonce, a marker out of order, twice or missing, a bad status,
anything after the last END, or output that stops early (``BatchTruncated``) makes the whole
batch untrusted (:class:`BatchUntrusted`); the caller then runs the commands one by one. (A
device whose adbd itself lies sees the command line and can forge anything, as it can lie in any
single command's output; the markers guard against *data* that looks like a boundary.)

Every command of a batch is one of ours: a constant string or built from the catalogue, checked
here against a plain-word alphabet (no ``;``, quotes, ``$``, redirections or line breaks), so no
command can change the line's structure. Nothing of what the device sent ever goes into a line.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ProtocolError

__all__ = [
    "BatchLine",
    "BatchProgress",
    "BatchTruncated",
    "BatchUntrusted",
    "CommandBatch",
    "SectionOutput",
    "batchable",
]

TAG = "posdiag."
NONCE_BYTES = 16
"""Random bytes of the nonce (32 hex digits): no stored data can hold it by chance."""
MAX_STATUS_DIGITS = 3
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/:=+,@%-]*")
"""A command a batch accepts: words of letters, digits and path punctuation, nothing sh reads as
syntax (no ``; & | $ ` ' " \\ < > ( ) * ? [ ] # ~`` or line breaks)."""
_NONCE = re.compile(r"[0-9a-f]{16,64}")


class BatchUntrusted(ProtocolError):
    """A batch's output does not follow the layout: its sections cannot be told apart safely."""


class BatchTruncated(BatchUntrusted):
    """A batch's output stops before its last section's END (the command line did not finish)."""


def batchable(command: str) -> bool:
    """Whether ``command`` may go into a batch line (one simple command of plain words)."""
    return _SAFE.fullmatch(command) is not None and not command.endswith(" ")


@dataclass(frozen=True)
class SectionOutput:
    """What one command of a batch printed, and the status ``$?`` gave right after it."""

    index: int
    status: int
    body: bytes


@dataclass(frozen=True)
class BatchLine:
    """One command line of a batch: sections ``first`` … ``first + count - 1``."""

    first: int
    count: int
    text: str

    @property
    def indices(self) -> range:
        """The section indices this line carries, in order."""
        return range(self.first, self.first + self.count)


class CommandBatch:
    """Commands run in one shell, their outputs told apart afterwards.

    Args:
        commands: the commands, in the order they run; each must pass :func:`batchable`.
        nonce: the marker nonce (hex); a fresh ``secrets.token_hex`` when None. Given only by
            tests that need a known nonce.

    Raises:
        ValueError: no commands, a command that is not :func:`batchable`, or a malformed nonce.
    """

    def __init__(self, commands: Sequence[str], *, nonce: str | None = None) -> None:
        if not commands:
            raise ValueError("a batch needs at least one command")
        for command in commands:
            if not batchable(command):
                raise ValueError(f"not a command a batch may carry: {command!r}")
        self.commands = tuple(commands)
        self.nonce = secrets.token_hex(NONCE_BYTES) if nonce is None else nonce
        if _NONCE.fullmatch(self.nonce) is None:
            raise ValueError("the nonce must be 16-64 lowercase hex digits")
        self._nonce_bytes = self.nonce.encode("ascii")

    # --- the command line ------------------------------------------------------------------------

    def begin(self, index: int) -> bytes:
        """The BEGIN marker of section ``index``, without its line break."""
        return f"{TAG}{self.nonce}.{index}.begin".encode("ascii")

    def _end_prefix(self, index: int) -> bytes:
        return f"{TAG}{self.nonce}.{index}.end.".encode("ascii")

    def section_text(self, index: int) -> str:
        """Section ``index`` as ``sh`` runs it: BEGIN, the command, END with its status."""
        marker = f"{TAG}{self.nonce}.{index}"
        return f"echo {marker}.begin;{self.commands[index]};echo {marker}.end.$?"

    def lines(self, max_length: int) -> list[BatchLine]:
        """The sections packed into as few command lines as fit ``max_length`` bytes each.

        ``max_length`` is what one OPEN can carry (the negotiated max payload less the service
        prefix): a line that does not fit could not be sent, so a long batch becomes several
        lines, each one round trip. Today's catalogue fits one line even on a 4 KiB device.

        Raises:
            ValueError: one section alone does not fit.
        """
        lines: list[BatchLine] = []
        first, length = 0, 0
        parts: list[str] = []
        for index in range(len(self.commands)):
            text = self.section_text(index)
            extra = len(text) + (1 if parts else 0)
            if len(text) > max_length:
                raise ValueError(f"section {index} is longer than {max_length} bytes")
            if parts and length + extra > max_length:
                lines.append(BatchLine(first, len(parts), ";".join(parts)))
                first, parts, length = index, [], 0
                extra = len(text)
            parts.append(text)
            length += extra
        lines.append(BatchLine(first, len(parts), ";".join(parts)))
        return lines

    # --- the output ------------------------------------------------------------------------------

    def split(
        self, line: BatchLine, stdout: bytes, *, partial: bool = False
    ) -> list[SectionOutput]:
        """Cut one line's output into its sections, refusing anything off the layout.

        Args:
            line: the line that printed ``stdout``.
            stdout: everything it printed, whole.
            partial: the output is known to have stopped early (the link failed): return the
                sections that arrived whole instead of raising :class:`BatchTruncated`. What did
                arrive must still follow the layout.

        Raises:
            BatchTruncated: the output stops before the last END (only when not ``partial``).
            BatchUntrusted: anything else off the layout (see the module docstring).
        """
        data = bytes(stdout)
        sections: list[SectionOutput] = []
        pos = 0
        try:
            for index in line.indices:
                pos = self._expect(data, pos, self.begin(index), index, "BEGIN")
                pos = self._eol(data, pos, index, "BEGIN")
                at = data.find(self._nonce_bytes, pos)
                if at < 0:
                    raise BatchTruncated(f"section {index} has no END")
                start = at - len(TAG)
                end_prefix = self._end_prefix(index)
                if start < pos:
                    raise BatchUntrusted(f"section {index}: the nonce in its output")
                if not data.startswith(end_prefix, start):
                    if len(data) - start < len(end_prefix) and end_prefix.startswith(data[start:]):
                        raise BatchTruncated(f"section {index}: output stops inside its END")
                    raise BatchUntrusted(f"section {index}: the nonce in its output, or a marker")
                body = data[pos:start]
                pos, status = self._status(data, start + len(end_prefix), index)
                pos = self._eol(data, pos, index, "END")
                sections.append(SectionOutput(index, status, body))
        except BatchTruncated:
            if partial:
                return sections
            raise
        if pos != len(data):
            raise BatchUntrusted(f"{len(data) - pos} bytes after the last section")
        return sections

    @staticmethod
    def _expect(data: bytes, pos: int, marker: bytes, index: int, what: str) -> int:
        if data.startswith(marker, pos):
            return pos + len(marker)
        rest = data[pos : pos + len(marker)]
        if len(rest) < len(marker) and marker.startswith(rest):
            raise BatchTruncated(f"section {index}: output stops before its {what}")
        raise BatchUntrusted(f"section {index}: no {what} where it belongs")

    @staticmethod
    def _eol(data: bytes, pos: int, index: int, what: str) -> int:
        rest = data[pos : pos + 2]
        if rest[:1] == b"\n":
            return pos + 1
        if rest == b"\r\n":
            return pos + 2
        if rest in (b"", b"\r"):
            raise BatchTruncated(f"section {index}: output stops inside its {what}")
        raise BatchUntrusted(f"section {index}: its {what} does not end its line")

    @staticmethod
    def _status(data: bytes, pos: int, index: int) -> tuple[int, int]:
        end = pos
        while end < len(data) and end - pos <= MAX_STATUS_DIGITS and 48 <= data[end] <= 57:
            end += 1
        digits = data[pos:end]
        if end == len(data):
            raise BatchTruncated(f"section {index}: output stops inside its END")
        if not digits or len(digits) > MAX_STATUS_DIGITS or int(digits) > 255:
            raise BatchUntrusted(f"section {index}: END without a status 0-255")
        return end, int(digits)


class BatchProgress:
    """Follows a line's output as it arrives: keeps it, and says when each section begins.

    Feed it every stdout chunk (``AdbDriver.shell(on_stdout=…)``). ``on_section(index)`` is
    called once per section whose BEGIN has arrived, in order, so whoever watches sees what the
    device is doing now. It also keeps what arrived (up to ``limit`` bytes, the driver's cap),
    for :meth:`CommandBatch.split` with ``partial=True`` when the link fails mid-line.
    """

    def __init__(
        self,
        batch: CommandBatch,
        line: BatchLine,
        on_section: Callable[[int], None],
        *,
        limit: int,
    ) -> None:
        self.batch = batch
        self.line = line
        self.on_section = on_section
        self.limit = limit
        self.received = bytearray()
        self._next = line.first
        self._scan_from = 0

    def __call__(self, chunk: bytes) -> None:
        """One chunk of stdout, as it came off the stream."""
        if len(self.received) + len(chunk) > self.limit:
            return  # the driver stops at its cap too; the batch is then not used
        self.received += chunk
        while self._next < self.line.first + self.line.count:
            marker = self.batch.begin(self._next)
            at = self.received.find(marker, self._scan_from)
            if at < 0:
                # a marker may straddle two chunks: look again from just before the end
                self._scan_from = max(self._scan_from, len(self.received) - len(marker) + 1)
                return
            self._scan_from = at + len(marker)
            self.on_section(self._next)
            self._next += 1
