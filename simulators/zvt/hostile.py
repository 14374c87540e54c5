"""The ``hostile_text`` fault of the ZVT simulator: terminal texts built to hurt the station.

ZVT text travels in CP437, so the worst a terminal can send is what CP437 holds: ANSI screen
clears and colours, an OSC title change ended by BEL, NUL, and "²" (CP437 ``0xFD``) where a
digit belongs, which ``str.isdigit()`` accepts and ``int()`` refuses. Values keep their meaning
in front of the hostile part, so a wipe still works and still verifies.
"""

from __future__ import annotations

import re

ANSI = "\x1b[2J\x1b[31m"
OSC = "\x1b]0;pwned\x07"
HOSTILE = f"{ANSI}{OSC}\x00²"
"""Appended to every text the fault touches (all of it encodable in CP437)."""
LONG_LINE = "\x1b[31m" + "W" * 5_000
"""One print line far wider than any receipt printer."""
_NUMBER_LABELS = re.compile(r"(spannung|temperatur)", re.IGNORECASE)


def hostile_line(line: str) -> str:
    """One print line: labelled values gain hostile text, numbers a superscript digit."""
    if not line.strip():
        return line
    if _NUMBER_LABELS.search(line):
        return re.sub(r"[0-9](?=[^0-9]*$)", "²", line)  # the last digit: "3.12" -> "3.1²"
    return line + HOSTILE


def hostile_lines(lines: list[str]) -> list[str]:
    """A printout dressed as a hostile terminal would print it."""
    return [f"{OSC}{ANSI}", *(hostile_line(line) for line in lines), LONG_LINE, "\x00" * 40]


def hostile_name(text: str | None) -> str | None:
    """A status-enquiry text (device name, software version) with hostile text appended."""
    return None if text is None else text + HOSTILE
