"""The events nexo terminals sent us, per POIID, kept so a later check can read them.

An Adyen terminal does not answer "were you tampered with?" over its local API beyond
``SecurityOKFlag`` (which a terminal may not fill, and which says nothing about the past). What it
does is *tell*: it POSTs an EventNotification (``SecurityAlarm``, ``OutOfOrder``…) to its
configured event URLs when something happens, once, with no retry (reference nexo.md §1, §4).
The station's receiver (:mod:`posdiag.agent.nexo_events`) writes every authenticated event here,
and :meth:`~.terminal.NexoTerminal.tamper` reads the ``SecurityAlarm`` ones back, so an alarm
raised while nobody was checking the unit is still evidence when it reaches the bench::

    $XDG_DATA_HOME/posdiag/nexo-events/<POIID>      (0600, in a 0700 folder)
    one JSON object per line, oldest first:
    {"received_at": 1800000000.0, "kind": "SecurityAlarm", "timestamp": "2027-01-15T09:02:35Z",
     "details": [["message", "Tamper detected"]], "maintenance_required": true, "encrypted": true}

Bounds, because a terminal (or anyone on the shop LAN, for unencrypted events) decides what
arrives: every text is cleaned (:func:`~posdiag.drivers.text.clean_text`) and cut, a line is at
most :data:`MAX_LINE` bytes, a terminal keeps its :data:`MAX_PER_TERMINAL` newest events and at
most :data:`MAX_TERMINALS` terminal files are kept (the least recently written go first). The
same event received twice (a replay, two configured URLs) is kept once.

A tamper alarm must not silently expire: when a terminal's file is full, events of other kinds go
first (a chatty terminal's ``KeyPressed`` events never push a ``SecurityAlarm`` out), and when
the folder is full, files without a ``SecurityAlarm`` go first. Only :meth:`NexoEventLog.forget`
(``posdiag nexo-events --forget POIID``, after the unit was examined) removes one on purpose.

Writes go through a temporary file and a rename under an ``flock``, as the ServiceID store's do,
so a station's receiver and a technician's ``posdiag nexo-events`` never lose each other's
events; readers need no lock. A damaged line (a crash, a hand edit) is skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ..i18n import _, ngettext
from ..private_files import (
    POIID_FILE_NAME,
    data_dir,
    locked,
    make_private_dirs,
    remove_with_lock,
    replace_private,
    terminal_files,
)
from ..text import clean_text
from .failures import NexoConfigError
from .readers import Event

__all__ = [
    "ALERT_KINDS",
    "MAX_PER_TERMINAL",
    "MAX_TERMINALS",
    "PROTECTED_KINDS",
    "NexoEventLog",
    "RecordedEvent",
    "alarm_sentences",
    "default_event_log_dir",
]

log = structlog.get_logger(__name__)

MAX_PER_TERMINAL = 200
"""Events kept per terminal (the newest; see the module docstring for what goes first)."""
MAX_TERMINALS = 1024
"""Terminal files kept; the least recently written without a SecurityAlarm go first."""
MAX_LINE = 4096
"""A recorded event's byte bound (a real one is about 200 bytes)."""
MAX_FILE = MAX_PER_TERMINAL * MAX_LINE
"""A terminal file's byte bound; a larger file is read from its end (the newest events)."""
MAX_DETAILS = 8
"""EventDetails fields kept per event."""
DETAIL_KEY_LIMIT = 64
DETAIL_VALUE_LIMIT = 256
TEXT_LIMIT = 64
"""Longest event kind and terminal timestamp kept."""
PROTECTED_KINDS = frozenset({"SecurityAlarm"})
"""Kinds that are evidence of tampering: kept longest, and what keeps a terminal file."""
ALERT_KINDS = ("SecurityAlarm", "OutOfOrder")
"""The events that say something is wrong with the unit (not its normal life)."""
MAX_ALARMS_SHOWN = 3
"""SecurityAlarm events named one by one in a tamper verdict (the newest; the rest counted)."""
_SWEEP_READS = 256
"""Terminal files one sweep opens to look for SecurityAlarms before it takes the oldest."""


def default_event_log_dir() -> Path:
    """``$XDG_DATA_HOME/posdiag/nexo-events``, beside the ServiceID store."""
    return data_dir() / "nexo-events"


@dataclass(frozen=True)
class RecordedEvent:
    """One event a terminal sent, as recorded.

    Attributes:
        poiid: the terminal (the POIID of the notification's header).
        kind: its ``EventToNotify`` (``SecurityAlarm``…).
        timestamp: the terminal's own ``TimeStamp``, as it sent it (its clock may be wrong).
        received_at: when the station received it (Unix time, the station's clock).
        details: its ``EventDetails`` fields, cleaned and bounded, in the order sent.
        maintenance_required: its ``MaintenanceRequiredFlag``, None when absent.
        encrypted: whether it arrived encrypted and authenticated with the shared key (False:
            a clear event, accepted only while the station has no key).
    """

    poiid: str
    kind: str
    timestamp: str
    received_at: float
    details: tuple[tuple[str, str], ...] = ()
    maintenance_required: bool | None = None
    encrypted: bool = False

    def to_json(self) -> dict[str, Any]:
        """The line's object (the POIID is the file's name, not repeated)."""
        return {
            "received_at": round(self.received_at, 3),
            "kind": self.kind,
            "timestamp": self.timestamp,
            "details": [list(pair) for pair in self.details],
            "maintenance_required": self.maintenance_required,
            "encrypted": self.encrypted,
        }

    @classmethod
    def from_json(cls, poiid: str, obj: object) -> RecordedEvent | None:
        """Read a line's object back (cleaned again: the file is data too); None when damaged."""
        if not isinstance(obj, Mapping):
            return None
        kind, timestamp, received = obj.get("kind"), obj.get("timestamp"), obj.get("received_at")
        flag, encrypted = obj.get("maintenance_required"), obj.get("encrypted")
        if (
            not isinstance(kind, str)
            or not kind
            or not isinstance(timestamp, str)
            or isinstance(received, bool)
            or not isinstance(received, int | float)
            or not (flag is None or isinstance(flag, bool))
            or not isinstance(encrypted, bool)
        ):
            return None
        return cls(
            poiid=poiid,
            kind=clean_text(kind, limit=TEXT_LIMIT),
            timestamp=clean_text(timestamp, limit=TEXT_LIMIT),
            received_at=float(received),
            details=_details(obj.get("details")),
            maintenance_required=flag,
            encrypted=encrypted,
        )

    @property
    def identity(self) -> tuple[object, ...]:
        """What makes two records the same event (received twice: kept once)."""
        return (self.kind, self.timestamp, self.details, self.encrypted)


def alarm_sentences(alarms: Sequence[RecordedEvent]) -> list[str]:
    """SecurityAlarms (newest first) as a tamper verdict's details.

    Each names when the station received it (its own clock: the terminal's may be wrong), the
    terminal's TimeStamp and its EventDetails; an unencrypted one says it was not authenticated.
    The newest :data:`MAX_ALARMS_SHOWN` are named, the rest counted.
    """
    lines = []
    for alarm in alarms[:MAX_ALARMS_SHOWN]:
        received = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(alarm.received_at))
        values = {"received": received, "timestamp": alarm.timestamp or "?"}
        if alarm.details:
            text = _(
                "the terminal sent a SecurityAlarm, received {received} (terminal time "
                "{timestamp}): {details}"
            ).format(
                **values,
                details=clean_text(", ".join(f"{k}={v}" for k, v in alarm.details), limit=300),
            )
        else:
            text = _(
                "the terminal sent a SecurityAlarm, received {received} (terminal time "
                "{timestamp})"
            ).format(**values)
        if not alarm.encrypted:
            text += _(" (unencrypted: the station had no key to authenticate it)")
        lines.append(text)
    earlier = len(alarms) - MAX_ALARMS_SHOWN
    if earlier > 0:
        lines.append(
            ngettext(
                "and {count} earlier SecurityAlarm", "and {count} earlier SecurityAlarms", earlier
            ).format(count=earlier)
        )
    return lines


def _details(value: object) -> tuple[tuple[str, str], ...]:
    """EventDetails as bounded, cleaned pairs, from a mapping or a list of pairs."""
    if isinstance(value, Mapping):
        items: list[Any] = list(value.items())[:MAX_DETAILS]
    elif isinstance(value, list):
        items = value[:MAX_DETAILS]
    else:
        return ()
    pairs = []
    for item in items:
        if isinstance(item, tuple | list) and len(item) == 2:
            key, text = item
            if isinstance(key, str) and isinstance(text, str):
                pairs.append(
                    (
                        clean_text(key, limit=DETAIL_KEY_LIMIT),
                        clean_text(text, limit=DETAIL_VALUE_LIMIT),
                    )
                )
    return tuple(pairs)


def _line(event: RecordedEvent) -> str:
    """The event as one line of at most MAX_LINE bytes (details dropped from the end to fit)."""
    details = event.details
    while True:
        obj = {**event.to_json(), "details": [list(pair) for pair in details]}
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        if len(text.encode("utf-8")) <= MAX_LINE or not details:
            return text
        details = details[:-1]


def _bounded(entries: list[RecordedEvent]) -> list[RecordedEvent]:
    """The newest MAX_PER_TERMINAL entries, dropping the oldest non-protected ones first."""
    excess = len(entries) - MAX_PER_TERMINAL
    if excess <= 0:
        return entries
    drop: set[int] = set()
    for index, entry in enumerate(entries):
        if len(drop) == excess:
            break
        if entry.kind not in PROTECTED_KINDS:
            drop.add(index)
    for index in range(len(entries)):  # only SecurityAlarms left: the oldest of them go
        if len(drop) == excess:
            break
        drop.add(index)
    return [entry for index, entry in enumerate(entries) if index not in drop]


class NexoEventLog:
    """The per-terminal event files.

    Thread-safe (one lock per log; a receiver's handler threads share one) and process-safe (an
    ``flock`` per terminal file).

    Args:
        folder: where the per-terminal files live (default :func:`default_event_log_dir`).
        clock: the wall clock in seconds, for ``received_at`` when the caller gives none.
    """

    def __init__(self, folder: Path | None = None, *, clock: Callable[[], float] = time.time):
        self.folder = folder or default_event_log_dir()
        self.clock = clock
        self._lock = threading.Lock()

    def record(
        self,
        poiid: str,
        event: Event,
        received_at: float | None = None,
        *,
        encrypted: bool = False,
    ) -> RecordedEvent | None:
        """Append one event to the terminal's file.

        Returns:
            The event as recorded, or None when the same event is already there.

        Raises:
            ValueError: ``poiid`` is not a POIID (it names the file).
            NexoConfigError: the folder cannot be written (a wrong ``XDG_DATA_HOME``, a full
                disk); the caller says so, the event is lost as the terminal will not resend it.
        """
        if not POIID_FILE_NAME.fullmatch(poiid):
            raise ValueError("not a POIID")
        recorded = RecordedEvent(
            poiid=poiid,
            kind=clean_text(event.kind, limit=TEXT_LIMIT),
            timestamp=clean_text(event.timestamp, limit=TEXT_LIMIT),
            received_at=self.clock() if received_at is None else float(received_at),
            details=_details(event.details),
            maintenance_required=event.maintenance_required,
            encrypted=encrypted,
        )
        with self._lock:
            try:
                return self._append(recorded)
            except OSError as exc:
                raise NexoConfigError(
                    _("cannot record the terminal's events in {folder}: {why}").format(
                        folder=self.folder, why=exc.strerror or exc
                    )
                ) from None

    def recent(
        self,
        poiid: str,
        kinds: Collection[str] | None = None,
        since: float | None = None,
    ) -> list[RecordedEvent]:
        """The terminal's recorded events, newest first; never raises.

        Args:
            poiid: the terminal.
            kinds: only these ``EventToNotify`` kinds (None: all).
            since: only events received at or after this Unix time (None: all kept).

        An unreadable file reads as no events and is logged: the caller's other evidence
        (``SecurityOKFlag``) still stands.
        """
        if not POIID_FILE_NAME.fullmatch(poiid):
            return []
        try:
            entries = self._read(self.folder / poiid, poiid)
        except OSError as exc:
            log.warning("nexo.event_log_unreadable", poiid=poiid, error=exc.strerror or str(exc))
            return []
        chosen = [
            entry
            for entry in entries
            if (kinds is None or entry.kind in kinds)
            and (since is None or entry.received_at >= since)
        ]
        return chosen[::-1]

    def forget(self, poiid: str) -> int:
        """Delete the terminal's events (after its examination); returns how many there were.

        Raises:
            ValueError: ``poiid`` is not a POIID.
            NexoConfigError: the file cannot be removed.
        """
        if not POIID_FILE_NAME.fullmatch(poiid):
            raise ValueError("not a POIID")
        path = self.folder / poiid
        with self._lock:
            if not path.exists():
                return 0
            try:
                with locked(path):
                    count = len(self._read(path, poiid))
                    path.unlink(missing_ok=True)
            except OSError as exc:
                raise NexoConfigError(
                    _("cannot remove the terminal's events from {folder}: {why}").format(
                        folder=self.folder, why=exc.strerror or exc
                    )
                ) from None
        log.info("nexo.events_forgotten", poiid=poiid, count=count)
        return count

    # --- files -----------------------------------------------------------------------------------

    def _append(self, event: RecordedEvent) -> RecordedEvent | None:
        make_private_dirs(self.folder)
        with contextlib.suppress(OSError):
            self.folder.chmod(0o700)  # a folder made by hand with the umask's 755: close it
        path = self.folder / event.poiid
        created = not path.exists()
        with locked(path):
            entries = self._read(path, event.poiid)
            if any(entry.identity == event.identity for entry in entries):
                return None
            entries.append(event)
            self._write(path, _bounded(entries))
        if created:
            self._sweep(keep=path)
        return event

    @staticmethod
    def _read(path: Path, poiid: str) -> list[RecordedEvent]:
        """The file's well-formed lines, oldest first (at most its last MAX_FILE bytes)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return []
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE:
                handle.seek(size - MAX_FILE)
            raw = handle.read(MAX_FILE)
        lines = raw.split(b"\n")
        if size > MAX_FILE:
            lines = lines[1:]  # the first is cut
        entries = []
        for line in lines[-MAX_PER_TERMINAL * 2 :]:
            if not line.strip() or len(line) > MAX_LINE:
                continue
            try:
                obj = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            entry = RecordedEvent.from_json(poiid, obj)
            if entry is not None:
                entries.append(entry)
        return entries

    @staticmethod
    def _write(path: Path, entries: list[RecordedEvent]) -> None:
        replace_private(path, "".join(_line(entry) for entry in entries).encode("utf-8"))

    def _protected(self, path: Path) -> bool:
        """Whether a terminal file holds a SecurityAlarm (unreadable: assume it does)."""
        try:
            return any(e.kind in PROTECTED_KINDS for e in self._read(path, path.name))
        except OSError:
            return True

    def _sweep(self, keep: Path) -> None:
        """Delete the oldest terminal files beyond MAX_TERMINALS, those without alarms first."""
        files = terminal_files(self.folder, MAX_TERMINALS)
        excess = len(files) - MAX_TERMINALS
        if excess <= 0:
            return
        oldest = [path for _when, path in files if path != keep]
        doomed = [p for p in oldest[:_SWEEP_READS] if not self._protected(p)][:excess]
        if len(doomed) < excess:
            extra = [p for p in oldest if p not in doomed][: excess - len(doomed)]
            log.warning("nexo.event_log_full", dropped_with_alarms=len(extra))
            doomed.extend(extra)
        for path in doomed:
            with contextlib.suppress(OSError):
                remove_with_lock(path)
            log.debug("nexo.event_log_pruned", poiid=path.name)
