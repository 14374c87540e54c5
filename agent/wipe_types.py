"""What a wipe is given and what it gives back: options, outcomes, results, progress.

Kept apart from the workflow (:mod:`posdiag.agent.wipe`) so the station, the CLI, the renderer and
the certificate issuing can share these records without importing the workflow itself.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posdiag.drivers.errors import PosdiagError

from .report import DeviceReport

__all__ = [
    "CERTIFIED_OUTCOMES",
    "DEFAULT_DEADLINE_S",
    "EXIT_CODES",
    "FALLBACK_DEADLINE_S",
    "MAX_DEADLINE_S",
    "Confirm",
    "OnProgress",
    "Outcome",
    "StepResult",
    "WipeInterrupted",
    "WipeOptions",
    "WipeProgress",
    "WipeResult",
]


class Outcome(enum.StrEnum):
    """How a wipe ended."""

    ERASED = "erased"
    ERASED_WITH_EXCEPTIONS = "erased_with_exceptions"
    NOT_ERASED = "not_erased"
    ABORTED = "aborted"
    REFUSED = "refused"


# The exit code of a wipe whose outcome is recorded but whose certificate is not yet issued.
# The same number as ``posdiag.agent.cli.EXIT_CERTIFICATE_PENDING`` (a test keeps them equal;
# the agent's core does not import the CLI).
CERTIFICATE_PENDING_EXIT = 7

# Distinct exit codes; 2 (usage) and 3 (unreachable) are shared with every command.
EXIT_CODES = {
    Outcome.ERASED: 0,
    Outcome.ERASED_WITH_EXCEPTIONS: 1,
    Outcome.NOT_ERASED: 4,
    Outcome.ABORTED: 5,
    Outcome.REFUSED: 6,
}
CERTIFIED_OUTCOMES = frozenset({Outcome.ERASED, Outcome.ERASED_WITH_EXCEPTIONS, Outcome.NOT_ERASED})

# How long a whole wipe (inspection, steps, read-back) may take unless the operator says
# otherwise: a ZVT End-of-Day with a slow host, an Android factory reset and its reboot fit well
# within it; a terminal that never stops talking does not get longer.
DEFAULT_DEADLINE_S = {"zvt": 900.0, "adb": 900.0, "nexo": 600.0}
FALLBACK_DEADLINE_S = 900.0
MAX_DEADLINE_S = 24 * 3600.0


@dataclass
class WipeOptions:
    """What the operator decided."""

    operator: str
    operator_title: str | None = None
    organisation: str | None = None
    location: str | None = None
    destination: str | None = None
    settle: bool = False
    assume_yes: bool = False
    serial: str | None = None
    out_dir: Path | None = None
    confirmed_settled: bool = False  # the operator settled a terminal posdiag cannot read
    batch: str | None = None  # the station run this wipe belongs to (for the manifest)
    deadline_s: float | None = None  # the whole wipe's time limit; None: the family's default
    release: bool = False  # release the unit in its backend(s) after the device steps
    logo: Path | None = None  # the depot's logo on the PDF certificate (station settings)

    def __post_init__(self) -> None:
        """Refuse a deadline that is not a sane number of seconds (inf, nan, 0, negative, days)."""
        if self.deadline_s is not None and not (
            isinstance(self.deadline_s, int | float)
            and math.isfinite(self.deadline_s)
            and 0 < self.deadline_s <= MAX_DEADLINE_S
        ):
            raise ValueError(
                f"the wipe deadline must be between 0 and {MAX_DEADLINE_S:.0f} seconds, "
                f"not {self.deadline_s!r}"
            )


@dataclass
class StepResult:
    """One step as it ended."""

    name: str
    erases: str
    status: str  # done, verified (done earlier, checked now), failed, skipped, not_run
    verified: bool | None = None
    detail: str = ""


@dataclass
class WipeResult:
    """Everything the operator, the ledger and the certificate need."""

    address: str
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    before: DeviceReport | None = None
    after: DeviceReport | None = None
    certificate: Path | None = None
    printable: Path | None = None
    pdf: Path | None = None  # the certificate to hand over; None when it could not be rendered
    run_id: int | None = None
    resumed: bool = False
    certificate_pending: bool = False  # the outcome is recorded, its certificate not yet issued
    reissued: bool = False  # no wipe ran: an earlier run's certificate was issued from the ledger

    @property
    def exit_code(self) -> int:
        """The process exit code for this outcome (its own code while the certificate is due)."""
        if self.certificate_pending:
            return CERTIFICATE_PENDING_EXIT
        return EXIT_CODES[self.outcome]

    def to_json(self) -> dict[str, Any]:
        """One object for ``--json``."""
        return {
            "schema": "posdiag.wipe/1",
            "address": self.address,
            "outcome": self.outcome.value,
            "reasons": self.reasons,
            "exceptions": self.exceptions,
            "resumed": self.resumed,
            "steps": [s.__dict__ for s in self.steps],
            "certificate": str(self.certificate) if self.certificate else None,
            "printable": str(self.printable) if self.printable else None,
            "pdf": str(self.pdf) if self.pdf else None,
            "certificate_pending": self.certificate_pending,
            "reissued": self.reissued,
        }


Confirm = Callable[[str, str], bool]
"""Shows the summary, asks the operator; returns True to go on. Args: summary, expected serial."""


@dataclass(frozen=True)
class WipeProgress:
    """Where a wipe is, for a live view: sent to ``on_progress`` as the session moves on.

    Stages, in order: ``inspecting``, ``identified`` (``report`` is the first inspection, before
    anything is changed: a station locks the serial here), ``wiping`` (``done`` of ``total``
    steps, ``step`` the one about to run), ``verifying``, ``finished``.
    """

    stage: str
    done: int = 0
    total: int = 0
    step: str | None = None
    report: DeviceReport | None = None


OnProgress = Callable[[WipeProgress], None]


class WipeInterrupted(PosdiagError):
    """The caller asked the wipe to stop; it stops between steps, the run stays resumable."""
