"""Figure 5: start-up, ``posdiag --version`` and a ``posdiag check`` process.

Each command runs as users run it (the installed ``posdiag`` script, else ``python -m
posdiag.agent``), alternating with ``python -c pass`` in the same rounds, so the floor is what
this machine's interpreter costs whatever its speed. Both sides run with their bytecode cached:
posdiag's is compiled first, because a checkout under ``PYTHONDONTWRITEBYTECODE`` would otherwise
measure the compiler on every run rather than posdiag (a wheel's is compiled when installed).

* ``--version`` is answered by the launcher before click, rich or the version lookup load:
  goal **≤ 2×** the bare interpreter.
* ``check`` of a simulated terminal (``time_scale=0``: no simulated delays) is a whole process,
  the price of every check a depot script runs: goal **≤ 0.25 s**, an absolute bound a person
  notices, with the floor beside it. One ZVT and one Android terminal, each loading its own
  family only.
* ``list`` (nothing attached) is shown for insight, without a goal.

The commands run in an empty home and in English, so a station's settings file, backends or
language on the machine that measures change nothing.
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from .stats import AbsoluteGoal, Goal, Row, Sample, Settings, ratios, run_process, side_by_side

FIGURE = "5 Start-up"
VERSION_GOAL = Goal("<=", 2.0)
CHECK_GOAL = AbsoluteGoal("<=", 0.25, unit="s")
CHECKS = {
    "zvt": "zvt+sim://activated?time_scale=0",
    "adb": "adb+sim://activated?model=pax-a920&time_scale=0",
}
NOT_READY = 1
"""``check``'s exit status for an activated terminal: both simulated ones are."""


def _posdiag() -> list[str]:
    script = Path(sys.executable).with_name("posdiag")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "posdiag.agent"]


def _compile_posdiag() -> bool:
    """Compile posdiag's modules to bytecode where they live; False where that was refused."""
    compiled = True
    for package in ("posdiag.agent", "posdiag.drivers", "posdiag.simulators"):
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            compiled = bool(compileall.compile_dir(folder, quiet=2)) and compiled
    return compiled


def _environment(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "LANG": "C.UTF-8",
    }
    for variable in ("LC_ALL", "LC_MESSAGES", "LANGUAGE", "POSDIAG_ZVT_PASSWORD"):
        env.pop(variable, None)
    return env


def _timer(argv: list[str], env: Mapping[str, str], status: int = 0) -> Callable[[], float]:
    def timed() -> float:
        took, exited, _ = run_process(argv, env=env)
        if exited != status:
            raise RuntimeError(f"{' '.join(argv)} exited {exited}, not {status}")
        return took

    return timed


def _against_python(
    argv: list[str], env: Mapping[str, str], rounds: int, status: int = 0
) -> tuple[Sample, Sample]:
    """(command, ``python -c pass``) wall seconds, side by side."""
    samples = side_by_side(
        {
            "posdiag": _timer(argv, env, status),
            "python": _timer([sys.executable, "-c", "pass"], env),
        },
        rounds,
    )
    return samples["posdiag"], samples["python"]


def run(settings: Settings) -> list[Row]:
    """Each command side by side with ``python -c pass``; 15 rounds (5 quick)."""
    rounds = 5 if settings.quick else 15
    command = _posdiag()
    cached = _compile_posdiag()
    cache_note = "" if cached else "; posdiag's bytecode could not be written: compiled per run"
    rows = []
    with tempfile.TemporaryDirectory(prefix="posdiag-bench-home-") as home:
        env = _environment(Path(home))

        took, python = _against_python([*command, "--version"], env, rounds)
        rows.append(
            Row(
                FIGURE,
                "posdiag --version",
                took.scaled(1000.0),
                "ms",
                ratio=ratios(took, python),
                ratio_label="÷ python -c pass",
                goal=VERSION_GOAL,
                note=f"python -c pass: {python.median * 1000:.1f} ms; {rounds} rounds{cache_note}",
                id="startup.version",
                floor=python.scaled(1000.0),
            )
        )

        for family, address in CHECKS.items():
            took, python = _against_python([*command, "check", address], env, rounds, NOT_READY)
            rows.append(
                Row(
                    FIGURE,
                    f"posdiag check {address} (process)",
                    took,
                    "s",
                    ratio=ratios(took, python),
                    ratio_label="÷ python -c pass",
                    goal=CHECK_GOAL,
                    note=(
                        f"goal on the process's seconds; python -c pass: "
                        f"{python.median * 1000:.1f} ms; {rounds} rounds{cache_note}"
                    ),
                    id=f"startup.check.{family}",
                    floor=python,
                )
            )

        took, python = _against_python([*command, "list"], env, rounds)
        rows.append(
            Row(
                FIGURE,
                "posdiag list (insight)",
                took.scaled(1000.0),
                "ms",
                ratio=ratios(took, python),
                ratio_label="÷ python -c pass",
                note=f"nothing attached; {rounds} rounds{cache_note}",
                id="startup.list",
                floor=python.scaled(1000.0),
            )
        )
    return rows
