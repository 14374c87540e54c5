"""posdiag doctor: each check against fake /sys, /dev and / trees, and the command's output.

The permission checks are judged for a described user (``User(real=False)``, uid 54321) by owner,
group and mode, so they behave the same whether the suite runs as root or not.
"""

from __future__ import annotations

import datetime as dt
import grp
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from rich.console import Console

from posdiag.agent import cli_doctor
from posdiag.agent.certificate import StationKey
from posdiag.agent.cli import main
from posdiag.agent.cli_doctor import doctor
from posdiag.agent.doctor import (
    User,
    can_read_write,
    check_clock,
    check_ledger,
    check_station_key,
    kernel_clock_synchronised,
)
from posdiag.agent.ledger import Ledger, sqlite_url
from posdiag.agent.udev import (
    RULES_FILE_NAME,
    catalogue_usb_ids,
    check_libusb,
    check_serial_ports,
    check_udev_rules,
    check_usb_bus,
    check_usb_permissions,
    rule_keys,
    shipped_rules,
    udev_rules,
)
from posdiag.drivers.catalogue import load_catalogue
from posdiag.drivers.i18n import set_language

main.add_command(doctor)  # the group registers it in cli.py; adding it again is harmless

STRANGER = 54321


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    set_language("en")
    yield
    set_language("en")


def user(*, gids: tuple[int, ...] = (), listed: tuple[str, ...] = (), uid: int = STRANGER) -> User:
    """A non-root user who owns none of the test's files (unless given their uid)."""
    return User(uid, "tech", frozenset(gids), frozenset(listed))


ROOT = User(0, "root", frozenset({0}), frozenset({"root"}))


# --- the rules file ----------------------------------------------------------------------------


def test_shipped_rules_are_the_generated_ones() -> None:
    # A catalogue entry added without regenerating drivers/catalogue/60-posdiag.rules fails here:
    # .venv/bin/python -c "from posdiag.agent.udev import udev_rules; print(udev_rules(), end='')"
    #   > drivers/catalogue/60-posdiag.rules
    assert shipped_rules() == udev_rules()


def test_rules_cover_every_catalogue_usb_id() -> None:
    catalogue = load_catalogue()
    expected = {u for entry in (*catalogue.models, *catalogue.adapters) for u in entry.usb}
    keys = rule_keys(udev_rules())
    assert {f"{vid}:{pid}" for sub, vid, pid in keys if sub == "usb"} == expected
    # serial devices (ZVT over CDC-ACM, USB-serial adapters) get a tty rule; Android POS do not
    ttys = {f"{vid}:{pid}" for sub, vid, pid in keys if sub == "tty"}
    assert {u for a in catalogue.adapters for u in a.usb} <= ttys
    assert {u for m in catalogue.models if m.family == "zvt" for u in m.usb} <= ttys
    assert not {u for m in catalogue.models if m.family == "adb" for u in m.usb} & ttys
    assert len(catalogue_usb_ids()) == len(expected)


def test_rule_lines_grant_plugdev_uaccess_and_dialout() -> None:
    lines = [line for line in udev_rules().splitlines() if line and not line.startswith("#")]
    usb = [line for line in lines if line.startswith('SUBSYSTEM=="usb"')]
    tty = [line for line in lines if line.startswith('SUBSYSTEM=="tty"')]
    assert usb and tty and len(usb) + len(tty) == len(lines)
    assert all('GROUP="plugdev"' in line and 'TAG+="uaccess"' in line for line in usb)
    assert all('GROUP="dialout"' in line and 'MODE="0660"' in line for line in tty)
    assert 'ATTR{idVendor}=="0b00", ATTR{idProduct}=="0052"' in udev_rules()


def test_rule_keys_ignore_comments_and_other_rules() -> None:
    text = (
        '# SUBSYSTEM=="usb", ATTR{idVendor}=="dead", ATTR{idProduct}=="beef"\n'
        'ACTION=="add", SUBSYSTEM=="usb", ATTR{idVendor}=="0B00", ATTR{idProduct}=="0052", '
        'MODE="0666"\n'
        'KERNEL=="sd*", GROUP="disk"\n'
    )
    assert rule_keys(text) == {("usb", "0b00", "0052")}


# --- USB ---------------------------------------------------------------------------------------


def fake_bus(tmp_path: Path) -> tuple[Path, Path]:
    sys_root, dev_root = tmp_path / "sys", tmp_path / "dev"
    (sys_root / "bus" / "usb" / "devices").mkdir(parents=True)
    (dev_root / "bus" / "usb").mkdir(parents=True)
    return sys_root, dev_root


def plug(
    sys_root: Path, dev_root: Path, name: str, usb_id: str, bus: int, number: int, mode: int
) -> Path:
    """A device in sysfs and its /dev/bus/usb node (a plain file with ``mode``)."""
    vid, pid = usb_id.split(":")
    device = sys_root / "bus" / "usb" / "devices" / name
    device.mkdir()
    for attribute, value in (
        ("idVendor", vid),
        ("idProduct", pid),
        ("busnum", str(bus)),
        ("devnum", str(number)),
    ):
        (device / attribute).write_text(value + "\n")
    interface = sys_root / "bus" / "usb" / "devices" / f"{name}:1.0"  # no IDs: not a device
    interface.mkdir()
    node = dev_root / "bus" / "usb" / f"{bus:03d}" / f"{number:03d}"
    node.parent.mkdir(parents=True, exist_ok=True)
    node.touch()
    node.chmod(mode)
    return node


def test_no_usb_bus_is_a_problem_said_plainly(tmp_path: Path) -> None:
    check = check_usb_bus(tmp_path / "sys", tmp_path / "dev")
    assert check.status == "problem"
    assert check.found == "No USB bus on this computer: terminals on USB cannot be seen."
    assert check.fix
    assert check_usb_permissions(tmp_path / "sys", tmp_path / "dev", user()).status == "ok"


def test_usb_listed_without_device_files_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "sys" / "bus" / "usb" / "devices").mkdir(parents=True)
    check = check_usb_bus(tmp_path / "sys", tmp_path / "dev")
    assert check.status == "problem"
    assert "bus/usb" in check.found


def test_usb_bus_present(tmp_path: Path) -> None:
    assert check_usb_bus(*fake_bus(tmp_path)).status == "ok"


def test_usb_device_this_user_can_open(tmp_path: Path) -> None:
    sys_root, dev_root = fake_bus(tmp_path)
    node = plug(sys_root, dev_root, "1-2", "0b00:0052", 1, 5, 0o660)
    member = user(gids=(node.stat().st_gid,))
    check = check_usb_permissions(sys_root, dev_root, member)
    assert check.status == "ok"
    assert "1 device of the catalogue" in check.found


def test_usb_device_without_permission(tmp_path: Path) -> None:
    sys_root, dev_root = fake_bus(tmp_path)
    plug(sys_root, dev_root, "1-2", "0b00:0052", 1, 5, 0o600)
    plug(sys_root, dev_root, "3-1", "2fb8:2208", 3, 12, 0o666)
    check = check_usb_permissions(sys_root, dev_root, user())
    assert check.status == "problem"
    assert "0b00:0052" in check.found
    assert str(dev_root / "bus" / "usb" / "001" / "005") in check.found
    assert "2fb8:2208" not in check.found  # that one is open to everybody
    assert check.fix and "60-posdiag.rules" in check.fix and "udevadm" in check.fix
    assert check_usb_permissions(sys_root, dev_root, ROOT).status == "ok"


def test_usb_devices_outside_the_catalogue_are_not_judged(tmp_path: Path) -> None:
    sys_root, dev_root = fake_bus(tmp_path)
    plug(sys_root, dev_root, "1-1", "1d6b:0002", 1, 1, 0o600)  # a root hub
    check = check_usb_permissions(sys_root, dev_root, user())
    assert check.status == "ok"
    assert "nothing to check" in check.found


def test_usb_device_whose_node_is_missing(tmp_path: Path) -> None:
    sys_root, dev_root = fake_bus(tmp_path)
    plug(sys_root, dev_root, "1-2", "0403:6001", 1, 7, 0o666).unlink()
    assert check_usb_permissions(sys_root, dev_root, user()).status == "problem"


def test_libusb_missing_and_found() -> None:
    missing = check_libusb(lambda: None)
    assert missing.status == "problem" and missing.fix and "libusb" in missing.fix
    wheel = SimpleNamespace(lib=SimpleNamespace(_name="/x/site-packages/libusb_package/l.so"))
    found = check_libusb(lambda: wheel)
    assert found.status == "ok" and "comes with posdiag" in found.found
    system = SimpleNamespace(lib=SimpleNamespace(_name="/usr/lib/libusb-1.0.so.0"))
    assert "system's library" in check_libusb(lambda: system).found
    assert check_libusb().status in ("ok", "problem")  # the real loader, whatever this host has


# --- udev rules --------------------------------------------------------------------------------


def test_udev_rules_absent(tmp_path: Path) -> None:
    check = check_udev_rules(tmp_path, user())
    assert check.status == "problem"
    assert check.fix and "sudo tee /etc/udev/rules.d/60-posdiag.rules" in check.fix
    assert "udevadm control --reload-rules" in check.fix
    assert check_udev_rules(tmp_path, ROOT).status == "warning"  # root opens them anyway


def test_udev_rules_installed(tmp_path: Path) -> None:
    rules = tmp_path / "etc" / "udev" / "rules.d"
    rules.mkdir(parents=True)
    (rules / RULES_FILE_NAME).write_text(udev_rules())
    check = check_udev_rules(tmp_path, user())
    assert check.status == "ok"
    assert RULES_FILE_NAME in check.found


def test_udev_rules_in_lib_reordered_still_cover(tmp_path: Path) -> None:
    rules = tmp_path / "usr" / "lib" / "udev" / "rules.d"
    rules.mkdir(parents=True)
    lines = [line for line in udev_rules().splitlines() if line and not line.startswith("#")]
    (rules / "99-posdiag-local.rules").write_text("\n".join(reversed(lines)) + "\n")
    assert check_udev_rules(tmp_path, user()).status == "ok"


def test_udev_rules_stale(tmp_path: Path) -> None:
    rules = tmp_path / "etc" / "udev" / "rules.d"
    rules.mkdir(parents=True)
    stale = [
        line for line in udev_rules().splitlines() if "10c4" not in line and "067b" not in line
    ]
    (rules / RULES_FILE_NAME).write_text("\n".join(stale) + "\n")
    check = check_udev_rules(tmp_path, user())
    assert check.status == "problem"
    assert "miss 2 devices" in check.found
    assert check.fix and "tee" in check.fix


# --- serial ports ------------------------------------------------------------------------------


def serial_group() -> tuple[int, str]:
    """A non-root group to own the fake ports: dialout as root (which may chown), else ours."""
    if os.geteuid() == 0:
        try:
            return grp.getgrnam("dialout").gr_gid, "dialout"
        except KeyError:
            pytest.skip("no dialout group on this system")
    gid = os.getegid()
    if gid == 0:
        pytest.skip("the test user's group is root")
    return gid, grp.getgrgid(gid).gr_name


def ports(dev_root: Path, mode: int, *names: str) -> int:
    gid, _name = serial_group()
    dev_root.mkdir(exist_ok=True)
    for name in names:
        path = dev_root / name
        path.touch()
        os.chown(path, -1, gid)
        path.chmod(mode)
    return gid


def test_serial_ports_open_to_the_group_member(tmp_path: Path) -> None:
    gid = ports(tmp_path, 0o660, "ttyUSB0", "ttyS0", "ttyS1")
    (tmp_path / "tty1").touch()  # a console, not a serial port
    check = check_serial_ports(tmp_path, user(gids=(gid,), listed=(grp.getgrgid(gid).gr_name,)))
    assert check.status == "ok"
    assert "3 serial ports" in check.found


def test_serial_ports_user_not_in_the_group(tmp_path: Path) -> None:
    gid = ports(tmp_path, 0o660, "ttyUSB0", "ttyACM0")
    name = grp.getgrgid(gid).gr_name
    check = check_serial_ports(tmp_path, user())
    assert check.status == "problem"
    assert "ttyACM0" in check.found and "ttyUSB0" in check.found and name in check.found
    assert check.fix == f"Run: sudo usermod -aG {name} $USER, then log out and log in again."


def test_serial_ports_user_added_but_not_logged_in_again(tmp_path: Path) -> None:
    gid = ports(tmp_path, 0o660, "ttyUSB0")
    check = check_serial_ports(tmp_path, user(listed=(grp.getgrgid(gid).gr_name,)))
    assert check.status == "problem"
    assert check.fix and "log out and log in again" in check.fix and "usermod" not in check.fix


def test_serial_ports_only_root_may_open(tmp_path: Path) -> None:
    ports(tmp_path, 0o600, *(f"ttyS{i}" for i in range(8)))
    check = check_serial_ports(tmp_path, user())
    assert check.status == "problem"
    assert "8 serial ports can be opened only by root" in check.found
    assert "…" in check.found  # eight names are not all spelled out
    assert check.fix and "usermod" not in check.fix


def test_no_serial_port_yet(tmp_path: Path) -> None:
    outsider = check_serial_ports(tmp_path, user())
    assert outsider.status == "warning"
    assert outsider.fix and "usermod -aG" in outsider.fix
    member = check_serial_ports(tmp_path, user(listed=("dialout",)))
    assert member.status == "ok"
    assert check_serial_ports(tmp_path, ROOT).status == "ok"


def test_can_read_write_by_mode(tmp_path: Path) -> None:
    path = tmp_path / "node"
    path.touch()
    path.chmod(0o640)
    gid = path.stat().st_gid
    assert can_read_write(path, user(uid=path.stat().st_uid))
    assert not can_read_write(path, user(gids=(gid,)))  # the group may only read
    assert not can_read_write(tmp_path / "missing", user())
    assert can_read_write(path, ROOT)


# --- station key -------------------------------------------------------------------------------


def key_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "config" / "posdiag"
    folder.mkdir(parents=True)
    folder.chmod(0o700)
    return folder


def owner(path: Path) -> User:
    return user(uid=path.stat().st_uid)


def test_station_key_missing_is_created_at_first_wipe(tmp_path: Path) -> None:
    path = tmp_path / "config" / "posdiag" / "station_ed25519.pem"
    check = check_station_key(path, owner(tmp_path))
    assert check.status == "warning"
    assert "first wipe" in check.found
    assert check.fix and "posdiag station-key" in check.fix
    assert not path.exists()  # the doctor only looks


def test_station_key_missing_and_not_creatable(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "config" / "posdiag" / "station_ed25519.pem"
    check = check_station_key(path, user())  # not the folder's owner
    assert check.status == "problem"
    assert check.fix and f"sudo chown $USER {tmp_path}" in check.fix


def test_station_key_good(tmp_path: Path) -> None:
    path = key_folder(tmp_path) / "station_ed25519.pem"
    key = StationKey.load_or_create(path)
    check = check_station_key(path, owner(path))
    assert check.status == "ok"
    assert key.fingerprint in check.found


def test_station_key_readable_by_others(tmp_path: Path) -> None:
    path = key_folder(tmp_path) / "station_ed25519.pem"
    StationKey.load_or_create(path)
    path.chmod(0o644)
    check = check_station_key(path, owner(path))
    assert check.status == "problem"
    assert "644" in check.found
    assert check.fix == f"Run: chmod 600 {path}"


def test_station_key_folder_open_to_others(tmp_path: Path) -> None:
    folder = key_folder(tmp_path)
    path = folder / "station_ed25519.pem"
    StationKey.load_or_create(path)
    folder.chmod(0o755)
    check = check_station_key(path, owner(path))
    assert check.status == "warning"
    assert check.fix == f"Run: chmod 700 {folder}"


def test_station_key_not_readable_by_this_user(tmp_path: Path) -> None:
    path = key_folder(tmp_path) / "station_ed25519.pem"
    StationKey.load_or_create(path)
    check = check_station_key(path, user())
    assert check.status == "problem"
    assert check.fix and "chown" in check.fix


def test_station_key_damaged(tmp_path: Path) -> None:
    path = key_folder(tmp_path) / "station_ed25519.pem"
    path.write_text("not a key\n")
    path.chmod(0o600)
    check = check_station_key(path, owner(path))
    assert check.status == "problem"
    assert "damaged" in check.found


# --- ledger ------------------------------------------------------------------------------------


def test_ledger_missing_in_a_writable_folder_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    check = check_ledger(sqlite_url(path), user=owner(tmp_path))
    assert check.status == "ok"
    assert "creates it" in check.found
    assert not path.exists()


def test_ledger_folder_not_writable(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    check = check_ledger(sqlite_url(tmp_path / "sub" / "ledger.sqlite3"), user=user())
    assert check.status == "problem"
    assert str(tmp_path) in check.found
    assert check.fix and "--ledger" in check.fix


def test_existing_ledger_is_probed_without_changing_a_record(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "ledger.sqlite3")
    with Ledger(url) as ledger:
        ledger.audit("test.event", note="before doctor")
        head = ledger.head()
    check = check_ledger(url, user=owner(tmp_path))
    assert check.status == "ok", check
    assert "can be read and written" in check.found
    with Ledger(url) as ledger:
        assert ledger.head() == head
        assert ledger.verify().ok
        tables = set(sa.inspect(ledger.engine).get_table_names())
    assert "posdiag_doctor_probe" not in tables


def test_ledger_file_not_writable_by_this_user(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(sqlite_url(path)).close()
    tmp_path.chmod(0o777)
    check = check_ledger(sqlite_url(path), user=user())  # 0600, owned by someone else
    assert check.status == "problem"
    assert check.fix and f"sudo chown $USER {path}" in check.fix


def test_ledger_folder_of_existing_file_not_writable(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(sqlite_url(path)).close()
    path.chmod(0o666)
    tmp_path.chmod(0o755)
    check = check_ledger(sqlite_url(path), user=user())
    assert check.status == "problem"
    assert "journal" in check.found


def test_busy_ledger_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(sqlite_url(path)).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        check = check_ledger(sqlite_url(path), user=owner(tmp_path), timeout=0.2)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert check.status == "warning"
    assert "busy" in check.found


def test_unreachable_postgres_ledger_hides_the_password() -> None:
    check = check_ledger("postgresql://depot:Secr3tPass@127.0.0.1:1/posdiag", timeout=1)
    assert check.status == "problem"
    assert "Secr3tPass" not in check.found and "Secr3tPass" not in (check.fix or "")


def test_ledger_url_not_understood_is_not_echoed() -> None:
    check = check_ledger("::not a url with pw=hunter2::")
    assert check.status == "problem"
    assert "hunter2" not in check.found


# --- clock -------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 12, 5, 9, 30, tzinfo=dt.UTC)


def test_clock_before_release_is_a_problem() -> None:
    check = check_clock(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), lambda: True)
    assert check.status == "problem"
    assert check.fix and "timedatectl set-ntp true" in check.fix


def test_clock_not_synchronised_is_a_warning() -> None:
    check = check_clock(NOW, lambda: False)
    assert check.status == "warning"
    assert check.fix == "Turn network time on: sudo timedatectl set-ntp true"


def test_clock_unknown_and_synchronised() -> None:
    assert check_clock(NOW, lambda: None).status == "warning"
    good = check_clock(NOW, lambda: True)
    assert good.status == "ok" and "2026" in good.found and good.fix is None


def test_kernel_clock_state(tmp_path: Path) -> None:
    flag = tmp_path / "run" / "systemd" / "timesync" / "synchronized"
    flag.parent.mkdir(parents=True)
    flag.touch()
    assert kernel_clock_synchronised(tmp_path) is True
    assert kernel_clock_synchronised(tmp_path / "elsewhere") in (True, False, None)


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def runner(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli_doctor, "out", Console(width=200, color_system=None))
    monkeypatch.setattr(cli_doctor, "err", Console(stderr=True, color_system=None))
    return CliRunner()


def no_usb_here() -> bool:
    return not (Path("/sys/bus/usb/devices").is_dir() or Path("/dev/bus/usb").is_dir())


def test_doctor_on_this_machine(runner: CliRunner) -> None:
    result = runner.invoke(main, ["doctor"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    text = " ".join(result.output.split())
    if no_usb_here():
        assert result.exit_code == 1
        assert "No USB bus on this computer: terminals on USB cannot be seen." in text
        assert "Not ready: 1 problem" in text or "problems" in text
    assert result.exit_code in (0, 1)
    for title in ("USB library", "udev rules", "Serial ports", "Station key", "Ledger", "Clock"):
        assert title in text


def test_doctor_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["doctor", "--json"])
    document = json.loads(result.output)
    assert set(document) == {"ok", "checks"}
    names = [check["name"] for check in document["checks"]]
    assert names == [
        "libusb",
        "usb_bus",
        "usb_permissions",
        "udev_rules",
        "serial_ports",
        "station_key",
        "ledger",
        "clock",
    ]
    for check in document["checks"]:
        assert set(check) == {"name", "status", "found", "fix"}
        assert check["status"] in ("ok", "warning", "problem")
        assert check["found"]
        assert (check["fix"] is None) == (check["status"] == "ok")
    assert document["ok"] == all(c["status"] == "ok" for c in document["checks"])
    assert result.exit_code == (0 if document["ok"] else 1)
    if no_usb_here():
        assert document["ok"] is False


def test_doctor_checks_the_ledger_it_is_given(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "depot.sqlite3"
    result = runner.invoke(main, ["doctor", "--json", "--ledger", sqlite_url(path)])
    ledger = next(c for c in json.loads(result.output)["checks"] if c["name"] == "ledger")
    assert str(path) in ledger["found"]


def test_doctor_udev_rules(runner: CliRunner) -> None:
    result = runner.invoke(main, ["doctor", "--udev-rules"])
    assert result.exit_code == 0
    assert result.stdout == shipped_rules()
    assert "sudo tee /etc/udev/rules.d/60-posdiag.rules" in " ".join(result.stderr.split())
    assert "udevadm trigger" in result.stderr


def test_doctor_in_chinese_does_not_crash(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--lang", "zh-CN", "doctor"])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.splitlines()) >= 8
    as_json = runner.invoke(main, ["--lang", "zh-CN", "doctor", "--json"])
    assert json.loads(as_json.output)["checks"][0]["name"] == "libusb"


def test_default_ledger_folder_that_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker / "data"))
    check = check_ledger(None)
    assert check.status == "problem"
    assert check.fix and "--ledger" in check.fix
