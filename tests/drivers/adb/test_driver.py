"""AdbDriver against the simulated Android POS, over memory, loopback TCP and simulated USB.

Every test runs once per attachment: the in-process memory link, a TCP port (``adb connect``)
and the simulated pyusb backend, where the real ``UsbBulkTransport`` code runs with adbd's
zero-length-packet rules. What the driver reports is checked against the simulator's state,
and what the driver does shows up in that state.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from posdiag.drivers.adb.errors import AdbAuthError, AdbCommandError
from posdiag.drivers.adb.parsers import parse_diskstats, parse_dumpsys_wifi, parse_getprop
from posdiag.simulators.adb.shell_props import all_properties
from posdiag.simulators.pytest_plugin import AdbDriverFactory, SimulatedAdb

ATTACHES = ("memory", "tcp", "usb")
HANG = 5.0  # beyond any expected wait: only a hang takes this long

Terminal = Callable[..., SimulatedAdb]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    deadline = time.monotonic() + 2
    while True:
        leaked = [t.name for t in threading.enumerate() if t not in threads_before]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert leaked == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


@pytest.fixture(params=ATTACHES)
def attach(request: pytest.FixtureRequest) -> str:
    return request.param


def big_text(size: int) -> str:
    """Numbered lines, so a lost, doubled or reordered chunk cannot go unnoticed."""
    lines = (f"{n:09d}\n" for n in range(size // 10 + 1))
    return "".join(lines)[:size]


# --- connect and shell ---------------------------------------------------------------------------


def test_connect_reports_the_banner(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", "pax-a920", attach)
    driver = adb_driver(terminal)

    info = driver.device
    assert info is not None
    assert info.system_type == "device"
    assert info.properties["ro.product.model"] == "A920"
    assert info.properties["ro.product.name"] == "A920"
    assert "ro.serialno" not in info.properties  # the banner carries no serial
    assert "shell_v2" in info.features
    assert driver.shell_v2
    assert info.max_payload >= 4096


def test_getprop_serial_with_exit_code(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", "pax-a920", attach)
    driver = adb_driver(terminal)

    output = driver.shell("getprop ro.serialno")

    assert output.exit_code == 0
    assert output.stdout == b"82617703\n"
    assert output.stderr == b""
    assert output.ok
    assert driver.getprop("ro.serialno").strip() == terminal.state.serial


def test_unknown_command_exits_127_with_stderr(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    driver = adb_driver(adb_terminal("activated", attach=attach))

    output = driver.shell("frobnicate --now")

    assert output.exit_code == 127
    assert output.stdout == b""
    assert b"frobnicate: inaccessible or not found" in output.stderr
    assert not output.ok


def test_exit_codes_come_back(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    driver = adb_driver(adb_terminal("activated", attach=attach))

    assert driver.shell("exit 3").exit_code == 3
    assert driver.shell("false").exit_code == 1
    assert driver.shell("true").exit_code == 0
    assert driver.shell("echo one; exit 7").exit_code == 7


@pytest.mark.parametrize(
    ("model", "vendor_property", "vendor_serial"),
    [("pax-a920", "ro.fac.sn", "0820533061"), ("sunmi-p2", "ro.sunmi.serial", "PC02P0CN01234")],
)
def test_full_getprop_listing_has_the_vendor_serial(
    adb_terminal: Terminal,
    adb_driver: AdbDriverFactory,
    attach: str,
    model: str,
    vendor_property: str,
    vendor_serial: str,
) -> None:
    terminal = adb_terminal("activated", model, attach)
    driver = adb_driver(terminal)

    props = parse_getprop(driver.getprop())

    assert props[vendor_property] == vendor_serial
    assert props == all_properties(terminal.state)  # the state's own over every build's
    assert driver.getprop(vendor_property).strip() == vendor_serial


# --- files ---------------------------------------------------------------------------------------


def test_read_file_of_the_scenario(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", "pax-a920", attach)
    driver = adb_driver(terminal)

    content = driver.read_file("/sdcard/PAX/params/merchant.xml")

    assert content == b'<merchant id="MID-0042"/>'
    assert content.decode() == terminal.state.files["/sdcard/PAX/params/merchant.xml"]


def test_read_missing_file_raises_command_error(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    driver = adb_driver(adb_terminal("activated", "pax-a920", attach))

    with pytest.raises(AdbCommandError, match=r"no such file.*/sdcard/nothing\.txt"):
        driver.read_file("/sdcard/nothing.txt")
    # the shell uid cannot read another app's data, so it does not exist for the driver
    with pytest.raises(AdbCommandError):
        driver.read_file("/data/data/com.pax.ipp.manager/databases/transactions.db")
    # the stream was cleaned up: the connection still works
    assert driver.shell("echo still here").stdout == b"still here\n"


def test_large_output_arrives_intact(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    """More than a sync DATA chunk (64 KiB) and more than one WRTE (max_payload, 1 MiB)."""
    text = big_text(1_200_000)
    terminal = adb_terminal(
        "activated", attach=attach, overrides={"files": {"/sdcard/big.bin": text}}
    )
    driver = adb_driver(terminal)
    assert driver.device is not None
    assert len(text) > driver.device.max_payload > 64 * 1024

    assert driver.read_file("/sdcard/big.bin") == text.encode()
    output = driver.shell("cat /sdcard/big.bin")
    assert output.exit_code == 0
    assert output.stdout == text.encode()
    assert driver.shell("getprop ro.serialno").text.strip() == terminal.state.serial


def test_usb_sends_zero_length_packets_only_after_whole_packet_writes(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal("activated", attach="usb")
    driver = adb_driver(terminal)
    device = terminal.usb_device
    assert device is not None
    packet = device.max_packet_size
    # OPEN payloads of every length around one and two USB packets: some fill them exactly
    for base in (packet, 2 * packet):
        for width in range(base - 40, base - 20):
            word = "z" * width
            assert driver.shell(f"echo {word}").stdout == f"{word}\n".encode()

    out = [record.length for record in device.transfers if record.direction == "out"]
    whole = [i for i, length in enumerate(out) if length and length % packet == 0]
    zlps = [i for i, length in enumerate(out) if length == 0]
    assert whole  # the test did produce whole-packet writes
    assert zlps == [i + 1 for i in whole]  # each one followed by a ZLP, and no other ZLP
    assert device.zlp_count == len(whole)
    assert device.missing_zlp_count == 0
    assert device.stray_zlp_count == 0
    assert terminal.usb_backend is not None
    assert terminal.usb_backend.zlp_count == len(whole)


# --- without shell_v2 ----------------------------------------------------------------------------


def test_without_shell_v2_falls_back_to_plain_shell(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", attach=attach, overrides={"device": {"features": ["cmd"]}})
    driver = adb_driver(terminal)

    assert driver.device is not None
    assert "shell_v2" not in driver.device.features
    assert not driver.shell_v2
    output = driver.shell("getprop ro.serialno")
    assert output.exit_code is None
    assert output.stdout.decode().strip() == terminal.state.serial
    assert output.ok
    unknown = driver.shell("frobnicate")
    assert unknown.exit_code is None  # the exit status is lost on plain shell:
    assert b"frobnicate: inaccessible or not found" in unknown.stdout  # stderr merged
    assert unknown.stderr == b""
    assert driver.shell("exit 3").exit_code is None


# --- authentication ------------------------------------------------------------------------------


def test_trusted_key_connects_without_a_prompt(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    trusted = adb_driver.key.android_public_key().decode()
    terminal = adb_terminal(
        "auth-required", attach=attach, overrides={"device": {"trusted_keys": [trusted]}}
    )
    prompts: list[bool] = []

    driver = adb_driver(terminal, on_auth_prompt=lambda: prompts.append(True))

    assert prompts == []
    assert terminal.simulator.prompts_shown == 0
    assert terminal.state.trusted_keys == [trusted]
    assert driver.shell("getprop ro.serialno").text.strip() == terminal.state.serial


def test_unknown_key_is_accepted_once_then_trusted(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("auth-required", attach=attach)
    assert terminal.state.auth_required
    assert terminal.state.trusted_keys == []
    prompts: list[bool] = []

    first = adb_driver(terminal, on_auth_prompt=lambda: prompts.append(True))
    assert prompts == [True]
    assert terminal.simulator.prompts_shown == 1
    assert first.shell("exit 0").exit_code == 0
    assert len(terminal.state.trusted_keys) == 1
    assert terminal.state.trusted_keys[0].startswith(
        adb_driver.key.android_public_key().decode().split(" ")[0]
    )
    first.close()

    second = adb_driver(terminal, on_auth_prompt=lambda: prompts.append(True))
    assert prompts == [True]  # the same key is known now: no second prompt
    assert terminal.simulator.prompts_shown == 1
    assert second.shell("getprop ro.serialno").text.strip() == terminal.state.serial


def test_key_never_allowed_fails_after_the_auth_timeout(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("auth-required", attach=attach, accept_new_keys=False)
    prompts: list[bool] = []
    start = time.monotonic()

    with pytest.raises(AdbAuthError, match=r"did not accept posdiag's key within 0\.3 s"):
        adb_driver(
            terminal, timeout=0.5, auth_timeout=0.3, on_auth_prompt=lambda: prompts.append(True)
        )

    elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < HANG
    assert prompts == [True]
    assert terminal.simulator.prompts_shown == 1
    assert terminal.state.trusted_keys == []


# --- the commands act on the simulated device ----------------------------------------------------


def test_pm_clear_empties_the_app_data_seen_by_diskstats(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", "sunmi-p2", attach)
    assert terminal.state.sdk >= 26
    driver = adb_driver(terminal)
    package = terminal.state.payment_package

    before = parse_diskstats(driver.shell("dumpsys diskstats").text)
    assert before.app_data_sizes[package] > 0

    cleared = driver.shell(f"pm clear {package}")
    assert cleared.exit_code == 0
    assert cleared.stdout == b"Success\n"

    after = parse_diskstats(driver.shell("dumpsys diskstats").text)
    assert after.app_data_sizes[package] == 0
    assert after.app_data_sizes[terminal.state.mdm_package] > 0  # only that app
    app = terminal.state.app(package)
    assert app is not None
    assert app.data_files == {}


def test_forget_network_and_rm_change_the_device(
    adb_terminal: Terminal, adb_driver: AdbDriverFactory, attach: str
) -> None:
    terminal = adb_terminal("activated", "pax-a920", attach)
    driver = adb_driver(terminal)

    assert driver.shell("cmd wifi forget-network 0").exit_code == 0
    wifi = parse_dumpsys_wifi(driver.shell("dumpsys wifi").text)
    assert wifi.saved_networks == ("Cafe-Backoffice",)
    assert wifi.connected is False
    assert [n.ssid for n in terminal.state.wifi.saved] == ["Cafe-Backoffice"]

    assert driver.shell("rm -rf /sdcard/PAX").exit_code == 0
    assert not any(path.startswith("/sdcard/PAX/") for path in terminal.state.files)
    with pytest.raises(AdbCommandError):
        driver.read_file("/sdcard/PAX/params/merchant.xml")
    refused = driver.shell("rm -rf /data")
    assert refused.exit_code == 1
    assert b"Permission denied" in refused.stderr
