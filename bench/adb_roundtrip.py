"""Figure 2: ADB round trips against the stock adb client and adb-shell; a check in one trip.

The same shell command, ``getprop ro.serialno``, runs again and again against the simulated
Android terminal over loopback TCP, through:

* our driver (``AdbDriver`` over ``TcpTransport``), on a held connection, as a check uses it;
* the stock ``adb`` client (from the adbutils wheel, else ``PATH``) as users run it: its server
  already running and connected to the terminal, one ``adb -s HOST:PORT shell ...`` per command;
* adb-shell (PyPI), a pure-Python client, on a held connection, where it is installed;
* for insight only, the same stock server spoken to directly over its host protocol (adbutils'
  Python client), which shows how much of the stock client's time is its process start.

Each client gets its own simulator process (a simulated terminal serves one connection at a
time, and the stock server holds one for good), all built from the same scenario, and the clients
take turns in every round, so each ratio is measured side by side.

Then the Android check (``open_terminal`` + ``inspect_terminal``, full and ``--quick``) against
one batched round trip: a connect plus ONE ``shell:`` command returning as many bytes as the
check's commands printed, on the same simulated unit at the same device latency (30 ms a shell,
``simserver.ADB_LATENCY``). The check sends its facts as one command line (see
``posdiag.drivers.adb.facts``), so one round trip plus the bytes is what it cannot go below; the
goal is at most twice that. For insight: the same check one command at a time (the way before
batching) against the same floor, and both against an instant device.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from posdiag.simulators.stock_adb import StockAdb, find_stock_adb

from .simserver import ADB_LATENCY, simulated_adb, simulated_adbs
from .stats import Goal, Row, Sample, Settings, ratios, run_process, side_by_side

FIGURE = "2 ADB round trip"
COMMAND = "getprop ro.serialno"
SCENARIO, MODEL = "activated", "pax-a920"
FASTER = Goal("<=", 1.0)
CHECK_GOAL = Goal("<=", 2.0)
OURS = "ours"
CLIENT = "stock adb client"
SERVER = "stock adb server"
SHIPPED = "adb-shell"
NODELAY = "adb-shell+NODELAY"
TIMEOUT = 15.0


def _expect(output: str, serial: str, who: str) -> None:
    if output.strip() != serial:
        raise RuntimeError(f"{who} read {output.strip()!r}, expected {serial!r}")


def _batch(call: Callable[[], Any], count: int) -> Callable[[], float]:
    """A contender: seconds per call over ``count`` calls."""

    def measure() -> float:
        started = time.perf_counter()
        for _ in range(count):
            call()
        return (time.perf_counter() - started) / count

    return measure


@contextlib.contextmanager
def _ours(host: str, port: int, serial: str) -> Iterator[Callable[[], None]]:
    from posdiag.drivers.adb.driver import AdbDriver
    from posdiag.drivers.transport.tcp import TcpTransport

    driver = AdbDriver(TcpTransport(host, port))
    driver.open()
    try:
        _expect(driver.shell(COMMAND).text, serial, "our driver")
        yield lambda: driver.shell(COMMAND)
    finally:
        driver.close()


def _ours_cold(host: str, port: int) -> None:
    """One command from nothing: TCP connect, CNXN, the shell stream, close."""
    from posdiag.drivers.adb.driver import AdbDriver
    from posdiag.drivers.transport.tcp import TcpTransport

    driver = AdbDriver(TcpTransport(host, port))
    try:
        driver.open()
        driver.shell(COMMAND)
    finally:
        driver.close()


@contextlib.contextmanager
def _adb_shell(
    host: str, port: int, serial: str, *, nodelay: bool = False
) -> Iterator[Callable[[], None] | str]:
    """adb-shell on a held connection, or the reason it is unavailable.

    As shipped, adb-shell writes a packet's header and payload in two ``send()`` calls on a
    socket without ``TCP_NODELAY``, so Nagle holds every payload until the device's delayed ACK
    (about 40 ms on Linux, as on an Android device). ``nodelay`` sets the option on its socket,
    to compare the clients themselves rather than that one socket setting.
    """
    try:
        from adb_shell.adb_device import AdbDeviceTcp
    except ImportError as exc:
        yield f"adb-shell not installed ({exc.name}): pip install -e '.[bench]'"
        return
    device = AdbDeviceTcp(host, port, default_transport_timeout_s=TIMEOUT)
    try:
        device.connect(rsa_keys=None, auth_timeout_s=2.0)
        if nodelay:
            sock = device._io_manager._transport._connection  # no public handle on its socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _expect(str(device.shell(COMMAND)), serial, "adb-shell")
    except Exception as exc:  # a peer that fails is reported, never fatal to the suite
        with contextlib.suppress(Exception):
            device.close()
        yield f"adb-shell failed: {type(exc).__name__}: {exc}"
        return
    try:
        yield lambda: device.shell(COMMAND)
    finally:
        device.close()


@contextlib.contextmanager
def _stock(
    host: str, port: int, serial: str
) -> Iterator[tuple[Callable[[], None], Callable[[], None] | str] | str]:
    """The stock client (one process per command) and its server via adbutils, or why not."""
    binary = find_stock_adb()
    if binary is None:
        yield "no stock adb client (install the test extra: adbutils ships one, or put adb on PATH)"
        return
    with tempfile.TemporaryDirectory(prefix="posdiag-bench-adb-") as home:
        try:
            stock = StockAdb(binary, Path(home), TIMEOUT)
        except (RuntimeError, OSError) as exc:
            yield f"the stock adb server did not start: {exc}"
            return
        try:
            target = f"{host}:{port}"
            stock.connect(target)
            if stock.wait_for_state(target, "device", TIMEOUT) != "device":
                raise RuntimeError(f"the stock adb client never saw {target} online")
            _expect(stock.run("-s", target, "shell", COMMAND).stdout, serial, "stock adb")

            argv = [stock.binary, "-P", str(stock.port), "-s", target, "shell", COMMAND]

            def client() -> None:
                # run_process, not subprocess.run(timeout=): that polls with sleeps and
                # would add milliseconds to every stock command, flattering our ratio.
                run_process(argv, timeout=TIMEOUT, env=stock.env)

            server: Callable[[], None] | str
            try:
                import adbutils

                device = adbutils.AdbClient("127.0.0.1", stock.port, TIMEOUT).device(target)
                _expect(str(device.shell(COMMAND)), serial, "adbutils")
                server = lambda: device.shell(COMMAND)  # noqa: E731
            except Exception as exc:  # informational peer: report, never fail
                server = f"adbutils client unavailable: {type(exc).__name__}: {exc}"
            yield client, server
        finally:
            stock.close()


def _round_trips(settings: Settings) -> list[Row]:
    fast = 10 if settings.quick else 100  # calls per batch for sub-millisecond clients
    slow = 3 if settings.quick else 10  # for clients that take milliseconds a call
    with contextlib.ExitStack() as stack:
        sims = stack.enter_context(simulated_adbs(4, SCENARIO, MODEL, time_scale="0"))
        from posdiag.simulators.registry import create_adb

        serial = create_adb(SCENARIO, MODEL).state.serial
        ours = stack.enter_context(_ours(*sims[0], serial))
        shipped = stack.enter_context(_adb_shell(*sims[1], serial))
        nodelay = stack.enter_context(_adb_shell(*sims[2], serial, nodelay=True))
        stock = stack.enter_context(_stock(*sims[3], serial))

        contenders: dict[str, Callable[[], float]] = {OURS: _batch(ours, fast)}
        missing: dict[str, str] = {}
        for label, peer, count in ((SHIPPED, shipped, slow), (NODELAY, nodelay, fast)):
            if isinstance(peer, str):
                missing[label] = peer
            else:
                contenders[label] = _batch(peer, count)
        if isinstance(stock, str):
            missing[CLIENT] = missing[SERVER] = stock
        else:
            client, server = stock
            contenders[CLIENT] = _batch(client, slow)
            if isinstance(server, str):
                missing[SERVER] = server
            else:
                contenders[SERVER] = _batch(server, slow)
        samples = side_by_side(contenders, settings.runs)

    ms = 1000.0
    mine = samples[OURS].scaled(ms)
    rows: list[Row] = []
    for label, goal, remark in (
        (CLIENT, FASTER, "one `adb -s HOST:PORT shell` process a command, server running"),
        (NODELAY, FASTER, "TCP_NODELAY set on its socket: the clients themselves compared"),
        (SHIPPED, FASTER, "as shipped: no TCP_NODELAY, so ~40 ms delayed-ACK stalls"),
        (SERVER, None, "insight only: the stock server via adbutils' host protocol"),
    ):
        name = f"`{COMMAND}` round trip: ours vs {label}"
        if label in samples:
            peer_ms = samples[label].scaled(ms)
            rows.append(
                Row(
                    FIGURE,
                    name,
                    mine,
                    "ms",
                    ratio=ratios(samples[OURS], samples[label]),
                    ratio_label=f"ours / {label}",
                    goal=goal,
                    note=f"{label}: {peer_ms.median:.3f} ms a command ({remark})",
                    extra={"peer_ms": peer_ms.to_json()},
                )
            )
        else:
            rows.append(Row(FIGURE, name, mine, "ms", goal=goal, note=f"NO PEER: {missing[label]}"))
    rows[0].note += (
        "; ours and adb-shell on a held connection; each client its own simulator process "
        "(time_scale 0); ours runs shell v2 (exit codes), adb-shell shell v1"
    )
    return rows


def _cold(settings: Settings) -> list[Row]:
    """One command from cold, ours (connect + CNXN + shell) against the stock client."""
    with contextlib.ExitStack() as stack:
        ours_sim, stock_sim = stack.enter_context(
            simulated_adbs(2, SCENARIO, MODEL, time_scale="0")
        )
        from posdiag.simulators.registry import create_adb

        serial = create_adb(SCENARIO, MODEL).state.serial
        stock = stack.enter_context(_stock(*stock_sim, serial))
        batch = 3 if settings.quick else 20
        contenders = {"ours": _batch(lambda: _ours_cold(*ours_sim), batch)}
        if not isinstance(stock, str):
            contenders["stock"] = _batch(stock[0], batch)
        samples = side_by_side(contenders, settings.runs)
    name = f"one `{COMMAND}` from cold (ours: TCP connect + CNXN + shell)"
    mine = samples["ours"].scaled(1000.0)
    if "stock" not in samples:
        return [Row(FIGURE, name, mine, "ms", goal=FASTER, note=f"NO PEER: {stock}")]
    return [
        Row(
            FIGURE,
            name,
            mine,
            "ms",
            ratio=ratios(samples["ours"], samples["stock"]),
            ratio_label="ours / stock adb client",
            goal=FASTER,
            note=(
                f"stock adb client {samples['stock'].scaled(1000.0).median:.2f} ms "
                "(its server keeps the device connected)"
            ),
        )
    ]


class _Tally:
    """What a check asked of the device: its streams and the bytes its shells printed.

    Installed on the check's own driver (``_tally``) so the floor can be sized to the check's
    real output, and the note can say how many streams the check opened.
    """

    def __init__(self) -> None:
        self.shells = 0
        self.syncs = 0
        self.output_bytes = 0


def _tally(driver: Any, tally: _Tally) -> None:
    """Count the driver's shell streams, their output and its file reads (sync streams)."""
    shell, read_file = driver.shell, driver.read_file

    def counted_shell(command: str, **kwargs: Any) -> Any:
        tally.shells += 1
        output = shell(command, **kwargs)
        tally.output_bytes += len(output.stdout) + len(output.stderr)
        return output

    def counted_read(path: str, **kwargs: Any) -> Any:
        tally.syncs += 1
        return read_file(path, **kwargs)

    driver.shell, driver.read_file = counted_shell, counted_read


def _one_check(host: str, port: int, *, quick: bool, batched: bool) -> tuple[float, _Tally]:
    """Wall seconds of one Android check from nothing (connect included), and its tally."""
    from posdiag.agent.connect import open_terminal
    from posdiag.agent.inspect import inspect_terminal
    from posdiag.agent.policy import check_scope, load_policy
    from posdiag.drivers.address import parse_address

    policy = load_policy(None)
    tally = _Tally()
    started = time.perf_counter()
    terminal: Any = open_terminal(parse_address(f"adb+tcp://{host}:{port}"))
    terminal.batched = batched
    _tally(terminal.driver, tally)
    report = inspect_terminal(terminal, policy, scope=check_scope(policy, quick=quick))
    wall = time.perf_counter() - started
    if report.identity is None or report.errors:
        raise RuntimeError(f"the Android check did not complete: {report.errors}")
    return wall, tally


def _floor_command(size: int, getprop_size: int) -> str:
    """One command line printing exactly ``size`` bytes: ``getprop`` k times, then an ``echo``.

    Not one ``echo`` of ``size`` characters: the simulator lexes a command line a character at
    a time in Python (some 0.4 µs each), so a 6 kB line would charge the floor milliseconds of
    simulator work no real shell spends, and flatter the check. ``getprop``'s output costs the
    simulator some 30 µs; the ``echo`` carries only the remainder.
    """
    repeats, rest = divmod(size, getprop_size)
    parts = ["getprop"] * repeats
    if rest:
        parts.append("echo " + "x" * (rest - 1))  # echo adds the line feed
    return ";".join(parts)


def _getprop_size(host: str, port: int) -> int:
    """Bytes ``getprop`` prints on this unit (read once, outside any timing)."""
    from posdiag.drivers.adb.driver import AdbDriver
    from posdiag.drivers.transport.tcp import TcpTransport

    with AdbDriver(TcpTransport(host, port)) as driver:
        return len(driver.shell("getprop").stdout)


def _one_round_trip(host: str, port: int, size: int, getprop_size: int) -> float:
    """The floor: connect, then ONE ``shell:`` command line printing ``size`` bytes.

    One shell start (the device's latency, paid once, as by the check's batch), one round trip
    and the same number of bytes back as the check's commands printed.
    """
    from posdiag.drivers.adb.driver import AdbDriver
    from posdiag.drivers.transport.tcp import TcpTransport

    command = _floor_command(max(1, size), getprop_size)
    started = time.perf_counter()
    driver = AdbDriver(TcpTransport(host, port))
    try:
        driver.open()
        output = driver.shell(command)
    finally:
        driver.close()
    took = time.perf_counter() - started
    if len(output.stdout) != max(1, size):
        raise RuntimeError(f"the floor printed {len(output.stdout)} bytes, not {size}")
    return took


def _check_vs_one_round_trip(
    settings: Settings, latency: float, *, quick: bool = False, batched: bool = True
) -> Row:
    """An Android check's wall time against one device round trip of the same output.

    Every round: the check from nothing (TCP connect, CNXN, its streams, parsing, the verdict),
    then the floor sized to what that check's shells printed: a connect and one ``shell:``
    command returning as many bytes. Both against the same simulator process, at the same
    device latency, so the ratio is what the check costs above the one round trip it needs.
    """
    walls, floors = [], []
    tally = _Tally()
    with simulated_adb(SCENARIO, MODEL, latency=str(latency), time_scale="1") as (host, port):
        getprop_size = _getprop_size(host, port)
        for index in range(settings.runs + 1):  # the first round warms caches and is not counted
            wall, tally = _one_check(host, port, quick=quick, batched=batched)
            floor = _one_round_trip(host, port, tally.output_bytes, getprop_size)
            if index:
                walls.append(wall)
                floors.append(floor)
    wall_sample, floor_sample = Sample.of(walls), Sample.of(floors)
    where = f"device latency {latency * 1000:g} ms a shell" if latency else "an instant device"
    kind = "Android check --quick" if quick else "Android check"
    how = "" if batched else " one command at a time (before batching)"
    streams = f"{tally.shells} shell stream(s)" + (f" + {tally.syncs} sync" if tally.syncs else "")
    return Row(
        FIGURE,
        f"{kind}{how} vs one batched round trip ({where})",
        wall_sample.scaled(1000.0),
        "ms",
        ratio=ratios(wall_sample, floor_sample),
        ratio_label="check wall / one round trip",
        note=(
            f"the check opened {streams}, {tally.output_bytes} bytes of output; floor: connect +"
            f" one command line printing as many bytes (getprop…; echo) on that link,"
            f" {floor_sample.median * 1000:.1f} ms;"
            f" {MODEL}/{SCENARIO}, simulator in its own process, time_scale 1"
        ),
        id="adb.check"
        + (".quick" if quick else ".full")
        + ("" if batched else ".one_by_one")
        + ("" if latency else ".instant"),
        floor=floor_sample.scaled(1000.0),
        extra={
            "shell_streams": tally.shells,
            "sync_streams": tally.syncs,
            "output_bytes": tally.output_bytes,
            "latency_s": latency,
        },
    )


def _checks(settings: Settings) -> list[Row]:
    """The check, full and quick, against one round trip at a real unit's latency: the goals.

    Beside them, for insight only: the same check one command at a time (as before batching),
    and the check against an instant device, where only its own work shows.
    """
    full = _check_vs_one_round_trip(settings, ADB_LATENCY)
    full.goal = CHECK_GOAL
    quick = _check_vs_one_round_trip(settings, ADB_LATENCY, quick=True)
    quick.goal = CHECK_GOAL
    before = _check_vs_one_round_trip(settings, ADB_LATENCY, batched=False)
    before.note += " (insight only: the way a check went before batching)"
    instant = _check_vs_one_round_trip(settings, 0.0)
    instant.note += " (insight only: with no device latency at all, every 0.1 ms of parsing shows)"
    return [full, quick, before, instant]


def run(settings: Settings) -> list[Row]:
    """Round trips against the peers, one command from cold, and the check vs one round trip."""
    return [*_round_trips(settings), *_cold(settings), *_checks(settings)]
