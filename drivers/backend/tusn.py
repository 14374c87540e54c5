"""TUSN (终端唯一序列号) and terminal labels as a person types or a barcode scanner pastes them.

A Chinese 电签 POS carries two identifiers on its label: the manufacturer's serial number (汇付's
``sn``, at most 50 characters) and the UnionPay TUSN (汇付's ``tusn``, "终端21号文编号 / 银联21号文
编号, 见终端上", at most 64 characters). Acquirer platforms look a unit up by one or the other.

What this module checks, and why no more:

* **TUSN**: surrounding whitespace stripped; ASCII letters and digits only; 8 to 64 characters.
  The upper bound is 汇付's field size; the lower bound only rejects obvious scanning accidents
  (a stray digit, a checksum) and is ours, not a platform's. The *inner structure* of a TUSN
  (manufacturer prefix, device type, serial?) has no primary source (reference §3.4,
  UNVERIFIED), so no layout is parsed or enforced: inventing one would refuse real units or
  accept wrong ones with false confidence. Case is kept as given for the same reason.
* **Serial number**: ASCII letters, digits and ``-``, 1 to 50 characters (汇付's ``sn``).

Label syntax accepted by :func:`split_label` (a convention of this station, not of any
platform): values separated by whitespace, ``,`` ``;`` ``|`` (and their full-width forms
``，`` ``；`` ``｜``), each optionally labelled ``SN:``, ``S/N:``, ``SERIAL:`` or ``TUSN:``
(``:``, ``：`` or ``=``; case-insensitive; the value may follow the label after a space).
An unlabelled value is the serial number; two unlabelled values are read as serial, then TUSN,
the order in which this station asks for them.
"""

from __future__ import annotations

import re

from ..errors import PosdiagError
from ..text import clean_text
from .model import TerminalKey

__all__ = ["MAX_LABEL", "TusnError", "parse_serial", "parse_tusn", "split_label"]

TUSN_MIN = 8
TUSN_MAX = 64
SERIAL_MAX = 50
MAX_LABEL = 512
"""Longest label text looked at: a scanner pasting a page of text is a mistake, not a label."""

_SEPARATORS = re.compile(r"[\s,;|，；｜]+")
_LABEL = re.compile(r"(?i)^(tusn|sn|s/n|serial)[:：=](.*)$")
_SERIAL = re.compile(r"[A-Za-z0-9-]{1,50}")


class TusnError(PosdiagError, ValueError):
    """A TUSN, serial number or label that cannot be right; the message is for a person."""


def _shown(text: str) -> str:
    """The offending text as an error may quote it: sanitised and short."""
    return repr(clean_text(text, 40))


def parse_tusn(text: object) -> str:
    """The TUSN in ``text``, checked as far as public facts allow (see the module docstring).

    Raises:
        TusnError: empty, too short or long, or with characters other than ASCII letters and
            digits.
    """
    if not isinstance(text, str):
        raise TusnError("a TUSN is text (letters and digits printed on the terminal's label)")
    value = text.strip()
    if not value:
        raise TusnError("the TUSN is empty: scan or type the TUSN printed on the label")
    if len(value) > TUSN_MAX:
        raise TusnError(f"a TUSN has at most {TUSN_MAX} characters; this one has {len(value)}")
    if not (value.isascii() and value.isalnum()):
        raise TusnError(
            f"a TUSN has only letters and digits: {_shown(value)} does not; check the scan"
        )
    if len(value) < TUSN_MIN:
        raise TusnError(
            f"TUSN {_shown(value)} is too short (at least {TUSN_MIN} characters): "
            "was the whole label scanned?"
        )
    return value


def parse_serial(text: object) -> str:
    """A manufacturer serial number: ASCII letters, digits and ``-``, at most 50 characters.

    Raises:
        TusnError: empty, too long, or with other characters.
    """
    if not isinstance(text, str):
        raise TusnError("a serial number is text (printed on the terminal's label)")
    value = text.strip()
    if not value:
        raise TusnError("the serial number is empty: scan or type the SN on the label")
    if len(value) > SERIAL_MAX:
        raise TusnError(
            f"a serial number has at most {SERIAL_MAX} characters; this one has {len(value)}"
        )
    if not _SERIAL.fullmatch(value):
        raise TusnError(
            f"a serial number has only letters, digits and '-': {_shown(value)} does not"
        )
    return value


def split_label(text: object) -> TerminalKey:
    """The serial number and/or TUSN in a scanned or typed label.

    ``"SN:ABC123"``, ``"TUSN:00005702280117638929"``, ``"ABC123"``,
    ``"SN: ABC123 | TUSN: 00005702280117638929"`` and ``"ABC123,00005702280117638929"`` are all
    understood (see the module docstring for the exact syntax).

    Raises:
        TusnError: nothing usable, more than one serial or TUSN, an unknown label, or a value
            that :func:`parse_serial` / :func:`parse_tusn` refuses.
    """
    if not isinstance(text, str):
        raise TusnError("a label is text: scan or type the SN and/or TUSN")
    if len(text) > MAX_LABEL:
        raise TusnError(f"the label is longer than {MAX_LABEL} characters: scan only the label")
    tokens = [token for token in _SEPARATORS.split(text) if token]
    labelled: dict[str, str] = {}
    plain: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        found = _LABEL.match(token)
        if found is None:
            if ":" in token or "：" in token:
                raise TusnError(f"unknown label {_shown(token)}: use SN: or TUSN: (or no label)")
            plain.append(token)
            continue
        name = "tusn" if found.group(1).lower() == "tusn" else "serial"
        value = found.group(2)
        if not value:  # "SN: ABC": the value is the next token
            if index >= len(tokens):
                raise TusnError(f"the label {_shown(token)} has no value after it")
            value = tokens[index]
            index += 1
        if name in labelled:
            raise TusnError(f"the label holds two {'TUSNs' if name == 'tusn' else 'serials'}")
        labelled[name] = value
    for value in plain:
        slot = "serial" if "serial" not in labelled else "tusn"
        if slot in labelled:
            raise TusnError(
                "the label holds more than a serial number and a TUSN: scan one label at a time"
            )
        labelled[slot] = value
    if not labelled:
        raise TusnError("the label is empty: scan or type the SN and/or TUSN")
    serial = parse_serial(labelled["serial"]) if "serial" in labelled else None
    tusn = parse_tusn(labelled["tusn"]) if "tusn" in labelled else None
    return TerminalKey(serial=serial, tusn=tusn)
