"""Section 2: checks and wipes of simulated terminals with faults picked at random.

Every session runs the agent's own API (``inspect_terminal`` for a check, ``WipeSession`` for a
wipe, with a throwaway SQLite ledger) through the real drivers against an in-process simulator
with zero simulated delay, and then judges the outcome against the **simulator's state**, never
against what posdiag says. A wipe that ends ``aborted`` is run again on a new link, as an
operator would, up to three attempts; every attempt is judged.

Defects:
    false erased: the outcome says ``erased``/``erased_with_exceptions`` but the simulator still
        holds merchant data that the result does not name as an exception (a TID, unsettled
        transactions, payment app data, saved networks, merchant files; for a plain ``erased``
        also the device owner, accounts, host and merchant configuration).
    false not_activated: a check reports ``not_activated`` while the simulator is bound to a
        merchant.
    hang: an attempt still running at the campaign's deadline + 5 s.
    traceback: an exception escaping the agent API.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from posdiag.agent.certificate import StationKey
from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.ledger import Ledger, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.wipe import Outcome, WipeOptions, WipeSession
from posdiag.drivers.model import ActivationState
from posdiag.simulators.adb.state import Faults as AdbFaults
from posdiag.simulators.zvt.state import Faults as ZvtFaults

from . import sims
from .common import Outputs, SectionResult, Settings

KEY = "sessions"
TITLE = "2 Faulted sessions"
COLUMNS = ("false erased", "false not_activated", "hang", "traceback")

DEADLINE_S = 30.0
"""The campaign's deadline for one attempt; past it + 5 s the attempt counts as a hang.

The short protocol timers (``sims.TIMERS``, ADB 2 s) make every fault end in seconds, so 30 s is
generous; when the agent gains its own per-session deadline this should become that value."""

ZVT_SCENARIOS = ("activated", "unsettled", "fresh", "tampered", "low-battery", "no-network")
ADB_SCENARIOS = ("activated", "unsettled", "fresh", "low-battery", "no-network", "no-sim")
ADB_MODELS = ("pax-a920", "pax-a920-android7", "sunmi-p2", "android-generic")
ZVT_COMMANDS = (
    "Set/Reset Terminal-ID",
    "End-of-Day",
    "Log-Off",
    "0FA10255",
    "Registration",
    "Status-Enquiry",
    "Send Turnover Totals",
    "Print System Configuration",
)
ADB_COMMANDS = ("pm clear", "cmd wifi forget-network", "rm", "dumpsys", "getprop", "ls", "cmd")
KNOWN_ZVT = {
    "corrupt_crc",
    "drop_ack",
    "split_writes",
    "stall_mid_frame",
    "ack_delay",
    "answer_delay",
    "garbage",
    "disconnect_after",
    "silent",
    "babble",
    "fail_command",
    "power_loss_at",
    "lie_about",
}
HOSTILE = {"hang", "flood_output", "hostile_text", "endless_status", "flood_print"}
"""Section 6's faults: each costs a deadline or a flood, so they are measured there, one by one."""
DELAYS = {
    # Below and above the short timers (T1 0.2 s, T2 0.5 s, T3 1 s; ADB 2 s): both must work.
    "stall_mid_frame": ("0.05", "0.3"),
    "ack_delay": ("0.05", "0.2", "0.7"),
    "answer_delay": ("0.3", "1.5"),
    "stall": ("0.01", "0.05", "2.5"),
}
KNOWN_ADB = {
    "bad_checksum",
    "split_packets",
    "drop_packets",
    "stall",
    "vanish_after",
    "fail_command",
    "power_loss_at",
    "lie_about",
}


def _fault_value(name: str, default: Any, commands: tuple[str, ...], rng: random.Random) -> str:
    """A value for a fault option, by the fault's kind (strings name a command)."""
    if name in ("fail_command", "power_loss_at", "lie_about"):
        return rng.choice(commands)
    if name == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))).hex()
    if name in ("corrupt_crc", "drop_ack", "bad_checksum", "drop_packets"):
        return str(rng.randint(1, 3))
    if name in ("disconnect_after", "vanish_after"):
        return str(rng.randint(0, 12))
    if name in DELAYS:
        return rng.choice(DELAYS[name])
    if isinstance(default, bool):
        return "1"
    if isinstance(default, int) and default is not None:
        return str(rng.randint(1, 50))
    if isinstance(default, float):
        return rng.choice(("0.1", "1"))
    return "1"


def pick_faults(family: str, rng: random.Random) -> dict[str, str]:
    """Zero to two faults of the family, among all its Faults fields (new ones included)."""
    cls = ZvtFaults if family == "zvt" else AdbFaults
    known = KNOWN_ZVT if family == "zvt" else KNOWN_ADB
    fields = {f.name: f for f in dataclasses.fields(cls)}
    # Hostile faults (floods, endless status, hostile text) belong to section 6; new fields not
    # named there are taken too, with a value from their type, so none is left untried.
    names = sorted(known & set(fields)) + sorted(set(fields) - known - HOSTILE)
    commands = ZVT_COMMANDS if family == "zvt" else ADB_COMMANDS
    chosen: dict[str, str] = {}
    for _ in range(rng.choice((0, 1, 1, 1, 2, 2))):
        name = rng.choice(names)
        default = getattr(cls(), name)
        chosen[name] = _fault_value(name, default, commands, rng)
    if family == "zvt" and "power_loss_at" not in chosen and rng.random() < 0.15:
        chosen["power_loss_at"] = rng.choice(ZVT_COMMANDS[:4])  # mid-wipe power loss
    if family == "adb" and "power_loss_at" not in chosen and rng.random() < 0.15:
        chosen["power_loss_at"] = rng.choice(ADB_COMMANDS[:3])
    return chosen


# --- the truth ----------------------------------------------------------------------------------


def _real_tid(tid: str | None) -> bool:
    return bool(tid and tid.strip("0 "))


def leftovers(sim: sims.SimTerminal) -> tuple[list[str], list[str]]:
    """What of the merchant the simulator still holds: (hard, soft) lists of names.

    Hard: never allowed after any ``erased*`` outcome unless named as an exception. Soft: what
    only the terminal management system can release; allowed with ``erased_with_exceptions``.
    """
    state = sim.state
    hard: list[str] = []
    soft: list[str] = []
    if sim.family == "zvt":
        if _real_tid(state.terminal_id):
            hard.append(f"terminal ID {state.terminal_id}")
        if state.transactions:
            hard.append(f"{len(state.transactions)} unsettled transactions")
        if state.merchant_lines:
            soft.append("merchant name/address")
        if state.host_operator:
            soft.append("host configuration")
        if state.keys_present:
            soft.append("payment keys")
        return hard, soft
    base = sims.android_baseline(sim.model)
    base_data = {app.package for app in base.apps if app.has_data}
    for app in state.apps:
        if app.has_data and app.package not in base_data:
            hard.append(app.package)
    for network in state.wifi.saved:
        hard.append(f"saved network {network.ssid}")
    for path in sorted(set(state.files) - set(base.files)):
        hard.append(path)
    if state.device_owner and not base.device_owner:
        soft.append("device owner")
    if state.accounts and not base.accounts:
        soft.append("accounts")
    return hard, soft


def activated(sim: sims.SimTerminal) -> bool:
    """Whether the simulator is bound to a merchant (its state, not posdiag's reading)."""
    state = sim.state
    if sim.family == "zvt":
        return _real_tid(state.terminal_id) or bool(state.merchant_lines or state.host_operator)
    base = sims.android_baseline(sim.model)
    base_data = {app.package for app in base.apps if app.has_data}
    merchant_apps = [
        a
        for a in state.apps
        if a.has_data
        and a.package not in base_data
        and a.package in (state.payment_package, state.mdm_package)
    ]
    return bool(merchant_apps or (state.device_owner and not base.device_owner))


def _undisclosed(
    items: list[str], exceptions: list[str], manager: str | None = None
) -> list[str]:
    """Leftovers the result does not name (a named one was disclosed as not erased).

    The terminal-management app (``manager``) keeps its own data while it owns the device; it
    is disclosed by an exception about the device owner or an unreadable device policy, which
    is all posdiag can know of it (its package name is the simulator's, not the catalogue's).
    """
    text = " ".join(exceptions)
    managed = "device owner" in text or "device policy" in text
    return [
        item
        for item in items
        if item.split()[-1] not in text and not (managed and item == manager)
    ]


# --- running ------------------------------------------------------------------------------------


class _Attempt(threading.Thread):
    """One check or wipe in a thread of its own, so a hang can be seen and left behind."""

    def __init__(self, work: Any) -> None:
        super().__init__(daemon=True, name="campaign-session")
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:
            self.error = exc


def _attempt(work: Any) -> tuple[Any, BaseException | None, bool]:
    thread = _Attempt(work)
    thread.start()
    thread.join(DEADLINE_S + 5)
    return thread.result, thread.error, thread.is_alive()


@dataclasses.dataclass(frozen=True)
class Plan:
    """One session, decided up front from the seed (so running them in parallel stays exact)."""

    index: int
    family: str
    mode: str
    scenario: str
    model: str
    faults: dict[str, str]
    password: str
    settle: bool
    confirmed_settled: bool


def plan(index: int, rng: random.Random) -> Plan:
    """Pick a terminal, faults and a mode."""
    family = rng.choice(("zvt", "adb"))
    mode = rng.choice(("check", "wipe", "wipe"))
    faults = pick_faults(family, rng)
    scenario = rng.choice(ZVT_SCENARIOS if family == "zvt" else ADB_SCENARIOS)
    model = "" if family == "zvt" else rng.choice(ADB_MODELS)
    password = f"{rng.randrange(1_000_000):06d}"
    return Plan(
        index,
        family,
        mode,
        scenario,
        model,
        faults,
        password,
        rng.random() < 0.7,
        rng.random() < 0.7,
    )


class _Tally:
    """The section's rows, shared by the worker threads."""

    def __init__(self, result: SectionResult) -> None:
        self.result = result
        self.lock = threading.Lock()
        self.outcomes: dict[str, Counter[str]] = {}

    def tried(self, label: str) -> None:
        with self.lock:
            self.result.row(label).tried += 1

    def defect(self, label: str, column: str, example: str) -> None:
        with self.lock:
            self.result.row(label).defect(column, example)

    def outcome(self, label: str, name: str) -> None:
        """Count how attempts ended, shown beside the row: proof the faults reached the work."""
        with self.lock:
            self.outcomes.setdefault(label, Counter())[name] += 1
            counts = self.outcomes[label]
            self.result.row(label).info = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def one_session(
    spec: Plan, tally: _Tally, key: StationKey, folder: Path, outputs: Outputs, keep: bool
) -> None:
    """Run one planned session and judge it against the simulator."""
    policy = load_policy()
    index, family, mode, faults = spec.index, spec.family, spec.mode, spec.faults
    if family == "zvt":
        sim = sims.zvt(spec.scenario, {"password": spec.password, **faults})
        outputs.secret(spec.password, sim.state.terminal_id)
    else:
        sim = sims.adb(spec.scenario, spec.model, faults)
    fault_text = ",".join(f"{k}={v}" for k, v in faults.items()) or "none"
    what = f"#{index} {sim.address} {mode} faults {fault_text}"
    label = f"{family} {mode}"
    tally.tried(label)

    class _Row:  # the row API, through the lock
        @staticmethod
        def defect(column: str, example: str) -> None:
            tally.defect(label, column, example)

    row = _Row()
    try:
        if mode == "check":
            report, error, hung = _attempt(
                lambda: inspect_terminal(sim.terminal(), policy, simulated=True)
            )
            if report is not None and report.verdict is not None:
                tally.outcome(label, report.verdict.status.value)
            if hung:
                row.defect("hang", what)
            elif error is not None:
                row.defect("traceback", f"{what}: {type(error).__name__}: {error}")
            elif (
                report.activation is not None
                and report.activation.state is ActivationState.NOT_ACTIVATED
                and activated(sim)
            ):
                row.defect("false not_activated", what)
            return
        db = folder / f"ledger-{index}.sqlite3"
        options = WipeOptions(
            operator="Campaign Operator",
            assume_yes=True,
            settle=spec.settle,
            confirmed_settled=spec.confirmed_settled,
            out_dir=folder / f"certificates-{index}",
        )
        with Ledger(sqlite_url(db)) as ledger:
            for attempt in range(3):
                session = WipeSession(
                    sim.terminal(), policy, options, ledger=ledger, key=key, simulated=True
                )
                wipe, error, hung = _attempt(session.run)
                name = f"{what} attempt {attempt + 1}"
                if hung:
                    row.defect("hang", name)
                    break
                if error is not None:
                    row.defect("traceback", f"{name}: {type(error).__name__}: {error}")
                    break
                tally.outcome(label, wipe.outcome.value)
                if wipe.outcome in (Outcome.ERASED, Outcome.ERASED_WITH_EXCEPTIONS):
                    hard, soft = leftovers(sim)
                    manager = getattr(sim.state, "mdm_package", None)
                    left = _undisclosed(hard, wipe.exceptions, manager)
                    if wipe.outcome is Outcome.ERASED:
                        left += soft
                    if left:
                        row.defect("false erased", f"{name}: {wipe.outcome.value} but holds {left}")
                if wipe.outcome is not Outcome.ABORTED:
                    break
        if keep:
            outputs.tree(folder)
    finally:
        sim.stop()


WORKERS = 4
"""Sessions run side by side: they mostly wait on timers, so 4 threads fit 2 cores."""


def run(settings: Settings, outputs: Outputs) -> SectionResult:
    """N faulted sessions (quick 48, full 1,000), both families, checks and wipes."""
    rng = settings.rng(KEY)
    result = SectionResult(KEY, TITLE, COLUMNS)
    for label in ("zvt check", "zvt wipe", "adb check", "adb wipe"):
        result.row(label)
    tally = _Tally(result)
    plans = [plan(index, rng) for index in range(settings.size(48, 1000))]
    key = StationKey.load_or_create(settings.workdir / "sessions-station-ed25519.pem")
    started = time.monotonic()

    def work(spec: Plan) -> None:
        with tempfile.TemporaryDirectory(dir=settings.workdir) as tmp:
            one_session(spec, tally, key, Path(tmp), outputs, keep=spec.index % 25 == 0)

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="campaign-sessions") as pool:
        for done in pool.map(work, plans):
            del done
    result.seconds = time.monotonic() - started
    return result
