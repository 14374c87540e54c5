"""Who can open the terminals: the udev rules for the catalogue's USB IDs, and the checks of access.

``posdiag doctor`` asks here whether libusb loads, whether there is a USB bus, whether this user
can open the plugged-in catalogue devices and the serial ports, and whether the rules are
installed; ``posdiag doctor --udev-rules`` prints them.

Without the rules a Linux station sees its terminals on the bus but cannot open them unless it runs
as root. The rules are generated from the catalogue, so adding a model to a ``.toml`` file adds
its USB IDs here; the copy shipped beside the catalogue (``60-posdiag.rules``) is compared with
the generated text by a test, so the package never ships stale rules.

What the rules grant, and why:

* every USB ID (terminals, Android POS, USB-serial adapters): the ``plugdev`` group and the
  logged-in desktop user (``uaccess``) may read and write the device node, which is what libusb
  (ADB over USB) needs;
* the serial side of ZVT terminals that enumerate as USB CDC-ACM serial, and of USB-serial
  adapters: the ``dialout`` group may open the tty, and ModemManager is told to leave the port
  alone (it would otherwise send AT commands to a payment terminal it took for a modem).

The rules file is a system file, read by udev, not by a person at the station: its comments are
English and never translated, so the shipped copy is one text whatever the language.
"""

from __future__ import annotations

import grp
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from posdiag.drivers.catalogue import Catalogue, load_catalogue
from posdiag.drivers.i18n import _, ngettext

from .doctor import Check, User, can_read_write, group_name

__all__ = [
    "RULES_FILE_NAME",
    "RULES_INSTALL_PATH",
    "UsbId",
    "catalogue_usb_ids",
    "check_libusb",
    "check_serial_ports",
    "check_udev_rules",
    "check_usb_bus",
    "check_usb_permissions",
    "rule_keys",
    "shipped_rules",
    "udev_rules",
]

RULES_FILE_NAME = "60-posdiag.rules"
"""The file name, shipped in ``posdiag.drivers.catalogue`` and installed in ``rules.d``.

60 runs before systemd-logind's ``73-seat-late.rules`` (which applies ``uaccess``) and before
ModemManager's ``77-mm-*`` rules (which read ``ID_MM_DEVICE_IGNORE``).
"""

RULES_INSTALL_PATH = Path("/etc/udev/rules.d") / RULES_FILE_NAME
"""Where a technician installs the rules (``/etc`` holds the administrator's rules)."""

_HEADER = f"""\
# posdiag udev rules: let the plugdev group and the logged-in user (uaccess) open the payment
# terminals and USB-serial adapters of posdiag's model catalogue, and the dialout group their
# serial ports (which ModemManager is told to leave alone).
# Generated from the catalogue by `posdiag doctor --udev-rules`; do not edit by hand.
# Install (then unplug and plug the terminals in again):
#   posdiag doctor --udev-rules | sudo tee {RULES_INSTALL_PATH}
#   sudo udevadm control --reload-rules && sudo udevadm trigger
"""

_USB_RULE = (
    'SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vid}", ATTR{{idProduct}}=="{pid}", '
    'MODE="0660", GROUP="plugdev", TAG+="uaccess"'
)
_TTY_RULE = (
    'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{vid}", ATTRS{{idProduct}}=="{pid}", '
    'MODE="0660", GROUP="dialout", ENV{{ID_MM_DEVICE_IGNORE}}="1"'
)

SERIAL_PATTERNS = ("ttyUSB*", "ttyACM*", "ttyS*")
SERIAL_GROUPS = ("dialout", "uucp")
"""The groups that own serial ports: Debian/Ubuntu/Fedora use dialout, Arch uses uucp."""

RULES_DIRS = ("etc/udev/rules.d", "run/udev/rules.d", "lib/udev/rules.d", "usr/lib/udev/rules.d")
_SHOWN_PORTS = 4

_SERIAL_FAMILIES = frozenset({"zvt"})
"""Model families whose USB IDs are serial (CDC-ACM) devices, so they get a tty rule too."""

_KEY_PATTERN = re.compile(
    r'SUBSYSTEM=="(?P<subsystem>[a-z]+)".*?ATTRS?\{idVendor\}=="(?P<vid>[0-9a-fA-F]{4})"'
    r'.*?ATTRS?\{idProduct\}=="(?P<pid>[0-9a-fA-F]{4})"'
)


@dataclass(frozen=True)
class UsbId:
    """One USB ID of the catalogue and what carries it.

    Attributes:
        vid: vendor ID, four lower-case hex digits.
        pid: product ID, four lower-case hex digits.
        names: the models and adapters that enumerate with it (an ID may be shared).
        serial: whether the device is (or carries) a serial port, so a tty rule is due.
    """

    vid: str
    pid: str
    names: tuple[str, ...]
    serial: bool

    @property
    def text(self) -> str:
        """``vvvv:pppp``, the form ``lsusb`` and the catalogue write."""
        return f"{self.vid}:{self.pid}"


def _split(usb_id: str) -> tuple[str, str]:
    vid, _sep, pid = usb_id.strip().lower().partition(":")
    if not (re.fullmatch(r"[0-9a-f]{4}", vid) and re.fullmatch(r"[0-9a-f]{4}", pid)):
        raise ValueError(f"catalogue USB ID {usb_id!r} is not vvvv:pppp")
    return vid, pid


def catalogue_usb_ids(catalogue: Catalogue | None = None) -> list[UsbId]:
    """Every USB ID in the catalogue, once each, in catalogue order (models, then adapters).

    Args:
        catalogue: the catalogue to read; the shipped one when None.
    """
    catalogue = catalogue or load_catalogue()
    found: dict[tuple[str, str], tuple[list[str], bool]] = {}
    carriers: list[tuple[str, tuple[str, ...], bool]] = [
        (" ".join(p for p in (m.vendor, m.model) if p), m.usb, m.family in _SERIAL_FAMILIES)
        for m in catalogue.models
    ]
    carriers += [(a.name, a.usb, True) for a in catalogue.adapters]
    for name, ids, serial in carriers:
        for usb_id in ids:
            names, was_serial = found.setdefault(_split(usb_id), ([], False))
            if name not in names:
                names.append(name)
            found[_split(usb_id)] = (names, was_serial or serial)
    return [UsbId(vid, pid, tuple(names), serial) for (vid, pid), (names, serial) in found.items()]


def udev_rules(catalogue: Catalogue | None = None) -> str:
    """The rules file for the catalogue's USB IDs: a comment header, then one group per device.

    Each group is a comment naming the model or adapter, then per USB ID its ``usb`` rule and,
    for serial devices, its ``tty`` rule.
    """
    lines = [_HEADER]
    previous: tuple[str, ...] = ()
    for usb_id in catalogue_usb_ids(catalogue):
        if usb_id.names != previous:  # one comment per model, over its consecutive IDs
            lines.append(f"# {', '.join(usb_id.names)}")
            previous = usb_id.names
        lines.append(_USB_RULE.format(vid=usb_id.vid, pid=usb_id.pid))
        if usb_id.serial:
            lines.append(_TTY_RULE.format(vid=usb_id.vid, pid=usb_id.pid))
    return "\n".join(lines) + "\n"


def shipped_rules() -> str:
    """The rules file shipped in the package (beside the catalogue's ``.toml`` files)."""
    resource = resources.files("posdiag.drivers.catalogue").joinpath(RULES_FILE_NAME)
    return resource.read_text(encoding="utf-8")


def rule_keys(text: str) -> set[tuple[str, str, str]]:
    """What a rules text grants: ``(subsystem, vid, pid)`` of every rule matching a USB ID.

    Comments are skipped. Used to tell whether installed rules (perhaps an older or hand-edited
    copy) still cover everything the generated ones do.
    """
    keys: set[tuple[str, str, str]] = set()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _KEY_PATTERN.search(stripped)
        if match:
            keys.add((match["subsystem"], match["vid"].lower(), match["pid"].lower()))
    return keys


def _shown(names: list[str]) -> str:
    """A short list of names for a sentence: the first few, then an ellipsis."""
    head = ", ".join(names[:_SHOWN_PORTS])
    return head + (", …" if len(names) > _SHOWN_PORTS else "")


# --- USB ---------------------------------------------------------------------------------------


def check_libusb(load: Callable[[], Any] | None = None) -> Check:
    """libusb-1.0, without which pyusb sees no USB device (the system's, or the wheel's copy).

    Args:
        load: returns a pyusb backend or None; the one the USB transport uses when None.
    """
    if load is None:
        from posdiag.drivers.transport.usbbulk import get_backend

        load = get_backend
    backend = load()
    if backend is None:
        return Check(
            "libusb",
            "problem",
            _("libusb-1.0 was not found: terminals on USB (Android POS over ADB) cannot be used."),
            _(
                "Install it (Debian/Ubuntu: sudo apt install libusb-1.0-0; Fedora: sudo dnf "
                "install libusb1), or reinstall posdiag so that its libusb-package part is there."
            ),
        )
    path = str(getattr(getattr(backend, "lib", None), "_name", "") or "")
    if "libusb_package" in path:
        found = _("libusb-1.0 found: the copy that comes with posdiag ({path}).")
    else:
        found = _("libusb-1.0 found: the system's library ({path}).")
    return Check("libusb", "ok", found.format(path=path or "?"))


def _has_usb_bus(sys_root: Path, dev_root: Path) -> tuple[bool, bool]:
    return (sys_root / "bus" / "usb" / "devices").is_dir(), (dev_root / "bus" / "usb").is_dir()


def check_usb_bus(sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev")) -> Check:
    """Whether this computer has a USB bus posdiag can see and open devices on."""
    listed, nodes = _has_usb_bus(sys_root, dev_root)
    if listed and nodes:
        return Check("usb_bus", "ok", _("USB bus present."))
    if listed:
        return Check(
            "usb_bus",
            "problem",
            _(
                "USB devices are listed, but their device files ({path}) are missing: terminals "
                "on USB cannot be opened."
            ).format(path=dev_root / "bus" / "usb"),
            _(
                "In a container, pass the USB devices through (docker run --device "
                "/dev/bus/usb); on an ordinary computer, check that udev is running."
            ),
        )
    return Check(
        "usb_bus",
        "problem",
        _("No USB bus on this computer: terminals on USB cannot be seen."),
        _(
            "Run posdiag on a computer with USB ports (for a virtual machine or container, pass "
            "the USB devices through); terminals on a serial port or the network still work."
        ),
    )


@dataclass(frozen=True)
class _Attached:
    name: str
    usb_id: str
    node: Path


def _attached(sys_root: Path, dev_root: Path, known: dict[str, str]) -> list[_Attached]:
    """Catalogue devices plugged in now, from sysfs, with their ``/dev/bus/usb`` file."""
    found: list[_Attached] = []
    devices = sys_root / "bus" / "usb" / "devices"
    for device in sorted(devices.iterdir()):
        try:
            vid = int((device / "idVendor").read_text().strip(), 16)
            pid = int((device / "idProduct").read_text().strip(), 16)
            bus = int((device / "busnum").read_text().strip())
            number = int((device / "devnum").read_text().strip())
        except (OSError, ValueError):  # interfaces and hubs' ports have no IDs: not devices
            continue
        usb_id = f"{vid:04x}:{pid:04x}"
        if usb_id in known:
            node = dev_root / "bus" / "usb" / f"{bus:03d}" / f"{number:03d}"
            found.append(_Attached(known[usb_id], usb_id, node))
    return found


def check_usb_permissions(
    sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev"), user: User | None = None
) -> Check:
    """Whether this user can open every plugged-in device whose USB ID is in the catalogue."""
    user = user or User.current()
    listed, nodes = _has_usb_bus(sys_root, dev_root)
    if not (listed and nodes):
        return Check("usb_permissions", "ok", _("Not checked: there is no USB bus."))
    known = {usb_id.text: ", ".join(usb_id.names) for usb_id in catalogue_usb_ids()}
    attached = _attached(sys_root, dev_root, known)
    if not attached:
        return Check(
            "usb_permissions",
            "ok",
            _(
                "No terminal or USB-serial adapter of the catalogue is plugged in: nothing to "
                "check."
            ),
        )
    closed = [device for device in attached if not can_read_write(device.node, user)]
    if not closed:
        return Check(
            "usb_permissions",
            "ok",
            ngettext(
                "{n} device of the catalogue is plugged in, and this user can open it.",
                "{n} devices of the catalogue are plugged in, and this user can open them all.",
                len(attached),
            ).format(n=len(attached)),
        )
    devices = [
        _("{name} (USB {usb_id}, {node})").format(name=d.name, usb_id=d.usb_id, node=d.node)
        for d in closed
    ]
    return Check(
        "usb_permissions",
        "problem",
        ngettext(
            "User {user} cannot open {n} plugged-in device: {devices}.",
            "User {user} cannot open {n} plugged-in devices: {devices}.",
            len(closed),
        ).format(user=user.name, n=len(closed), devices="; ".join(devices)),
        _(
            "Install posdiag's udev rules (posdiag doctor --udev-rules | sudo tee {path}, then "
            "sudo udevadm control --reload-rules && sudo udevadm trigger) and plug the device in "
            "again."
        ).format(path=RULES_INSTALL_PATH),
    )


def check_udev_rules(root: Path = Path("/"), user: User | None = None) -> Check:
    """Whether udev rules naming posdiag are installed and grant every catalogue USB ID.

    Installed rules may be an older or hand-edited copy: what counts is that they cover every
    rule the generated file has, not that the text is the same.
    """
    user = user or User.current()
    install = _(
        "Install them with posdiag doctor --udev-rules | sudo tee {path}, then run: sudo udevadm "
        "control --reload-rules && sudo udevadm trigger"
    ).format(path=RULES_INSTALL_PATH)
    files = sorted(
        path for folder in RULES_DIRS for path in (root / folder).glob("*posdiag*.rules")
    )
    installed: set[tuple[str, str, str]] = set()
    for path in files:
        try:
            installed |= rule_keys(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    if not files:
        if user.is_root:
            return Check(
                "udev_rules",
                "warning",
                _(
                    "posdiag's udev rules are not installed: posdiag works here because it runs "
                    "as root, but other users cannot open terminals on USB."
                ),
                install,
            )
        return Check(
            "udev_rules",
            "problem",
            _("posdiag's udev rules are not installed: only root can open terminals on USB."),
            install,
        )
    shown = ", ".join(str(path) for path in files)
    missing = rule_keys(udev_rules()) - installed
    if missing:
        count = len({(vid, pid) for _sub, vid, pid in missing})
        return Check(
            "udev_rules",
            "problem",
            ngettext(
                "The installed udev rules ({files}) miss {n} device of this posdiag's catalogue.",
                "The installed udev rules ({files}) miss {n} devices of this posdiag's catalogue.",
                count,
            ).format(files=shown, n=count),
            install,
        )
    return Check(
        "udev_rules",
        "ok",
        _(
            "posdiag's udev rules are installed ({files}) and cover every device of the catalogue."
        ).format(files=shown),
    )


# --- serial ports ------------------------------------------------------------------------------


def _serial_group(user: User) -> str:
    """The serial group this system has (dialout, else uucp); dialout when neither is known."""
    for name in SERIAL_GROUPS:
        if name in user.listed_in:
            return name
    for name in SERIAL_GROUPS:
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        return name
    return SERIAL_GROUPS[0]


def check_serial_ports(dev_root: Path = Path("/dev"), user: User | None = None) -> Check:
    """Whether this user can open the serial ports that exist (and those plugged in later)."""
    user = user or User.current()
    ports = sorted({path for pattern in SERIAL_PATTERNS for path in dev_root.glob(pattern)})
    if user.is_root:
        if not ports:
            found = _(
                "No serial port found now; running as root, posdiag can open any that appears."
            )
        else:
            found = ngettext(
                "{n} serial port found; running as root, posdiag can open it.",
                "{n} serial ports found; running as root, posdiag can open them all.",
                len(ports),
            ).format(n=len(ports))
        return Check("serial_ports", "ok", found)
    group = _serial_group(user)
    usermod = _("Run: sudo usermod -aG {group} $USER, then log out and log in again.")
    if not ports:
        if group in user.listed_in:
            return Check(
                "serial_ports",
                "ok",
                _(
                    "No serial port found now; this user is in the {group} group, so USB-serial "
                    "adapters plugged in later can be opened."
                ).format(group=group),
            )
        return Check(
            "serial_ports",
            "warning",
            _(
                "No serial port found now, and this user is not in the {group} group: USB-serial "
                "adapters plugged in later cannot be opened."
            ).format(group=group),
            usermod.format(group=group),
        )
    closed: dict[str, list[str]] = {}  # owning group -> ports; "": only root may open them
    for port in ports:
        if not can_read_write(port, user):
            try:
                info = port.stat()
                shared = info.st_gid != 0 and info.st_mode & 0o060 == 0o060
                owner = group_name(info.st_gid) if shared else ""
            except OSError:
                owner = ""
            closed.setdefault(owner, []).append(port.name)
    if not closed:
        return Check(
            "serial_ports",
            "ok",
            ngettext(
                "{n} serial port found, and this user can open it.",
                "{n} serial ports found, and this user can open them all.",
                len(ports),
            ).format(n=len(ports)),
        )
    found_parts: list[str] = []
    fixes: list[str] = []
    for owner, names in sorted(closed.items()):
        if not owner:  # joining the root group is no fix: the port must be given to a group
            found_parts.append(
                ngettext(
                    "{n} serial port can be opened only by root: {ports}.",
                    "{n} serial ports can be opened only by root: {ports}.",
                    len(names),
                ).format(n=len(names), ports=_shown(names))
            )
            fixes.append(
                _(
                    "If a terminal is cabled to one of those, give the port to the {group} group "
                    "with a udev rule (or run posdiag as root)."
                ).format(group=group)
            )
            continue
        found_parts.append(
            ngettext(
                "User {user} cannot open {n} serial port of the {group} group: {ports}.",
                "User {user} cannot open {n} serial ports of the {group} group: {ports}.",
                len(names),
            ).format(user=user.name, n=len(names), group=owner, ports=_shown(names))
        )
        if owner in user.listed_in:
            fixes.append(
                _(
                    "This user was added to the {group} group but has not logged in since: log "
                    "out and log in again (or restart the computer)."
                ).format(group=owner)
            )
        else:
            fixes.append(usermod.format(group=owner))
    return Check("serial_ports", "problem", " ".join(found_parts), " ".join(fixes))
