"""Small private files the drivers keep between runs: the ADB key, nexo ServiceIDs and events.

Each is a secret or a record another process must not lose, so they share one discipline:
folders are created 0700 whatever the umask; a file is replaced atomically (a 0600 temporary
file, fsync, rename), never rewritten in place; a file several processes update is changed under
an exclusive ``flock`` on a lock file beside it; per-terminal folders are listed with a bound, so
a folder someone filled with other files is never walked whole.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "POIID_FILE_NAME",
    "data_dir",
    "locked",
    "make_private_dirs",
    "remove_with_lock",
    "replace_private",
    "terminal_files",
    "write_temporary",
]

POIID_FILE_NAME = re.compile(r"[A-Za-z0-9]{1,32}-[A-Za-z0-9]{1,32}")
"""A POIID fit to be a file name (``V400m-324688179``): what the per-terminal stores accept."""


def data_dir() -> Path:
    """``$XDG_DATA_HOME/posdiag`` (``~/.local/share/posdiag`` without it).

    A relative ``XDG_DATA_HOME`` is ignored, as the XDG specification requires (and as the
    ledger's default path does).
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "posdiag"


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents as 0700 whatever the umask."""
    missing: list[Path] = []
    probe = folder
    while not probe.exists() and probe.parent != probe:
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        path.chmod(0o700)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def write_temporary(path: Path, data: bytes) -> Path:
    """``data`` in a new 0600 file beside ``path``, flushed to disk; the caller moves it."""
    temporary = _temporary(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return temporary


def replace_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600 (temporary file, fsync, rename)."""
    temporary = write_temporary(path, data)
    try:
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``'s lock file (where flock exists), across processes."""
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX: the callers' thread locks still hold
            pass
        yield
    finally:
        os.close(fd)


def remove_with_lock(path: Path) -> None:
    """Delete a per-terminal file and its lock file; a file already gone is no error."""
    path.unlink(missing_ok=True)
    _lock_path(path).unlink(missing_ok=True)


def terminal_files(folder: Path, limit: int) -> list[tuple[float, Path]]:
    """(mtime, path) of the per-terminal files in ``folder``, oldest first.

    At most ``4 * limit`` entries are looked at. An unreadable folder lists nothing: pruning is
    housekeeping and never fails the write that asked for it.
    """
    files: list[tuple[float, Path]] = []
    try:
        with os.scandir(folder) as listing:
            for count, entry in enumerate(listing):
                if count > 4 * limit:
                    break
                if entry.is_file(follow_symlinks=False) and POIID_FILE_NAME.fullmatch(entry.name):
                    files.append((entry.stat(follow_symlinks=False).st_mtime, Path(entry)))
    except OSError:
        return []
    return sorted(files)
