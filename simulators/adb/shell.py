"""A small Android shell for the simulated POS, answering in AOSP's real output formats.

It covers the commands posdiag's drivers use and changes the device state as the real commands do.

Commands are parsed with shlex and dispatched by name; nothing is evaluated. Unknown commands
answer as Android's mksh/toybox shell does: ``/system/bin/sh: NAME: inaccessible or not found``
on stderr and exit status 127.

The behavioural faults of :class:`~.state.Faults` act here, per simple command, because they are
about what a command does: refuse it (``fail_command``), lie about it (``lie_about``), or lose
power half-way (``power_loss_at``: part of the effect lands, then :class:`PowerLoss` tells the
engine to drop the link instead of answering).
"""

from __future__ import annotations

import fnmatch
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from . import tms
from .hostile import HOSTILE, hostile_stdout
from .state import AndroidState

STATUS_TEXT = {1: "unknown", 2: "charging", 3: "discharging", 4: "not charging", 5: "full"}
REG_STATE = {0: "IN_SERVICE", 1: "OUT_OF_SERVICE", 2: "EMERGENCY_ONLY", 3: "POWER_OFF"}


@dataclass(frozen=True)
class ShellResult:
    """What a command printed and its exit status.

    ``combined`` is stdout and stderr as one stream, each simple command's stdout then its
    stderr, in the order the commands ran: what a legacy ``shell:`` (one channel for both)
    carries. None for a single command, where it is simply ``stdout + stderr``.
    """

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    combined: str | None = None

    @property
    def merged(self) -> str:
        """Stdout and stderr interleaved per command (a legacy shell's single channel)."""
        return self.stdout + self.stderr if self.combined is None else self.combined


def _ok(text: str = "") -> ShellResult:
    return ShellResult(0, text)


def _err(text: str, code: int = 1) -> ShellResult:
    return ShellResult(code, "", text)


class PowerLoss(Exception):
    """The device lost power running a command (the ``power_loss_at`` fault).

    Raised out of :meth:`AndroidShell.run` once the command's partial effect has taken hold, so
    the engine vanishes from the link instead of answering; the argument is the command line.
    ``before`` is what the commands of the line that ran before it printed (a real device has
    already streamed that), which the engine sends before it vanishes.
    """

    def __init__(self, command: str, before: ShellResult | None = None) -> None:
        super().__init__(command)
        self.before = before or ShellResult(0)


def _joined(results: list[ShellResult]) -> ShellResult:
    """The result of a command line: the last command's status, every command's output."""
    if not results:
        return _ok()
    stdout = "".join(r.stdout for r in results)
    stderr = "".join(r.stderr for r in results)
    combined = "".join(r.merged for r in results)
    return ShellResult(
        results[-1].exit_code, stdout, stderr, None if combined == stdout + stderr else combined
    )


def _matches(argv: list[str], spec: str) -> bool:
    """Whether a fault's command prefix (``"pm clear"``) names this simple command."""
    words = spec.split()
    return bool(words) and argv[: len(words)] == words


class AndroidShell:
    """Runs one command line against an AndroidState."""

    def __init__(self, state: AndroidState) -> None:
        self.state = state

    def run(self, command_line: str) -> ShellResult:
        """Execute a command line (``a; b`` and ``a && b`` sequences are supported).

        ``$?`` in a word becomes the status of the last command run, as in sh, so a batch's
        ``cmd; echo END.$?`` reports each command's status (no other expansion; a quoted
        ``'$?'`` is expanded too, which no command posdiag sends relies on).
        """
        # punctuation_chars: ``a; b`` and ``a&&b`` separate commands as in sh (plain shlex.split
        # would keep ``a;`` as one word); quoted ``';'`` stays part of its word.
        lexer = shlex.shlex(command_line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as exc:
            return _err(f"/system/bin/sh: syntax error: {exc}\n", 2)
        results: list[ShellResult] = []
        current: list[str] = []
        last = ShellResult(0)
        skipping = False  # after a failed ``a &&``: skip commands up to the next ``;``
        for token in [*tokens, ";"]:
            if token not in (";", "&&"):
                current.append(token)
                continue
            if current and not skipping:
                words = [w.replace("$?", str(last.exit_code)) if "$?" in w else w for w in current]
                try:
                    last = self._one(words)
                except PowerLoss as loss:
                    raise PowerLoss(str(loss), _joined(results)) from None
                results.append(last)
                if current[0] == "exit":
                    break  # the shell ends here, as sh does
            current = []
            skipping = token == "&&" and last.exit_code != 0
        return _joined(results)

    def _one(self, argv: list[str]) -> ShellResult:
        faults = self.state.faults
        if _matches(argv, faults.fail_command):
            return self._refused(argv)
        if _matches(argv, faults.lie_about):
            return self._pretended(argv)
        if _matches(argv, faults.power_loss_at):
            faults.power_loss_at = ""  # one power cut; the rebooted device works again
            self._partly(argv)
            raise PowerLoss(" ".join(argv))
        handler = self._COMMANDS.get(argv[0])
        if handler is None:
            return _err(f"/system/bin/sh: {argv[0]}: inaccessible or not found\n", 127)
        result = handler(self, argv[1:])
        if faults.hostile_text:
            stderr = result.stderr + HOSTILE if result.stderr else ""
            result = ShellResult(result.exit_code, hostile_stdout(argv, result.stdout), stderr)
        return result

    # --- injected faults -------------------------------------------------------------------------

    def _refused(self, argv: list[str]) -> ShellResult:
        """``fail_command``: exit 1 with what the real command prints when it cannot do it."""
        if argv[:2] == ["pm", "clear"]:
            package = argv[-1] if len(argv) > 2 else ""
            return _err(
                "Exception occurred while executing 'clear':\n"
                "java.lang.SecurityException: Cannot clear data for a protected package: "
                f"{package}\n"
            )
        if argv[:2] == ["cmd", "wifi"]:
            verb = argv[2] if len(argv) > 2 else ""
            return _err(
                f"Exception occurred while executing '{verb}':\n"
                "java.lang.IllegalStateException: Wi-Fi service is not ready\n"
            )
        if argv[:2] == ["cmd", "testharness"]:
            return _err("Test Harness Mode cannot be enabled if there is a lock screen\n")
        if argv[0] == "rm":
            # sh expands globs before rm runs; a pattern matching nothing stays as it is
            paths = [p for a in argv[1:] if not a.startswith("-") for p in self._glob(a) or [a]]
            if not paths:
                return _err('rm: Needs 1 argument (see "rm --help")\n')
            return _err("".join(f"rm: {path}: Read-only file system\n" for path in paths))
        return _err(f"{argv[0]}: Input/output error\n")

    @staticmethod
    def _pretended(argv: list[str]) -> ShellResult:
        """``lie_about``: the success output, exit 0, and nothing done."""
        if argv[:2] == ["pm", "clear"]:
            return _ok("Success\n")
        if argv[:3] == ["cmd", "wifi", "forget-network"] and len(argv) > 3:
            return _ok(f"Forget successful for netId {argv[3]}\n")
        return _ok()  # rm, cmd testharness enable…: silence is their success

    def _partly(self, argv: list[str]) -> None:
        """``power_loss_at``: the part of the command's effect that lands before power fails."""
        if argv[:2] == ["pm", "clear"] and len(argv) > 2:
            app = self.state.app(argv[-1])
            if app is not None:
                for rel in sorted(app.data_files)[: len(app.data_files) // 2]:
                    del app.data_files[rel]
        elif argv[:3] == ["cmd", "wifi", "forget-network"]:
            self._cmd(argv[1:])  # one network: the forget is done, only the answer is lost
        elif argv[0] == "rm":
            flags = [a for a in argv[1:] if a.startswith("-")]
            for arg in argv[1:]:
                if arg.startswith("-"):
                    continue
                for path in self._glob(arg):
                    if self._exists(path):
                        self._rm([*flags, path])
                        return

    def _exists(self, path: str) -> bool:
        """Whether ``path`` is a file or a directory holding files in ``state.files``."""
        path = posixpath.normpath(path)
        prefix = path.rstrip("/") + "/"
        return any(p == path or p.startswith(prefix) for p in self.state.files)

    # --- getprop / settings ----------------------------------------------------------------------

    def _getprop(self, args: list[str]) -> ShellResult:
        props = self.state.properties()
        if args:
            default = args[1] if len(args) > 1 else ""
            return _ok(props.get(args[0], default) + "\n")
        return _ok("".join(f"[{k}]: [{v}]\n" for k, v in props.items()))

    def _settings(self, args: list[str]) -> ShellResult:
        if len(args) >= 3 and args[0] == "get":
            if args[1] == "global" and args[2] == "airplane_mode_on":
                return _ok(f"{int(self.state.airplane_mode)}\n")
            if args[1] == "global" and args[2] == "adb_enabled":
                return _ok("1\n")
            return _ok("null\n")
        return _err("usage: settings [--user NUM] get namespace key\n", 255)

    # --- dumpsys ---------------------------------------------------------------------------------

    def _dumpsys(self, args: list[str]) -> ShellResult:
        if not args:
            return _err("dumpsys: a service name is required here\n")
        service = args[0]
        handler = {
            "battery": self._dump_battery,
            "telephony.registry": self._dump_telephony,
            "wifi": self._dump_wifi,
            "diskstats": self._dump_diskstats,
            "device_policy": self._dump_device_policy,
            "account": self._dump_account,
            "package": self._dump_package,
        }.get(service)
        if handler is None:
            return _ok(f"Can't find service: {service}\n")
        return handler(args[1:])

    def _dump_battery(self, args: list[str]) -> ShellResult:
        b = self.state.battery
        modern = self.state.sdk >= 29
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
        return _ok("\n".join(lines) + "\n")

    def _dump_telephony(self, args: list[str]) -> ShellResult:
        t = self.state.telephony
        absent = t.sim_state != "READY"
        voice = 1 if absent else t.voice_reg_state
        data = 1 if absent else t.data_reg_state
        operator = "" if absent or voice != 0 else t.operator_alpha
        numeric = "" if absent or voice != 0 else t.operator_numeric
        if self.state.airplane_mode:
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
        return _ok("\n".join(lines) + "\n")

    def _dump_wifi(self, args: list[str]) -> ShellResult:
        w = self.state.wifi
        enabled = w.enabled and not self.state.airplane_mode
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
        return _ok("\n".join(lines) + "\n")

    def _dump_diskstats(self, args: list[str]) -> ShellResult:
        # Android 8+ appends the cached per-package sizes: the shell's one way to see whether an
        # app holds data without reading /data (which it may not).
        apps = [a for a in self.state.apps if not a.system]
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
        if self.state.sdk >= 26:
            text += (
                f"Package Names: [{names}]\n"
                f"App Sizes: [{app_sizes}]\n"
                f"App Data Sizes: [{data_sizes}]\n"
                f"Cache Sizes: [{cache_sizes}]\n"
            )
        return _ok(text)

    def _dump_device_policy(self, args: list[str]) -> ShellResult:
        tms.sync(self.state)  # a TMS release shows the next time anyone looks
        lines = ["Current Device Policy Manager state:"]
        if self.state.device_owner:
            package, _, receiver = self.state.device_owner.partition("/")
            lines += [
                "  Device Owner: ",
                f"    admin=ComponentInfo{{{package}/{receiver}}}",
                "    name=",
                f"    package={package}",
                "    User ID: 0",
            ]
        lines.append("")
        return _ok("\n".join(lines) + "\n")

    def _dump_account(self, args: list[str]) -> ShellResult:
        tms.sync(self.state)
        lines = ["User UserInfo{0:Owner:c13}:", f"  Accounts: {len(self.state.accounts)}"]
        lines += [f"    Account {{name={n}, type={t}}}" for n, t in self.state.accounts]
        return _ok("\n".join(lines) + "\n")

    def _dump_package(self, args: list[str]) -> ShellResult:
        if not args:
            return _ok("")
        app = self.state.app(args[0])
        if app is None:
            return _ok(f"Unable to find package: {args[0]}\n")
        return _ok(
            "Packages:\n"
            f"  Package [{app.package}] (c0ffee):\n"
            f"    userId=10{abs(hash(app.package)) % 900 + 100}\n"
            f"    versionCode={app.version_code} minSdk=19 targetSdk=29\n"
            f"    versionName={app.version_name}\n"
            f"    dataDir=/data/user/0/{app.package}\n"
        )

    # --- packages --------------------------------------------------------------------------------

    def _pm(self, args: list[str]) -> ShellResult:
        if not args:
            return _err("usage: pm [list|clear|path] ...\n")
        if args[0] == "list" and len(args) > 1 and args[1] == "packages":
            third_party = "-3" in args
            apps = [a for a in self.state.apps if not (third_party and a.system)]
            return _ok("".join(f"package:{a.package}\n" for a in apps))
        if args[0] == "clear" and len(args) > 1:
            app = self.state.app(args[-1])
            if app is None:
                return ShellResult(1, "Failed\n")
            app.data_files.clear()
            return _ok("Success\n")
        if args[0] == "path" and len(args) > 1:
            app = self.state.app(args[1])
            return _ok(f"package:/data/app/{app.package}-1/base.apk\n") if app else ShellResult(1)
        return _err(f"Unknown command: {args[0]}\n")

    def _cmd(self, args: list[str]) -> ShellResult:
        if args[:2] == ["testharness", "enable"] and self.state.sdk >= 29:
            return self._testharness()
        if len(args) >= 2 and args[0] == "wifi":
            wifi = self.state.wifi
            if args[1] == "list-networks":
                if not wifi.saved:
                    return _ok("No networks\n")
                rows = ["Network Id      SSID                         Security type"]
                rows += [f"{i:<15} {n.ssid:<28} {n.security}" for i, n in enumerate(wifi.saved)]
                return _ok("\n".join(rows) + "\n")
            if args[1] == "forget-network" and len(args) > 2:
                try:
                    index = int(args[2])
                except ValueError:
                    return _err(f"Invalid networkId {args[2]}\n", 255)
                if not 0 <= index < len(wifi.saved):
                    return _ok(f"Forget failed for netId {index}\n")
                removed = wifi.saved.pop(index)
                if wifi.connected and wifi.ssid == removed.ssid:
                    wifi.connected = False
                return _ok(f"Forget successful for netId {index}\n")
        return _err(f"cmd: Can't find service: {args[0] if args else ''}\n", 20)

    def _testharness(self) -> ShellResult:
        """Android 10+ test-harness mode: a factory reset that keeps adb usable afterwards.

        Everything on the data partition goes (app data, accounts, device owner, saved networks,
        shared storage); the adb keys survive and ``persist.sys.test_harness`` is set, which is
        why it is not a clean hand-back (TestHarnessModeService).
        """
        s = self.state
        for app in s.apps:
            app.data_files.clear()
        s.files.clear()
        s.accounts.clear()
        s.device_owner = ""
        s.wifi.saved.clear()
        s.wifi.connected = False
        s.extra_props["persist.sys.test_harness"] = "1"
        return _ok()

    # --- files -----------------------------------------------------------------------------------

    def _all_files(self) -> dict[str, str]:
        files = dict(self.state.files)
        for app in self.state.apps:
            for rel, content in app.data_files.items():
                files[f"/data/data/{app.package}/{rel}"] = content
        return files

    def _glob(self, pattern: str) -> list[str]:
        """Expand ``*`` like the shell does (no dotfiles unless the pattern starts with ``.``)."""
        if not any(c in pattern for c in "*?["):
            return [pattern]
        directory, _, name_pattern = posixpath.normpath(pattern).rpartition("/")
        prefix = (directory or "") + "/"
        names = {p[len(prefix) :].split("/")[0] for p in self._all_files() if p.startswith(prefix)}
        return sorted(
            prefix + n
            for n in names
            if fnmatch.fnmatchcase(n, name_pattern)
            and (name_pattern.startswith(".") or not n.startswith("."))
        )

    def _ls(self, args: list[str]) -> ShellResult:
        mark_dirs = any(a.startswith("-") and "p" in a for a in args)
        show_hidden = any(a.startswith("-") and ("a" in a or "A" in a) for a in args)
        paths = [a for a in args if not a.startswith("-")] or ["/"]
        out: list[str] = []
        errors: list[str] = []
        files = self._all_files()
        for path in paths:
            path = posixpath.normpath(path)
            if path in files:
                out.append(path)
                continue
            prefix = path.rstrip("/") + "/"
            children = sorted(
                {
                    p[len(prefix) :].split("/")[0]
                    + ("/" if mark_dirs and "/" in p[len(prefix) :] else "")
                    for p in files
                    if p.startswith(prefix)
                }
            )
            if children or self._is_known_dir(path):
                out.extend(c for c in children if show_hidden or not c.startswith("."))
            else:
                errors.append(f"ls: {path}: No such file or directory\n")
        code = 1 if errors else 0
        return ShellResult(code, "".join(f"{line}\n" for line in out), "".join(errors))

    @staticmethod
    def _is_known_dir(path: str) -> bool:
        return path in {"/", "/sdcard", "/data", "/data/data", "/system", "/storage/emulated/0"}

    def _cat(self, args: list[str]) -> ShellResult:
        files = self._all_files()
        out, errors = [], []
        for path in args:
            path = posixpath.normpath(path)
            if path.startswith("/data/data/"):
                errors.append(f"cat: {path}: Permission denied\n")
            elif path in files:
                out.append(files[path])
            else:
                errors.append(f"cat: {path}: No such file or directory\n")
        return ShellResult(1 if errors else 0, "".join(out), "".join(errors))

    def _rm(self, args: list[str]) -> ShellResult:
        recursive = any(a.startswith("-") and "r" in a for a in args)
        force = any(a.startswith("-") and "f" in a for a in args)
        errors = []
        targets = [t for a in args if not a.startswith("-") for t in self._glob(a)]
        for path in targets:
            path = posixpath.normpath(path)
            if path in ("/data", "/system") or path.startswith(("/data/", "/system/")):
                errors.append(f"rm: {path}: Permission denied\n")
                continue
            prefix = path.rstrip("/") + "/"
            matches = [p for p in self.state.files if p == path or p.startswith(prefix)]
            if any(p != path for p in matches) and not recursive:
                errors.append(f"rm: {path}: Is a directory\n")
                continue
            if not matches and not force:
                errors.append(f"rm: {path}: No such file or directory\n")
            for p in matches:
                del self.state.files[p]
        return ShellResult(1 if errors else 0, "", "".join(errors))

    def _df(self, args: list[str]) -> ShellResult:
        return _ok(
            "Filesystem     1K-blocks    Used Available Use% Mounted on\n"
            "/dev/block/dm-0  2048000 2048000         0 100% /\n"
            "/dev/fuse       12345678 2469135   9876543  20% /storage/emulated\n"
        )

    def _echo(self, args: list[str]) -> ShellResult:
        return _ok(" ".join(args) + "\n")

    def _id(self, args: list[str]) -> ShellResult:
        return _ok("uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),1007(log)\n")

    def _exit(self, args: list[str]) -> ShellResult:
        try:
            return ShellResult(int(args[0]) & 0xFF if args else 0)
        except ValueError:
            return _err(f"/system/bin/sh: exit: {args[0]}: bad number\n", 2)

    _COMMANDS: dict[str, Callable[[AndroidShell, list[str]], ShellResult]] = {
        "getprop": _getprop,
        "settings": _settings,
        "dumpsys": _dumpsys,
        "pm": _pm,
        "cmd": _cmd,
        "ls": _ls,
        "cat": _cat,
        "rm": _rm,
        "df": _df,
        "echo": _echo,
        "id": _id,
        "exit": _exit,
        "true": lambda self, args: ShellResult(0),
        "false": lambda self, args: ShellResult(1),
    }


def _child(rest: str, mark_dirs: bool) -> str:
    """The first path component of ``rest``; ``ls -p`` marks directories with a slash."""
    name, sep, _ = rest.partition("/")
    return name + ("/" if sep and mark_dirs else "")
