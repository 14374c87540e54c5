"""Parsers for what an Android POS prints over ``adb shell``: getprop, dumpsys, settings, pm, ls.

Why pure functions over text: the same output arrives from a live unit, a recorded capture and a
simulator, and the agent must reach the same conclusions from all three. Android reshapes these
dumps between releases (7 to 14) and vendors add lines of their own, so every parser reads *by
key*, skips what it does not know, and never raises: odd input yields ``None`` or an empty
result, never an exception in the middle of a diagnostic run. A parser that still fails on some
unforeseen text is caught by :func:`_tolerant`, logged, and answers its empty result.

Formats: shared/reference/adb.md section 4 (AOSP ``BatteryService``, ``TelephonyRegistry``,
``WifiInfo``, ``DiskStatsService``, toolbox ``getprop``). Nothing here masks personal data
(SSIDs, account names): the agent masks what it reports.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar, cast

import structlog

from ..model import Battery, NetworkInterface
from ..text import clean_text

log = structlog.get_logger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _tolerant(default: Callable[[], object]) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn an unexpected parser failure into the parser's empty result.

    The parsers are written not to raise; this is the safety net that keeps that promise when a
    vendor prints something nobody foresaw. The failure is logged so the gap can be fixed.
    """

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # the contract is "never raise"; see the docstring
                log.warning("adb.parse_failed", parser=func.__name__, error=repr(exc))
                return cast(_R, default())

        return wrapper

    return decorate


# --- shared helpers -------------------------------------------------------------------------------

_INT_RE = re.compile(r"\s*([-+]?[0-9]{1,18})\s*")
_FLOAT_RE = re.compile(r"\s*([-+]?[0-9]{1,18}(?:\.[0-9]{1,9})?)\s*")
_INVALID_INT = 2147483647  # Integer.MAX_VALUE: Android's "unavailable" for signal fields
_CRLF = re.compile(r"\r*\n")
LINE_LIMIT = 256 * 1024
"""Longest line a parser reads (a diskstats package list of a thousand apps fits easily)."""
# Patterns applied to every line of an output, compiled once (``re.match(str)`` looks its
# cache up on every call, which costs as much as the match on short lines).
_DISK_LATENCY = re.compile(r"Latency:\s*([0-9]{1,9})ms")
_DISK_FBE = re.compile(r"File-based Encryption:\s*(\w+)")
_DISK_LIST = re.compile(r"(Package Names|App Sizes|App Data Sizes|Cache Sizes):\s*(.*)")
_VERSION_NAME = re.compile(r"\bversionName=(.*)")
_DEVICE_OWNER = re.compile(r"Device Owner\s*:")
_PROFILE_OWNER = re.compile(r"Profile Owner\s*(?:\(\s*User\s*([0-9]{1,6})\s*\))?\s*:")
_ADMINS = re.compile(r"(Enabled|Active) Device Admins\b")
_PACKAGE_FIELD = re.compile(r"package=(\S+)")
_ADMIN = re.compile(r"([A-Za-z][\w.]*/[\w.$]+):")
_LS_TOTAL = re.compile(r"total [0-9]+")


def _lines(text: object) -> list[str]:
    r"""Split command output into lines, whatever line endings the adb transport produced.

    A pty-backed ``adb shell`` on older releases turns ``\n`` into ``\r\n`` (sometimes
    ``\r\r\n``); bytes are decoded leniently so a stray non-UTF-8 byte costs one character.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str) or not text:
        return []
    if "\r" in text:
        text = _CRLF.sub("\n", text).replace("\r", "\n")
    # Cleaned here, the one door every parser's text comes in by: no value read from any line
    # can carry an escape sequence, a control or bidi character, or be longer than LINE_LIMIT.
    return [clean_text(line, LINE_LIMIT) for line in text.split("\n")]


def _ascii_digits(text: str) -> bool:
    """Whether ``text`` is ASCII digits only: ``str.isdigit`` also accepts "²" and "٣"."""
    return text.isascii() and text.isdigit()


def _int(value: str | None) -> int | None:
    """An integer, or None when the value is not one (bounded so huge digit runs cannot raise)."""
    if value is None:
        return None
    match = _INT_RE.fullmatch(value)
    return int(match.group(1)) if match else None


def _float(value: str | None) -> float | None:
    """A decimal number, or None."""
    if value is None:
        return None
    match = _FLOAT_RE.fullmatch(value)
    return float(match.group(1)) if match else None


def _bool(value: str | None) -> bool | None:
    """``true``/``false`` (any case) as a bool, else None."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def _text(value: str | None) -> str | None:
    """A stripped value, with Android's spellings of "nothing" turned into None."""
    if value is None:
        return None
    stripped = value.strip()
    if not stripped or stripped.lower() in ("null", "<none>", "<unknown ssid>", "unknown"):
        return None
    return stripped


def _dedupe(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats (dumps often list a thing twice)."""
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


# --- getprop --------------------------------------------------------------------------------------

_PROP_START = re.compile(r"\[([^\]]+)\]:\s*\[(.*)$")
_PROP_WHOLE = re.compile(r"\[([^\]]+)\]:\s*\[(.*)\]")


@_tolerant(dict)
def parse_getprop(text: str) -> dict[str, str]:
    """Parse the ``getprop`` listing (``[name]: [value]`` per line) into a dict.

    A value may span lines (some vendors store multi-line text in properties): it continues
    until a line ending in ``]``. A line that is itself a complete ``[name]: [value]`` ends an
    unterminated value early, because a truncated capture is likelier than a value that embeds
    another property line. Lines that are not properties (warnings, banners) are skipped.

    Args:
        text: the output of ``adb shell getprop``.

    Returns:
        Property name to value; empty when nothing parses.
    """
    props: dict[str, str] = {}
    pending_name: str | None = None
    pending: list[str] = []
    for line in _lines(text):
        if pending_name is not None:
            if _PROP_WHOLE.fullmatch(line.strip()) is None:
                stripped = line.rstrip()
                if stripped.endswith("]"):
                    pending.append(stripped[:-1])
                    props[pending_name] = "\n".join(pending)
                    pending_name = None
                else:
                    pending.append(line)
                continue
            props[pending_name] = "\n".join(pending)  # cut short; keep what arrived
            pending_name = None
        match = _PROP_START.fullmatch(line.strip())
        if match is None:
            continue
        name, rest = match.group(1).strip(), match.group(2)
        if not name:
            continue
        if rest.rstrip().endswith("]"):
            props[name] = rest.rstrip()[:-1]
        else:
            pending_name, pending = name, [rest]
    if pending_name is not None:
        props[pending_name] = "\n".join(pending)
    return props


# --- settings -------------------------------------------------------------------------------------


@_tolerant(lambda: None)
def parse_settings_value(text: str) -> str | None:
    """Parse ``settings get <namespace> <key>`` (also ``getprop NAME``) into its value.

    ``settings`` prints ``null`` for an unset key and ``getprop NAME`` an empty line; both are
    None. Android 7 builds with text relocations prefix ``WARNING: linker:`` lines, skipped.

    Args:
        text: the command output.

    Returns:
        The value, stripped, or None when unset or absent.
    """
    for line in _lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("WARNING: linker:"):
            continue
        return None if stripped == "null" else stripped
    return None


# --- dumpsys battery ------------------------------------------------------------------------------

BATTERY_STATUS = {1: "unknown", 2: "charging", 3: "discharging", 4: "not charging", 5: "full"}
"""``BatteryManager.BATTERY_STATUS_*`` codes as words."""

BATTERY_HEALTH = {
    1: "unknown",
    2: "good",
    3: "overheat",
    4: "dead",
    5: "over-voltage",
    6: "unspecified failure",
    7: "cold",
}
"""``BatteryManager.BATTERY_HEALTH_*`` codes as words (the policy's ``good_health`` uses these)."""

BATTERY_PLUGGED = {"ac": 1, "usb": 2, "wireless": 4, "dock": 8}
"""``BatteryManager.BATTERY_PLUGGED_*`` bits."""


@dataclass(frozen=True)
class BatteryInfo:
    """What ``dumpsys battery`` says; every field None when the release does not print it.

    Attributes:
        ac_powered, usb_powered, wireless_powered, dock_powered: the power-source flags
            (``Dock powered`` only on newer releases).
        plugged: the ``BATTERY_PLUGGED_*`` bitmask built from the flags (or a vendor
            ``plugged:`` line); 0 means on battery.
        max_charging_current_ua, max_charging_voltage_uv: the charger's advertised limits.
        charge_counter_uah: remaining charge in µAh (0 or absent on many POS builds).
        status, status_text: ``BATTERY_STATUS_*`` code and word.
        health, health_text: ``BATTERY_HEALTH_*`` code and word (``good`` is 2).
        present: whether a battery is fitted.
        level, scale, level_pct: raw level, its scale, and the percentage derived from both.
        voltage_mv: battery voltage in mV (a vendor value in µV is converted).
        temperature_c: battery temperature in °C (Android prints tenths of a degree).
        technology: e.g. ``Li-ion``.
        charging: status charging/full with a power source connected.
        cycle_count: charge cycles, only when a vendor line prints it (AOSP does not).
        charging_state, charging_policy: the Android 14 ``Charging state/policy`` numbers.
        updates_stopped: someone ran ``dumpsys battery set``/``unplug``: the values are
            simulated, not measured, until ``dumpsys battery reset``.
        raw: every ``key: value`` line, lower-cased key, for vendor lines not modelled here.
    """

    ac_powered: bool | None = None
    usb_powered: bool | None = None
    wireless_powered: bool | None = None
    dock_powered: bool | None = None
    plugged: int | None = None
    max_charging_current_ua: int | None = None
    max_charging_voltage_uv: int | None = None
    charge_counter_uah: int | None = None
    status: int | None = None
    status_text: str | None = None
    health: int | None = None
    health_text: str | None = None
    present: bool | None = None
    level: int | None = None
    scale: int | None = None
    level_pct: int | None = None
    voltage_mv: int | None = None
    temperature_c: float | None = None
    technology: str | None = None
    charging: bool | None = None
    cycle_count: int | None = None
    charging_state: int | None = None
    charging_policy: int | None = None
    updates_stopped: bool = False
    raw: dict[str, str] = field(default_factory=dict)

    def to_battery(self) -> Battery:
        """The terminal-contract record, so the ADB driver reports like every other family."""
        return Battery(
            present=self.present,
            level_pct=self.level_pct,
            voltage_mv=self.voltage_mv,
            temperature_c=self.temperature_c,
            health=self.health_text,
            charging=self.charging,
            cycle_count=self.cycle_count,
        )


_KEY_VALUE = re.compile(r"\s*([A-Za-z][^:=]*?)\s*:\s*(.*?)\s*")


def _battery_code(value: str | None, words: dict[int, str]) -> tuple[int | None, str | None]:
    """A status/health value as (code, word); vendors sometimes print the word instead."""
    code = _int(value)
    if code is not None:
        return code, words.get(code)
    text = _text(value)
    if text is None:
        return None, None
    lowered = text.lower().replace("_", " ")
    for number, word in words.items():
        if lowered in (word, word.replace("-", " ")):
            return number, word
    return None, None


@_tolerant(BatteryInfo)
def parse_dumpsys_battery(text: str) -> BatteryInfo:
    """Parse ``dumpsys battery`` (Android 7 to 14, plus vendor extra lines).

    Only the ``Current Battery Service state`` block is read when present; the first value of a
    key wins, so a vendor's second battery section cannot overwrite the main one.

    Args:
        text: the output of ``adb shell dumpsys battery``.

    Returns:
        The parsed :class:`BatteryInfo`; all fields None for unrelated text.
    """
    lines = _lines(text)
    start = next((i + 1 for i, ln in enumerate(lines) if "battery service state" in ln.lower()), 0)
    raw: dict[str, str] = {}
    updates_stopped = any("updates stopped" in ln.lower() for ln in lines)
    for line in lines[start:]:
        if start and _indent(line) == 0 and line.rstrip().endswith(":"):
            break  # the next top-level section (a vendor's own block)
        match = _KEY_VALUE.fullmatch(line)
        if match is None:
            continue
        key = " ".join(match.group(1).lower().split())
        raw.setdefault(key, match.group(2))

    def flag(name: str) -> bool | None:
        return _bool(raw.get(f"{name} powered"))

    ac, usb, wireless, dock = flag("ac"), flag("usb"), flag("wireless"), flag("dock")
    flags = {"ac": ac, "usb": usb, "wireless": wireless, "dock": dock}
    plugged = _int(raw.get("plugged"))
    if plugged is None and any(v is not None for v in flags.values()):
        plugged = sum(BATTERY_PLUGGED[k] for k, v in flags.items() if v)
    status, status_text = _battery_code(raw.get("status"), BATTERY_STATUS)
    health, health_text = _battery_code(raw.get("health"), BATTERY_HEALTH)

    level, scale = _int(raw.get("level")), _int(raw.get("scale"))
    level_pct: int | None = None
    if level is not None and level >= 0:
        divisor = scale if scale is not None and scale > 0 else 100
        level_pct = max(0, min(100, round(level * 100 / divisor)))

    voltage = _int(raw.get("voltage"))
    if voltage is not None and voltage > 100_000:
        voltage //= 1000  # some vendor HALs report µV; no battery reaches 100 V

    temperature: float | None = None
    temp_raw = raw.get("temperature")
    if _int(temp_raw) is not None:
        temperature = round((_int(temp_raw) or 0) / 10, 1)
    elif _float(temp_raw) is not None:
        temperature = _float(temp_raw)  # a vendor already printing °C

    cycle_count: int | None = None
    for key, value in raw.items():
        if "cycle" in key and "count" in key and (count := _int(value)) is not None and count >= 0:
            cycle_count = count
            break

    charging: bool | None = None
    if status is not None:
        powered: bool | None = None
        if plugged is not None:
            powered = plugged > 0
        charging = status in (2, 5) and powered is not False

    return BatteryInfo(
        ac_powered=ac,
        usb_powered=usb,
        wireless_powered=wireless,
        dock_powered=dock,
        plugged=plugged,
        max_charging_current_ua=_int(raw.get("max charging current")),
        max_charging_voltage_uv=_int(raw.get("max charging voltage")),
        charge_counter_uah=_int(raw.get("charge counter")),
        status=status,
        status_text=status_text,
        health=health,
        health_text=health_text,
        present=_bool(raw.get("present")),
        level=level,
        scale=scale,
        level_pct=level_pct,
        voltage_mv=voltage,
        temperature_c=temperature,
        technology=_text(raw.get("technology")),
        charging=charging,
        cycle_count=cycle_count,
        charging_state=_int(raw.get("charging state")),
        charging_policy=_int(raw.get("charging policy")),
        updates_stopped=updates_stopped,
        raw=raw,
    )


# --- dumpsys telephony.registry -------------------------------------------------------------------

REG_STATES = {0: "IN_SERVICE", 1: "OUT_OF_SERVICE", 2: "EMERGENCY_ONLY", 3: "POWER_OFF"}
"""``ServiceState.STATE_*`` codes."""

DATA_CONNECTION_STATES = {
    -1: "UNKNOWN",
    0: "DISCONNECTED",
    1: "CONNECTING",
    2: "CONNECTED",
    3: "SUSPENDED",
    4: "DISCONNECTING",
    5: "HANDOVER_IN_PROGRESS",
}
"""``TelephonyManager.DATA_*`` codes."""

NETWORK_TYPES = {
    1: "GPRS",
    2: "EDGE",
    3: "UMTS",
    4: "CDMA",
    5: "EVDO_0",
    6: "EVDO_A",
    7: "1xRTT",
    8: "HSDPA",
    9: "HSUPA",
    10: "HSPA",
    11: "IDEN",
    12: "EVDO_B",
    13: "LTE",
    14: "EHRPD",
    15: "HSPAP",
    16: "GSM",
    17: "TD_SCDMA",
    18: "IWLAN",
    19: "LTE_CA",
    20: "NR",
}
"""``TelephonyManager.NETWORK_TYPE_*`` codes (``mDataConnectionNetworkType``); 0 is unknown."""


@dataclass(frozen=True)
class PhoneState:
    """One SIM slot's radio state from ``dumpsys telephony.registry``.

    Attributes:
        phone_id: the slot (``Phone Id=N``; 0 when the release prints no ids).
        voice_reg_state, data_reg_state: ``IN_SERVICE``, ``OUT_OF_SERVICE``,
            ``EMERGENCY_ONLY``, ``POWER_OFF`` (or the raw text of an unknown state).
        operator_alpha: the registered network's name (long form preferred).
        operator_numeric: MCC+MNC, when the release prints it (newer ones often do not; fall
            back to the ``gsm.operator.numeric`` property).
        roaming: whether registered on a roaming network.
        network_type: radio technology in use (``LTE``, ``HSPAP``, ``GSM``, ``NR``...).
        emergency_only: the ``mIsEmergencyOnly``/``EmergOnly`` flag.
        signal_dbm: the serving technology's signal in dBm (LTE RSRP, GSM RSSI, ...).
        signal_level: Android's 0-4 bars, when printed.
        signal_rat: which technology ``signal_dbm`` is from (``lte``, ``gsm``...).
        signal_by_rat: every valid per-technology reading in dBm.
        data_connection_state, data_connection: ``mDataConnectionState`` code and name.
    """

    phone_id: int = 0
    voice_reg_state: str | None = None
    data_reg_state: str | None = None
    operator_alpha: str | None = None
    operator_numeric: str | None = None
    roaming: bool | None = None
    network_type: str | None = None
    emergency_only: bool | None = None
    signal_dbm: int | None = None
    signal_level: int | None = None
    signal_rat: str | None = None
    signal_by_rat: dict[str, int] = field(default_factory=dict)
    data_connection_state: int | None = None
    data_connection: str | None = None

    @property
    def in_service(self) -> bool:
        """Registered for voice or data."""
        return "IN_SERVICE" in (self.voice_reg_state, self.data_reg_state)


@dataclass(frozen=True)
class TelephonyInfo:
    """All SIM slots; a single-SIM terminal has one."""

    phones: tuple[PhoneState, ...] = ()

    @property
    def primary(self) -> PhoneState | None:
        """The slot worth reporting: the first in service, else the first one printed."""
        for phone in self.phones:
            if phone.in_service:
                return phone
        return self.phones[0] if self.phones else None


_PHONE_ID = re.compile(r"Phone Id\s*=\s*([0-9]{1,3})\b")
_SECTION_END = re.compile(r"(local logs?|registrations?|restrictions?)\b.*", re.IGNORECASE)
_FIELD = re.compile(r"(m[A-Za-z0-9_]+)\s*=\s*(.*)")


def _phone_sections(lines: list[str]) -> list[tuple[int, dict[str, str]]]:
    """Split the registry dump into per-phone ``mField=value`` maps (first value wins).

    Android 8+ prints ``Phone Id=N`` and indents that phone's fields under it; Android 7
    sometimes prints the fields at the same indent. A section ends at the next ``Phone Id``, a
    line indented less than its header, or a known trailer (``local logs:``, registrations),
    so event-log lines that also mention ``mServiceState`` are never mistaken for state.
    """
    sections: list[tuple[int, dict[str, str]]] = []
    preamble: dict[str, str] = {}
    current: dict[str, str] | None = None
    header_indent = 0
    ended = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        phone = _PHONE_ID.match(stripped)
        if phone:
            current = {}
            sections.append((int(phone.group(1)), current))
            header_indent = _indent(line)
            continue
        if _SECTION_END.fullmatch(stripped) and "=" not in stripped:
            current, ended = None, True
            continue
        if current is not None and _indent(line) < header_indent:
            current = None
        match = _FIELD.match(stripped)
        if match is None:
            continue
        if current is not None:
            current.setdefault(match.group(1), match.group(2).strip())
        elif not sections and not ended:
            preamble.setdefault(match.group(1), match.group(2).strip())
    if not sections and preamble:
        sections.append((0, preamble))
    return sections


def _reg_state(value: str | None) -> str | None:
    """``0(IN_SERVICE)``, ``0`` or ``IN_SERVICE`` as the state name."""
    if value is None:
        return None
    match = re.match(r"\s*(-?[0-9]{1,3})(?:\s*\(([A-Za-z_]+)\))?", value)
    if match:
        if match.group(2):
            return match.group(2).upper()
        return REG_STATES.get(int(match.group(1)))
    word = _text(value)
    return word.upper() if word and re.fullmatch(r"[A-Za-z_]+", word) else None


def _brace_value(state: str, key: str) -> str | None:
    """A ``key=value`` from ServiceState's ``{k=v, k=v}`` form; the value stops at ``,``/``}``."""
    match = re.search(r"(?:^|[{,\s])" + re.escape(key) + r"=([^,}]*)", state)
    return match.group(1).strip() if match else None


def _rat_name(value: str | None) -> str | None:
    """``14(LTE)`` as ``LTE``; ``0(Unknown)`` as None."""
    if value is None:
        return None
    match = re.search(r"\(([^()]+)\)", value)
    name = match.group(1) if match else value
    return _text(name.replace(" ", "_")) if not _ascii_digits(name.strip()) else None


_ROAMING_WORDS = {
    "home": False,
    "not_roaming": False,
    "roaming": True,
    "international": True,
    "domestic": True,
    "international roaming": True,
    "domestic roaming": True,
}


def _roaming(words: Iterable[str | None]) -> bool | None:
    """Combine roaming indicators: any roaming wins, then any home, else unknown."""
    seen = [_ROAMING_WORDS.get(w.strip().lower()) for w in words if w]
    if True in seen:
        return True
    if False in seen:
        return False
    return None


def _pick_alpha(words: list[str]) -> str | None:
    """The long operator name from Android 7's space-joined ``long short`` pair."""
    words = [w for w in words if w]
    if not words or all(w == "null" for w in words):
        return None
    half = len(words) // 2
    if len(words) % 2 == 0 and words[:half] == words[half:]:
        return _text(" ".join(words[:half]))
    if len(words) == 2:
        return _text(words[0])
    return _text(" ".join(words))


_LEGACY_STATE = re.compile(
    r"\s*(?P<voice>-?[0-9]{1,2})\s+(?P<data>-?[0-9]{1,2})\s+"
    r"(?:voice\s+)?(?P<vroam>home|roaming|Domestic Roaming|International Roaming)\s+"
    r"(?:data\s+(?P<droam>home|roaming|Domestic Roaming|International Roaming)\s+)?"
    r"(?P<rest>.*?)\s+CSS\b.*",
    re.IGNORECASE,
)


def _service_state(value: str | None) -> dict[str, object]:
    """The fields of ``mServiceState`` in either the brace (8+) or the positional (7) form."""
    if not value:
        return {}
    out: dict[str, object] = {}
    legacy = _LEGACY_STATE.fullmatch(value)
    if legacy and "{" not in value:
        out["voice"] = _reg_state(legacy.group("voice"))
        out["data"] = _reg_state(legacy.group("data"))
        out["roaming"] = _roaming([legacy.group("vroam"), legacy.group("droam")])
        tokens = legacy.group("rest").replace("(manual)", " ").split()
        if len(tokens) >= 2:
            out["rat"] = _rat_name(tokens[-1]) or _rat_name(tokens[-2])
            tokens = tokens[:-2]
        numeric_at = next((i for i, t in enumerate(tokens) if re.fullmatch(r"[0-9]{5,6}", t)), None)
        if numeric_at is not None:
            out["numeric"] = tokens[numeric_at]
            out["alpha"] = _pick_alpha(tokens[:numeric_at])
        elif tokens and tokens[0] != "null":
            out["alpha"] = _text(tokens[0])
        emergency = re.search(r"EmergOnly=(\w+)", value)
        out["emergency"] = _bool(emergency.group(1)) if emergency else None
        return out

    out["voice"] = _reg_state(_brace_value(value, "mVoiceRegState"))
    out["data"] = _reg_state(_brace_value(value, "mDataRegState"))
    for key in (
        "mOperatorAlphaLong",
        "mVoiceOperatorAlphaLong",
        "mOperatorAlphaShort",
        "mVoiceOperatorAlphaShort",
        "mDataOperatorAlphaLong",
        "mOperatorAlphaLongRaw",
    ):
        if alpha := _text(_brace_value(value, key)):
            out["alpha"] = alpha
            break
    numeric_keys = ("mOperatorNumeric", "mVoiceOperatorNumeric", "mDataOperatorNumeric")
    for key in numeric_keys:
        candidate = _brace_value(value, key)
        if candidate and re.fullmatch(r"[0-9]{5,6}", candidate):
            out["numeric"] = candidate
            break
    else:
        rplmn = re.search(r"\brRplmn=([0-9]{5,6})\b", value)
        mcc_mnc = re.search(r"\bmMcc=([0-9]{3})\s+mMnc=([0-9]{2,3})\b", value)
        if rplmn:
            out["numeric"] = rplmn.group(1)
        elif mcc_mnc:
            out["numeric"] = mcc_mnc.group(1) + mcc_mnc.group(2)

    roaming_words: list[str | None] = [
        _brace_value(value, "mVoiceRoamingType"),
        _brace_value(value, "mDataRoamingType"),
    ]
    for nri in re.finditer(r"NetworkRegistrationInfo\{(.*?)\}", value):
        body = nri.group(1)
        if "transportType=WLAN" in body:
            continue
        roaming_words += re.findall(r"\broamingType=(\w+)", body)
        reg = re.search(r"\bregistrationState=(\w+)", body)
        if reg and reg.group(1) in ("HOME", "ROAMING"):
            roaming_words.append("home" if reg.group(1) == "HOME" else "roaming")
    out["roaming"] = _roaming(roaming_words)

    rat = None
    for key in (
        "getRilDataRadioTechnology",
        "mRilDataRadioTechnology",
        "getRilVoiceRadioTechnology",
        "mRilVoiceRadioTechnology",
    ):
        if rat := _rat_name(_brace_value(value, key)):
            break
    if rat is None:
        for domain in ("PS", "CS"):
            nri_rat = re.search(
                r"domain=" + domain + r"\b[^{}]*?transportType=WWAN[^{}]*?"
                r"accessNetworkTechnology=([A-Za-z0-9_-]+)",
                value,
            )
            if nri_rat and (rat := _rat_name(nri_rat.group(1))):
                break
    out["rat"] = rat
    out["emergency"] = _bool(_brace_value(value, "mIsEmergencyOnly"))
    return out


_RAT_PREFERENCE = ("nr", "lte", "wcdma", "tdscdma", "gsm", "cdma")


def _dbm(value: int | None, low: int, high: int) -> int | None:
    """A reading in its valid range (filters 2147483647, -1 and other "unavailable" markers)."""
    if value is None or value == _INVALID_INT or not low <= value <= high:
        return None
    return value


def _signal(value: str | None) -> tuple[int | None, int | None, str | None, dict[str, int]]:
    """``mSignalStrength`` as (dBm, level, technology, per-technology dBm)."""
    if not value:
        return None, None, None, {}
    readings: dict[str, int] = {}
    levels: dict[str, int] = {}
    if "CellSignalStrength" in value or "{" in value:
        marks = list(re.finditer(r"\bm(Cdma|Gsm|Wcdma|Tdscdma|Lte|Nr)\s*=", value))
        for index, mark in enumerate(marks):
            end = marks[index + 1].start() if index + 1 < len(marks) else len(value)
            segment = value[mark.end() : end].split("primary=")[0]
            if segment.strip().startswith("Invalid"):
                continue
            pairs = {
                k.lower(): int(v) for k, v in re.findall(r"(\w+)\s*=\s*(-?[0-9]{1,10})\b", segment)
            }
            rat = mark.group(1).lower()
            reading = {
                "lte": _dbm(pairs.get("rsrp"), -140, -43) or _dbm(pairs.get("rssi"), -113, -51),
                "gsm": _dbm(pairs.get("rssi"), -113, -51),
                "wcdma": _dbm(pairs.get("rscp"), -120, -24) or _dbm(pairs.get("ss"), -113, -51),
                "tdscdma": _dbm(pairs.get("rscp"), -120, -24),
                "nr": _dbm(pairs.get("ssrsrp"), -156, -31) or _dbm(pairs.get("csirsrp"), -156, -31),
                "cdma": _dbm(pairs.get("cdmadbm"), -120, -20)
                or _dbm(pairs.get("evdodbm"), -120, -20),
            }.get(rat)
            if reading is None:
                continue
            readings[rat] = reading
            level = pairs.get("level", pairs.get("mlevel"))
            if level is not None and 0 <= level <= 4:
                levels[rat] = level
        primary = re.search(r"primary=CellSignalStrength(\w+)", value)
        order: list[str] = list(_RAT_PREFERENCE)
        if primary:
            order.insert(0, primary.group(1).lower())
    else:
        match = re.search(r"SignalStrength:\s*((?:-?[0-9]{1,10}\s*)+)", value)
        if match is None:
            return None, None, None, {}
        numbers = [int(t) for t in match.group(1).split()]

        def at(index: int) -> int | None:
            return numbers[index] if index < len(numbers) else None

        asu = at(0)
        if asu is not None and 0 <= asu <= 31:
            readings["gsm"] = 2 * asu - 113
        if (rsrp := _dbm(at(8), -140, -43)) is not None:
            readings["lte"] = rsrp
        if (rscp := _dbm(at(12), -120, -24)) is not None:
            readings["tdscdma"] = rscp
        # GSM phones print the CDMA defaults (-120 dBm): a CDMA reading counts on CDMA phones only
        cdma_phone = re.search(r"(?:^|\s)cdma(?:\s|$)", value) is not None
        cdma = _dbm(at(2), -120, -20) or _dbm(at(4), -120, -20)
        if cdma is not None and cdma_phone:
            readings["cdma"] = cdma
        order = (
            ["cdma", "lte", "gsm", "tdscdma"] if cdma_phone else ["lte", "gsm", "tdscdma", "cdma"]
        )
    for rat in order:
        if rat in readings:
            return readings[rat], levels.get(rat), rat, readings
    return None, None, None, readings


@_tolerant(TelephonyInfo)
def parse_telephony_registry(text: str) -> TelephonyInfo:
    """Parse ``dumpsys telephony.registry`` into per-slot radio state.

    Handles the Android 7 positional ``mServiceState``, the 8-10 ``{mVoiceRegState=0(IN_SERVICE),
    ...}`` form, the 11+ form with ``NetworkRegistrationInfo``, the old ``SignalStrength: 14 -1
    ...`` list (GSM asu to dBm = 2*asu-113, 99 unknown) and the 10+ ``CellSignalStrength*``
    form. Only the "last known state" per phone is read, never the event log.

    Args:
        text: the output of ``adb shell dumpsys telephony.registry``.

    Returns:
        One :class:`PhoneState` per ``Phone Id``; no phones for unrelated text.
    """
    phones: list[PhoneState] = []
    for phone_id, fields in _phone_sections(_lines(text)):
        state = _service_state(fields.get("mServiceState"))
        dbm, level, rat, readings = _signal(fields.get("mSignalStrength"))
        network_type = state.get("rat")
        if network_type is None:
            network_type = NETWORK_TYPES.get(_int(fields.get("mDataConnectionNetworkType")) or 0)
        data_state = _int(fields.get("mDataConnectionState"))
        phones.append(
            PhoneState(
                phone_id=phone_id,
                voice_reg_state=_str_or_none(state.get("voice")),
                data_reg_state=_str_or_none(state.get("data")),
                operator_alpha=_str_or_none(state.get("alpha")),
                operator_numeric=_str_or_none(state.get("numeric")),
                roaming=_bool_or_none(state.get("roaming")),
                network_type=_str_or_none(network_type),
                emergency_only=_bool_or_none(state.get("emergency")),
                signal_dbm=dbm,
                signal_level=level,
                signal_rat=rat,
                signal_by_rat=readings,
                data_connection_state=data_state,
                data_connection=(
                    DATA_CONNECTION_STATES.get(data_state) if data_state is not None else None
                ),
            )
        )
    return TelephonyInfo(tuple(phones))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bool_or_none(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


# --- dumpsys wifi ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WifiInfo:
    """Wi-Fi state from ``dumpsys wifi``; raw values, the agent masks what it reports.

    Attributes:
        enabled: ``Wi-Fi is enabled``/``disabled`` (None while enabling or when not printed).
        state_text: the word after ``Wi-Fi is``.
        connected: associated and authenticated (supplicant ``COMPLETED``).
        ssid: the current network's SSID without quotes (hex when it is not UTF-8), or None.
        bssid, mac: access point and own MAC, as printed (``<none>`` becomes None).
        ip: the IP address when the release prints it (Android 11+).
        rssi_dbm: signal in dBm (-127, Android's "invalid", becomes None).
        link_speed_mbps, frequency_mhz: link rate and channel frequency (-1 becomes None).
        supplicant_state: e.g. ``COMPLETED``, ``DISCONNECTED``, ``SCANNING``.
        net_id: the saved-network id in use (-1 becomes None).
        saved_networks: SSIDs of configured networks, first-seen order (merchant data: these
            are the merchant's Wi-Fi credentials).
    """

    enabled: bool | None = None
    state_text: str | None = None
    connected: bool | None = None
    ssid: str | None = None
    bssid: str | None = None
    mac: str | None = None
    ip: str | None = None
    rssi_dbm: int | None = None
    link_speed_mbps: int | None = None
    frequency_mhz: int | None = None
    supplicant_state: str | None = None
    net_id: int | None = None
    saved_networks: tuple[str, ...] = ()

    def to_interface(self, name: str = "wlan0") -> NetworkInterface:
        """The Wi-Fi interface as a terminal-contract record."""
        up = self.connected if self.enabled is not False else False
        return NetworkInterface(name=name, up=up, mac=self.mac, ip=self.ip, mode="wifi")


_WIFI_STATE = re.compile(r"Wi-?Fi is (\w+)", re.IGNORECASE)
_SAVED = re.compile(
    r"(?:^|\s)ID:\s*-?[0-9]{1,9}\s+SSID:\s*"
    r"(?:\"(?P<quoted>.*?)\"(?=\s+[A-Z][A-Za-z_-]*:|\s*$)|(?P<bare>[^\s\"]+))"
)


def _ssid(value: str | None) -> str | None:
    """An SSID without its quotes; Android's placeholders become None."""
    text = _text(value)
    if text is None:
        return None
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = text[1:-1]
    return text or None


def _wifi_field(line: str, pattern: str) -> str | None:
    match = re.search(r"(?:^|,\s*)" + pattern, line)
    return match.group(1).strip() if match else None


@_tolerant(WifiInfo)
def parse_dumpsys_wifi(text: str) -> WifiInfo:
    """Parse ``dumpsys wifi``: on/off, the current connection, and the saved networks.

    The connection comes from the first ``WifiInfo`` line (``mWifiInfo SSID: ..., BSSID: ...,
    Supplicant state: ..., RSSI: ...``), read by key because fields vary by release. Saved
    networks come from every ``ID: n SSID: "..."`` line (``WifiConfiguration`` as printed under
    ``Configured networks`` on 7-10 and ``WifiConfigManager`` on 11+).

    Args:
        text: the output of ``adb shell dumpsys wifi``.

    Returns:
        The parsed :class:`WifiInfo`; all fields None/empty for unrelated text.
    """
    lines = _lines(text)
    state_text: str | None = None
    for line in lines:
        if match := _WIFI_STATE.match(line.strip()):
            state_text = match.group(1).lower()
            break
    enabled = {"enabled": True, "disabled": False, "disabling": False}.get(state_text or "")

    info_line = next(
        (ln for ln in lines if "mWifiInfo" in ln and "SSID:" in ln),
        None,
    ) or next(
        (ln for ln in lines if "SSID:" in ln and ("Supplicant state:" in ln or "RSSI:" in ln)),
        None,
    )
    ssid = bssid = mac = ip = supplicant = None
    rssi = link = freq = net_id = None
    if info_line is not None:
        ssid_match = re.search(r"(?:^|[\s,])SSID: (.*?), BSSID: ", info_line)
        ssid = _ssid(ssid_match.group(1)) if ssid_match else None
        bssid = _text(_wifi_field(info_line, r"BSSID: ([^,]*)"))
        mac = _text(_wifi_field(info_line, r"MAC: ([^,]*)"))
        ip = _text(_wifi_field(info_line, r"IP: /?([0-9A-Fa-f.:]+)"))
        supplicant = _text(_wifi_field(info_line, r"Supplicant state: ([^,]*)"))
        rssi = _dbm(_int(_wifi_field(info_line, r"RSSI: (-?[0-9]{1,6})")), -126, 0)
        link = _int(_wifi_field(info_line, r"Link speed: (-?[0-9]{1,6})\s*Mbps"))
        freq = _int(_wifi_field(info_line, r"Frequency: (-?[0-9]{1,6})\s*MHz"))
        net_id = _int(_wifi_field(info_line, r"Net ID: (-?[0-9]{1,9})"))
    connected: bool | None = None
    if supplicant is not None:
        connected = supplicant.upper() == "COMPLETED"
    elif enabled is False:
        connected = False

    saved: list[str] = []
    for line in lines:
        for match in _SAVED.finditer(line):
            name = match.group("quoted")
            if name is None:
                name = _text(match.group("bare"))
            if name:
                saved.append(name)

    return WifiInfo(
        enabled=enabled,
        state_text=state_text,
        connected=connected,
        ssid=ssid,
        bssid=bssid,
        mac=mac,
        ip=ip,
        rssi_dbm=rssi,
        link_speed_mbps=link if link is not None and link >= 0 else None,
        frequency_mhz=freq if freq is not None and freq > 0 else None,
        supplicant_state=supplicant,
        net_id=net_id if net_id is not None and net_id >= 0 else None,
        saved_networks=tuple(_dedupe(saved)),
    )


# --- dumpsys diskstats ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskFree:
    """One partition line: ``Data-Free: 123K / 456K total = 27% free``."""

    free_kb: int
    total_kb: int
    free_pct: int | None = None


@dataclass(frozen=True)
class DiskStats:
    """``dumpsys diskstats``: free space per partition and, on 8+, per-package sizes.

    Attributes:
        partitions: ``data``, ``cache``, ``system`` (lower-case) to their free space.
        write_latency_ms: the ``Latency: 2ms [512B Data Write]`` probe.
        file_based_encryption: ``File-based Encryption: true``.
        category_sizes: ``App Size``, ``Photos Size``... in bytes (8+, from a cached job).
        app_sizes, app_data_sizes, cache_sizes: package to bytes (8+). ``app_data_sizes`` is
            how the agent sees, without root, that a payment app still holds data.
    """

    partitions: dict[str, DiskFree] = field(default_factory=dict)
    write_latency_ms: int | None = None
    file_based_encryption: bool | None = None
    category_sizes: dict[str, int] = field(default_factory=dict)
    app_sizes: dict[str, int] = field(default_factory=dict)
    app_data_sizes: dict[str, int] = field(default_factory=dict)
    cache_sizes: dict[str, int] = field(default_factory=dict)


_DISK_FREE = re.compile(
    r"\s*([A-Za-z]+)-Free:\s*([0-9]{1,18})K\s*/\s*([0-9]{1,18})K\s+total(?:\s*=\s*([0-9]{1,3})%\s*free)?.*"
)
_SIZE_LINE = re.compile(r"\s*([A-Za-z][A-Za-z ]*? Size):\s*(-?[0-9]{1,18})\s*")


def _bracket_list(value: str) -> list[str]:
    """``["a","b"]`` or ``[1,2]`` as strings (no JSON: a truncated list still yields items)."""
    inner = value.strip()
    if inner.startswith("["):
        inner = inner[1:]
    if inner.endswith("]"):
        inner = inner[:-1]
    return [item.strip().strip('"') for item in inner.split(",") if item.strip()]


def _zip_sizes(names: list[str], values: list[str]) -> dict[str, int]:
    """Package to size, only when both lists line up (never attribute a size to a guess)."""
    sizes = [_int(v) for v in values]
    if len(names) != len(sizes) or any(s is None for s in sizes):
        return {}
    return {name: size for name, size in zip(names, sizes, strict=True) if size is not None}


@_tolerant(DiskStats)
def parse_diskstats(text: str) -> DiskStats:
    """Parse ``dumpsys diskstats`` (``DiskStatsService``), Android 7 to 14.

    Args:
        text: the output of ``adb shell dumpsys diskstats``.

    Returns:
        The parsed :class:`DiskStats`; empty for unrelated text.
    """
    partitions: dict[str, DiskFree] = {}
    categories: dict[str, int] = {}
    lists: dict[str, list[str]] = {}
    latency: int | None = None
    fbe: bool | None = None
    for line in _lines(text):
        if match := _DISK_FREE.fullmatch(line):
            pct = int(match.group(4)) if match.group(4) else None
            partitions.setdefault(
                match.group(1).lower(), DiskFree(int(match.group(2)), int(match.group(3)), pct)
            )
            continue
        stripped = line.strip()
        if latency is None and (m := _DISK_LATENCY.match(stripped)):
            latency = int(m.group(1))
        elif m := _DISK_FBE.match(stripped):
            fbe = _bool(m.group(1))
        elif m := _DISK_LIST.match(stripped):
            lists.setdefault(m.group(1), _bracket_list(m.group(2)))
        elif m := _SIZE_LINE.fullmatch(line):
            categories.setdefault(m.group(1), int(m.group(2)))
    names = lists.get("Package Names", [])
    return DiskStats(
        partitions=partitions,
        write_latency_ms=latency,
        file_based_encryption=fbe,
        category_sizes=categories,
        app_sizes=_zip_sizes(names, lists.get("App Sizes", [])),
        app_data_sizes=_zip_sizes(names, lists.get("App Data Sizes", [])),
        cache_sizes=_zip_sizes(names, lists.get("Cache Sizes", [])),
    )


# --- pm / dumpsys package -------------------------------------------------------------------------

_PACKAGE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")


@_tolerant(list)
def parse_pm_list_packages(text: str) -> list[str]:
    """Parse ``pm list packages`` (also with ``-f``, ``-U``, ``-i``, ``--show-versioncode``).

    ``-f`` prints ``package:<apk path>=<name>``; Android 11+ paths contain ``==`` (base64
    padding), so the name is what follows the *last* ``=`` of the first field.

    Args:
        text: the command output.

    Returns:
        Package names, first-seen order, no repeats.
    """
    names: list[str] = []
    for line in _lines(text):
        stripped = line.strip()
        if not stripped.startswith("package:"):
            continue
        first = stripped[len("package:") :].split()
        if not first:
            continue
        name = first[0].rsplit("=", 1)[-1]
        if _PACKAGE_NAME.fullmatch(name):
            names.append(name)
    return _dedupe(names)


@_tolerant(lambda: None)
def parse_dumpsys_package_version(text: str, package: str) -> str | None:
    """The ``versionName`` of ``package`` from ``dumpsys package <package>``.

    Reads the package's own ``Package [name]`` block (the installed version), not the
    ``Hidden system packages`` copy printed later for an updated system app. Text without any
    ``Package [`` header (a trimmed capture) falls back to its first ``versionName=``.

    Args:
        text: the output of ``adb shell dumpsys package <package>``.
        package: the package whose version is wanted.

    Returns:
        The version name, or None when the package or its version is not in the text.
    """
    lines = _lines(text)
    header = re.compile(r"\s*Package \[" + re.escape(package) + r"\]")
    any_header = re.compile(r"\s*Package \[")
    start = next((i for i, ln in enumerate(lines) if header.match(ln)), None)
    if start is None:
        if any(any_header.match(ln) for ln in lines):
            return None
        block = lines
    else:
        indent = _indent(lines[start])
        block = []
        for line in lines[start + 1 :]:
            if line.strip() and (_indent(line) <= indent or any_header.match(line)):
                break
            block.append(line)
    for line in block:
        if match := _VERSION_NAME.search(line):  # its own line; may hold spaces
            return _text(match.group(1))
    return None


# --- dumpsys device_policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class DevicePolicyInfo:
    """Who administers the device, from ``dumpsys device_policy``.

    A device owner (an MDM or the vendor's TMS) survives ``pm clear`` and re-enrols after a
    reset unless released, so it is activation evidence.

    Attributes:
        device_owner: the device owner's package, or None.
        device_owner_component: ``package/class`` of its admin receiver.
        profile_owners: (user id or None, package) per profile owner.
        active_admins: ``package/class`` of every enabled device admin.
    """

    device_owner: str | None = None
    device_owner_component: str | None = None
    profile_owners: tuple[tuple[int | None, str], ...] = ()
    active_admins: tuple[str, ...] = ()


_COMPONENT = re.compile(r"ComponentInfo\{([^/{}\s]+)/([^{}\s]+)\}")


@_tolerant(DevicePolicyInfo)
def parse_device_owner(text: str) -> DevicePolicyInfo:
    """Parse the device owner, profile owners and enabled admins from ``dumpsys device_policy``.

    Args:
        text: the output of ``adb shell dumpsys device_policy``.

    Returns:
        The parsed :class:`DevicePolicyInfo`; empty when no owner or admin is printed.
    """
    owner: str | None = None
    owner_component: str | None = None
    profiles: list[tuple[int | None, str]] = []
    admins: list[str] = []
    mode: str | None = None
    mode_indent = 0
    user: int | None = None
    found_in_block = False
    for line in _lines(text):
        stripped = line.strip()
        if not stripped:
            if mode in ("owner", "profile") and found_in_block:
                mode = None
            continue
        indent = _indent(line)
        if _DEVICE_OWNER.match(stripped):
            mode, mode_indent, found_in_block = "owner", indent, False
        elif m := _PROFILE_OWNER.match(stripped):
            mode, mode_indent, found_in_block = "profile", indent, False
            user = int(m.group(1)) if m.group(1) else None
        elif _ADMINS.match(stripped):
            mode, mode_indent = "admins", indent
            continue
        elif indent <= mode_indent:
            mode = None
            continue
        if mode in ("owner", "profile"):
            component = _COMPONENT.search(stripped)
            package = _PACKAGE_FIELD.match(stripped)
            name: str | None = None
            full: str | None = None
            if component:
                name, full = component.group(1), f"{component.group(1)}/{component.group(2)}"
            elif package and _PACKAGE_NAME.fullmatch(package.group(1)):
                name = package.group(1)
            if name is None:
                continue
            if mode == "owner":
                if owner is None:
                    owner, owner_component = name, full
                elif owner_component is None and full and owner == name:
                    owner_component = full
            elif not found_in_block:
                profiles.append((user, name))
            found_in_block = True
        elif mode == "admins" and indent > mode_indent:
            admin = _ADMIN.fullmatch(stripped)
            if admin:
                admins.append(admin.group(1))
    return DevicePolicyInfo(
        device_owner=owner,
        device_owner_component=owner_component,
        profile_owners=tuple(_dedupe_pairs(profiles)),
        active_admins=tuple(_dedupe(admins)),
    )


def _dedupe_pairs(pairs: list[tuple[int | None, str]]) -> list[tuple[int | None, str]]:
    seen: set[tuple[int | None, str]] = set()
    out: list[tuple[int | None, str]] = []
    for pair in pairs:
        if pair not in seen:
            seen.add(pair)
            out.append(pair)
    return out


# --- dumpsys account ------------------------------------------------------------------------------

_ACCOUNT = re.compile(r"Account\s*\{name=(?P<name>.*), type=(?P<type>[^,{}]+)[,}]")


@_tolerant(list)
def parse_accounts(text: str) -> list[tuple[str, str]]:
    """Parse ``dumpsys account`` into (type, name) pairs.

    Names are personal data (e-mail addresses, merchant logins): they are returned raw for the
    agent to mask, never logged here.

    Args:
        text: the output of ``adb shell dumpsys account``.

    Returns:
        (account type, account name) pairs, first-seen order, no repeats across users.
    """
    found: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for line in _lines(text):
        match = _ACCOUNT.search(line)
        if match is None:
            continue
        pair = (match.group("type").strip(), match.group("name").strip())
        if pair[0] and pair not in seen:
            seen.add(pair)
            found.append(pair)
    return found


# --- ls -------------------------------------------------------------------------------------------

_LS_ERROR = re.compile(
    r"(ls: .*|.*: No such file or directory|.*: Permission denied|opendir failed.*"
    r"|.*Operation not permitted)",
    re.IGNORECASE,
)
_LS_LONG = re.compile(r"[dlcbps-][rwxsStT-]{9}[.+@]?\s")
_LS_DATE = re.compile(
    r"\s[0-9]{4}-[0-9]{2}-[0-9]{2}\s+[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:\s+[+-][0-9]{4})?\s+(.+)$"
)


@_tolerant(list)
def parse_ls(text: str) -> list[str]:
    """Parse ``ls`` / ``ls -1`` / ``ls -l`` output of one directory into entry names.

    Call it on ``ls -1a`` output: names with spaces survive (one per line), multi-column tty
    output would not. Errors (``No such file or directory``, ``Permission denied``), ``total``
    lines, ``.`` and ``..`` are dropped; a long listing yields the names (symlinks without their
    target). Use :func:`ls_error` to tell an empty directory from one that could not be read.

    Args:
        text: the command output.

    Returns:
        Entry names in listed order.
    """
    names: list[str] = []
    for line in _lines(text):
        stripped = line.strip()
        if not stripped or _LS_ERROR.fullmatch(stripped) or _LS_TOTAL.fullmatch(stripped):
            continue
        name = stripped
        if _LS_LONG.match(stripped):
            date = _LS_DATE.search(stripped)
            name = date.group(1) if date else stripped.split()[-1]
            if stripped[0] == "l" and " -> " in name:
                name = name.split(" -> ", 1)[0]
        if name in (".", "..") or (name.startswith("/") and name.endswith(":")):
            continue
        names.append(name)
    return names


@_tolerant(lambda: None)
def ls_error(text: str) -> str | None:
    """Why ``ls`` listed nothing: ``"missing"``, ``"denied"``, or None when it did not fail.

    Matters for wipe verification: a directory the shell may not read is *unknown*, not empty.

    Args:
        text: the command output (stderr included).

    Returns:
        ``"missing"``, ``"denied"`` or None.
    """
    for line in _lines(text):
        lowered = line.lower()
        if "no such file or directory" in lowered:
            return "missing"
        if "permission denied" in lowered or "operation not permitted" in lowered:
            return "denied"
    return None
