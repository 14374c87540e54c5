"""PAXSTORE DTOs → posdiag records, sans I/O: every field checked, sanitised or masked.

A TerminalDTO (``data`` of GET ``terminal``, reference §1.5)::

    {"id": 1640000000, "serialNo": "…", "status": "A"|"P"|"S", "merchantName": "…",
     "resellerName": "…", "modelName": "A920", "lastAccessTime": <epoch ms, last seen>,
     "lastActiveTime": <epoch ms, the ACTIVATION time>,
     "installedFirmware": {"firmwareName": "…", "installTime": <epoch ms>}, …}

A network DTO (``data`` of GET ``terminals/network``)::

    {"serialNo": "…", "battery": 91.0, "onlineStatus": 0 unknown | 1 offline | 2 online,
     "network": "NETWORK_WIFI", …}

Any field may be missing, null or of the wrong type: it then stays unknown. Merchant and
reseller names arrive in clear and are masked here; evidence never quotes them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ...model import Evidence
from ...text import clean_text
from ..model import BackendProtocolError, BackendRecord, Binding, TerminalKey, masked, said

__all__ = ["NETWORK_SOURCE", "SOURCE", "STATUSES", "terminal_record", "with_network"]

STATUSES = {
    "A": (Binding.BOUND, "active: bound to a merchant"),
    "P": (Binding.UNBOUND, "pending: registered, never activated"),
    "S": (Binding.DISABLED, "suspended"),
}
LATEST_MS = 253_402_300_799_000
"""9999-12-31T23:59:59Z: later timestamps are nonsense, not dates."""
SOURCE = "PAXSTORE terminal"
NETWORK_SOURCE = "PAXSTORE terminals/network"


def terminal_record(
    backend: str, key: TerminalKey, data: Any, depot: tuple[str, str] | None
) -> tuple[BackendRecord, str | None, bool]:
    """The record of a TerminalDTO, its raw status (A/P/S) and whether it sits in the depot.

    A unit in the depot's reseller and merchant with status A or S is released
    (``Binding.UNBOUND``): no merchant of ours can use it.

    Raises:
        BackendProtocolError: ``data`` is not an object, or it describes another serial.
    """
    what = f"{backend}: GET /v1/3rdsys/terminal"
    if not isinstance(data, dict):
        raise BackendProtocolError(f"{what}: data is not a terminal")
    echoed = data.get("serialNo")
    serial = key.serial or ""
    if isinstance(echoed, str) and echoed and echoed.casefold() != serial.casefold():
        raise BackendProtocolError(f"{what}: the answer is about another terminal")
    raw_status = data.get("status")
    status = raw_status if isinstance(raw_status, str) else None
    binding, meaning = STATUSES.get(status or "", (Binding.UNKNOWN, "not a known status"))
    evidence = [said(SOURCE, f"status {clean_text(status or 'missing', 8)} ({meaning})")]
    reseller, merchant = data.get("resellerName"), data.get("merchantName")
    at_depot = depot is not None and status in ("A", "S") and (reseller, merchant) == depot
    if at_depot:
        binding = Binding.UNBOUND
        evidence.append(said(SOURCE, "in the depot's reseller and merchant: released"))
    elif isinstance(merchant, str) and merchant:
        evidence.append(said(SOURCE, f"merchant {masked(merchant)}"))
    last_seen = epoch_ms(data.get("lastAccessTime"))
    if last_seen:
        evidence.append(said(SOURCE, f"last access {last_seen}"))
    firmware = data.get("installedFirmware")
    firmware_name = firmware.get("firmwareName") if isinstance(firmware, dict) else None
    record = BackendRecord(
        backend=backend,
        kind="paxstore",
        key=key,
        binding=binding,
        status=clean_text(status, 8) if status else None,
        backend_id=short_text(data.get("id"), 32),
        merchant=masked(merchant) if isinstance(merchant, str) else None,
        store=masked(reseller) if isinstance(reseller, str) else None,
        model=short_text(data.get("modelName"), 64),
        firmware=short_text(firmware_name, 128),
        last_seen=last_seen,
        evidence=tuple(evidence),
    )
    return record, status, at_depot


def with_network(record: BackendRecord, data: Any) -> BackendRecord:
    """``record`` with battery and online state from a network DTO (None: not available)."""
    evidence: list[Evidence] = list(record.evidence)
    if isinstance(data, list):
        data = next((item for item in data if isinstance(item, dict)), None)
    if not isinstance(data, dict):
        evidence.append(said(NETWORK_SOURCE, "battery and online state not available"))
        return replace(record, evidence=tuple(evidence))
    battery = battery_pct(data.get("battery"))
    status = data.get("onlineStatus")
    online = None
    if isinstance(status, int) and not isinstance(status, bool):
        online = {2: True, 1: False}.get(status)
    words = {True: "online", False: "offline", None: "online state unknown"}[online]
    level = "unknown" if battery is None else f"{battery} %"
    evidence.append(said(NETWORK_SOURCE, f"{words}, battery {level}"))
    return replace(record, online=online, battery_pct=battery, evidence=tuple(evidence))


def epoch_ms(value: object) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC, or None for anything that is not a sane time."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 < value <= LATEST_MS:
        return None
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def battery_pct(value: object) -> int | None:
    """A battery level 0–100 from a number the backend sent, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= 100:
        return None
    return round(value)


def short_text(value: object, limit: int) -> str | None:
    """A short field (string or integer) from the backend, sanitised; None when absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and abs(value) < 10**30:
        return str(value)
    if isinstance(value, str) and value.strip():
        return clean_text(value, limit)
    return None
