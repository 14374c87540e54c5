"""Turn an address into a live Terminal of the right family.

The only place that knows which transport and driver an address needs. Simulated terminals
(``zvt+sim://SCENARIO``) are reached through pyserial's ``possim://`` URL handler, so a check
against a simulator goes through exactly the same serial code path as a real RS-232 cable.
nexo terminals (``nexo+https://HOST:8443/nexo``) take their shared key and CA from the address,
else from the station settings' ``[nexo]`` table (:func:`use_nexo_settings`, set when the
settings are read), else from ``POSDIAG_NEXO_*`` variables; a simulated one is a real HTTPS
address on loopback, so a check against it runs the real TLS and HTTP code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from posdiag.drivers.errors import AddressError, PosdiagError
from posdiag.drivers.i18n import _

from .logs import get_logger

# Each family's driver and transports are imported where that family is opened: a ZVT check
# never loads the ADB driver (cryptography for its keys) or pyusb, an Android one never loads
# the ZVT protocol, and a `posdiag check` process starts in a fraction of the time.
if TYPE_CHECKING:
    from posdiag.drivers.address import Address
    from posdiag.drivers.catalogue import Catalogue
    from posdiag.drivers.model import Terminal
    from posdiag.drivers.nexo.keys import NexoSettings
    from posdiag.drivers.transport.base import Transport
    from posdiag.drivers.zvt.connection import Link
    from posdiag.drivers.zvt.driver import ZvtTimers

log = get_logger(__name__)

PASSWORD_ENV = "POSDIAG_ZVT_PASSWORD"
DEFAULT_PASSWORD = "000000"
DRIVER_OPTIONS = frozenset({"password", "t1", "t2", "t3", "t4", "currency", "trace"})
NEXO_TIMEOUT_S = 15.0
"""One nexo request's time limit unless the address says ``?timeout=`` (a host diagnosis has
its own, longer one)."""

_nexo_settings: NexoSettings | None = None


def use_nexo_settings(settings: NexoSettings | None) -> None:
    """The station settings' ``[nexo]`` table for every nexo terminal opened from now on.

    Set once when the settings are read (:func:`posdiag.agent.settings.apply_settings`); a
    station's workers read it from their threads, where click's context is not available.
    """
    global _nexo_settings
    _nexo_settings = settings


def nexo_terminal(address: Address, settings: NexoSettings | None = None) -> Terminal:
    """A nexo (Adyen Terminal API) terminal over HTTPS.

    Args:
        address: ``nexo+https://HOST[:PORT][/PATH]?poiid=&ca=&key=``.
        settings: the ``[nexo]`` settings (default: the station's, :func:`use_nexo_settings`).

    Raises:
        AddressError: no CA for the certificate, or a key file or setting that cannot be used
            (``NexoConfigError``), before anything is sent.
    """
    from posdiag.drivers.catalogue import load_catalogue
    from posdiag.drivers.nexo.driver import NexoDriver, default_sale_id
    from posdiag.drivers.nexo.keys import resolve_ca, resolve_key
    from posdiag.drivers.nexo.terminal import NexoTerminal
    from posdiag.drivers.nexo.transport import HttpsTransport

    settings = settings if settings is not None else _nexo_settings
    timeout = address.option_float("timeout", NEXO_TIMEOUT_S, maximum=600.0)
    ca_file, _adyen_roots = resolve_ca(address.options.get("ca"), settings)
    key, source = resolve_key(address.options.get("key"), settings)
    poiid = address.options.get("poiid")
    host, port = address.host_port
    transport = HttpsTransport(
        host, port, address.url_path, ca_file=ca_file, poiid=poiid, timeout_s=timeout
    )
    driver = NexoDriver(transport, key=key, poiid=poiid, sale_id=default_sale_id())
    log.info("nexo.open", address=str(address), key_from=source, encrypted=key is not None)
    return NexoTerminal(driver, str(address), load_catalogue())


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
        raise AddressError(_("the ZVT password must be exactly 6 digits"))
    return password


def zvt_timers(address: Address) -> ZvtTimers:
    """Protocol timers, adjustable per address (``?t2=2&t3=10``) for slow or odd terminals."""
    from posdiag.drivers.zvt.driver import ZvtTimers

    default = ZvtTimers()
    return ZvtTimers(
        t1=address.option_float("t1", default.t1),
        t2=address.option_float("t2", default.t2),
        t3=address.option_float("t3", default.t3),
        t4=address.option_float("t4", default.t4),
    )


def zvt_transport(address: Address) -> tuple[Transport, Link]:
    """The transport and framing for a ZVT address."""
    from posdiag.drivers.transport.serialport import SerialTransport
    from posdiag.drivers.zvt.connection import Link

    if address.link == "tcp":
        from posdiag.drivers.transport.tcp import TcpTransport

        host, port = address.host_port
        return TcpTransport(host, port), Link.TCP
    if address.link == "sim":
        # Forward simulator options (faults, timing) to the simulated terminal; protocol
        # options (password, timers) stay with the driver.
        sim_options = {
            key: value for key, value in address.options.items() if key not in DRIVER_OPTIONS
        }
        sim_options.setdefault("time_scale", "0")
        if "bus" in sim_options:  # a terminal on a simulated bus: keep its simulator and state
            from posdiag.simulators.attach import register_url_handler

            register_url_handler()
            return SerialTransport(f"possim://zvt/bus?bus={sim_options['bus']}"), Link.SERIAL
        from posdiag.simulators.registry import require_scenario, zvt_overrides

        require_scenario("zvt", address.target)

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


def _usb_selector(target: str) -> dict[str, Any]:
    """``adb+usb://SERIAL``, ``adb+usb://VID:PID`` (hex) or ``adb+usb://`` (the only device)."""
    if not target:
        return {}
    vid, sep, pid = target.partition(":")
    if sep:
        try:
            return {"vid": int(vid, 16), "pid": int(pid, 16)}
        except ValueError:
            raise AddressError(
                _("{target!r} is not a USB VID:PID in hex (e.g. 2fb8:2201)").format(target=target)
            ) from None
    return {"serial": target}


def adb_usb_vendors(catalogue: Catalogue) -> frozenset[int]:
    """USB vendor ids of the Android terminals the catalogue knows (PAX ``2fb8``…).

    A device of one of them without an ADB interface is taken for a unit whose USB debugging is
    off; any other vendor's (a phone, a mouse) is none of posdiag's business unless named.
    """
    return frozenset(
        int(usb_id.split(":", 1)[0], 16)
        for entry in catalogue.models
        if entry.family == "adb"
        for usb_id in entry.usb
    )


def adb_terminal(address: Address, *, on_auth_prompt: Callable[[], None] | None = None) -> Terminal:
    """An Android terminal over TCP, USB, or an in-process simulator (over memory or USB)."""
    timeout = address.option_float("timeout", 10.0)
    auth_timeout = address.option_float("auth_timeout", 60.0)
    from posdiag.drivers.adb.driver import AdbDriver
    from posdiag.drivers.adb.terminal import AdbTerminal
    from posdiag.drivers.catalogue import load_catalogue

    usb_serial = None
    if address.link == "tcp":
        from posdiag.drivers.transport.tcp import TcpTransport

        host, port = address.host_port
        transport: Transport = TcpTransport(host, port)
        packetized = False
    elif address.link == "usb":
        from posdiag.drivers.transport.usbbulk import UsbBulkTransport

        selector = _usb_selector(address.target)
        transport = UsbBulkTransport(**selector, terminal_vendors=adb_usb_vendors(load_catalogue()))
        usb_serial = selector.get("serial")
        packetized = True
    elif "bus" in address.options:  # a terminal on a simulated bus: keep its simulator
        from posdiag.simulators.bus import open_link

        transport, packetized = open_link(address.options["bus"], "adb").host, False
    else:
        from posdiag.simulators.adb.state import AdbScenarioError
        from posdiag.simulators.registry import create_adb, require_scenario

        require_scenario("adb", address.target)
        try:
            simulator = create_adb(
                address.target, address.options.get("model", "android-generic"), address.options
            )
        except AdbScenarioError as exc:
            raise AddressError(str(exc)) from None
        transport, packetized = _simulated_adb_transport(simulator, address.options.get("via"))
    driver = AdbDriver(
        transport,
        packetized=packetized,
        timeout=timeout,
        auth_timeout=auth_timeout,
        on_auth_prompt=on_auth_prompt,
    )
    return AdbTerminal(driver, str(address), load_catalogue(), usb_serial=usb_serial)


def _simulated_adb_transport(simulator: Any, via: str | None) -> tuple[Transport, bool]:
    """A simulated Android POS behind an in-process memory link or a simulated USB device.

    ``?via=usb`` puts it behind a simulated pyusb backend, so the real USB transport code runs.
    """
    if via == "usb":
        from posdiag.drivers.transport.usbbulk import UsbBulkTransport
        from posdiag.simulators.usb_backend import SimulatedUsbBackend, SimulatedUsbDevice

        state = simulator.state
        simulator.packetized = True
        device = SimulatedUsbDevice(
            state.usb_vid, state.usb_pid, state.serial, state.manufacturer, state.model, simulator
        )
        backend = SimulatedUsbBackend([device])
        return UsbBulkTransport(serial=state.serial, backend=backend), True
    if via not in (None, "memory"):
        raise AddressError(
            _("via={via!r}: simulated Android terminals are reached via memory or usb").format(
                via=via
            )
        )
    from posdiag.simulators.attach import MemoryAttachment

    return MemoryAttachment(simulator).start(), False


def open_terminal(
    address: Address,
    *,
    password: str | None = None,
    on_auth_prompt: Callable[[], None] | None = None,
) -> Terminal:
    """A Terminal for the address (not yet connected: the first probe opens the line)."""
    if address.family == "adb":
        return adb_terminal(address, on_auth_prompt=on_auth_prompt)
    if address.family == "nexo":
        return nexo_terminal(address)
    if address.family != "zvt":
        raise AddressError(
            _("no driver for the {family!r} family yet").format(family=address.family)
        )
    from posdiag.drivers.catalogue import load_catalogue
    from posdiag.drivers.zvt.driver import ZvtDriver
    from posdiag.drivers.zvt.terminal import ZvtTerminal

    transport, link = zvt_transport(address)
    driver = ZvtDriver(
        transport,
        link,
        password=zvt_password(address, password),
        timers=zvt_timers(address),
        currency=address.option_int("currency", 978),
    )
    return ZvtTerminal(driver, str(address), load_catalogue())
