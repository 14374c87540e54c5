"""The system views a client reads to identify a unit, as toybox and iproute2 print them.

``id`` (uid 2000 with the shell's groups and SELinux context), ``whoami``, ``uname`` (kernel from
``/proc/version``, machine from the ABI), ``ps`` (toybox's ``USER PID PPID VSZ RSS WCHAN ADDR S
NAME`` columns, where a too-wide value eats into the next column's padding as toybox's does),
``ip addr``/``ip link`` and ``ifconfig`` (``lo``, ``wlan0`` up with an address when the state's
Wi-Fi is connected, ``rmnet_data0`` when cellular data is). Addresses are derived from the
serial number, so a unit keeps its addresses across runs.
"""

from __future__ import annotations

import zlib

from .files import FIRST_APP_UID, user_name
from .shell_base import Command, Proc, ShellResult, err, ok, parse_options
from .shell_props import machine
from .state import AndroidState

SHELL_PID = 4242
"""``$$``: the pid of the ``sh`` adbd started for this command line (``ps`` shows it)."""

SHELL_GROUPS = [
    (2000, "shell"),
    (1004, "input"),
    (1007, "log"),
    (1011, "adb"),
    (1015, "sdcard_rw"),
    (1028, "sdcard_r"),
    (3001, "net_bt_admin"),
    (3002, "net_bt"),
    (3003, "inet"),
    (3006, "net_bw_stats"),
    (3009, "readproc"),
    (3011, "uhid"),
]
"""The shell uid's groups on a user build, in the order ``id`` prints them (files.SHELL_GROUPS)."""


# --- identity ------------------------------------------------------------------------------------


def id_(p: Proc) -> ShellResult:
    """Toybox ``id`` as the shell uid: uid, gid, groups and the SELinux context."""
    parsed = parse_options("id", p.args, "ugGnrZ")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, _, operands = parsed
    if operands and operands[0] not in ("shell", "2000"):
        return err(f"id: '{operands[0]}': unknown user\n")
    names = "n" in flags
    if "Z" in flags:
        return ok("u:r:shell:s0\n")
    if "u" in flags:
        return ok("shell\n" if names else "2000\n")
    if "g" in flags:
        return ok("shell\n" if names else "2000\n")
    if "G" in flags:
        return ok(" ".join(n if names else str(g) for g, n in SHELL_GROUPS) + "\n")
    groups = ",".join(f"{g}({n})" for g, n in SHELL_GROUPS)
    return ok(f"uid=2000(shell) gid=2000(shell) groups={groups} context=u:r:shell:s0\n")


def whoami(p: Proc) -> ShellResult:
    """Toybox ``whoami``."""
    return ok("shell\n")


def _kernel(state: AndroidState) -> tuple[str, str]:
    """(release, version) from ``/proc/version`` as the tree holds it."""
    node = state.tree.lookup("/proc/version")
    text = node.data.decode("utf-8", "replace") if node is not None else ""
    words = text.split()
    release = words[2] if len(words) > 2 else "4.14.0"
    version = text.split(")", 1)[1].strip() if ")" in text else "#1 SMP PREEMPT"
    return release, version


def uname(p: Proc) -> ShellResult:
    """Toybox ``uname`` (``-a`` ends with ``Toybox`` from Android 11's toybox on)."""
    parsed = parse_options("uname", p.args, "asnrvmo")
    if isinstance(parsed, ShellResult):
        return parsed
    flags = parsed[0] or {"s"}
    release, version = _kernel(p.state)
    fields = [
        ("s", "Linux"),
        ("n", "localhost"),
        ("r", release),
        ("v", version),
        ("m", machine(p.state)),
    ]
    if p.state.sdk >= 30:
        fields.append(("o", "Toybox"))
    words = [value for flag, value in fields if flag in flags or "a" in flags]
    return ok(" ".join(words) + "\n")


# --- processes -----------------------------------------------------------------------------------


def _processes(state: AndroidState) -> list[tuple[str, int, int, int, int, str, str, str]]:
    """(user, pid, ppid, vsz KiB, rss KiB, wchan, state, name) of what runs on the unit."""
    wait = "do_epoll_wait" if state.sdk >= 29 else "SyS_epoll_wait"
    zygote = "zygote64" if machine(state) == "aarch64" else "zygote"
    rows = [
        ("root", 1, 0, 10782796, 9508, wait, "S", "init"),
        ("root", 2, 0, 0, 0, "kthreadd", "S", "[kthreadd]"),
        ("root", 3, 2, 0, 0, "rescuer_thread", "I", "[rcu_gp]"),
        ("root", 340, 1, 10843224, 3064, wait, "S", "ueventd"),
        ("logd", 431, 1, 10896036, 7476, "sigsuspend", "S", "logd"),
        ("system", 433, 1, 10768588, 3860, "binder_ioctl", "S", "servicemanager"),
        ("root", 502, 1, 10896044, 8420, "binder_ioctl", "S", "vold"),
        ("root", 611, 1, 10944320, 10104, wait, "S", "netd"),
        ("root", 612, 1, 14966824, 133332, "poll_schedule_timeout", "S", zygote),
        ("system", 1024, 612, 16602364, 271040, wait, "S", "system_server"),
        ("system", 640, 1, 11187964, 30760, wait, "S", "surfaceflinger"),
        ("shell", 688, 1, 10915412, 6684, wait, "S", "adbd"),
        ("radio", 1401, 612, 14890516, 91208, wait, "S", "com.android.phone"),
        ("u0_a21", 1388, 612, 15124336, 146276, wait, "S", "com.android.systemui"),
    ]
    for number, app in enumerate(state.apps):
        if not app.system:
            uid = FIRST_APP_UID + 50 + number
            rows.append(
                (user_name(uid), 2100 + number * 37, 612, 14832520, 98764, wait, "S", app.package)
            )
    rows.append(("shell", SHELL_PID, 688, 10780348, 3388, "sigsuspend", "S", "sh"))
    rows.append(("shell", SHELL_PID + 1, SHELL_PID, 10799964, 3868, "0", "R", "ps"))
    return rows


_PS_COLUMNS = [
    ("USER", -12),
    ("PID", 5),
    ("PPID", 5),
    ("VSZ", 7),
    ("RSS", 6),
    ("WCHAN", -10),
    ("ADDR", 10),
    ("S", -1),
    ("NAME", -27),
]


def _ps_line(values: list[str], header: bool) -> str:
    """One row as toybox lays it out: a field too wide eats into the next one's padding."""
    out: list[str] = []
    slop = 0
    for index, ((_, width), value) in enumerate(zip(_PS_COLUMNS, values, strict=True)):
        last = index == len(_PS_COLUMNS) - 1
        if index:
            out.append(" ")
        if last and not header:
            out.append(value)
            break
        room = max(abs(width) - slop, 0)
        slop = max(len(value) - room, 0)
        out.append(value.ljust(room) if width < 0 else value.rjust(room))
    return "".join(out)


def ps(p: Proc) -> ShellResult:
    """Toybox ``ps``: ``-A``/``-e`` every process, plain ``ps`` the shell's own."""
    parsed = parse_options("ps", p.args, "AaedflwZTt", valued="opPuUk")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, values, _ = parsed
    rows = _processes(p.state)
    if "p" in values:
        pids = {int(x) for v in values["p"] for x in v.split(",") if x.isdigit()}
        rows = [r for r in rows if r[1] in pids]
    elif not flags & {"A", "e", "a", "d"}:
        rows = [r for r in rows if r[1] >= SHELL_PID]
    lines = [_ps_line([name for name, _ in _PS_COLUMNS], header=True)]
    for user, pid, ppid, vsz, rss, wchan, state, name in rows:
        lines.append(
            _ps_line(
                [user, str(pid), str(ppid), str(vsz), str(rss), wchan, "0", state, name],
                header=False,
            )
        )
    return ok("\n".join(lines) + "\n")


# --- network -------------------------------------------------------------------------------------


def _octet(state: AndroidState, salt: str) -> int:
    return 2 + zlib.crc32(f"{state.serial}/{salt}".encode()) % 250


def _interfaces(state: AndroidState) -> list[tuple[str, str, bool, str | None, int]]:
    """(name, MAC, up, IPv4 address, prefix) of lo, wlan0 and the cellular data link."""
    wifi_up = state.wifi.enabled and state.wifi.connected and not state.airplane_mode
    t = state.telephony
    data_up = (
        t.sim_state == "READY"
        and t.voice_reg_state == 0
        and t.data_reg_state == 0
        and not state.airplane_mode
    )
    wlan_ip = f"192.168.178.{_octet(state, 'wlan')}" if wifi_up else None
    cell_ip = f"10.{_octet(state, 'a')}.{_octet(state, 'b')}.{_octet(state, 'c')}"
    links = [
        ("lo", "00:00:00:00:00:00", True, "127.0.0.1", 8),
        ("wlan0", "02:00:00:00:00:00", wifi_up, wlan_ip, 24),
    ]
    if data_up:
        links.append(("rmnet_data0", "", True, cell_ip, 30))
    return links


def ip(p: Proc) -> ShellResult:
    """``ip addr``/``ip a``/``ip link`` [show [dev] IFACE] (iproute2's layout)."""
    args = [a for a in p.args if a not in ("-4", "-6")]
    only4 = "-4" in p.args
    obj = args[0] if args else ""
    if obj not in ("a", "addr", "address", "l", "link"):
        if not obj:
            return err("Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }\n", 255)
        return err(f'Object "{obj}" is unknown, try "ip help".\n', 255)
    rest = [a for a in args[1:] if a not in ("show", "list", "dev")]
    links = [i for i in _interfaces(p.state) if not rest or i[0] == rest[0]]
    if rest and not links:
        return err(f'Device "{rest[0]}" does not exist.\n', 1)
    out: list[str] = []
    for number, (name, mac, up, addr, prefix) in enumerate(_interfaces(p.state), start=1):
        if (name, mac, up, addr, prefix) not in links:
            continue
        if name == "lo":
            flags, tail, kind = "LOOPBACK,UP,LOWER_UP", "qdisc noqueue state UNKNOWN", "loopback"
        elif name == "wlan0":
            flags = "BROADCAST,MULTICAST,UP,LOWER_UP" if up else "NO-CARRIER,BROADCAST,MULTICAST,UP"
            tail, kind = f"qdisc mq state {'UP' if up else 'DOWN'}", "ether"
        else:
            flags, tail, kind = "UP,LOWER_UP", "qdisc htb state UNKNOWN", ""
        mtu = 65536 if name == "lo" else 1500
        out.append(f"{number}: {name}: <{flags}> mtu {mtu} {tail} group default qlen 1000")
        if kind:
            brd = "00:00:00:00:00:00" if kind == "loopback" else "ff:ff:ff:ff:ff:ff"
            out.append(f"    link/{kind} {mac} brd {brd}")
        else:
            out.append("    link/[530] ")
        if obj in ("l", "link") or not addr:
            continue
        scope = "host" if name == "lo" else "global"
        brd_ip = "" if name != "wlan0" else f" brd {addr.rsplit('.', 1)[0]}.255"
        out.append(f"    inet {addr}/{prefix}{brd_ip} scope {scope} {name}")
        out.append("       valid_lft forever preferred_lft forever")
        if not only4 and name == "lo":
            out.append("    inet6 ::1/128 scope host ")
            out.append("       valid_lft forever preferred_lft forever")
    return ok("\n".join(out) + "\n")


def ifconfig(p: Proc) -> ShellResult:
    """Toybox ``ifconfig`` [IFACE]: the interfaces that are up (all with ``-a``)."""
    operands = [a for a in p.args if a != "-a"]
    show_all = "-a" in p.args or bool(operands)
    blocks: list[str] = []
    for name, mac, up, addr, prefix in _interfaces(p.state):
        if operands and name != operands[0]:
            continue
        if not up and not show_all:
            continue
        mask = ".".join(str((0xFFFFFFFF << (32 - prefix) >> (24 - 8 * k)) & 0xFF) for k in range(4))
        if name == "lo":
            lines = [f"{name:<9} Link encap:Local Loopback "]
        elif name == "wlan0":
            lines = [f"{name:<9} Link encap:Ethernet  HWaddr {mac}"]
        else:
            lines = [f"{name:<9} Link encap:UNSPEC  "]
        if addr:
            bcast = f"  Bcast:{addr.rsplit('.', 1)[0]}.255" if name == "wlan0" else ""
            lines.append(f"          inet addr:{addr}{bcast}  Mask:{mask} ")
        state = "UP RUNNING" if up else "UP"
        extra = " LOOPBACK" if name == "lo" else " BROADCAST" if name == "wlan0" else ""
        mtu = 65536 if name == "lo" else 1500
        lines += [
            f"          {state.split()[0]}{extra}{' RUNNING' if up else ''}"
            f"{' MULTICAST' if name == 'wlan0' else ''}  MTU:{mtu}  Metric:1",
            "          RX packets:0 errors:0 dropped:0 overruns:0 frame:0 ",
            "          TX packets:0 errors:0 dropped:0 overruns:0 carrier:0 ",
            "          collisions:0 txqueuelen:1000 ",
            "          RX bytes:0 TX bytes:0 ",
        ]
        blocks.append("\n".join(lines) + "\n")
    if operands and not blocks:
        return err(f"ifconfig: {operands[0]}: No such device\n")
    return ok("\n".join(blocks))


COMMANDS: dict[str, Command] = {
    "id": id_,
    "whoami": whoami,
    "uname": uname,
    "ps": ps,
    "ip": ip,
    "ifconfig": ifconfig,
}
