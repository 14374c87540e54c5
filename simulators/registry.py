"""Build simulator engines by family and scenario name (used by the CLI and the possim:// URLs).

Kept apart from the families so ``posdiag simulate`` and pyserial's URL handler share one way of
turning ``zvt`` + ``activated`` + options into a running terminal.
"""

from __future__ import annotations

from typing import Any

from posdiag.drivers.errors import AddressError, PosdiagError
from posdiag.drivers.zvt.connection import Link

from .adb.engine import AdbSimulator
from .adb.state import Faults as AdbFaults
from .adb.state import available_scenarios as android_scenarios
from .adb.state import load_android
from .zvt.engine import ZvtSimulator
from .zvt.state import Faults, available_scenarios, load_scenario

FAMILIES = ("zvt",)


def _number(options: dict[str, str], name: str) -> float | None:
    raw = options.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise PosdiagError(f"simulator option {name}={raw!r} is not a number") from None


def zvt_overrides(options: dict[str, str]) -> dict[str, Any]:
    """Turn string options (time_scale, baud, latency, password, fault names) into overrides."""
    overrides: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    for option, key in (("time_scale", "scale"), ("scale", "scale"), ("latency", "latency")):
        value = _number(options, option)
        if value is not None:
            timing[key] = value
    baud = _number(options, "baud")
    if baud is not None:
        timing["baud"] = int(baud)
    if timing:
        overrides["timing"] = timing
    if "password" in options:
        overrides["terminal"] = {"password": options["password"]}
    if options.get("serial"):  # a fleet of one model needs one serial number per unit
        overrides.setdefault("terminal", {})["serial"] = options["serial"]
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
            faults[key] = int(_number(options, name) or 0)
        else:
            faults[key] = _number(options, name)
    if faults:
        overrides["faults"] = faults
    return overrides


def create_zvt(
    scenario: str, options: dict[str, str] | None = None, link: Link = Link.SERIAL
) -> ZvtSimulator:
    """A ZVT simulator in the named scenario with options applied."""
    options = options or {}
    return ZvtSimulator(load_scenario(scenario, zvt_overrides(options)), link)


def create_engine(family: str, scenario: str, options: dict[str, str]) -> ZvtSimulator:
    """The engine for ``possim://FAMILY/SCENARIO?options`` (serial framing)."""
    if family != "zvt":
        raise PosdiagError(f"no simulator for family {family!r} (available: {', '.join(FAMILIES)})")
    return create_zvt(scenario, options, Link.SERIAL)


def require_scenario(family: str, scenario: str) -> None:
    """Refuse an unknown scenario name with the list of known ones (a typo, not a dead unit).

    Raises:
        AddressError: no such scenario in the family.
    """
    known = available_scenarios() if family == "zvt" else android_scenarios()
    if scenario not in known:
        kind = "scenario" if family == "zvt" else "Android scenario"
        raise AddressError(
            f"unknown simulated {kind} {scenario!r} (available: {', '.join(known)})"
        )


def scenarios(family: str) -> list[str]:
    """Scenario names of a family."""
    if family != "zvt":
        raise PosdiagError(f"no simulator for family {family!r}")
    return available_scenarios()


def create_adb(
    scenario: str, model: str = "android-generic", options: dict[str, str] | None = None
) -> AdbSimulator:
    """An Android POS simulator: a scenario applied to a model profile."""
    options = options or {}
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
            faults[key] = int(_number(options, name) or 0)
    if faults:
        overrides["faults"] = faults
    if "auth" in options:
        overrides["device"] = {"auth_required": options["auth"].lower() in ("1", "true", "yes")}
    if "accept_keys" in options:
        overrides.setdefault("device", {})["accept_new_keys"] = options["accept_keys"] != "0"
    if options.get("serial"):  # a fleet of one model needs one serial number per unit
        device = overrides.setdefault("device", {})
        device["serial"] = options["serial"]
        device["vendor_serial"] = options["serial"]
    # Timing, named as for ZVT: ``latency`` seconds before each command's answer (a real unit
    # forks a shell per command), scaled by ``time_scale`` (0: as fast as possible).
    for option, key in (("latency", "latency"), ("time_scale", "scale"), ("scale", "scale")):
        value = _number(options, option)
        if value is not None:
            overrides.setdefault("device", {})[key] = value
    return AdbSimulator(load_android(scenario, model, overrides))
