"""pytest fixtures that give tests simulated payment terminals (registered as a pytest11 plugin).

Installing posdiag makes these fixtures available to any test suite, no ``conftest.py`` needed
(``adb_terminal`` and ``adb_driver``, for Android smart POS, are defined in
:mod:`posdiag.simulators.pytest_adb`, ``nexo_terminal``, for Adyen terminals speaking nexo over
HTTPS, in :mod:`posdiag.simulators.nexo.pytest_fixtures`; both are registered from here):

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
is stopped when the test ends, including when it fails. An unknown fault or option name is an
error (:class:`~posdiag.simulators.pytest_support.UnknownFaultError`), never ignored.

posdiag's own log lines stay out of the test output unless asked for (``--posdiag-logs``,
``--posdiag-log-level LEVEL`` or the ini option ``posdiag_log_level``): see
:mod:`posdiag.simulators.pytest_support`. The API page is ``simulators/README.md``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlencode

import pytest

from posdiag.drivers.transport.base import Transport
from posdiag.drivers.transport.memory import Manipulator
from posdiag.drivers.transport.serialport import SerialTransport
from posdiag.drivers.transport.tcp import TcpTransport
from posdiag.drivers.zvt.connection import Link
from posdiag.drivers.zvt.driver import ZvtDriver, ZvtTimers
from posdiag.simulators import registry
from posdiag.simulators.attach import (
    MemoryAttachment,
    PtyAttachment,
    TcpAttachment,
    register_url_handler,
)
from posdiag.simulators.nexo.pytest_fixtures import (
    NEXO_TEST_TIMEOUT,
    SimulatedNexo,
    nexo_terminal,
)
from posdiag.simulators.pytest_adb import (
    ADB_ATTACH_MODES,
    ADB_TEST_AUTH_TIMEOUT,
    ADB_TEST_TIMEOUT,
    AdbDriverFactory,
    SimulatedAdb,
    adb_driver,
    adb_terminal,
)
from posdiag.simulators.pytest_support import (
    SimulatedLink,
    UnknownFaultError,
    add_log_options,
    check_names,
    install_logging,
    reinstall_logging,
    uninstall_logging,
)
from posdiag.simulators.zvt.engine import ZvtSimulator
from posdiag.simulators.zvt.state import TerminalState

__all__ = [  # the ADB and nexo names are defined in pytest_adb / nexo and registered from here
    "ADB_ATTACH_MODES",
    "ADB_TEST_AUTH_TIMEOUT",
    "ADB_TEST_TIMEOUT",
    "ATTACH_MODES",
    "NEXO_TEST_TIMEOUT",
    "TEST_TIMERS",
    "AdbDriverFactory",
    "SimulatedAdb",
    "SimulatedNexo",
    "SimulatedZvt",
    "UnknownFaultError",
    "adb_driver",
    "adb_terminal",
    "nexo_terminal",
    "zvt_driver",
    "zvt_terminal",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--posdiag-logs``, ``--posdiag-log-level`` and the ini option ``posdiag_log_level``."""
    add_log_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Keep posdiag's log lines out of the project's test output unless they were asked for."""
    install_logging(config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Route posdiag's logs again if a previous test reset structlog to its defaults."""
    reinstall_logging(item.config)


def pytest_fixture_post_finalizer(fixturedef: Any, request: pytest.FixtureRequest) -> None:
    """Likewise after each fixture's teardown: the simulators a test started still log then."""
    reinstall_logging(request.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give structlog back as it was before the session."""
    uninstall_logging()


ATTACH_MODES = ("memory", "pty", "tcp", "url")
"""How a simulated terminal can be reached: in-process, pseudo terminal, TCP, pyserial URL."""

DEFAULT_OPTIONS = {"time_scale": "0"}
"""Simulator options applied unless a test overrides them (0: no simulated delays)."""

TEST_TIMERS = ZvtTimers(t1=0.2, t2=0.5, t3=1.0, t4=5.0)
"""Timers ``zvt_driver`` uses by default: T1 as specified, T2–T4 short so faults fail fast."""

ZVT_OPTIONS = ("time_scale", "scale", "latency", "baud", "password", "serial")
"""Options ``zvt_terminal`` takes besides fault names (others would be silently ignored)."""

URL_TAG = "posdiag_fixture"
"""Query parameter that ties a ``possim://`` URL to the simulator a fixture created.

The simulator ignores options it does not know, so the URL stays valid after the test: opened
elsewhere it simply starts a fresh simulator with the same scenario and options."""

_url_ids = itertools.count(1)

Attachment: TypeAlias = MemoryAttachment | PtyAttachment | TcpAttachment


@dataclass
class SimulatedZvt(SimulatedLink):
    """A running simulated ZVT terminal and the ways to reach it.

    Attributes:
        scenario: the scenario it was started in (``fresh``, ``activated``, ``unsettled``…).
        attach: ``memory``, ``pty``, ``tcp`` or ``url``.
        link: the ZVT framing it speaks: ``Link.SERIAL`` (DLE/STX/CRC/ACK), or ``Link.TCP``
            (bare APDUs), the default for ``attach="tcp"``.
        simulator: the engine; ``simulator.model.commands_seen`` lists the commands handled.
        address: a posdiag address for the CLI and the agent: ``zvt+serial:///dev/pts/N``
            (pty) or ``zvt+tcp://127.0.0.1:PORT`` (tcp); ``None`` for memory and url, which
            posdiag addresses cannot name, and when ``link`` is not the framing the address
            implies (a ``zvt+tcp`` address means bare APDUs, ``zvt+serial`` the serial
            framing). It carries no password: a terminal given ``password=`` needs the same
            one on posdiag's side (``--password`` or ``?password=``).
        url: the ``possim://zvt/<scenario>?…`` pyserial URL (url attach only), for anything
            that opens serial ports by URL.
        attachment: the attachment of the most recent link (memory, pty, tcp), e.g. to pull
            the cable with ``attachment.device.disconnect()`` on a memory link.
        host: tcp: the loopback address listened on (``127.0.0.1``); ``None`` otherwise.
        port: tcp: the TCP port (a free one, chosen at start); ``None`` otherwise.
        path: pty: the device path (``/dev/pts/N``) to open as a serial port; ``None``
            otherwise (url: use :attr:`url`).

    ``transport()`` gives a fresh host-side (cash register) transport, not yet opened:
    memory: the host end of an in-process link (memory ends are born open, and ``open()`` on
    them does nothing; each call after the first lays a new link to the same simulator); pty:
    a ``SerialTransport`` on the pty path; tcp: a ``TcpTransport`` to the listening port; url:
    a ``SerialTransport`` on the ``possim://`` URL. The fixture closes every transport it
    handed out at teardown.
    """

    scenario: str
    attach: str
    link: Link
    simulator: ZvtSimulator
    address: str | None = None
    url: str | None = None
    attachment: Attachment | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None

    @property
    def state(self) -> TerminalState:
        """The live terminal state: read it to check effects, change it to set up a test.

        Effects of a command are visible as soon as the driver call that ran it returns.
        """
        return self.simulator.state




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
      ``password``, ``serial`` and the fault names of
      :class:`~posdiag.simulators.zvt.state.Faults` (``corrupt_crc=1``, ``drop_ack=1``,
      ``split_writes=1``, ``stall_mid_frame=0.5``, ``answer_delay=2``, ``garbage="fe00"``,
      ``disconnect_after=1``, ``silent=1``…). Values may be given as strings or plain Python
      values. Any other name raises :class:`UnknownFaultError` naming it and listing the
      valid ones.

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
        check_names(options, registry.fault_names("zvt"), ZVT_OPTIONS, what="zvt_terminal")
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
            terminal.path = path
            if link is Link.SERIAL:
                terminal.address = f"zvt+serial://{path}"
            terminal._new_transport = lambda: SerialTransport(path)
        elif attach == "tcp":
            listener = TcpAttachment(simulator, "127.0.0.1", 0)
            host, port = listener.start()
            terminal._attachments.append(listener)
            terminal.attachment = listener
            terminal.host, terminal.port = host, port
            if link is Link.TCP:
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
