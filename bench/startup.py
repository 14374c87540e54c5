"""Figure 5: start-up, ``posdiag --version`` and ``posdiag list`` against a bare interpreter.

Each command runs as users run it (the installed ``posdiag`` script, else ``python -m
posdiag.agent``), alternating with ``python -c pass`` in the same rounds, so the ratio is the
start-up posdiag adds on this machine whatever its speed. ``list`` runs with nothing attached.

The goals follow from the import floors (``python -X importtime``): click, rich's console and the
version lookup alone take about 4.6 times a bare interpreter, so ``--version`` may take 6 (no
driver, logger, database or simulator loaded); ``list`` adds pyserial, pyusb with libusb,
structlog (which brings asyncio and rich's traceback) and the catalogue, about 9 times on their
own, and scans two buses, so 12.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .stats import Goal, Row, Settings, ratios, run_process, side_by_side

FIGURE = "5 Start-up"
GOALS = {"--version": Goal("<=", 6.0), "list": Goal("<=", 12.0)}


def _posdiag() -> list[str]:
    script = Path(sys.executable).with_name("posdiag")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "posdiag.agent"]


def _timed(argv: list[str]) -> float:
    took, status, _ = run_process(argv)
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {status}")
    return took


def run(settings: Settings) -> list[Row]:
    """Each command side by side with ``python -c pass``; 15 rounds (5 quick)."""
    rounds = 5 if settings.quick else 15
    command = _posdiag()
    rows = []
    for args in (["--version"], ["list"]):
        label = " ".join(args)
        samples = side_by_side(
            {
                "posdiag": lambda args=args: _timed([*command, *args]),  # type: ignore[misc]
                "python": lambda: _timed([sys.executable, "-c", "pass"]),
            },
            rounds,
        )
        rows.append(
            Row(
                FIGURE,
                f"posdiag {label}",
                samples["posdiag"].scaled(1000.0),
                "ms",
                ratio=ratios(samples["posdiag"], samples["python"]),
                ratio_label="÷ python -c pass",
                goal=GOALS[label],
                note=(
                    f"python -c pass: {samples['python'].median * 1000:.1f} ms; {rounds} rounds"
                    + ("; nothing attached" if label == "list" else "")
                ),
            )
        )
    return rows
