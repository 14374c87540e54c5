"""Logging for posdiag: structlog in front, stdlib logging routed through the same pipeline.

Logs go to stderr because stdout carries command output (tables, JSON reports) that people pipe
into other tools. Two formats exist: ``console`` for a person at the bench and ``json`` (one object
per line) for collectors. Whatever the format, two processors run just before rendering:

* redaction, because terminal passwords, PINs, keys and merchant identifiers must never reach a
  log file, a ticket or a screenshot;
* bytes-to-hex, because protocol traces are bytes and Python's escaped bytes repr is
  unreadable next to the hex dumps in the protocol specs;

and, last before the renderer, sanitising: every string (keys, values, the event itself, at any
depth) is passed through :func:`posdiag.drivers.text.clean_text`, because log values quote what
terminals said and an escape sequence in a model name must not repaint the operator's screen or
forge a line in a log file.

``mask_identifier`` and ``redact`` are public so reports mask identifiers the same way logs do.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

from posdiag.drivers.text import mask_identifier

if TYPE_CHECKING:  # structlog is imported where it is used: `posdiag --version` never needs it
    import structlog
    from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "HEX_LIMIT",
    "REDACTED",
    "configure_logging",
    "get_logger",
    "hex_bytes",
    "mask_identifier",
    "redact",
    "redact_processor",
    "render_bytes",
    "sanitise_processor",
]

REDACTED = "[redacted]"
LOG_TEXT_LIMIT = 4096
"""Characters one logged string keeps (per line): room for a full hex dump, not for a flood."""
HEX_LIMIT = 512
"""Bytes shown before a hex rendering is cut short; a full firmware blob helps nobody in a log."""

SECRET_KEYS = frozenset(
    {"password", "pin", "pan", "key", "secret", "token", "signature", "private_key", "adbkey"}
)
IDENTIFIER_KEYS = frozenset({"terminal_id", "tid", "merchant_id", "mid", "vu_number"})

_LEVEL_NAMES = ("debug", "info", "warning", "error", "critical")
_HANDLER_NAME = "posdiag"
QUIET_LIBRARIES = ("httpx", "httpcore")
"""Loggers held at WARNING or above whatever the level: their records carry request URLs."""


_normalised: dict[str, str] = {}
"""Keys already normalised: reports repeat the same few hundred field names."""


def _normalise_key(key: object) -> str | None:
    """Lower-case a key and treat ``-`` like ``_`` so ``Private-Key`` is caught too."""
    if type(key) is not str:
        return key.lower().replace("-", "_") if isinstance(key, str) else None
    name = _normalised.get(key)
    if name is None:
        name = key.lower().replace("-", "_")
        if len(_normalised) < 4096:  # keys can come from a device: keep the memo bounded
            _normalised[key] = name
    return name


def _mask_value(value: Any) -> Any:
    """Mask an identifier value, descending into containers; unchanged values keep identity."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        # ZVT carries the terminal id as BCD, whose hex spelling is the id people know.
        return mask_identifier(bytes(value).hex())
    if isinstance(value, Mapping):
        return _redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_mask_value(item) for item in value]
    return mask_identifier(str(value))


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _redact_value(key: object, value: Any) -> Any:
    """Redact one value according to its key; return the same object when nothing changed."""
    name = _normalise_key(key)
    if name is None and type(value) in _SCALARS:
        return value  # list items and keyless values: only containers need a look inside
    if name in SECRET_KEYS:
        # None stays None: "no password set" is useful and reveals nothing.
        return value if value is None else REDACTED
    if name in IDENTIFIER_KEYS:
        return _mask_value(value)
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return _redact_mapping(value)
    if isinstance(value, list | tuple):
        items = [_redact_value(None, item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


def _redact_mapping(mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """Redact a nested mapping, copying it only if something inside had to change."""
    redacted = {key: _redact_value(key, value) for key, value in mapping.items()}
    if all(redacted[key] is value for key, value in mapping.items()):
        return mapping
    return redacted


def redact(event_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``event_dict`` with secrets replaced and identifiers masked.

    Secrets (password, pin, pan, key, secret, token, signature, private_key, adbkey) become
    ``"[redacted]"``; identifiers (terminal_id, tid, merchant_id, mid, vu_number) keep their last
    four characters. Key names match case-insensitively, at any depth inside dicts and lists. The
    input is never modified: nested dicts usually belong to the caller.

    Args:
        event_dict: a structlog event dict, or any report section keyed by field name.

    Returns:
        A new dict, safe to log or print.
    """
    return {key: _redact_value(key, value) for key, value in event_dict.items()}


def redact_processor(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """Structlog processor wrapper around :func:`redact`."""
    return redact(event_dict)


def hex_bytes(data: bytes | bytearray | memoryview, limit: int = HEX_LIMIT) -> str:
    """Render bytes as spaced lowercase hex, the way protocol specs print frames.

    Args:
        data: the bytes to show.
        limit: how many bytes to show before cutting the rendering short.

    Returns:
        ``"10 02 80 00"``; longer data ends with ``" … (+N bytes)"``.
    """
    raw = data.tobytes() if isinstance(data, memoryview) else bytes(data)
    shown = raw[:limit].hex(" ")
    if len(raw) > limit:
        return f"{shown} … (+{len(raw) - limit} bytes)"
    return shown


def _hexify(value: Any) -> Any:
    """Replace bytes-like values with hex, descending into dicts and lists."""
    if isinstance(value, bytes | bytearray | memoryview):
        return hex_bytes(value)
    if isinstance(value, Mapping):
        return {key: _hexify(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_hexify(item) for item in value]
    return value


def render_bytes(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """Structlog processor turning every bytes-like value into readable hex."""
    for key, value in event_dict.items():
        if isinstance(value, bytes | bytearray | memoryview | Mapping | list | tuple):
            event_dict[key] = _hexify(value)
    return event_dict


def _sanitise(value: Any) -> Any:
    """Clean strings at any depth (line by line, so tracebacks keep their lines)."""
    from posdiag.drivers.text import clean_text

    if isinstance(value, str):
        if value.isascii() and value.isprintable() and len(value) <= LOG_TEXT_LIMIT:
            return value
        return "\n".join(clean_text(line, LOG_TEXT_LIMIT) for line in value.split("\n"))
    if isinstance(value, Mapping):
        return {_sanitise(key): _sanitise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_sanitise(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_sanitise(item) for item in value)
    return value


def sanitise_processor(
    _logger: WrappedLogger, _method_name: str, event_dict: EventDict
) -> EventDict:
    """Structlog processor removing control and escape characters from every string.

    Runs after redaction and hex rendering, just before the renderer: whatever a device said
    and whoever logged it, no control sequence reaches a screen or a log file.
    """
    return {
        _sanitise(key): value if key == "exc_info" else _sanitise(value)
        for key, value in event_dict.items()
    }


def _parse_level(level: str) -> int:
    """Turn ``"warning"``/``"DEBUG"`` into a logging level, rejecting typos loudly."""
    levels = logging.getLevelNamesMapping()
    try:
        return levels[level.strip().upper()]
    except KeyError:
        known = ", ".join(
            name.lower() for name in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        )
        raise ValueError(f"unknown log level {level!r} (use one of {known})") from None


def _is_tty(stream: TextIO) -> bool:
    """Whether colours make sense on ``stream``; closed or odd streams count as not a tty."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _renderer(fmt: Literal["console", "json"], stream: TextIO) -> list[Processor]:
    """The final processors for ``fmt``, each ending in a renderer."""
    import structlog

    if fmt == "json":
        # format_exc_info gives a plain traceback string; dict_tracebacks would add locals,
        # which can hold PINs and keys that redaction never sees.
        return [
            structlog.processors.format_exc_info,
            sanitise_processor,
            structlog.processors.JSONRenderer(),
        ]
    if fmt == "console":
        # plain_traceback rather than rich's default, which prints local variables (secrets).
        # The traceback is formatted to text first so it is sanitised like every other value
        # (an exception message can quote a device).
        return [
            structlog.processors.format_exc_info,
            sanitise_processor,
            structlog.dev.ConsoleRenderer(
                colors=_is_tty(stream), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    raise ValueError(f"unknown log format {fmt!r} (use console or json)")


def configure_logging(
    fmt: Literal["console", "json"] = "console",
    level: str = "warning",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and stdlib logging; calling it again replaces the previous setup.

    Stdlib records (from pyserial, pyusb or our own ``logging`` users) go through the same
    redaction and rendering as structlog events, so there is one format and one safety net.
    Only the handler installed here is replaced on reconfiguration; handlers others put on the
    root logger (pytest's caplog, for one) are left alone.

    Args:
        fmt: ``console`` for people, ``json`` for one JSON object per line.
        level: minimum level name (``debug``, ``info``, ``warning``, ``error``, ``critical``).
        stream: where logs go; stderr (looked up at call time) when None.

    Raises:
        ValueError: for an unknown format or level.
    """
    import structlog

    numeric_level = _parse_level(level)
    out = stream if stream is not None else sys.stderr
    final = _renderer(fmt, out)

    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Caching would pin loggers created before a reconfiguration to the old setup.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_processor,
            render_bytes,
            *final,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # httpx and httpcore log every request's full URL at INFO/DEBUG; backends sign requests with
    # credentials in the query string (PAXSTORE's sysKey), so their records never reach a log.
    # The backend connectors log what was asked themselves, without the query.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (use ``__name__``), following the current configuration."""
    import structlog

    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
