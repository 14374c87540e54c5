"""The operator's word on settlement, at the station: a vouched list of serials or a prompt.

``posdiag wipe --confirmed-settled`` lets the operator vouch for a terminal whose open batch
posdiag cannot read (an Android terminal whose payment app keeps its store private): without
that word the wipe is refused, since unsettled payments would be lost with the merchant's data.
A station wipes many terminals at once, so the word is given per terminal, by serial: listed
in a ``--vouch`` file (serials scanned from the units' labels once they were settled), or
answered at a prompt naming the serial when the station runs on an interactive terminal
without ``--yes``. Prompts come one at a time (the live table pauses for each) and an
unanswered one ends in "no", so an operator who walked away never stands for a settlement.

The decision whether to ask at all reuses the wipe's own rules (:func:`guard_reasons`): the
word is asked only when it is the one thing between the terminal and its wipe (a tampered or
flat unit is refused anyway, so nobody is bothered about it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from posdiag.drivers.i18n import _
from posdiag.drivers.text import clean_text

from .policy import Policy
from .report import DeviceReport
from .wipe_rules import guard_reasons
from .wipe_types import WipeOptions

__all__ = [
    "CONFIRMED",
    "MAX_VOUCH_FILE",
    "PROMPT_TIMEOUT_S",
    "Asker",
    "SettlementQuestion",
    "Word",
    "is_yes",
    "needs_operator_word",
    "operator_word",
    "read_vouch_file",
    "station_hint",
]

PROMPT_TIMEOUT_S = 120.0
"""How long one settlement question waits for its answer; silence is "no"."""
MAX_VOUCH_FILE = 1024 * 1024
"""A vouch list is serials one per line: a megabyte is tens of thousands of units."""
YES_WORDS = frozenset({"y", "yes", "是", "是的", "对", "已结算"})

Word = Literal["vouch_list", "operator", "declined", "no_answer", "unattended"]
"""How the question ended: vouched by the list, answered yes, answered no, not answered in
time (or the station stopped), or not asked (unattended, ``--yes``)."""
CONFIRMED: frozenset[str] = frozenset({"vouch_list", "operator"})


@dataclass(frozen=True)
class SettlementQuestion:
    """One terminal the operator is asked about (texts already cleaned: they are shown)."""

    address: str
    family: str
    model: str | None
    serial: str
    timeout_s: float


Asker = Callable[[SettlementQuestion], bool | None]
"""Asks the operator; True: settled, False: not (or do not know), None: no answer in time."""


def is_yes(answer: str) -> bool:
    """Whether an answer typed at the prompt means yes (English or Chinese)."""
    return answer.strip().casefold() in YES_WORDS


def needs_operator_word(report: DeviceReport, options: WipeOptions, policy: Policy) -> bool:
    """Whether the operator's word on settlement is all that keeps this terminal from its wipe."""
    without = guard_reasons(report, replace(options, confirmed_settled=False), policy)
    with_word = guard_reasons(report, replace(options, confirmed_settled=True), policy)
    return bool(without) and not with_word


def read_vouch_file(path: Path) -> frozenset[str]:
    """The serials a vouch file lists: one per line; blank lines and ``#`` comments skipped.

    Raises:
        ValueError: one line naming the file (missing, too large, not UTF-8 text).
    """
    try:
        if path.stat().st_size > MAX_VOUCH_FILE:
            raise ValueError(
                _("vouch file {file} is larger than {size} MB: not a list of serials").format(
                    file=path, size=MAX_VOUCH_FILE // (1024 * 1024)
                )
            )
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ValueError(
            _("cannot read vouch file {file}: {error}").format(
                file=path, error=exc.strerror or exc
            )
        ) from None
    except UnicodeDecodeError:
        raise ValueError(_("vouch file {file} is not UTF-8 text").format(file=path)) from None
    serials = set()
    for line in text.splitlines():
        serial = clean_text(line.split("#", 1)[0].strip(), limit=64)
        if serial:
            serials.add(serial)
    return frozenset(serials)


def operator_word(
    question: SettlementQuestion,
    *,
    vouched: Iterable[str],
    ask: Asker | None,
    ask_lock: threading.Lock,
    cancelled: Callable[[], bool],
    on_waiting: Callable[[], None],
    on_answered: Callable[[Word], None] = lambda word: None,
) -> Word:
    """The operator's word on one terminal's settlement: from the list, else asked.

    Questions are serialised by ``ask_lock`` (one prompt on the screen at a time); a worker
    waiting for its turn gives up when ``cancelled()`` (the station stops, its slot is given
    up), which is "no answer" too. ``on_answered`` runs before the next question may start,
    so a live view never shows an answered terminal as still waiting for its answer.
    """
    if question.serial in vouched:
        return "vouch_list"
    if ask is None:
        return "unattended"
    on_waiting()
    while not ask_lock.acquire(timeout=0.1):
        if cancelled():
            return "no_answer"
    try:
        if cancelled():
            return "no_answer"
        started = time.monotonic()
        answer = ask(question)
        word: Word
        if answer is None or time.monotonic() - started > question.timeout_s + 1.0:
            word = "no_answer"
        else:
            word = "operator" if answer else "declined"
        on_answered(word)
        return word
    finally:
        ask_lock.release()


def station_hint(word: Word) -> str:
    """What the station adds to a refusal for want of the operator's word."""
    if word == "declined":
        return _(
            "at the station the operator did not confirm it was settled: settle it in the "
            "payment app, then answer yes or list its serial in a --vouch file"
        )
    if word == "no_answer":
        return _(
            "at the station nobody answered whether it was settled: settle it in the payment "
            "app, then answer yes or list its serial in a --vouch file"
        )
    return _(
        "at the station: once it is settled in the payment app, list its serial in a --vouch "
        "file, or run the station without --yes to be asked"
    )
