"""Small statistics for benchmarks that must hold on a noisy, shared machine.

Every figure is the median of several runs, shown with its min and max so the spread is visible.
Every comparison is a ratio measured side by side: the two contenders run alternately in the same
rounds, one ratio per round, and the median of those ratios is reported. Background load then hits
both sides of each ratio alike instead of skewing one whole series.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Sample:
    """Several measurements of one quantity."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Sample:
        """A sample from a non-empty sequence.

        Raises:
            ValueError: no values (a figure that measured nothing must say so, not print 0).
        """
        if not values:
            raise ValueError("a sample needs at least one value")
        return cls(tuple(float(v) for v in values))

    @property
    def median(self) -> float:
        """The middle value: robust against the odd run a busy neighbour slowed down."""
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        """The smallest value."""
        return min(self.values)

    @property
    def max(self) -> float:
        """The largest value."""
        return max(self.values)

    def scaled(self, factor: float) -> Sample:
        """Every value times ``factor`` (unit changes, per-item figures)."""
        return Sample(tuple(v * factor for v in self.values))

    def inverted(self, numerator: float = 1.0) -> Sample:
        """``numerator / value`` for every value (times to rates)."""
        return Sample(tuple(numerator / v for v in self.values))

    def to_json(self) -> dict[str, Any]:
        """Median, min, max and the raw values."""
        return {
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "runs": len(self.values),
            "values": list(self.values),
        }


def ratios(numerator: Sample, denominator: Sample) -> Sample:
    """Per-round ratios of two samples taken side by side (same length, same rounds)."""
    if len(numerator.values) != len(denominator.values):
        raise ValueError("side-by-side ratios need one value of each side per round")
    return Sample(tuple(a / b for a, b in zip(numerator.values, denominator.values, strict=True)))


def run_process(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
) -> tuple[float, int, str]:
    """Run a process to its end: (wall seconds, exit status, stdout if ``capture``).

    ``subprocess.run(timeout=...)`` waits by polling with sleeps that double from 0.5 ms, so a
    20 ms process reads as 32 ms: that would flatter every ratio against a process. Here the
    wait blocks in ``waitpid`` and a watchdog timer kills a process that hangs.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        text=True,
    )
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        output, _ = process.communicate()
    finally:
        watchdog.cancel()
    took = time.perf_counter() - started
    return took, process.returncode, output or ""


def time_call(func: Callable[[], Any]) -> float:
    """Wall seconds one call takes (``perf_counter``)."""
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def time_loop(func: Callable[[], Any], count: int) -> float:
    """Wall seconds per call, over ``count`` calls in a row (for calls too short to time once)."""
    started = time.perf_counter()
    for _ in range(count):
        func()
    return (time.perf_counter() - started) / count


def side_by_side(
    contenders: Mapping[str, Callable[[], float]], rounds: int, warmup: int = 1
) -> dict[str, Sample]:
    """Run each contender once per round, alternating, and collect what each returns.

    Each contender returns its own measurement (usually seconds per operation), so it can time
    exactly its operation and leave its setup out. The order rotates every round, so neither
    side always runs first (caches, CPU frequency).
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(contenders[name]())
    return {name: Sample.of(values) for name, values in results.items()}


Op = Literal["<=", ">="]


@dataclass(frozen=True)
class Goal:
    """What a ratio must be: ``<= 1.10`` (a slowdown) or ``>= 64`` (a headroom)."""

    op: Op
    value: float
    label: str = ""  # how to print the value ("1/64"); the number itself when empty

    def met(self, ratio: float) -> bool:
        """Whether the ratio meets the goal."""
        return ratio <= self.value if self.op == "<=" else ratio >= self.value

    def __str__(self) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {self.label or format(self.value, 'g')}"


@dataclass(frozen=True)
class AbsoluteGoal(Goal):
    """A bound on the measured value itself (``<= 0.25 s``), not on its ratio to a floor.

    For a promise made in seconds to the people who wait (a check process), where the floor
    (a bare interpreter) is shown beside it but does not set the bound.
    """

    unit: str = ""

    def __str__(self) -> str:
        return f"{super().__str__()} {self.unit}".rstrip()


@dataclass
class Row:
    """One line of the results table.

    Attributes:
        figure: the figure's number and short name ("1 ZVT check").
        name: what this row measures.
        measured: the measurement (None when it could not be taken; ``note`` says why).
        unit: unit of ``measured`` ("s", "ms", "frames/s"...).
        ratio: the row's ratio (None for rows that only inform).
        ratio_label: what the ratio divides ("check / floor").
        goal: the goal for the ratio (None: informational).
        note: anything the reader must know to trust the row (peer missing, quick sizes...).
        extra: further numbers for the JSON output.
    """

    figure: str
    name: str
    measured: Sample | None
    unit: str
    ratio: Sample | None = None
    ratio_label: str = ""
    goal: Goal | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    """A stable identifier (``zvt.check.full``) so a figure can be tracked from run to run."""
    floor: Sample | None = None
    """What the program cannot go below, in ``floor_unit`` (``unit`` when empty)."""
    floor_unit: str = ""

    @property
    def met(self) -> bool | None:
        """Whether the median ratio (the median value, for an :class:`AbsoluteGoal`) meets
        the goal; None without a goal or what it bounds."""
        bounded = self.measured if isinstance(self.goal, AbsoluteGoal) else self.ratio
        if self.goal is None or bounded is None:
            return None
        return self.goal.met(bounded.median)

    @property
    def stable_id(self) -> str:
        """``id``, else one made from the figure and the row's name."""
        if self.id:
            return self.id
        words = re.findall(r"[a-z0-9]+", f"{self.figure} {self.name}".lower())
        return ".".join(words)

    def to_json(self) -> dict[str, Any]:
        """One figure for ``--json``: medians first, the spread and the raw runs beside them.

        ``goal`` is the bound on ``ratio`` and ``goal_op`` says which side (``<=`` for a slowdown
        against a floor, ``>=`` for a headroom); ``met`` is whether the median ratio meets it.
        """
        measured = self.measured
        return {
            "figure": self.stable_id,
            "title": f"{self.figure}: {self.name}",
            "value": measured.median if measured else None,
            "unit": self.unit,
            "floor": self.floor.median if self.floor else None,
            "floor_unit": self.floor_unit or self.unit,
            "ratio": self.ratio.median if self.ratio else None,
            "ratio_label": self.ratio_label,
            "goal": self.goal.value if self.goal else None,
            "goal_op": self.goal.op if self.goal else None,
            "goal_on": (
                None
                if self.goal is None
                else "value"
                if isinstance(self.goal, AbsoluteGoal)
                else "ratio"
            ),
            "met": self.met,
            "runs": len(measured.values) if measured else 0,
            "note": self.note,
            "spread": {
                "value": measured.to_json() if measured else None,
                "floor": self.floor.to_json() if self.floor else None,
                "ratio": self.ratio.to_json() if self.ratio else None,
            },
            "extra": self.extra,
        }


@dataclass(frozen=True)
class Settings:
    """How hard to measure: ``--quick`` for CI (seconds), full for the recorded results."""

    quick: bool
    runs: int

    @classmethod
    def make(cls, quick: bool, runs: int | None = None) -> Settings:
        """Quick: 3 runs of small sizes; full: 5 runs (or ``runs``)."""
        return cls(quick, runs or (3 if quick else 5))


def fmt(value: float) -> str:
    """A number with about three significant digits, in plain notation."""
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"


def fmt_sample(sample: Sample, unit: str = "") -> str:
    """``median [min–max] unit``."""
    text = f"{fmt(sample.median)} [{fmt(sample.min)}–{fmt(sample.max)}]"
    return f"{text} {unit}".rstrip()
