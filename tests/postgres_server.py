"""A throwaway PostgreSQL server on loopback for the tests that need a shared ledger.

The tests start their own server rather than expecting one, so they run the same on a laptop, in
CI and on a fresh machine: ``initdb`` into a temporary folder, ``postgres`` on 127.0.0.1 with a free
port and a private socket folder, one database created, and everything removed at the end.

PostgreSQL refuses to run as root; when the tests run as root (as CI does) the server runs as the
``postgres`` user (created by the Debian ``postgresql`` package) through ``runuser``, and the
temporary folders are handed to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
DATABASE = "posdiag_test"
SUPERUSER = "posdiag"
_BINARIES = ("initdb", "postgres")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries (or no usable user to run them as) on this machine."""


def find_binaries() -> Path:
    """The folder holding ``initdb`` and ``postgres``: PATH first, then Debian's versioned folders.

    Raises:
        PostgresUnavailable: neither place has both programs.
    """
    on_path = [shutil.which(name) for name in _BINARIES]
    if all(on_path):
        folders = {Path(os.path.realpath(str(found))).parent for found in on_path}
        if len(folders) == 1:
            return folders.pop()
    # Newest version first: /usr/lib/postgresql/16/bin before .../15/bin.
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for folder in candidates:
        if all(os.access(Path(folder) / name, os.X_OK) for name in _BINARIES):
            return Path(folder)
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin;"
        " install the postgresql package to run these tests"
    )


def _version_key(folder: str) -> list[int]:
    """``/usr/lib/postgresql/15/bin`` -> ``[15]``, so versions sort as numbers."""
    return [int(part) if part.isdigit() else 0 for part in Path(folder).parent.name.split(".")]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """One running server; :attr:`url` names its test database (no password: trust on loopback)."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    bin_dir: Path
    prefix: list[str]

    @property
    def url(self) -> str:
        """A plain ``postgresql://`` URL, as a user would type it."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server log, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Fast shutdown, SIGKILL if it does not go in time.

        Through ``pg_ctl``: the server may run under runuser, which need not pass signals on.
        """
        if self.process.poll() is not None:
            return
        pg_ctl = self.bin_dir / "pg_ctl"
        if os.access(pg_ctl, os.X_OK):
            subprocess.run(
                [*self.prefix, str(pg_ctl), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=STOP_TIMEOUT_S + 5,
                check=False,
            )
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)


def _runner() -> tuple[list[str], int | None, int | None]:
    """The command prefix to run server programs, and the uid/gid the folders must belong to."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no 'postgres' user to run the server as"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root and runuser is not available")
    return [runuser, "-u", "postgres", "--"], account.pw_uid, account.pw_gid


def _wait_until_ready(server: PostgresServer, deadline: float) -> None:
    """Poll until the server accepts a connection to its ``postgres`` database."""
    import psycopg

    last_error = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"postgres exited with code {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=server.port,
                user=SUPERUSER,
                dbname="postgres",
                connect_timeout=2,
                autocommit=True,
            ) as conn:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            return
        except psycopg.OperationalError as error:
            last_error = str(error)
            time.sleep(0.1)
    raise RuntimeError(
        f"postgres did not accept connections within {START_TIMEOUT_S:g} s ({last_error}):\n"
        f"{server.log_tail()}"
    )


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """Start a fresh server with one empty database; stop it and remove its files afterwards.

    Raises:
        PostgresUnavailable: no binaries or no way to run them (the caller decides: skip or fail).
    """
    try:
        import psycopg  # noqa: F401  (the readiness probe and the tests need it)
    except ImportError:
        raise PostgresUnavailable("psycopg is not installed: pip install -e '.[test]'") from None
    bin_dir = find_binaries()
    prefix, uid, gid = _runner()
    # As root the server runs as 'postgres', which must reach the folder: $TMPDIR may be private.
    root = Path(tempfile.mkdtemp(prefix="posdiag-pg-", dir="/tmp" if uid is not None else None))
    try:
        data_dir, socket_dir = root / "data", root / "sock"
        socket_dir.mkdir()
        log_path = root / "server.log"
        log_path.touch()
        if uid is not None and gid is not None:
            for path in (root, socket_dir, log_path):
                os.chown(path, uid, gid)
        os.chmod(root, 0o700)
        initdb = subprocess.run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=root,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout.decode(errors='replace')}")
        port = _free_port()
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [
                    *prefix,
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data_dir),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-k",
                    str(socket_dir),
                    # A test server: durability is the ledger's concern on SQLite, not here.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
        server = PostgresServer(process, port, data_dir, log_path, bin_dir, prefix)
        try:
            _wait_until_ready(server, time.monotonic() + START_TIMEOUT_S)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
