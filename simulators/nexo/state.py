"""The state of a simulated Adyen (nexo Retailer) terminal, from a model profile and a scenario.

A *profile* (``profiles/*.toml``) says what the hardware is: model name (the first half of the
POIID), a serial, the firmware, whether it runs on a battery, whether it has a printer, its
network interfaces. A *scenario* (``scenarios/*.toml``) says what happened to it: boarded at a
merchant account, payments not yet settled, no network, a jammed printer, a tamper alarm, a
payment running. Scenario values override the profile's; both are data, so a new model or case
needs no code. Unknown keys are errors naming the file and section.

The state changes as a real terminal's does while requests arrive (see ``device.py``): Login
adds the SaleID to the logged-in list and Logout removes it, a SaleReconciliation closes the
period (its totals become a stored report), an Abort of the running payment ends the busy
state, and a reassignment to inventory in the simulated Adyen backend removes the merchant
account and store at the next sync (``tms.py``).

This module imports nothing heavy (no cryptography, no HTTP): the registry reads fault names and
scenario lists from it on every simulated check.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..scenario_data import ScenarioError, build, deep_merge, load_toml, toml_names

__all__ = [
    "ASSIGNMENTS",
    "PRINTER_STATES",
    "Faults",
    "KeyConfig",
    "NexoScenarioError",
    "NexoState",
    "Payment",
    "ReconciliationReport",
    "Timing",
    "available_profiles",
    "available_scenarios",
    "load_nexo",
]

PROFILES = "posdiag.simulators.nexo.profiles"
SCENARIOS = "posdiag.simulators.nexo.scenarios"
DEFAULT_PROFILE = "V400m"
ASSIGNMENTS = ("boarded", "deployed", "inventory", "reassignmentInProgress")
PRINTER_STATES = ("OK", "PaperLow", "NoPaper", "PaperJam", "OutOfOrder")
GLOBAL_STATES = ("OK", "Busy", "Maintenance", "Unreachable")
INSTRUMENTS = ("Card", "Cash", "Check", "Mobile", "StoredValue")
TRANSACTION_TYPES = (
    "Debit",
    "Credit",
    "ReverseDebit",
    "ReverseCredit",
    "OneTimeReservation",
    "CompletedDeffered",
    "FirstReservation",
    "UpdateReservation",
    "CompletedReservation",
    "CashAdvance",
    "IssuerInstalment",
    "Declined",
    "Failed",
    "Award",
    "ReverseAward",
    "Redemption",
    "ReverseRedemption",
    "Rebate",
    "ReverseRebate",
)
MAX_PAYMENTS = 10_000
"""Payments one period may hold (a scenario or a test adding more is refused)."""
MAX_REPORTS = 64
"""Closed periods a terminal keeps for PreviousReconciliation; older ones are forgotten."""
MAX_LOGINS = 64
"""SaleIDs logged in at once; the oldest login is dropped beyond that."""
MAX_SERVICE_IDS = 100_000
"""ServiceIDs remembered for the 48-hour reuse check; the oldest are forgotten beyond that."""
SERVICE_ID_WINDOW_S = 48 * 3600.0
"""A ServiceID may not be reused for the same POIID within 48 hours (reference §2)."""
SPECIALS = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_POIID_PART = re.compile(r"[A-Za-z0-9]{1,32}")
_SERIAL = re.compile(r"[0-9A-Za-z]{1,32}")
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class NexoScenarioError(ScenarioError):
    """A nexo profile or scenario name or file that cannot be used."""


@dataclass
class Payment:
    """One transaction of the current reconciliation period (what GetTotals sums).

    Attributes:
        amount: the amount in the currency's major unit (``"12.50"``), kept exact.
        currency: ISO 4217 code.
        instrument: nexo PaymentInstrumentType (Card, Cash, Check, Mobile, StoredValue).
        card_brand: the brand as Adyen names it (``mc``, ``visa``…).
        transaction_type: nexo TransactionType (Debit for a sale, Credit for a refund…).
        acquirer_id: the acquirer the payment went to (``HostStatus.AcquirerID``).
        sale_id: the SaleID that made it (GetTotals filters by it).
        operator_id: the operator logged in when it was made.
    """

    amount: Decimal | str | float
    currency: str = "EUR"
    instrument: str = "Card"
    card_brand: str = "mc"
    transaction_type: str = "Debit"
    acquirer_id: str = "0"
    sale_id: str = ""
    operator_id: str = ""

    def __post_init__(self) -> None:
        self.amount = Decimal(str(self.amount))


@dataclass
class ReconciliationReport:
    """A closed period: what a PreviousReconciliation returns by its POIReconciliationID."""

    poi_reconciliation_id: str
    payments: list[Payment]
    closed_at: float


@dataclass
class KeyConfig:
    """The shared key the terminal holds (Management API ``nexo.encryptionKey``).

    Attributes:
        identifier: KeyIdentifier.
        version: KeyVersion.
        passphrase: the passphrase the key is derived from (Adyen's rules: 12 or more ASCII
            characters with upper, lower, digit and a special).
        configured: False: the terminal has no key at all (it reads an encrypted request as
            cleartext and complains about ``NexoBlob`` and ``SecurityTrailer``).
        allow_cleartext: whether a cleartext request is served although a key is configured.
            TEST terminals accept cleartext ("cleartext allowed for testing only"), LIVE ones
            refuse it; the simulator plays a TEST terminal by default.
    """

    identifier: str = "posdiag-sim"
    version: int = 1
    passphrase: str = "Posdiag-Sim-Key-1!"
    configured: bool = True
    allow_cleartext: bool = True


@dataclass
class Faults:
    """Faults to inject; counters run down as they fire.

    Attributes:
        wrong_key: the terminal holds a different passphrase than the one it advertises (its
            address's key file), so every encrypted request fails with a crypto error.
        no_key: the terminal has no key configured (as ``KeyConfig.configured = false``).
        malformed_json: the next N answers are not JSON (a broken terminal or proxy).
        slow: seconds every answer is delayed (scaled by ``Timing.scale`` when it is not 0,
            else taken as given: a slow terminal stays slow in a fast test).
        drop: close the connection without answering the next N requests.
    """

    wrong_key: bool = False
    no_key: bool = False
    malformed_json: int = 0
    slow: float = 0.0
    drop: int = 0


@dataclass
class Timing:
    """How fast the simulated terminal answers.

    Attributes:
        latency: seconds before each answer (a terminal's processing time).
        host_latency: seconds a host reachability test takes (Diagnosis with HostDiagnosisFlag).
        scale: multiplies every delay: 0 is as fast as possible (tests), 1 is realistic.
    """

    latency: float = 0.08
    host_latency: float = 0.6
    scale: float = 1.0

    def delay(self, seconds: float) -> float:
        """A scaled delay."""
        return self.scale * seconds


@dataclass
class Hardware:
    """What a model profile says the unit physically has (``[hardware]``, profiles only).

    A scenario describes events (a flat battery, a jammed printer); the profile decides
    whether there is a battery or a printer at all, so ``low-battery`` on a mains-powered
    P400 Plus reports no ``batteryLevel`` instead of inventing one.
    """

    battery: bool = True
    printer: bool = True


@dataclass
class NexoState:
    """Everything the simulated terminal knows about itself (see the module docstring).

    Attributes:
        model, serial: the POIID's halves (``V400m`` + ``324688179``).
        firmware: ``firmwareVersion`` (``adyen_v1_49p5``); ``software_version`` is what
            LoginResponse names in POISoftware.
        merchant_account, store: where the terminal is boarded (None in inventory).
        assignment: boarded | deployed | inventory | reassignmentInProgress.
        battery_pct: None for a mains-powered unit (no ``batteryLevel``).
        printer: None for a unit without a printer, else a nexo PrinterStatus.
        security_ok, ped_ok, card_reader_ok, communication_ok, fraud_prevention: POIStatus flags.
        global_status: GlobalStatus when not busy (OK, Maintenance, Unreachable).
        hosts: AcquirerID → reachable.
        network_profile: ``[{"Address": …, "Iface": …}]`` as ``networkProfile`` carries it.
        unconfirmed_batch_count: payments not yet sent for capture.
        payments: the current period's transactions.
        reports: closed periods by POIReconciliationID (oldest first).
        next_reconciliation_id: the POIReconciliationID the next closed period gets.
        logins: SaleID → the Login's data (OperatorID, ShiftNumber…), oldest first.
        busy_service_id, busy_sale_id: the running payment (None: idle).
        used_service_ids: ServiceID → when it was first used (the 48-hour reuse rule).
        key: the shared key (see :class:`KeyConfig`).
        additional_response_format: ``form`` (key=value&…, Adyen's example) or ``base64-json``.
        event_url: where EventNotifications are POSTed ("" none).
        start_events: events sent at start (``Initialised``, ``NetworkConnected``,
            ``SecurityAlarm``…).
        tms_url: the simulated Adyen backend this terminal syncs with ("" none).
        profile, description: where the state came from.
    """

    model: str = "V400m"
    serial: str = "324688179"
    firmware: str = "adyen_v1_49p5"
    software_version: str = "adyen_v1_49p5"
    manufacturer: str = "Verifone"
    merchant_account: str | None = None
    store: str | None = None
    assignment: str = "inventory"
    battery_pct: int | None = 100
    charging: bool = False
    printer: str | None = "OK"
    security_ok: bool = True
    ped_ok: bool = True
    card_reader_ok: bool = True
    communication_ok: bool = True
    fraud_prevention: bool = False
    global_status: str = "OK"
    hosts: dict[str, bool] = field(default_factory=lambda: {"0": True})
    network_profile: list[dict[str, str]] = field(default_factory=list)
    unconfirmed_batch_count: int = 0
    payments: list[Payment] = field(default_factory=list)
    reports: OrderedDict[str, ReconciliationReport] = field(default_factory=OrderedDict)
    next_reconciliation_id: int = 1000
    logins: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    busy_service_id: str | None = None
    busy_sale_id: str | None = None
    used_service_ids: OrderedDict[str, float] = field(default_factory=OrderedDict)
    key: KeyConfig = field(default_factory=KeyConfig)
    additional_response_format: str = "form"
    event_url: str = ""
    start_events: list[str] = field(default_factory=lambda: ["Initialised", "NetworkConnected"])
    tms_url: str = ""
    faults: Faults = field(default_factory=Faults)
    timing: Timing = field(default_factory=Timing)
    profile: str = DEFAULT_PROFILE
    description: str = ""

    @property
    def poiid(self) -> str:
        """``[model]-[serial]``, as Adyen names a terminal (``V400m-324688179``)."""
        return f"{self.model}-{self.serial}"

    @property
    def logged_sale_ids(self) -> list[str]:
        """SaleIDs logged in to this POI, in login order (``LoggedSaleID``)."""
        return list(self.logins)

    @property
    def key_configured(self) -> bool:
        """Whether the terminal holds a key (the scenario's, and no ``no_key`` fault)."""
        return self.key.configured and not self.faults.no_key

    def validate(self, where: str) -> None:
        """Refuse values a real terminal cannot hold (one line naming the field).

        Raises:
            NexoScenarioError: the first bad value.
        """
        if not _POIID_PART.fullmatch(self.model):
            raise NexoScenarioError(f"{where}: model {self.model!r} must be 1-32 letters/digits")
        if not _SERIAL.fullmatch(self.serial):
            raise NexoScenarioError(f"{where}: serial {self.serial!r} must be 1-32 letters/digits")
        checks: list[tuple[bool, str]] = [
            (self.assignment in ASSIGNMENTS, f"assignment must be one of {', '.join(ASSIGNMENTS)}"),
            (self.printer is None or self.printer in PRINTER_STATES, "unknown printer status"),
            (self.global_status in GLOBAL_STATES, "unknown global_status"),
            (
                self.battery_pct is None or 0 <= self.battery_pct <= 100,
                "battery_pct must be 0-100",
            ),
            (0 <= self.unconfirmed_batch_count <= 1_000_000, "unconfirmed_batch_count too large"),
            (len(self.payments) <= MAX_PAYMENTS, f"more than {MAX_PAYMENTS} payments"),
            (len(self.hosts) <= 64 and all(len(a) <= 32 for a in self.hosts), "too many hosts"),
            (len(self.network_profile) <= 16, "more than 16 network interfaces"),
            (
                self.additional_response_format in ("form", "base64-json"),
                "additional_response_format must be form or base64-json",
            ),
            (bool(_KEY_ID.fullmatch(self.key.identifier)), "key identifier: 1-64 of A-Za-z0-9._-"),
            (0 <= self.key.version <= 1_000_000, "key version out of range"),
            (passphrase_ok(self.key.passphrase), "key passphrase breaks Adyen's rules"),
        ]
        for payment in self.payments:
            kind = payment.transaction_type
            checks.append((payment.instrument in INSTRUMENTS, f"instrument {payment.instrument!r}"))
            checks.append((kind in TRANSACTION_TYPES, f"transaction type {kind!r}"))
            checks.append((bool(re.fullmatch(r"[A-Z]{3}", payment.currency)), "currency"))
        for ok, message in checks:
            if not ok:
                raise NexoScenarioError(f"{where}: {message}")


def passphrase_ok(passphrase: str) -> bool:
    """Whether a passphrase meets Adyen's rules (reference §6).

    12–100 printable ASCII characters with an upper, a lower, a digit and a special; ASCII
    because the libraries disagree on the passphrase's encoding otherwise.
    """
    return (
        12 <= len(passphrase) <= 100
        and passphrase.isascii()
        and passphrase.isprintable()
        and any(c.isupper() for c in passphrase)
        and any(c.islower() for c in passphrase)
        and any(c.isdigit() for c in passphrase)
        and any(c in SPECIALS for c in passphrase)
    )


def available_profiles() -> list[str]:
    """Model profile names (``V400m``, ``P400Plus``, ``S1F2``…)."""
    return toml_names(PROFILES)


def available_scenarios() -> list[str]:
    """Scenario names."""
    return toml_names(SCENARIOS)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    return build(cls, data, where, NexoScenarioError)


def state_from_dict(data: dict[str, Any], where: str) -> NexoState:
    """Build the state from merged profile + scenario data, rejecting unknown keys."""
    data = dict(data)
    terminal = dict(data.pop("terminal", {}))
    description = data.pop("description", "")
    payments = [_build(Payment, p, f"{where} [[payments]]") for p in data.pop("payments", [])]
    key = _build(KeyConfig, data.pop("key", {}), f"{where} [key]")
    faults = _build(Faults, data.pop("faults", {}), f"{where} [faults]")
    timing = _build(Timing, data.pop("timing", {}), f"{where} [timing]")
    hosts = {str(k): bool(v) for k, v in dict(data.pop("hosts", {"0": True})).items()}
    network = data.pop("network_profile", [])
    if data:
        raise NexoScenarioError(f"{where}: unknown sections {', '.join(sorted(data))}")
    for name in ("merchant_account", "store", "battery_pct", "printer", "busy_service_id"):
        if terminal.get(name) in ("", "none"):  # TOML has no null: "" means "not there"
            terminal[name] = None
    state: NexoState = _build(NexoState, terminal, f"{where} [terminal]")
    state.payments, state.key, state.faults, state.timing = payments, key, faults, timing
    state.hosts = hosts
    state.network_profile = [
        {"Address": str(n.get("Address", "")), "Iface": str(n.get("Iface", ""))} for n in network
    ]
    state.description = description
    state.validate(where)
    return state


def load_nexo(
    scenario: str, profile: str = DEFAULT_PROFILE, overrides: dict[str, Any] | None = None
) -> NexoState:
    """The scenario applied to the model profile, with optional overrides on top."""
    base = load_toml(PROFILES, profile, "nexo model profile", error=NexoScenarioError)
    where = f"nexo {profile}/{scenario}"
    hardware = _build(Hardware, base.pop("hardware", {}), f"{where} [hardware]")
    case = load_toml(SCENARIOS, scenario, "nexo scenario", error=NexoScenarioError)
    data = deep_merge(base, case)
    if overrides:
        data = deep_merge(data, overrides)
    data.setdefault("terminal", {})["profile"] = profile
    state = state_from_dict(data, where)
    if not hardware.battery:
        state.battery_pct = None  # a mains unit has no battery whatever the scenario says
        state.charging = False
    if not hardware.printer:
        state.printer = None
    return state
