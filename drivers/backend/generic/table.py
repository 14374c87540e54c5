"""Validation of one TOML table of a profile: typed getters and one-line errors naming the key.

Profiles are written by hand at a depot; a typo must fail loudly with the file and the dotted key
(``profile x.toml: signing.scheme must be one of …``), never be ignored or raise a traceback.
"""

from __future__ import annotations

import re
from typing import Any

from ..model import BackendConfigError

__all__ = ["FIELD", "Table"]

FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
"""A request field name as platforms spell them (``agentNo``, ``materials_no``)."""
_KIND_NAMES = {str: "string", bool: "boolean (true or false)", list: "list", dict: "table"}


class Table:
    """One TOML table being validated (``where`` is its dotted name, ``""`` for the top)."""

    def __init__(self, source: str, where: str, data: object) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            raise self.error(f"[{where}] must be a table" if where else "must be a TOML table")
        self.data: dict[str, Any] = data

    def error(self, message: str) -> BackendConfigError:
        """A one-line configuration error naming the profile file."""
        return BackendConfigError(f"profile {self.source}: {message}")

    def key(self, name: str) -> str:
        """The dotted name of a key of this table, as errors quote it."""
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str, kind: type, default: Any = None, required: bool = False) -> Any:
        """A value of type ``kind`` (booleans are not integers here), or ``default``."""
        if name not in self.data:
            if required:
                raise self.error(f"{self.key(name)} is missing")
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(f"{self.key(name)} must be a {_KIND_NAMES.get(kind, 'value')}")
        return value

    def text(
        self, name: str, pattern: re.Pattern[str] | None = None, required: bool = False
    ) -> str | None:
        """A string matching ``pattern``; an optional empty string reads as absent."""
        value: str | None = self.get(name, str, required=required)
        if value == "" and not required:
            return None
        if value is not None and pattern is not None and not pattern.fullmatch(value):
            raise self.error(f"{self.key(name)} = {value[:40]!r} is not valid here")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        """One of ``choices``."""
        value = self.get(name, str, default)
        if value not in choices:
            raise self.error(
                f"{self.key(name)} must be one of {', '.join(choices)}, not {value[:40]!r}"
            )
        return str(value)

    def codes(self, name: str) -> tuple[str, ...]:
        """A list of business codes or message parts, as quoted strings."""
        value = self.get(name, list, [])
        if not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value):
            raise self.error(f'{self.key(name)} must be a list of quoted strings, e.g. ["00"]')
        return tuple(value)

    def fields(self, name: str) -> dict[str, str]:
        """A table of constant request fields (name → string value)."""
        value = self.get(name, dict, {})
        for key, item in value.items():
            if not FIELD.fullmatch(key) or not isinstance(item, str) or len(item) > 256:
                raise self.error(f"{self.key(name)}.{key[:40]} must be a string field")
        return dict(value)

    def sub(self, name: str, required: bool = False) -> Table | None:
        """A sub-table, or None when it is optional and absent."""
        if name not in self.data and not required:
            return None
        if name not in self.data:
            raise self.error(f"[{self.key(name)}] is missing")
        return Table(self.source, self.key(name), self.data[name])

    def need(self, name: str) -> Table:
        """A required sub-table."""
        table = self.sub(name, required=True)
        assert table is not None
        return table

    def done(self, *known: str) -> None:
        """Refuse keys this table does not define: a typo must not be silently ignored."""
        extra = sorted(set(self.data) - set(known))
        if extra:
            raise self.error(f"unknown key {self.key(extra[0])[:80]!r} (known: {', '.join(known)})")
