"""What every campaign section shares: the tally, the run settings, the outputs it collected.

A section counts what it *tried* and, per defect column, what went wrong; the table is made of
those counts. Each defect also keeps a short example (the first few per column), because a count
without a reproducer sends the reader back to the code. Every output the campaign produces
(subprocess streams, ledgers, certificates, reports) is registered in :class:`Outputs`, so the
secrets section can grep all of it at the end.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT.parent / "shared" / "captures" / "zvt-everest"
MAX_EXAMPLES = 3


@dataclass
class Settings:
    """How big and which seed.

    Attributes:
        quick: the CI size (whole run under 3 minutes on 2 cores).
        seed: every random choice derives from it, so a run can be repeated exactly.
        workdir: a private temporary folder for this run's files (removed at the end).
        scale: shrinks the quick sizes further (the test suite's tiny runs); full ignores it.
    """

    quick: bool
    seed: int
    workdir: Path
    scale: float = 1.0

    def rng(self, section: str) -> random.Random:
        """A generator per section, so ``--only`` makes the same choices as a whole run."""
        digest = hashlib.sha256(f"{self.seed}:{section}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def size(self, quick: int, full: int) -> int:
        """The quick (times ``scale``, at least 1) or the full figure."""
        return max(1, round(quick * self.scale)) if self.quick else full


@dataclass
class Row:
    """One line of a section's table: what was tried, and the defects found, per column."""

    label: str
    tried: int = 0
    defects: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    info: str = ""

    def defect(self, column: str, example: str) -> None:
        """Count one defect in ``column`` and keep its example while there are few."""
        self.defects[column] += 1
        kept = self.examples.setdefault(column, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(" ".join(example.split())[:300])


@dataclass
class SectionResult:
    """A section's table: its defect columns and rows; ``failed`` says the machinery broke."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    failed: str | None = None
    seconds: float = 0.0

    @property
    def tried(self) -> int:
        """Everything this section tried."""
        return sum(row.tried for row in self.rows)

    @property
    def defects(self) -> int:
        """Every defect this section found (a broken section counts as one)."""
        return sum(sum(row.defects.values()) for row in self.rows) + (1 if self.failed else 0)

    def row(self, label: str) -> Row:
        """The row with this label, created on first use (rows keep their first-use order)."""
        for row in self.rows:
            if row.label == label:
                return row
        made = Row(label)
        self.rows.append(made)
        return made


class Outputs:
    """Everything the campaign wrote or printed, for the secrets grep.

    Texts are kept in memory (they are small: streams of short runs); files are kept by path and
    read at grep time, and copied aside first when the folder they live in is about to go.
    """

    def __init__(self, keep_dir: Path) -> None:
        self.texts: list[tuple[str, bytes]] = []
        self.files: list[Path] = []
        self.secrets: set[str] = set()
        self._keep_dir = keep_dir
        self._kept = 0

    def text(self, where: str, data: bytes | str) -> None:
        """Remember one output (a stream, a JSON line, a rendered report)."""
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
        if raw:
            self.texts.append((where, raw))

    def tree(self, folder: Path) -> None:
        """Remember every file under ``folder`` (copied aside: the folder may be removed soon)."""
        if not folder.exists():
            return
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self._kept += 1
            target = self._keep_dir / f"{self._kept:06d}-{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(path, target)
            except OSError:
                continue
            self.files.append(target)

    def secret(self, *values: str | None) -> None:
        """A value that must never appear in any output (password, full TID/MID, key)."""
        for value in values:
            if value and len(value.strip()) >= 4:
                self.secrets.add(value.strip())


@dataclass
class Proc:
    """A finished subprocess: streams, exit status, time and its peak memory."""

    args: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    peak_rss_mb: float
    timed_out: bool = False


def posdiag_cmd() -> list[str]:
    """How to start the CLI: the venv's ``posdiag``, else ``python -m posdiag.agent``."""
    exe = Path(sys.executable).with_name("posdiag")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "posdiag.agent"]


def isolated_env(home: Path) -> dict[str, str]:
    """An environment whose HOME and XDG folders are private to this campaign run."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        COLUMNS="120",
        PYTHONUNBUFFERED="1",
    )
    env.pop("POSDIAG_ZVT_PASSWORD", None)
    return env


LAUNCHER = """
import os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: child.kill())
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
"""
"""Starts the command from a small fresh interpreter and reports its peak RSS.

Linux folds the parent's high-water mark into a forked child's ``ru_maxrss`` (fork copies it,
exec keeps it), so a child of the campaign, itself 70+ MB, would never read below that. A
child of this launcher inherits the launcher's few MB instead."""


def run_process(
    args: Sequence[str], *, env: dict[str, str], timeout: float, cwd: Path | None = None
) -> Proc:
    """Run to the end (or kill at ``timeout``), measuring wall time and the child's peak RSS."""
    started = time.monotonic()
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".rss") as rss,
        subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, rss.name, *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        ) as proc,
    ):
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.terminate()  # the launcher kills the command, then reports and exits
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        try:
            peak_kb = int(rss.read() or 0)
        except ValueError:
            peak_kb = 0
        returncode = proc.returncode
        if returncode > 128:  # the launcher passes a signal death on as 128 + signal
            returncode = -(returncode - 128)
        return Proc(
            list(args), returncode, out.read(), err.read(), seconds, peak_kb / 1024, timed_out
        )


@contextmanager
def scratch(settings: Settings, name: str) -> Iterator[Path]:
    """A fresh private folder under the run's workdir, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=settings.workdir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def progress(message: str) -> None:
    """A progress line on stderr, only for a person watching (stderr is a terminal)."""
    if sys.stderr.isatty():
        print(f"campaign: {message}", file=sys.stderr, flush=True)
