"""ZVT code tables as data: terminal status codes, result codes, device states.

Sources: PA00P015 chapter 11 and its recovery table §11.1, §2.56.5 (TLV 1F43), summarised in
``shared/reference/zvt.md``. Texts are for people; the codes are what the agent reasons on.
The texts are English source messages marked with ``N_`` for the catalogue: the tables keep
them untranslated (one process may switch language), and the functions below translate them
when a person is about to read one.
"""

from __future__ import annotations

from ..i18n import N_, _

TERMINAL_STATUS: dict[int, str] = {
    0x00: N_("ready"),
    0x51: N_("initialisation required (no merchant configuration loaded)"),
    0x62: N_("date/time wrong"),
    0x9C: N_("please wait (e.g. software update running)"),
    0x9D: N_("partial issue of goods"),
    0xB1: N_("memory full (End-of-Day needed)"),
    0xB2: N_("merchant journal full"),
    0xBF: N_("voltage too low"),
    0xC0: N_("card locking mechanism defect"),
    0xC1: N_("merchant card locked"),
    0xC2: N_("diagnosis required"),
    0xC4: N_("card profiles invalid"),
    0xCC: N_("printer not ready"),
    0xDC: N_("card inserted"),
    0xDF: N_("out of order"),
    0xE0: N_("remote maintenance active"),
    0xE1: N_("card not fully removed"),
    0xE2: N_("card reader defective"),
    0xE3: N_("shutter closed"),
    0xE4: N_("terminal activation required"),
    0xF0: N_("reconciliation required"),
    0xF6: N_("OPT data missing"),
}

# Terminal status codes that mean the unit needs service (hardware or configuration fault).
SERVICE_STATUS = frozenset({0x62, 0xBF, 0xC0, 0xC2, 0xC4, 0xCC, 0xDF, 0xE2, 0xE3})
# Status codes that mean the terminal holds no (working) merchant configuration.
UNPROVISIONED_STATUS = frozenset({0x51, 0xE4})

DEVICE_STATE: dict[int, str] = {
    0x00: N_("ready"),
    0x01: N_("initialisation needed"),
    0x02: N_("no keys"),
    0x03: N_("fraud (tamper)"),
}
DEVICE_STATE_TAMPER = 0x03

RESULT_CODES: dict[int, str] = {
    0x00: N_("no error"),
    0x64: N_("card not readable"),
    0x6B: N_("function deactivated (PT not registered)"),
    0x6C: N_("aborted (timeout or abort key)"),
    0x6F: N_("wrong currency"),
    0x78: N_("card expired"),
    0x7D: N_("communication error (host not reached)"),
    0x83: N_("function not possible"),
    0x9A: N_("ZVT protocol error"),
    0x9C: N_("please wait"),
    0xB1: N_("memory full"),
    0xC2: N_("diagnosis required"),
    0xDF: N_("out of order"),  # a tampered unit refusing what needs its keys (one code table)
    0xFF: N_("system error"),
}

REGISTRATION_STATUS_BITS: dict[int, str] = {
    0x01: "initialisation necessary",
    0x02: "diagnosis necessary",
    0x04: "OPT action necessary",
    0x08: "filling-station mode",
    0x10: "vending mode",
}


def status_text(code: int) -> str:
    """Human text of a terminal status byte, in the reader's language."""
    if code in TERMINAL_STATUS:
        return _(TERMINAL_STATUS[code])
    return _("status {code}").format(code=f"{code:02X}")


def device_state_text(state: int) -> str:
    """Human text of a device state (TLV 1F43), in the reader's language."""
    if state in DEVICE_STATE:
        return _(DEVICE_STATE[state])
    return f"{state:02X}"


def result_text(code: int) -> str:
    """Human text of a result code (BMP 27, 06 1E), in the reader's language."""
    if code in RESULT_CODES:
        return _(RESULT_CODES[code])
    if 0x01 <= code <= 0x63:
        return _("host error {code}").format(code=f"{code:02X}")
    return _("result code {code}").format(code=f"{code:02X}")


def result_text_en(code: int) -> str:
    """The English text of a result code, for exception messages (technical, never translated)."""
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    if 0x01 <= code <= 0x63:
        return f"host error {code:02X}"
    return f"result code {code:02X}"


def error_text(code: int) -> str:
    """English text of a ``84 xx`` error id, for exception messages (technical, untranslated)."""
    if code == 0x83:
        return "command not supported"
    if code == 0x37:
        return "wrong password"
    return result_text_en(code)
