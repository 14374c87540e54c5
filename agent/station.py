"""The depot station: many terminals checked (or wiped) at once, each in its own worker.

One worker per terminal address, never two on the same address (nor two wipes on the same
family+serial: one terminal can show up under two addresses); at most ``max_parallel`` at once.
Each terminal has a deadline, passed down to the check and the wipe so the terminal itself
stops answering at it (the wipe journals and stays resumable); as a backstop, a worker still
running shortly after it is reported ``unreachable`` (check) or ``aborted`` (wipe) with the
reason "the terminal did not finish in time", its terminal is closed from the supervising
thread so blocked I/O returns, and the station moves on. An exception in one worker
becomes that terminal's result and never touches another. Every worker opens its own ledger
connection; the wipe session journals each step as it happens, so a stop (Ctrl-C, SIGTERM,
unplug, deadline) leaves a resumable run, never a half-written one.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from posdiag.drivers.address import parse_address
from posdiag.drivers.found import Found
from posdiag.drivers.i18n import _
from posdiag.drivers.model import Terminal

from .connect import open_terminal
from .discovery import discover
from .fleet import fleet_serial, simulated_fleet
from .inspect import deadline_text, inspect_terminal
from .ledger import Ledger
from .policy import Policy
from .report import DeviceReport, record_report
from .slots import (
    CHECK_FAILURES,
    SUCCESS,
    Mode,
    SlotResult,
    latest_per_terminal,
    scrub,
    secrets_of,
    shown_address,
    summarise,
)
from .station_batch import previous_runs
from .station_settle import (
    CONFIRMED,
    PROMPT_TIMEOUT_S,
    Asker,
    SettlementQuestion,
    Word,
    needs_operator_word,
    operator_word,
    station_hint,
)
from .wipe import (
    WipeInterrupted,
    WipeOptions,
    WipeProgress,
    WipeSession,
)

# Re-exported: callers import the station's results, the summary and the simulated fleet here.
__all__ = [
    "CHECK_FAILURES",
    "DEFAULT_BUSY_TIMEOUT_S",
    "SUCCESS",
    "Mode",
    "SlotResult",
    "Station",
    "fleet_serial",
    "latest_per_terminal",
    "new_batch_id",
    "shown_address",
    "simulated_fleet",
    "summarise",
]

log = structlog.get_logger(__name__)

DEFAULT_BUSY_TIMEOUT_S = 30.0
SUPERVISOR_GRACE_S = 2.0
"""How long after its deadline a worker is given up from outside: the terminal's own deadline
(set by the check or wipe) ends it cleanly first; this only catches a worker stuck elsewhere."""


def new_batch_id() -> str:
    """A batch id for one station run: UTC start time plus 4 random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


OnEvent = Callable[[SlotResult], None]
Opener = Callable[..., Terminal]


@dataclass
class _Slot:
    """The supervisor's mutable view of one worker (guarded by the station's lock)."""

    address: str
    """The address as shown and stored (no secrets); see :func:`shown_address`."""
    state: SlotResult
    open_address: str = ""
    """The address as given, secrets included: used only to open the terminal."""
    started: float | None = None
    terminal: Terminal | None = None
    final: SlotResult | None = None
    serial_lock: threading.Lock | None = None
    done_earlier: dict[str, Any] | None = None
    """The batch's earlier (successful) wipe of this terminal, when continuing a batch."""
    settlement: Word | None = None
    """How the operator's word on an unreadable settlement was given (None: not needed)."""


class Station:
    """A pool of workers, one per terminal address.

    Args:
        mode: ``check`` (inspect and record) or ``wipe`` (inspect, wipe per policy, certify).
        policy: thresholds for verdicts and wipe guards.
        operator: who runs the station (required for wipes; on every certificate).
        settle: the operator's consent to settle unsettled money before wiping.
        assume_yes: unattended; wipes are not confirmed one by one (required for wipes).
        out_dir: certificate folder (the data folder's when None).
        ledger_url: ledger database URL (the default SQLite file when None).
        max_parallel: workers at once.
        deadline_s: seconds one terminal may take before it is given up.
        on_event: called with a :class:`SlotResult` on every stage change (any thread).
        password: ZVT password override.
        opener: builds a Terminal from an address (tests replace it).
        batch: continue this batch (after a crash or a stop) instead of starting a new one:
            terminals erased in it already are not wiped again, interrupted wipes resume.
        vouched: serials whose settlement the operator vouches for (``--vouch``): a terminal
            whose open batch cannot be read is wiped when listed (``--confirmed-settled``).
        ask_settled: asks the operator about such a terminal not listed (one at a time); None:
            unattended, the terminal is refused.
        prompt_timeout_s: how long one question waits; no answer is "no".
        organisation: the depot performing the wipes (on every certificate).
        logo: the depot's logo on the PDF certificates (station settings).
        location: where the station stands (on every certificate).
        scope: how much each check asks (see :attr:`scope`).
        processes: worker processes (see :attr:`processes`).
    """

    def __init__(
        self,
        mode: Mode,
        policy: Policy,
        *,
        operator: str | None = None,
        settle: bool = False,
        assume_yes: bool = False,
        out_dir: Path | None = None,
        ledger_url: str | None = None,
        max_parallel: int = 4,
        deadline_s: float = 300.0,
        on_event: OnEvent | None = None,
        password: str | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
        opener: Opener = open_terminal,
        batch: str | None = None,
        backends: Any = None,
        release: bool = False,
        vouched: Iterable[str] = (),
        ask_settled: Asker | None = None,
        prompt_timeout_s: float = PROMPT_TIMEOUT_S,
        organisation: str | None = None,
        location: str | None = None,
        logo: Path | None = None,
        scope: Any = None,
        processes: int | None = None,
        simulated: bool = False,
    ) -> None:
        if mode not in ("check", "wipe"):
            raise ValueError(f"mode must be check or wipe, not {mode!r}")
        if mode == "wipe" and not (operator and assume_yes):
            raise ValueError("a wipe station needs an operator and assume_yes (unattended)")
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        self.mode: Mode = mode
        self.policy = policy
        self.operator = operator
        self.settle = settle
        self.assume_yes = assume_yes
        self.out_dir = out_dir
        self.ledger_url = ledger_url
        self.max_parallel = max_parallel
        self.deadline_s = deadline_s
        self.on_event = on_event
        self.password = password
        self.busy_timeout = busy_timeout
        self.opener = opener
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._serials: dict[tuple[str, str], threading.Lock] = {}
        self._slots: list[_Slot] = []
        self._key: Any = None
        self._prepared = False
        self.batch: str | None = None
        """The batch id of the current (or last) run()/watch(); stored with every wipe run."""
        self.continued_batch = batch
        self._done_in_batch: dict[tuple[str, str], dict[str, Any]] = {}
        self._wake = threading.Event()
        self.backends = backends
        """Configured TMS/acquirer backends (``posdiag.agent.backends.Backends``): every
        terminal's report is merged with what they say; their limiter (per backend, shared by
        the workers) keeps the station within each backend's rate limit. Nothing is cached:
        each terminal is looked up when it is checked."""
        self.release = release
        self.vouched = frozenset(vouched)
        self.ask_settled = ask_settled
        self.prompt_timeout_s = prompt_timeout_s
        self.organisation = organisation
        self.location = location
        self.logo = logo
        self.scope = scope
        """How much a check asks (``posdiag.drivers.model.CheckScope``; None: what the policy
        reads). A quick scope sorts a pile by binding and unsettled money (check mode)."""
        self.processes = processes
        """Worker processes for :meth:`run` (None: as many as the terminals need, see
        ``station_shards.process_count``; 1: this process only)."""
        self.simulated = simulated
        """Every terminal is a simulator (a simulated fleet), whatever its address: a simulated
        nexo unit's address is a real ``nexo+https://`` one, yet its records are flagged."""
        self.assigned_batch: str | None = None
        """The id a new batch takes (a station run by another process's shard), else a new one."""
        self._ask_lock = threading.Lock()

    # --- public -----------------------------------------------------------------------------

    def run(self, addresses: Iterable[str]) -> list[SlotResult]:
        """Work every address once (duplicates once) and return the results in order.

        Past what one process serves, the addresses are worked by several worker processes
        (``station_shards``); the results and every update come back here all the same.
        """
        self.batch = self.continued_batch or self.assigned_batch or new_batch_id()
        self._prepare()
        self._announce_unfinished()
        unique = list(dict.fromkeys(addresses))
        from . import station_shards

        processes = self.processes
        if processes is None:
            processes = station_shards.process_count(min(len(unique), self.max_parallel), self.mode)
        if processes > 1 and station_shards.shardable(self, unique):
            return station_shards.run_in_processes(self, unique, self.batch, processes)
        slots: list[_Slot] = []
        with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="station") as pool:
            for address in unique:
                slot = self._submit(pool, address)
                if slot is not None:
                    slots.append(slot)
            while not all(s.final is not None for s in slots):
                self._supervise()
                time.sleep(0.02)
            pool.shutdown(wait=False, cancel_futures=True)
        return [s.final for s in slots if s.final is not None]

    def notify_change(self) -> None:
        """Something was plugged or unplugged: re-enumerate now instead of at the next poll."""
        self._wake.set()

    def watch(
        self,
        poll_s: float = 1.0,
        stop_event: threading.Event | None = None,
        discover_fn: Callable[[], list[Found]] = discover,
        until: Callable[[], bool] | None = None,
    ) -> list[SlotResult]:
        """Work terminals as they appear until ``stop_event`` is set; every slot's result.

        A terminal is worked once per plugging-in: it is worked again only after it
        disappeared and came back. One that disappears while its worker runs ends
        ``unplugged`` (its wipe stays open in the ledger and resumes when it is back).
        Discovery runs every ``poll_s`` seconds and at once after :meth:`notify_change`
        (hotplug events). With ``until``, the watch also ends once every worker is done and
        ``until()`` is true (a simulated fleet whose plug schedule has run out).
        """
        if stop_event is not None:
            self.stop_event = stop_event
        self.batch = self.continued_batch or self.assigned_batch or new_batch_id()
        self._prepare()
        self._announce_unfinished()
        handled: set[str] = set()
        by_address: dict[str, _Slot] = {}
        pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="station")
        try:
            while not self.stop_event.is_set():
                # asked before discovering: a plug that made until() true is then seen below
                finished = until is not None and until()
                try:
                    present = {found.address for found in discover_fn()}
                except Exception as exc:  # a flaky bus must not stop the station
                    log.warning("station.discovery_failed", error=str(exc))
                    present = handled
                for address in sorted(handled - present):
                    handled.discard(address)
                    slot = by_address.get(address)
                    if slot is not None and slot.final is None:
                        self._give_up(slot, "unplugged", _("the terminal was unplugged"))
                for address in sorted(present - handled):
                    slot = self._submit(pool, address)
                    if slot is not None:
                        handled.add(address)
                        by_address[address] = slot
                self._supervise()
                with self._lock:
                    idle = all(slot.final is not None for slot in self._slots)
                if finished and idle:
                    break
                self._sleep(poll_s)
            # Stopping: queued workers skip, running ones end after their current step.
            while not all(s.final is not None for s in self._slots):
                self._supervise()
                time.sleep(0.02)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return [s.final for s in self._slots if s.final is not None]

    # --- supervision ------------------------------------------------------------------------

    def _sleep(self, poll_s: float) -> None:
        """Wait for the next poll, a hotplug notification or a stop; supervise meanwhile."""
        deadline = time.monotonic() + poll_s
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._wake.wait(min(left, 0.1)):
                self._wake.clear()
                return
            self._supervise()

    def _announce_unfinished(self) -> None:
        """Say which wipes a previous run left open; when continuing a batch, load what it erased.

        A new batch starts with none (the terminals this run erases are added as they finish).
        """
        with self._lock:
            self._done_in_batch = {}
        if self.mode != "wipe":
            return
        done = previous_runs(
            self.ledger_url,
            self.busy_timeout,
            self.continued_batch,
            self._key,
            self.out_dir,
            self.logo,
        )
        with self._lock:
            self._done_in_batch = done

    def _prepare(self) -> None:
        """Create the ledger schema and the station key once, before any worker races for them."""
        if self._prepared:
            return
        from .station_shards import raise_open_file_limit

        raise_open_file_limit(self.max_parallel)
        Ledger(self.ledger_url, busy_timeout=self.busy_timeout).close()
        if self.mode == "wipe":
            from .certificate import StationKey

            self._key = StationKey.load_or_create()
        self._prepared = True

    def _submit(self, pool: ThreadPoolExecutor, address: str) -> _Slot | None:
        shown = shown_address(address)
        with self._lock:
            if shown in self._active:
                return None  # one worker per address
            self._active.add(shown)
            family = shown.split("+", 1)[0] if "+" in shown else "zvt"
            slot = _Slot(shown, SlotResult(shown, family), open_address=address)
            self._slots.append(slot)
        self._emit(slot.state)
        pool.submit(self._work, slot)
        return slot

    def _supervise(self) -> None:
        now = time.monotonic()
        for slot in list(self._slots):
            limit = self.deadline_s + SUPERVISOR_GRACE_S
            late = slot.started is not None and now - slot.started > limit
            if slot.final is None and late:
                self._give_up(slot, "failed", deadline_text(self.deadline_s))

    def _give_up(self, slot: _Slot, stage: str, reason: str) -> None:
        """End a slot from the supervisor and close its terminal so its worker's I/O returns."""
        verdict = "aborted" if self.mode == "wipe" else "unreachable"
        elapsed = time.monotonic() - slot.started if slot.started is not None else 0.0
        self._finalise(
            slot,
            replace(
                slot.state,
                stage=stage,
                verdict_or_outcome=verdict,
                reasons=(reason,),
                elapsed_s=elapsed,
            ),
        )
        terminal = slot.terminal
        if terminal is not None:
            try:
                terminal.close()
            except Exception as exc:  # closing a broken line may fail; the slot is over anyway
                log.debug("station.close_failed", address=slot.address, error=str(exc))

    def _finalise(self, slot: _Slot, result: SlotResult) -> bool:
        result = replace(
            result, reasons=tuple(scrub(r, secrets_of(slot.open_address)) for r in result.reasons)
        ).cleaned()
        with self._lock:
            if slot.final is not None:
                return False
            slot.final = result
            slot.state = result
        self._emit(result)
        self._wake.set()  # a watch waiting for its last worker ends now, not at the next poll
        return True

    def _emit(self, update: SlotResult) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(update.cleaned())
        except Exception as exc:  # a broken display must not break the station
            log.warning("station.event_failed", error=str(exc))

    def _stage(self, slot: _Slot, stage: str) -> None:
        with self._lock:
            if slot.final is not None:
                return
            elapsed = time.monotonic() - slot.started if slot.started is not None else 0.0
            slot.state = replace(slot.state, stage=stage, elapsed_s=elapsed)
            update = slot.state
        self._emit(update)

    def _identified(self, slot: _Slot, report: DeviceReport) -> None:
        ident = report.identity
        if ident is None:
            return
        model = " ".join(p for p in (ident.vendor, ident.model) if p) or None
        with self._lock:
            slot.state = replace(slot.state, family=report.family, model=model, serial=ident.serial)

    def _lock_serial(self, slot: _Slot, report: DeviceReport) -> None:
        """Wait until no other worker wipes a terminal with this family and serial."""
        ident = report.identity
        assert ident is not None
        key = (report.family, ident.serial or "unknown")
        with self._lock:
            lock = self._serials.setdefault(key, threading.Lock())
        while not lock.acquire(timeout=0.1):
            if slot.final is not None or self.stop_event.is_set():
                raise WipeInterrupted(_("stopped while another worker wiped this terminal"))
        slot.serial_lock = lock

    def _settlement_word(
        self, slot: _Slot, report: DeviceReport, options: WipeOptions, ledger: Ledger
    ) -> None:
        """Take the operator's word where the wipe needs it, and record it in the ledger.

        Called when the terminal is identified, before the wipe's guards run: a "yes" (or a
        vouched serial) sets ``options.confirmed_settled`` for this terminal's session, as
        ``posdiag wipe --confirmed-settled`` does for one.
        """
        ident = report.identity
        if (
            ident is None
            or not ident.serial
            or not needs_operator_word(report, options, self.policy)
        ):
            return
        with self._lock:
            state = slot.state
        started = slot.started if slot.started is not None else time.monotonic()
        left = self.deadline_s - (time.monotonic() - started) - SUPERVISOR_GRACE_S
        question = SettlementQuestion(
            slot.address,
            report.family,
            state.model,
            state.serial or ident.serial,
            max(1.0, min(self.prompt_timeout_s, left)),
        )
        word = operator_word(
            question,
            vouched=self.vouched,
            ask=self.ask_settled,
            ask_lock=self._ask_lock,
            cancelled=lambda: self.stop_event.is_set() or slot.final is not None,
            on_waiting=lambda: self._stage(slot, "awaiting_operator"),
            on_answered=lambda _word: self._stage(slot, "inspecting"),
        )
        slot.settlement = word
        options.confirmed_settled = word in CONFIRMED
        ledger.audit(
            "station.settlement_confirmed" if word in CONFIRMED else "station.settlement_refused",
            address=slot.address,
            family=report.family,
            serial=ident.serial,
            operator=self.operator,
            batch=self.batch,
            word=word,
        )

    def _wipe_progress(
        self,
        slot: _Slot,
        progress: WipeProgress,
        options: WipeOptions | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        """Follow a wipe for the live view; stop it between steps when the station stops."""
        if progress.stage == "identified" and progress.report is not None:
            self._identified(slot, progress.report)
            if slot.serial_lock is None:
                self._lock_serial(slot, progress.report)
            ident = progress.report.identity
            key = (progress.report.family, ident.serial or "") if ident else ("", "")
            with self._lock:
                earlier = self._done_in_batch.get(key) if key[1] else None
            if earlier is not None:
                slot.done_earlier = earlier
                raise WipeInterrupted(
                    _("already erased in this batch ({batch})").format(batch=self.batch)
                )
            if options is not None and ledger is not None:
                self._settlement_word(slot, progress.report, options, ledger)
            return
        if progress.stage == "finished":
            return
        if progress.step is not None and (self.stop_event.is_set() or slot.final is not None):
            raise WipeInterrupted(
                _("the station stopped before step {step}").format(step=progress.step)
            )
        with self._lock:
            if slot.final is not None:
                return
            before = slot.state
            if (before.stage, before.steps_done, before.steps_total) == (
                progress.stage,
                progress.done,
                progress.total,
            ):
                return  # nothing a viewer would see changed
            elapsed = time.monotonic() - slot.started if slot.started is not None else 0.0
            slot.state = replace(
                before,
                stage=progress.stage,
                steps_done=progress.done,
                steps_total=progress.total,
                elapsed_s=elapsed,
            )
            update = slot.state
        self._emit(update)

    # --- the worker -------------------------------------------------------------------------

    def _work(self, slot: _Slot) -> None:
        slot.started = time.monotonic()
        try:
            if self.stop_event.is_set():
                result = replace(
                    slot.state,
                    stage="failed",
                    verdict_or_outcome="skipped",
                    reasons=(_("the station stopped before this terminal's turn"),),
                )
            else:
                result = self._process(slot)
        except Exception as exc:  # isolated: this terminal's error, nobody else's
            error = scrub(repr(exc), secrets_of(slot.open_address))
            log.warning("station.worker_failed", address=slot.address, error=error)
            result = replace(
                slot.state,
                stage="failed",
                verdict_or_outcome="aborted" if self.mode == "wipe" else "unreachable",
                reasons=(scrub(f"{type(exc).__name__}: {exc}", secrets_of(slot.open_address)),),
            )
        finally:
            if slot.serial_lock is not None:
                slot.serial_lock.release()
            with self._lock:
                self._active.discard(slot.address)
        self._finalise(slot, replace(result, elapsed_s=time.monotonic() - slot.started))

    def _process(self, slot: _Slot) -> SlotResult:
        self._stage(slot, "connecting")
        address = parse_address(slot.open_address or slot.address)
        terminal = self.opener(address, password=self.password)
        slot.terminal = terminal
        simulated = self.simulated or address.link == "sim"
        if self.mode == "check":
            try:
                self._stage(slot, "inspecting")
                report = inspect_terminal(
                    terminal,
                    self.policy,
                    simulated=simulated,
                    deadline_s=self.deadline_s,
                    scope=self.scope,
                )
            finally:
                terminal.close()
            if self.backends:
                self.backends.enrich(report, self.policy)
            self._identified(slot, report)
            if report.identity is not None:
                with Ledger(self.ledger_url, busy_timeout=self.busy_timeout) as ledger:
                    record_report(ledger, report, self.operator)
            status = report.verdict.status.value
            return replace(
                slot.state,
                stage="failed" if status == "unreachable" else "done",
                verdict_or_outcome=status,
                reasons=tuple(report.verdict.reasons),
            )
        options = WipeOptions(
            operator=self.operator or "",
            organisation=self.organisation,
            location=self.location,
            logo=self.logo,
            settle=self.settle,
            assume_yes=self.assume_yes,
            out_dir=self.out_dir,
            batch=self.batch,
            deadline_s=self.deadline_s,
            release=self.release,
        )
        self._stage(slot, "inspecting")
        with Ledger(self.ledger_url, busy_timeout=self.busy_timeout) as ledger:
            session = WipeSession(
                terminal,
                self.policy,
                options,
                ledger=ledger,
                key=self._key,
                simulated=simulated,
                on_progress=lambda progress: self._wipe_progress(slot, progress, options, ledger),
                backends=self.backends,
            )
            result = session.run()
        if slot.done_earlier is not None:
            earlier = slot.done_earlier
            return replace(
                slot.state,
                stage="done",
                verdict_or_outcome=earlier["outcome"],
                reasons=(
                    _("already erased in this batch ({batch}); not wiped again").format(
                        batch=self.batch
                    ),
                ),
                certificate=earlier.get("certificate_path"),
                already_erased=True,
            )
        outcome = result.outcome.value
        before = result.before
        ident = before.identity if before is not None else None
        if outcome in ("erased", "erased_with_exceptions") and before and ident and ident.serial:
            # Plugged out and back in later in this batch, it is recognised by its serial and
            # not wiped (nor certified) a second time.
            with self._lock:
                self._done_in_batch[(before.family, ident.serial)] = {
                    "outcome": outcome,
                    "certificate_path": str(result.certificate) if result.certificate else None,
                }
        failed = outcome == "aborted" or (result.before is not None and not result.before.identity)
        reasons = result.reasons + result.exceptions
        if outcome == "refused" and slot.settlement is not None and not options.confirmed_settled:
            reasons.append(station_hint(slot.settlement))
        return replace(
            slot.state,
            stage="failed" if failed else "done",
            verdict_or_outcome=outcome,
            reasons=tuple(reasons),
            certificate=str(result.certificate) if result.certificate else None,
        )
