"""The ``adb_terminal`` and ``adb_driver`` fixtures: simulated Android smart POS for tests.

Part of the pytest plugin (:mod:`posdiag.simulators.pytest_plugin` registers them and re-exports
every name here); kept apart so each module stays readable. See ``simulators/README.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from posdiag.drivers.adb.auth import AdbKey
from posdiag.drivers.adb.driver import AdbDriver
from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.memory import Manipulator
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.simulators.adb import tms
from posdiag.simulators.adb.engine import AdbSimulator
from posdiag.simulators.adb.state import AndroidState, Faults, load_android
from posdiag.simulators.attach import MemoryAttachment, TcpAttachment
from posdiag.simulators.pytest_support import SimulatedLink, check_names

if TYPE_CHECKING:  # pyusb is imported only by tests that attach a terminal over USB
    from posdiag.simulators.usb_backend import SimulatedUsbBackend, SimulatedUsbDevice

__all__ = [
    "ADB_ATTACH_MODES",
    "ADB_TEST_AUTH_TIMEOUT",
    "ADB_TEST_TIMEOUT",
    "AdbDriverFactory",
    "SimulatedAdb",
    "adb_driver",
    "adb_terminal",
]

ADB_ATTACH_MODES = ("memory", "tcp", "usb")
"""How a simulated Android POS can be reached: in-process, loopback TCP, simulated USB."""

ADB_TEST_TIMEOUT = 2.0
"""Seconds ``adb_driver`` waits for each answer by default (the driver's own default is 10 s)."""

ADB_TEST_AUTH_TIMEOUT = 1.0
"""Seconds ``adb_driver`` gives the simulated operator to allow a new key (default 60 s)."""

_FAULT_NAMES = frozenset(f.name for f in dataclasses.fields(Faults))
_DEVICE_ALIASES = {"auth": "auth_required", "accept_keys": "accept_new_keys", "tms": "tms_url"}
_DEVICE_FIELDS = frozenset(f.name for f in dataclasses.fields(AndroidState))
"""The ``posdiag simulate`` option names, accepted for the state fields they set."""


@dataclass
class SimulatedAdb(SimulatedLink):
    """A running simulated Android POS and the ways to reach it.

    Attributes:
        scenario: the scenario it was started in (``fresh``, ``activated``, ``auth-required``…).
        model: the model profile (``android-generic``, ``pax-a920``, ``sunmi-p2``…).
        attach: ``memory``, ``tcp`` or ``usb``.
        simulator: the engine (``simulator.prompts_shown`` counts "Allow USB debugging?"
            prompts, ``simulator.streams_opened`` the services opened).
        address: ``adb+tcp://127.0.0.1:PORT`` for tcp, the address the CLI and the agent
            take (and ``adb connect HOST:PORT`` for the stock client); ``None`` for memory
            and usb, which posdiag addresses cannot name.
        attachment: memory: the attachment of the most recent link (e.g. to pull the cable
            with ``attachment.host.disconnect()``); tcp: the listener; usb: ``None``.
        usb_backend: usb only: the simulated pyusb backend the transports use; its
            ``transfers`` and ``zlp_count`` show what went over the bulk endpoints.
        usb_device: usb only: the simulated device (``unplug()``, ``missing_zlp_count``…).
        host: tcp: the loopback address listened on (``127.0.0.1``); ``None`` otherwise.
        port: tcp: the TCP port (a free one, never adb's emulator range 5555–5585 unless the
            system hands it out); ``None`` otherwise.
        path: always ``None``: no attach mode of an Android POS is a device path (kept so
            code can read ``host``/``port``/``path`` of any simulated terminal).

    ``transport()`` gives a fresh host-side transport, not yet opened: memory: the host end
    of a new in-process link (born open; every call lays a new link to the same simulator);
    tcp: a ``TcpTransport`` to the listening port (the simulator serves one connection at a
    time, like adbd on a LAN terminal: close one before opening the next); usb: a
    ``UsbBulkTransport`` on the simulated backend, selected by serial. The fixture closes every
    transport it handed out at teardown.
    """

    scenario: str
    model: str
    attach: str
    simulator: AdbSimulator
    address: str | None = None
    attachment: MemoryAttachment | TcpAttachment | None = None
    usb_backend: SimulatedUsbBackend | None = None
    usb_device: SimulatedUsbDevice | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None

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

    def _stop(self) -> None:
        super()._stop()
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
    # A typo in a fault name must not give a simulator without the fault and a green test that
    # tests nothing.
    check_names(
        options,
        _FAULT_NAMES,
        {*_DEVICE_FIELDS, *_DEVICE_ALIASES},
        what="adb_terminal",
        lead="unknown fault or device option",
        other_note="or a field of AndroidState (auth_required, accept_new_keys, latency, "
        "serial, trusted_keys…) or auth, accept_keys, tms",
    )
    for name, value in options.items():
        key = name.replace("-", "_")
        if key in _FAULT_NAMES:
            merged.setdefault("faults", {})[key] = _adb_fault_value(key, value)
        else:
            if key == "auth" and isinstance(value, str):  # text as posdiag simulate reads it
                value = value.strip().lower() in ("1", "true", "yes")
            elif key == "accept_keys" and isinstance(value, str):
                value = value.strip() != "0"
            merged.setdefault("device", {})[_DEVICE_ALIASES.get(key, key)] = value
    return merged


@pytest.fixture
def adb_terminal() -> Iterator[Callable[..., SimulatedAdb]]:
    """Factory of simulated Android smart POS (ADB), stopped when the test ends.

    Call it as ``adb_terminal(scenario="activated", model="android-generic", attach="memory",
    *, overrides=None, **options)``:

    * ``scenario``: a shipped scenario: ``fresh``, ``activated``, ``unsettled``,
      ``low-battery``, ``no-network``, ``no-sim``, ``outdated-firmware``, ``auth-required``.
    * ``model``: a model profile: ``android-generic``, ``pax-a920`` (PayDroid 8.1, serial in
      ``ro.fac.sn``), ``pax-a920-android7`` (PayDroid 7.1), ``sunmi-p2`` (Android 11, serial
      in ``ro.sunmi.serial``) or another file of ``simulators/adb/profiles/``.
      An unknown scenario or model raises ``AdbScenarioError`` listing the shipped ones.
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
      as in ``posdiag simulate``, and ``tms=URL`` (a ``backend_simulator``'s ``url``) makes
      the unit enrol with that simulated backend at start and sync with it as a real one
      does. Unknown names raise :class:`UnknownFaultError` (an ``AdbScenarioError``).

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
        if state.tms_url:
            tms.sync(state)  # enrolment: the unit registers with its TMS, as at power-on
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
            terminal.host, terminal.port = host, port
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
