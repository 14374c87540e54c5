"""Build simulator engines by family and scenario name (used by the CLI and the possim:// URLs).

Kept apart from the families so ``posdiag simulate`` and pyserial's URL handler share one way of
turning ``zvt`` + ``activated`` + options into a running terminal.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from posdiag.drivers.errors import AddressError, PosdiagError

# The scenario data (faults, scenario names) is cheap and every check reads it; each family's
# engine and protocol are imported when a simulator of that family is built, so checking a
# simulated ZVT terminal never loads the Android simulator (its shell, TMS client, keys) and
# the other way round.
from .adb.state import Faults as AdbFaults
from .adb.state import available_scenarios as android_scenarios
from .adb.state import load_android
from .zvt.state import Faults, available_scenarios, load_scenario

if TYPE_CHECKING:
    from posdiag.drivers.zvt.connection import Link

    from .adb.engine import AdbSimulator
    from .nexo.simulator import NexoSimulator
    from .zvt.engine import ZvtSimulator

FAMILIES = ("zvt",)
MAX_SECONDS = 86_400.0
"""Longest delay a simulator option may ask for (one day); more is a typo."""
MAX_COUNT = 1_000_000
"""Largest fault counter (frames to corrupt, packets to drop…)."""
MAX_BAUD = 4_000_000
COMMON_OPTIONS = frozenset(
    {
        # the simulator's timing and identity
        "time_scale",
        "scale",
        "latency",
        "baud",
        "password",
        "serial",
        "model",
        "auth",
        "accept_keys",
        # read by other layers from the same address: driver timers, attachment, bus, fleet
        "t1",
        "t2",
        "t3",
        "t4",
        "timeout",
        "auth_timeout",
        "currency",
        "trace",
        "via",
        "bus",
        "unit",
        "posdiag_fixture",
        "tms",
    }
)
"""Options a simulated terminal's address may carry besides fault names."""
NEXO_OPTIONS = frozenset({"event_url", "allow_cleartext", "additional_format"})
"""Options only a simulated nexo (Adyen) terminal takes, besides COMMON_OPTIONS and faults."""
_SERIAL = re.compile(r"[A-Za-z0-9._-]{1,32}")
_ZVT_SERIAL = re.compile(r"(?:[0-9A-Fa-f]{2}){1,4}")
_NEXO_SERIAL = re.compile(r"[A-Za-z0-9]{1,32}")
_HTTP_URL = re.compile(r"https?://[A-Za-z0-9.:\[\]_-]{1,200}(/[\x21-\x7e]{0,200})?")


def validate_serial(text: str, family: str | None = None) -> str:
    """Return ``text`` when it can be a simulated terminal's serial number.

    A serial ends up in ledgers, certificates and file names, so it is 1 to 32 letters, digits,
    dots, underscores or hyphens. A ZVT terminal reports its serial as bytes (tag 1F42, and
    eight characters of the Feig system info), so a ZVT serial is 2 to 8 hex digits, in pairs.

    Args:
        text: the serial asked for.
        family: ``"zvt"`` adds the ZVT rule; None or ``"adb"`` checks the general rule only.

    Raises:
        ValueError: anything else, with one line saying what is allowed.
    """
    if not isinstance(text, str) or not _SERIAL.fullmatch(text):
        raise ValueError(f"invalid serial {text!r}: use 1 to 32 letters, digits, '.', '_' or '-'")
    if family == "zvt" and not _ZVT_SERIAL.fullmatch(text):
        raise ValueError(
            f"invalid serial {text!r} for a ZVT terminal: use 2 to 8 hex digits, e.g. 17F59B1F"
        )
    if family == "nexo" and not _NEXO_SERIAL.fullmatch(text):
        raise ValueError(
            f"invalid serial {text!r} for a nexo terminal: it is half of the POIID "
            "(MODEL-SERIAL), so use 1 to 32 letters or digits, e.g. 324688179"
        )
    return text


def fault_names(family: str) -> list[str]:
    """The fault names a simulated terminal of ``family`` understands, sorted."""
    if family == "nexo":
        from .nexo.state import Faults as NexoFaults

        return sorted(NexoFaults.__dataclass_fields__)
    fields = Faults.__dataclass_fields__ if family == "zvt" else AdbFaults.__dataclass_fields__
    return sorted(fields)


def check_fault_names(family: str, options: dict[str, Any]) -> None:
    """Refuse an option that is neither a known fault nor a known simulator option.

    A typo such as ``?corupt_crc=1`` would otherwise give a simulator without the fault and a
    green test that tests nothing.

    Raises:
        AddressError: one line naming the unknown option and listing the valid fault names.
    """
    known = set(fault_names(family))
    extra = NEXO_OPTIONS if family == "nexo" else frozenset()
    for name in options:
        key = name.replace("-", "_")
        if key not in known and key not in COMMON_OPTIONS and key not in extra:
            raise AddressError(
                f"unknown fault {name!r} for a simulated {family} terminal "
                f"(faults: {', '.join(sorted(known))})"
            )


def _number(options: dict[str, str], name: str, *, maximum: float = MAX_SECONDS) -> float | None:
    """A numeric option: finite, not negative, at most ``maximum`` (one line otherwise)."""
    raw = options.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise AddressError(f"simulator option {name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or value > maximum:
        raise AddressError(
            f"simulator option {name}={raw!r} must be a number from 0 to {maximum:g}"
        )
    return value


def _count(options: dict[str, str], name: str) -> int:
    """A counter option: a whole number from 0 to MAX_COUNT."""
    value = _number(options, name, maximum=MAX_COUNT) or 0.0
    if value != int(value):
        raise AddressError(f"simulator option {name}={options[name]!r} must be a whole number")
    return int(value)


def _serial_option(options: dict[str, str], family: str) -> str | None:
    """The ``serial`` option, validated, or None."""
    if not options.get("serial"):
        return None
    try:
        return validate_serial(options["serial"], family)
    except ValueError as exc:
        raise AddressError(str(exc)) from None


def zvt_overrides(options: dict[str, str]) -> dict[str, Any]:
    """Turn string options (time_scale, baud, latency, password, fault names) into overrides."""
    overrides: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    for option, key in (("time_scale", "scale"), ("scale", "scale"), ("latency", "latency")):
        value = _number(options, option)
        if value is not None:
            timing[key] = value
    baud = _number(options, "baud", maximum=MAX_BAUD)
    if baud is not None:
        if baud < 1:
            raise AddressError(f"simulator option baud={options['baud']!r} must be positive")
        timing["baud"] = int(baud)
    if timing:
        overrides["timing"] = timing
    if "password" in options:
        overrides["terminal"] = {"password": options["password"]}
    serial = _serial_option(options, "zvt")
    if serial:  # a fleet of one model needs one serial number per unit
        overrides.setdefault("terminal", {})["serial"] = serial.upper()  # as 1F42 reads back
    check_fault_names("zvt", options)
    faults: dict[str, Any] = {}
    known = {f for f in Faults.__dataclass_fields__}
    for name, raw in options.items():
        key = name.replace("-", "_")
        if key not in known:
            continue
        default = getattr(Faults(), key)
        if isinstance(default, bool):
            faults[key] = raw.lower() in ("1", "true", "yes", "")
        elif isinstance(default, str):
            faults[key] = raw  # a command name such as "Set/Reset Terminal-ID", taken verbatim
        elif key == "garbage":
            faults[key] = raw
        elif key in ("corrupt_crc", "drop_ack", "disconnect_after"):
            faults[key] = _count(options, name)
        else:
            faults[key] = _number(options, name)
    if faults:
        overrides["faults"] = faults
    return overrides


def create_zvt(
    scenario: str, options: dict[str, str] | None = None, link: Link | None = None
) -> ZvtSimulator:
    """A ZVT simulator in the named scenario with options applied (serial framing by default)."""
    from posdiag.drivers.zvt.connection import Link

    from .zvt.engine import ZvtSimulator

    options = options or {}
    return ZvtSimulator(
        load_scenario(scenario, zvt_overrides(options)), Link.SERIAL if link is None else link
    )


def create_engine(family: str, scenario: str, options: dict[str, str]) -> ZvtSimulator:
    """The engine for ``possim://FAMILY/SCENARIO?options`` (serial framing)."""
    if family != "zvt":
        raise PosdiagError(f"no simulator for family {family!r} (available: {', '.join(FAMILIES)})")
    return create_zvt(scenario, options)  # serial framing: what pyserial's possim:// carries


def _http_url(options: dict[str, str], name: str) -> str:
    """An http(s) URL option ("" when absent), one line when malformed."""
    url = options.get(name, "")
    if url and not _HTTP_URL.fullmatch(url):
        raise AddressError(f"{name} must be an http(s) URL, not {url[:60]!r}")
    return url


def _flag(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "")


def create_nexo(
    scenario: str,
    model: str = "V400m",
    options: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> NexoSimulator:
    """A simulated Adyen (nexo) terminal, not started: a scenario applied to a model profile.

    Options: ``time_scale``/``scale`` and ``latency`` (timing), ``serial``, ``tms`` (a
    simulated Adyen backend's URL), ``event_url`` (where EventNotifications go),
    ``allow_cleartext`` (0: play a LIVE terminal that refuses cleartext),
    ``additional_format`` (``form`` or ``base64-json``) and the faults of
    :class:`posdiag.simulators.nexo.state.Faults`. ``overrides`` (TOML layout) go on top.

    Raises:
        AddressError: an unknown or malformed option (NexoScenarioError for scenario/model).
    """
    from .nexo.simulator import NexoSimulator
    from .nexo.state import Faults as NexoFaults
    from .nexo.state import load_nexo
    from .scenario_data import deep_merge

    options = options or {}
    check_fault_names("nexo", options)
    given: dict[str, Any] = {}
    terminal: dict[str, Any] = {}
    faults: dict[str, Any] = {}
    for name, raw in options.items():
        key = name.replace("-", "_")
        if key not in NexoFaults.__dataclass_fields__:
            continue
        default = getattr(NexoFaults(), key)
        if isinstance(default, bool):
            faults[key] = _flag(raw)
        elif isinstance(default, float):
            faults[key] = _number(options, name)
        else:
            faults[key] = _count(options, name)
    if faults:
        given["faults"] = faults
    timing: dict[str, Any] = {}
    for option, key in (("time_scale", "scale"), ("scale", "scale"), ("latency", "latency")):
        value = _number(options, option)
        if value is not None:
            timing[key] = value
    if timing:
        given["timing"] = timing
    serial = _serial_option(options, "nexo")
    if serial:
        terminal["serial"] = serial
    for option, key in (("tms", "tms_url"), ("event_url", "event_url")):
        url = _http_url(options, option)
        if url:
            terminal[key] = url
    layout = options.get("additional_format")
    if layout is not None:
        if layout not in ("form", "base64-json"):
            raise AddressError(f"additional_format must be form or base64-json, not {layout!r}")
        terminal["additional_response_format"] = layout
    if terminal:
        given["terminal"] = terminal
    if "allow_cleartext" in options:
        given["key"] = {"allow_cleartext": _flag(options["allow_cleartext"])}
    return NexoSimulator(load_nexo(scenario, model, deep_merge(given, overrides or {})))


def require_scenario(family: str, scenario: str) -> None:
    """Refuse an unknown scenario name with the list of known ones (a typo, not a dead unit).

    Raises:
        AddressError: no such scenario in the family.
    """
    if family == "nexo":
        from .nexo.state import available_scenarios as nexo_scenarios

        known = nexo_scenarios()
    else:
        known = available_scenarios() if family == "zvt" else android_scenarios()
    if scenario not in known:
        kind = {"zvt": "scenario", "nexo": "nexo scenario"}.get(family, "Android scenario")
        raise AddressError(f"unknown simulated {kind} {scenario!r} (available: {', '.join(known)})")


def scenarios(family: str) -> list[str]:
    """Scenario names of a family."""
    if family != "zvt":
        raise PosdiagError(f"no simulator for family {family!r}")
    return available_scenarios()


def create_adb(
    scenario: str, model: str = "android-generic", options: dict[str, str] | None = None
) -> AdbSimulator:
    """An Android POS simulator: a scenario applied to a model profile."""
    from .adb.engine import AdbSimulator

    options = options or {}
    check_fault_names("adb", options)
    overrides: dict[str, Any] = {}
    faults: dict[str, Any] = {}
    known = set(AdbFaults.__dataclass_fields__)
    for name, raw in options.items():
        key = name.replace("-", "_")
        if key not in known:
            continue
        default = getattr(AdbFaults(), key)
        if isinstance(default, bool):
            faults[key] = raw.lower() in ("1", "true", "yes", "")
        elif isinstance(default, str):
            faults[key] = raw  # a command prefix such as "pm clear", taken verbatim
        elif isinstance(default, float):
            faults[key] = _number(options, name)
        else:
            faults[key] = _count(options, name)
    if faults:
        overrides["faults"] = faults
    if "auth" in options:
        overrides["device"] = {"auth_required": options["auth"].lower() in ("1", "true", "yes")}
    if "accept_keys" in options:
        overrides.setdefault("device", {})["accept_new_keys"] = options["accept_keys"] != "0"
    serial = _serial_option(options, "adb")
    if serial:  # a fleet of one model needs one serial number per unit
        device = overrides.setdefault("device", {})
        device["serial"] = serial
        device["vendor_serial"] = serial
    # Timing, named as for ZVT: ``latency`` seconds before each command's answer (a real unit
    # forks a shell per command), scaled by ``time_scale`` (0: as fast as possible).
    for option, key in (("latency", "latency"), ("time_scale", "scale"), ("scale", "scale")):
        value = _number(options, option)
        if value is not None:
            overrides.setdefault("device", {})[key] = value
    tms_url = options.get("tms", "")
    if tms_url:
        if not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]_-]{1,200}(/[\x21-\x7e]{0,200})?", tms_url):
            raise AddressError(
                f"tms must be an http(s) URL of a simulated backend, not {tms_url[:60]!r}"
            )
        overrides.setdefault("device", {})["tms_url"] = tms_url
    simulator = AdbSimulator(load_android(scenario, model, overrides))
    if tms_url:
        from .adb import tms

        tms.sync(simulator.state)  # enrolment: the unit registers with its TMS
    return simulator
