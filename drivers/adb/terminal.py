"""The Terminal contract for Android smart POS over ADB.

Facts come from real command output parsed by key (``parsers.py``), so different Android
releases and vendor builds work. Every command is a fixed string, or built from the catalogue's
own data (package names, paths) and from integers parsed out of device output; never from text
the device sent, so a hostile or broken device cannot inject shell syntax.

Activation is inferred, not read: each catalogue recipe (payment app data, device owner, accounts,
merchant files, properties) that fires adds evidence, and the state follows from the evidence's
weight: any strong evidence means ``activated``, only weak evidence ``partial``.

A check is one device round trip: :meth:`AdbTerminal._batched` sends its commands as one shell
command line whose outputs are told apart by per-check nonce markers (:mod:`.batch`), and hands
each section to the same parser, with the same exit status, that the command's own output would
have gone to; a batch whose output cannot be trusted is dropped for one command at a time.

Each command is announced to whoever watches (:mod:`posdiag.drivers.activity`) in the words an
operator uses ("reading battery status", "clearing the payment app's data 2/6"), and every
sentence a record carries is translated (:mod:`posdiag.drivers.i18n`); the English
``facts.errors`` keep the commands' own words for ``--debug`` and the JSON report.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import structlog

from ..activity import announce
from ..catalogue import AdbModelEntry, Catalogue, load_catalogue
from ..errors import DeadlineExceeded, PosdiagError, TransportError, UnsupportedError
from ..i18n import N_, _, ngettext
from ..model import (
    Activation,
    ActivationState,
    Battery,
    CheckScope,
    Evidence,
    Firmware,
    Health,
    Identity,
    MerchantData,
    Network,
    NetworkInterface,
    PendingTransactions,
    Tamper,
    WipeStep,
)
from ..text import clean_text, cleaned
from ..transport.tcp import TcpTransport
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
from .wipe import AdbWipePlan

log = structlog.get_logger(__name__)

LOW_STORAGE_PCT = 5
PRIVACY_MAC = "02:00:00:00:00:00"
_ACTIVATION_FACTS = ("device policy", "accounts", "storage", "packages", "files in", "wifi")
"""Facts whose read failure leaves the terminal's binding or merchant data unverified."""
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


def mask_ssid(ssid: str) -> str:
    """A saved network's name, shortened: enough to recognise, not to publish."""
    count = len(ssid)
    return ngettext("{start}… ({count} char)", "{start}… ({count} chars)", count).format(
        start=ssid[:3] if count > 3 else "", count=count
    )


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
    return parse_dumpsys_package_version(reader.shell(f"dumpsys package {package}").text, package)


class _Reader(Protocol):
    """Where :meth:`AdbTerminal._gather` gets each command's output."""

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
    """One command at a time, each its own shell stream: the way without a batch."""

    def __init__(self, terminal: AdbTerminal) -> None:
        self.terminal = terminal

    def shell(self, command: str) -> ShellOutput:
        return self.terminal._sh(command)

    def read_optional(self, path: str) -> bytes | None:
        return self.terminal._read_optional(path)

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


class AdbTerminal:
    """An Android POS behind an AdbDriver.

    Args:
        driver: the ADB driver (connected on first use).
        address: the address string, for reports.
        catalogue: model entries (defaults to the shipped catalogue).
        usb_serial: the USB iSerialNumber, the serial of last resort.
        batched: read the facts in one batch (:meth:`_batched`); False asks one command at a
            time, as a batch that cannot be trusted falls back to (tests compare the two).
    """

    family = "adb"

    def __init__(
        self,
        driver: AdbDriver,
        address: str,
        catalogue: Catalogue | None = None,
        usb_serial: str | None = None,
        *,
        batched: bool = True,
    ) -> None:
        self.driver = driver
        self.address = address
        self.catalogue = catalogue or load_catalogue()
        self.usb_serial = usb_serial
        self._facts: AdbFacts | None = None
        self._connected = False
        self._scope = CheckScope()
        self._gathered_quick = False
        self.batched = batched

    # --- session ---------------------------------------------------------------------------------

    def _sh(self, command: str) -> ShellOutput:
        self._connect()
        return self.driver.shell(command)

    def set_scope(self, scope: CheckScope) -> None:
        """How much the next gathering asks (:class:`CheckScope`), before the first exchange.

        A quick scope reads only what identify, activation and merchant_data use (no battery,
        telephony, airplane mode or app versions). Facts gathered quick are read again once a
        wider scope is set, so a later full check never reports a triage's gaps.
        """
        if self._facts is not None and self._gathered_quick and not scope.quick:
            self._facts = None
        self._scope = scope

    def facts(self) -> AdbFacts:
        """Gather the facts once per terminal object."""
        if self._facts is None:
            self._facts = self._collect()
        return self._facts

    def refresh(self) -> AdbFacts:
        """Read the device again (after a wipe step)."""
        self._facts = None
        return self.facts()

    def _plan(self, *, quick: bool, files: bool) -> list[tuple[str, str]]:
        """Every command a check may need, in the order :meth:`_gather` reads them, with words.

        The entry (model) is only known from getprop, so the entry-specific commands are the
        catalogue's union over its entries: a batch cannot wait for the entry without a second
        round trip. They are our own constant strings; a package or path the unit lacks only
        gives its section an error status, and :meth:`_gather` reads only the entry's own
        sections, exactly as it would have asked for them one by one. ``files``: read the
        pending-batch exports with ``cat`` in the batch (shell v2 only, see :meth:`_batched`).
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
        entries = [e for e in self.catalogue.models if isinstance(e, AdbModelEntry)]
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

    def _batched(self, quick: bool) -> _Reader | None:
        """Run the check's commands as one batch; None when its output cannot be trusted.

        Round trips, measured against the simulated unit at a real unit's 30 ms a shell (see
        ``bench/adb_roundtrip.py``): one command line carries getprop, every generic fact and
        the entry-specific commands of the whole catalogue (their union; see :meth:`_plan`), so
        the check is one shell stream and one device round trip instead of about fifteen.

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
        ends it as it ends any read.
        """
        v2 = self.driver.shell_v2
        plan = [(c, w) for c, w in self._plan(quick=quick, files=v2) if batchable(c)]
        words = dict(plan)
        try:
            batch = CommandBatch([c for c, _ in plan])
            lines = batch.lines(self.driver.max_command_length)
        except ValueError as exc:  # a catalogue command longer than one OPEN can carry
            log.warning("adb.batch_unusable", address=self.address, reason=str(exc))
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
        budget = self.driver.timeout
        for line in lines:
            progress = BatchProgress(batch, line, on_section, limit=self.driver.max_response)
            try:
                result = self.driver.shell(
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
                    log.warning("adb.batch_untrusted", address=self.address, reason=str(untrusted))
                    return None
                self._keep(batch, sections, outputs, v2)
                # the command running when the link failed, and every one after it, is charged
                # with the failure; lines are consecutive, so that is the rest of the batch
                lost = dict.fromkeys(batch.commands[line.first + len(sections) :], exc)
                break
            except PosdiagError as exc:  # off the layout, too large, refused, bad shell packets
                log.warning("adb.batch_untrusted", address=self.address, reason=str(exc))
                return None
            self._keep(batch, sections, outputs, v2)
        log.debug("adb.batched", address=self.address, lines=len(lines), sections=len(outputs))
        return _Batched(_Sequential(self), outputs, lost, said)

    @staticmethod
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

    def _collect(self) -> AdbFacts:
        """Read the facts of the scope: in one batch, else (or when told) one by one."""
        facts = AdbFacts()
        self._connect()
        announce(_("reading the system properties"))
        quick = self._scope.quick
        reader = self._batched(quick) if self.batched else None
        self._gather(facts, reader or _Sequential(self), quick)
        self._gathered_quick = quick
        return facts

    def _gather(self, facts: AdbFacts, reader: _Reader, quick: bool) -> None:
        """Ask each fact of ``reader`` in order and parse it; one way for batch and one by one.

        ``reader`` either runs each command now (:class:`_Sequential`) or hands over the
        section a batch already read (:class:`_Batched`): the parsers get the same text, the
        same exit status, the same refusals and the same per-fact error notes either way.
        """
        facts.props = parse_getprop(reader.shell("getprop").text)  # reachability decided here
        entry = self.catalogue.by_getprop(facts.props)
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
                self._failed(facts, name, label, exc)
                alive = False
            except PosdiagError as exc:
                self._failed(facts, name, label, exc)
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
                lambda: parse_settings_value(
                    reader.shell("settings get global airplane_mode_on").text
                ),
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
                self._failed(
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
            "adb.collected",
            address=self.address,
            model=entry.id,
            errors=len(facts.errors),
            quick=quick,
        )

    @staticmethod
    def _failed(facts: AdbFacts, name: str, label: str, exc: PosdiagError) -> None:
        """Note a fact that could not be read: English for the errors, words for the evidence."""
        facts.errors.append(clean_text(f"{name}: {exc}"))
        facts.unread.append((name, label or _(FACT_WORDS.get(name, name)), clean_text(str(exc))))

    def _connect(self) -> None:
        """Open the link once (the first command does it too), saying so to whoever watches."""
        if self._connected:
            return
        if self.driver.packetized:
            announce(_("connecting over USB"))
        elif isinstance(self.driver.transport, TcpTransport):
            announce(_("connecting over the network"))
        else:
            announce(_("connecting to the terminal"))
        self.driver.open()
        self._connected = True

    def _read_optional(self, path: str) -> bytes | None:
        try:
            return self.driver.read_file(path)
        except AdbCommandError:
            return None

    def close(self) -> None:
        """Release the device."""
        self.driver.close()
        self._connected = False

    def set_deadline(self, at: float | None) -> None:
        """After ``at`` (``time.monotonic()``) every read raises DeadlineExceeded."""
        self.driver.set_deadline(at)

    # --- probes ----------------------------------------------------------------------------------

    def _entry(self) -> AdbModelEntry:
        entry = self.facts().entry
        assert entry is not None
        return entry

    @cleaned
    def identify(self) -> Identity:
        """Manufacturer and model from properties; serial from the vendor property first."""
        f = self.facts()
        entry = self._entry()
        p = f.props
        return Identity(
            vendor=p.get("ro.product.manufacturer") or entry.vendor or None,
            model=p.get("ro.product.model"),
            serial=entry.serial_from(p) or self.usb_serial,
            hardware=p.get("ro.product.device") or p.get("ro.hardware"),
            device_name=p.get("ro.product.name"),
        )

    @cleaned
    def firmware(self) -> Firmware:
        """Android release, SDK, build, security patch and the payment apps' versions."""
        p = self.facts().props
        components = {
            "Android": p.get("ro.build.version.release"),
            "SDK": p.get("ro.build.version.sdk"),
            "Build": p.get("ro.build.display.id"),
            "Build ID": p.get("ro.build.id"),
            "Security patch": p.get("ro.build.version.security_patch"),
        }
        versions = {f"app {pkg}": ver for pkg, ver in self.facts().app_versions.items()}
        return Firmware({k: v for k, v in components.items() if v} | versions)

    @cleaned
    def battery(self) -> Battery:
        """From ``dumpsys battery``."""
        info = self.facts().battery
        if info is None or (info.level is None and info.voltage_mv is None):
            raise UnsupportedError(_("dumpsys battery gave no battery data"))
        return info.to_battery()

    @cleaned
    def network(self) -> Network:
        """SIM and operator (properties), service and signal (registry), Wi-Fi, airplane mode."""
        f = self.facts()
        primary = f.telephony.primary if f.telephony else None
        sim = (f.props.get("gsm.sim.state") or "").split(",")[0] or None
        operator = (primary.operator_alpha if primary else None) or f.props.get(
            "gsm.operator.alpha"
        )
        details = []
        if f.airplane_mode is not None:
            details.append(_("airplane mode on") if f.airplane_mode else _("airplane mode off"))
        if f.wifi is not None and f.wifi.enabled is not None:
            details.append(_("Wi-Fi enabled") if f.wifi.enabled else _("Wi-Fi disabled"))
            if f.wifi.rssi_dbm is not None and f.wifi.connected:
                details.append(_("Wi-Fi RSSI {dbm} dBm").format(dbm=f.wifi.rssi_dbm))
        if primary and primary.network_type:
            details.append(_("cellular {type}").format(type=primary.network_type))
        interfaces: tuple[NetworkInterface, ...] = ()
        if f.wifi:
            wlan = f.wifi.to_interface()
            if wlan.mac == PRIVACY_MAC:  # Android hides the MAC from the shell since 8.0
                wlan = dataclasses.replace(wlan, mac=None)
            interfaces = (wlan,)
        return Network(
            interfaces=interfaces,
            sim_state=sim,
            operator=operator or None,
            registration=primary.voice_reg_state if primary else None,
            signal_dbm=primary.signal_dbm if primary else None,
            host_reachable=None,
            details=tuple(details),
        )

    def _app_data(self) -> dict[str, int | None]:
        """Bytes of data per catalogue app that is installed (None: size not readable)."""
        f = self.facts()
        entry = self._entry()
        sizes = f.diskstats.app_data_sizes if f.diskstats else {}
        return {
            package: sizes.get(package) if sizes else None
            for package in (*entry.payment_apps, *entry.tms_apps)
            if package in f.packages
        }

    @cleaned
    def activation(self) -> Activation:
        """Evidence from the catalogue's recipes; the state follows from its weight."""
        f = self.facts()
        entry = self._entry()
        found: list[tuple[str, Evidence]] = []
        unreadable = []
        for package, size in self._app_data().items():
            if size:
                found.append(
                    (
                        "strong",
                        Evidence(
                            "app data",
                            _("{package} holds {size} bytes of data").format(
                                package=package, size=size
                            ),
                        ),
                    )
                )
            elif size is None:
                unreadable.append(package)
        if unreadable:
            sdk = f.props.get("ro.build.version.sdk", "?")
            found.append(
                (
                    "info",
                    Evidence(
                        "app data",
                        _(
                            "{count} payment app(s) unchecked: Android SDK {sdk} does not "
                            "report per-app data sizes to the shell (SDK 26+ does)"
                        ).format(count=len(unreadable), sdk=sdk),
                    ),
                )
            )
        policy = f.policy
        for recipe in entry.activation:
            if recipe.kind == "device_owner" and policy and policy.device_owner:
                if not recipe.package or recipe.package == policy.device_owner:
                    found.append(
                        (
                            recipe.weight,
                            Evidence(
                                "device policy",
                                _("device owner {owner}: {means}").format(
                                    owner=policy.device_owner, means=_(recipe.means)
                                ),
                            ),
                        )
                    )
            elif recipe.kind == "account" and f.accounts:
                types = sorted(
                    {
                        t
                        for t, _ in f.accounts
                        if not recipe.account_type or t == recipe.account_type
                    }
                )
                if types:
                    found.append(
                        (
                            recipe.weight,
                            Evidence(
                                "accounts",
                                _("{count} account(s) of type {types}: {means}").format(
                                    count=len(f.accounts),
                                    types=", ".join(types),
                                    means=_(recipe.means),
                                ),
                            ),
                        )
                    )
            elif recipe.kind == "file" and f.files.get(recipe.path):
                count = len(f.files[recipe.path])
                found.append(
                    (
                        recipe.weight,
                        Evidence(
                            "files",
                            _("{count} item(s) in {path}: {means}").format(
                                count=count, path=recipe.path, means=_(recipe.means)
                            ),
                        ),
                    )
                )
            elif recipe.kind == "property" and recipe.property_matches(
                f.props.get(recipe.property)
            ):
                found.append(
                    (
                        recipe.weight,
                        Evidence(
                            "properties",
                            # the property and its value as the device gave them
                            f"{recipe.property}={f.props.get(recipe.property)}: {_(recipe.means)}",
                        ),
                    )
                )
            elif recipe.kind == "app_data" and recipe.package:
                size = (f.diskstats.app_data_sizes if f.diskstats else {}).get(recipe.package)
                if size and not any(recipe.package in e.fact for _, e in found):
                    found.append(
                        (
                            recipe.weight,
                            Evidence(
                                "app data",
                                _("{package} holds {size} bytes: {means}").format(
                                    package=recipe.package, size=size, means=_(recipe.means)
                                ),
                            ),
                        )
                    )
        for name, what, error in f.unread:
            if name.startswith(_ACTIVATION_FACTS):
                # said, so a wipe's read-back cannot pass over what it could not see
                fact = _("{fact}: {error}").format(fact=what, error=error)
                found.append(("info", Evidence("unreadable", fact)))
        weights = {weight for weight, _ in found}
        if "strong" in weights:
            state = ActivationState.ACTIVATED
        elif "weak" in weights:
            state = ActivationState.PARTIAL
        elif not f.props or f.errors:
            state = ActivationState.UNKNOWN  # nothing found, but not everything could be read
        else:
            state = ActivationState.NOT_ACTIVATED
        if not found:
            found.append(
                (
                    "info",
                    Evidence(
                        "recipes",
                        _("no activation evidence ({model} recipes)").format(model=entry.id),
                    ),
                )
            )
        return Activation(
            state=state,
            keys_loaded=None,
            host_registered=bool(policy and policy.device_owner),
            evidence=tuple(evidence for _, evidence in found),
        )

    @cleaned
    def merchant_data(self) -> MerchantData:
        """Payment app data, saved Wi-Fi networks, merchant files, and a pending batch."""
        f = self.facts()
        apps = tuple(
            _("{package} ({size} bytes)").format(package=package, size=size)
            for package, size in self._app_data().items()
            if size
        )
        saved = tuple(mask_ssid(s) for s in (f.wifi.saved_networks if f.wifi else ()))
        files = tuple(
            f"{path.rstrip('/')}/{name}" for path, names in f.files.items() for name in names
        )
        notes = []
        if any(size is None for size in self._app_data().values()):
            notes.append(_("payment app data sizes are not readable on this Android release"))
        if f.pending is None and not self._entry().pending_files:
            notes.append(_("no open-batch export is known for this model"))
        return MerchantData(
            pending_transactions=f.pending,
            network_profiles=saved,
            files=files,
            apps=apps,
            notes=tuple(notes),
        )

    @cleaned
    def tamper(self) -> Tamper:
        """Android does not expose the secure processor's tamper state over adb."""
        raise UnsupportedError(_("tamper state is not readable over adb"))

    @cleaned
    def health(self) -> Health:
        """Storage nearly full is the fault Android itself shows."""
        f = self.facts()
        faults = []
        data = f.diskstats.partitions.get("data") if f.diskstats else None
        if data and data.free_pct is not None and data.free_pct < LOW_STORAGE_PCT:
            faults.append(_("storage nearly full ({percent}% free)").format(percent=data.free_pct))
        return Health(faults=tuple(faults))  # the battery row already shows its temperature

    def wipe_plan(self) -> list[WipeStep]:
        """Clear payment apps, forget Wi-Fi, delete merchant files; factory reset if available."""
        f = self.facts()
        sdk = f.props.get("ro.build.version.sdk", "?")
        return AdbWipePlan(self._sh, self._entry(), f.packages, sdk).steps()
