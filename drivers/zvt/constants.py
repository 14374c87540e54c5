"""ZVT code tables as data: terminal status codes, result codes, device states.

Sources: PA00P015 chapter 11 and its recovery table §11.1, §2.56.5 (TLV 1F43), summarised in
``shared/reference/zvt.md``. Texts are for people; the codes are what the agent reasons on.
"""

from __future__ import annotations

TERMINAL_STATUS: dict[int, str] = {
    0x00: "ready",
    0x51: "initialisation required (no merchant configuration loaded)",
    0x62: "date/time wrong",
    0x9C: "please wait (e.g. software update running)",
    0x9D: "partial issue of goods",
    0xB1: "memory full (End-of-Day needed)",
    0xB2: "merchant journal full",
    0xBF: "voltage too low",
    0xC0: "card locking mechanism defect",
    0xC1: "merchant card locked",
    0xC2: "diagnosis required",
    0xC4: "card profiles invalid",
    0xCC: "printer not ready",
    0xDC: "card inserted",
    0xDF: "out of order",
    0xE0: "remote maintenance active",
    0xE1: "card not fully removed",
    0xE2: "card reader defective",
    0xE3: "shutter closed",
    0xE4: "terminal activation required",
    0xF0: "reconciliation required",
    0xF6: "OPT data missing",
}

# Terminal status codes that mean the unit needs service (hardware or configuration fault).
SERVICE_STATUS = frozenset({0x62, 0xBF, 0xC0, 0xC2, 0xC4, 0xCC, 0xDF, 0xE2, 0xE3})
# Status codes that mean the terminal holds no (working) merchant configuration.
UNPROVISIONED_STATUS = frozenset({0x51, 0xE4})

DEVICE_STATE: dict[int, str] = {
    0x00: "ready",
    0x01: "initialisation needed",
    0x02: "no keys",
    0x03: "fraud (tamper)",
}
DEVICE_STATE_TAMPER = 0x03

RESULT_CODES: dict[int, str] = {
    0x00: "no error",
    0x64: "card not readable",
    0x6B: "function deactivated (PT not registered)",
    0x6C: "aborted (timeout or abort key)",
    0x6F: "wrong currency",
    0x78: "card expired",
    0x7D: "communication error (host not reached)",
    0x83: "function not possible",
    0x9A: "ZVT protocol error",
    0x9C: "please wait",
    0xB1: "memory full",
    0xC2: "diagnosis required",
    0xFF: "system error",
}

REGISTRATION_STATUS_BITS: dict[int, str] = {
    0x01: "initialisation necessary",
    0x02: "diagnosis necessary",
    0x04: "OPT action necessary",
    0x08: "filling-station mode",
    0x10: "vending mode",
}


def status_text(code: int) -> str:
    """Human text of a terminal status byte."""
    return TERMINAL_STATUS.get(code, f"status {code:02X}")


def result_text(code: int) -> str:
    """Human text of a result code (BMP 27, 06 1E)."""
    if code in RESULT_CODES:
        return RESULT_CODES[code]
    if 0x01 <= code <= 0x63:
        return f"host error {code:02X}"
    return f"result code {code:02X}"


def error_text(code: int) -> str:
    """Human text of a ``84 xx`` error id."""
    if code == 0x83:
        return "command not supported"
    if code == 0x37:
        return "wrong password"
    return result_text(code)
