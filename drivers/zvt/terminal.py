"""The Terminal contract for ZVT terminals.

ZVT has no single "tell me everything" command, so the facts are gathered in one session, in an
order that disturbs the terminal least: Registration (routes printouts to us, allows TLV),
Status-Enquiry (identity, TID, state), Print System Configuration (firmware, hardware, battery,
network), Send Turnover Totals (unsettled money, without settling), Diagnosis (can it reach its
host), the vendor's system info where the catalogue says there is one, and Log-Off so the
terminal's menu is free again. Each probe then reads from those facts and says ``unsupported``
where ZVT exposes nothing, rather than guessing.

Each exchange is announced to whoever watches (:mod:`posdiag.drivers.activity`) in the words an
operator uses ("reading the system configuration printout"), and every sentence a record carries
is translated (:mod:`posdiag.drivers.i18n`); the English ``facts.errors`` keep the protocol's
own words for ``--debug`` and the JSON report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ..activity import announce
from ..catalogue import Catalogue, ModelEntry, load_catalogue
from ..errors import (
    DeadlineExceeded,
    PosdiagError,
    ResponseTooLarge,
    TransportError,
    UnsupportedError,
)
from ..i18n import N_, _, ngettext
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
from ..text import clean_text, cleaned
from .constants import (
    DEVICE_STATE,
    DEVICE_STATE_TAMPER,
    SERVICE_STATUS,
    UNPROVISIONED_STATUS,
    device_state_text,
    result_text,
    status_text,
)
from .driver import DiagnosisResult, ZvtDriver
from .errors import ZvtCommandError, ZvtPasswordError, ZvtTransmissionError
from .payloads import FeigSystemInfo, StatusReport, Totals
from .printout import PrintoutFacts, parse_printout

log = structlog.get_logger(__name__)

CURRENCIES = {
    978: "EUR",
    756: "CHF",
    752: "SEK",
    208: "DKK",
    826: "GBP",
    985: "PLN",
    156: "CNY",
}


@dataclass
class ZvtFacts:
    """What one ZVT session learned; probes are computed from it."""

    status: StatusReport | None = None
    printout: PrintoutFacts | None = None
    totals: Totals | None = None
    diagnosis: DiagnosisResult | None = None
    vendor_info: FeigSystemInfo | None = None
    entry: ModelEntry | None = None
    errors: list[str] = field(default_factory=list)


def _masked(tid: str) -> str:
    return "****" + tid[-4:] if len(tid) > 4 else "****"


def _real_tid(tid: str | None) -> str | None:
    """A TID that is set: terminals report an unset TID as all zeros."""
    if tid is None or not tid.strip("0 "):
        return None
    return tid


class ZvtTerminal:
    """A ZVT payment terminal behind a ZvtDriver.

    Args:
        driver: the protocol driver (its transport is opened on first use).
        address: the address string, for reports.
        catalogue: model entries (defaults to the shipped catalogue).
    """

    family = "zvt"

    def __init__(self, driver: ZvtDriver, address: str, catalogue: Catalogue | None = None) -> None:
        self.driver = driver
        self.address = address
        self.catalogue = catalogue or load_catalogue()
        self._facts: ZvtFacts | None = None
        self._opened = False
        self._scope = CheckScope()

    def set_scope(self, scope: CheckScope) -> None:
        """How much the next gathering asks (:class:`CheckScope`): every exchange is line time."""
        self._scope = scope

    # --- the session -----------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if not self._opened:
            announce(_("connecting to the terminal"))
            self.driver.open()
            self._opened = True

    def facts(self) -> ZvtFacts:
        """Gather the facts once per terminal object (a check is one session)."""
        if self._facts is None:
            self._facts = self._collect()
        return self._facts

    def refresh(self) -> ZvtFacts:
        """Forget gathered facts and read the terminal again (after a wipe step)."""
        self._facts = None
        return self.facts()

    def _collect(self) -> ZvtFacts:
        facts = ZvtFacts()
        self._ensure_open()
        # The first exchange decides reachability: link errors propagate to the caller.
        announce(_("logging in to the terminal"))
        self.driver.register()
        link_alive = True

        def step(name: str, what: str, action: object) -> object | None:
            """One exchange, announced as ``what``; its failure is noted in English as ``name``."""
            nonlocal link_alive
            if not link_alive:
                return None
            announce(what)
            try:
                return action()  # type: ignore[operator]
            except (ZvtPasswordError, DeadlineExceeded):
                raise  # no report can be trusted / the check's time is up: the caller decides
            except ZvtCommandError as exc:
                facts.errors.append(clean_text(f"{name}: {exc}"))
            except (TransportError, ZvtTransmissionError, ResponseTooLarge) as exc:
                # A capped answer left the PT talking and the driver dropped the line.
                facts.errors.append(clean_text(f"{name}: {exc}"))
                link_alive = False
            except PosdiagError as exc:
                facts.errors.append(clean_text(f"{name}: {exc}"))
            return None

        facts.status = step(  # type: ignore[assignment]
            "status enquiry", _("reading the terminal's status"), self.driver.status_enquiry
        )
        names = [facts.status.device_name] if facts.status else []
        entry = self.catalogue.by_name("zvt", *names)
        if entry.match_names:
            # The model's character set decodes its printout (detection may still overrule it).
            self.driver.set_charset(entry.charset)
        # The printout is most of a check's line time (kilobytes at 9600 baud): triage skips it.
        lines = (
            None
            if self._scope.quick
            else step(
                "print system configuration",
                _("reading the system configuration printout"),
                self.driver.print_system_configuration,
            )
        )
        if lines:
            label_set = entry.label_set if entry.match_names else None
            facts.printout = parse_printout(lines, vendor=label_set)  # type: ignore[arg-type]
            if not entry.match_names:
                entry = self.catalogue.by_name("zvt", facts.printout.hardware)
                if entry.match_names:
                    self.driver.set_charset(entry.charset)
        facts.entry = entry
        facts.totals = step(  # type: ignore[assignment]
            "turnover totals", _("reading unsettled totals"), self.driver.turnover_totals
        )
        # The terminal dials its host: seconds, sometimes a minute; its bytes keep the line moving.
        # Only when host reachability is read (the policy's rule, or a full check).
        if self._scope.host_dialup and not self._scope.quick:
            facts.diagnosis = step(  # type: ignore[assignment]
                "diagnosis", _("testing the connection to the payment host"), self.driver.diagnosis
            )
        if entry.vendor_extension == "feig" and not self._serial(facts):
            # Feig's system info repeats what Status Enquiry and the printout give; it is asked
            # only for the serial when neither gave one.
            facts.vendor_info = step(  # type: ignore[assignment]
                "vendor system info",
                _("reading the terminal's system information"),
                self.driver.feig_system_info,
            )
        step("log-off", _("logging off"), self.driver.log_off)
        log.info("zvt.collected", address=self.address, errors=len(facts.errors))
        return facts

    @staticmethod
    def _serial(facts: ZvtFacts) -> str | None:
        """The serial from the answers gathered so far, in order of trust."""
        return (
            (facts.status.serial if facts.status else None)
            or (facts.printout.serial if facts.printout else None)
            or (facts.vendor_info.serial if facts.vendor_info else None)
        )

    def close(self) -> None:
        """Release the line."""
        self.driver.close()
        self._opened = False

    def set_deadline(self, at: float | None) -> None:
        """After ``at`` (``time.monotonic()``) every exchange raises DeadlineExceeded."""
        self.driver.set_deadline(at)

    # --- probes ----------------------------------------------------------------------------------

    @cleaned
    def identify(self) -> Identity:
        """Vendor and model from the catalogue, serial from the terminal itself."""
        f = self.facts()
        entry = f.entry or self.catalogue.generic("zvt")
        serial = self._serial(f)
        device_name = f.status.device_name if f.status else None
        hardware = f.printout.hardware if f.printout else None
        model = entry.model if entry.match_names else (device_name or hardware or entry.model)
        return Identity(
            vendor=entry.vendor or None,
            model=model,
            serial=serial,
            hardware=hardware,
            device_name=device_name,
        )

    def _terminal_id(self) -> str | None:
        f = self.facts()
        return _real_tid(
            (f.status.terminal_id if f.status else None)
            or (f.printout.terminal_id if f.printout else None)
        )

    @cleaned
    def activation(self) -> Activation:
        """Activation from the TID, the device state (1F43) and the terminal status byte."""
        f = self.facts()
        if f.status is None and f.printout is None:
            return Activation(ActivationState.UNKNOWN, evidence=(Evidence("zvt", _("no status")),))
        evidence: list[Evidence] = []
        tid = self._terminal_id()
        if tid:
            evidence.append(
                Evidence("status enquiry", _("terminal ID {tid} assigned").format(tid=_masked(tid)))
            )
        else:
            evidence.append(Evidence("status enquiry", _("no terminal ID assigned")))
        status = f.status.terminal_status if f.status else None
        device_state = f.status.device_state if f.status else None
        if status is not None:
            evidence.append(Evidence("status enquiry", _status_fact(status)))
        if device_state is not None:
            evidence.append(
                Evidence(
                    "status enquiry",
                    _("device state: {state}").format(state=device_state_text(device_state)),
                )
            )
        keys = None if device_state is None else device_state == 0x00
        merchant = bool(f.printout and f.printout.merchant_lines)
        if merchant:
            evidence.append(Evidence("printout", _("merchant name/address configured")))
        host_registered = bool(f.printout and f.printout.host)
        if tid and keys and (status is None or status not in UNPROVISIONED_STATUS):
            state = ActivationState.ACTIVATED
        elif tid or merchant or host_registered:
            state = ActivationState.PARTIAL
        elif status is None and device_state is None:
            state = ActivationState.UNKNOWN
        else:
            state = ActivationState.NOT_ACTIVATED
        return Activation(
            state=state,
            terminal_id=tid,
            keys_loaded=keys,
            host_registered=host_registered,
            evidence=tuple(evidence),
            # the state's English name: a stable value beside the code for the JSON report
            device_state=DEVICE_STATE.get(device_state) if device_state is not None else None,
            status_code=status,
            status_text=status_text(status) if status is not None else None,
        )

    @cleaned
    def firmware(self) -> Firmware:
        """The ZVT application version and every component the printout lists."""
        f = self.facts()
        components: dict[str, str] = dict(f.printout.firmware) if f.printout else {}
        reported = f.status.device_sw_version or f.status.sw_version if f.status else None
        if reported and reported not in components.values():
            components = {"ZVT application": reported, **components}
        if not components:
            raise UnsupportedError(_("the terminal reported no software versions"))
        return Firmware(components)

    @cleaned
    def network(self) -> Network:
        """Host reachability from Diagnosis; interfaces, modem and TMS from the printout."""
        f = self.facts()
        p = f.printout
        interfaces = tuple(
            NetworkInterface(name=i.name, up=i.up, mac=i.mac, ip=i.ip, mode=i.mode)
            for i in (p.interfaces if p else ())
        )
        details: list[str] = []
        if f.diagnosis is not None:
            said = (
                _("host reached")
                if f.diagnosis.host_reachable
                else result_text(f.diagnosis.result_code or 0)
            )
            details.append(_("diagnosis: {result}").format(result=said))
        if p is None and f.diagnosis is None:
            raise UnsupportedError(_("neither a printout nor a diagnosis was available"))
        modem = None
        if p and p.modem is not None:
            modem = "none" if p.modem.strip().lower() in ("nein", "no", "none", "aus") else p.modem
        return Network(
            interfaces=interfaces,
            host_reachable=f.diagnosis.host_reachable if f.diagnosis else None,
            host=p.host if p else None,
            modem=modem,
            tms=p.tms_url if p else None,
            details=tuple(details),
        )

    @cleaned
    def battery(self) -> Battery:
        """Battery voltage where the vendor's printout shows it; ZVT has no battery command."""
        f = self.facts()
        if f.printout is None or f.printout.battery_voltage_mv is None:
            raise UnsupportedError(_("ZVT exposes no battery data for this terminal"))
        # The printout's temperature is the module's, not the battery's: it goes to health().
        return Battery(present=True, voltage_mv=f.printout.battery_voltage_mv)

    @cleaned
    def merchant_data(self) -> MerchantData:
        """Unsettled turnover (Send Turnover Totals) and merchant details still configured."""
        f = self.facts()
        pending = None
        if f.totals is not None:
            currency = CURRENCIES.get(self.driver.currency)
            pending = PendingTransactions(f.totals.count, f.totals.total_cents, currency)
        notes: list[str] = []
        if f.printout and f.printout.merchant_lines:
            count = len(f.printout.merchant_lines)
            notes.append(
                ngettext(
                    "merchant name/address printed ({count} line)",
                    "merchant name/address printed ({count} lines)",
                    count,
                ).format(count=count)
            )
        tid = self._terminal_id()
        if tid:
            notes.append(_("terminal ID {tid}").format(tid=_masked(tid)))
        if f.printout and f.printout.host:
            notes.append(_("payment host configured"))
        return MerchantData(pending_transactions=pending, notes=tuple(notes))

    @cleaned
    def tamper(self) -> Tamper:
        """Device state 03 (fraud) is the terminal's own tamper verdict."""
        f = self.facts()
        if f.status is None or f.status.device_state is None:
            raise UnsupportedError(_("the terminal did not report its device state"))
        if f.status.device_state == DEVICE_STATE_TAMPER:
            return Tamper(True, (_("security module reports fraud (device state 03)"),))
        return Tamper(False)

    @cleaned
    def health(self) -> Health:
        """Faults from the terminal status byte (printer, reader, clock…)."""
        f = self.facts()
        if f.status is None:
            raise UnsupportedError(_("no status enquiry answer"))
        code = f.status.terminal_status
        faults = (_status_fact(code),) if code in SERVICE_STATUS else ()
        temperature = f.printout.temperature_c if f.printout else None
        return Health(faults=faults, status=status_text(code), temperature_c=temperature)

    def wipe_plan(self) -> list[WipeStep]:
        """De-provisioning steps in the order PA00P015 allows (described; run by the wipe).

        Each step announces itself when it runs, numbered among the steps the wipe will run:
        settling counts only when the turnover store held transactions (the wipe skips it
        otherwise). Reads that check a step's effect announce what they read.
        """
        f = self.facts()
        entry = f.entry or self.catalogue.generic("zvt")

        def totals_empty() -> bool:
            totals = self.driver.turnover_totals()
            return totals is None or totals.count == 0

        def store_empty() -> bool:
            announce(_("reading unsettled totals"))
            return totals_empty()

        def tid_cleared() -> bool:
            announce(_("reading the terminal's status"))
            return _real_tid(self.driver.status_enquiry().terminal_id) is None

        def settle() -> None:
            if not totals_empty():  # part of the step: its announcement stays on screen
                self.driver.end_of_day()

        steps = [
            WipeStep(
                "settle",
                _(
                    "unsettled transactions, submitted to the host by End-of-Day "
                    "(only with consent)"
                ),
                settle,
                store_empty,
            ),
            WipeStep(
                "reset_terminal_id",
                _("the terminal ID binding the unit to the merchant"),
                lambda: self.driver.set_terminal_id(None),
                tid_cleared,
            ),
            WipeStep(
                "log_off",
                _("the cash register's registration with the terminal"),
                self.driver.log_off,
                lambda: True,
            ),
        ]
        if entry.factory_reset == "feig":
            steps.append(
                WipeStep(
                    "factory_reset",
                    _("merchant configuration and host parameters (factory reset)"),
                    self.driver.feig_factory_reset,
                    tid_cleared,
                    optional=True,
                )
            )
        settles = bool(f.totals and f.totals.count)
        counted = [s.name for s in steps if s.name != "settle" or settles]
        return [
            dataclasses.replace(
                step,
                run=announced(
                    _(STEP_WORDS[step.name]),
                    step.run,
                    counted.index(step.name) + 1 if step.name in counted else None,
                    len(counted),
                ),
            )
            for step in steps
        ]


STEP_WORDS = {
    "settle": N_("settling the day's transactions"),
    "reset_terminal_id": N_("removing the terminal ID"),
    "log_off": N_("logging off"),
    "factory_reset": N_("resetting the terminal to factory settings"),
}
"""What each wipe step is doing, as the operator watching it would say."""


def announced(
    what: str, run: Callable[[], None], position: int | None, total: int
) -> Callable[[], None]:
    """``run``, announcing ``what`` (as step ``position`` of ``total`` when it is counted) first."""

    def announced_run() -> None:
        if position is None:
            announce(what)
        else:
            announce(what, done=position, total=total, unit="steps")
        run()

    return announced_run


def _status_fact(code: int) -> str:
    """The terminal status byte as evidence and fault text: its code and what it means."""
    return _("terminal status {code}: {text}").format(code=f"{code:02X}", text=status_text(code))
