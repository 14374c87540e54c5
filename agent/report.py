"""The device report: what a check found, as one schema-versioned JSON object.

Schema ``posdiag.report/1``::

    {schema, address, family, simulated, checked_at, duration_s,
     device {address, family, vendor, model, serial, hardware, device_name},
     activation {state, terminal_id (masked), keys_loaded, host_registered, evidence[...]},
     firmware {components{}}, network {...}, battery {...} | null, merchant_data {...},
     tamper {...}, health {...}, verdict {status, reasons[]}, errors[]}

Identifiers that bind a terminal to a merchant are masked here (last 4 characters), because
reports are stored, printed and pasted into tickets.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .logs import mask_identifier

if TYPE_CHECKING:  # annotations only: the CLI imports this module before it needs any driver
    from posdiag.drivers.model import (
        Activation,
        Battery,
        Firmware,
        Health,
        Identity,
        MerchantData,
        Network,
        PendingTransactions,
        Tamper,
    )

SCHEMA = "posdiag.report/1"


def money_text(pending: PendingTransactions) -> str:
    """An amount of unsettled money as people read it: ``EUR 47.57`` (no currency: ``47.57``)."""
    return f"{pending.currency or ''} {pending.total_cents / 100:.2f}".strip()


def utc_now_text() -> str:
    """Now, in UTC, to the second, as reports, the ledger and certificates write it."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class VerdictStatus(enum.StrEnum):
    """What should happen to the terminal next."""

    READY = "ready"
    WIPE_REQUIRED = "wipe_required"
    SERVICE_REQUIRED = "service_required"
    QUARANTINE = "quarantine"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Verdict:
    """The conclusion, with reasons a person can act on."""

    status: VerdictStatus
    reasons: tuple[str, ...] = ()


@dataclass
class DeviceReport:
    """Everything one check learned about one terminal."""

    address: str
    family: str
    checked_at: str
    duration_s: float = 0.0
    simulated: bool = False
    identity: Identity | None = None
    activation: Activation | None = None
    firmware: Firmware | None = None
    network: Network | None = None
    battery: Battery | None = None
    merchant_data: MerchantData | None = None
    tamper: Tamper | None = None
    health: Health | None = None
    unsupported: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    verdict: Verdict = Verdict(VerdictStatus.UNREACHABLE)
    backends: list[dict[str, Any]] = field(default_factory=list)
    """What each configured backend said (``posdiag.agent.backends.view_json``), masked."""

    @property
    def reachable(self) -> bool:
        """Whether the terminal answered at all."""
        return self.verdict.status is not VerdictStatus.UNREACHABLE


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_json(report: DeviceReport) -> dict[str, Any]:
    """The report as plain JSON data, identifiers masked."""
    from posdiag.drivers.model import Identity

    identity = report.identity or Identity()
    device = {"address": report.address, "family": report.family, **_plain(identity)}
    activation = _plain(report.activation) if report.activation else None
    if activation:
        activation["terminal_id"] = mask_identifier(activation.get("terminal_id"))
        activation["merchant_id"] = mask_identifier(activation.get("merchant_id"))
    return {
        "schema": SCHEMA,
        "address": report.address,
        "family": report.family,
        "simulated": report.simulated,
        "checked_at": report.checked_at,
        "duration_s": round(report.duration_s, 3),
        "device": device,
        "activation": activation,
        "firmware": _plain(report.firmware) if report.firmware else None,
        "network": _plain(report.network) if report.network else None,
        "battery": _plain(report.battery) if report.battery else None,
        "merchant_data": _plain(report.merchant_data) if report.merchant_data else None,
        "tamper": _plain(report.tamper) if report.tamper else None,
        "health": _plain(report.health) if report.health else None,
        "unsupported": list(report.unsupported),
        "verdict": {"status": report.verdict.status.value, "reasons": list(report.verdict.reasons)},
        "errors": list(report.errors),
        "backends": [dict(entry) for entry in report.backends],
    }


def record_report(ledger: Any, report: DeviceReport, operator: str | None = None) -> int | None:
    """Store an identified terminal's report in the ledger; its device id (None if unidentified).

    Every path that inspects (check station, wipe before and after) records the same way, so a
    terminal's history in the ledger does not depend on which command looked at it. A
    simulator's report is flagged ``simulated`` so it never counts as a depot's terminal.
    """
    if report.identity is None:
        return None
    ident = report.identity
    device_id: int = ledger.record_device(
        report.family, ident.serial or "unknown", ident.vendor, ident.model
    )
    ledger.record_inspection(
        device_id, report.address, to_json(report), operator=operator, simulated=report.simulated
    )
    return device_id
