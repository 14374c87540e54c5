"""Which commands an Android check sends, and how their answers come back to the parsers.

This module owns the reading side of :class:`~.terminal.AdbTerminal`: the commands a check (full
or quick) sends, in which order, under which words, and the two ways their output comes back,
in one batch or one command at a time, until every answer is parsed into :class:`AdbFacts`. It
is separate from the terminal because the two change for different reasons: the terminal turns
facts into the Terminal contract's records (probes, wipe plan), while this module decides round
trips, fallbacks and per-fact failures, and neither needs the other's details to be read.

Every command is a fixed string, or built from the catalogue's own data (package names, paths)
and from integers parsed out of device output; never from text the device sent, so a hostile or
broken device cannot inject shell syntax. Facts come from real command output parsed by key
(``parsers.py``), so different Android releases and vendor builds work.

A check is one device round trip: :func:`_read_batch` sends its commands as one shell command
line whose outputs are told apart by per-check nonce markers (:mod:`.batch`), and hands each
section to the same parser, with the same exit status, that the command's own output would have
gone to; a batch whose output cannot be trusted is dropped for one command at a time
(:class:`_Sequential`). :func:`_gather` reads either way through one :class:`_Reader`, so the two
cannot drift apart.

Each command is announced to whoever watches (:mod:`posdiag.drivers.activity`) in the words an
operator uses ("reading battery status"); the English ``facts.errors`` keep the commands' own
words for ``--debug`` and the JSON report, ``facts.unread`` the reader's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import structlog

from ..activity import announce
from ..catalogue import AdbModelEntry, Catalogue
from ..errors import DeadlineExceeded, PosdiagError, TransportError, UnsupportedError
from ..i18n import N_, _
from ..model import PendingTransactions
from ..text import clean_text
from .batch import BatchProgress, BatchUntrusted, CommandBatch, SectionOutput, batchable
from .driver import AdbDriver, ShellOutput
from .errors import AdbCommandError
from .parsers import (
    BatteryInfo,
    DevicePolicyInfo,
    DiskStats,
    TelephonyInfo,
    WifiInfo,
    parse_accounts,
    parse_device_owner,
    parse_diskstats,
    parse_dumpsys_battery,
    parse_dumpsys_package_version,
    parse_dumpsys_wifi,
    parse_getprop,
    parse_ls,
    parse_pm_list_packages,
    parse_settings_value,
    parse_telephony_registry,
)

log = structlog.get_logger(__name__)

FACT_WORDS = {
    "battery": N_("battery"),
    "telephony": N_("telephony"),
    "wifi": N_("wifi"),
    "airplane mode": N_("airplane mode"),
    "packages": N_("packages"),
    "storage": N_("storage"),
    "accounts": N_("accounts"),
}
"""The facts read by name, in words a person reads where one could not be read."""


@dataclass
class AdbFacts:
    """What one ADB session learned; the probes are computed from it."""

    props: dict[str, str] = field(default_factory=dict)
    entry: AdbModelEntry | None = None
    battery: BatteryInfo | None = None
    telephony: TelephonyInfo | None = None
    wifi: WifiInfo | None = None
    airplane_mode: bool | None = None
    packages: list[str] = field(default_factory=list)
    diskstats: DiskStats | None = None
    policy: DevicePolicyInfo | None = None
    accounts: list[tuple[str, str]] = field(default_factory=list)
    app_versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)
    pending: PendingTransactions | None = None
    errors: list[str] = field(default_factory=list)
    unread: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, what in the reader's words, error) of every fact that failed to read."""


# --- readers: where each command's output comes from ----------------------------------------------


class _Reader(Protocol):
    """Where :func:`_gather` gets each command's output."""

    def shell(self, command: str) -> ShellOutput:
        """The output of ``command`` (raises as ``AdbDriver.shell`` does)."""
        ...

    def read_optional(self, path: str) -> bytes | None:
        """A pending-batch export's bytes, or None when there is none to read."""
        ...

    def say(self, what: str) -> None:
        """Tell whoever watches what is being read."""
        ...


class _Sequential:
    """One command at a time, each its own shell stream: the way without a batch.

    Args:
        driver: reads the pending-batch exports through sync.
        shell: runs one command (the terminal's, which opens the link first if need be).
    """

    def __init__(self, driver: AdbDriver, shell: Callable[[str], ShellOutput]) -> None:
        self.driver = driver
        self._shell = shell

    def shell(self, command: str) -> ShellOutput:
        return self._shell(command)

    def read_optional(self, path: str) -> bytes | None:
        try:
            return self.driver.read_file(path)
        except AdbCommandError:
            return None  # sync's STAT found no file or RECV was refused: no export there

    def say(self, what: str) -> None:
        announce(what)


class _Batched:
    """The sections a batch read, handed out as the commands' own outputs.

    Args:
        fallback: runs what the batch did not carry (a command a batch may not hold, the
            pending exports without shell v2).
        outputs: each command's output, by command.
        lost: the commands a failed link cut off, with the failure each one raises.
        said: what the batch already announced while its sections arrived.
    """

    def __init__(
        self,
        fallback: _Sequential,
        outputs: dict[str, ShellOutput],
        lost: dict[str, TransportError],
        said: set[str],
    ) -> None:
        self.fallback = fallback
        self.outputs = outputs
        self.lost = lost
        self.said = said

    def shell(self, command: str) -> ShellOutput:
        output = self.outputs.get(command)
        if output is not None:
            return output
        failure = self.lost.get(command)
        if failure is not None:
            raise failure
        return self.fallback.shell(command)

    def read_optional(self, path: str) -> bytes | None:
        command = f"cat {path}"
        if command in self.outputs or command in self.lost:
            output = self.shell(command)
            # cat fails where sync's STAT finds no file or RECV is refused: no export there
            return output.stdout if output.ok else None
        return self.fallback.read_optional(path)

    def say(self, what: str) -> None:
        if what not in self.said:
            announce(what)
            self.said.add(what)


# --- the check: plan, batch, gather ---------------------------------------------------------------


def collect(
    driver: AdbDriver,
    address: str,
    catalogue: Catalogue,
    shell: Callable[[str], ShellOutput],
    *,
    quick: bool,
    batched: bool,
) -> AdbFacts:
    """Read the facts of the scope: in one batch, else (or when told) one by one.

    Args:
        driver: the open ADB driver.
        address: the address string, for the log.
        catalogue: where the model entry (and the batch's entry-specific commands) come from.
        shell: runs one command on its own (the terminal's, which opens the link if need be).
        quick: read only what identify, activation and merchant_data use.
        batched: try :func:`_read_batch` first; False asks one command at a time.
    """
    facts = AdbFacts()
    announce(_("reading the system properties"))
    sequential = _Sequential(driver, shell)
    reader = _read_batch(driver, address, catalogue, quick, sequential) if batched else None
    _gather(facts, reader or sequential, catalogue, quick, address)
    return facts


def command_plan(catalogue: Catalogue, *, quick: bool, files: bool) -> list[tuple[str, str]]:
    """Every command a check may need, in the order :func:`_gather` reads them, with words.

    The entry (model) is only known from getprop, so the entry-specific commands are the
    catalogue's union over its entries: a batch cannot wait for the entry without a second
    round trip. They are our own constant strings; a package or path the unit lacks only
    gives its section an error status, and :func:`_gather` reads only the entry's own
    sections, exactly as it would have asked for them one by one. ``files``: read the
    pending-batch exports with ``cat`` in the batch (shell v2 only, see :func:`_read_batch`).
    """
    network = _("reading network status")
    plan = [("getprop", _("reading the system properties"))]
    if not quick:
        plan += [
            ("dumpsys battery", _("reading battery status")),
            ("dumpsys telephony.registry", network),
        ]
    plan.append(("dumpsys wifi", network))
    if not quick:
        plan.append(("settings get global airplane_mode_on", network))
    plan += [
        ("pm list packages", _("listing installed apps")),
        ("dumpsys diskstats", _("reading storage use")),
        ("dumpsys device_policy", _("reading the device management settings")),
        ("dumpsys account", _("reading the accounts on the terminal")),
    ]
    entries = [e for e in catalogue.models if isinstance(e, AdbModelEntry)]
    if not quick:
        version = _("reading the payment app's version")
        packages = (p for e in entries for p in (*e.payment_apps, *e.tms_apps))
        plan += [(f"dumpsys package {p}", version) for p in dict.fromkeys(packages)]
    looking = _("looking for merchant files")
    paths = (path for e in entries for path in e.merchant_paths)
    plan += [(f"ls -1Ap {path}", looking) for path in dict.fromkeys(paths)]
    if files:
        reading = _("reading the payment app's data")
        pending = (path for e in entries for path in e.pending_files)
        plan += [(f"cat {path}", reading) for path in dict.fromkeys(pending)]
    return plan


def _read_batch(
    driver: AdbDriver, address: str, catalogue: Catalogue, quick: bool, fallback: _Sequential
) -> _Reader | None:
    """Run the check's commands as one batch; None when its output cannot be trusted.

    Round trips, measured against the simulated unit at a real unit's 30 ms a shell (see
    ``bench/adb_roundtrip.py``): one command line carries getprop, every generic fact and
    the entry-specific commands of the whole catalogue (their union; see :func:`command_plan`),
    so the check is one shell stream and one device round trip instead of about fifteen.

    The pending-batch exports ride in the same line as ``cat`` sections when the unit has
    shell v2: its stdout is a binary-safe channel (shell protocol packets carry raw bytes,
    ``raw`` means no PTY), the shell uid reads the same files sync would, and the batch's
    output cap (the driver's ``max_response``, sync's own limit too) bounds them. Without
    shell v2 a ``shell:`` may run on a PTY (pre-Android-7 adbd) that turns every line feed
    into CR LF, so the exports are read through sync afterwards, as before: one more stream,
    but adbd serves sync in a thread of its own (no fork), so it adds link round trips
    only. Concurrent streams were weighed and not needed: with everything in one line there
    is nothing left to overlap, and ``AdbDriver`` stays one stream at a time.

    Falls back to one command at a time (None) when the output is off the batch layout
    (:mod:`.batch`), exceeds the driver's output cap, or the shell refuses the line; a link
    that fails mid-line keeps the sections that arrived whole and charges the failure to
    the command that was running, as a one-by-one check would have. The check's deadline
    ends it as it ends any read. ``fallback`` runs what the batch does not carry.
    """
    v2 = driver.shell_v2
    plan = [(c, w) for c, w in command_plan(catalogue, quick=quick, files=v2) if batchable(c)]
    words = dict(plan)
    try:
        batch = CommandBatch([c for c, _ in plan])
        lines = batch.lines(driver.max_command_length)
    except ValueError as exc:  # a catalogue command longer than one OPEN can carry
        log.warning("adb.batch_unusable", address=address, reason=str(exc))
        return None
    said = {_("reading the system properties")}
    current = [_("reading the system properties")]

    def on_section(index: int) -> None:
        what = words[batch.commands[index]]
        if what != current[0]:
            announce(what)
            current[0] = what
            said.add(what)

    outputs: dict[str, ShellOutput] = {}
    lost: dict[str, TransportError] = {}
    budget = driver.timeout
    for line in lines:
        progress = BatchProgress(batch, line, on_section, limit=driver.max_response)
        try:
            result = driver.shell(
                line.text,
                timeout=budget * (line.count + 1),
                idle_timeout=budget,
                on_stdout=progress,
                what="the batch of facts",
            )
            sections = batch.split(line, result.stdout)
        except DeadlineExceeded:
            raise
        except TransportError as exc:
            try:
                sections = batch.split(line, bytes(progress.received), partial=True)
            except BatchUntrusted as untrusted:
                log.warning("adb.batch_untrusted", address=address, reason=str(untrusted))
                return None
            _keep(batch, sections, outputs, v2)
            # the command running when the link failed, and every one after it, is charged
            # with the failure; lines are consecutive, so that is the rest of the batch
            lost = dict.fromkeys(batch.commands[line.first + len(sections) :], exc)
            break
        except PosdiagError as exc:  # off the layout, too large, refused, bad shell packets
            log.warning("adb.batch_untrusted", address=address, reason=str(exc))
            return None
        _keep(batch, sections, outputs, v2)
    log.debug("adb.batched", address=address, lines=len(lines), sections=len(outputs))
    return _Batched(fallback, outputs, lost, said)


def _keep(
    batch: CommandBatch, sections: list[SectionOutput], into: dict[str, ShellOutput], v2: bool
) -> None:
    """Each section as the one command's ShellOutput it stands for.

    Without shell v2 a lone ``shell:`` gives no exit status, so neither does its section
    (the status ``$?`` read is checked, then dropped): both ways give the same facts.
    """
    for section in sections:
        status = section.status if v2 else None
        into[batch.commands[section.index]] = ShellOutput(status, section.body)


def _gather(
    facts: AdbFacts, reader: _Reader, catalogue: Catalogue, quick: bool, address: str
) -> None:
    """Ask each fact of ``reader`` in order and parse it; one way for batch and one by one.

    ``reader`` either runs each command now (:class:`_Sequential`) or hands over the
    section a batch already read (:class:`_Batched`): the parsers get the same text, the
    same exit status, the same refusals and the same per-fact error notes either way.
    """
    facts.props = parse_getprop(reader.shell("getprop").text)  # reachability decided here
    entry = catalogue.by_getprop(facts.props)
    facts.entry = entry
    alive = True
    said = ""

    def step(name: str, what: str, action: Callable[[], Any], label: str = "") -> Any:
        """One fact, announced as ``what``; a failure is noted in English as ``name``.

        ``label`` is ``name`` in the reader's words (``name`` itself, translated, if empty):
        what the activation evidence says could not be read.
        """
        nonlocal alive, said
        if not alive:
            return None
        if what != said:  # several reads under one heading keep counting their bytes
            reader.say(what)
            said = what
        try:
            return action()
        except DeadlineExceeded:
            raise  # the check's time is up: the caller decides what that means
        except TransportError as exc:
            _failed(facts, name, label, exc)
            alive = False
        except PosdiagError as exc:
            _failed(facts, name, label, exc)
        return None

    def dumpsys(service: str) -> str:
        return _dumpsys_text(reader.shell(f"dumpsys {service}"), service)

    battery = _("reading battery status")
    network = _("reading network status")
    if not quick:
        facts.battery = step(
            "battery",
            battery,
            lambda: parse_dumpsys_battery(reader.shell("dumpsys battery").text),
        )
        facts.telephony = step(
            "telephony",
            network,
            lambda: parse_telephony_registry(reader.shell("dumpsys telephony.registry").text),
        )
    facts.wifi = step("wifi", network, lambda: parse_dumpsys_wifi(dumpsys("wifi")))
    if not quick:
        airplane = step(
            "airplane mode",
            network,
            lambda: parse_settings_value(reader.shell("settings get global airplane_mode_on").text),
        )
        facts.airplane_mode = None if airplane is None else airplane == "1"
    facts.packages = (
        step(
            "packages",
            _("listing installed apps"),
            lambda: parse_pm_list_packages(reader.shell("pm list packages").text),
        )
        or []
    )
    facts.diskstats = step(
        "storage", _("reading storage use"), lambda: parse_diskstats(dumpsys("diskstats"))
    )
    owners = ", ".join(
        r.package for r in entry.activation if r.kind == "device_owner" and r.package
    )
    expected = f" (device owner {owners} expected)" if owners else ""
    facts.policy = step(
        f"device policy{expected}",
        _("reading the device management settings"),
        lambda: parse_device_owner(dumpsys("device_policy")),
        _("device policy (device owner {owners} expected)").format(owners=owners)
        if owners
        else _("device policy"),
    )
    facts.accounts = (
        step(
            "accounts",
            _("reading the accounts on the terminal"),
            lambda: parse_accounts(dumpsys("account")),
        )
        or []
    )
    for package in () if quick else (*entry.payment_apps, *entry.tms_apps):
        if package in facts.packages:
            version = step(
                f"version of {package}",
                _("reading the payment app's version"),
                partial(_app_version, reader, package),
                _("version of {package}").format(package=package),
            )
            if version:
                facts.app_versions[package] = version
    for path in entry.merchant_paths:
        listing = step(
            f"files in {path}",
            _("looking for merchant files"),
            partial(reader.shell, f"ls -1Ap {path}"),
            _("files in {path}").format(path=path),
        )
        if listing is not None and listing.ok:
            facts.files[path] = parse_ls(listing.text)
    read_all = alive
    if alive and entry.pending_files:
        reader.say(_("reading the payment app's data"))
    for path in entry.pending_files if alive else ():
        try:
            raw = reader.read_optional(path)
        except DeadlineExceeded:
            raise
        except PosdiagError as exc:
            _failed(
                facts, f"pending batch {path}", _("pending batch {path}").format(path=path), exc
            )
            read_all = False
            break
        if raw is not None:
            facts.pending = _pending(raw)  # None when the export is unreadable
            break
    else:
        if entry.pending_files and read_all:
            # The payment app writes its open batch there; no export means no open batch.
            facts.pending = PendingTransactions(0, 0)
    log.info(
        "adb.collected", address=address, model=entry.id, errors=len(facts.errors), quick=quick
    )


def _failed(facts: AdbFacts, name: str, label: str, exc: PosdiagError) -> None:
    """Note a fact that could not be read: English for the errors, words for the evidence."""
    facts.errors.append(clean_text(f"{name}: {exc}"))
    facts.unread.append((name, label or _(FACT_WORDS.get(name, name)), clean_text(str(exc))))


def _pending(raw: bytes) -> PendingTransactions | None:
    """Numbers from a payment app's batch export; anything else in it is ignored."""
    try:
        data: Any = json.loads(raw.decode("utf-8"))
        count, total = int(data["count"]), int(data["total_cents"])
    except (ValueError, KeyError, TypeError, OverflowError):  # "Infinity" is valid JSON
        return None
    if count < 0 or total < 0:
        return None  # a negative batch is no batch anyone can trust: unreadable, not empty
    currency = data.get("currency")
    valid_currency = isinstance(currency, str) and currency.isalpha() and len(currency) == 3
    return PendingTransactions(count, total, currency if valid_currency else None)


def _dumpsys_text(output: ShellOutput, service: str) -> str:
    """``dumpsys SERVICE`` output, refusing an empty answer.

    A real dumpsys always prints at least its service header, so silence is a failure to read
    (a broken or lying shell), never "nothing there": an empty device policy must not read as
    "no device owner" and let a wipe call a managed terminal released.
    """
    text = output.text
    if not text.strip():
        raise UnsupportedError(f"dumpsys {service} printed nothing")
    return text


def _app_version(reader: _Reader, package: str) -> str | None:
    """The installed version of ``package``, as ``dumpsys package`` reports it."""
    return parse_dumpsys_package_version(reader.shell(f"dumpsys package {package}").text, package)
