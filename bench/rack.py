"""A rack of simulated terminals in a process of its own, as a depot's terminals sit on cables.

Run as ``python -m bench.rack ADDRESS...`` with simulated addresses (``zvt+sim://activated?
serial=…&time_scale=1``, ``adb+sim://activated?model=pax-a920&serial=…&latency=0.03``): each
becomes a simulator attached the way a real unit is reached, a ZVT terminal behind its own
pseudo terminal (serial framing, 9600 baud modelled) and an Android terminal on its own TCP port.
One address per line is printed, in order, in the form ``posdiag`` accepts
(``zvt+serial:///dev/pts/N?baud=9600``, ``adb+tcp://127.0.0.1:PORT``), then ``ready``; the rack
serves until stdin closes or SIGTERM.

The station under test then shares nothing with its terminals but the cables: their CPU, memory
and interpreter lock are the rack's, as a real terminal's are its own, so the station's figures
count posdiag's work alone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from .simserver import ROOT


def _attach(text: str) -> tuple[Any, str]:
    """The attachment serving ``text``'s simulator and the address a client uses for it."""
    from posdiag.drivers.address import parse_address
    from posdiag.drivers.zvt.connection import Link
    from posdiag.simulators.attach import PtyAttachment, TcpAttachment
    from posdiag.simulators.registry import create_adb, create_zvt

    address = parse_address(text)
    options = dict(address.options)
    if address.family == "zvt":
        options.setdefault("baud", "9600")
        zvt = PtyAttachment(create_zvt(address.target, options, Link.SERIAL))
        return zvt, f"zvt+serial://{zvt.start()}?baud={options['baud']}"
    simulator = create_adb(address.target, options.get("model", "android-generic"), options)
    adb = TcpAttachment(simulator, "127.0.0.1", 0)
    host, port = adb.start()
    return adb, f"adb+tcp://{host}:{port}"


def main(argv: Sequence[str]) -> int:
    """Attach every simulator, print the addresses, serve until told to stop."""
    from posdiag.agent.logs import configure_logging

    configure_logging("console", "error")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())

    def stop_when_parent_goes() -> None:  # stdin closes when the benchmark ends or dies
        sys.stdin.read()
        stopped.set()

    with ExitStack() as attached:
        for text in argv:
            attachment, address = _attach(text)
            attached.callback(attachment.stop)
            print(address)
        print("ready", flush=True)
        threading.Thread(target=stop_when_parent_goes, daemon=True).start()
        stopped.wait()
    return 0


@contextmanager
def racks(addresses: Sequence[str], processes: int = 2) -> Iterator[list[str]]:
    """Serve ``addresses`` from ``processes`` rack processes; yields the real addresses in order.

    Several racks, so that a fleet's simulators do not queue behind one interpreter lock: a
    slow simulator would be charged to the station's wall time.
    """
    processes = max(1, min(processes, len(addresses)))
    shares = [list(addresses[index::processes]) for index in range(processes)]
    started: list[subprocess.Popen[str]] = []
    try:
        for share in shares:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.rack", *share],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        served: list[list[str]] = []
        for process, share in zip(started, shares, strict=True):
            assert process.stdout is not None
            lines = [process.stdout.readline().strip() for _ in share]
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a rack did not start: {lines[-3:]}")
            served.append(lines)
        # back to the caller's order: address i was served by rack i % processes
        yield [served[index % processes][index // processes] for index in range(len(addresses))]
    finally:
        for process in started:
            if process.stdin is not None:
                process.stdin.close()
            process.terminate()
        for process in started:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
