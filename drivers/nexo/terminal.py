"""The Terminal contract for nexo (Adyen Terminal API) terminals on the shop network.

One check is one short dialogue, in the order Adyen advises and that disturbs the terminal
least (reference nexo.md §3–4, §9):

1. **Diagnosis** without the host test: state, printer, reader, PIN pad, communication,
   battery, firmware, network profile, merchant account and store, the offline backlog
   (``unconfirmedBatchCount``), the POS systems logged in;
2. **Diagnosis with the host test** when the policy reads host reachability (a full or standard
   check) or the backlog is not empty (can the terminal deliver it?);
3. **Login, GetTotals, Logout**: the open period's totals per currency, without closing it.

A quick check (triage) asks only the first. The terminal's identity needs no exchange at all:
its POIID (``V400m-324688179``, model and serial) is in its certificate or the address, so a
busy terminal is still identified and its other probes say why they could not be read.

Activation: a terminal boarded to a merchant account or store reports them in its Diagnosis;
none means it is not (or no longer) configured for a merchant. The binding itself lives in
Adyen (the Management API, ``posdiag.drivers.backend.adyen``): the agent merges that backend's
``assignment.status`` with this evidence, and a wipe releases the unit there. Locally a wipe can
only log the POS systems out; the binding evidence is reported under the source
:data:`ASSIGNMENT_SOURCE`, which the wipe's read-back treats as "released in the backend, not
over the cable" (as it does an Android unit's device owner).

Unsettled money: ``unconfirmedBatchCount`` payments the terminal has not yet delivered to Adyen
are the pending transactions; the terminal reports their number, not their sum. A wipe is
refused while any remain (nothing here can or may settle them: no message that moves money or
closes a batch is ever sent).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from ..activity import announce
from ..catalogue import Catalogue, ModelEntry, NexoModelEntry, load_catalogue
from ..errors import (
    AuthenticationError,
    DeadlineExceeded,
    PosdiagError,
    ProtocolError,
    TransportError,
    UnsupportedError,
)
from ..i18n import N_, _, format_money, ngettext
from ..model import (
    Activation,
    ActivationState,
    Battery,
    CheckScope,
    Evidence,
    Firmware,
    Health,
    Identity,
    MerchantData,
    Network,
    NetworkInterface,
    PendingTransactions,
    Tamper,
    WipeStep,
)
from ..text import clean_text, cleaned, mask_identifier
from .driver import NexoDriver
from .event_log import NexoEventLog, alarm_sentences
from .failures import NexoBusyError, NexoCommandError
from .readers import Diagnosis, LoginResult, TotalsResult

__all__ = ["ASSIGNMENT_SOURCE", "NexoFacts", "NexoTerminal"]

log = structlog.get_logger(__name__)

ASSIGNMENT_SOURCE = "account assignment"
"""Evidence source of a terminal's merchant account and store: released in Adyen, not wiped."""
MAX_LOGOUTS = 16
"""POS systems logged out by one wipe step (a terminal lists a handful)."""
_SIGN = {"Debit": 1, "ReverseCredit": 1, "Credit": -1, "ReverseDebit": -1}
"""How a transaction type counts towards a period's net amount."""

PRINTER_FAULTS = {
    "PaperLow": N_("the printer's paper is low: load a new roll before the terminal goes out"),
    "NoPaper": N_("the printer has no paper: load a roll and check again"),
    "PaperJam": N_("the printer reports a paper jam: clear it and check again"),
    "OutOfOrder": N_("the printer is out of order: send the terminal for repair"),
}
GLOBAL_FAULTS = {
    "Maintenance": N_(
        "the terminal is in maintenance (an update or configuration is running): let it "
        "finish, then check again"
    ),
    "Unreachable": N_(
        "the terminal reports itself unreachable: check its network connection, then check again"
    ),
    "Busy": N_("the terminal reports itself busy: finish what it is doing, then check again"),
}


@dataclass
class NexoFacts:
    """What one nexo dialogue learned; the probes are computed from it."""

    poiid: str | None = None
    environment: str | None = None
    diagnosis: Diagnosis | None = None
    host_diagnosis: Diagnosis | None = None
    host_refused: str | None = None
    """The ErrorCondition of a host diagnosis the terminal failed (``UnreachableHost``)."""
    busy: str | None = None
    """Why the terminal refused the first Diagnosis as busy (in a transaction, admin menu)."""
    login: LoginResult | None = None
    totals: TotalsResult | None = None
    entry: ModelEntry | None = None
    errors: list[str] = field(default_factory=list)


class NexoTerminal:
    """A nexo terminal behind a :class:`~.driver.NexoDriver`.

    Args:
        driver: the driver (the transport is prepared on first use).
        address: the address string, for reports.
        catalogue: model entries (defaults to the shipped catalogue).
        events: the events terminals sent to the station (default: the user's data folder),
            read for SecurityAlarms.
    """

    family = "nexo"

    def __init__(
        self,
        driver: NexoDriver,
        address: str,
        catalogue: Catalogue | None = None,
        events: NexoEventLog | None = None,
    ) -> None:
        self.driver = driver
        self.address = address
        self.catalogue = catalogue or load_catalogue()
        self.events = events or NexoEventLog()
        self._facts: NexoFacts | None = None
        self._scope = CheckScope()
        self._gathered_quick = False

    def set_scope(self, scope: CheckScope) -> None:
        """How much the next gathering asks; facts gathered quick are read again for a full one."""
        if self._facts is not None and self._gathered_quick and not scope.quick:
            self._facts = None
        self._scope = scope

    def set_deadline(self, at: float | None) -> None:
        """After ``at`` (``time.monotonic()``) every request raises DeadlineExceeded."""
        self.driver.set_deadline(at)

    def close(self) -> None:
        """Release the connection."""
        self.driver.close()

    # --- the dialogue ----------------------------------------------------------------------------

    def facts(self) -> NexoFacts:
        """Gather the facts once per terminal object (a check is one dialogue)."""
        if self._facts is None:
            self._facts = self._collect()
        return self._facts

    def refresh(self) -> NexoFacts:
        """Forget the gathered facts and ask the terminal again (after a wipe step)."""
        self._facts = None
        return self.facts()

    def _collect(self) -> NexoFacts:
        facts = NexoFacts()
        announce(_("connecting to the terminal"))
        self.driver.open()  # unreachable, or not the terminal named: the caller decides
        facts.poiid = self.driver.poiid
        peer = self.driver.transport.peer
        facts.environment = peer.environment if peer else None
        model, _dash, _serial = (facts.poiid or "").partition("-")
        facts.entry = self.catalogue.by_name("nexo", model)
        quick = self._scope.quick

        def step(
            name: str, what: str, action: Callable[[], object], *, first: bool = False
        ) -> object:
            """One exchange, announced as ``what``; its failure is noted in English as ``name``."""
            announce(what)
            try:
                return action()
            except (AuthenticationError, DeadlineExceeded):
                raise  # no answer can be trusted / the check's time is up
            except (TransportError, ProtocolError) as exc:
                if first:
                    raise  # nothing answered: the terminal is unreachable
                facts.errors.append(clean_text(f"{name}: {exc}"))
            except NexoBusyError as exc:
                if first:
                    facts.busy = clean_text(exc)  # the verdict's reason: what to do about it
                facts.errors.append(clean_text(f"{name}: {exc}"))
            except PosdiagError as exc:
                facts.errors.append(clean_text(f"{name}: {exc}"))
            return None

        facts.diagnosis = step(  # type: ignore[assignment]
            "diagnosis",
            _("reading the terminal's diagnosis"),
            lambda: self.driver.diagnosis(host=False),
            first=True,
        )
        backlog = facts.diagnosis.unconfirmed_batch_count if facts.diagnosis else None
        if not quick and facts.diagnosis and (self._scope.host_dialup or backlog):
            facts.host_diagnosis = step(  # type: ignore[assignment]
                "host diagnosis",
                _("testing the connection to the payment host"),
                self._host_diagnosis(facts),
            )
        if not quick and facts.diagnosis:
            facts.login = step(  # type: ignore[assignment]
                "login", _("logging in to the terminal"), self.driver.login
            )
            if facts.login is not None:
                facts.totals = step(  # type: ignore[assignment]
                    "get totals", _("reading unsettled totals"), self.driver.get_totals
                )
                step("logout", _("logging off"), self.driver.logout)
        self._gathered_quick = quick
        log.info("nexo.collected", address=self.address, errors=len(facts.errors))
        return facts

    def _host_diagnosis(self, facts: NexoFacts) -> Callable[[], Diagnosis | None]:
        """A host diagnosis, where a terminal that says ``UnreachableHost`` is an answer."""

        def run() -> Diagnosis | None:
            try:
                return self.driver.diagnosis(host=True)
            except NexoCommandError as exc:
                if exc.condition != "UnreachableHost":
                    raise
                facts.host_refused = exc.condition
                return None

        return run

    def _diagnosis(self) -> Diagnosis:
        """The first Diagnosis, or UnsupportedError saying the terminal did not give one."""
        diagnosis = self.facts().diagnosis
        if diagnosis is None:
            raise UnsupportedError(_("the terminal did not answer its diagnosis"))
        return diagnosis

    def _entry(self) -> ModelEntry:
        return self.facts().entry or self.catalogue.generic("nexo")

    # --- probes ----------------------------------------------------------------------------------

    @cleaned
    def identify(self) -> Identity:
        """Model and serial from the POIID (``V400m-324688179``), vendor from the catalogue.

        The serial is the POIID's serial part: what Adyen's Management API calls the terminal's
        ``serialNumber`` (its ``id`` is the whole POIID), so a backend lookup finds it.
        """
        f = self.facts()
        poiid = f.poiid or ""
        model, _dash, serial = poiid.partition("-")
        entry = self._entry()
        hardware = entry.hardware if isinstance(entry, NexoModelEntry) and entry.hardware else None
        return Identity(
            vendor=entry.vendor or None,
            model=entry.model if not entry.is_generic else (model or entry.model),
            serial=serial or None,
            hardware=hardware,
            device_name=poiid or None,
        )

    @cleaned
    def activation(self) -> Activation:
        """Boarded when the Diagnosis names a merchant account or store; the evidence says which."""
        f = self.facts()
        d = f.diagnosis
        if d is None:
            return Activation(
                ActivationState.UNKNOWN,
                evidence=(Evidence("diagnosis", _("the terminal did not answer its diagnosis")),),
            )
        evidence: list[Evidence] = []
        if d.merchant_account or d.store_id:
            where = _where(d)
            evidence.append(
                Evidence(
                    ASSIGNMENT_SOURCE,
                    _("{where}: the terminal is configured for this merchant (Diagnosis)").format(
                        where=where
                    ),
                )
            )
            state = ActivationState.ACTIVATED
        else:
            evidence.append(
                Evidence("diagnosis", _("the terminal reports no merchant account or store"))
            )
            state = ActivationState.NOT_ACTIVATED
        if self.driver.encrypted:
            key = self.driver.key
            assert key is not None
            evidence.append(
                Evidence(
                    "diagnosis",
                    _(
                        "the terminal accepted the shared key {identifier} (version {version})"
                    ).format(identifier=key.identifier, version=key.version),
                )
            )
        if f.environment:
            evidence.append(
                Evidence(
                    "certificate",
                    _("an Adyen {environment} terminal").format(environment=f.environment.upper()),
                )
            )
        return Activation(
            state=state,
            merchant_id=d.merchant_account,
            keys_loaded=True if self.driver.encrypted else None,
            host_registered=bool(d.merchant_account or d.store_id),
            evidence=tuple(evidence),
            device_state=d.global_status,
        )

    @cleaned
    def firmware(self) -> Firmware:
        """``firmwareVersion`` from the Diagnosis; the POI software from the Login when read."""
        f = self.facts()
        components: dict[str, str] = {}
        if f.diagnosis and f.diagnosis.firmware_version:
            components["Adyen firmware"] = f.diagnosis.firmware_version
        software = f.login.software_version if f.login else None
        if software and software not in components.values():
            components["POI software"] = software
        if not components:
            raise UnsupportedError(_("the terminal reported no software versions"))
        return Firmware(components)

    @cleaned
    def network(self) -> Network:
        """Interfaces from the network profile; communication and host from the Diagnoses."""
        f = self.facts()
        d = self._diagnosis()
        # the network profile lists the interfaces the terminal uses: one with an address is up
        interfaces = tuple(
            NetworkInterface(
                name=entry.iface or "?",
                up=True if entry.address else None,
                ip=entry.address or None,
            )
            for entry in d.network_profile
        )
        details: list[str] = []
        if d.communication_ok is not None:
            details.append(
                _("the terminal reports its communication as working")
                if d.communication_ok
                else _("the terminal reports its communication as down")
            )
        reachable: bool | None = None
        host = f.host_diagnosis
        if f.host_refused:
            reachable = False
            details.append(_("host diagnosis: the payment host cannot be reached"))
        elif host is not None:
            known = [h for h in host.host_status if h.reachable is not None]
            if known:
                reachable = all(h.reachable for h in known)
                for entry in known[:8]:
                    details.append(
                        (
                            _("acquirer host {host}: reachable")
                            if entry.reachable
                            else _("acquirer host {host}: not reachable")
                        ).format(host=entry.acquirer_id)
                    )
        return Network(
            interfaces=interfaces,
            host_reachable=reachable,
            details=tuple(details),
        )

    @cleaned
    def battery(self) -> Battery:
        """``batteryLevel`` (portable models); a mains-powered model has no battery to judge."""
        d = self._diagnosis()
        if d.battery_pct is not None:
            return Battery(present=True, level_pct=d.battery_pct)
        entry = self._entry()
        if isinstance(entry, NexoModelEntry) and entry.battery == "no":
            return Battery(present=False)
        raise UnsupportedError(_("the terminal reported no battery level"))

    @cleaned
    def merchant_data(self) -> MerchantData:
        """The offline backlog as pending transactions; totals, account and logins as notes."""
        f = self.facts()
        d = self._diagnosis()
        pending = None
        if d.unconfirmed_batch_count is not None:
            # the terminal counts its backlog but does not sum it: the total is unknown, not 0
            pending = PendingTransactions(d.unconfirmed_batch_count, None, undelivered=True)
        notes: list[str] = []
        if d.unconfirmed_batch_count:
            notes.append(
                ngettext(
                    "{count} payment not yet delivered to Adyen (the terminal does not report "
                    "its amount)",
                    "{count} payments not yet delivered to Adyen (the terminal does not report "
                    "their amount)",
                    d.unconfirmed_batch_count,
                ).format(count=d.unconfirmed_batch_count)
            )
        elif d.unconfirmed_batch_count is None:
            notes.append(_("the terminal did not report its offline backlog"))
        if d.merchant_account or d.store_id:
            notes.append(_where(d))
        if d.logged_sale_ids:
            count = len(d.logged_sale_ids)
            notes.append(
                ngettext(
                    "{count} POS system logged in to the terminal",
                    "{count} POS systems logged in to the terminal",
                    count,
                ).format(count=count)
            )
        if f.totals is not None:
            notes.extend(_totals_notes(f.totals))
        return MerchantData(pending_transactions=pending, notes=tuple(notes))

    @cleaned
    def tamper(self) -> Tamper:
        """``SecurityOKFlag`` false, or any ``SecurityAlarm`` the terminal sent the station.

        The flag is the terminal's verdict now (a terminal may leave it out); an alarm is what
        it said when it happened, POSTed to the station's event receiver
        (``posdiag station --nexo-events``, ``posdiag nexo-events``) and kept per POIID
        (:mod:`.event_log`). Every alarm still recorded counts, however old: posdiag cannot tell
        from here whether the unit was examined since, and a tamper alarm must not expire by
        itself, so the unit stays quarantined (its flag true again after a restart or not) until
        someone removes its events after the examination (``posdiag nexo-events --forget``).
        A terminal keeps its newest 200 events, alarms last to go.
        """
        f = self.facts()
        d = f.diagnosis
        details: list[str] = []
        if d is not None and d.security_ok is False:
            details.append(_("the terminal reports a security fault (SecurityOKFlag false)"))
        if f.poiid:
            alarms = self.events.recent(f.poiid, ("SecurityAlarm",))
            if alarms:
                log.info("nexo.security_alarms", poiid=f.poiid, count=len(alarms))
            details.extend(alarm_sentences(alarms))
        if details:
            return Tamper(True, tuple(details))
        if d is None:
            raise UnsupportedError(_("the terminal did not answer its diagnosis"))
        if d.security_ok is None:
            raise UnsupportedError(_("the terminal did not report its security state"))
        return Tamper(False)

    @cleaned
    def health(self) -> Health:
        """Printer, card reader, PIN pad, communication and global state, as actions to take.

        A terminal too busy to answer its Diagnosis has that as its one fault: the operator
        must free it (finish the transaction, close the admin menu) before it can be judged.
        """
        if self.facts().busy is not None:
            return Health(faults=(self.facts().busy or "",), status="Busy")
        d = self._diagnosis()
        faults: list[str] = []
        if d.global_status in GLOBAL_FAULTS:
            faults.append(_(GLOBAL_FAULTS[d.global_status]))
        printer = d.printer_status
        if printer in PRINTER_FAULTS:
            faults.append(_(PRINTER_FAULTS[printer]))
        elif printer and printer != "OK":
            faults.append(
                _("the printer reports {status}: check it, then check again").format(status=printer)
            )
        if d.card_reader_ok is False:
            faults.append(
                _(
                    "the card reader reports a fault: clean the card slot and check again; if it "
                    "persists, send the terminal for repair"
                )
            )
        if d.ped_ok is False:
            faults.append(_("the PIN pad reports a fault: send the terminal for repair"))
        if d.communication_ok is False:
            faults.append(
                _(
                    "the terminal reports its communication as down: check its network cable or "
                    "Wi-Fi, then check again"
                )
            )
        words = [
            _("global status {status}").format(status=d.global_status) if d.global_status else "",
            _("printer {status}").format(status=printer) if printer else "",
        ]
        return Health(faults=tuple(faults), status=_(", ").join(w for w in words if w) or None)

    # --- the wipe --------------------------------------------------------------------------------

    def wipe_plan(self) -> list[WipeStep]:
        """Log every POS system out; the binding is released in Adyen by the agent's release step.

        Nothing a terminal accepts over its local API unboards, resets or wipes it (nexo.md
        §9): the merchant binding is Adyen's, released by reassigning the terminal to the
        depot's inventory (``posdiag wipe --release`` with the Adyen backend configured), after
        which the terminal removes its configuration when it next synchronises.
        """

        def logout_all() -> None:
            announce(_("logging the POS systems out"), done=1, total=1, unit="steps")
            logged = list(self.driver.diagnosis(host=False).logged_sale_ids[:MAX_LOGOUTS])
            for sale_id in dict.fromkeys([*logged, self.driver.sale_id]):
                self.driver.logout(sale_id)

        def nobody_logged_in() -> bool:
            announce(_("checking that no POS system is logged in"))
            return not self.driver.diagnosis(host=False).logged_sale_ids

        return [
            WipeStep(
                "logout",
                _("the POS systems' login data on the terminal (Logout)"),
                logout_all,
                nobody_logged_in,
            )
        ]


def _where(d: Diagnosis) -> str:
    """The merchant account and store a terminal reports, masked (reports are pasted around)."""
    parts = []
    if d.merchant_account:
        parts.append(
            _("merchant account {account}").format(account=mask_identifier(d.merchant_account))
        )
    if d.store_id:
        parts.append(_("store {store}").format(store=mask_identifier(d.store_id)))
    return _(", ").join(parts)


def _totals_notes(totals: TotalsResult) -> list[str]:
    """The open period per currency: transactions and net amount (GetTotals, nothing closed)."""
    counts: dict[str, int] = defaultdict(int)
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for entry in totals.totals:
        currency = entry.currency or "?"
        for payment in entry.payment_totals:
            counts[currency] += payment.count
            amounts[currency] += _SIGN.get(payment.transaction_type, 0) * payment.amount
    notes = []
    for currency in sorted(counts)[:16]:
        amount = format_money(amounts[currency], currency if currency != "?" else None)
        notes.append(
            ngettext(
                "open period: {count} transaction, net {amount} (read with GetTotals, not closed)",
                "open period: {count} transactions, net {amount} (read with GetTotals, not closed)",
                counts[currency],
            ).format(count=counts[currency], amount=amount)
        )
    if not counts:
        notes.append(_("open period: no transactions (read with GetTotals, not closed)"))
    return notes
