"""Turn a ZVT "Print System Configuration" printout into inventory facts.

ZVT terminals answer Print System Configuration (``06 1A``) by sending print lines to the cash
register instead of structured data, and those lines carry more inventory facts (component
versions, serial, battery, temperature, network, TMS URL) than any structured ZVT reply. Each
vendor prints its own labels in its own language, so the labels live in data files
(``labels/*.toml``) and this module only knows the *facts* they can map to. Adding a vendor means
adding a TOML file, not code.

TOML schema (one file per label set, the file stem is the set's name)::

    [label_set]   name (= file stem), description, fallback (bool: best-effort generic set,
                  preferred on an auto-selection tie), vendors (aliases for the ``vendor`` hint)
    [patterns]    heading: regex with group ``title`` for section headings (``** Host **``);
                  interface: regex with group ``name`` and optional ``state``/``mode`` for
                  interface block headers (``eth0: UP, DHCP``); ignore: list of regexes for
                  recognised noise such as the date/time stamp. Regexes see the stripped line.
    [words]       yes / no: words meaning true / false, also ``UP`` / ``DOWN``
    [[section]]   id, titles (heading texts), optional ``free_text = "merchant_lines"``: lines
                  no label matches there are the merchant's name and address, and only labels
                  naming that section are tried, so an address line such as "Hardware Store"
                  cannot be misread as a label.
    [[label]]     text (string or list, no trailing colon), fact (see ``FACTS``), and optionally
                  key (component name for ``firmware``/``certificate``), unit (``V``/``mV`` for
                  ``battery``), wraps (the value continues on following lines), wrap_join
                  (joiner for wrapped pieces), sections (ids the label applies in; default all).

A label matches at the start of a line when followed by ``:``, whitespace or the line's end,
case-insensitively; the rest of the line is the value. A label printed over two lines
(``Gültigkeit Clnt-Auth-`` / ``Cert: 16.03.2031``) is rejoined automatically.

Parsing never raises on odd input: lines nobody recognises end up in ``unparsed`` and unknown
facts stay ``None`` or empty, because a diagnostic agent must keep going on a terminal whose
printout it has never seen.
"""

from __future__ import annotations

import math
import re
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from ..text import clean_text
from .charset import DEFAULT_CHARSET, decode_text

__all__ = [
    "FACTS",
    "PrintoutFacts",
    "PrintoutInterface",
    "available_label_sets",
    "decode_print_text",
    "parse_printout",
]

PRINT_LINE_LIMIT = 512
"""Longest printed line read (a receipt printer has 40 columns; the rest is cut off)."""

LABELS_PACKAGE = f"{__name__.rpartition('.')[0]}.labels"
"""Package holding the ``*.toml`` label sets; a package so wheels ship the files."""

_SCALAR_FACTS = (
    "serial",
    "hardware",
    "terminal_id",
    "host",
    "host_ip",
    "host_port",
    "host_operator",
    "currency",
    "modem",
    "tms_url",
)
_INTERFACE_FACTS = {
    "interface_mac": "mac",
    "interface_ip": "ip",
    "interface_netmask": "netmask",
    "interface_gateway": "gateway",
}
_ECR_FACTS = (
    "ecr_type",
    "ecr_serial",
    "ecr_tcp_port",
    "ecr_tls",
    "ecr_device_ip",
    "ecr_device_port",
)
_KEYED_FACTS = frozenset({"firmware", "certificate"})
FACTS = frozenset(
    {*_SCALAR_FACTS, *_INTERFACE_FACTS, *_ECR_FACTS, *_KEYED_FACTS, "battery", "temperature"}
    | {"ignore"}
)
"""Every ``fact`` a label may map to; ``ignore`` marks a known label whose value is not wanted."""

_FREE_TEXT_KINDS = frozenset({"merchant_lines"})
_UNNAMED_INTERFACE = "unnamed"
_DEFAULT_HEADING = r"^\*{2,}\s*(?P<title>.+?)\s*\*{2,}$"
_SECTION_ID = re.compile(r"^[a-z_][a-z0-9_]*$")
_NUMBER = re.compile(r"(?P<num>[-+]?[0-9]+(?:[.,][0-9]+)?)\s*(?P<unit>mV|V|%)?", re.IGNORECASE)
_LOOKS_LABELLED = re.compile(r"^[^:]{1,30}:\s*\S")
_MAX_MILLIVOLTS = 1_000_000
_MAX_ABS_CELSIUS = 1_000.0


@dataclass(frozen=True)
class PrintoutInterface:
    """One network interface block of the printout (``eth0: UP, DHCP`` and the lines below it)."""

    name: str
    up: bool | None = None
    mode: str | None = None
    mac: str | None = None
    ip: str | None = None
    netmask: str | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class PrintoutFacts:
    """Facts read from one printout; anything the label set could not find is ``None``/empty.

    ``terminal_id``, ``merchant_lines`` and ``unparsed`` identify a merchant, so they are left out
    of ``repr()`` to keep them out of logs and tracebacks by accident; read them explicitly.
    """

    vendor_labels: str
    firmware: dict[str, str] = field(default_factory=dict)
    serial: str | None = None
    hardware: str | None = None
    battery_voltage_mv: int | None = None
    temperature_c: float | None = None
    terminal_id: str | None = field(default=None, repr=False)
    host: str | None = None
    host_operator: str | None = None
    merchant_lines: tuple[str, ...] = field(default=(), repr=False)
    currency: str | None = None
    interfaces: tuple[PrintoutInterface, ...] = ()
    modem: str | None = None
    tms_url: str | None = None
    certificates: dict[str, str] = field(default_factory=dict)
    ecr_ports: tuple[str, ...] = ()
    unparsed: tuple[str, ...] = field(default=(), repr=False)


# --- label sets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Label:
    """One label text and what its value means."""

    text: str
    pattern: re.Pattern[str]
    fact: str
    key: str | None
    unit: str | None
    wraps: bool
    wrap_join: str
    sections: frozenset[str] | None


@dataclass(frozen=True)
class _Section:
    """A printout section the label set knows by its heading."""

    id: str
    titles: frozenset[str]
    free_text: str | None


@dataclass(frozen=True)
class _LabelSet:
    """A loaded, validated label set with labels pre-sorted for matching."""

    name: str
    fallback: bool
    vendors: frozenset[str]
    heading: re.Pattern[str]
    interface: re.Pattern[str] | None
    ignore: tuple[re.Pattern[str], ...]
    yes: frozenset[str]
    no: frozenset[str]
    sections: Mapping[str, _Section]
    labels_by_section: Mapping[str, tuple[_Label, ...]]
    unsectioned: tuple[_Label, ...]

    def section_for(self, title: str) -> _Section | None:
        """Map a heading title to a known section, ignoring case and spacing."""
        wanted = _fold(title)
        for section in self.sections.values():
            if wanted in section.titles:
                return section
        return None

    def labels_for(self, section: _Section | None) -> tuple[_Label, ...]:
        """Labels to try in ``section``; outside known sections only unrestricted ones apply."""
        if section is None:
            return self.unsectioned
        return self.labels_by_section.get(section.id, ())

    def truth(self, value: str) -> bool | None:
        """Read a yes/no word in the printout's language; anything else is unknown."""
        word = _fold(value)
        if word in self.yes:
            return True
        if word in self.no:
            return False
        return None


def _fold(text: str) -> str:
    """Normalise text for comparisons: case-folded, runs of whitespace made single spaces."""
    return " ".join(text.split()).casefold()


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Reject unknown keys, because a typo in a data file would otherwise be silently ignored."""
    unknown = set(table) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}, allowed {sorted(allowed)}")


def _compile(pattern: Any, where: str, groups: tuple[str, ...] = ()) -> re.Pattern[str]:
    """Compile a regex from a data file, naming the file in the error if it is unusable."""
    if not isinstance(pattern, str):
        raise ValueError(f"{where}: must be a regex string")
    try:
        compiled = re.compile(pattern, re.DOTALL)
    except re.error as exc:
        raise ValueError(f"{where}: bad regex: {exc}") from exc
    missing = [g for g in groups if g not in compiled.groupindex]
    if missing:
        raise ValueError(f"{where}: regex needs named group(s) {missing}")
    return compiled


def _str_list(value: Any, where: str) -> list[str]:
    """Accept a string or a list of non-empty strings, so short entries stay one-liners."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
        raise ValueError(f"{where}: must be a non-empty string or a list of them")
    return items


def _label_pattern(text: str) -> re.Pattern[str]:
    """Build the matcher for one label: at line start, then ``:``, whitespace or line end."""
    body = r"\s+".join(re.escape(word) for word in text.split())
    return re.compile(rf"^{body}(?::|(?=\s)|$)(?P<value>.*)$", re.IGNORECASE | re.DOTALL)


def _load_labels(entries: Any, section_ids: set[str], where: str) -> list[_Label]:
    """Validate the ``[[label]]`` entries and expand multi-text entries into single labels."""
    if not isinstance(entries, list):
        raise ValueError(f"{where}: [[label]] must be an array of tables")
    labels: list[_Label] = []
    allowed = {"text", "fact", "key", "unit", "wraps", "wrap_join", "sections"}
    for index, entry in enumerate(entries):
        here = f"{where} label #{index + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{here}: must be a table")
        _check_keys(entry, allowed, here)
        fact = entry.get("fact")
        if fact not in FACTS:
            raise ValueError(f"{here}: fact {fact!r} is not one of {sorted(FACTS)}")
        key = entry.get("key")
        if (fact in _KEYED_FACTS) != isinstance(key, str) or (key is not None and not key.strip()):
            raise ValueError(f"{here}: 'key' is required for (and only for) {sorted(_KEYED_FACTS)}")
        unit = entry.get("unit")
        if unit is not None and (fact != "battery" or unit not in ("V", "mV")):
            raise ValueError(f'{here}: \'unit\' must be "V" or "mV" and only on battery labels')
        wraps = entry.get("wraps", False)
        wrap_join = entry.get("wrap_join", " ")
        if not isinstance(wraps, bool) or not isinstance(wrap_join, str):
            raise ValueError(f"{here}: 'wraps' must be a bool and 'wrap_join' a string")
        sections: frozenset[str] | None = None
        if "sections" in entry:
            sections = frozenset(_str_list(entry["sections"], f"{here} sections"))
            if not sections <= section_ids:
                raise ValueError(f"{here}: unknown section(s) {sorted(sections - section_ids)}")
        for text in _str_list(entry.get("text"), f"{here} text"):
            labels.append(
                _Label(
                    text=text.strip(),
                    pattern=_label_pattern(text),
                    fact=fact,
                    key=key.strip() if isinstance(key, str) else None,
                    unit=unit,
                    wraps=wraps,
                    wrap_join=wrap_join,
                    sections=sections,
                )
            )
    return labels


def _load_sections(entries: Any, where: str) -> dict[str, _Section]:
    """Validate the ``[[section]]`` entries."""
    if not isinstance(entries, list):
        raise ValueError(f"{where}: [[section]] must be an array of tables")
    sections: dict[str, _Section] = {}
    for index, entry in enumerate(entries):
        here = f"{where} section #{index + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{here}: must be a table")
        _check_keys(entry, {"id", "titles", "free_text"}, here)
        section_id = entry.get("id")
        if not isinstance(section_id, str) or not _SECTION_ID.match(section_id):
            raise ValueError(f"{here}: 'id' must be a lower-case identifier")
        if section_id in sections:
            raise ValueError(f"{here}: duplicate section id {section_id!r}")
        free_text = entry.get("free_text")
        if free_text is not None and free_text not in _FREE_TEXT_KINDS:
            raise ValueError(f"{here}: free_text must be one of {sorted(_FREE_TEXT_KINDS)}")
        titles = frozenset(_fold(t) for t in _str_list(entry.get("titles"), f"{here} titles"))
        sections[section_id] = _Section(section_id, titles, free_text)
    return sections


def _load_label_set(name: str, data: Mapping[str, Any]) -> _LabelSet:
    """Validate one parsed TOML document and turn it into a :class:`_LabelSet`."""
    where = f"label set {name!r}"
    _check_keys(data, {"label_set", "patterns", "words", "section", "label"}, where)
    meta = data.get("label_set", {})
    patterns = data.get("patterns", {})
    words = data.get("words", {})
    _check_keys(meta, {"name", "description", "fallback", "vendors"}, f"{where} [label_set]")
    _check_keys(patterns, {"heading", "interface", "ignore"}, f"{where} [patterns]")
    _check_keys(words, {"yes", "no"}, f"{where} [words]")
    if meta.get("name", name) != name:
        raise ValueError(f"{where}: [label_set] name must equal the file name stem")
    fallback = meta.get("fallback", False)
    if not isinstance(fallback, bool):
        raise ValueError(f"{where}: fallback must be a bool")
    vendors = meta.get("vendors", [])
    sections = _load_sections(data.get("section", []), where)
    labels = _load_labels(data.get("label", []), set(sections), where)
    # Longest first, so "Batteriespannung (V)" wins over its prefix "Batteriespannung".
    labels.sort(key=lambda label: len(label.text), reverse=True)
    by_section = {
        sid: tuple(
            label
            for label in labels
            if (sid in label.sections if label.sections else section.free_text is None)
        )
        for sid, section in sections.items()
    }
    interface = patterns.get("interface")
    ignore = _str_list(patterns["ignore"], f"{where} ignore") if patterns.get("ignore") else []
    return _LabelSet(
        name=name,
        fallback=fallback,
        vendors=frozenset({_fold(v) for v in (_str_list(vendors, where) if vendors else [])}),
        heading=_compile(patterns.get("heading", _DEFAULT_HEADING), f"{where} heading", ("title",)),
        interface=None
        if interface is None
        else _compile(interface, f"{where} interface", ("name",)),
        ignore=tuple(_compile(p, f"{where} ignore") for p in ignore),
        yes=frozenset(_fold(w) for w in words.get("yes", [])),
        no=frozenset(_fold(w) for w in words.get("no", [])),
        sections=sections,
        labels_by_section=by_section,
        unsectioned=tuple(label for label in labels if label.sections is None),
    )


@cache
def _label_sets() -> dict[str, _LabelSet]:
    """Load every shipped label set once; a broken file is a packaging bug and raises."""
    sets: dict[str, _LabelSet] = {}
    folder = files(LABELS_PACKAGE)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".toml"):
            name = entry.name.removesuffix(".toml")
            try:
                data = tomllib.loads(entry.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"label set {name!r}: invalid TOML: {exc}") from exc
            sets[name] = _load_label_set(name, data)
    return sets


def available_label_sets() -> list[str]:
    """Names of the shipped label sets, for ``vendor=`` and for listing in the CLI."""
    return sorted(_label_sets())


# --- values -------------------------------------------------------------------------------------


def decode_print_text(raw: bytes, charset: str = DEFAULT_CHARSET) -> str:
    """Decode one ZVT print line in the terminal's character set and drop its right padding.

    ZVT print text defaults to CP437 (``0x81`` is ``ü``); card complete units send ISO-8859-1
    (:mod:`.charset`). Lines arrive padded to the printer width, and the padding carries no
    information. Every allowed charset maps every byte, so this never fails on garbage.
    """
    return decode_text(raw, charset).rstrip(" \x00")


def _number(value: str) -> tuple[float, str | None] | None:
    """Find the first number (``3.12`` or ``3,12``) and the unit right after it, if any."""
    match = _NUMBER.search(value)
    if match is None:
        return None
    before = value[match.start("num") - 1 : match.start("num")]
    after = value[match.end("num") : match.end("num") + 1]
    if any(unicodedata.category(c)[0] == "N" for c in before + after):
        return None  # "3,1²" or "²3": digits that are not ASCII make the whole value unreadable
    number = float(match["num"].replace(",", "."))
    if not math.isfinite(number):
        return None
    return number, match["unit"]


def _millivolts(value: str, default_unit: str | None) -> int | None:
    """Read a battery voltage in millivolts.

    A bare number of 100 or more cannot be volts on a terminal battery, so it is read as
    millivolts whatever the label set says; a percentage is a charge level, not a voltage.
    """
    found = _number(value)
    if found is None:
        return None
    number, unit = found
    if unit == "%":
        return None
    if unit is None:
        unit = "mV" if number >= 100 else (default_unit or "V")
    millivolts = number * (1 if unit.casefold() == "mv" else 1000)
    if not 0 <= millivolts < _MAX_MILLIVOLTS:
        return None
    return round(millivolts)


def _has_port(host: str) -> bool:
    """Whether ``host`` already ends in a port (``1.2.3.4:30101``, ``[fe80::1]:443``)."""
    if host.startswith("["):
        return "]:" in host
    return host.count(":") == 1


def _celsius(value: str) -> float | None:
    """Read a temperature; absurd values are dropped rather than reported."""
    found = _number(value)
    if found is None or abs(found[0]) >= _MAX_ABS_CELSIUS:
        return None
    return found[0]


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """A printed line: stripped text for matching, printed width for wrap detection."""

    text: str
    width: int


def _prepare(lines: Sequence[str]) -> list[_Line]:
    """Normalise input lines; embedded line breaks are split so a text block also works."""
    prepared: list[_Line] = []
    for item in lines:
        text = item if isinstance(item, str) else str(item)
        for part in text.expandtabs(1).splitlines() or [""]:
            printed = clean_text(part, PRINT_LINE_LIMIT).rstrip()
            prepared.append(_Line(printed.strip(), len(printed)))
    return prepared


class _Parser:
    """Walk the lines once with one label set, collecting facts and a recognition score."""

    def __init__(self, label_set: _LabelSet, lines: list[_Line]) -> None:
        self.ls = label_set
        self.lines = lines
        self.width = max((line.width for line in lines), default=0)
        self.score = 0
        self.section: _Section | None = None
        self.scalars: dict[str, str] = {}
        self.firmware: dict[str, str] = {}
        self.certificates: dict[str, str] = {}
        self.battery: int | None = None
        self.temperature: float | None = None
        self.merchant: list[str] = []
        self.unparsed: list[str] = []
        self.interfaces: list[dict[str, Any]] = []
        self.interface: dict[str, Any] | None = None
        self.ecr_ports: list[str] = []
        self.ecr_block: dict[str, str] | None = None

    def match_label(self, text: str) -> tuple[_Label, str, int] | None:
        """Match ``text`` against the current section's labels.

        Returns:
            The label, its stripped value and the whitespace width before the value (the gap
            tells a right-aligned value from one that starts right after the label and wraps).
        """
        for label in self.ls.labels_for(self.section):
            match = label.pattern.match(text)
            if match is not None:
                raw = match["value"]
                if raw.lstrip().startswith(":"):
                    raw = raw.lstrip()[1:]
                value = raw.strip()
                return label, value, len(raw) - len(raw.lstrip())
        return None

    def recognised(self, text: str) -> bool:
        """Whether a line is structure (heading, noise, interface, label), not a continuation."""
        return (
            self.ls.heading.match(text) is not None
            or any(p.match(text) for p in self.ls.ignore)
            or (self.ls.interface is not None and self.ls.interface.match(text) is not None)
            or self.match_label(text) is not None
        )

    def run(self) -> PrintoutFacts:
        """Parse all lines and build the facts."""
        index = 0
        while index < len(self.lines):
            index = self.step(index)
        self.close_blocks()
        return self.facts()

    def step(self, index: int) -> int:
        """Handle the line at ``index`` and return the index of the next unhandled line."""
        line = self.lines[index]
        text = line.text
        if not text:
            self.close_interface()
            return index + 1
        heading = self.ls.heading.match(text)
        if heading is not None:
            self.close_blocks()
            self.section = self.ls.section_for(heading["title"])
            self.score += int(self.section is not None)
            return index + 1
        if any(p.match(text) for p in self.ls.ignore):
            self.score += 1
            return index + 1
        interface = self.ls.interface.match(text) if self.ls.interface else None
        if interface is not None:
            self.open_interface(interface)
            self.score += 1
            return index + 1
        matched = self.match_label(text)
        consumed = 1
        if matched is None and index + 1 < len(self.lines) and self.lines[index + 1].text:
            matched = self.match_wrapped_label(text, self.lines[index + 1].text)
            consumed = 2
        if matched is None:
            self.free_text(text)
            return index + 1
        label, value, gap = matched
        self.score += 1
        last = self.lines[index + consumed - 1]
        next_index = index + consumed
        if label.wraps:
            value, next_index = self.continue_value(label, value, last.width, gap, next_index)
        self.apply(label, value)
        return next_index

    def match_wrapped_label(self, first: str, second: str) -> tuple[_Label, str, int] | None:
        """Try a label printed over two lines: joined directly after a hyphen, else by a space."""
        joins = ("", " ") if first.endswith("-") else (" ", "")
        for join in joins:
            matched = self.match_label(first + join + second)
            if matched is not None:
                return matched
        return None

    def continue_value(
        self, label: _Label, value: str, width: int, gap: int, index: int
    ) -> tuple[str, int]:
        """Collect the rest of a value that wraps onto following lines.

        A value continues while the previous piece filled the printer width; a value that
        starts on the label line must also follow the label closely, because a right-aligned
        short value fills the line too without wrapping.
        """
        pieces = [value] if value else []
        full = width >= self.width and gap <= 1
        while index < len(self.lines):
            line = self.lines[index]
            if not line.text or (pieces and not full) or self.recognised(line.text):
                break
            pieces.append(line.text)
            full = line.width >= self.width
            index += 1
        return label.wrap_join.join(pieces), index

    def free_text(self, text: str) -> None:
        """File a line no label matched: merchant text where the section says so, else unparsed."""
        if (
            self.section is not None
            and self.section.free_text == "merchant_lines"
            and not _LOOKS_LABELLED.match(text)
        ):
            self.merchant.append(text)
        else:
            self.unparsed.append(text)

    def apply(self, label: _Label, value: str) -> None:
        """Store one label's value as the fact the label set says it is; first value wins."""
        fact = label.fact
        if fact == "ignore" or not value:
            return
        if fact == "firmware" and label.key:
            self.firmware.setdefault(label.key, value)
        elif fact == "certificate" and label.key:
            self.certificates.setdefault(label.key, value)
        elif fact == "battery":
            if self.battery is None:
                self.battery = _millivolts(value, label.unit)
        elif fact == "temperature":
            if self.temperature is None:
                self.temperature = _celsius(value)
        elif fact in _INTERFACE_FACTS:
            self.set_interface(_INTERFACE_FACTS[fact], value)
        elif fact in _ECR_FACTS:
            self.set_ecr(fact, value)
        else:
            self.scalars.setdefault(fact, value)

    def open_interface(self, match: re.Match[str]) -> None:
        """Start an interface block from its header line."""
        self.close_interface()
        groups = match.groupdict()
        state, mode = groups.get("state"), groups.get("mode")
        self.interface = {
            "name": match["name"],
            "up": self.ls.truth(state) if state else None,
            "mode": (mode.strip() or None) if mode else None,
        }

    def set_interface(self, attribute: str, value: str) -> None:
        """Attach an address to the open interface, or to a new unnamed one if none is open."""
        if self.interface is None or attribute in self.interface:
            self.close_interface()
            self.interface = {"name": _UNNAMED_INTERFACE}
        self.interface[attribute] = value

    def close_interface(self) -> None:
        """Finish the open interface block, if any."""
        if self.interface is not None:
            self.interfaces.append(self.interface)
            self.interface = None

    def set_ecr(self, fact: str, value: str) -> None:
        """Collect one cash-register port block; ``ecr_type`` (``Kassenart``) starts a new one."""
        if fact == "ecr_type" or self.ecr_block is None:
            self.close_ecr()
            self.ecr_block = {}
        self.ecr_block.setdefault(fact, value)

    def close_ecr(self) -> None:
        """Summarise the open cash-register block as one line such as ``ZVT tcp 22001 tls``."""
        block, self.ecr_block = self.ecr_block, None
        if block is None:
            return
        parts = [block.get("ecr_type", "ECR")]
        if "ecr_serial" in block:
            parts += ["serial", block["ecr_serial"]]
        if "ecr_tcp_port" in block:
            parts += ["tcp", block["ecr_tcp_port"]]
        if "ecr_tls" in block and self.ls.truth(block["ecr_tls"]):
            parts.append("tls")
        device = ":".join(block[k] for k in ("ecr_device_ip", "ecr_device_port") if k in block)
        if device:
            parts += ["device", device]
        self.ecr_ports.append(" ".join(parts))

    def close_blocks(self) -> None:
        """Finish every open block, because a heading or the end of the printout ends them."""
        self.close_interface()
        self.close_ecr()

    def host(self) -> str | None:
        """Combine host and port as ``ip:port``, the way the rest of posdiag names endpoints."""
        host = self.scalars.get("host") or self.scalars.get("host_ip")
        port = self.scalars.get("host_port")
        if not host or not port or _has_port(host):
            return host
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def facts(self) -> PrintoutFacts:
        """Freeze what was collected."""
        return PrintoutFacts(
            vendor_labels=self.ls.name,
            firmware=dict(self.firmware),
            serial=self.scalars.get("serial"),
            hardware=self.scalars.get("hardware"),
            battery_voltage_mv=self.battery,
            temperature_c=self.temperature,
            terminal_id=self.scalars.get("terminal_id"),
            host=self.host(),
            host_operator=self.scalars.get("host_operator"),
            merchant_lines=tuple(self.merchant),
            currency=self.scalars.get("currency"),
            interfaces=tuple(PrintoutInterface(**i) for i in self.interfaces),
            modem=self.scalars.get("modem"),
            tms_url=self.scalars.get("tms_url"),
            certificates=dict(self.certificates),
            ecr_ports=tuple(self.ecr_ports),
            unparsed=tuple(self.unparsed),
        )


def parse_printout(lines: Sequence[str], vendor: str | None = None) -> PrintoutFacts:
    """Read inventory facts from the print lines of a system-configuration printout.

    Args:
        lines: Decoded print lines, one printed line each (see :func:`decode_print_text`).
        vendor: Label set name or vendor alias (case-insensitive), e.g. ``"feig"``. ``None``, or
            a name no label set claims, parses with every set and keeps the one that recognised
            the most lines; on a tie the fallback set wins, because claiming a vendor on weak
            evidence would mislead the report.

    Returns:
        The facts; ``vendor_labels`` names the label set used.
    """
    sets = _label_sets()
    prepared = _prepare(lines)
    if vendor is not None:
        wanted = _fold(vendor)
        for label_set in sets.values():
            if wanted == label_set.name or wanted in label_set.vendors:
                return _Parser(label_set, prepared).run()
    best: tuple[int, bool] | None = None
    result = PrintoutFacts(vendor_labels="")
    for label_set in sets.values():
        parser = _Parser(label_set, prepared)
        facts = parser.run()
        rank = (parser.score, label_set.fallback)
        if best is None or rank > best:
            best, result = rank, facts
    return result
