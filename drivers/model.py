"""The Terminal contract: the one seam the agent sees, and the records its probes return.

Every protocol family implements :class:`Terminal`. A probe returns its record or raises
:class:`~posdiag.drivers.errors.UnsupportedError`; it never guesses. Field names are defined once
here and reused by reports, the ledger and certificates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class ActivationState(StrEnum):
    """Whether a terminal is still bound to a merchant."""

    ACTIVATED = "activated"
    NOT_ACTIVATED = "not_activated"
    PARTIAL = "partial"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Identity:
    """Who the terminal is."""

    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    hardware: str | None = None
    imei: str | None = None
    device_name: str | None = None
    tusn: str | None = None
    """UnionPay terminal unique serial number (终端唯一序列号), when known (a scanned label)."""


@dataclass(frozen=True)
class Evidence:
    """One observed fact behind a conclusion, so a person can check the reasoning."""

    source: str
    fact: str


@dataclass(frozen=True)
class Activation:
    """Activation: the merchant binding, and the evidence it was concluded from."""

    state: ActivationState
    terminal_id: str | None = None
    merchant_id: str | None = None
    keys_loaded: bool | None = None
    host_registered: bool | None = None
    evidence: tuple[Evidence, ...] = ()
    device_state: str | None = None
    status_code: int | None = None
    status_text: str | None = None


@dataclass(frozen=True)
class Firmware:
    """Firmware and software component versions, name to version."""

    components: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkInterface:
    """One network interface as the terminal reports it."""

    name: str
    up: bool | None = None
    mac: str | None = None
    ip: str | None = None
    mode: str | None = None


@dataclass(frozen=True)
class Network:
    """Network health: interfaces, cellular facts, and whether the payment host answers."""

    interfaces: tuple[NetworkInterface, ...] = ()
    sim_state: str | None = None
    operator: str | None = None
    registration: str | None = None
    signal_dbm: int | None = None
    host_reachable: bool | None = None
    host: str | None = None
    modem: str | None = None
    tms: str | None = None
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Battery:
    """Battery health; fields the terminal does not report stay None."""

    present: bool | None = None
    level_pct: int | None = None
    voltage_mv: int | None = None
    temperature_c: float | None = None
    health: str | None = None
    charging: bool | None = None
    cycle_count: int | None = None
    soh_pct: int | None = None
    coin_cell_mv: int | None = None


@dataclass(frozen=True)
class PendingTransactions:
    """Unsettled money held in the terminal's turnover store.

    Attributes:
        count: how many transactions wait.
        total_cents: their total in minor units, or None when the terminal reports only the
            count (a nexo terminal's offline backlog, ``unconfirmedBatchCount``).
        currency: ISO 4217 code of the total, when known.
        undelivered: the transactions were never delivered to the acquirer (an offline
            backlog): only the terminal can deliver them, once it reaches its host again, so
            the operator reconnects it instead of settling (End-of-Day); nothing posdiag may send
            delivers or settles them.
    """

    count: int
    total_cents: int | None
    currency: str | None = None
    undelivered: bool = False


@dataclass(frozen=True)
class MerchantData:
    """What of the merchant is still on the terminal."""

    pending_transactions: PendingTransactions | None = None
    journal_entries: int | None = None
    network_profiles: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tamper:
    """Tamper state; a tampered unit is quarantined, never wiped."""

    tampered: bool
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Health:
    """Faults the terminal reports about itself (printer, reader, clock, memory...)."""

    faults: tuple[str, ...] = ()
    status: str | None = None
    temperature_c: float | None = None


@dataclass(frozen=True)
class WipeStep:
    """One step of a wipe plan.

    Attributes:
        name: stable identifier, journaled in the ledger.
        erases: what this step removes, in words for the operator and the certificate.
        run: performs the step; must be safe to call again after an interruption.
        done: reads the terminal's state to tell whether the step's effect is in place.
        optional: the plan may end ``erased_with_exceptions`` when this step is unavailable.
        caveat: what remains even when the step succeeds (reported as an exception).
    """

    name: str
    erases: str
    run: Callable[[], None]
    done: Callable[[], bool]
    optional: bool = False
    caveat: str = ""


@dataclass(frozen=True)
class CheckScope:
    """How much a check asks the terminal: every exchange costs the operator line time.

    Attributes:
        quick: triage only: identity, activation, unsettled money and tamper (the facts that
            sort a pile of returns); the terminal is asked nothing else.
        host_dialup: the terminal may dial its payment host to prove it is reachable (ZVT
            Diagnosis: seconds, sometimes a minute). Asked when the policy needs host
            reachability or the operator asks for a full check.
    """

    quick: bool = False
    host_dialup: bool = True


QUICK_PROBES = ("identify", "activation", "merchant_data", "tamper")
"""The probes a quick check runs: who it is, whether it is bound, whether money is unsettled,
and the tamper verdict (it comes with the binding facts at no extra exchange, and a tampered unit
must go to quarantine whatever pile it was sorted into)."""


@runtime_checkable
class Terminal(Protocol):
    """What every protocol family offers the agent."""

    address: str
    family: str

    def identify(self) -> Identity:
        """Vendor, model, serial."""
        ...

    def activation(self) -> Activation:
        """Merchant binding with evidence."""
        ...

    def firmware(self) -> Firmware:
        """Firmware components."""
        ...

    def network(self) -> Network:
        """Network health."""
        ...

    def battery(self) -> Battery:
        """Battery health, or UnsupportedError."""
        ...

    def merchant_data(self) -> MerchantData:
        """Merchant data present."""
        ...

    def tamper(self) -> Tamper:
        """Tamper state."""
        ...

    def health(self) -> Health:
        """Self-reported faults."""
        ...

    def wipe_plan(self) -> list[WipeStep]:
        """Ordered wipe steps (executed by the wipe workflow)."""
        ...

    def set_deadline(self, at: float | None) -> None:
        """Bound everything this terminal still does by one instant (or lift the bound).

        Args:
            at: a ``time.monotonic()`` instant; after it every read or exchange raises
                :class:`~posdiag.drivers.errors.DeadlineExceeded`, and reads clip their waits to
                the time left, so a device that keeps talking cannot stretch a check. ``None``
                removes the deadline.
        """
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def apply_scope(terminal: object, scope: CheckScope) -> None:
    """Tell a terminal how much to ask before its first exchange (optional for a family).

    A family that gathers its facts lazily ignores the scope: only the probes asked run.
    """
    set_scope = getattr(terminal, "set_scope", None)
    if callable(set_scope):
        set_scope(scope)
