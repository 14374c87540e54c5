"""ServiceIDs that are new for 48 hours per terminal, remembered across posdiag runs.

A nexo terminal rejects a SaleID/ServiceID pair used within the last 48 hours (reference nexo.md
§2); a depot checks the same unit again after a repair, from another process or another day, so
"unique" must outlive the process. Each ServiceID is 10 random letters and digits (62¹⁰
choices: two stations picking the same one for the same terminal is not a practical event), and
every one posdiag sends is written down before it is sent, per POIID, in a small private file:

    $XDG_DATA_HOME/posdiag/nexo-service-ids/<POIID>     (0600, in a 0700 folder)
    one line per ServiceID: "<id> <unix time>"

A new ID is drawn again while it appears in that terminal's file. Lines older than 48 hours are
pruned whenever the file is written, a file is capped at :data:`MAX_PER_TERMINAL` lines (the
oldest go first) and at most :data:`MAX_TERMINALS` files are kept (the least recently used go
first), so the folder stays small however long a station runs. Writes go through a temporary
file and a rename under an ``flock``, so two processes never lose each other's IDs.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from ..i18n import _
from ..private_files import (
    POIID_FILE_NAME,
    data_dir,
    locked,
    make_private_dirs,
    remove_with_lock,
    replace_private,
    terminal_files,
)
from .failures import NexoConfigError

__all__ = [
    "MAX_PER_TERMINAL",
    "MAX_TERMINALS",
    "RETENTION_S",
    "ServiceIdStore",
    "default_service_id_dir",
    "random_service_id",
]

log = structlog.get_logger(__name__)

RETENTION_S = 48 * 3600.0
"""How long a terminal remembers a ServiceID (nexo.md §2)."""
MAX_PER_TERMINAL = 4096
"""ServiceIDs remembered per terminal: a check sends about eight, a station a few hundred a day."""
MAX_TERMINALS = 4096
"""Terminal files kept; the least recently written go first."""
MAX_FILE = MAX_PER_TERMINAL * 32
"""A terminal file's byte bound (a line is under 25 bytes)."""
_ALPHABET = string.ascii_letters + string.digits
_LINE = re.compile(r"([A-Za-z0-9]{1,10}) (\d{1,12}(?:\.\d{1,6})?)")
_DRAWS = 64
"""Draws before giving up (a generator that keeps repeating itself is broken)."""


def random_service_id() -> str:
    """10 random letters and digits: the longest ServiceID the documented rule allows."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(10))


def default_service_id_dir() -> Path:
    """``$XDG_DATA_HOME/posdiag/nexo-service-ids`` (``~/.local/share/…`` without it)."""
    return data_dir() / "nexo-service-ids"


class ServiceIdStore:
    """Draws ServiceIDs no posdiag run has sent to a terminal in the last 48 hours.

    Thread-safe (one lock per store; a station's workers share one) and process-safe (an
    ``flock`` per terminal file).

    Args:
        folder: where the per-terminal files live (default :func:`default_service_id_dir`).
        clock: the wall clock in seconds (tests move it forward 48 hours).
        draw: the ID generator (tests make it repeat itself).
    """

    def __init__(
        self,
        folder: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], str] = random_service_id,
    ) -> None:
        self.folder = folder or default_service_id_dir()
        self.clock = clock
        self.draw = draw
        self._lock = threading.Lock()

    def new(self, poiid: str) -> str:
        """A ServiceID not used with ``poiid`` in the last 48 hours, recorded before it is returned.

        Raises:
            NexoConfigError: the folder cannot be written (a wrong ``XDG_DATA_HOME``, a full
                disk): sending without recording could repeat an ID, so nothing is sent.
            ValueError: ``poiid`` is not a POIID, or the generator keeps repeating itself.
        """
        if not POIID_FILE_NAME.fullmatch(poiid):
            raise ValueError("not a POIID")
        with self._lock:
            try:
                return self._new(poiid)
            except OSError as exc:
                raise NexoConfigError(
                    _("cannot record the terminal's ServiceIDs in {folder}: {why}").format(
                        folder=self.folder, why=exc.strerror or exc
                    )
                ) from None

    def used(self, poiid: str) -> set[str]:
        """The ServiceIDs recorded for ``poiid`` within the last 48 hours."""
        if not POIID_FILE_NAME.fullmatch(poiid):
            return set()
        path = self.folder / poiid
        with self._lock:
            if not path.exists():
                return set()
            now = self.clock()
            return {sid for sid, when in self._read(path) if now - when < RETENTION_S}

    def _new(self, poiid: str) -> str:
        make_private_dirs(self.folder)
        path = self.folder / poiid
        with locked(path):
            now = self.clock()
            # a line from the future (a clock set back) is kept: it may still be remembered
            kept = [(sid, when) for sid, when in self._read(path) if now - when < RETENTION_S]
            taken = {sid for sid, _when in kept}
            for _attempt in range(_DRAWS):
                candidate = self.draw()
                if candidate not in taken and _LINE.fullmatch(f"{candidate} 0"):
                    break
            else:
                raise ValueError("the ServiceID generator keeps repeating itself")
            kept.append((candidate, now))
            self._write(path, kept[-MAX_PER_TERMINAL:])
        self._sweep(keep=path)
        return candidate

    @staticmethod
    def _read(path: Path) -> list[tuple[str, float]]:
        """The file's well-formed lines, in order; a damaged line is skipped, never fatal."""
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_FILE)
        except FileNotFoundError:
            return []
        entries = []
        for line in raw.decode("ascii", "replace").splitlines():
            match = _LINE.fullmatch(line.strip())
            if match:
                entries.append((match.group(1), float(match.group(2))))
        return entries

    @staticmethod
    def _write(path: Path, entries: list[tuple[str, float]]) -> None:
        text = "".join(f"{sid} {when:.3f}\n" for sid, when in entries)
        replace_private(path, text.encode("ascii"))

    def _sweep(self, keep: Path) -> None:
        """Delete terminal files idle for 48 hours, and the oldest beyond MAX_TERMINALS."""
        now = self.clock()
        files = terminal_files(self.folder, MAX_TERMINALS)
        stale = [path for when, path in files if now - when >= RETENTION_S]
        excess = [path for _when, path in files[: max(0, len(files) - MAX_TERMINALS)]]
        for path in {*stale, *excess} - {keep}:
            with contextlib.suppress(OSError):
                remove_with_lock(path)
            log.debug("nexo.service_ids_pruned", terminal=path.name[-4:])
