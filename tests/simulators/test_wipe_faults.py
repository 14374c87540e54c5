"""The simulators' wipe faults, driven through the real drivers: refuse, lose power, lie.

``posdiag wipe`` must verify every step by reading the state back and must survive
interruptions, so its tests need terminals that misbehave in exactly those ways. These tests pin
down what the simulated ZVT and Android terminals do with the ``fail_command``,
``power_loss_at`` and ``lie_about`` faults:

* a refused step raises a typed error (or exits non-zero) and leaves the state as it was;
* a power cut leaves part of the step's effect, drops the link, and a new connection to the
  same simulator object sees that partial state (the fault fires once);
* a lie reports success over an unchanged state, which only a read-back catches.

Reconnecting: memory links are re-laid with a new ``MemoryAttachment`` on the same simulator
(``terminal.transport()`` of the fixtures does that); TCP listeners accept the next connection;
a pty line stays up and the driver's same transport works again after its timeout; a simulated
USB device has dropped off the bus and comes back with ``usb_device.plug()``.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from posdiag.agent.connect import open_terminal
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.adb.parsers import parse_diskstats
from posdiag.drivers.adb.terminal import AdbTerminal
from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import PosdiagError, TransportClosed
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.errors import ZvtCommandError, ZvtNotSupportedError, ZvtTimeoutError
from posdiag.drivers.zvt.messages import (
    EndOfDay,
    FeigRequest,
    LogOff,
    SetTerminalId,
    StatusEnquiry,
)
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators import registry
from posdiag.simulators.adb.shell import AndroidShell, PowerLoss
from posdiag.simulators.adb.state import AndroidState, load_android
from posdiag.simulators.pytest_plugin import AdbDriverFactory, SimulatedAdb, SimulatedZvt
from posdiag.simulators.zvt.device import command_matches
from posdiag.simulators.zvt.state import Faults, TerminalState, load_scenario

ZvtTerminalFactory = Callable[..., SimulatedZvt]
ZvtDriverFactory = Callable[..., ZvtDriver]
AdbTerminalFactory = Callable[..., SimulatedAdb]

TID = "52502000"
PAYMENT = "com.example.payment"
DOWNLOADS = "/sdcard/Download"
HIDDEN = f"{DOWNLOADS}/.receipts/last.txt"  # a hidden merchant file, for the .[!.]* glob
RM = f"rm -rf {DOWNLOADS}/* {DOWNLOADS}/.[!.]*"
WIPE_COMMANDS = {
    "pm clear": f"pm clear {PAYMENT}",
    "cmd wifi forget-network": "cmd wifi forget-network 0",
    "rm": RM,
}
"""The Android wipe's commands, by the fault prefix that names them."""


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """A power cut must not leave simulator threads or descriptors behind."""
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


# --- ZVT -----------------------------------------------------------------------------------------


def end_of_day(driver: ZvtDriver) -> None:
    driver.end_of_day()


def reset_tid(driver: ZvtDriver) -> None:
    driver.set_terminal_id(None)


def log_off(driver: ZvtDriver) -> None:
    driver.log_off()


def factory_reset(driver: ZvtDriver) -> None:
    driver.feig_factory_reset()


ZVT_STEPS: dict[str, tuple[str, Callable[[ZvtDriver], None]]] = {
    "End-of-Day": ("unsettled", end_of_day),
    "Set/Reset Terminal-ID": ("activated", reset_tid),
    "Log-Off": ("activated", log_off),
    "Feig factory reset": ("activated", factory_reset),
}
"""The ZVT wipe steps: scenario where each one changes something, and the driver call."""

ZVT_SPECS = {
    "End-of-Day": "End-of-Day",
    "Set/Reset Terminal-ID": "Set/Reset Terminal-ID",
    "Log-Off": "Log-Off",
    "Feig factory reset": "0FA10255",
}
"""How a fault names each step (the Feig reset by code: its name is every Feig request's)."""


def zvt_snapshot(state: TerminalState) -> dict[str, Any]:
    """Everything a ZVT wipe step may change, copied."""
    fields = (
        "terminal_id",
        "status_byte",
        "device_state",
        "keys_present",
        "host_operator",
        "host_address",
        "host_port",
        "merchant_lines",
        "transactions",
        "config_byte",
        "tlv_enabled",
        "registered",
    )
    return {name: copy.deepcopy(getattr(state, name)) for name in fields}


def registered(
    zvt_terminal: ZvtTerminalFactory,
    zvt_driver: ZvtDriverFactory,
    step: str,
    attach: str,
    **faults: str,
) -> tuple[SimulatedZvt, ZvtDriver]:
    """A simulated terminal for ``step`` with faults, and a driver registered with it."""
    scenario, _ = ZVT_STEPS[step]
    terminal = zvt_terminal(scenario, attach, **faults)
    driver = zvt_driver(terminal)
    driver.register()
    return terminal, driver


@pytest.mark.parametrize("attach", ["memory", "tcp"])
@pytest.mark.parametrize("step", list(ZVT_STEPS))
def test_zvt_refused_step_raises_and_changes_nothing(
    zvt_terminal: ZvtTerminalFactory, zvt_driver: ZvtDriverFactory, step: str, attach: str
) -> None:
    terminal, driver = registered(
        zvt_terminal, zvt_driver, step, attach, fail_command=ZVT_SPECS[step]
    )
    before = zvt_snapshot(terminal.state)

    with pytest.raises(ZvtCommandError) as refused:
        ZVT_STEPS[step][1](driver)

    # Not "unsupported": the wipe must not take a refusal for a step to skip.
    assert not isinstance(refused.value, ZvtNotSupportedError)
    assert refused.value.code == (0xFF if step == "Log-Off" else 0x83)
    assert zvt_snapshot(terminal.state) == before
    assert driver.status_enquiry().terminal_id == terminal.state.terminal_id  # link still up
    assert terminal.state.faults.fail_command == ZVT_SPECS[step]  # stays armed
    with pytest.raises(ZvtCommandError):
        ZVT_STEPS[step][1](driver)


def test_zvt_fail_command_by_hex_code_and_feig_function(
    zvt_terminal: ZvtTerminalFactory, zvt_driver: ZvtDriverFactory
) -> None:
    terminal, driver = registered(
        zvt_terminal, zvt_driver, "Set/Reset Terminal-ID", "memory", fail_command="06 1b"
    )
    with pytest.raises(ZvtCommandError, match="aborted Set/Reset Terminal-ID"):
        driver.set_terminal_id(None)
    assert terminal.state.terminal_id == TID

    # The factory reset's own code leaves the other Feig request (system info) working…
    terminal.state.faults.fail_command = "0FA10255"
    assert driver.feig_system_info().terminal_id == TID
    with pytest.raises(ZvtCommandError):
        driver.feig_factory_reset()
    # …the shared name refuses both.
    terminal.state.faults.fail_command = "Feig vendor request"
    with pytest.raises(ZvtCommandError):
        driver.feig_system_info()
    assert terminal.state.terminal_id == TID


def expect_zvt_partial(step: str, state: TerminalState, driver: ZvtDriver) -> None:
    """The documented partial effect of a power cut during ``step``, in state and read back."""
    status = driver.status_enquiry()
    if step == "End-of-Day":
        assert [tx.amount_cents for tx in state.transactions] == [
            958,
            1299,
        ]  # the first half (rounded down) settled
        totals = driver.turnover_totals()
        assert totals is not None and totals.count == 2
    elif step == "Set/Reset Terminal-ID":
        assert state.terminal_id is None and status.terminal_id is None
        assert state.status_byte == status.terminal_status == 0x00  # not yet 51
        assert state.keys_present and state.merchant_lines and state.host_operator
    elif step == "Feig factory reset":
        assert state.terminal_id is None and status.terminal_id is None
        assert state.status_byte == status.terminal_status == 0x51
        assert not state.keys_present
        assert state.merchant_lines and state.host_operator  # erased after the cut, so kept
    else:  # Log-Off: TLV off, config byte and registration not reset yet
        assert not state.tlv_enabled
        assert state.registered


def expect_zvt_done(step: str, state: TerminalState) -> None:
    """The full effect of ``step``."""
    if step == "End-of-Day":
        assert state.transactions == []
    elif step == "Set/Reset Terminal-ID":
        assert state.terminal_id is None and state.status_byte == 0x51
        assert state.merchant_lines == []
    elif step == "Feig factory reset":
        assert state.terminal_id is None and state.merchant_lines == []
        assert state.host_operator == ""
    else:
        assert not state.registered and state.config_byte == 0x86


@pytest.mark.parametrize("attach", ["memory", "tcp"])
@pytest.mark.parametrize("step", list(ZVT_STEPS))
def test_zvt_power_loss_leaves_a_partial_state_for_the_next_connection(
    zvt_terminal: ZvtTerminalFactory, zvt_driver: ZvtDriverFactory, step: str, attach: str
) -> None:
    terminal, driver = registered(
        zvt_terminal, zvt_driver, step, attach, power_loss_at=ZVT_SPECS[step]
    )

    with pytest.raises(TransportClosed):
        ZVT_STEPS[step][1](driver)

    assert terminal.state.faults.power_loss_at == ""  # fired once
    again = zvt_driver(terminal)  # memory: a new link to the same simulator; tcp: reconnect
    if step != "Log-Off":
        again.register()
    expect_zvt_partial(step, terminal.state, again)
    # The interrupted step can be run again and now completes.
    if step == "Log-Off":
        again.register()
    ZVT_STEPS[step][1](again)
    expect_zvt_done(step, terminal.state)


def test_zvt_power_loss_on_a_serial_line_is_silence_then_the_same_line_works(
    zvt_terminal: ZvtTerminalFactory, zvt_driver: ZvtDriverFactory
) -> None:
    terminal = zvt_terminal("activated", "pty", power_loss_at="Set/Reset Terminal-ID")
    driver = zvt_driver(terminal, t4=0.5)
    driver.register()

    with pytest.raises(ZvtTimeoutError, match="completion of Set/Reset Terminal-ID"):
        driver.set_terminal_id(None)

    # The pty stayed open: the rebooted terminal answers on the same line.
    driver.register()
    expect_zvt_partial("Set/Reset Terminal-ID", terminal.state, driver)


@pytest.mark.parametrize("attach", ["memory", "tcp"])
@pytest.mark.parametrize("step", list(ZVT_STEPS))
def test_zvt_lie_reports_success_over_an_unchanged_state(
    zvt_terminal: ZvtTerminalFactory, zvt_driver: ZvtDriverFactory, step: str, attach: str
) -> None:
    terminal, driver = registered(zvt_terminal, zvt_driver, step, attach, lie_about=ZVT_SPECS[step])
    before = zvt_snapshot(terminal.state)

    ZVT_STEPS[step][1](driver)  # no error: the terminal says it is done

    assert zvt_snapshot(terminal.state) == before
    # Read back, the work is visibly not done.
    if step == "End-of-Day":
        totals = driver.turnover_totals()
        assert totals is not None and totals.count == 3
    elif step != "Log-Off":
        driver.register()
        assert driver.status_enquiry().terminal_id == TID
        assert driver.feig_system_info().terminal_id == TID


def test_zvt_lie_about_a_command_the_terminal_would_refuse_still_says_done(
    zvt_terminal: ZvtTerminalFactory, zvt_driver: ZvtDriverFactory
) -> None:
    # With money in the store a real reset of the TID is refused; the liar claims success.
    terminal = zvt_terminal("unsettled", lie_about="Set/Reset Terminal-ID")
    driver = zvt_driver(terminal)
    driver.register()
    driver.set_terminal_id(None)
    assert terminal.state.terminal_id == TID and len(terminal.state.transactions) == 3


def test_zvt_wipe_verification_catches_the_lie(
    zvt_terminal: ZvtTerminalFactory, zvt_driver: ZvtDriverFactory
) -> None:
    terminal = zvt_terminal("activated", lie_about="Set/Reset Terminal-ID")
    wiped = ZvtTerminal(zvt_driver(terminal), "simulated")
    (reset,) = [step for step in wiped.wipe_plan() if step.name == "reset_terminal_id"]

    reset.run()

    assert reset.done() is False
    assert terminal.state.terminal_id == TID


def test_zvt_faults_from_string_options() -> None:
    simulator = registry.create_zvt(
        "activated",
        {
            "fail_command": "Set/Reset Terminal-ID",
            "power-loss-at": "06 50",
            "lie_about": "0FA10255",
            "corrupt_crc": "2",
            "split_writes": "1",
            "stall_mid_frame": "0.5",
        },
    )
    faults = simulator.state.faults
    assert faults.fail_command == "Set/Reset Terminal-ID"
    assert faults.power_loss_at == "06 50"
    assert faults.lie_about == "0FA10255"
    assert (faults.corrupt_crc, faults.split_writes, faults.stall_mid_frame) == (2, True, 0.5)
    assert registry.create_zvt("activated").state.faults == Faults()


def test_zvt_faults_from_a_toml_scenario_table() -> None:
    overrides = tomllib.loads(
        '[faults]\nfail_command = "End-of-Day"\npower_loss_at = "Log-Off"\nlie_about = "061B"\n'
    )
    faults = load_scenario("unsettled", overrides).faults
    assert (faults.fail_command, faults.power_loss_at, faults.lie_about) == (
        "End-of-Day",
        "Log-Off",
        "061B",
    )


def test_zvt_faults_through_a_simulator_address() -> None:
    address = parse_address("zvt+sim://activated?fail_command=Set/Reset+Terminal-ID")
    terminal = open_terminal(address)
    try:
        assert isinstance(terminal, ZvtTerminal)
        driver = terminal.driver
        driver.open()
        driver.register()
        with pytest.raises(ZvtCommandError):
            driver.set_terminal_id(None)
        assert driver.status_enquiry().terminal_id == TID
    finally:
        terminal.close()


def test_zvt_command_matches_names_and_codes() -> None:
    reset = SetTerminalId("000000")
    assert command_matches(reset, "Set/Reset Terminal-ID")
    assert command_matches(reset, " set/reset terminal-id ")
    assert command_matches(reset, "061B") and command_matches(reset, "06 1b")
    assert not command_matches(reset, "")
    assert not command_matches(reset, "0650")
    assert command_matches(EndOfDay("000000"), "06 50")
    assert command_matches(LogOff(), "Log-Off") and command_matches(LogOff(), "0602")
    assert not command_matches(StatusEnquiry("000000"), "Log-Off")
    factory = FeigRequest(0x0255, "000000")
    info = FeigRequest(0x0001)
    assert command_matches(factory, "0F A1 0255") and command_matches(factory, "0FA1")
    assert not command_matches(info, "0FA10255")
    assert command_matches(info, "Feig vendor request")


# --- Android (ADB) -------------------------------------------------------------------------------


def adb_snapshot(state: AndroidState) -> dict[str, Any]:
    """Everything an Android wipe step may change, copied."""
    return {
        "apps": {app.package: dict(app.data_files) for app in state.apps},
        "wifi": copy.deepcopy(state.wifi),
        "files": dict(state.files),
    }


def adb_unit(
    adb_terminal: AdbTerminalFactory, attach: str = "memory", **faults: str
) -> SimulatedAdb:
    """The activated generic unit with a hidden merchant file and the given shell faults.

    Faults go in through ``overrides``: the fixture's keyword options convert fault values
    by the type of their default and do not know string faults yet.
    """
    return adb_terminal(
        "activated",
        attach=attach,
        overrides={"files": {HIDDEN: "4711"}, "faults": faults},
    )


@pytest.mark.parametrize("attach", ["memory", "tcp"])
@pytest.mark.parametrize("prefix", list(WIPE_COMMANDS))
def test_adb_refused_command_exits_1_and_changes_nothing(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory, prefix: str, attach: str
) -> None:
    terminal = adb_unit(adb_terminal, attach, fail_command=prefix)
    driver = adb_driver(terminal)
    before = adb_snapshot(terminal.state)

    output = driver.shell(WIPE_COMMANDS[prefix])

    assert output.exit_code == 1 and not output.ok
    assert output.stderr.strip()
    assert adb_snapshot(terminal.state) == before
    assert driver.shell("echo alive").text == "alive\n"  # the device stays up
    assert terminal.state.faults.fail_command == prefix


def test_adb_refusal_messages_are_plausible() -> None:
    state = load_android("activated")
    shell = AndroidShell(state)
    state.faults.fail_command = "pm clear"
    assert "SecurityException" in shell.run(f"pm clear {PAYMENT}").stderr
    state.faults.fail_command = "rm"
    assert shell.run(RM).stderr.splitlines() == [
        f"rm: {DOWNLOADS}/pos: Read-only file system",
        f"rm: {DOWNLOADS}/settlement-2026-10.csv: Read-only file system",
        f"rm: {DOWNLOADS}/.[!.]*: Read-only file system",
    ]
    state.faults.fail_command = "cmd testharness"
    refused = shell.run("cmd testharness enable")
    assert refused.exit_code == 1 and "lock screen" in refused.stderr
    # A longer prefix singles out one package.
    state.faults.fail_command = "pm clear com.example.mdm"
    assert shell.run(f"pm clear {PAYMENT}").stdout == "Success\n"
    assert shell.run("pm clear com.example.mdm").exit_code == 1


def expect_adb_partial(prefix: str, state: AndroidState, driver: AdbDriver) -> None:
    """The documented partial effect of a power cut during ``prefix``, in state and read back."""
    if prefix == "pm clear":
        app = state.app(PAYMENT)
        assert app is not None
        assert app.data_files == {"shared_prefs/merchant.xml": "<mid/>"}  # 1 of 2 removed
        sizes = parse_diskstats(driver.shell("dumpsys diskstats").text).app_data_sizes
        assert sizes.get(PAYMENT)
    elif prefix == "cmd wifi forget-network":
        assert [n.ssid for n in state.wifi.saved] == ["Cafe-Backoffice"]
        assert driver.shell("cmd wifi list-networks").text.count("\n") == 2  # header + one
    else:  # rm: only the first path the globs matched ("pos") went
        assert sorted(state.files) == [HIDDEN, f"{DOWNLOADS}/settlement-2026-10.csv"]
        listed = driver.shell(f"ls -1Ap {DOWNLOADS}").text.split()
        assert listed == [".receipts/", "settlement-2026-10.csv"]


@pytest.mark.parametrize("attach", ["memory", "tcp"])
@pytest.mark.parametrize("prefix", list(WIPE_COMMANDS))
def test_adb_power_loss_leaves_a_partial_state_for_the_next_connection(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory, prefix: str, attach: str
) -> None:
    terminal = adb_unit(adb_terminal, attach, power_loss_at=prefix)
    driver = adb_driver(terminal)

    with pytest.raises(TransportClosed):
        driver.shell(WIPE_COMMANDS[prefix])

    assert terminal.state.faults.power_loss_at == ""  # fired once
    again = adb_driver(terminal)  # memory: a new link to the same simulator; tcp: reconnect
    expect_adb_partial(prefix, terminal.state, again)
    # The interrupted command can be run again and now completes.
    assert again.shell(WIPE_COMMANDS[prefix]).ok
    after = adb_snapshot(terminal.state)
    if prefix == "pm clear":
        assert after["apps"][PAYMENT] == {}
    elif prefix == "rm":
        assert after["files"] == {}


def test_adb_power_loss_over_usb_drops_the_device_until_it_is_plugged_again(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_terminal(
        "activated", attach="usb", overrides={"faults": {"power_loss_at": "pm clear"}}
    )
    driver = adb_driver(terminal)

    with pytest.raises(PosdiagError):
        driver.shell(f"pm clear {PAYMENT}")

    assert terminal.usb_device is not None and not terminal.usb_device.attached
    terminal.usb_device.plug()  # the unit has rebooted and enumerates again
    again = adb_driver(terminal)
    assert again.shell("pm list packages").ok
    app = terminal.state.app(PAYMENT)
    assert app is not None and len(app.data_files) == 1


def test_adb_power_loss_mid_line_keeps_the_commands_before_it() -> None:
    state = load_android("activated")
    state.faults.power_loss_at = "rm"
    with pytest.raises(PowerLoss, match="rm -rf"):
        AndroidShell(state).run(f"pm clear {PAYMENT} && {RM}")
    app = state.app(PAYMENT)
    assert app is not None and app.data_files == {}
    assert sorted(state.files) == [f"{DOWNLOADS}/settlement-2026-10.csv"]


@pytest.mark.parametrize("attach", ["memory", "tcp"])
@pytest.mark.parametrize(
    ("prefix", "stdout"),
    [
        pytest.param("pm clear", "Success\n", id="pm clear"),
        pytest.param(
            "cmd wifi forget-network",
            "Forget successful for netId 0\n",
            id="cmd wifi forget-network",
        ),
        pytest.param("rm", "", id="rm"),
    ],
)
def test_adb_lie_reports_success_over_an_unchanged_state(
    adb_terminal: AdbTerminalFactory,
    adb_driver: AdbDriverFactory,
    prefix: str,
    stdout: str,
    attach: str,
) -> None:
    terminal = adb_unit(adb_terminal, attach, lie_about=prefix)
    driver = adb_driver(terminal)
    before = adb_snapshot(terminal.state)

    output = driver.shell(WIPE_COMMANDS[prefix])

    assert (output.exit_code, output.text, output.stderr) == (0, stdout, b"")
    assert adb_snapshot(terminal.state) == before
    # Read back, the work is visibly not done.
    sizes = parse_diskstats(driver.shell("dumpsys diskstats").text).app_data_sizes
    assert sizes.get(PAYMENT)
    assert "Cafe-Beispiel" in driver.shell("cmd wifi list-networks").text
    assert "settlement-2026-10.csv" in driver.shell(f"ls -1Ap {DOWNLOADS}").text


def test_adb_wipe_verification_catches_the_lie(
    adb_terminal: AdbTerminalFactory, adb_driver: AdbDriverFactory
) -> None:
    terminal = adb_unit(adb_terminal, lie_about="cmd wifi forget-network")
    wiped = AdbTerminal(adb_driver(terminal), "simulated")
    (forget,) = [step for step in wiped.wipe_plan() if step.name == "forget_wifi"]

    forget.run()

    assert forget.done() is False
    assert len(terminal.state.wifi.saved) == 2


def test_adb_faults_from_string_options() -> None:
    simulator = registry.create_adb(
        "activated",
        options={
            "lie_about": "pm clear",
            "fail-command": "rm",
            "power_loss_at": "cmd wifi forget-network",
            "stall": "0.5",
            "vanish_after": "3",
            "split_packets": "1",
        },
    )
    faults = simulator.state.faults
    assert faults.lie_about == "pm clear"
    assert faults.fail_command == "rm"
    assert faults.power_loss_at == "cmd wifi forget-network"
    assert (faults.stall, faults.vanish_after, faults.split_packets) == (0.5, 3, True)
    assert registry.create_adb("activated").state.faults.lie_about == ""


def test_adb_faults_from_a_toml_scenario_table() -> None:
    overrides = tomllib.loads('[faults]\nfail_command = "pm clear"\nlie_about = "rm"\n')
    faults = load_android("activated", "sunmi-p2", overrides).faults
    assert (faults.fail_command, faults.lie_about, faults.power_loss_at) == (
        "pm clear",
        "rm",
        "",
    )
