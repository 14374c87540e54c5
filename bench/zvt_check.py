"""Figure 1: a ZVT check against the exchanges its verdict needs, on the wire.

The terminal is a simulated Feig cVEND in scenario ``activated`` run by ``posdiag simulate zvt``
in **its own process** behind a pseudo terminal, as a real terminal sits behind a USB serial
adapter: its CPU is not the check's. The check takes the path of ``posdiag check
zvt+serial:///dev/pts/N``: ``open_terminal`` then ``inspect_terminal`` over pyserial.

The floor is what the terminal and the line cannot do faster, whatever the ECR does: the
exchanges the verdict reads, and no others, run back to back by a bare script on the driver
(Registration, Status Enquiry, the configuration printout, Turnover Totals, Diagnosis, Log-Off
for the full check; Registration, Status Enquiry, Turnover Totals, Log-Off for ``--quick``),
counted as the simulated terminal counts them: every byte both ways × 11 bit times at 9600 baud
(8N2), plus the terminal's stated latencies (50 ms before each answer, 1.5 s to dial its host).
The list is fixed here from what the verdict reads, so an exchange the check adds, repeats or
waits for raises the check's time and never the floor (the previous floor was the simulator's
busy time during the check itself, which grew with every extra exchange).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .stats import Goal, Row, Sample, Settings, ratios

FIGURE = "1 ZVT check"
SCENARIO = "activated"
FULL_GOAL = Goal("<=", 1.10)
QUICK_GOAL = Goal("<=", 1.2)
FULL_EXCHANGES = (
    "register",
    "status_enquiry",
    "print_system_configuration",
    "turnover_totals",
    "diagnosis",
    "log_off",
)
"""What a full check's verdict reads: identity, binding and health (status), firmware, network,
battery and merchant lines (printout), unsettled money (totals), host reachability (diagnosis)."""
QUICK_EXCHANGES = ("register", "status_enquiry", "turnover_totals", "log_off")
"""What triage reads: identity and binding (status), unsettled money (totals)."""


@contextmanager
def terminal_process(time_scale: float) -> Iterator[str]:
    """``posdiag simulate zvt`` in its own process; yields the address it prints."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "posdiag.agent",
            "simulate",
            "zvt",
            "--scenario",
            SCENARIO,
            "--time-scale",
            str(time_scale),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        address = process.stdout.readline().strip()
        if not address.startswith("zvt+"):
            raise RuntimeError(f"the simulator printed no address: {address!r}")
        yield address + "?baud=9600"
    finally:
        process.terminate()
        process.wait(10)


def floor_seconds(exchanges: tuple[str, ...], time_scale: float) -> tuple[float, int, int]:
    """Line and terminal time of exactly ``exchanges``, with the bytes each way.

    A fresh terminal per floor, the exchanges run by the bare driver: the simulator counts
    every byte on its line and every latency it states (``ZvtSimulator.busy_time``).
    """
    from posdiag.agent.connect import open_terminal
    from posdiag.drivers.address import parse_address
    from posdiag.simulators.attach import PtyAttachment
    from posdiag.simulators.registry import create_zvt

    simulator = create_zvt(SCENARIO, {"time_scale": str(time_scale), "baud": "9600"})
    with PtyAttachment(simulator) as attachment:
        terminal = open_terminal(parse_address(f"zvt+serial://{attachment.path}?baud=9600"))
        driver = getattr(terminal, "driver")  # noqa: B009 - the ZVT terminal's own driver
        driver.open()
        simulator.reset_busy_time()
        try:
            for name in exchanges:
                getattr(driver, name)()
        finally:
            driver.close()
        return simulator.busy_time, simulator.bytes_sent, simulator.bytes_received


def _one_check(address: str, quick: bool) -> float:
    """Wall seconds of one check (``--quick`` or full) of the terminal at ``address``."""
    from posdiag.agent.connect import open_terminal
    from posdiag.agent.inspect import inspect_terminal
    from posdiag.agent.policy import check_scope, load_policy
    from posdiag.drivers.address import parse_address

    policy = load_policy(None)
    started = time.perf_counter()
    terminal = open_terminal(parse_address(address))
    report = inspect_terminal(terminal, policy, scope=check_scope(policy, quick=quick, full=True))
    wall = time.perf_counter() - started
    if report.identity is None or report.errors:
        raise RuntimeError(f"the check did not complete: {report.errors or 'unreachable'}")
    return wall


def _row(
    name: str,
    ident: str,
    exchanges: tuple[str, ...],
    goal: Goal,
    check: Callable[[], float],
    settings: Settings,
    time_scale: float,
) -> Row:
    floor, sent, received = floor_seconds(exchanges, time_scale)
    walls = Sample.of([check() for _ in range(settings.runs)])
    floors = Sample.of([floor] * settings.runs)
    note = (
        f"floor {floor:.3f} s: {', '.join(exchanges)}; {sent} bytes from the terminal + "
        f"{received} to it × 11 bits / 9600 baud + its stated latencies (50 ms an answer, "
        f"1.5 s host dial-up); simulator in its own process, pty"
    )
    if settings.quick:
        note += f"; QUICK: time_scale {time_scale}, so fixed costs weigh 10× more"
    return Row(
        FIGURE,
        name,
        walls,
        "s",
        ratio=ratios(walls, floors),
        ratio_label="check wall / floor",
        goal=goal,
        note=note,
        id=ident,
        floor=floors,
        extra={
            "time_scale": time_scale,
            "bytes_from_terminal": sent,
            "bytes_to_terminal": received,
        },
    )


def run(settings: Settings) -> list[Row]:
    """The full check and the quick triage, each against its own needed-exchange floor."""
    time_scale = 0.1 if settings.quick else 1.0
    with terminal_process(time_scale) as address:
        _one_check(address, quick=True)  # warm-up: imports, the catalogue, the first open
        return [
            _row(
                "full check vs its needed exchanges",
                "zvt.check.full",
                FULL_EXCHANGES,
                FULL_GOAL,
                lambda: _one_check(address, quick=False),
                settings,
                time_scale,
            ),
            _row(
                "check --quick vs its needed exchanges",
                "zvt.check.quick",
                QUICK_EXCHANGES,
                QUICK_GOAL,
                lambda: _one_check(address, quick=True),
                settings,
                time_scale,
            ),
        ]
