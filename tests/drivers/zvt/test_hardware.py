"""The read-only part of the driver suite against a real terminal.

Run with a terminal address in ``POSDIAG_ZVT_DEVICE``, e.g.::

    POSDIAG_ZVT_DEVICE='zvt+serial:///dev/ttyUSB0?password=000000' pytest -m hardware
    POSDIAG_ZVT_DEVICE='zvt+tcp://10.0.0.5:20007' pytest -m hardware

Only commands that change nothing a merchant cares about are sent: Registration (undone by the
Log-Off every test ends with), Status-Enquiry, Print System Configuration (to the ECR, not on
paper), Send Turnover Totals (an X-report, no settlement) and Log-Off. Never End-of-Day, never
a TID reset, never a factory reset. The password comes from the address (``?password=``), else
``POSDIAG_ZVT_PASSWORD``, else ``000000``; timers may be set per address (``?t3=10``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from posdiag.drivers.address import Address, parse_address
from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import ZvtDriver, ZvtTimers
from posdiag.drivers.zvt.printout import parse_printout

DEVICE_ENV = "POSDIAG_ZVT_DEVICE"
PASSWORD_ENV = "POSDIAG_ZVT_PASSWORD"
DEVICE = os.environ.get(DEVICE_ENV, "").strip()

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(
        not DEVICE,
        reason=f"no real terminal: set {DEVICE_ENV} to its address "
        "(e.g. zvt+serial:///dev/ttyUSB0?password=000000 or zvt+tcp://10.0.0.5:20007)",
    ),
]


def _transport(address: Address) -> tuple[Transport, Link]:
    if address.family != "zvt":
        pytest.fail(f"{DEVICE_ENV}={DEVICE!r} is not a ZVT terminal")
    if address.link == "tcp":
        host, port = address.host_port
        return TcpTransport(host, port), Link.TCP
    if address.link == "sim":  # a simulator, to try this module without hardware
        from posdiag.simulators.attach import register_url_handler

        register_url_handler()
        options = {k: v for k, v in address.options.items() if k in ("time_scale", "baud")}
        options.setdefault("time_scale", "0")
        return SerialTransport(f"possim://zvt/{address.target}?{urlencode(options)}"), Link.SERIAL
    return SerialTransport(address.target, baudrate=address.option_int("baud", 9600)), Link.SERIAL


@pytest.fixture
def driver() -> Iterator[ZvtDriver]:
    """An open, registered driver for the terminal; logged off and closed afterwards."""
    address = parse_address(DEVICE)
    transport, link = _transport(address)
    default = ZvtTimers()
    timers = ZvtTimers(
        t1=address.option_float("t1", default.t1),
        t2=address.option_float("t2", default.t2),
        t3=address.option_float("t3", default.t3),
        t4=address.option_float("t4", default.t4),
    )
    password = address.options.get("password") or os.environ.get(PASSWORD_ENV) or "000000"
    zvt = ZvtDriver(transport, link, password=password, timers=timers)
    zvt.open()
    try:
        zvt.register()
        yield zvt
    finally:
        try:
            zvt.log_off()  # give the terminal its menu back, whatever the test did
        except PosdiagError:
            pass
        finally:
            zvt.close()


def test_register(driver: ZvtDriver) -> None:
    # The fixture registered already; a second Registration must be accepted just the same.
    completion = driver.register()
    assert completion.NAME == "Completion"


def test_status_enquiry(driver: ZvtDriver) -> None:
    report = driver.status_enquiry()
    assert 0 <= report.terminal_status <= 0xFF
    if report.terminal_id is not None:
        assert len(report.terminal_id) == 8
        assert report.terminal_id.isdigit()
    # Asking twice gives the same identity: nothing about the unit changed in between.
    again = driver.status_enquiry()
    assert (again.serial, again.device_name, again.terminal_id) == (
        report.serial,
        report.device_name,
        report.terminal_id,
    )


def test_print_system_configuration(driver: ZvtDriver) -> None:
    lines = driver.print_system_configuration()
    assert lines, "the terminal printed nothing to the ECR (config byte 8E asks it to)"
    assert all(isinstance(line, str) for line in lines)
    facts = parse_printout(lines)
    assert facts.vendor_labels
    report = driver.status_enquiry()
    if facts.serial and report.serial:
        assert facts.serial.upper().lstrip("0") == report.serial.upper().lstrip("0")
    if facts.terminal_id and report.terminal_id:
        assert facts.terminal_id == report.terminal_id


def test_turnover_totals(driver: ZvtDriver) -> None:
    totals = driver.turnover_totals()
    if totals is not None:
        assert totals.count >= 0
        assert totals.total_cents >= 0
        assert totals.receipt_first <= totals.receipt_last or totals.count == 0
    # An X-report settles nothing: the store reads the same a second time.
    assert driver.turnover_totals() == totals


def test_log_off(driver: ZvtDriver) -> None:
    driver.log_off()
    # The terminal still answers after Log-Off (the fixture logs off once more at the end).
    assert 0 <= driver.status_enquiry().terminal_status <= 0xFF
