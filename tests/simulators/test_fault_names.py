"""Fault names and simulator options are validated: a typo is an error, not a silent no-op.

A simulator that ignored ``?corupt_crc=1`` would run without the fault and the test using it
would pass while testing nothing. Unknown names, absurd numbers and malformed serials are
refused with one line that says what is valid.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from posdiag.drivers.errors import AddressError
from posdiag.simulators import registry
from posdiag.simulators.adb.state import AdbScenarioError
from posdiag.simulators.pytest_plugin import SimulatedAdb, SimulatedZvt


@pytest.mark.parametrize("family", ["zvt", "adb"])
def test_unknown_fault_is_refused_with_the_valid_names(family: str) -> None:
    create = (
        (lambda o: registry.create_zvt("fresh", o))
        if family == "zvt"
        else (lambda o: registry.create_adb("fresh", "android-generic", o))
    )
    with pytest.raises(AddressError) as caught:
        create({"corupt_crc": "1"})
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown fault 'corupt_crc'" in message
    for name in registry.fault_names(family):
        assert name in message


@pytest.mark.parametrize(
    ("family", "faults"),
    [
        ("zvt", ("endless_status", "flood_print", "hostile_text")),
        ("adb", ("flood_output", "hostile_text", "hang")),
    ],
)
def test_new_faults_are_settable_from_options(family: str, faults: tuple[str, ...]) -> None:
    for fault in faults:
        if family == "zvt":
            state = registry.create_zvt("fresh", {fault: "1"}).state
        else:
            state = registry.create_adb("fresh", "android-generic", {fault: ""}).state
        assert getattr(state.faults, fault) is True
        assert fault in registry.fault_names(family)


def test_known_non_fault_options_still_pass() -> None:
    sim = registry.create_zvt(
        "fresh", {"time_scale": "0", "t3": "2", "password": "123456", "bus": "x", "unit": "3"}
    )
    assert sim.state.password == "123456"
    adb = registry.create_adb("fresh", "pax-a920", {"model": "pax-a920", "timeout": "5"})
    assert adb.state.profile == "pax-a920"


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "86401", "fast"])
@pytest.mark.parametrize("option", ["time_scale", "latency", "stall_mid_frame", "answer_delay"])
def test_zvt_numbers_must_be_sane(option: str, value: str) -> None:
    with pytest.raises(AddressError, match=option):
        registry.create_zvt("fresh", {option: value})


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "86401"])
@pytest.mark.parametrize("option", ["time_scale", "latency", "stall"])
def test_adb_numbers_must_be_sane(option: str, value: str) -> None:
    with pytest.raises(AddressError, match=option):
        registry.create_adb("fresh", "android-generic", {option: value})


@pytest.mark.parametrize("value", ["0", "-9600", "1e12"])
def test_baud_must_be_sane(value: str) -> None:
    with pytest.raises(AddressError, match="baud"):
        registry.create_zvt("fresh", {"baud": value})


def test_fault_counters_are_whole_numbers() -> None:
    with pytest.raises(AddressError, match="whole number"):
        registry.create_zvt("fresh", {"corrupt_crc": "1.5"})
    with pytest.raises(AddressError, match="drop_packets"):
        registry.create_adb("fresh", "android-generic", {"drop_packets": "nan"})


@pytest.mark.parametrize("serial", ["A", "PC02P0CN01234", "SIM-000.1_x", "X" * 32])
def test_valid_serials(serial: str) -> None:
    assert registry.validate_serial(serial) == serial


@pytest.mark.parametrize(
    "serial", ["", "X" * 33, "a b", "\x1b[2J", "../etc", "PC02;rm", "²", "naïve", "a\nb"]
)
def test_invalid_serials(serial: str) -> None:
    with pytest.raises(ValueError, match="invalid serial") as caught:
        registry.validate_serial(serial)
    assert "\n" not in str(caught.value).replace(repr(serial), "")
    with pytest.raises(AddressError, match="invalid serial"):
        registry.create_adb("fresh", "android-generic", {"serial": serial or "a b"})


def test_zvt_fixture_refuses_an_unknown_fault(zvt_terminal: Callable[..., SimulatedZvt]) -> None:
    with pytest.raises(AddressError, match="unknown fault 'endless_statsu'"):
        zvt_terminal("fresh", endless_statsu=True)


def test_adb_fixture_refuses_an_unknown_fault(adb_terminal: Callable[..., SimulatedAdb]) -> None:
    with pytest.raises(AdbScenarioError, match="unknown fault or device option 'flod_output'"):
        adb_terminal(flod_output=True)
    assert adb_terminal(flood_output=True).state.faults.flood_output is True


@pytest.mark.parametrize("serial", ["PC02-X", "17F59B1", "17F59B1F00", "SIM000000001"])
def test_zvt_serials_are_hex_pairs(serial: str) -> None:
    with pytest.raises(ValueError, match="for a ZVT terminal: use 2 to 8 hex digits"):
        registry.validate_serial(serial, "zvt")
    with pytest.raises(AddressError, match="hex digits"):
        registry.create_zvt("fresh", {"serial": serial})


def test_zvt_serial_reaches_the_terminal() -> None:
    assert registry.validate_serial("5A000001", "zvt") == "5A000001"
    assert registry.create_zvt("fresh", {"serial": "5a000001"}).state.serial == "5A000001"
