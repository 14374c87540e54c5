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
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any

from posdiag.drivers.i18n import N_, _

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


ACTIVATION_WORDS = {
    "activated": N_("activated"),
    "not_activated": N_("not activated"),
    "partial": N_("partly activated"),
    "unknown": N_("activation unknown"),
}
"""The activation states (``ActivationState`` values) in words."""


def activation_words(state: str) -> str:
    """An activation state in the reader's words; an unknown one as it is."""
    known = ACTIVATION_WORDS.get(state)
    return _(known) if known else state


SIM_WORDS = {
    "READY": N_("ready"),
    "LOADED": N_("ready"),
    "ABSENT": N_("absent"),
    "NOT_READY": N_("not ready"),
    "PIN_REQUIRED": N_("locked (PIN required)"),
    "PUK_REQUIRED": N_("locked (PUK required)"),
    "NETWORK_LOCKED": N_("locked to a network"),
    "PERM_DISABLED": N_("disabled"),
    "CARD_IO_ERROR": N_("card error"),
    "UNKNOWN": N_("state unknown"),
}
"""Android's SIM states (``gsm.sim.state``) in words; an unknown one is shown as the device says."""
REGISTRATION_WORDS = {
    "IN_SERVICE": N_("in service"),
    "OUT_OF_SERVICE": N_("out of service"),
    "EMERGENCY_ONLY": N_("emergency calls only"),
    "POWER_OFF": N_("radio off"),
}
"""Android's service states in words."""


def sim_words(state: str) -> str:
    """A SIM state in the reader's words; one posdiag does not know, as the device said it."""
    known = SIM_WORDS.get(state.upper())
    return _(known) if known else state


def registration_words(state: str) -> str:
    """A cellular service state in the reader's words (``OUT_OF_SERVICE`` → "out of service")."""
    known = REGISTRATION_WORDS.get(state.upper())
    return _(known) if known else state.replace("_", " ").lower()


def money_text(pending: PendingTransactions) -> str:
    """An amount of unsettled money in the terminal's currency, as the reader's locale writes it.

    ``¥47.57`` on a CNY terminal read in Chinese (``CN¥47.57`` in English, where a bare ``¥`` is
    the yen), ``€47.57`` on a EUR one in either language; no currency, or a code that is not
    three ASCII letters (a hostile or broken terminal): the plain number, ``47.57``. The stored
    value is in minor units (``total_cents``), scaled by the currency's own digits (¥4,757 for
    4757 in JPY, 2 digits for an unknown code), so the report's JSON stays as the terminal said.
    """
    from posdiag.drivers.i18n import format_decimal, format_money

    if pending.total_cents is None:
        return _("amount not reported")
    minor = int(pending.total_cents)
    code = _currency_code(pending.currency)
    with localcontext() as context:
        # a hostile batch may claim more digits than decimal's default 28: formatting must
        # not raise InvalidOperation (JSON caps an integer at a few thousand digits)
        context.prec = max(context.prec, len(str(abs(minor))) + 8)
        if code is None:
            return format_decimal(_major_units(minor, 2), places=2)
        return format_money(_major_units(minor, _currency_digits(code)), code)


def _currency_code(currency: str | None) -> str | None:
    """An ISO 4217 alphabetic code (upper case), or None for anything that cannot be one."""
    if not currency:
        return None
    code = currency.strip().upper()
    if len(code) == 3 and code.isascii() and code.isalpha():
        return code
    return None


def _currency_digits(code: str) -> int:
    """The number of minor-unit digits of a currency (CLDR), 2 when unknown."""
    from babel.numbers import get_currency_precision

    try:
        return int(get_currency_precision(code))
    except Exception:  # babel's data lacks the code: the common case
        return 2


def _major_units(minor: int, digits: int) -> Decimal:
    """Minor units as an exact decimal amount (no float rounding, however large)."""
    return Decimal(minor).scaleb(-digits)


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
    scope: str = "standard"
    """How much was asked: ``quick`` (triage: identity, binding, unsettled money, tamper),
    ``standard`` (every probe, the host dial-up only if the policy needs it) or ``full`` (with
    it)."""

    @property
    def reachable(self) -> bool:
        """Whether the terminal answered at all."""
        return self.verdict.status is not VerdictStatus.UNREACHABLE


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_field_names: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """A record as JSON-ready data: dataclasses to dicts, enums to their values."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _field_names.get(kind)
        if names is None:
            names = _field_names[kind] = tuple(f.name for f in dataclasses.fields(value))
        return {name: _plain(getattr(value, name)) for name in names}
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
        "scope": report.scope,
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
