"""``posdiag doctor``: what stops a station on a new PC, found before the first terminal is.

A technician setting up a depot PC meets the same walls in the same order: no libusb, no USB
access for their account, no udev rules, no ``dialout`` group, a key or ledger in a folder they
cannot write, a clock nobody set. Each check here looks at one of them and answers with a
:class:`Check`: ok, warning or problem, one sentence of what it found and, when not ok, one
sentence of what to do (an exact command where there is one).

The device-access checks (libusb, USB bus and permissions, udev rules, serial ports) live in
:mod:`.udev` beside the rules they compare with; the station's own state (key, ledger, clock)
is checked here. The checks only look: they change no record, create no key and no ledger (the
default ledger's private folder is made, as every command makes it). The places they look
(``/sys``, ``/dev``, ``/``, the key file, the ledger URL, the clock) and whose access is judged
are parameters, so tests point them at fake trees. Nothing here prints; ``cli_doctor`` does.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import grp
import os
import pwd
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from posdiag.drivers.i18n import _, format_datetime

from .logs import get_logger

__all__ = [
    "RELEASE_YEAR",
    "Check",
    "Status",
    "User",
    "can_read_write",
    "check_clock",
    "check_ledger",
    "check_station_key",
    "group_name",
    "kernel_clock_synchronised",
    "run_checks",
]

log = get_logger(__name__)

Status = Literal["ok", "warning", "problem"]

RELEASE_YEAR = 2026
"""The year this posdiag was released: a clock showing an earlier date is certainly wrong."""

_TIME_ERROR = 5  # adjtimex(2): clock not synchronised (STA_UNSYNC or STA_CLOCKERR set)
_TIMEX_SIZE = 512  # struct timex is 208 bytes on 64-bit Linux; room to spare
_LEDGER_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    """One check's answer.

    Attributes:
        name: stable English identifier (JSON, tests), e.g. ``usb_bus``.
        status: ``ok``, ``warning`` or ``problem``.
        found: one sentence, in the reader's language, of what was found.
        fix: one sentence of what to do when not ok (None when ok).
    """

    name: str
    status: Status
    found: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The check for ``--json``: field names and status stay English identifiers."""
        return {"name": self.name, "status": self.status, "found": self.found, "fix": self.fix}


@dataclass(frozen=True)
class User:
    """Whose access the checks judge.

    Attributes:
        uid: the user ID.
        name: the account name, for sentences.
        gids: the groups this process has now (a group added since the last login is not here).
        listed_in: the groups the account belongs to in the group database (effective at the
            next login).
        real: True for the running process: the kernel is asked (``os.access`` honours ACLs,
            such as the one udev's ``uaccess`` tag grants); False for a described user (tests),
            judged by the file's owner, group and mode.
    """

    uid: int
    name: str
    gids: frozenset[int]
    listed_in: frozenset[str]
    real: bool = False

    @property
    def is_root(self) -> bool:
        """Whether permissions do not apply (root opens every device)."""
        return self.uid == 0

    @classmethod
    def current(cls) -> User:
        """The user running posdiag."""
        uid = os.geteuid()
        try:
            entry = pwd.getpwuid(uid)
            name, primary = entry.pw_name, entry.pw_gid
        except KeyError:  # a container user without a passwd entry
            name, primary = str(uid), os.getegid()
        listed = {group.gr_name for group in grp.getgrall() if name in group.gr_mem}
        listed.add(group_name(primary))
        gids = frozenset({os.getegid(), *os.getgroups()})
        return cls(uid, name, gids, frozenset(listed), real=True)

    def can(self, path: Path, mode: int) -> bool:
        """Whether this user may access ``path`` as ``mode`` (``os.R_OK | os.W_OK``…).

        False when the path is missing.
        """
        if self.real:
            return os.access(path, mode)
        try:
            info = path.stat()
        except OSError:
            return False
        if self.is_root:
            return True
        if info.st_uid == self.uid:
            bits = info.st_mode >> 6
        elif info.st_gid in self.gids:
            bits = info.st_mode >> 3
        else:
            bits = info.st_mode
        return bits & mode == mode


def group_name(gid: int) -> str:
    """The name of group ``gid``, or its number when the group database has none."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def can_read_write(path: Path, user: User) -> bool:
    """Whether ``user`` may open ``path`` for reading and writing (False when it is missing)."""
    return user.can(path, os.R_OK | os.W_OK)


def _can_create_in(folder: Path, user: User) -> tuple[bool, Path]:
    """Whether ``user`` could create ``folder``'s content; and the folder that decides it.

    When ``folder`` is missing, the nearest existing ancestor decides (posdiag creates the
    missing ones).
    """
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return user.can(probe, os.W_OK | os.X_OK), probe


# --- station key -------------------------------------------------------------------------------


def check_station_key(path: Path | None = None, user: User | None = None) -> Check:
    """Whether the station key exists, is private, and loads (wipes sign certificates with it).

    A missing key is a warning, not a problem: the first wipe creates it (``StationKey.
    load_or_create``), as long as its folder can be created; but the depot should hand its
    fingerprint out before certificates do.
    """
    from .certificate import StationKey
    from .certificate.errors import CertificateError
    from .certificate.keys import default_key_path

    path = path or default_key_path()
    user = user or User.current()
    if not path.exists():
        creatable, folder = _can_create_in(path.parent, user)
        if creatable:
            return Check(
                "station_key",
                "warning",
                _("No station key yet ({path}); posdiag creates it at the first wipe.").format(
                    path=path
                ),
                _(
                    "Run posdiag station-key to create it now, and give its fingerprint to "
                    "whoever verifies your certificates."
                ),
            )
        return Check(
            "station_key",
            "problem",
            _(
                "No station key ({path}), and this user cannot create it: wipes cannot sign "
                "certificates."
            ).format(path=path),
            _(
                "Make {folder} writable for this user (sudo chown $USER {folder}), then run "
                "posdiag station-key."
            ).format(folder=folder),
        )
    if not user.can(path, os.R_OK):
        return Check(
            "station_key",
            "problem",
            _(
                "This user cannot read the station key {path}: wipes cannot sign certificates."
            ).format(path=path),
            _("Give it back to this user: sudo chown $USER {path}").format(path=path),
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return Check(
            "station_key",
            "problem",
            _(
                "Other users can read the station key {path} (mode {mode:o}): whoever copies it "
                "can forge certificates, so posdiag refuses to sign with it."
            ).format(path=path, mode=mode),
            _("Run: chmod 600 {path}").format(path=path),
        )
    try:
        key = StationKey.load_or_create(path)
    except CertificateError as exc:
        log.debug("doctor.station_key_unusable", error=str(exc))
        return Check(
            "station_key",
            "problem",
            _(
                "The station key {path} is damaged or is not a posdiag key: wipes cannot sign "
                "certificates."
            ).format(path=path),
            _(
                "Move it aside and run posdiag station-key to make a new one; give the new "
                "fingerprint to whoever verifies your certificates."
            ),
        )
    folder_mode = path.parent.stat().st_mode & 0o777
    if folder_mode & 0o077:
        return Check(
            "station_key",
            "warning",
            _(
                "The station key {path} is private, but its folder is open to other users "
                "(mode {mode:o})."
            ).format(path=path, mode=folder_mode),
            _("Run: chmod 700 {folder}").format(folder=path.parent),
        )
    return Check(
        "station_key",
        "ok",
        _("Station key {path} is private and loads (fingerprint {fingerprint}).").format(
            path=path, fingerprint=key.fingerprint
        ),
    )


# --- ledger ------------------------------------------------------------------------------------


def check_ledger(
    url: str | None = None, *, user: User | None = None, timeout: float = _LEDGER_PROBE_TIMEOUT_S
) -> Check:
    """Whether the ledger can be opened and written, changing no record.

    A SQLite ledger that does not exist yet is not created: its folder is checked instead. An
    existing one (SQLite or PostgreSQL) is opened the way every command opens it, its layout is
    read, and a write transaction (taking the same lock a wipe takes) is rolled back.

    Args:
        url: the ledger URL; the default SQLite file when None.
        user: whose access to a SQLite file and its folder is judged; this process's when None.
        timeout: how long the probe waits for another posdiag's write.
    """
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    from .ledger import LedgerError, default_path, sqlite_url

    choose = _("Choose another ledger with --ledger, or ledger = in station.toml.")
    try:
        text = url or sqlite_url(default_path())
    except OSError as exc:  # the default ledger's folder cannot be made (HOME not writable)
        return Check(
            "ledger",
            "problem",
            _("The ledger's folder cannot be created: {error}").format(error=exc.strerror or exc),
            choose,
        )
    try:
        parsed = make_url(text)
    except sa_exc.ArgumentError:
        return Check(
            "ledger",
            "problem",
            _(
                "The ledger URL in force cannot be understood (it is not shown: it may hold a "
                "password)."
            ),
            _(
                "Give a URL such as sqlite:////var/lib/posdiag/ledger.sqlite3 or "
                "postgresql://user@host/posdiag (--ledger, or ledger = in station.toml)."
            ),
        )
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and (not database.startswith("file:"))
    ):
        problem = _sqlite_file_problem(Path(database), user or User.current(), choose)
        if problem is not None:
            return problem
    try:
        return _probe_ledger(text, timeout)
    except LedgerError as exc:
        reason = str(exc)
        if any(word in reason.lower() for word in ("locked", "busy")):
            return Check(
                "ledger",
                "warning",
                _("The ledger is busy: another posdiag is writing to it right now."),
                _("Run posdiag doctor again when the other posdiag has finished."),
            )
        if parsed.get_backend_name() == "postgresql":
            fix = _(
                "Check that the database server is running and reachable from this computer, and "
                "the user name and password in the ledger URL."
            )
        else:
            fix = _("Do what the message says, then run posdiag doctor again. {choose}").format(
                choose=choose
            )
        return Check(
            "ledger", "problem", _("The ledger cannot be used: {reason}").format(reason=reason), fix
        )


def _sqlite_file_problem(path: Path, user: User, choose: str) -> Check | None:
    """The answer for a SQLite ledger file that is missing or unwritable; None to go on."""
    folder = path.parent
    if not path.exists():
        creatable, decides = _can_create_in(folder, user)
        if creatable:
            return Check(
                "ledger",
                "ok",
                _(
                    "No ledger yet at {path}: posdiag creates it at the first check or wipe, and "
                    "its folder can be written."
                ).format(path=path),
            )
        return Check(
            "ledger",
            "problem",
            _("The ledger {path} cannot be created: this user cannot write in {folder}.").format(
                path=path, folder=decides
            ),
            _(
                "Make the folder writable for this user (sudo chown $USER {folder}). {choose}"
            ).format(folder=decides, choose=choose),
        )
    if not user.can(path, os.R_OK | os.W_OK):
        return Check(
            "ledger",
            "problem",
            _(
                "This user cannot write the ledger {path}: checks and wipes cannot be recorded."
            ).format(path=path),
            _("Give it back to this user: sudo chown $USER {path}").format(path=path),
        )
    if not user.can(folder, os.W_OK | os.X_OK):
        return Check(
            "ledger",
            "problem",
            _(
                "This user cannot write in the ledger's folder {folder}: the database needs to "
                "create its journal files there."
            ).format(folder=folder),
            _(
                "Make the folder writable for this user (sudo chown $USER {folder}). {choose}"
            ).format(folder=folder, choose=choose),
        )
    return None


def _probe_ledger(url: str, timeout: float) -> Check:
    """Open the ledger, read its layout, and roll back a write that takes the writers' lock."""
    import sqlalchemy as sa

    from .ledger.engine import Database
    from .ledger.migrate import _schema_state

    db = Database(url, timeout)
    try:
        with db.read() as conn:
            state = _schema_state(db, conn)
        with db.translate(), db.connect(write=True) as conn:
            transaction = conn.begin()
            try:
                if state == "ready":  # the statement every writer starts with, undone
                    conn.execute(
                        sa.text("UPDATE audit_head SET row_count = row_count WHERE id = 1")
                    )
                else:  # tables still to be created or upgraded: can this user create one?
                    conn.execute(sa.text("CREATE TABLE posdiag_doctor_probe (id INTEGER)"))
            finally:
                transaction.rollback()
        where = str(db.file) if db.file is not None else db.url
    finally:
        db.dispose()
    if state == "outdated":
        found = _(
            "The ledger {where} can be read and written; it will be brought to this posdiag's "
            "layout at the next check or wipe."
        )
    else:
        found = _("The ledger {where} can be read and written.")
    return Check("ledger", "ok", found.format(where=where))


# --- clock -------------------------------------------------------------------------------------


def kernel_clock_synchronised(root: Path = Path("/")) -> bool | None:
    """Whether the system clock is kept synchronised (NTP); None when it cannot be told.

    systemd-timesyncd's flag file says yes; otherwise the kernel's own answer from
    ``adjtimex(2)`` with no change requested: ``TIME_ERROR`` means not synchronised.
    """
    if (root / "run" / "systemd" / "timesync" / "synchronized").exists():
        return True
    if not sys.platform.startswith("linux"):
        return None
    try:
        adjtimex = ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    timex = ctypes.create_string_buffer(_TIMEX_SIZE)  # modes = 0: read only
    state = int(adjtimex(timex))
    if state < 0:
        return None
    return state != _TIME_ERROR


def check_clock(
    now: dt.datetime | None = None, synchronised: Callable[[], bool | None] | None = None
) -> Check:
    """Whether the clock is plausible and kept right: certificates carry its times."""
    now = now or dt.datetime.now(dt.UTC)
    shown = format_datetime(now.astimezone(dt.UTC))
    if now.year < RELEASE_YEAR:
        return Check(
            "clock",
            "problem",
            _(
                "The computer's date is {time}, before this posdiag was released: the clock is "
                "wrong, and certificates would carry a wrong time."
            ).format(time=shown),
            _(
                "Set the date and time, and keep them right with network time: "
                "sudo timedatectl set-ntp true"
            ),
        )
    state = (synchronised or kernel_clock_synchronised)()
    if state is None:
        return Check(
            "clock",
            "warning",
            _("The clock reads {time}; posdiag cannot tell whether it is synchronised.").format(
                time=shown
            ),
            _(
                "Check that network time is on: timedatectl status should say "
                '"System clock synchronized: yes".'
            ),
        )
    if not state:
        return Check(
            "clock",
            "warning",
            _(
                "The clock reads {time} but is not synchronised with a time server: "
                "certificate times may be wrong."
            ).format(time=shown),
            _("Turn network time on: sudo timedatectl set-ntp true"),
        )
    return Check(
        "clock",
        "ok",
        _("The clock reads {time} and is synchronised with a time server.").format(time=shown),
    )


# --- all ---------------------------------------------------------------------------------------


def run_checks(ledger_url: str | None = None) -> list[Check]:
    """Every check, in the order a technician fixes things; a check that crashes is a problem.

    Args:
        ledger_url: the ledger in force (``--ledger`` or the settings); the default when None.
    """
    # Imported here: ``udev`` builds its checks on this module's Check and User.
    from .udev import (
        check_libusb,
        check_serial_ports,
        check_udev_rules,
        check_usb_bus,
        check_usb_permissions,
    )

    user = User.current()
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("libusb", check_libusb),
        ("usb_bus", check_usb_bus),
        ("usb_permissions", lambda: check_usb_permissions(user=user)),
        ("udev_rules", lambda: check_udev_rules(user=user)),
        ("serial_ports", lambda: check_serial_ports(user=user)),
        ("station_key", check_station_key),
        ("ledger", lambda: check_ledger(ledger_url)),
        ("clock", check_clock),
    ]
    results: list[Check] = []
    for name, run in checks:
        try:
            results.append(run())
        except Exception as exc:  # one broken check must not hide the others
            log.warning("doctor.check_failed", check=name, error=str(exc))
            results.append(
                Check(
                    name,
                    "problem",
                    _("This check could not run: {error}").format(error=str(exc)),
                    _("Run posdiag --debug doctor and report what it prints."),
                )
            )
    return results
