"""The simulated ZVT terminal: scenarios, state changes, timing and its printout."""

from __future__ import annotations

import os
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.messages import (
    FEIG_FACTORY_RESET,
    AbortFromTerminal,
    Completion,
    EndOfDay,
    FeigRequest,
    LogOff,
    NegativeAck,
    PositiveAck,
    Registration,
    SetTerminalId,
    StatusInformation,
)
from posdiag.drivers.zvt.payloads import decode_totals
from posdiag.drivers.zvt.printout import parse_printout
from posdiag.simulators.pytest_plugin import SimulatedZvt
from posdiag.simulators.registry import create_zvt, zvt_overrides
from posdiag.simulators.zvt.device import Reply, ZvtDeviceModel
from posdiag.simulators.zvt.printout import render_printout
from posdiag.simulators.zvt.state import (
    ScenarioError,
    TerminalState,
    available_scenarios,
    load_scenario,
    state_from_dict,
)

SHIPPED = ["activated", "fresh", "low-battery", "no-network", "tampered", "unsettled"]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    fds_before = len(os.listdir("/proc/self/fd"))
    yield
    assert [t.name for t in threading.enumerate() if t not in threads_before] == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


def run(model: ZvtDeviceModel, message: Any) -> Reply:
    """Handle a command and apply its effect, as the engine does once it has been delivered."""
    reply = model.handle(message)
    if reply.effect is not None:
        reply.effect()
    return reply


def last(reply: Reply) -> object:
    return reply.sequence[-1][1] if reply.sequence else reply.first


# --- scenarios -------------------------------------------------------------------------------


def test_shipped_scenarios_are_listed() -> None:
    assert available_scenarios() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_scenario_loads(name: str) -> None:
    state = load_scenario(name)
    assert state.description and state.description != "base defaults"
    assert state.serial == "17F59B1F"
    assert state.password == "000000"
    assert [itf.name for itf in state.interfaces] == ["eth0", "usb0"]
    assert parse_printout(render_printout(state)).serial == state.serial


def test_scenarios_differ_where_they_say() -> None:
    fresh, activated = load_scenario("fresh"), load_scenario("activated")
    assert (fresh.terminal_id, fresh.status_byte, fresh.keys_present) == (None, 0x51, False)
    assert (activated.terminal_id, activated.status_byte, activated.keys_present) == (
        "52502000",
        0x00,
        True,
    )
    assert load_scenario("low-battery").battery_voltage_mv == 2410
    no_network = load_scenario("no-network")
    assert not no_network.host_reachable
    assert not any(itf.up for itf in no_network.interfaces)
    assert load_scenario("tampered").device_state == 0x03
    unsettled = load_scenario("unsettled")
    assert [(tx.amount_cents, tx.scheme, tx.receipt_number) for tx in unsettled.transactions] == [
        (2500, "girocard", 1),
        (958, "mastercard", 2),
        (1299, "visa", 3),
    ]
    assert unsettled.receipt_counter == 4
    assert all(not load_scenario(name).transactions for name in SHIPPED if name != "unsettled")


def test_scenarios_are_independent_copies() -> None:
    first = load_scenario("unsettled")
    first.transactions.clear()
    first.interfaces[0].up = False
    second = load_scenario("unsettled")
    assert len(second.transactions) == 3
    assert second.interfaces[0].up


def test_unknown_scenario_names_the_available_ones() -> None:
    with pytest.raises(ScenarioError, match="unknown ZVT scenario 'activatd'") as caught:
        load_scenario("activatd")
    assert isinstance(caught.value, PosdiagError)
    for name in SHIPPED:
        assert name in str(caught.value)
    assert "base" not in str(caught.value).split("available:")[1]
    with pytest.raises(ScenarioError, match="unknown ZVT scenario"):
        create_zvt("nonexistent")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[terminal]\nserail = "1"\n', r"\[terminal\]: unknown keys serail"),
        ("[faults]\ndrop_acks = 1\n", r"\[faults\]: unknown keys drop_acks"),
        ("[timing]\nbaudrate = 9600\n", r"\[timing\]: unknown keys baudrate"),
        ("[[transactions]]\namount = 5\n", r"\[\[transactions\]\]: unknown keys amount"),
        ('[[interfaces]]\nname = "eth0"\nipv4 = "x"\n', r"\[\[interfaces\]\]: unknown keys ipv4"),
        ("[termnal]\nterminal_id = '1'\n", r"unknown sections termnal"),
    ],
)
def test_unknown_toml_keys_are_named(toml: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        state_from_dict(tomllib.loads(toml), "my.toml")
    with pytest.raises(ScenarioError, match=f"scenario 'fresh'.*{message}"):
        load_scenario("fresh", tomllib.loads(toml))


def test_overrides_merge_over_the_scenario() -> None:
    state = load_scenario(
        "activated", {"terminal": {"password": "123456"}, "timing": {"baud": 115200}}
    )
    assert state.password == "123456"
    assert state.timing.baud == 115200
    assert state.timing.latency == 0.05  # untouched keys of the section survive
    assert state.terminal_id == "52502000"


def test_options_become_overrides() -> None:
    overrides = zvt_overrides(
        {
            "time_scale": "0",
            "baud": "19200",
            "drop_ack": "2",
            "babble": "1",
            "split-writes": "yes",
            "garbage": "fe00",
            "stall_mid_frame": "0.5",
        }
    )
    assert overrides == {
        "timing": {"scale": 0.0, "baud": 19200},
        "faults": {
            "drop_ack": 2,
            "babble": True,
            "split_writes": True,
            "garbage": "fe00",
            "stall_mid_frame": 0.5,
        },
    }
    state = create_zvt("fresh", {"garbage": "fe00", "corrupt_crc": "3"}).state
    assert state.faults.garbage == b"\xfe\x00"
    assert state.faults.corrupt_crc == 3
    with pytest.raises(PosdiagError, match="baud='fast' is not a number"):
        zvt_overrides({"baud": "fast"})


# --- behaviour and state changes (device model) ------------------------------------------------


def test_end_of_day_reports_and_empties_the_store() -> None:
    model = ZvtDeviceModel(load_scenario("unsettled"))
    reply = run(model, EndOfDay("000000"))
    assert isinstance(reply.first, PositiveAck)
    infos = [m for _, m in reply.sequence if isinstance(m, StatusInformation)]
    totals = decode_totals(next(b.data for b in infos[0].bmps() if b.bmp_id == 0x60))
    assert (totals.count, totals.total_cents) == (3, 4757)
    assert isinstance(last(reply), Completion)
    assert model.state.transactions == []
    assert model.state.store_empty


def test_end_of_day_without_network_keeps_the_store() -> None:
    state = load_scenario("unsettled")
    state.host_reachable = False
    reply = run(ZvtDeviceModel(state), EndOfDay("000000"))
    assert isinstance(last(reply), AbortFromTerminal)
    assert len(state.transactions) == 3


def test_terminal_id_reset_unbinds_the_merchant() -> None:
    model = ZvtDeviceModel(load_scenario("activated"))
    reply = run(model, SetTerminalId("000000", None))
    assert isinstance(last(reply), Completion)
    state = model.state
    assert state.terminal_id is None
    assert (state.status_byte, state.device_state, state.keys_present) == (0x51, 0x01, False)
    assert (state.host_operator, state.host_address, state.host_port) == ("", "", 0)
    assert state.merchant_lines == []
    facts = parse_printout(render_printout(state))
    assert facts.terminal_id is None
    assert facts.merchant_lines == ()
    assert facts.host is None


def test_terminal_id_reset_is_refused_while_unsettled() -> None:
    model = ZvtDeviceModel(load_scenario("unsettled"))
    reply = run(model, SetTerminalId("000000", None))
    abort = last(reply)
    assert isinstance(abort, AbortFromTerminal)
    assert abort.result_code == 0x83
    assert reply.effect is None
    assert model.state.terminal_id == "52502000"


def test_log_off_resets_the_config_byte() -> None:
    model = ZvtDeviceModel(load_scenario("activated"))
    run(model, Registration("000000", 0xBA, tlv=()))
    assert (model.state.config_byte, model.state.tlv_enabled, model.state.registered) == (
        0xBA,
        True,
        True,
    )
    reply = run(model, LogOff())
    assert reply.sequence == []  # 80 00 only, no completion (spec §2.24)
    assert (model.state.config_byte, model.state.tlv_enabled, model.state.registered) == (
        0x86,
        False,
        False,
    )


def test_factory_reset() -> None:
    model = ZvtDeviceModel(load_scenario("activated"))
    run(model, Registration("000000", 0x8E, tlv=()))
    reply = run(model, FeigRequest(FEIG_FACTORY_RESET, "000000"))
    assert reply.restart
    state = model.state
    assert state.terminal_id is None
    assert (state.status_byte, state.device_state, state.keys_present) == (0x51, 0x01, False)
    assert (state.config_byte, state.tlv_enabled, state.registered) == (0x86, False, False)
    assert state.merchant_lines == []


def test_factory_reset_is_refused_while_unsettled() -> None:
    model = ZvtDeviceModel(load_scenario("unsettled"))
    reply = run(model, FeigRequest(FEIG_FACTORY_RESET, "000000"))
    assert isinstance(last(reply), AbortFromTerminal)
    assert model.state.terminal_id == "52502000"


def test_wrong_password_is_refused_before_anything_happens() -> None:
    model = ZvtDeviceModel(load_scenario("unsettled"))
    reply = run(model, EndOfDay("999999"))
    assert isinstance(reply.first, NegativeAck)
    assert reply.first.error_code == 0x37
    assert len(model.state.transactions) == 3


# --- the engine over a link --------------------------------------------------------------------


def test_state_changes_through_the_engine(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    terminal = zvt_terminal("unsettled")
    driver = zvt_driver(terminal)
    driver.register()
    driver.end_of_day()
    assert terminal.state.transactions == []
    driver.set_terminal_id(None)
    assert terminal.state.terminal_id is None
    driver.log_off()
    assert terminal.state.config_byte == 0x86
    assert terminal.simulator.commands_received == 4


def test_factory_reset_restarts_and_keeps_serving(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    terminal = zvt_terminal("activated")
    driver = zvt_driver(terminal)
    driver.register()
    driver.feig_factory_reset()
    assert terminal.state.terminal_id is None
    report = driver.status_enquiry()
    assert (report.terminal_id, report.terminal_status) == (None, 0x51)


class FrameSizes:
    """Memory manipulator: the sizes of the frames the simulator writes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, data: bytes) -> Iterable[bytes]:
        if data[:2] == b"\x10\x02":
            self.sizes.append(len(data))
        return [data]


def test_printout_takes_line_time_at_9600_baud(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    # 8N2 costs 11 bit times a byte. A lower bound only: a loaded machine is never faster.
    frames = FrameSizes()
    terminal = zvt_terminal("activated", time_scale=1, baud=9600, manipulator_device=frames)
    driver = zvt_driver(terminal)
    driver.register()
    frames.sizes.clear()
    started = time.monotonic()

    lines = driver.print_system_configuration()

    took = time.monotonic() - started
    sent = sum(frames.sizes)
    line_time = sent * 11 / 9600
    assert sent > 1000  # the printout is a real, kilobyte-sized block
    assert took >= 0.8 * line_time
    assert took < 3 * line_time + 2.0
    assert parse_printout(lines).serial == terminal.state.serial


def test_time_scale_zero_is_fast(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    terminal = zvt_terminal("activated", baud=9600)  # the fixture's default time_scale is 0
    assert terminal.state.timing.scale == 0
    driver = zvt_driver(terminal)
    driver.register()
    started = time.monotonic()
    driver.print_system_configuration()
    assert time.monotonic() - started < 1.0


# --- the printout ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["activated", "no-network", "low-battery", "tampered"])
def test_printout_parses_back_into_the_state(name: str) -> None:
    state: TerminalState = load_scenario(name)
    facts = parse_printout(render_printout(state))

    assert facts.vendor_labels == "feig"
    assert facts.serial == state.serial
    assert facts.hardware == state.model
    assert facts.battery_voltage_mv == state.battery_voltage_mv
    assert facts.temperature_c == state.temperature_c
    assert facts.terminal_id == state.terminal_id
    assert facts.host_operator == (state.host_operator or None)
    assert facts.host == (f"{state.host_address}:{state.host_port}" if state.host_address else None)
    assert list(facts.merchant_lines) == state.merchant_lines
    assert facts.currency == state.currency
    assert facts.firmware["Firmware"] == state.firmware
    assert facts.firmware["Terminal application"] == state.sw_version
    assert facts.tms_url == state.tms_url
    assert [(i.name, i.up, i.mac) for i in facts.interfaces] == [
        (i.name, i.up, i.mac) for i in state.interfaces
    ]
    assert [i.ip for i in facts.interfaces] == [i.ip if i.up else None for i in state.interfaces]
    assert f"ZVT serial {state.timing.baud} 8N2" in facts.ecr_ports
    assert facts.unparsed == ()


def test_printout_follows_the_live_state() -> None:
    state = load_scenario("activated")
    state.battery_voltage_mv = 2870  # printed in volts with two decimals, like a real unit
    state.serial = "0BADCAFE"
    state.timing.baud = 115200
    facts = parse_printout(render_printout(state))
    assert facts.battery_voltage_mv == 2870
    assert facts.serial == "0BADCAFE"
    assert "ZVT serial 115200 8N2" in facts.ecr_ports
