"""The state of a simulated Android smart POS, built from a model profile and a scenario (TOML).

A *profile* says what the hardware is (PAX A920, Sunmi P2, a generic Android POS): its
properties, USB identity, vendor serial property, preinstalled payment apps, and the market its
units serve (``[merchant]``: currency, shop name, Wi-Fi names). A *scenario* says
what happened to it (activated by a merchant, unsettled payments, no SIM, a worn battery…).
Scenario values override the profile's; both are data, so new models and cases need no code.
The state changes as a real device's would: ``pm clear`` empties an app's data, forgetting a
Wi-Fi network removes it, ``rm`` deletes a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..scenario_data import ScenarioError, build, deep_merge, load_toml, toml_names

if TYPE_CHECKING:
    from .files import FileTree


class AdbScenarioError(ScenarioError):
    """A profile or scenario name or file that cannot be used."""


@dataclass
class App:
    """An installed package and the data it holds."""

    package: str
    version_name: str = "1.0.0"
    version_code: int = 1
    system: bool = False
    data_files: dict[str, str] = field(default_factory=dict)  # relative path -> content

    @property
    def has_data(self) -> bool:
        """Whether clearing the app would remove anything."""
        return bool(self.data_files)


@dataclass
class Battery:
    """What ``dumpsys battery`` reports."""

    level: int = 87
    scale: int = 100
    status: int = 2  # 1 unknown, 2 charging, 3 discharging, 4 not charging, 5 full
    health: int = 2  # 2 good, 3 overheat, 4 dead, 5 over-voltage, 6 failure, 7 cold
    present: bool = True
    voltage_mv: int = 4012
    temperature_decic: int = 281  # 0.1 °C
    technology: str = "Li-ion"
    ac_powered: bool = False
    usb_powered: bool = True
    charge_counter_uah: int = 2150000
    cycle_count: int | None = None


@dataclass
class Telephony:
    """SIM and cellular state (properties and the telephony registry)."""

    sim_state: str = "READY"  # UNKNOWN | ABSENT | PIN_REQUIRED | PUK_REQUIRED | READY
    operator_alpha: str = "Telekom.de"
    operator_numeric: str = "26201"
    voice_reg_state: int = 0  # 0 in service, 1 out of service, 2 emergency only, 3 power off
    data_reg_state: int = 0
    network_type: str = "LTE"
    rssi_dbm: int = -69
    rsrp_dbm: int = -98


@dataclass
class WifiNetwork:
    """A saved Wi-Fi network."""

    ssid: str
    security: str = "wpa2-psk"


@dataclass
class Wifi:
    """Wi-Fi state and saved networks."""

    enabled: bool = True
    connected: bool = False
    ssid: str = ""
    bssid: str = "02:00:00:00:00:00"
    rssi_dbm: int = -127
    link_speed_mbps: int = -1
    frequency_mhz: int = -1
    saved: list[WifiNetwork] = field(default_factory=list)


@dataclass
class Faults:
    """Faults injected at the ADB packet level, and in the shell's behaviour.

    The shell faults name a command by a prefix of its words (``"pm clear"``, ``"rm"``,
    ``"cmd wifi forget-network"``, ``"pm clear com.example.payment"``): it matches each simple
    command of a line (``a; b`` and ``a && b`` are two) whose first words are those words.
    They exist so the wipe can be tested against a unit that refuses, dies or lies.

    Attributes:
        bad_checksum: corrupt the payload checksum of this many packets.
        split_packets: write every packet in small pieces.
        drop_packets: silently drop this many outgoing packets.
        stall: seconds to stall before answering each stream open.
        vanish_after: disappear after this many stream opens.
        fail_command: that command changes nothing and exits 1 with a plausible error on
            stderr (a protected package, a busy Wi-Fi service, a read-only file system, a
            lock screen for ``cmd testharness``). Stays armed. Empty: off.
        power_loss_at: the device loses power running that command: part of its effect takes
            hold (``pm clear``: the first half of the app's data files, rounded down;
            ``cmd wifi forget-network``: all of it; ``rm``: only the first argument that
            matches anything; other commands: nothing) and the device vanishes before
            answering. Its state is there on the next connection. Fires once, then clears.
        lie_about: that command prints its success output (``Success``, ``Forget successful
            for netId N``, nothing for ``rm``) and exits 0 without changing anything, so only
            reading the state back catches it. Stays armed.
        flood_output: every shell command streams output endlessly until the host closes the
            stream (a runaway ``logcat``; the station's memory must stay bounded).
        hostile_text: what the agent displays (model, brand, serial, properties, package
            names, SSIDs, versions, operator) carries ANSI/OSC escapes, bidi overrides, NUL and
            200 kB lines, and numbers carry "²" or Arabic-Indic digits (``hostile.py``); the
            commands keep their meaning, so a wipe still works and verifies.
        hang: the device accepts every shell stream, then never answers it.
    """

    bad_checksum: int = 0
    split_packets: bool = False
    drop_packets: int = 0
    stall: float = 0.0
    vanish_after: int | None = None
    fail_command: str = ""
    power_loss_at: str = ""
    lie_about: str = ""
    flood_output: bool = False
    hostile_text: bool = False
    hang: bool = False


class _FromRelease(list[str]):
    """No profile or scenario named the features: the modelled release decides them."""


@dataclass
class AndroidState:
    """Everything the simulated Android POS knows."""

    profile: str = "android-generic"
    manufacturer: str = "Generic"
    brand: str = "generic"
    model: str = "POS"
    device: str = "pos"
    product: str = "pos"
    serial: str = "0123456789ABCDEF"
    vendor_serial_property: str = ""
    vendor_serial: str = ""
    release: str = "11"
    sdk: int = 30
    build_id: str = "RP1A.201005.001"
    display_id: str = "RP1A.201005.001 release-keys"
    security_patch: str = "2023-05-05"
    usb_vid: int = 0x18D1
    usb_pid: int = 0x4EE7
    features: list[str] = field(default_factory=lambda: _FromRelease())
    usb_debugging: bool = True  # False: a locked unit, no adbd to answer (USB or TCP)
    bootloader_locked: bool = True  # reboot:bootloader refused, as on a production unit
    reboot_seconds: float = 25.0  # offline time of a reboot, scaled by ``scale``
    auth_required: bool = False
    trusted_keys: list[str] = field(default_factory=list)
    accept_new_keys: bool = True  # the operator taps "Allow" on the screen
    airplane_mode: bool = False
    extra_props: dict[str, str] = field(default_factory=dict)
    apps: list[App] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # absolute path -> content
    device_owner: str = ""  # "package/.Receiver" of an MDM device owner
    accounts: list[list[str]] = field(default_factory=list)  # [name, type]
    battery: Battery = field(default_factory=Battery)
    telephony: Telephony = field(default_factory=Telephony)
    wifi: Wifi = field(default_factory=Wifi)
    faults: Faults = field(default_factory=Faults)
    vendor_dir: str = "/sdcard/Download"  # where the vendor's apps keep shared files
    mdm_package: str = "com.example.mdm"  # the terminal-management client that owns the device
    payment_package: str = "com.example.payment"  # the main payment app
    latency: float = 0.0  # seconds before each command's answer
    tms_url: str = ""  # a simulated backend this unit syncs with (release drops the device owner)
    scale: float = 1.0
    description: str = ""

    _tree: FileTree | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.features, _FromRelease):
            from .releases import release_features

            self.features = release_features(self.release)

    @property
    def tree(self) -> FileTree:
        """The file system, built from ``files`` and the apps' ``data_files`` on first use.

        It lives on the state, not on a connection, so what a push wrote is still there after
        the host reconnects or the unit reboots. Once built, ``files`` and every app's
        ``data_files`` become live views of it (:class:`~.files_view.FilesView`), so the code that
        clears or deletes through them changes the same tree that sync and ``ls`` read.
        """
        if self._tree is None:
            from .files import FileTree
            from .files_view import FilesView

            tree = FileTree.from_state(self)
            self._tree = tree
            self.files = FilesView(tree)  # type: ignore[assignment]
            for app in self.apps:
                app.data_files = FilesView(tree, f"/data/data/{app.package}")  # type: ignore[assignment]
        return self._tree

    def app(self, package: str) -> App | None:
        """The installed app, if any."""
        return next((a for a in self.apps if a.package == package), None)

    def _in_service(self) -> bool:
        t = self.telephony
        return t.sim_state == "READY" and t.voice_reg_state == 0 and not self.airplane_mode

    def properties(self) -> dict[str, str]:
        """Every system property, as ``getprop`` lists them."""
        props = {
            "ro.product.manufacturer": self.manufacturer,
            "ro.product.brand": self.brand,
            "ro.product.model": self.model,
            "ro.product.device": self.device,
            "ro.product.name": self.product,
            "ro.serialno": self.serial,
            "ro.boot.serialno": self.serial,
            "ro.build.version.release": self.release,
            "ro.build.version.sdk": str(self.sdk),
            "ro.build.id": self.build_id,
            "ro.build.display.id": self.display_id,
            "ro.build.version.security_patch": self.security_patch,
            "ro.build.fingerprint": (
                f"{self.brand}/{self.product}/{self.device}:{self.release}/{self.build_id}/"
                "eng.builder.20230505:user/release-keys"
            ),
            "ro.build.type": "user",
            "sys.boot_completed": "1",
            "gsm.sim.state": self.telephony.sim_state,
            "gsm.sim.operator.alpha": (
                self.telephony.operator_alpha if self.telephony.sim_state == "READY" else ""
            ),
            "gsm.sim.operator.numeric": (
                self.telephony.operator_numeric if self.telephony.sim_state == "READY" else ""
            ),
            "gsm.operator.alpha": self.telephony.operator_alpha if self._in_service() else "",
            "gsm.operator.numeric": (self.telephony.operator_numeric if self._in_service() else ""),
            "gsm.operator.isroaming": "false",
            "gsm.network.type": self.telephony.network_type
            if self.telephony.data_reg_state == 0
            else "Unknown",
        }
        if self.vendor_serial_property:
            props[self.vendor_serial_property] = self.vendor_serial
        props.update(self.extra_props)
        return dict(sorted(props.items()))


MERCHANT_DEFAULTS: dict[str, str] = {
    "currency": "EUR",
    "merchant_id": "MID-0042",
    "merchant_name": "Café Beispiel",
    "account": "merchant-0042@example.invalid",
    "ssid": "Cafe-Beispiel",
    "ssid_2": "Cafe-Backoffice",
    "settlement_export": "settlement-2026-10.csv",
}
"""The merchant a scenario's unit belonged to, unless the profile's ``[merchant]`` says otherwise.

Scenarios write ``{currency}``, ``{merchant_id}``, ``{ssid}``… where a market shows: a unit
handed out by a Chinese acquirer holds CNY batches, a Chinese shop name and Chinese Wi-Fi names,
a German café's unit EUR and ``Cafe-Beispiel``. The market belongs to the model profile (who
hands such units out), the story (activated, unsettled) to the scenario, so one scenario serves
every market and the defaults keep the existing profiles' data as it was.
"""

PROFILES = "posdiag.simulators.adb.profiles"
SCENARIOS = "posdiag.simulators.adb.scenarios"


def available_profiles() -> list[str]:
    """Model profile names."""
    return toml_names(PROFILES)


def available_scenarios() -> list[str]:
    """Scenario names."""
    return toml_names(SCENARIOS)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    return build(cls, data, where, AdbScenarioError)


def _load(package: str, name: str, kind: str) -> dict[str, Any]:
    return load_toml(package, name, f"Android {kind}", error=AdbScenarioError)


def state_from_dict(data: dict[str, Any], where: str) -> AndroidState:
    """Build the state from merged profile + scenario data, rejecting unknown keys."""
    data = dict(data)
    device = dict(data.pop("device", {}))
    description = data.pop("description", "")
    apps = [_build(App, a, f"{where} [[apps]]") for a in data.pop("apps", [])]
    battery = _build(Battery, data.pop("battery", {}), f"{where} [battery]")
    telephony = _build(Telephony, data.pop("telephony", {}), f"{where} [telephony]")
    wifi_data = dict(data.pop("wifi", {}))
    saved = [_build(WifiNetwork, n, f"{where} [[wifi.saved]]") for n in wifi_data.pop("saved", [])]
    wifi = _build(Wifi, {**wifi_data, "saved": saved}, f"{where} [wifi]")
    faults = _build(Faults, data.pop("faults", {}), f"{where} [faults]")
    files = dict(data.pop("files", {}))
    if data:
        raise AdbScenarioError(f"{where}: unknown sections {', '.join(sorted(data))}")
    state: AndroidState = _build(AndroidState, device, f"{where} [device]")
    state.apps, state.battery, state.telephony, state.wifi = apps, battery, telephony, wifi
    state.faults, state.files, state.description = faults, files, description
    return state


def _merge_apps(
    profile: list[dict[str, Any]], scenario: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Scenario apps update the profile's apps of the same package; others are not installed."""
    merged = {a["package"]: dict(a) for a in profile}
    for app in scenario:
        if app["package"] in merged:
            merged[app["package"]] = deep_merge(merged[app["package"]], app)
    return list(merged.values())


def _fill(value: Any, names: dict[str, str]) -> Any:
    """Put the profile's names into a scenario's ``{vendor_dir}``/``{mdm}``/``{payment}``.

    The merchant's data (:data:`MERCHANT_DEFAULTS`: ``{currency}``, ``{ssid}``…) too.
    """
    if isinstance(value, str):
        for key, text in names.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, dict):
        return {_fill(k, names): _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


_MARKUP = '"\\<>&'
"""Characters a merchant value may not hold: it is put unescaped into JSON and XML files."""


def _merchant(section: Any, where: str) -> dict[str, str]:
    """The profile's merchant data over :data:`MERCHANT_DEFAULTS`, rejecting unknown keys."""
    if not isinstance(section, dict):
        raise AdbScenarioError(f"{where}: expected a table")
    unknown = sorted(set(section) - set(MERCHANT_DEFAULTS))
    if unknown:
        raise AdbScenarioError(f"{where}: unknown keys {', '.join(unknown)}")
    for key, value in section.items():
        if not isinstance(value, str) or not value:
            raise AdbScenarioError(f"{where} {key}: expected a non-empty string")
        if any(ch in value for ch in _MARKUP):
            raise AdbScenarioError(f"{where} {key}: none of {_MARKUP} allowed")
    return {**MERCHANT_DEFAULTS, **section}


def load_android(
    scenario: str, profile: str = "android-generic", overrides: dict[str, Any] | None = None
) -> AndroidState:
    """The scenario applied to the model profile, with optional overrides on top."""
    base = _load(PROFILES, profile, "model profile")
    device = base.get("device", {})
    names = {
        **_merchant(base.pop("merchant", {}), f"Android model profile {profile!r} [merchant]"),
        "vendor_dir": device.get("vendor_dir", "/sdcard/Download"),
        "mdm": device.get("mdm_package", "com.example.mdm"),
        "payment": device.get("payment_package", "com.example.payment"),
    }
    case = _fill(_load(SCENARIOS, scenario, "scenario"), names)
    apps = _merge_apps(base.pop("apps", []), case.pop("apps", []))
    data = deep_merge(base, case)
    data["apps"] = apps
    if overrides:
        data = deep_merge(data, overrides)
    data.setdefault("device", {})["profile"] = profile
    return state_from_dict(data, f"Android {profile}/{scenario}")
