"""A station's slots as everyone outside the station sees them: results, addresses, summaries.

The live table, the JSON lines, the summary and the manifest all read :class:`SlotResult`; what
they show must already be safe. So this module owns the two rules for it: addresses are shown
without their secrets (:func:`shown_address`), and every text a terminal said is cleaned of
control and escape sequences (:meth:`SlotResult.cleaned`). It also turns a run's slots into the
summary (one line per terminal, however often it was plugged in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from posdiag.drivers.address import SECRET_OPTIONS, parse_address
from posdiag.drivers.errors import AddressError
from posdiag.drivers.text import clean_text

__all__ = [
    "ACTION_STAGES",
    "CHECK_FAILURES",
    "FINAL_STAGES",
    "SUCCESS",
    "Mode",
    "SlotResult",
    "latest_per_terminal",
    "needs_action",
    "scrub",
    "secrets_of",
    "shown_address",
    "summarise",
]

Mode = Literal["check", "wipe"]
_STAGE_PROGRESS = {
    "queued": 0.0,
    "connecting": 0.05,
    "inspecting": 0.15,
    "awaiting_operator": 0.2,
    "verifying": 0.9,
}
SUCCESS = frozenset({"ready", "erased", "erased_with_exceptions"})
FINAL_STAGES = frozenset({"done", "failed", "unplugged"})
"""Stages a slot ends in: its worker is over."""
ACTION_STAGES = frozenset({"awaiting_operator"})
"""Stages in which a running slot waits for the person at the station."""
NOTHING_TO_DO = frozenset({"ready", "erased"})
"""Results that leave the person nothing to do (a check found a terminal ready to reuse, a
wipe erased it and certified it without exceptions)."""


_SECRET_IN_TEXT = re.compile(
    r"((?:" + "|".join(sorted(SECRET_OPTIONS)) + r")=)[^&\s'\"]*", re.IGNORECASE
)


def shown_address(address: str) -> str:
    """The address as the station shows and stores it: secrets (``password=``) removed.

    The station's table, JSON lines, summary, logs and ledger only ever see this form; the
    full address (with its password) is used for one thing, opening the terminal. An address
    that does not parse has its secret options masked textually, and is cleaned of control
    characters (it may come from a device list).
    """
    try:
        return clean_text(parse_address(address).display(), limit=512)
    except AddressError:
        return clean_text(_SECRET_IN_TEXT.sub(r"\1****", address), limit=512)


def secrets_of(address: str) -> tuple[str, ...]:
    """The secret option values in an address (to scrub them from error texts)."""
    try:
        options = parse_address(address).options
    except AddressError:
        return ()
    return tuple(v for k, v in options.items() if k in SECRET_OPTIONS and len(v) >= 4)


def scrub(text: str, secrets_: tuple[str, ...]) -> str:
    """Remove secret values from a text (an error can quote the address it failed on)."""
    for secret in secrets_:
        text = text.replace(secret, "****")
    return text


@dataclass(frozen=True)
class SlotResult:
    """One terminal's slot: as it goes (an update) and as it ended (a result)."""

    address: str
    family: str
    model: str | None = None
    serial: str | None = None
    stage: str = "queued"  # queued, connecting, inspecting, wiping, verifying, done, failed,
    # unplugged
    verdict_or_outcome: str | None = None
    reasons: tuple[str, ...] = ()
    certificate: str | None = None
    elapsed_s: float = 0.0
    steps_done: int = 0
    steps_total: int = 0
    already_erased: bool = False
    """Erased earlier in this batch (plugged out and back in, or a continued batch): recognised
    by family and serial, and not wiped or certified again."""

    @property
    def progress(self) -> float:
        """How far this terminal is, 0..1, from its stage and (wiping) its steps."""
        if self.stage in ("done", "failed", "unplugged"):
            return 1.0
        if self.stage == "wiping" and self.steps_total:
            return 0.3 + 0.6 * min(self.steps_done, self.steps_total) / self.steps_total
        return _STAGE_PROGRESS.get(self.stage, 0.0)

    @property
    def ok(self) -> bool:
        """The terminal ended ready, erased or erased with exceptions."""
        return self.verdict_or_outcome in SUCCESS

    def cleaned(self) -> SlotResult:
        """This slot with every text a terminal could have said made safe to show and store.

        Model, serial and reasons come from the device (or quote it): an escape sequence in a
        model name must never reach the operator's live table, a JSON line or the summary.
        """
        return replace(
            self,
            address=clean_text(self.address, limit=512),
            model=None if self.model is None else clean_text(self.model),
            serial=None if self.serial is None else clean_text(self.serial, limit=64),
            stage=clean_text(self.stage, limit=32),
            verdict_or_outcome=(
                None if self.verdict_or_outcome is None else clean_text(self.verdict_or_outcome)
            ),
            reasons=tuple(clean_text(r, limit=1024) for r in self.reasons),
            certificate=None if self.certificate is None else clean_text(self.certificate, 1024),
        )

    def to_json(self) -> dict[str, Any]:
        """A plain dictionary (for JSON lines and the summary)."""
        return {
            "address": self.address,
            "family": self.family,
            "model": self.model,
            "serial": self.serial,
            "stage": self.stage,
            "verdict_or_outcome": self.verdict_or_outcome,
            "reasons": list(self.reasons),
            "certificate": self.certificate,
            "elapsed_s": round(self.elapsed_s, 3),
            "progress": round(self.progress, 2),
            "steps": [self.steps_done, self.steps_total] if self.steps_total else None,
            "already_erased": self.already_erased,
        }


def _terminal_key(result: SlotResult) -> tuple[str, str]:
    if result.serial:
        return result.family, result.serial
    return "address", result.address


def latest_per_terminal(results: list[SlotResult]) -> list[SlotResult]:
    """One result per terminal (by family and serial, else address): its last one.

    A terminal pulled out half-way and plugged back in has two slots, an ``unplugged`` one and
    the one that finished it; the terminal's standing is the second.
    """
    latest: dict[tuple[str, str], SlotResult] = {}
    key_of_address: dict[str, tuple[str, str]] = {}
    for result in results:
        earlier = key_of_address.get(result.address)
        key = _terminal_key(result) if result.serial or earlier is None else earlier
        if earlier is not None and earlier != key:
            latest.pop(earlier, None)  # the same port, now identified
        latest.pop(key, None)
        latest[key] = result
        key_of_address[result.address] = key
    return list(latest.values())


CHECK_FAILURES = frozenset({"unreachable", "skipped", "aborted", None})


def needs_action(result: SlotResult) -> bool:
    """Whether a person has something to do about this terminal, now or once it is done.

    A slot waiting for the operator's answer needs action while it runs; a finished one needs
    it unless it ended ready (check) or erased without exceptions (wipe): a terminal that needs
    a wipe, service or quarantine, that could not be reached, was refused, or was erased with
    exceptions (release it in its TMS...) each asks something of the person at the station.
    A terminal found already erased in this batch needs nothing more.
    """
    if result.stage in ACTION_STAGES:
        return True
    if result.stage not in FINAL_STAGES:
        return False
    if result.already_erased and result.verdict_or_outcome in SUCCESS:
        return False
    return result.verdict_or_outcome not in NOTHING_TO_DO


def summarise(
    results: list[SlotResult],
    batch: str | None = None,
    mode: Mode = "wipe",
    operator: str | None = None,
) -> dict[str, Any]:
    """Counts per verdict/outcome and the failures with their reasons (and the batch id).

    Counted per terminal, by its last slot (see :func:`latest_per_terminal`); every slot is
    still listed under ``results``. A check station fails on terminals it could not check (a
    ``wipe_required`` verdict is a result, not a failure); a wipe station on every terminal
    not erased, since each needs the operator.
    """
    slots = results
    results = latest_per_terminal(results)

    def failed(result: SlotResult) -> bool:
        if mode == "check":
            return result.verdict_or_outcome in CHECK_FAILURES
        return not result.ok

    counts: dict[str, int] = {}
    for result in results:
        key = result.verdict_or_outcome or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return {
        "schema": "posdiag.station/1",
        "batch": batch,
        "terminals": len(results),
        "mode": mode,
        "operator": operator,
        "ok": not any(failed(r) for r in results),
        "counts": dict(sorted(counts.items())),
        "failures": [
            {
                "address": r.address,
                "verdict_or_outcome": r.verdict_or_outcome,
                "reasons": list(r.reasons),
            }
            for r in results
            if failed(r)
        ],
        "already_erased": [
            {"address": r.address, "serial": r.serial} for r in results if r.already_erased
        ],
        "slots": len(slots),
        "results": [r.to_json() for r in slots],
    }
