"""Turn an address into a live Terminal of the right family.

The only place that knows which transport and driver an address needs. Simulated terminals
(``zvt+sim://SCENARIO``) are reached through pyserial's ``possim://`` URL handler, so a check
against a simulator goes through exactly the same serial code path as a real RS-232 cable.
"""

from __future__ import annotations

import os
from urllib.parse import urlencode

from posdiag.drivers.address import Address
from posdiag.drivers.catalogue import load_catalogue
from posdiag.drivers.errors import AddressError, PosdiagError
from posdiag.drivers.model import Terminal
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import ZvtDriver, ZvtTimers
from posdiag.drivers.zvt.terminal import ZvtTerminal

PASSWORD_ENV = "POSDIAG_ZVT_PASSWORD"
DEFAULT_PASSWORD = "000000"
DRIVER_OPTIONS = frozenset({"password", "t1", "t2", "t3", "t4", "currency", "trace"})


def zvt_password(address: Address, override: str | None = None) -> str:
    """The ZVT password: command line, then address option, then environment, then default."""
    password = (
        override
        or address.options.get("password")
        or os.environ.get(PASSWORD_ENV)
        or DEFAULT_PASSWORD
    )
    # isascii: str.isdigit() also accepts "１２３４５６" and "²", which cannot be BCD-encoded.
    if len(password) != 6 or not (password.isascii() and password.isdigit()):
        raise AddressError("the ZVT password must be exactly 6 digits")
    return password


def zvt_timers(address: Address) -> ZvtTimers:
    """Protocol timers, adjustable per address (``?t2=2&t3=10``) for slow or odd terminals."""
    default = ZvtTimers()
    return ZvtTimers(
        t1=address.option_float("t1", default.t1),
        t2=address.option_float("t2", default.t2),
        t3=address.option_float("t3", default.t3),
        t4=address.option_float("t4", default.t4),
    )


def zvt_transport(address: Address) -> tuple[Transport, Link]:
    """The transport and framing for a ZVT address."""
    if address.link == "tcp":
        host, port = address.host_port
        return TcpTransport(host, port), Link.TCP
    if address.link == "sim":
        # Forward simulator options (faults, timing) to the simulated terminal; protocol
        # options (password, timers) stay with the driver.
        sim_options = {
            key: value for key, value in address.options.items() if key not in DRIVER_OPTIONS
        }
        sim_options.setdefault("time_scale", "0")
        from posdiag.simulators.zvt.state import available_scenarios

        if address.target not in available_scenarios():
            raise AddressError(
                f"unknown simulated scenario {address.target!r} "
                f"(available: {', '.join(available_scenarios())})"
            )
        from posdiag.simulators.registry import zvt_overrides

        try:
            zvt_overrides(sim_options)  # a bad option is the user's typo, not an unreachable unit
        except PosdiagError as exc:
            raise AddressError(str(exc)) from None
        from posdiag.simulators.attach import register_url_handler

        register_url_handler()
        url = f"possim://zvt/{address.target}?{urlencode(sim_options)}"
        return SerialTransport(url), Link.SERIAL
    baud = address.option_int("baud", 9600)
    target = address.target
    trace = address.options.get("trace")
    if trace:
        # pyserial's spy:// writes a hex dump of every byte both ways: the technician's
        # protocol trace. It holds merchant data, so it is only written when asked for.
        target = f"spy://{target}?{urlencode({'file': trace})}"
    return SerialTransport(target, baudrate=baud), Link.SERIAL


def open_terminal(address: Address, *, password: str | None = None) -> Terminal:
    """A Terminal for the address (not yet connected: the first probe opens the line)."""
    if address.family != "zvt":
        raise AddressError(f"no driver for the {address.family!r} family yet")
    transport, link = zvt_transport(address)
    driver = ZvtDriver(
        transport,
        link,
        password=zvt_password(address, password),
        timers=zvt_timers(address),
        currency=address.option_int("currency", 978),
    )
    return ZvtTerminal(driver, str(address), load_catalogue())
