"""The posdiag console script as real processes: a simulator on a pty or loopback TCP, then checks.

``posdiag simulate`` prints its address as the first stdout line and serves until SIGTERM or
SIGINT, after which it exits 0. Every process started here is killed at teardown, whatever
happened in the test.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

POSDIAG = Path(sys.executable).with_name("posdiag")
ADDRESS_TIMEOUT = 10.0
STOP_TIMEOUT = 3.0
TID = "52502000"
FAST = ("--time-scale", "0")

pytestmark = pytest.mark.skipif(not POSDIAG.exists(), reason=f"{POSDIAG} is not installed")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POSDIAG_ZVT_PASSWORD", "FORCE_COLOR")}
    env["NO_COLOR"] = "1"
    return env


def default_sigint() -> None:
    """Give the child Python's KeyboardInterrupt even if our SIGINT is ignored (background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Simulator:
    process: subprocess.Popen[str]
    address: str
    stderr_path: Path

    def stop(self, sig: signal.Signals) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(sig)
        code = self.process.wait(STOP_TIMEOUT)
        return code, time.monotonic() - started

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, or a failure after ``timeout`` seconds (never a hang)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        pytest.fail(f"posdiag simulate printed no address within {timeout} s")


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Callable[..., Simulator]]:
    """Start ``posdiag simulate zvt``; each process is killed at teardown if still running."""
    started: list[subprocess.Popen[str]] = []

    def start(scenario: str, *attach: str) -> Simulator:
        stderr_path = tmp_path / f"simulate-{len(started)}.err"
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [str(POSDIAG), "simulate", "zvt", "--scenario", scenario, *attach, *FAST],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=clean_env(),
                preexec_fn=default_sigint,
            )
        started.append(process)
        return Simulator(process, first_line(process, ADDRESS_TIMEOUT), stderr_path)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(POSDIAG), "check", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )


def test_activated_over_a_pty(simulate: Callable[..., Simulator]) -> None:
    sim = simulate("activated", "--pty")
    assert re.fullmatch(r"zvt\+serial:///dev/pts/\d+", sim.address), sim.address
    result = check(sim.address)
    assert result.returncode == 1, result.stderr
    assert "WIPE REQUIRED" in result.stdout
    assert "****2000" in result.stdout
    assert TID not in result.stdout + result.stderr
    assert "(simulated)" not in result.stdout  # posdiag sees a serial line, like real hardware
    assert "Simulated FEIG ELECTRONIC cVEND plug (serial 17F59B1F), scenario activated" in (
        sim.stderr
    )


def test_pty_simulator_serves_check_after_check(simulate: Callable[..., Simulator]) -> None:
    sim = simulate("activated", "--pty")
    for _ in range(2):
        assert check(sim.address).returncode == 1


def test_unsettled_over_a_pty(simulate: Callable[..., Simulator]) -> None:
    sim = simulate("unsettled", "--pty")
    result = check(sim.address)
    assert result.returncode == 1, result.stderr
    assert "3 UNSETTLED transactions, €47.57" in result.stdout
    assert "3 unsettled transactions (€47.57): settle (End-of-Day) before wiping" in (
        result.stdout
    )


def test_fresh_over_tcp(simulate: Callable[..., Simulator]) -> None:
    sim = simulate("fresh", "--tcp", "127.0.0.1:0")
    match = re.fullmatch(r"zvt\+tcp://127\.0\.0\.1:(\d+)", sim.address)
    assert match, sim.address
    assert int(match.group(1)) != 0
    result = check(sim.address)
    assert result.returncode == 0, result.stderr
    assert "READY" in result.stdout
    json_result = check("--json", sim.address)
    assert json_result.returncode == 0
    assert '"address": "' + sim.address + '"' in json_result.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("attach", [("--pty",), ("--tcp", "127.0.0.1:0")], ids=["pty", "tcp"])
def test_simulator_stops_cleanly(
    simulate: Callable[..., Simulator], sig: signal.Signals, attach: tuple[str, ...]
) -> None:
    # Signalled as soon as the address is read: the handler must already be in place.
    sim = simulate("activated", *attach)
    code, seconds = sim.stop(sig)
    assert code == 0
    assert seconds < STOP_TIMEOUT
    assert "Traceback" not in sim.stderr


def test_stopped_tcp_simulator_is_unreachable(simulate: Callable[..., Simulator]) -> None:
    sim = simulate("fresh", "--tcp", "127.0.0.1:0")
    assert check(sim.address).returncode == 0
    assert sim.stop(signal.SIGTERM)[0] == 0
    result = check(sim.address)
    assert result.returncode == 3
    assert "on the same network" in result.stdout


def test_bad_address_in_a_real_process() -> None:
    result = check("bogus")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr
