"""The ``hostile_text`` fault: an Android POS whose output is built to hurt the station.

A real unit can be rooted, tampered or simply broken; what it prints is then attacker-controlled
text. With the fault on, the simulated shell keeps every command's meaning (the same packages,
networks and files, so a wipe still works and still verifies) but dresses the text the agent
shows in the worst a terminal can send: ANSI screen clears and colours, an OSC title change, bidi
overrides that reverse a serial, NUL, zero-width characters, superscript and Arabic-Indic digits
where numbers are expected, and lines of hundreds of kilobytes.
"""

from __future__ import annotations

import re

ANSI = "\x1b[2J\x1b[31m"
OSC = "\x1b]0;pwned\x07"
BIDI = "\u202e"
HOSTILE = f"{ANSI}{OSC}{BIDI}x\x00\u200b"
"""Appended to every text value the fault touches."""
LONG_LINE = "\x1b[31m" + "W" * 200_000
"""One property of 200 kB: a line no display or log should take whole."""

TEXT_PROPS = frozenset(
    {
        "ro.product.manufacturer",
        "ro.product.brand",
        "ro.product.model",
        "ro.product.device",
        "ro.product.name",
        "ro.serialno",
        "ro.boot.serialno",
        "ro.build.display.id",
        "ro.build.id",
        "gsm.operator.alpha",
        "gsm.sim.operator.alpha",
    }
)
NUMBER_PROPS = {"ro.build.version.sdk": "3²", "ro.build.version.release": "1١"}
_PROP_LINE = re.compile(r"\[([^\]]*)\]: \[(.*)\]")
_BATTERY_NUMBERS = ("level", "voltage", "temperature", "scale", "cycle count", "charge counter")


def _prop_value(key: str, value: str) -> str:
    if key in NUMBER_PROPS:
        return NUMBER_PROPS[key]
    if key in TEXT_PROPS or "serial" in key:
        return value + HOSTILE
    return value


def _getprop(args: list[str], text: str) -> str:
    if args:
        return _prop_value(args[0], text.rstrip("\n")) + "\n"
    lines = []
    for line in text.splitlines():
        match = _PROP_LINE.fullmatch(line)
        if match:
            line = f"[{match[1]}]: [{_prop_value(match[1], match[2])}]"
        lines.append(line)
    lines.append(f"[ro.posdiag.long]: [{LONG_LINE}]")
    lines.append(f"[persist.{ANSI}evil]: [{HOSTILE}]")
    return "\n".join(lines) + "\n"


def _battery(text: str) -> str:
    lines = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in _BATTERY_NUMBERS and value.strip():
            # "87" becomes "8²" and "4012" "40١2": digits str.isdigit() accepts, int() does not
            # (or does, wrongly).
            digits = value.strip()
            value = " " + digits[:-1] + ("²" if key.strip() != "voltage" else "١")
            line = key + sep + value
        lines.append(line)
    lines.append(f"  cycle count: ٣{HOSTILE}")
    return "\n".join(lines) + "\n"


def _wifi(text: str) -> str:
    # Every configured SSID keeps its name (so forgetting it still matches) plus hostile text.
    return re.sub(r'SSID: "([^"]*)"', lambda m: f'SSID: "{m[1]}{HOSTILE}"', text)


def hostile_stdout(argv: list[str], out: str) -> str:
    """The same output of ``argv`` with hostile text where the agent will display it."""
    if argv[0] == "getprop":
        out = _getprop(argv[1:], out)
    elif argv[:2] == ["dumpsys", "battery"]:
        out = _battery(out)
    elif argv[:2] == ["dumpsys", "wifi"]:
        out = _wifi(out)
    elif argv[:2] == ["dumpsys", "telephony.registry"]:
        out = re.sub(r"(mOperatorAlpha(?:Long|Short)=)([^,]*)", rf"\g<1>\g<2>{HOSTILE}", out)
    elif argv[:2] == ["dumpsys", "package"]:
        out = re.sub(r"(versionName=)(.*)", rf"\g<1>\g<2>{HOSTILE}", out)
    elif argv[:3] == ["pm", "list", "packages"]:
        out += f"package:com.hostile{ANSI}.app{BIDI}\npackage:{LONG_LINE}\n"
    elif argv[:3] == ["cmd", "wifi", "list-networks"]:
        # A network id that str.isdigit() accepts and int() refuses: the crash of issue 10.
        out += f"²               {ANSI}evil{OSC}        wpa2-psk\n"
    return out
