"""The model catalogue: declarative entries (TOML) that say what each terminal model is.

Code asks the catalogue, never a table of its own: which label set reads a model's printout,
whether it has a vendor factory reset, which USB IDs mean "this is a terminal". Adding a model
is a data change.

Android terminals (family ``adb``) carry more than a ZVT model: how getprop identifies them,
where their serial lives, which apps and paths hold merchant data, what proves activation and
how they can be wiped. Their entries are :class:`AdbModelEntry`, a :class:`ModelEntry` with
those extra fields, so ``by_name``/``by_usb``/``generic`` work for every family alike. nexo
terminals (family ``nexo``, Adyen's Terminal API on the shop network) are
:class:`NexoModelEntry`: named by the model part of their POIID, with what they say about a
battery.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import tomllib
from collections.abc import Mapping
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
    charset: str = "cp437"
    """ZVT text character set: the spec's CP437 unless the vendor sends another (card complete:
    ISO-8859-1); the driver may still detect another from a known label in the text."""

    def matches_name(self, name: str | None) -> bool:
        """Whether a reported device name identifies this model."""
        if not name:
            return False
        lowered = name.strip().lower()
        return any(lowered.startswith(candidate.lower()) for candidate in self.match_names)

    @property
    def is_generic(self) -> bool:
        """Whether this is its family's fallback entry (it names no model)."""
        return not self.match_names


ADB_ACTIVATION_KINDS = ("app_data", "property", "device_owner", "account", "file")
"""What an ADB activation recipe inspects (see ``adb.toml``)."""

ADB_WEIGHTS = ("strong", "weak", "info")
"""How much a positive recipe counts: activated, partial evidence, or reported only."""

ADB_FACTORY_RESETS = ("none", "vendor", "testharness")
"""How an Android model can be factory-reset (see ``adb.toml``)."""

_ADB_JUNK_SERIALS = frozenset({"", "unknown", "0123456789abcdef", "0123456789", "null"})


def _squash(value: str | None) -> str:
    """Lower-case, without spaces, ``_`` and ``-``: ``P2_PRO``, ``P2 Pro`` and ``p2-pro`` agree."""
    return re.sub(r"[\s_-]+", "", value or "").lower()


def _prefixed(value: str | None, prefixes: tuple[str, ...]) -> bool:
    squashed = _squash(value)
    return bool(squashed) and any(squashed.startswith(_squash(p)) for p in prefixes if _squash(p))


def _product_prop(props: Mapping[str, str], name: str) -> str | None:
    """``ro.product.<name>``, else its partition copies (Android 10+ split them by partition)."""
    for key in (
        f"ro.product.{name}",
        f"ro.product.vendor.{name}",
        f"ro.product.system.{name}",
        f"ro.product.odm.{name}",
    ):
        value = props.get(key, "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True)
class AdbMatch:
    """The getprop values that identify an Android model (case-insensitive prefixes).

    The vendor matches when ``ro.product.manufacturer`` starts with one of ``manufacturer`` or
    ``ro.product.brand`` with one of ``brand``; when ``model`` is given, ``ro.product.model``
    must start with one of them too. Spaces, ``_`` and ``-`` are ignored, because vendors spell
    one model several ways. An empty match identifies nothing (the generic entry).
    """

    manufacturer: tuple[str, ...] = ()
    brand: tuple[str, ...] = ()
    model: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether this match names nothing at all."""
        return not (self.manufacturer or self.brand or self.model)

    def matches(self, props: Mapping[str, str]) -> bool:
        """Whether a device's getprop values identify this model."""
        if self.empty:
            return False
        vendor = not (self.manufacturer or self.brand) or (
            _prefixed(_product_prop(props, "manufacturer"), self.manufacturer)
            or _prefixed(_product_prop(props, "brand"), self.brand)
        )
        model = not self.model or _prefixed(_product_prop(props, "model"), self.model)
        return vendor and model


@dataclass(frozen=True)
class ActivationRecipe:
    """One way to see that an Android terminal is still bound to a merchant or estate.

    Attributes:
        kind: ``app_data`` (``package`` holds data), ``property`` (``property`` is set, or
            equals ``value``), ``device_owner`` (a device/profile owner is set; ``package``
            narrows it), ``account`` (an account exists; ``account_type`` narrows it) or
            ``file`` (``path`` exists and is not empty).
        means: what a positive finding means, in words for the report.
        weight: ``strong`` (activated), ``weak`` (partial evidence) or ``info`` (reported only).
    """

    kind: str
    means: str
    package: str = ""
    property: str = ""
    value: str = ""
    path: str = ""
    account_type: str = ""
    weight: str = "strong"

    def property_matches(self, actual: str | None) -> bool:
        """For ``property`` recipes: set, or (with ``value``) one of its comma-separated parts.

        Dual-SIM builds print per-slot values such as ``gsm.sim.state=READY,ABSENT``.
        """
        if not actual or not actual.strip():
            return False
        if not self.value:
            return True
        return self.value.lower() in (part.strip().lower() for part in actual.split(","))


@dataclass(frozen=True)
class AdbWipe:
    """How an Android model can be wiped.

    Attributes:
        factory_reset: ``none`` (no reset reachable: operator via recovery), ``vendor`` (only
            through the vendor's TMS/MDM or service tool, not plain adb) or ``testharness``
            (``cmd testharness enable``, Android 10+, no lock screen; not a clean hand-back).
        clear_payment_apps: whether ``pm clear`` of the payment apps is part of the plan.
        notes: operator-facing caveats.
    """

    factory_reset: str = "none"
    clear_payment_apps: bool = True
    notes: str = ""


@dataclass(frozen=True)
class AdbModelEntry(ModelEntry):
    """An Android (ADB) terminal model: identification, serial source, merchant data, wipe.

    ``match_names`` (for :meth:`Catalogue.by_name`) default to ``match.model``. The ZVT-only
    fields (label set, vendor extension, factory reset, baud, port) keep their defaults; the
    wipe method is ``wipe.factory_reset``.

    Attributes:
        match: the getprop values that identify the model.
        serial_props: properties holding the serial, in the order to try them.
        payment_apps: packages whose data means a merchant is configured (each is an implicit
            strong ``app_data`` recipe, and cleared when ``wipe.clear_payment_apps``).
        tms_apps: terminal-management/store clients (enrolment in a vendor TMS).
        vendor_services: vendor system services, present on every unit: never merchant data,
            never cleared.
        merchant_paths: shared-storage directories that may hold merchant files.
        pending_files: JSON exports of the open batch (``{"count", "total_cents", "currency"}``)
            where the payment app writes one: how unsettled money is read without root.
        activation: further activation evidence recipes.
        wipe: how the model can be wiped.
        verified: whether the package names and paths were confirmed on a real unit. While
            False they are leads: report them, but ask before clearing anything by them.
    """

    match: AdbMatch = AdbMatch()
    serial_props: tuple[str, ...] = ("ro.serialno",)
    payment_apps: tuple[str, ...] = ()
    tms_apps: tuple[str, ...] = ()
    tms_backend: str = ""
    """The backend kind that releases this model's TMS/MDM enrolment (``paxstore``), or a
    sentence saying where it is released when no public API exists."""
    vendor_services: tuple[str, ...] = ()
    merchant_paths: tuple[str, ...] = ()
    pending_files: tuple[str, ...] = ()
    activation: tuple[ActivationRecipe, ...] = ()
    wipe: AdbWipe = AdbWipe()
    verified: bool = False

    def matches_name(self, name: str | None) -> bool:
        """Whether a reported model name identifies this model (spelling-tolerant prefix)."""
        return bool(self.match_names) and _prefixed(name, self.match_names)

    @property
    def is_generic(self) -> bool:
        """The fallback names no model and matches no getprop value."""
        return not self.match_names and self.match.empty

    def serial_from(self, props: Mapping[str, str]) -> str | None:
        """The serial from the first of ``serial_props`` that holds a real one.

        Placeholders that generic Android builds report (``unknown``, ``0123456789ABCDEF``)
        are skipped, because a disposal record keyed on them would be worthless.
        """
        for name in self.serial_props:
            value = props.get(name, "").strip()
            if value.lower() not in _ADB_JUNK_SERIALS:
                return value
        return None


NEXO_BATTERIES = ("yes", "no", "unknown")
"""Whether a nexo model runs on a battery (see ``nexo.toml``)."""


@dataclass(frozen=True)
class NexoModelEntry(ModelEntry):
    """A nexo (Adyen Terminal API) terminal model, named by its POIID's model part.

    A POIID is ``[device model]-[serial number]`` (``V400m-324688179``), so ``match_names`` are
    the exact model parts (case-insensitive): ``P400`` must not take ``P400Plus``'s entry.

    Attributes:
        battery: ``yes`` (a portable model: Diagnosis reports ``batteryLevel``), ``no`` (mains
            powered: no battery to judge) or ``unknown``.
        hardware: the hardware as its maker names it, for the report.
        verified: whether the entry was confirmed on a real unit.
    """

    battery: str = "unknown"
    hardware: str = ""
    verified: bool = False

    def matches_name(self, name: str | None) -> bool:
        """Whether a POIID's model part names this model (exact, case-insensitive)."""
        if not name:
            return False
        wanted = name.strip().casefold()
        return any(wanted == candidate.casefold() for candidate in self.match_names)


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
            if entry.family == family and entry.is_generic:
                return entry
        raise CatalogueError(f"catalogue has no generic {family} entry")

    def by_name(self, family: str, *names: str | None) -> ModelEntry:
        """The model a terminal's reported names identify, else the family's generic entry."""
        for entry in self.models:
            if entry.family == family and any(entry.matches_name(n) for n in names):
                return entry
        return self.generic(family)

    def by_getprop(self, props: Mapping[str, str]) -> AdbModelEntry:
        """The Android model a device's ``getprop`` values identify, else the generic one."""
        for entry in self.models:
            if isinstance(entry, AdbModelEntry) and entry.match.matches(props):
                return entry
        generic = self.generic("adb")
        if not isinstance(generic, AdbModelEntry):
            raise CatalogueError("the generic adb entry is not an ADB model entry")
        return generic

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


_ADB_KEYS = frozenset(
    {
        "id",
        "vendor",
        "model",
        "family",
        "match_names",
        "usb",
        "match",
        "serial_props",
        "payment_apps",
        "tms_apps",
        "tms_backend",
        "vendor_services",
        "merchant_paths",
        "pending_files",
        "activation",
        "wipe",
        "verified",
    }
)
_ADB_STRING_LISTS = (
    "match_names",
    "usb",
    "serial_props",
    "payment_apps",
    "tms_apps",
    "vendor_services",
    "merchant_paths",
    "pending_files",
)


def _table(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise CatalogueError(f"{where}: expected a table")
    return value


def _string_list(value: object, where: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogueError(f"{where}: expected a list of strings")


def _recipe(data: dict[str, object], where: str) -> ActivationRecipe:
    recipe = _entry(ActivationRecipe, data, where)
    needs = {"app_data": "package", "property": "property", "file": "path"}.get(recipe.kind)
    if recipe.kind not in ADB_ACTIVATION_KINDS:
        raise CatalogueError(f"{where}: unknown kind {recipe.kind!r}")
    if needs and not getattr(recipe, needs):
        raise CatalogueError(f"{where}: kind {recipe.kind!r} needs {needs}")
    if recipe.weight not in ADB_WEIGHTS:
        raise CatalogueError(f"{where}: unknown weight {recipe.weight!r}")
    if not recipe.means:
        raise CatalogueError(f"{where}: says nothing in 'means'")
    return recipe


def _adb_entry(data: dict[str, object], where: str) -> AdbModelEntry:
    """Build an ADB entry, validating the nested tables a flat ``_entry`` cannot."""
    unknown = set(data) - _ADB_KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    values = dict(data)
    for key in _ADB_STRING_LISTS:
        if key in values:
            _string_list(values[key], f"{where} {key}")
    match_data = _table(values.pop("match", {}), f"{where} match")
    for key, item in match_data.items():
        _string_list(item, f"{where} match.{key}")
    match = _entry(AdbMatch, match_data, f"{where} match")
    activation = values.pop("activation", [])
    if not isinstance(activation, list):
        raise CatalogueError(f"{where} activation: expected an array of tables")
    recipes = tuple(
        _recipe(_table(item, f"{where} activation #{i + 1}"), f"{where} activation #{i + 1}")
        for i, item in enumerate(activation)
    )
    wipe = _entry(AdbWipe, _table(values.pop("wipe", {}), f"{where} wipe"), f"{where} wipe")
    if wipe.factory_reset not in ADB_FACTORY_RESETS:
        raise CatalogueError(f"{where} wipe: unknown factory_reset {wipe.factory_reset!r}")
    if not isinstance(values.get("verified", False), bool):
        raise CatalogueError(f"{where} verified: expected true or false")
    if not isinstance(values.get("tms_backend", ""), str):
        raise CatalogueError(f"{where} tms_backend: expected a string")
    values.setdefault("match_names", list(match.model))
    entry = _entry(AdbModelEntry, values, where)
    return dataclasses.replace(entry, match=match, activation=recipes, wipe=wipe)


def _single_byte_charset(name: str) -> bool:
    """Whether ``name`` maps all 256 bytes one to one (as ZVT text needs; see zvt/charset.py).

    Checked here rather than by importing the ZVT driver: loading the catalogue for an Android
    check must not load the ZVT package.
    """
    every_byte = bytes(range(256))
    try:
        return every_byte.decode(name).encode(name) == every_byte
    except (LookupError, UnicodeError, ValueError):
        return False


_load_lock = threading.Lock()


def load_catalogue() -> Catalogue:
    """Every shipped ``*.toml`` of this package, parsed once per process (read-only data).

    A station's workers all ask at their first terminal: ``functools.cache`` alone would let
    each of them parse the files at the same time (11 parses at a fleet's start); the lock
    makes the others wait for the first parse.
    """
    with _load_lock:
        return _parse_catalogue()


@cache
def _parse_catalogue() -> Catalogue:
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
            where = f"{resource.name} model #{index + 1}"
            if isinstance(item, dict) and item.get("family") == "adb":
                models.append(_adb_entry(item, where))
            elif isinstance(item, dict) and item.get("family") == "nexo":
                nexo = _entry(NexoModelEntry, item, where)
                if nexo.battery not in NEXO_BATTERIES:
                    raise CatalogueError(f"{where}: battery must be one of {NEXO_BATTERIES}")
                models.append(nexo)
            else:
                entry = _entry(ModelEntry, item, where)
                if not _single_byte_charset(entry.charset):
                    raise CatalogueError(
                        f"{where}: charset {entry.charset!r} is not a single-byte character set"
                    )
                models.append(entry)
        for index, item in enumerate(data.get("adapter", [])):
            adapters.append(_entry(AdapterEntry, item, f"{resource.name} adapter #{index + 1}"))
    return Catalogue(tuple(models), tuple(adapters))
