"""The Backend contract: where a terminal's binding lives when the device does not hold it.

A production Android POS with debugging locked is enrolled in its vendor's terminal management
system; a Chinese 电签 POS is bound to a merchant in its acquirer's or agent's platform; a nexo
terminal is boarded in the Adyen Customer Area. Each such system is a *backend*: posdiag asks it
three things, through one small contract every connector implements:

* ``lookup`` — is this unit (by serial number or UnionPay TUSN) bound, unbound, disabled, or
  unknown here, with what the backend said as evidence;
* ``release`` — the backend's own way to give the unit back (unbind, disable + move to the
  depot's reseller, reassign to inventory), confirmed by a fresh lookup before it is reported;
* ``report_lost`` — disable or lock the unit (挂失), confirmed the same way.

Every result is a typed record that says what was seen. Merchant and store identifiers are
masked here, in the driver, so no layer above ever holds them in clear; every string a backend
sent is sanitised (``clean_text``) before it enters a record, because a backend is as hostile
as a device until proven otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import PosdiagError
from ..model import Evidence
from ..text import clean_text, mask_identifier

__all__ = [
    "Backend",
    "BackendAuthError",
    "BackendConfigError",
    "BackendError",
    "BackendProtocolError",
    "BackendRecord",
    "BackendRefused",
    "BackendUnavailable",
    "Binding",
    "ChangeResult",
    "ChangeStatus",
    "TerminalKey",
    "masked",
    "said",
]


class Binding(enum.StrEnum):
    """The unit's binding as the backend sees it, normalised across backends."""

    BOUND = "bound"
    """Assigned to a merchant and able to transact (PAXSTORE A, Adyen boarded/deployed)."""
    UNBOUND = "unbound"
    """Registered but with no merchant, or in the depot's inventory: free to go back."""
    DISABLED = "disabled"
    """Suspended, locked or reported lost: cannot transact, still registered."""
    UNKNOWN = "unknown"
    """The backend does not know the unit, or said something posdiag cannot map."""


class ChangeStatus(enum.StrEnum):
    """How a release or a lost report ended, after the confirming lookup."""

    DONE = "done"
    """The confirming lookup shows the change."""
    ALREADY = "already"
    """The unit was already in the wanted state: nothing was sent."""
    PENDING = "pending"
    """The backend accepted the change but has not applied it yet (the terminal must sync).
    Never reported as done: the next run looks it up again."""
    REFUSED = "refused"
    """The backend refused (not registered, wrong state, insufficient rights)."""


@dataclass(frozen=True)
class TerminalKey:
    """How a terminal is named to a backend: its serial number, its TUSN, or both."""

    serial: str | None = None
    tusn: str | None = None

    def __post_init__(self) -> None:
        if not self.serial and not self.tusn:
            raise ValueError("a terminal key needs a serial number or a TUSN")

    def label(self) -> str:
        """The key as a person reads it (never secret: serials are printed on the unit)."""
        if self.serial and self.tusn:
            return f"SN {self.serial} / TUSN {self.tusn}"
        return f"SN {self.serial}" if self.serial else f"TUSN {self.tusn}"


@dataclass(frozen=True)
class BackendRecord:
    """What one backend knows about one unit.

    Attributes:
        backend: the configured backend's name (``paxstore``, ``adyen``, a profile's name).
        kind: the connector (``paxstore``, ``adyen``, ``generic``).
        key: how the unit was asked for.
        binding: the normalised binding.
        status: the backend's own status word, verbatim but sanitised (``A``, ``boarded``…).
        backend_id: the backend's id for the unit (``AMS1-000150183300032``, a PAXSTORE id).
        merchant: the merchant it is bound to, masked.
        store: the store or reseller, masked.
        model, firmware: as the backend reports them.
        last_seen: when the backend last heard from the unit (ISO 8601 UTC), if it says.
        online: whether the backend reports the unit online now.
        battery_pct: battery level, where the backend reports it.
        pending: a change is scheduled but not applied (Adyen ``reassignmentInProgress``).
        evidence: the facts the binding was concluded from, quoted for a person to check.
    """

    backend: str
    kind: str
    key: TerminalKey
    binding: Binding
    status: str | None = None
    backend_id: str | None = None
    merchant: str | None = None
    store: str | None = None
    model: str | None = None
    firmware: str | None = None
    last_seen: str | None = None
    online: bool | None = None
    battery_pct: int | None = None
    pending: bool = False
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class ChangeResult:
    """A release or a lost report: what was sent, and the lookups before and after."""

    action: str
    status: ChangeStatus
    before: BackendRecord
    after: BackendRecord | None = None
    detail: str = ""
    requests: tuple[str, ...] = field(default=())
    """What was asked of the backend, in order (``PUT /terminal/disable``), for the journal."""

    @property
    def confirmed(self) -> bool:
        """True only when a fresh lookup shows the change (or it was already in place)."""
        return self.status in (ChangeStatus.DONE, ChangeStatus.ALREADY)


@runtime_checkable
class Backend(Protocol):
    """What every backend connector offers the agent."""

    name: str
    kind: str

    def lookup(self, key: TerminalKey) -> BackendRecord:
        """The unit's binding; ``Binding.UNKNOWN`` when the backend does not know it."""
        ...

    def release(self, key: TerminalKey) -> ChangeResult:
        """Give the unit back the backend's way, then confirm with a fresh lookup."""
        ...

    def report_lost(self, key: TerminalKey, reason: str) -> ChangeResult:
        """Disable or lock the unit (挂失), then confirm with a fresh lookup."""
        ...

    def close(self) -> None:
        """Release the HTTP connection pool."""
        ...


class BackendError(PosdiagError):
    """A backend could not answer; the message is one line for the person at the bench."""


class BackendConfigError(BackendError):
    """The backends file or a profile is wrong (missing key, unknown kind, bad mapping)."""


class BackendAuthError(BackendError):
    """The backend rejected the credentials or the signature (wrong key, expired, clock skew)."""


class BackendUnavailable(BackendError):
    """The backend is down, slow past the deadline, or still rate-limiting after the retries."""


class BackendProtocolError(BackendError):
    """The backend answered something that is not its API (not JSON, wrong shape, too large)."""


class BackendRefused(BackendError):
    """The backend understood and refused (business error, insufficient rights)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def masked(value: object) -> str | None:
    """A merchant, store or reseller identifier as records hold it: sanitised, then masked."""
    if value is None or value == "":
        return None
    return mask_identifier(clean_text(value, 128))


def said(source: str, fact: object) -> Evidence:
    """Evidence quoting a backend, sanitised (a backend's words reach screens and certificates)."""
    return Evidence(source=clean_text(source, 64), fact=clean_text(fact, 256))
