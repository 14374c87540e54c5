"""The Android side of the simulated shell: AOSP's tools as a user build answers them.

``getprop``, ``settings``, ``dumpsys`` (battery, telephony, wifi, diskstats, device policy,
accounts, packages, power), ``pm``, ``cmd``, and the system views a client reads to identify a
unit: ``id``, ``whoami``, ``uname``, ``ps`` (toybox's columns), ``ip addr``/``ifconfig`` (from the
state's Wi-Fi and cellular data), ``df``. Each is a function of a :class:`~.shell_base.Proc`; the
ones that change the device (``pm clear``, ``cmd wifi forget-network``, ``cmd testharness``)
change the state as the real command does.
"""

from __future__ import annotations

from collections.abc import Callable

from . import tms
from .shell_base import Command, Proc, ShellResult, err, ok
from .shell_props import all_properties
from .state import AndroidState

STATUS_TEXT = {1: "unknown", 2: "charging", 3: "discharging", 4: "not charging", 5: "full"}
REG_STATE = {0: "IN_SERVICE", 1: "OUT_OF_SERVICE", 2: "EMERGENCY_ONLY", 3: "POWER_OFF"}


def getprop(p: Proc) -> ShellResult:
    """``getprop`` lists every property; ``getprop NAME [DEFAULT]`` prints one.

    Both include the standard properties of every build (:mod:`.shell_props`) under the
    state's own, so the listing and a lookup by name never disagree.
    """
    args = p.args
    props = all_properties(p.state)
    if args:
        default = args[1] if len(args) > 1 else ""
        return ok(props.get(args[0], default) + "\n")
    return ok("".join(f"[{k}]: [{v}]\n" for k, v in props.items()))


def _on_state(function: Callable[[AndroidState, list[str]], ShellResult]) -> Command:
    """A command from a function of the state and the arguments."""

    def command(p: Proc) -> ShellResult:
        return function(p.state, p.args)

    command.__doc__ = function.__doc__
    return command


def _settings(state: AndroidState, args: list[str]) -> ShellResult:
    if len(args) >= 3 and args[0] == "get":
        if args[1] == "global" and args[2] == "airplane_mode_on":
            return ok(f"{int(state.airplane_mode)}\n")
        if args[1] == "global" and args[2] == "adb_enabled":
            return ok("1\n")
        return ok("null\n")
    return err("usage: settings [--user NUM] get namespace key\n", 255)


# --- dumpsys ---------------------------------------------------------------------------------


def _dumpsys(state: AndroidState, args: list[str]) -> ShellResult:
    if not args:
        return err("dumpsys: a service name is required here\n")
    service = args[0]
    handler = {
        "battery": _dump_battery,
        "telephony.registry": _dump_telephony,
        "wifi": _dump_wifi,
        "diskstats": _dump_diskstats,
        "device_policy": _dump_device_policy,
        "account": _dump_account,
        "package": _dump_package,
        "power": _dump_power,
    }.get(service)
    if handler is None:
        return ok(f"Can't find service: {service}\n")
    return handler(state, args[1:])


def _dump_battery(state: AndroidState, args: list[str]) -> ShellResult:
    b = state.battery
    modern = state.sdk >= 29
    lines = [
        "Current Battery Service state:",
        f"  AC powered: {str(b.ac_powered).lower()}",
        f"  USB powered: {str(b.usb_powered).lower()}",
        "  Wireless powered: false",
    ]
    if modern:
        lines.append("  Dock powered: false")
    lines += [
        "  Max charging current: 500000",
        "  Max charging voltage: 5000000",
        f"  Charge counter: {b.charge_counter_uah}",
        f"  status: {b.status}",
        f"  health: {b.health}",
        f"  present: {str(b.present).lower()}",
        f"  level: {b.level}",
        f"  scale: {b.scale}",
        f"  voltage: {b.voltage_mv}",
        f"  temperature: {b.temperature_decic}",
        f"  technology: {b.technology}",
    ]
    if b.cycle_count is not None:
        lines.append(f"  cycle count: {b.cycle_count}")
    if modern:
        lines += ["  Charging state: 1", "  Charging policy: 1"]
    return ok("\n".join(lines) + "\n")


def _dump_telephony(state: AndroidState, args: list[str]) -> ShellResult:
    t = state.telephony
    absent = t.sim_state != "READY"
    voice = 1 if absent else t.voice_reg_state
    data = 1 if absent else t.data_reg_state
    operator = "" if absent or voice != 0 else t.operator_alpha
    numeric = "" if absent or voice != 0 else t.operator_numeric
    if state.airplane_mode:
        voice = data = 3
    rssi = 2147483647 if voice != 0 else t.rssi_dbm
    rsrp = 2147483647 if voice != 0 else t.rsrp_dbm
    lines = [
        "last known state:",
        "  Phone Id=0",
        "  mCallState=0",
        "  mRingingCallState=0",
        (
            f"  mServiceState={{mVoiceRegState={voice}({REG_STATE[voice]}), "
            f"mDataRegState={data}({REG_STATE[data]}), "
            f"mOperatorAlphaLong={operator}, mOperatorAlphaShort={operator}, "
            f"mOperatorNumeric={numeric}, isManualNetworkSelection=false, "
            f"mIsEmergencyOnly={str(voice == 2).lower()}, mRoaming=false}}"
        ),
        (
            "  mSignalStrength=SignalStrength:{ mCdma=CellSignalStrengthCdma:"
            " cdmaDbm=2147483647"
            " mGsm=CellSignalStrengthGsm: rssi=2147483647 ber=2147483647"
            f" mLte=CellSignalStrengthLte: rssi={rssi} rsrp={rsrp} rsrq=-12 rssnr=2147483647"
            f" cqi=2147483647 ta=2147483647 level={4 if voice == 0 else 0}"
            " mNr=CellSignalStrengthNr:{ csiRsrp = 2147483647 } primary=CellSignalStrengthLte}"
        ),
        "  mDataConnectionState=" + ("2" if voice == 0 and data == 0 else "0"),
    ]
    return ok("\n".join(lines) + "\n")


def _dump_wifi(state: AndroidState, args: list[str]) -> ShellResult:
    w = state.wifi
    enabled = w.enabled and not state.airplane_mode
    lines = [f"Wi-Fi is {'enabled' if enabled else 'disabled'}"]
    if enabled and w.connected:
        lines.append(
            f'mWifiInfo SSID: "{w.ssid}", BSSID: {w.bssid}, MAC: 02:00:00:00:00:00, '
            f"Supplicant state: COMPLETED, RSSI: {w.rssi_dbm}, Link speed: "
            f"{w.link_speed_mbps}Mbps, Frequency: {w.frequency_mhz}MHz, Net ID: 0"
        )
    else:
        lines.append(
            "mWifiInfo SSID: <unknown ssid>, BSSID: 02:00:00:00:00:00, MAC: "
            "02:00:00:00:00:00, Supplicant state: DISCONNECTED, RSSI: -127, "
            "Link speed: -1Mbps, Frequency: -1MHz, Net ID: -1"
        )
    lines.append("WifiConfigManager - Configured networks Begin ----")
    for index, network in enumerate(w.saved):
        lines.append(f'  ID: {index} SSID: "{network.ssid}" PROVIDER-NAME: null')
    lines.append("WifiConfigManager - Configured networks End ----")
    return ok("\n".join(lines) + "\n")


def _dump_diskstats(state: AndroidState, args: list[str]) -> ShellResult:
    # Android 8+ appends the cached per-package sizes: the shell's one way to see whether an
    # app holds data without reading /data (which it may not).
    apps = [a for a in state.apps if not a.system]
    names = ",".join(f'"{a.package}"' for a in apps)
    app_sizes = ",".join("4194304" for _ in apps)
    data_sizes = ",".join(str(sum(4096 + len(c) for c in a.data_files.values())) for a in apps)
    cache_sizes = ",".join("0" for _ in apps)
    text = (
        "Latency: 2ms [512B Data Write]\n"
        "Data-Free: 9876543K / 12345678K total = 80% free\n"
        "Cache-Free: 98765K / 123456K total = 80% free\n"
        "System-Free: 0K / 2048000K total = 0% free\n"
        "File-based Encryption: true\n"
    )
    if state.sdk >= 26:
        text += (
            f"Package Names: [{names}]\n"
            f"App Sizes: [{app_sizes}]\n"
            f"App Data Sizes: [{data_sizes}]\n"
            f"Cache Sizes: [{cache_sizes}]\n"
        )
    return ok(text)


def _dump_device_policy(state: AndroidState, args: list[str]) -> ShellResult:
    tms.sync(state)  # a TMS release shows the next time anyone looks
    lines = ["Current Device Policy Manager state:"]
    if state.device_owner:
        package, _, receiver = state.device_owner.partition("/")
        lines += [
            "  Device Owner: ",
            f"    admin=ComponentInfo{{{package}/{receiver}}}",
            "    name=",
            f"    package={package}",
            "    User ID: 0",
        ]
    lines.append("")
    return ok("\n".join(lines) + "\n")


def _dump_account(state: AndroidState, args: list[str]) -> ShellResult:
    tms.sync(state)
    lines = ["User UserInfo{0:Owner:c13}:", f"  Accounts: {len(state.accounts)}"]
    lines += [f"    Account {{name={n}, type={t}}}" for n, t in state.accounts]
    return ok("\n".join(lines) + "\n")


def _dump_package(state: AndroidState, args: list[str]) -> ShellResult:
    if not args:
        return ok("")
    app = state.app(args[0])
    if app is None:
        return ok(f"Unable to find package: {args[0]}\n")
    return ok(
        "Packages:\n"
        f"  Package [{app.package}] (c0ffee):\n"
        f"    userId=10{abs(hash(app.package)) % 900 + 100}\n"
        f"    versionCode={app.version_code} minSdk=19 targetSdk=29\n"
        f"    versionName={app.version_name}\n"
        f"    dataDir=/data/user/0/{app.package}\n"
    )


# --- packages --------------------------------------------------------------------------------


def _pm(state: AndroidState, args: list[str]) -> ShellResult:
    if not args:
        return err("usage: pm [list|clear|path] ...\n")
    if args[0] == "list" and len(args) > 1 and args[1] == "packages":
        third_party = "-3" in args
        apps = [a for a in state.apps if not (third_party and a.system)]
        return ok("".join(f"package:{a.package}\n" for a in apps))
    if args[0] == "clear" and len(args) > 1:
        app = state.app(args[-1])
        if app is None:
            return ShellResult(1, "Failed\n")
        app.data_files.clear()
        return ok("Success\n")
    if args[0] == "path" and len(args) > 1:
        app = state.app(args[1])
        return ok(f"package:/data/app/{app.package}-1/base.apk\n") if app else ShellResult(1)
    return err(f"Unknown command: {args[0]}\n")


def _cmd(state: AndroidState, args: list[str]) -> ShellResult:
    if args[:2] == ["testharness", "enable"] and state.sdk >= 29:
        return _testharness(state)
    if len(args) >= 2 and args[0] == "wifi":
        wifi = state.wifi
        if args[1] == "list-networks":
            if not wifi.saved:
                return ok("No networks\n")
            rows = ["Network Id      SSID                         Security type"]
            rows += [f"{i:<15} {n.ssid:<28} {n.security}" for i, n in enumerate(wifi.saved)]
            return ok("\n".join(rows) + "\n")
        if args[1] == "forget-network" and len(args) > 2:
            try:
                index = int(args[2])
            except ValueError:
                return err(f"Invalid networkId {args[2]}\n", 255)
            if not 0 <= index < len(wifi.saved):
                return ok(f"Forget failed for netId {index}\n")
            removed = wifi.saved.pop(index)
            if wifi.connected and wifi.ssid == removed.ssid:
                wifi.connected = False
            return ok(f"Forget successful for netId {index}\n")
    return err(f"cmd: Can't find service: {args[0] if args else ''}\n", 20)


def _testharness(state: AndroidState) -> ShellResult:
    """Android 10+ test-harness mode: a factory reset that keeps adb usable afterwards.

    Everything on the data partition goes (app data, accounts, device owner, saved networks,
    shared storage); the adb keys survive and ``persist.sys.test_harness`` is set, which is
    why it is not a clean hand-back (TestHarnessModeService).
    """
    s = state
    for app in s.apps:
        app.data_files.clear()
    s.files.clear()
    s.accounts.clear()
    s.device_owner = ""
    s.wifi.saved.clear()
    s.wifi.connected = False
    s.extra_props["persist.sys.test_harness"] = "1"
    return ok()


def _dump_power(state: AndroidState, args: list[str]) -> ShellResult:
    """``dumpsys power``: the PowerManagerService lines clients read (wakefulness, plug)."""
    b = state.battery
    plug = 1 if b.ac_powered else 2 if b.usb_powered else 0
    lines = [
        "POWER MANAGER (dumpsys power)",
        "",
        "Power Manager State:",
        "  mDirty=0x0",
        "  mWakefulness=Awake",
        "  mWakefulnessChanging=false",
        f"  mIsPowered={str(plug != 0).lower()}",
        f"  mPlugType={plug}",
        f"  mBatteryLevel={b.level}",
        "  mBatteryLevelWhenDreamStarted=0",
        "  mDockState=0",
        "  mStayOn=false",
        "  mProximityPositive=false",
        "  mBootCompleted=true",
        "  mSystemReady=true",
        "  mHalAutoSuspendModeEnabled=false",
        "  mHalInteractiveModeEnabled=true",
        "  mWakeLockSummary=0x0",
        "  mUserActivitySummary=0x1",
        "  mRequestWaitForNegativeProximity=false",
        "  mSandmanScheduled=false",
        "  mBatteryLevelLow=" + str(b.level <= 15).lower(),
        "  mLightDeviceIdleMode=false",
        "  mDeviceIdleMode=false",
        "  mScreenBrightnessBoostInProgress=false",
        "  mHoldingWakeLockSuspendBlocker=false",
        "  mHoldingDisplaySuspendBlocker=true",
        "",
        "Settings and Configuration:",
        "  mScreenOffTimeoutSetting=60000",
        "  mStayOnWhilePluggedInSetting=0",
        "",
        "Wake Locks: size=0",
        "",
        "Suspend Blockers: size=4",
        "  PowerManagerService.WakeLocks: ref count=0",
        "  PowerManagerService.Display: ref count=1",
        "",
        "Display Power: state=ON",
    ]
    return ok("\n".join(lines) + "\n")


def _df(state: AndroidState, args: list[str]) -> ShellResult:
    return ok(
        "Filesystem     1K-blocks    Used Available Use% Mounted on\n"
        "/dev/block/dm-0  2048000 2048000         0 100% /\n"
        "/dev/fuse       12345678 2469135   9876543  20% /storage/emulated\n"
    )


def cmd(p: Proc) -> ShellResult:
    """``cmd SERVICE …`` (``wifi``, ``testharness``)."""
    return _cmd(p.state, p.args)


COMMANDS: dict[str, Command] = {
    "getprop": getprop,
    "settings": _on_state(_settings),
    "dumpsys": _on_state(_dumpsys),
    "pm": _on_state(_pm),
    "cmd": cmd,
    "df": _on_state(_df),
}
