"""A simulated Android terminal on loopback TCP in its own process, for figure 2.

Run as ``python -m bench.simserver SCENARIO MODEL [OPTION=VALUE...]``: prints ``HOST:PORT`` on
the first line, serves until SIGTERM or stdin closes. A process of its own, so every client
measured against it (our driver, the stock ``adb``, adb-shell) faces the same simulator, and
none of them shares the simulator's interpreter lock.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADB_LATENCY = 0.03
"""Seconds a real Android POS takes to answer one ``adb shell`` command, the benchmark's
"realistic timing" for simulated Android terminals. adbd forks a shell for every command: on the
PAX A920 / Sunmi P2 class (Cortex-A53/A7, Android 7-11) a ``getprop`` takes some 20-40 ms over USB
and a ``dumpsys`` often 100 ms or more, so 30 ms for every command is a conservative floor.
The simulator charges it once per shell stream (adbd's fork+exec of ``sh -c LINE``), so a command
line of many ``;``-separated commands pays it once; sync streams (a thread in adbd) do not."""


def main(argv: list[str]) -> int:
    """Start the simulator, announce its address, and serve until told to stop."""
    from posdiag.agent.logs import configure_logging
    from posdiag.simulators.attach import TcpAttachment
    from posdiag.simulators.registry import create_adb

    configure_logging("console", "error")
    scenario, model, *pairs = argv
    options = dict(pair.split("=", 1) for pair in pairs)
    attachment = TcpAttachment(create_adb(scenario, model, options), "127.0.0.1", 0)
    host, port = attachment.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())

    def stop_when_parent_goes() -> None:  # stdin closes when the benchmark ends or dies
        sys.stdin.read()
        stopped.set()

    threading.Thread(target=stop_when_parent_goes, daemon=True).start()
    print(f"{host}:{port}", flush=True)
    try:
        stopped.wait()
    finally:
        attachment.stop()
    return 0


@contextmanager
def simulated_adbs(
    count: int, scenario: str = "activated", model: str = "pax-a920", **options: str
) -> Iterator[list[tuple[str, int]]]:
    """``count`` identical simulator processes, started together; yields their (host, port)s."""
    args = [f"{key}={value}" for key, value in options.items()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.simserver", scenario, model, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        addresses = []
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            host, sep, port = line.rpartition(":")
            if not sep:
                raise RuntimeError(f"a simulator process did not start (said {line!r})")
            addresses.append((host, int(port)))
        yield addresses
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


@contextmanager
def simulated_adb(
    scenario: str = "activated", model: str = "pax-a920", **options: str
) -> Iterator[tuple[str, int]]:
    """One simulator process for the duration of the block; yields its (host, port)."""
    with simulated_adbs(1, scenario, model, **options) as (address,):
        yield address


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
