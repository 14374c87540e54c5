"""pytest fixtures that give tests simulated payment terminals (registered as a pytest11 plugin).

Installing posdiag makes these fixtures available to any test suite, no ``conftest.py`` needed
(``adb_terminal`` and ``adb_driver``, for Android smart POS, are described further down):

``zvt_terminal``
    A factory: ``zvt_terminal("unsettled", attach="pty", drop_ack=1)`` starts a simulated Feig
    cVEND in a shipped scenario, reachable in-process (``memory``), through a pseudo terminal
    (``pty``), on a loopback TCP port (``tcp``) or through a ``possim://`` pyserial URL
    (``url``), and returns a :class:`SimulatedZvt` describing how to reach it.

``zvt_driver``
    A factory: ``zvt_driver(terminal)`` returns an open
    :class:`~posdiag.drivers.zvt.driver.ZvtDriver` for such a terminal, with short protocol
    timers so fault tests finish in a second instead of the spec's 5 s/180 s.

Example::

    def test_end_of_day_empties_the_store(zvt_terminal, zvt_driver):
        terminal = zvt_terminal("unsettled", attach="pty")
        driver = zvt_driver(terminal)
        driver.register()
        driver.end_of_day()
        assert terminal.state.transactions == []

Everything a factory starts (simulator threads, ptys, listening sockets, transports, drivers)
is stopped when the test ends, including when it fails.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlencode

import pytest

from posdiag.drivers.adb.auth import AdbKey
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.memory import Manipulator
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import ZvtDriver, ZvtTimers
from posdiag.simulators import registry
from posdiag.simulators.adb.engine import AdbSimulator
from posdiag.simulators.adb.state import AdbScenarioError, AndroidState, Faults, load_android
from posdiag.simulators.attach import (
    MemoryAttachment,
    PtyAttachment,
    TcpAttachment,
    register_url_handler,
)
from posdiag.simulators.zvt.engine import ZvtSimulator
from posdiag.simulators.zvt.state import TerminalState

if TYPE_CHECKING:  # pyusb is imported only by tests that attach a terminal over USB
    from posdiag.simulators.usb_backend import SimulatedUsbBackend, SimulatedUsbDevice

ATTACH_MODES = ("memory", "pty", "tcp", "url")
"""How a simulated terminal can be reached: in-process, pseudo terminal, TCP, pyserial URL."""

DEFAULT_OPTIONS = {"time_scale": "0"}
"""Simulator options applied unless a test overrides them (0: no simulated delays)."""

TEST_TIMERS = ZvtTimers(t1=0.2, t2=0.5, t3=1.0, t4=5.0)
"""Timers ``zvt_driver`` uses by default: T1 as specified, T2–T4 short so faults fail fast."""

URL_TAG = "posdiag_fixture"
"""Query parameter that ties a ``possim://`` URL to the simulator a fixture created.

The simulator ignores options it does not know, so the URL stays valid after the test: opened
elsewhere it simply starts a fresh simulator with the same scenario and options."""

_url_ids = itertools.count(1)

Attachment: TypeAlias = MemoryAttachment | PtyAttachment | TcpAttachment


@dataclass
class SimulatedZvt:
    """A running simulated ZVT terminal and the ways to reach it.

    Attributes:
        scenario: the scenario it was started in (``fresh``, ``activated``, ``unsettled``…).
        attach: ``memory``, ``pty``, ``tcp`` or ``url``.
        link: the ZVT framing it speaks: ``Link.SERIAL`` (DLE/STX/CRC/ACK), or ``Link.TCP``
            (bare APDUs), the default for ``attach="tcp"``.
        simulator: the engine; ``simulator.model.commands_seen`` lists the commands handled.
        address: a posdiag address for the CLI and the agent: ``zvt+serial:///dev/pts/N``
            (pty) or ``zvt+tcp://127.0.0.1:PORT`` (tcp); ``None`` for memory and url, which
            posdiag addresses cannot name.
        url: the ``possim://zvt/<scenario>?…`` pyserial URL (url attach only), for anything
            that opens serial ports by URL.
        attachment: the attachment of the most recent link (memory, pty, tcp), e.g. to pull
            the cable with ``attachment.device.disconnect()`` on a memory link.
    """

    scenario: str
    attach: str
    link: Link
    simulator: ZvtSimulator
    address: str | None = None
    url: str | None = None
    attachment: Attachment | None = None
    _new_transport: Callable[[], Transport] | None = field(default=None, repr=False)
    _attachments: list[Attachment] = field(default_factory=list, repr=False)
    _transports: list[Transport] = field(default_factory=list, repr=False)

    @property
    def state(self) -> TerminalState:
        """The live terminal state: read it to check effects, change it to set up a test.

        Effects of a command are visible as soon as the driver call that ran it returns.
        """
        return self.simulator.state

    def transport(self) -> Transport:
        """A fresh host-side (cash register) transport to this terminal, not yet opened.

        memory: the host end of an in-process link (memory ends are born open, and ``open()``
        on them does nothing; each call after the first lays a new link to the same
        simulator); pty: a ``SerialTransport`` on the pty path; tcp: a ``TcpTransport`` to the
        listening port; url: a ``SerialTransport`` on the ``possim://`` URL. The fixture closes
        every transport it handed out at teardown.
        """
        if self._new_transport is None:
            raise RuntimeError("this SimulatedZvt was stopped")
        transport = self._new_transport()
        self._transports.append(transport)
        return transport

    def _stop(self) -> None:
        self._new_transport = None
        for transport in reversed(self._transports):
            transport.close()
        for attachment in reversed(self._attachments):
            attachment.stop()


def _string_options(options: dict[str, Any]) -> dict[str, str]:
    merged = dict(DEFAULT_OPTIONS)
    for name, value in options.items():
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, bool):
            value = "1" if value else "0"
        merged[name] = str(value)
    return merged


@pytest.fixture
def zvt_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SimulatedZvt]]:
    """Factory of simulated ZVT terminals (Feig cVEND), stopped when the test ends.

    Call it as ``zvt_terminal(scenario="activated", attach="memory", link=None, **options)``:

    * ``scenario``: a shipped scenario: ``fresh``, ``activated``, ``unsettled``,
      ``no-network``, ``low-battery``, ``tampered`` (an unknown one raises ``ScenarioError``).
    * ``attach``: ``memory`` (fastest), ``pty`` (real serial code path), ``tcp`` (loopback
      only) or ``url`` (a ``possim://`` URL opened through pyserial).
    * ``link``: the framing; default ``Link.TCP`` for ``tcp`` and ``Link.SERIAL`` otherwise.
    * ``manipulator_host`` / ``manipulator_device``: memory only, fault hooks applied to what
      the host / the simulator writes (see ``MemoryTransport.pair``).
    * ``**options``: simulator options as for ``possim://`` URLs and ``posdiag simulate``:
      ``time_scale`` (default ``0``: no simulated delays), ``baud``, ``latency``,
      ``password`` and the fault names of :class:`~posdiag.simulators.zvt.state.Faults`
      (``corrupt_crc=1``, ``drop_ack=1``, ``split_writes=1``, ``stall_mid_frame=0.5``,
      ``answer_delay=2``, ``garbage="fe00"``, ``disconnect_after=1``, ``silent=1``…).
      Values may be given as strings or plain Python values.

    Returns:
        A :class:`SimulatedZvt`.
    """
    started: list[SimulatedZvt] = []
    url_engines: dict[str, ZvtSimulator] = {}

    def create_engine(family: str, scenario: str, options: dict[str, str]) -> Any:
        engine = url_engines.get(options.get(URL_TAG, ""))
        if engine is not None and family == "zvt":
            return engine
        return original_create_engine(family, scenario, options)

    original_create_engine = registry.create_engine

    def make(
        scenario: str = "activated",
        attach: str = "memory",
        link: Link | None = None,
        *,
        manipulator_host: Manipulator | None = None,
        manipulator_device: Manipulator | None = None,
        **options: Any,
    ) -> SimulatedZvt:
        if attach not in ATTACH_MODES:
            raise ValueError(f"attach must be one of {', '.join(ATTACH_MODES)}, not {attach!r}")
        if attach != "memory" and (manipulator_host or manipulator_device):
            raise ValueError("manipulators need attach='memory'")
        if link is None:
            link = Link.TCP if attach == "tcp" else Link.SERIAL
        string_options = _string_options(options)
        simulator = registry.create_zvt(scenario, string_options, link)
        terminal = SimulatedZvt(scenario, attach, link, simulator)
        started.append(terminal)

        def start(attachment: Attachment) -> Attachment:
            attachment.start()
            terminal._attachments.append(attachment)
            terminal.attachment = attachment
            return attachment

        if attach == "memory":
            handed_out: list[bool] = []

            def new_memory_transport() -> Transport:
                attachment = terminal.attachment
                assert isinstance(attachment, MemoryAttachment)
                if handed_out:
                    attachment = MemoryAttachment(
                        simulator, manipulator_host, manipulator_device, f"memory zvt {scenario}"
                    )
                    start(attachment)
                handed_out.append(True)
                return attachment.host

            start(
                MemoryAttachment(
                    simulator, manipulator_host, manipulator_device, f"memory zvt {scenario}"
                )
            )
            terminal._new_transport = new_memory_transport
        elif attach == "pty":
            pty = start(PtyAttachment(simulator))
            assert isinstance(pty, PtyAttachment)
            path = pty.path
            terminal.address = f"zvt+serial://{path}"
            terminal._new_transport = lambda: SerialTransport(path)
        elif attach == "tcp":
            listener = TcpAttachment(simulator, "127.0.0.1", 0)
            host, port = listener.start()
            terminal._attachments.append(listener)
            terminal.attachment = listener
            terminal.address = f"zvt+tcp://{host}:{port}"
            terminal._new_transport = lambda: TcpTransport(host, port)
        else:
            register_url_handler()
            if not url_engines:
                monkeypatch.setattr(registry, "create_engine", create_engine)
            tag = str(next(_url_ids))
            url_engines[tag] = simulator
            url = f"possim://zvt/{scenario}?{urlencode({**string_options, URL_TAG: tag})}"
            terminal.url = url
            terminal._new_transport = lambda: SerialTransport(url)
        return terminal

    yield make
    for terminal in reversed(started):
        terminal._stop()


@pytest.fixture
def zvt_driver(
    zvt_terminal: Callable[..., SimulatedZvt],
) -> Iterator[Callable[..., ZvtDriver]]:
    """Factory of open ZVT drivers for simulated terminals, closed when the test ends.

    Call it as ``zvt_driver(terminal, password=None, **timers)``: ``terminal`` is a
    :class:`SimulatedZvt` from ``zvt_terminal``; ``password`` defaults to the terminal's own;
    ``timers`` (``t1``, ``t2``, ``t3``, ``t4`` in seconds) override :data:`TEST_TIMERS`
    (T2 0.5 s, T3 1 s, T4 5 s), which keep retry and timeout tests fast.

    Returns:
        An open :class:`~posdiag.drivers.zvt.driver.ZvtDriver` on a fresh transport
        (``terminal.transport()``) with the terminal's link.
    """
    drivers: list[ZvtDriver] = []

    def make(terminal: SimulatedZvt, *, password: str | None = None, **timers: float) -> ZvtDriver:
        driver = ZvtDriver(
            terminal.transport(),
            terminal.link,
            password=terminal.state.password if password is None else password,
            timers=dataclasses.replace(TEST_TIMERS, **timers),
        )
        drivers.append(driver)
        driver.open()
        return driver

    yield make
    for driver in reversed(drivers):
        driver.close()


# --- Android smart POS over ADB ------------------------------------------------------------------

ADB_ATTACH_MODES = ("memory", "tcp", "usb")
"""How a simulated Android POS can be reached: in-process, loopback TCP, simulated USB."""

ADB_TEST_TIMEOUT = 2.0
"""Seconds ``adb_driver`` waits for each answer by default (the driver's own default is 10 s)."""

ADB_TEST_AUTH_TIMEOUT = 1.0
"""Seconds ``adb_driver`` gives the simulated operator to allow a new key (default 60 s)."""

_FAULT_NAMES = frozenset(f.name for f in dataclasses.fields(Faults))
_DEVICE_ALIASES = {"auth": "auth_required", "accept_keys": "accept_new_keys"}
_DEVICE_FIELDS = frozenset(f.name for f in dataclasses.fields(AndroidState))
"""The ``posdiag simulate`` option names, accepted for the state fields they set."""


@dataclass
class SimulatedAdb:
    """A running simulated Android POS and the ways to reach it.

    Attributes:
        scenario: the scenario it was started in (``fresh``, ``activated``, ``auth-required``…).
        model: the model profile (``android-generic``, ``pax-a920``, ``sunmi-p2``).
        attach: ``memory``, ``tcp`` or ``usb``.
        simulator: the engine (``simulator.prompts_shown`` counts "Allow USB debugging?"
            prompts, ``simulator.streams_opened`` the services opened).
        address: ``adb+tcp://127.0.0.1:PORT`` for tcp, the address the CLI and the agent
            take; ``None`` for memory and usb, which posdiag addresses cannot name.
        attachment: memory: the attachment of the most recent link (e.g. to pull the cable
            with ``attachment.host.disconnect()``); tcp: the listener; usb: ``None``.
        usb_backend: usb only: the simulated pyusb backend the transports use; its
            ``transfers`` and ``zlp_count`` show what went over the bulk endpoints.
        usb_device: usb only: the simulated device (``unplug()``, ``missing_zlp_count``…).
    """

    scenario: str
    model: str
    attach: str
    simulator: AdbSimulator
    address: str | None = None
    attachment: MemoryAttachment | TcpAttachment | None = None
    usb_backend: SimulatedUsbBackend | None = None
    usb_device: SimulatedUsbDevice | None = None
    _new_transport: Callable[[], Transport] | None = field(default=None, repr=False)
    _attachments: list[MemoryAttachment | TcpAttachment] = field(default_factory=list, repr=False)
    _transports: list[Transport] = field(default_factory=list, repr=False)

    @property
    def state(self) -> AndroidState:
        """The live device state: read it to check effects, change it to set up a test.

        Effects of a command are visible as soon as the driver call that ran it returns.
        """
        return self.simulator.state

    @property
    def packetized(self) -> bool:
        """Whether ADB messages travel as separate USB transfers (usb): pass it to AdbDriver."""
        return self.simulator.packetized

    def transport(self) -> Transport:
        """A fresh host-side transport to this device, not yet opened.

        memory: the host end of a new in-process link (born open; every call lays a new link
        to the same simulator); tcp: a ``TcpTransport`` to the listening port (the simulator
        serves one connection at a time, like adbd on a LAN terminal: close one before opening
        the next); usb: a ``UsbBulkTransport`` on the simulated backend, selected by serial.
        The fixture closes every transport it handed out at teardown.
        """
        if self._new_transport is None:
            raise RuntimeError("this SimulatedAdb was stopped")
        transport = self._new_transport()
        self._transports.append(transport)
        return transport

    def _stop(self) -> None:
        self._new_transport = None
        for transport in reversed(self._transports):
            transport.close()
        for attachment in reversed(self._attachments):
            attachment.stop()
        if self.usb_backend is not None:
            self.usb_backend.close()


def _adb_fault_value(name: str, value: Any) -> Any:
    """A fault option given as text (``"1"``, ``"0.5"``) as the type of its default."""
    if not isinstance(value, str):
        return value
    default = getattr(Faults(), name)
    if isinstance(default, str):
        return value
    if isinstance(default, bool):
        return value.strip().lower() in ("1", "true", "yes", "")
    if isinstance(default, float):
        return float(value)
    return int(value)


def _adb_overrides(overrides: dict[str, Any] | None, options: dict[str, Any]) -> dict[str, Any]:
    """Merge keyword options into the ``[faults]`` and ``[device]`` tables of the overrides."""
    merged = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in (overrides or {}).items()
    }
    for name, value in options.items():
        key = name.replace("-", "_")
        if key in _FAULT_NAMES:
            merged.setdefault("faults", {})[key] = _adb_fault_value(key, value)
        elif _DEVICE_ALIASES.get(key, key) in _DEVICE_FIELDS:
            merged.setdefault("device", {})[_DEVICE_ALIASES.get(key, key)] = value
        else:
            # A typo in a fault name must not give a simulator without the fault and a green
            # test that tests nothing.
            raise AdbScenarioError(
                f"unknown fault or device option {name!r} "
                f"(faults: {', '.join(sorted(_FAULT_NAMES))})"
            )
    return merged


@pytest.fixture
def adb_terminal() -> Iterator[Callable[..., SimulatedAdb]]:
    """Factory of simulated Android smart POS (ADB), stopped when the test ends.

    Call it as ``adb_terminal(scenario="activated", model="android-generic", attach="memory",
    *, overrides=None, **options)``:

    * ``scenario``: a shipped scenario: ``fresh``, ``activated``, ``unsettled``,
      ``low-battery``, ``no-network``, ``no-sim``, ``outdated-firmware``, ``auth-required``.
    * ``model``: a model profile: ``android-generic``, ``pax-a920`` (Android 7.1, serial in
      ``ro.fac.sn``) or ``sunmi-p2`` (Android 11, serial in ``ro.sunmi.serial``).
      An unknown scenario or model raises ``AdbScenarioError``.
    * ``attach``: ``memory`` (fastest), ``tcp`` (a loopback port, as ``adb connect`` reaches
      a LAN terminal) or ``usb`` (a simulated pyusb backend: the real ``UsbBulkTransport``
      code runs, with adbd's zero-length-packet rules).
    * ``overrides``: data merged over the scenario, in the TOML layout of the profiles, e.g.
      ``{"files": {"/sdcard/big.bin": "x" * 300000}}`` or
      ``{"device": {"features": ["cmd"]}}`` (a device without ``shell_v2``).
    * ``manipulator_host`` / ``manipulator_device``: memory only, fault hooks applied to what
      the host / the simulator writes (see ``MemoryTransport.pair``).
    * ``**options``: fault names of :class:`~posdiag.simulators.adb.state.Faults`
      (``bad_checksum=1``, ``drop_packets=3``, ``split_packets=True``, ``stall=0.5``,
      ``vanish_after=2``; strings such as ``"1"`` work too), and any other field of the
      device state (``auth_required=True``, ``accept_new_keys=False``,
      ``trusted_keys=[...]``, ``latency=0.1``…); ``auth`` and ``accept_keys`` are accepted
      as in ``posdiag simulate``. Unknown names raise ``AdbScenarioError``.

    Returns:
        A :class:`SimulatedAdb`.
    """
    started: list[SimulatedAdb] = []

    def make(
        scenario: str = "activated",
        model: str = "android-generic",
        attach: str = "memory",
        *,
        overrides: dict[str, Any] | None = None,
        manipulator_host: Manipulator | None = None,
        manipulator_device: Manipulator | None = None,
        **options: Any,
    ) -> SimulatedAdb:
        if attach not in ADB_ATTACH_MODES:
            raise ValueError(f"attach must be one of {', '.join(ADB_ATTACH_MODES)}, not {attach!r}")
        if attach != "memory" and (manipulator_host or manipulator_device):
            raise ValueError("manipulators need attach='memory'")
        state = load_android(scenario, model, _adb_overrides(overrides, options))
        simulator = AdbSimulator(state, packetized=attach == "usb")
        terminal = SimulatedAdb(scenario, model, attach, simulator)
        started.append(terminal)

        if attach == "memory":

            def new_memory_transport() -> Transport:
                attachment = MemoryAttachment(
                    simulator,
                    manipulator_host,
                    manipulator_device,
                    f"memory adb {model}/{scenario}",
                )
                host = attachment.start()
                terminal._attachments.append(attachment)
                terminal.attachment = attachment
                return host

            terminal._new_transport = new_memory_transport
        elif attach == "tcp":
            listener = TcpAttachment(simulator, "127.0.0.1", 0)
            host, port = listener.start()
            terminal._attachments.append(listener)
            terminal.attachment = listener
            terminal.address = f"adb+tcp://{host}:{port}"
            terminal._new_transport = lambda: TcpTransport(host, port)
        else:
            from posdiag.drivers.transport.usbbulk import UsbBulkTransport
            from posdiag.simulators.usb_backend import SimulatedUsbBackend, SimulatedUsbDevice

            device = SimulatedUsbDevice(
                state.usb_vid,
                state.usb_pid,
                state.serial,
                state.manufacturer,
                state.model,
                simulator,
            )
            backend = SimulatedUsbBackend([device])
            terminal.usb_backend, terminal.usb_device = backend, device
            terminal._new_transport = lambda: UsbBulkTransport(serial=state.serial, backend=backend)
        return terminal

    yield make
    for terminal in reversed(started):
        terminal._stop()


class AdbDriverFactory:
    """What the ``adb_driver`` fixture yields: call it to get an open :class:`AdbDriver`.

    Every driver it makes in one test uses the same host key, :attr:`key`, generated for that
    test on first use (a device that trusted it once trusts it on the next connection). No key
    file is read or written: the user's ``~/.config/posdiag/adbkey`` is never touched.
    """

    def __init__(self) -> None:
        self._key: AdbKey | None = None
        self.drivers: list[AdbDriver] = []
        """Every driver made so far, closed at teardown."""

    @property
    def key(self) -> AdbKey:
        """This test's host key (RSA-2048), e.g. to put into ``trusted_keys`` beforehand."""
        if self._key is None:
            self._key = AdbKey.generate()
        return self._key

    def __call__(self, terminal: SimulatedAdb, **kwargs: Any) -> AdbDriver:
        """An :class:`AdbDriver` on ``terminal.transport()``, opened (connected) already.

        Args:
            terminal: a :class:`SimulatedAdb` from ``adb_terminal``.
            **kwargs: ``AdbDriver`` arguments; defaults: ``timeout`` :data:`ADB_TEST_TIMEOUT`,
                ``auth_timeout`` :data:`ADB_TEST_AUTH_TIMEOUT`, ``packetized`` as the
                terminal needs, the test's :attr:`key`. ``open=False`` returns the driver
                unopened (to test ``open()`` failures yourself).

        Raises:
            Whatever ``AdbDriver.open()`` raises; the driver is closed at teardown anyway.
        """
        should_open = kwargs.pop("open", True)
        kwargs.setdefault("timeout", ADB_TEST_TIMEOUT)
        kwargs.setdefault("auth_timeout", ADB_TEST_AUTH_TIMEOUT)
        kwargs.setdefault("packetized", terminal.packetized)
        kwargs.setdefault("key_loader", lambda: self.key)
        driver = AdbDriver(terminal.transport(), **kwargs)
        self.drivers.append(driver)
        if should_open:
            driver.open()
        return driver


@pytest.fixture
def adb_driver(
    adb_terminal: Callable[..., SimulatedAdb],
) -> Iterator[AdbDriverFactory]:
    """Factory of open ADB drivers for simulated Android POS, closed when the test ends.

    Call it as ``adb_driver(terminal, **kwargs)``: ``terminal`` is a :class:`SimulatedAdb`
    from ``adb_terminal``; ``kwargs`` go to :class:`~posdiag.drivers.adb.driver.AdbDriver`
    (``key``, ``timeout``, ``auth_timeout``, ``on_auth_prompt``…). Timeouts default to
    :data:`ADB_TEST_TIMEOUT` (2 s) and :data:`ADB_TEST_AUTH_TIMEOUT` (1 s) so fault tests
    fail fast. The key is generated for the test (``adb_driver.key``); no key file is read
    or written.

    Example::

        def test_serial(adb_terminal, adb_driver):
            driver = adb_driver(adb_terminal("activated", model="pax-a920", attach="usb"))
            assert driver.shell("getprop ro.fac.sn").text.strip() == "0820533061"

    Returns:
        An :class:`AdbDriverFactory`; calling it returns an open driver on a fresh transport.
    """
    factory = AdbDriverFactory()
    yield factory
    for driver in reversed(factory.drivers):
        driver.close()
