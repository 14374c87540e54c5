"""ZVT timers and per-command caps: how long and how much one command may take.

Kept apart from the driver because both are configuration the agent and tests build from
addresses and fixtures, and because their validation (no ``inf``, ``nan``, negative or absurd
values) is a contract of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..deadline import check_seconds

__all__ = ["PRINT_LINE_LIMIT", "ZvtLimits", "ZvtTimers"]


@dataclass(frozen=True)
class ZvtTimers:
    """Protocol timers in seconds (PA00P016 §3.4, §5.2.5–5.2.6), all adjustable."""

    t1: float = 0.2
    t2: float = 5.0
    t3: float = 5.0
    t4: float = 180.0

    def __post_init__(self) -> None:
        """Refuse inf, nan, negative and absurd timers (AddressError: they come from addresses)."""
        for name in ("t1", "t2", "t3", "t4"):
            check_seconds(name, getattr(self, name))


PRINT_LINE_LIMIT = 512
"""Longest print line kept (a receipt printer has 40 columns; more is a faulty terminal)."""


@dataclass(frozen=True)
class ZvtLimits:
    """Caps on what one command may cost, whatever the terminal sends.

    T4 restarts with every intermediate status and a status may even set it to 99 minutes, so
    a terminal that reports progress forever would hold the line forever; and a print job has no
    length in the protocol. These caps end such a command with a plain error.

    Attributes:
        max_command_s: longest one command may run from our command to its completion.
        max_intermediate: most intermediate status messages (04 FF) one command may send.
        max_print_lines: most print lines (06 D1 / 06 D3) one command may send.
        max_answer_bytes: most bytes the terminal may send while one command runs.
    """

    max_command_s: float = 300.0
    max_intermediate: int = 2_000
    max_print_lines: int = 10_000
    max_answer_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        """Refuse limits that would disable the caps."""
        check_seconds("max_command_s", self.max_command_s)
        for name in ("max_intermediate", "max_print_lines", "max_answer_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
