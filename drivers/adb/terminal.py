"""The Terminal contract for Android smart POS over ADB: probes and wipe plan, from the facts.

What a check sends and how the answers come back (one batch or one command at a time) is
:mod:`.facts`; this module turns the :class:`~.facts.AdbFacts` it gathers into the contract's
records, and owns the session around them (connecting, scope, deadline, closing). The wipe's
commands are :mod:`.wipe`'s.

Activation is inferred, not read: each catalogue recipe (payment app data, device owner, accounts,
merchant files, properties) that fires adds evidence, and the state follows from the evidence's
weight: any strong evidence means ``activated``, only weak evidence ``partial``.

Every sentence a record carries is translated (:mod:`posdiag.drivers.i18n`); the English
``facts.errors`` keep the commands' own words for ``--debug`` and the JSON report. Connecting is
announced to whoever watches (:mod:`posdiag.drivers.activity`) as each read is.
"""

from __future__ import annotations

import dataclasses

from ..activity import announce
from ..catalogue import AdbModelEntry, Catalogue, load_catalogue
from ..errors import UnsupportedError
from ..i18n import _, ngettext
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
    Tamper,
    WipeStep,
)
from ..text import cleaned
from ..transport.tcp import TcpTransport
from .driver import AdbDriver, ShellOutput
from .facts import AdbFacts, collect
from .wipe import AdbWipePlan

LOW_STORAGE_PCT = 5
PRIVACY_MAC = "02:00:00:00:00:00"
_ACTIVATION_FACTS = ("device policy", "accounts", "storage", "packages", "files in", "wifi")
"""Facts (by their names in :mod:`.facts`) whose read failure leaves the terminal's binding or
merchant data unverified."""


def mask_ssid(ssid: str) -> str:
    """A saved network's name, shortened: enough to recognise, not to publish."""
    count = len(ssid)
    return ngettext("{start}… ({count} char)", "{start}… ({count} chars)", count).format(
        start=ssid[:3] if count > 3 else "", count=count
    )


class AdbTerminal:
    """An Android POS behind an AdbDriver.

    Args:
        driver: the ADB driver (connected on first use).
        address: the address string, for reports.
        catalogue: model entries (defaults to the shipped catalogue).
        usb_serial: the USB iSerialNumber, the serial of last resort.
        batched: read the facts in one batch (:func:`.facts.collect`); False asks one
            command at a time, as a batch that cannot be trusted falls back to (tests compare
            the two).
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
        """One command, the link opened first: the one-by-one reads and the wipe go through it."""
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

    def _collect(self) -> AdbFacts:
        """Read the facts of the scope (:func:`.facts.collect`), noting how wide it was."""
        self._connect()
        quick = self._scope.quick
        facts = collect(
            self.driver, self.address, self.catalogue, self._sh, quick=quick, batched=self.batched
        )
        self._gathered_quick = quick
        return facts

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
