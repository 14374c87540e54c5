"""Section 7: faulted backends — lookups, releases and lost reports judged against the backend.

Each session picks a backend kind (PAXSTORE, Adyen, the example acquirer profile), a fault
(none, rate limiting, gateway errors, slow answers, garbage, a bad signature or clock skew, a
release that stays in progress) and an operation (lookup, release, report lost) on a unit in a
random state (bound, unbound, disabled, unknown), runs it through the stock connector over
loopback HTTP, and judges the result against the simulator's own state, not against what the
connector said:

* **false done** — a release or lost report confirmed (``done``/``already``) while the
  backend's state does not show it (a pending release counted as done is one);
* **wrong binding** — a lookup that answered, with a binding the backend's state contradicts;
* **traceback** — anything but a typed ``BackendError`` escaped;
* **overtime** — a call ran past its configured deadline plus 5 s;
* **secret** — a credential in an error message or a record.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace

from posdiag.drivers.backend.config import BackendConfig, parse_backends
from posdiag.drivers.backend.model import (
    BackendError,
    Binding,
    ChangeResult,
    ChangeStatus,
    TerminalKey,
)
from posdiag.drivers.backend.registry import open_backend
from posdiag.simulators.backend.catalog import create_backend_simulator
from posdiag.simulators.backend.server import BackendSimulator

from .common import Outputs, SectionResult, Settings

KEY = "backends"
TITLE = "7 Faulted backends"
COLUMNS = ("false done", "wrong binding", "traceback", "overtime", "secret")
KINDS = ("paxstore", "adyen", "generic")
STATES = ("bound", "unbound", "disabled")
OPERATIONS = ("lookup", "release", "lost")
FAULTS: dict[str, tuple[tuple[str, float], ...]] = {
    "common": (
        ("none", 0),
        ("rate_limit", 1),
        ("rate_limit", 2),
        ("server_error", 1),
        ("server_error", 2),
        ("slow", 0.2),
        ("garbage", 1),
        ("release_pending", 1),
        ("release_pending", 3),
    ),
    "paxstore": (("bad_signature", 1), ("skew", 900)),
    "adyen": (),
    "generic": (("bad_signature", 1),),
}
DEADLINE_S = 12.0
CREDENTIAL_SETTINGS = ("key", "secret", "api_key", "password", "private_key")
_TALLY: dict[str, Counter[str]] = {}
"""Per row: what the sessions ended with (a binding, a change status, a typed error)."""


def _expected(kind: str, state: str) -> set[Binding]:
    """The bindings a lookup may answer for a unit the simulator holds in ``state``."""
    if state == "pending":
        return {Binding.BOUND, Binding.UNBOUND}  # accepted, not applied: either view, never done
    if kind == "adyen" and state == "disabled":
        return {Binding.UNBOUND}  # Adyen has no disabled state: inventory
    return {Binding(state)}


def _confirmed_ok(kind: str, operation: str, change: ChangeResult, before: str, after: str) -> bool:
    """Whether a confirmed change is what the simulator's state shows.

    Released: unbound (a disabled unit may stay so). Lost: disabled — for Adyen, which has no
    lock, inventory (its ``disabled`` seed is shown as inventory too). ``already`` (nothing
    sent) is right when the unit was in that state before; a PAXSTORE unit never activated
    (status P) cannot be disabled there and no merchant can use it, so it is already lost.
    """
    if after == "pending":
        return False  # accepted but not applied must never be reported as done
    if operation == "release":
        return after == "unbound" or (after == "disabled" and before == "disabled")
    lost = {"unbound", "disabled"} if kind == "adyen" else {"disabled"}
    if change.status is ChangeStatus.ALREADY:
        already = lost | ({"unbound"} if kind == "paxstore" else set())
        return before in already and after == before
    return after in lost


def _section_config(sim: BackendSimulator, kind: str) -> tuple[BackendConfig, list[str]]:
    """The connector's configuration (short deadline, no rate limit) and its credential values."""
    (config,) = parse_backends(sim.backends_toml(kind))
    settings = config.settings
    secrets = [str(settings[k]) for k in CREDENTIAL_SETTINGS if len(str(settings.get(k, ""))) > 6]
    return replace(config, deadline=DEADLINE_S, timeout=4.0, rate=1000.0), secrets


def _one(settings: Settings, rng: random.Random, result: SectionResult, outputs: Outputs) -> None:
    kind = rng.choice(KINDS)
    fault, value = rng.choice(FAULTS["common"] + FAULTS[kind])
    operation = rng.choice(OPERATIONS)
    state = rng.choice((*STATES, "unknown"))
    serial = f"CMP{rng.randrange(10**8):08d}"
    seeds = () if state == "unknown" else (f"{serial}={state}",)
    faults = {} if fault == "none" else {fault: str(value)}
    row = result.row(f"{kind} {operation}")
    row.tried += 1
    sim = create_backend_simulator(kind, seeds or ("CMP00000000=bound",), faults)
    with sim:
        config, secrets = _section_config(sim, kind)
        outputs.secret(*secrets)
        backend = open_backend(config)
        where = f"{kind} {operation} {state} fault {fault}={value}"
        key = TerminalKey(serial=serial)
        started = time.monotonic()
        try:
            before = sim.terminals[serial].state if serial in sim.terminals else "unknown"
            if operation == "lookup":
                record = backend.lookup(key)
                after = sim.terminals[serial].state if serial in sim.terminals else "unknown"
                expected = {Binding.UNKNOWN} if after == "unknown" else _expected(kind, after)
                if record.binding not in expected:
                    row.defect("wrong binding", f"{where}: {record.binding} for {after}")
                text = repr(record)
                seen = record.binding.value
            else:
                change = (
                    backend.release(key)
                    if operation == "release"
                    else backend.report_lost(key, "campaign")
                )
                after = sim.terminals[serial].state if serial in sim.terminals else "unknown"
                if change.confirmed and not _confirmed_ok(kind, operation, change, before, after):
                    row.defect(
                        "false done", f"{where}: {change.status} but the backend holds {after}"
                    )
                text = repr(change)
                seen = change.status.value
        except BackendError as exc:
            text = str(exc)
            seen = type(exc).__name__.removeprefix("Backend").lower()
        except Exception as exc:  # the defect this column counts
            row.defect("traceback", f"{where}: {type(exc).__name__}: {exc}")
            text = str(exc)
            seen = "traceback"
        finally:
            backend.close()
        took = time.monotonic() - started
        if took > DEADLINE_S + 5:
            row.defect("overtime", f"{where}: {took:.1f} s")
        for secret in secrets:
            if secret in text:
                row.defect("secret", f"{where}: a credential in {text[:80]!r}")
        outputs.text(f"backend {where}", text)
        tally = _TALLY.setdefault(row.label, Counter())
        tally[seen] += 1
        row.info = ", ".join(f"{name} {count}" for name, count in sorted(tally.items()))


def run(settings: Settings, outputs: Outputs) -> SectionResult:
    """``size`` faulted sessions over the three backend kinds."""
    _TALLY.clear()
    result = SectionResult(KEY, TITLE, COLUMNS)
    rng = settings.rng(KEY)
    for _ in range(settings.size(24, 300)):
        _one(settings, rng, result, outputs)
    return result
