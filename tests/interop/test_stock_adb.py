"""Google's stock adb client against posdiag's simulated Android POS, over loopback TCP.

If the stock client can connect, authenticate, run shell commands with exit codes and pull
files from the simulator, the simulator speaks the real protocol, and tests of posdiag's own
driver against it mean something. The client comes from the ``adbutils`` wheel in the test
extra (found without importing adbutils), else from ``PATH``. Without either the module is
skipped locally but fails in CI (``CI`` set): there it is a dependency, not an option.

Isolation: a private adb server (``adb -P PORT server nodaemon``, a child of this process) on a
free port with ``ANDROID_ADB_SERVER_PORT`` set, and a temporary ``HOME`` so the client's key
(``~/.android/adbkey``) is a throwaway one. The server is stopped with ``kill-server`` (and
killed if it lingers), every simulator is stopped, and every adb call has a timeout.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from posdiag.agent.cli import _parse_fault
from posdiag.simulators.adb.engine import AdbSimulator
from posdiag.simulators.attach import TcpAttachment
from posdiag.simulators.registry import create_adb

POSDIAG = Path(sys.executable).with_name("posdiag")
TIMEOUT = 10.0
MERCHANT_XML = "/sdcard/PAX/params/merchant.xml"
SCRUBBED_ENV = (
    "ANDROID_SERIAL",
    "ADB_VENDOR_KEYS",
    "ANDROID_SDK_HOME",
    "ANDROID_USER_HOME",
    "ANDROID_ADB_SERVER_ADDRESS",
    "ADB_SERVER_SOCKET",
    "ADB_TRACE",
)


def find_stock_adb() -> str | None:
    """The adb binary shipped in the adbutils wheel, else the one on PATH."""
    spec = importlib.util.find_spec("adbutils")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "binaries" / "adb"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("adb")


ADB = find_stock_adb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StockAdb:
    """The stock client bound to a private server."""

    binary: str
    port: int
    env: dict[str, str]
    home: Path

    def run(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-P", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )

    def shell(self, serial: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.run("-s", serial, "shell", *command)

    def connect(self, serial: str) -> subprocess.CompletedProcess[str]:
        result = self.run("connect", serial)
        assert result.returncode == 0, result.stderr
        return result

    def state(self, serial: str) -> str | None:
        """The device's state in ``adb devices`` (device, unauthorized, offline…)."""
        for line in self.run("devices").stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == serial:
                return fields[1]
        return None

    def wait_for_state(self, serial: str, wanted: str, timeout: float = 5.0) -> str | None:
        deadline = time.monotonic() + timeout
        state = self.state(serial)
        while state != wanted and time.monotonic() < deadline:
            time.sleep(0.1)
            state = self.state(serial)
        return state


def _wait_listening(port: int, server: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the adb server exited at once (status {server.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the adb server did not listen on port {port} within {timeout} s")


@pytest.fixture(scope="module")
def adb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StockAdb]:
    """A private stock adb server (our child process) and a client bound to it."""
    if ADB is None:
        message = (
            "no stock adb client: install the test extra (adbutils ships one) or put adb on PATH"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("adb-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    client = StockAdb(ADB, port, env, home)
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [ADB, "-P", str(port), "server", "nodaemon"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        _wait_listening(port, server, TIMEOUT)
        yield client
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            client.run("kill-server", timeout=5)
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


@pytest.fixture(scope="module")
def attach() -> Iterator[Callable[[AdbSimulator], str]]:
    """Put simulators on loopback ports; each is stopped when the module ends."""
    attachments: list[TcpAttachment] = []

    def start(simulator: AdbSimulator) -> str:
        attachment = TcpAttachment(simulator, "127.0.0.1", 0)
        host, port = attachment.start()
        attachments.append(attachment)
        return f"{host}:{port}"

    yield start
    for attachment in attachments:
        attachment.stop()


@dataclass
class Device:
    simulator: AdbSimulator
    serial: str  # what adb calls it: HOST:PORT
    connect_output: str


@pytest.fixture(scope="module")
def pax(adb: StockAdb, attach: Callable[[AdbSimulator], str]) -> Device:
    """The activated PAX A920, connected with ``adb connect``."""
    simulator = create_adb("activated", "pax-a920", {"time_scale": "0"})
    serial = attach(simulator)
    result = adb.connect(serial)
    assert adb.wait_for_state(serial, "device") == "device"
    return Device(simulator, serial, result.stdout)


# --- the activated PAX A920 ----------------------------------------------------------------------


def test_adb_connect_connects(pax: Device) -> None:
    assert f"connected to {pax.serial}" in pax.connect_output


def test_adb_devices_shows_the_model(adb: StockAdb, pax: Device) -> None:
    result = adb.run("devices", "-l")
    assert result.returncode == 0
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(pax.serial)]
    fields = line.split()
    assert fields[1] == "device"
    assert "model:A920" in fields
    assert "product:A920" in fields
    assert "device:A920" in fields


def test_getprop_serialno_is_the_simulators(adb: StockAdb, pax: Device) -> None:
    result = adb.shell(pax.serial, "getprop", "ro.serialno")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == pax.simulator.state.serial == "82617703"


def test_getprop_vendor_serial(adb: StockAdb, pax: Device) -> None:
    result = adb.shell(pax.serial, "getprop", "ro.fac.sn")
    assert result.stdout.strip() == "0820533061"


def _battery(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(": ")
        if sep:
            values[key] = value
    return values


def test_dumpsys_battery_matches_the_live_state(adb: StockAdb, pax: Device) -> None:
    state = pax.simulator.state
    result = adb.shell(pax.serial, "dumpsys", "battery")
    assert result.returncode == 0
    battery = _battery(result.stdout)
    assert battery["level"] == str(state.battery.level) == "87"
    assert battery["voltage"] == str(state.battery.voltage_mv) == "4105"
    with pax.simulator.lock:
        state.battery.level = 42  # the battery drains: the next dumpsys must say so
    try:
        assert _battery(adb.shell(pax.serial, "dumpsys", "battery").stdout)["level"] == "42"
    finally:
        with pax.simulator.lock:
            state.battery.level = 87


def test_unknown_command_exits_127_with_the_shell_message(adb: StockAdb, pax: Device) -> None:
    result = adb.shell(pax.serial, "nosuch")
    assert result.returncode == 127
    assert "nosuch: inaccessible or not found" in result.stderr
    assert result.stdout == ""  # shell_v2 keeps stderr apart


def test_exit_status_reaches_adb(adb: StockAdb, pax: Device) -> None:
    assert adb.shell(pax.serial, "exit", "5").returncode == 5
    assert adb.shell(pax.serial, "true").returncode == 0
    assert adb.shell(pax.serial, "false").returncode == 1


def test_shell_sequences_and_files(adb: StockAdb, pax: Device) -> None:
    result = adb.shell(pax.serial, "ls", "-1", "/sdcard/PAX/params")
    assert result.stdout.split() == ["merchant.xml"]
    result = adb.shell(pax.serial, "cat", MERCHANT_XML)
    assert result.stdout == pax.simulator.state.files[MERCHANT_XML]


def _pull(adb: StockAdb, serial: str, tmp_path: Path, timeout: float) -> str:
    target = tmp_path / "merchant.xml"
    result = adb.run("-s", serial, "pull", MERCHANT_XML, str(target), timeout=timeout)
    assert result.returncode == 0, result.stderr
    return target.read_text()


def test_pull_gives_the_files_content(adb: StockAdb, pax: Device, tmp_path: Path) -> None:
    """``adb pull`` reads through the sync service (STAT, then RECV)."""
    content = _pull(adb, pax.serial, tmp_path, 5.0)
    assert content == pax.simulator.state.files[MERCHANT_XML] == '<merchant id="MID-0042"/>'


def test_pull_of_a_missing_file_fails_cleanly(adb: StockAdb, pax: Device, tmp_path: Path) -> None:
    result = adb.run("-s", pax.serial, "pull", "/sdcard/nosuch.txt", str(tmp_path), timeout=5.0)
    assert result.returncode == 1
    assert "nosuch.txt" in result.stderr
    assert adb.shell(pax.serial, "exit", "3").returncode == 3  # the connection survives


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The simulator's first stdout line (its address), or a failure: never a hang."""
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        pytest.fail(f"posdiag simulate printed no address within {timeout} s")


# --- authentication ------------------------------------------------------------------------------


@pytest.fixture
def simulate(adb: StockAdb) -> Iterator[Callable[..., str]]:
    """``posdiag simulate adb … --fault NAME=VALUE`` as a real process; killed at teardown."""
    if not POSDIAG.exists():
        pytest.skip(f"{POSDIAG} is not installed")
    processes: list[subprocess.Popen[str]] = []

    def start(*faults: str) -> str:
        args = [str(POSDIAG), "simulate", "adb", "--scenario", "activated"]
        args += ["--model", "pax-a920", "--tcp", "127.0.0.1:0", "--time-scale", "0"]
        for fault in faults:
            args += ["--fault", fault]
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            env=adb.env,
        )
        processes.append(process)
        line = _first_line(process, TIMEOUT)
        assert line.startswith("adb+tcp://127.0.0.1:"), line
        return line.removeprefix("adb+tcp://")

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(3)
        if process.stdout:
            process.stdout.close()


def test_the_stock_clients_new_key_is_accepted(adb: StockAdb, simulate: Callable[..., str]) -> None:
    assert _parse_fault(("auth=1",)) == {"auth": "1"}  # what --fault auth=1 hands create_adb
    serial = simulate("auth=1")
    result = adb.run("connect", serial)
    # A new key: the first answer is an AUTH token the client cannot sign for, so adb connect
    # may say "failed to authenticate" before the simulated operator taps Allow.
    assert f"connected to {serial}" in result.stdout or "failed to authenticate" in result.stdout
    assert adb.wait_for_state(serial, "device") == "device"
    assert adb.shell(serial, "getprop", "ro.serialno").stdout.strip() == "82617703"
    assert (adb.home / ".android" / "adbkey.pub").is_file()  # the throwaway key was used


def test_a_key_never_allowed_leaves_the_unit_unauthorized(
    adb: StockAdb, simulate: Callable[..., str]
) -> None:
    serial = simulate("auth=1", "accept_keys=0")
    adb.run("connect", serial)
    assert adb.wait_for_state(serial, "unauthorized", timeout=3) == "unauthorized"
    result = adb.shell(serial, "getprop", "ro.serialno")
    assert result.returncode != 0
    assert "unauthorized" in result.stderr
