"""Google's stock adb client with a private server: the peer our simulator and driver are held to.

The interop tests run it against the simulated Android POS (if the stock client works with the
simulator, the simulator speaks the real protocol) and the benchmark times it against our
driver. Both need the same isolation, so it lives here once:

* the binary from the ``adbutils`` wheel (found without importing adbutils), else ``adb`` on
  ``PATH``;
* a private server (``adb -P PORT server nodaemon``, a child of this process) on a free port,
  with the environment variables that would point it elsewhere removed;
* a throwaway ``HOME``, so the client's key (``~/.android/adbkey``) is never the user's;
* ``kill-server`` on close (killed if it lingers), and a timeout on every call.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

TIMEOUT = 10.0
SCRUBBED_ENV = (
    "ANDROID_SERIAL",
    "ADB_VENDOR_KEYS",
    "ANDROID_SDK_HOME",
    "ANDROID_USER_HOME",
    "ANDROID_ADB_SERVER_ADDRESS",
    "ADB_SERVER_SOCKET",
    "ADB_TRACE",
)
"""Environment that would point the client at another server, key or device."""


def find_stock_adb() -> str | None:
    """The adb binary shipped in the adbutils wheel, else the one on PATH, else None."""
    spec = importlib.util.find_spec("adbutils")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "binaries" / "adb"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("adb")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StockAdb:
    """A private stock adb server (started here) and the client bound to it.

    Args:
        binary: the adb executable (:func:`find_stock_adb`).
        home: a throwaway HOME for the client's key and the server's log.
        timeout: seconds the server may take to listen, and each client call.

    Raises:
        RuntimeError: the server exited or never listened.
    """

    def __init__(self, binary: str, home: Path, timeout: float = TIMEOUT) -> None:
        self.binary = binary
        self.home = home
        self.timeout = timeout
        self.port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        self.env.update(HOME=str(home), ANDROID_ADB_SERVER_PORT=str(self.port))
        self._log = (home / "server.log").open("w")
        self.server = subprocess.Popen(
            [binary, "-P", str(self.port), "server", "nodaemon"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        try:
            self._wait_listening()
        except BaseException:
            self.close()
            raise

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"the stock adb server exited (status {self.server.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the stock adb server did not listen on port {self.port} "
                        f"within {self.timeout:g} s"
                    ) from None
                time.sleep(0.05)

    def run(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """One client invocation, exactly as a user types it (plus the private server port)."""
        return subprocess.run(
            [self.binary, "-P", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=self.timeout if timeout is None else timeout,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )

    def shell(self, serial: str, *command: str) -> subprocess.CompletedProcess[str]:
        """``adb -s SERIAL shell COMMAND…``."""
        return self.run("-s", serial, "shell", *command)

    def connect(self, serial: str) -> subprocess.CompletedProcess[str]:
        """``adb connect HOST:PORT`` (see :meth:`wait_for_state` for it to come online)."""
        return self.run("connect", serial)

    def state(self, serial: str) -> str | None:
        """The device's state in ``adb devices`` (device, unauthorized, offline…)."""
        for line in self.run("devices").stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == serial:
                return fields[1]
        return None

    def wait_for_state(self, serial: str, wanted: str, timeout: float = 5.0) -> str | None:
        """Poll ``adb devices`` until the device is in ``wanted``; the last state seen."""
        deadline = time.monotonic() + timeout
        state = self.state(serial)
        while state != wanted and time.monotonic() < deadline:
            time.sleep(0.1)
            state = self.state(serial)
        return state

    def close(self) -> None:
        """Stop the server (kill-server, then kill if it lingers) and close its log."""
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            self.run("kill-server", timeout=5)
        try:
            self.server.wait(5)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(5)
        self._log.close()
