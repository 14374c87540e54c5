"""What one ZVT command brought back, as typed records the driver's operations return.

Kept apart from the driver (which owns time and the link) because these are plain data: what
the PT sent while it was master for one command, and the per-operation outcomes built from it
(Diagnosis, End-of-Day). Reading a result code or the totals out of the status information is
here too, through the typed fields of ``04 0F`` rather than raw BMPs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .charset import DEFAULT_CHARSET
from .messages import Completion, PositiveAck, StatusInformation
from .payloads import Totals
from .printing import PrintTextLine

__all__ = ["CommandResult", "DiagnosisResult", "EndOfDayResult", "result_code", "totals_of"]


@dataclass
class CommandResult:
    """Everything the PT sent while it was master for one command.

    Attributes:
        completion: the ``06 0F`` that ended it (a ``StatusByteCompletion`` when it carried a
            bare status byte).
        status_infos: every ``04 0F``.
        intermediate: the status codes of every ``04 FF``.
        print_lines: the printed text, cleaned, in the terminal's character set.
        printed: the same lines with their print attributes (``06 D1`` byte, ``06 D3`` tag 09).
        positive_ack: the PT's ``80 00``.
        status_byte: a completion's bare status byte, for the caller to interpret: its meaning
            depends on the command (the terminal status after a Status-Enquiry…).
        terminal_time: the date and time the PT sent with ``04 01`` (Diagnosis).
        charset: the character set the print text was decoded in.
    """

    completion: Completion | None = None
    status_infos: list[StatusInformation] = field(default_factory=list)
    intermediate: list[int] = field(default_factory=list)
    print_lines: list[str] = field(default_factory=list)
    printed: list[PrintTextLine] = field(default_factory=list)
    positive_ack: PositiveAck | None = None
    status_byte: int | None = None
    terminal_time: datetime.datetime | None = None
    charset: str = DEFAULT_CHARSET


@dataclass(frozen=True)
class DiagnosisResult:
    """Outcome of 06 70: did the PT reach its host, and what it printed about it.

    ``result_text`` is English, like every driver-level text (logs, ``--debug``); what a person
    reads is translated where it is shown (``constants.result_text``). ``terminal_time`` is the
    PT's clock as its ``04 01`` said it, when it sent one.
    """

    host_reachable: bool
    result_code: int | None
    result_text: str
    print_lines: tuple[str, ...]
    terminal_time: datetime.datetime | None = None


@dataclass(frozen=True)
class EndOfDayResult:
    """Outcome of 06 50: the totals the PT submitted, and its receipt."""

    totals: Totals | None
    result_code: int | None
    print_lines: tuple[str, ...]


def result_code(result: CommandResult) -> int | None:
    """The result code (BMP 27) of the last status information, else of the completion."""
    for info in reversed(result.status_infos):
        code = info.details(result.charset).result_code
        if code is not None:
            return code
    if result.completion is not None and result.status_byte is None:
        try:
            for bmp in result.completion.bmps():
                if bmp.bmp_id == 0x27 and bmp.data:
                    return bmp.data[0]
        except ValueError:
            return None
    return None


def totals_of(result: CommandResult) -> Totals | None:
    """The first single totals (BMP 60) the status information carried."""
    for info in result.status_infos:
        totals = info.details(result.charset).totals
        if totals is not None:
            return totals
    return None
