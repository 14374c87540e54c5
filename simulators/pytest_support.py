"""What the pytest plugin needs besides its fixtures: quiet posdiag logs, strict fault names.

**Logs.** posdiag's drivers and simulators log every frame through structlog, and structlog's
default configuration prints to stdout. In a project that only wanted simulated terminals, every
test would then print dozens of ``zvt.tx``/``sim.zvt.command`` lines under ``-s`` and in the
captured output of a failure, burying the project's own. So under the plugin:

* events of posdiag's loggers (names ``posdiag.…``) leave structlog as stdlib ``logging``
  records, never as prints, and only from WARNING up by default: a test's ``caplog`` and the
  "Captured log" section of a failing test show them, the terminal does not;
* ``--posdiag-logs`` (and ``--posdiag-log-level LEVEL`` or the ini option ``posdiag_log_level``)
  prints them to stderr at that level (DEBUG by default) for a person who wants to see the
  exchange; ``caplog.set_level(logging.DEBUG, logger="posdiag")`` lowers the level for one test;
* every other structlog logger is left exactly as it was (still printed if the project never
  configured structlog), and a project that configured structlog itself (in ``conftest.py``,
  before pytest configures plugins) keeps its configuration untouched.

posdiag's CLI (``configure_logging``) replaces the structlog configuration when a test runs it
in-process, as it does outside pytest; the plugin takes over again before the next test.

**Fault names.** A misspelt fault (``endless_statsu=True``) must not give a simulator without the
fault and a green test that tests nothing: :func:`check_names` refuses it with
:class:`UnknownFaultError`, naming it, suggesting the closest valid name and listing them all.
"""

from __future__ import annotations

import difflib
import logging
import sys
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog

from posdiag.drivers.errors import AddressError
from posdiag.drivers.text import clean_text
from posdiag.drivers.transport.base import Transport

from .adb.state import AdbScenarioError

__all__ = [
    "LOG_LEVEL_INI",
    "UnknownFaultError",
    "add_log_options",
    "check_names",
    "install_logging",
    "uninstall_logging",
]

LOGGER_PREFIX = "posdiag"
LOG_LEVEL_INI = "posdiag_log_level"
QUIET_LEVEL = logging.WARNING
"""posdiag events below this level are dropped unless logs were asked for."""
PRINTED_LEVEL = "debug"
"""Level of ``--posdiag-logs`` when no level is named."""
VALUE_LIMIT = 512
"""Characters one logged value keeps: a hostile simulated device sends 200 kB lines."""
OFF = ("", "off", "none", "no", "false", "0")
_HANDLER_NAME = "posdiag-pytest"
_NULL_HANDLER_NAME = "posdiag-pytest-null"
_METHOD_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
_DROPPED_KEYS = ("level", "timestamp", "logger", "exc_info")

@dataclass
class SimulatedLink:
    """What every simulated device fixture shares: the transports it hands out, and teardown.

    A fixture lays a link (memory, pty, TCP, USB) and sets ``_new_transport``; each
    :meth:`transport` call hands out a fresh host-side transport that the fixture closes at
    teardown, with the attachments, newest first.
    """

    _new_transport: Callable[[], Transport] | None = field(
        default=None, repr=False, kw_only=True
    )
    _attachments: list[Any] = field(default_factory=list, repr=False, kw_only=True)
    _transports: list[Transport] = field(default_factory=list, repr=False, kw_only=True)

    def transport(self) -> Transport:
        """A fresh host-side transport to this device, not yet opened (see the class notes)."""
        if self._new_transport is None:
            raise RuntimeError(f"this {type(self).__name__} was stopped")
        transport = self._new_transport()
        self._transports.append(transport)
        return transport

    def _stop(self) -> None:
        self._new_transport = None
        for transport in reversed(self._transports):
            transport.close()
        for attachment in reversed(self._attachments):
            attachment.stop()



class UnknownFaultError(AddressError, AdbScenarioError):
    """A fault or simulator option a factory does not know (a typo, not a healthy simulator).

    It is an ``AddressError`` (what ``possim://`` URLs and ``posdiag simulate`` raise for the
    same typo) and an ``AdbScenarioError`` (what the ADB factory raised before), so existing
    ``pytest.raises`` keep working; catch this class to cover every factory.

    Attributes:
        name: the unknown name as given.
        valid: the fault names that factory accepts.
    """

    def __init__(self, message: str, name: str, valid: Iterable[str]) -> None:
        super().__init__(message)
        self.name = name
        self.valid = tuple(valid)


def check_names(
    names: Iterable[str],
    faults: Iterable[str],
    other: Iterable[str] = (),
    *,
    what: str,
    lead: str = "unknown fault",
    other_note: str | None = None,
) -> None:
    """Refuse any of ``names`` that is neither a fault nor another accepted option.

    Args:
        names: the keyword names a test passed (``-`` and ``_`` are the same).
        faults: the valid fault names.
        other: other accepted option names (listed apart from faults in the message).
        what: the thing being made, for the message (``a simulated zvt terminal``).
        lead: how the message starts (kept per factory so existing matches stay valid).
        other_note: said instead of listing ``other`` when that list is too long to read.

    Raises:
        UnknownFaultError: one line naming the first unknown name, the closest valid one if
            any, and every valid fault (and option).
    """
    fault_list = sorted(faults)
    other_list = sorted(set(other) - set(fault_list))
    known = {*fault_list, *other_list}
    for name in names:
        if name.replace("-", "_") in known:
            continue
        close = difflib.get_close_matches(name.replace("-", "_"), sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if other_note is not None:
            options = f"; {other_note}"
        else:
            options = f"; options: {', '.join(other_list)}" if other_list else ""
        raise UnknownFaultError(
            f"{lead} {name!r} for {what}{hint} (faults: {', '.join(fault_list)}{options})",
            name,
            fault_list,
        )


# --- logs -----------------------------------------------------------------------------------


def _is_posdiag(name: str) -> bool:
    return name == LOGGER_PREFIX or name.startswith(LOGGER_PREFIX + ".")


def _caller() -> tuple[str, int, str]:
    """File, line and function of the code that logged (not structlog's or this module's)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module.startswith("structlog") or module in (__name__, "logging")):
            return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back  # type: ignore[assignment]
    return "(unknown file)", 0, "(unknown function)"


def _emit(logger: logging.Logger, level: int, message: str) -> None:
    """Hand one record to ``logger``'s handlers and its ancestors' (pytest's capture, caplog)."""
    filename, line, function = _caller()
    record = logger.makeRecord(logger.name, level, filename, line, message, (), None, function)
    logger.handle(record)


class _PosdiagLogger:
    """What structlog wraps for a ``posdiag.…`` logger: writes stdlib records, never stdout.

    The router below normally handles posdiag events before they get here; this is the path
    when a test replaced the processors (``structlog.configure(processors=…)``) but kept the
    factory: records then follow the stdlib logger's own level.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.stdlib = logging.getLogger(name)

    def _log(self, level: int, message: Any) -> None:
        if self.stdlib.isEnabledFor(level):
            _emit(self.stdlib, level, clean_text(message, VALUE_LIMIT * 8))

    def debug(self, message: Any) -> None:
        """A DEBUG record."""
        self._log(logging.DEBUG, message)

    def info(self, message: Any) -> None:
        """An INFO record."""
        self._log(logging.INFO, message)

    msg = info

    def warning(self, message: Any) -> None:
        """A WARNING record."""
        self._log(logging.WARNING, message)

    warn = warning

    def error(self, message: Any) -> None:
        """An ERROR record."""
        self._log(logging.ERROR, message)

    exception = error

    def critical(self, message: Any) -> None:
        """A CRITICAL record."""
        self._log(logging.CRITICAL, message)

    fatal = critical


class _RoutingLoggerFactory:
    """posdiag's loggers become :class:`_PosdiagLogger`; any other name gets the old factory."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self._loggers: dict[str, _PosdiagLogger] = {}

    def __call__(self, *args: Any) -> Any:
        name = args[0] if args and isinstance(args[0], str) else ""
        if _is_posdiag(name):
            logger = self._loggers.get(name)
            if logger is None:
                logger = self._loggers[name] = _PosdiagLogger(name)
            return logger
        return self.fallback(*args)


def _value(value: Any) -> str:
    """One value as it appears after ``key=``: hex for bytes, repr (escapes shown) otherwise."""
    if isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value)[: VALUE_LIMIT // 3].hex(" ")
        if len(value) > VALUE_LIMIT // 3:
            text += f" … (+{len(value) - VALUE_LIMIT // 3} bytes)"
        return text
    text = repr(value)  # repr escapes control characters, escape sequences and bidi overrides
    return clean_text(text, VALUE_LIMIT)


def render(event_dict: MutableMapping[str, Any]) -> str:
    """``event key=value …`` in one line (plus a traceback), safe for any terminal."""
    event = clean_text(event_dict.pop("event", ""), VALUE_LIMIT)
    exception = event_dict.pop("exception", None)
    for key in _DROPPED_KEYS:
        event_dict.pop(key, None)
    parts = [event, *(f"{clean_text(key, 64)}={_value(v)}" for key, v in event_dict.items())]
    text = " ".join(part for part in parts if part)
    if exception:
        lines = str(exception).split("\n")
        text += "".join("\n" + clean_text(line, VALUE_LIMIT) for line in lines)
    return text


class _PosdiagRouter:
    """First processor: posdiag events are filtered, rendered and logged here, then dropped.

    Other loggers' events pass on unchanged to the processors the project had. The threshold
    is the plugin's level, or a level a test set on a ``posdiag`` logger (``caplog.set_level(
    logging.DEBUG, logger="posdiag")``); records go through ``Logger.handle``, so stdlib's own
    level (the root's WARNING) does not drop what the plugin was asked to keep.
    """

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    def _threshold(self, logger: logging.Logger) -> int:
        current: logging.Logger | None = logger
        while current is not None and _is_posdiag(current.name):
            if current.level:
                return current.level
            current = current.parent
        return self.threshold

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not isinstance(logger, _PosdiagLogger):
            return event_dict
        level = _METHOD_LEVELS.get(method_name, logging.INFO)
        if level >= self._threshold(logger.stdlib):
            if method_name == "exception" and "exc_info" not in event_dict:
                event_dict["exc_info"] = True
            event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
            _emit(logger.stdlib, level, render(event_dict))
        raise structlog.DropEvent


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment, so pytest's per-test capture applies."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def _level(text: str, where: str) -> int:
    try:
        return logging.getLevelNamesMapping()[text.strip().upper()]
    except KeyError:
        raise pytest.UsageError(
            f"{where}: unknown log level {text!r} (use debug, info, warning, error, critical "
            "or off)"
        ) from None


def add_log_options(parser: pytest.Parser) -> None:
    """The command-line options and the ini option that turn posdiag's logs on."""
    group = parser.getgroup("posdiag", "posdiag simulated terminals")
    group.addoption(
        "--posdiag-logs",
        action="store_true",
        default=False,
        help="print posdiag's own log lines (drivers, simulators) to stderr, at DEBUG unless "
        "--posdiag-log-level or the ini option posdiag_log_level names a level.",
    )
    group.addoption(
        "--posdiag-log-level",
        metavar="LEVEL",
        default=None,
        help="print posdiag's log lines from LEVEL up (debug, info, warning, error, critical; "
        "off keeps them quiet).",
    )
    parser.addini(
        LOG_LEVEL_INI,
        "print posdiag's log lines from this level up (debug, info, …); empty or off: quiet "
        "(WARNING and above reach pytest's log capture only)",
        default="",
    )


def _wanted(config: pytest.Config) -> int | None:
    """The level at which posdiag's logs are printed, or None to keep them quiet."""
    option = config.getoption("posdiag_log_level", None)
    if option is not None:
        where, text = "--posdiag-log-level", str(option)
    else:
        where, text = LOG_LEVEL_INI, str(config.getini(LOG_LEVEL_INI) or "")
    if config.getoption("posdiag_logs", False) and text.strip().lower() in OFF:
        return _level(PRINTED_LEVEL, "--posdiag-logs")
    if text.strip().lower() in OFF:
        return None
    return _level(text, where)


def _ours() -> _PosdiagRouter | None:
    for processor in structlog.get_config()["processors"]:
        if isinstance(processor, _PosdiagRouter):
            return processor
    return None


def install_logging(config: pytest.Config) -> None:
    """Route posdiag's structlog events as described in the module docstring.

    Called at ``pytest_configure`` and again before each test if something (a CLI run's
    teardown, ``structlog.reset_defaults()``) took the configuration away.

    Raises:
        pytest.UsageError: an unknown level in the option or the ini file.
    """
    printed = _wanted(config)
    threshold = QUIET_LEVEL if printed is None else printed
    root = logging.getLogger(LOGGER_PREFIX)
    names = {handler.get_name() for handler in root.handlers}
    if _NULL_HANDLER_NAME not in names:
        # Records with no handler at all would reach logging.lastResort, which prints warnings.
        null = logging.NullHandler()
        null.set_name(_NULL_HANDLER_NAME)
        root.addHandler(null)
    if printed is not None and _HANDLER_NAME not in names:
        handler = _StderrHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setLevel(printed)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(name)s: %(message)s"))
        root.addHandler(handler)
    router = _ours()
    if router is not None:
        router.threshold = threshold
        return
    if structlog.is_configured():
        return  # the project configured structlog itself: its choice stands
    current = structlog.get_config()
    structlog.configure(
        processors=[_PosdiagRouter(threshold), *current["processors"]],
        logger_factory=_RoutingLoggerFactory(current["logger_factory"]),
        cache_logger_on_first_use=False,
    )


def reinstall_logging(config: pytest.Config) -> None:
    """Put the routing back if structlog was reset to its defaults since (not if reconfigured)."""
    if not structlog.is_configured():
        install_logging(config)


def uninstall_logging() -> None:
    """Give structlog and the ``posdiag`` logger back as they were before the session."""
    if _ours() is not None:
        structlog.reset_defaults()
    root = logging.getLogger(LOGGER_PREFIX)
    for handler in list(root.handlers):
        if handler.get_name() in (_HANDLER_NAME, _NULL_HANDLER_NAME):
            root.removeHandler(handler)
            handler.close()
