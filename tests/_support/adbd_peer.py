"""The real AOSP adbd as a test peer: built once, run in a private network namespace, relayed.

Why it exists: posdiag's ADB simulator is held to the real device daemon (issue 14). The real
adbd (``../shared/interop/adbd``, an AOSP ``system/core`` adbd ported to Linux) is built here from
its tarball into the git-ignored ``.cache/adbd`` and run by the differential tests next to the
simulator, so both answer the same scripted client sessions.

Why it lives in ``tests/`` and not in ``simulators/``: it needs the AOSP source kept *beside* the
project (``../shared``), root (for the network namespace) and a C++ tool chain; none of that ships
with posdiag, so a user's CI could not use it. The simulator is the product; this is its judge.

How it runs (each choice because of what the port does, see ``../shared/interop/README.md``):

* adbd always listens on TCP 5555, so each instance gets its own network namespace
  (``unshare -n``), where it cannot collide with another test run or a developer's own adb.
* The test process stays in the root namespace (pytest, the stock adb server and the simulator
  live there). :class:`TcpRelay` listens on ``127.0.0.1:FREEPORT`` there and, for each client,
  opens the device-side socket *inside* adbd's namespace from one thread that has called
  ``setns(2)`` (Python 3.11 has no ``os.setns``; ``setns`` changes only the calling thread). ADB
  over TCP is a plain byte stream, so every client connects to the relay unchanged.
* adbd runs as uid/gid 2000 (Android's ``shell``) with no capabilities and an empty bounding set
  (``setpriv``): file permissions then behave as for ``adb shell`` on a production device (a
  root-owned 0600 file cannot be pulled), and nothing it runs can reboot or reconfigure this
  machine. (The port's ``reboot:`` service only calls a stubbed ``property_set`` and then waits
  forever, so it never calls ``reboot(2)``; dropping the capability makes sure of it anyway.)
* Its shell is ``/bin/sh`` with adbd's own ``PATH``: a stub Android userland (:mod:`stub_userland`)
  comes first, so ``getprop``/``dumpsys``/``pm``… answer the simulator's facts.

Every process, thread and socket started here is stopped on :meth:`RealAdbd.stop`, with a
deadline on each wait.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ADBD_PORT = 5555
"""The port this adbd build always listens on (its port properties are stubs)."""

SHELL_UID = 2000
"""Android's ``shell`` user: what ``adb shell`` runs as on a production unit."""

BUILD_TIMEOUT = 600.0
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
CLONE_NEWNET = 0x40000000

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_ADBD = REPO_ROOT.parent / "shared" / "interop" / "adbd"
CACHE = REPO_ROOT / ".cache" / "adbd"
"""Build output, reused across sessions (git-ignored ``.cache/``)."""


class AdbdUnavailable(RuntimeError):
    """The real adbd cannot be built or started here (the reason says what is missing)."""


def prerequisites_missing() -> str | None:
    """Why this machine cannot run the peer, or None: root, unshare, ip, setpriv, a compiler."""
    if not (SHARED_ADBD / "build.sh").is_file():
        return f"no AOSP adbd source at {SHARED_ADBD} (../shared/interop/adbd beside the repo)"
    if os.geteuid() != 0:
        return "the real adbd peer needs root for its private network namespace (unshare -n)"
    for tool in ("unshare", "ip", "setpriv", "make", "g++", "sha1sum"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (CI installs build-essential libcap-dev iproute2)"
    return None


def build_adbd(cache: Path = CACHE) -> Path:
    """Build adbd with the shared build script (once: the script reuses a finished build).

    Raises:
        AdbdUnavailable: the build failed or timed out (the log's tail is in the message).
    """
    missing = prerequisites_missing()
    if missing:
        raise AdbdUnavailable(missing)
    cache.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["bash", str(SHARED_ADBD / "build.sh"), str(cache)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise AdbdUnavailable(f"building adbd took more than {BUILD_TIMEOUT:g} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise AdbdUnavailable(f"building adbd failed: {done.stderr.strip()[-2000:]}")
    binary = Path(lines[-1])
    if not os.access(binary, os.X_OK):
        raise AdbdUnavailable(f"the build printed {binary}, which is not an executable")
    return binary


_libc = ctypes.CDLL(None, use_errno=True)


def _enter_netns(pid: int) -> None:
    """Move the *calling thread* into the network namespace of process ``pid``."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {pid}'s network namespace: {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsDialer:
    """Opens TCP connections from inside another process's network namespace.

    One dedicated thread enters the namespace (``setns`` is per thread) and creates every
    socket there; a socket keeps the namespace it was created in, so the relay threads of the
    root namespace can then use it freely.
    """

    def __init__(self, pid: int) -> None:
        self._requests: queue.Queue[tuple[int, float, queue.Queue[object]] | None] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, args=(pid,), name=f"netns-dialer-{pid}", daemon=True
        )
        self._ready: queue.Queue[BaseException | None] = queue.Queue()
        self._thread.start()
        error = self._ready.get(timeout=STOP_TIMEOUT)
        if error is not None:
            raise AdbdUnavailable(str(error))

    def _run(self, pid: int) -> None:
        try:
            _enter_netns(pid)
        except OSError as exc:
            self._ready.put(exc)
            return
        self._ready.put(None)
        while (request := self._requests.get()) is not None:
            port, timeout, answer = request
            try:
                answer.put(socket.create_connection(("127.0.0.1", port), timeout=timeout))
            except OSError as exc:
                answer.put(exc)

    def dial(self, port: int, timeout: float = 2.0) -> socket.socket:
        """A socket connected to ``127.0.0.1:port`` inside the namespace.

        Raises:
            OSError: nothing listens there (yet), or the dialer has stopped.
        """
        if not self._thread.is_alive():
            raise OSError("the namespace dialer has stopped")
        answer: queue.Queue[object] = queue.Queue()
        self._requests.put((port, timeout, answer))
        try:
            result = answer.get(timeout=timeout + 1.0)
        except queue.Empty:
            raise OSError(f"dialing port {port} in the namespace timed out") from None
        if isinstance(result, BaseException):
            raise result
        assert isinstance(result, socket.socket)
        result.settimeout(None)
        return result

    def stop(self) -> None:
        """End the dialer thread (it was never in the root namespace again; it just exits)."""
        self._requests.put(None)
        self._thread.join(STOP_TIMEOUT)


@dataclass
class _Pair:
    client: socket.socket
    device: socket.socket
    threads: list[threading.Thread] = field(default_factory=list)

    def close(self) -> None:
        for sock in (self.client, self.device):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class TcpRelay:
    """``127.0.0.1:port`` in the root namespace, relayed byte for byte to a peer behind a dialer.

    Half-closes are forwarded (EOF on one side shuts the other side's write end), so a client
    sees the device close the connection exactly when the device does.
    """

    def __init__(self, dial: Callable[[], socket.socket]) -> None:
        self._dial = dial
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="adbd-relay", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                device = self._dial()
            except OSError:
                client.close()  # the device refused: so does the relay, as a dead device would
                continue
            pair = _Pair(client, device)
            for src, dst in ((client, device), (device, client)):
                thread = threading.Thread(
                    target=self._pump, args=(src, dst), name="adbd-relay-pump", daemon=True
                )
                pair.threads.append(thread)
            with self._lock:
                self._pairs.append(pair)
            for thread in pair.threads:
                thread.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def drop_connections(self) -> None:
        """Cut every relayed connection, as a device that goes away (reboots) does."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()
        for pair in pairs:
            for thread in pair.threads:
                thread.join(STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop accepting, cut every connection, join every thread."""
        self._stopping.set()
        self._listener.close()
        self._acceptor.join(STOP_TIMEOUT)
        self.drop_connections()


class RealAdbd:
    """One running adbd in its own network namespace, reachable at ``127.0.0.1:port``.

    Args:
        binary: the built adbd.
        stub_bin: the stub Android tools, first on adbd's ``PATH``.
        workdir: adbd's working directory and ``HOME`` (its shell starts there); readable by
            the shell uid.
        log: where adbd's own stderr goes (it logs each start).
    """

    def __init__(self, binary: Path, stub_bin: Path, workdir: Path, log: Path) -> None:
        self.binary = binary
        self.log_path = log
        env = {
            "PATH": f"{stub_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(workdir),
            "LANG": "C",
            "LC_ALL": "C",
        }
        # unshare (no --fork) execs sh, which execs setpriv, which execs adbd: one pid, so
        # /proc/PID/ns/net is adbd's namespace. lo must be up before the drop of privileges.
        inner = (
            "ip link set lo up && exec setpriv "
            f"--reuid={SHELL_UID} --regid={SHELL_UID} --clear-groups "
            "--inh-caps=-all --bounding-set=-all --no-new-privs "
            f'"$0"'
        )
        self._log = log.open("w")
        self.process = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", inner, str(binary)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
        self._dialer: NetnsDialer | None = None
        self._relay: TcpRelay | None = None
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise AdbdUnavailable(
                    f"adbd exited with status {self.process.returncode}: {self.log_text()[-2000:]}"
                )
            # The namespace exists once unshare has run; setns before that would join ours.
            if self._dialer is None and self._own_netns():
                self._dialer = NetnsDialer(self.process.pid)
            if self._dialer is not None:
                try:
                    self._dialer.dial(ADBD_PORT, timeout=0.5).close()
                    break
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise AdbdUnavailable(
                    f"adbd did not listen on {ADBD_PORT} in its namespace within "
                    f"{START_TIMEOUT:g} s: {self.log_text()[-2000:]}"
                )
            time.sleep(0.05)
        dialer = self._dialer
        self._relay = TcpRelay(lambda: dialer.dial(ADBD_PORT))

    def _own_netns(self) -> bool:
        try:
            return os.readlink(f"/proc/{self.process.pid}/ns/net") != os.readlink(
                "/proc/self/ns/net"
            )
        except OSError:
            return False

    @property
    def port(self) -> int:
        """The relay's port on 127.0.0.1 in the test's own namespace."""
        assert self._relay is not None
        return self._relay.port

    @property
    def serial(self) -> str:
        """``HOST:PORT``, what ``adb connect`` and the stock client call it."""
        return f"127.0.0.1:{self.port}"

    def drop_connections(self) -> None:
        """Cut every client connection (what a rebooting device does; the port cannot)."""
        if self._relay is not None:
            self._relay.drop_connections()

    def log_text(self) -> str:
        """What adbd logged so far."""
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the relay, the dialer and adbd (SIGTERM, then SIGKILL), each with a deadline.

        adbd's shell children die with the namespace's last process or on their own EOF; any
        left in adbd's session are killed with it (``start_new_session``).
        """
        if self._relay is not None:
            self._relay.stop()
        if self._dialer is not None:
            self._dialer.stop()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 15)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)
                self.process.wait(STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)  # shells adbd started and left behind
        self._log.close()
