"""The model catalogue: declarative entries (TOML) that say what each terminal model is.

Code asks the catalogue, never a table of its own: which label set reads a model's printout,
whether it has a vendor factory reset, which USB IDs mean "this is a terminal". Adding a model
is a data change.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeVar

from ..errors import PosdiagError


class CatalogueError(PosdiagError):
    """A shipped catalogue file is malformed (a packaging bug, reported loudly)."""


@dataclass(frozen=True)
class ModelEntry:
    """One terminal model."""

    id: str
    vendor: str
    model: str
    family: str
    match_names: tuple[str, ...] = ()
    usb: tuple[str, ...] = ()
    label_set: str = "generic"
    vendor_extension: str = ""
    factory_reset: str = ""
    baud: int = 9600
    tcp_port: int = 20007

    def matches_name(self, name: str | None) -> bool:
        """Whether a reported device name identifies this model."""
        if not name:
            return False
        lowered = name.strip().lower()
        return any(lowered.startswith(candidate.lower()) for candidate in self.match_names)


@dataclass(frozen=True)
class AdapterEntry:
    """A USB-serial adapter a terminal may sit behind (protocol unknown until probed)."""

    name: str
    usb: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    """All entries of all families."""

    models: tuple[ModelEntry, ...]
    adapters: tuple[AdapterEntry, ...]

    def generic(self, family: str) -> ModelEntry:
        """The fallback entry of a family (no match names)."""
        for entry in self.models:
            if entry.family == family and not entry.match_names:
                return entry
        raise CatalogueError(f"catalogue has no generic {family} entry")

    def by_name(self, family: str, *names: str | None) -> ModelEntry:
        """The model a terminal's reported names identify, else the family's generic entry."""
        for entry in self.models:
            if entry.family == family and any(entry.matches_name(n) for n in names):
                return entry
        return self.generic(family)

    def by_usb(self, vid: int, pid: int) -> ModelEntry | AdapterEntry | None:
        """The model or adapter with this USB ID."""
        key = f"{vid:04x}:{pid:04x}"
        entries: tuple[ModelEntry | AdapterEntry, ...] = (*self.models, *self.adapters)
        for entry in entries:
            if key in entry.usb:
                return entry
        return None


T = TypeVar("T")


def _entry(cls: type[T], data: dict[str, object], where: str) -> T:
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - fields
    if unknown:
        raise CatalogueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise CatalogueError(f"{where}: {exc}") from None


@cache
def load_catalogue() -> Catalogue:
    """Load every shipped ``*.toml`` of this package (cached: it is read-only data)."""
    models: list[ModelEntry] = []
    adapters: list[AdapterEntry] = []
    for resource in sorted(resources.files(__name__).iterdir(), key=lambda r: r.name):
        if not resource.name.endswith(".toml"):
            continue
        try:
            data = tomllib.loads(resource.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise CatalogueError(f"catalogue {resource.name}: {exc}") from None
        for index, item in enumerate(data.get("model", [])):
            models.append(_entry(ModelEntry, item, f"{resource.name} model #{index + 1}"))
        for index, item in enumerate(data.get("adapter", [])):
            adapters.append(_entry(AdapterEntry, item, f"{resource.name} adapter #{index + 1}"))
    return Catalogue(tuple(models), tuple(adapters))
