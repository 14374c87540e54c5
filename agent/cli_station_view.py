"""What the person at a station reads: the live table, the summary and the settlement prompt.

Translated at display only: the slots, JSON lines, summary JSON and ledger keep their English
identifiers (``wipe_required``, ``awaiting_operator``); the words a person reads come from the
tables here through :func:`_`. Every text a terminal said reaches these functions already
cleaned (:meth:`SlotResult.cleaned`) and is shown as :class:`~rich.text.Text`, never as markup.
"""

from __future__ import annotations

import io
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.text import Text

from posdiag.drivers.i18n import N_, _, ngettext

from .render import safe
from .slots import FINAL_STAGES, SlotResult, needs_action
from .station_settle import SettlementQuestion, is_yes

__all__ = [
    "OUTCOME_WORDS",
    "STAGE_WORDS",
    "LiveTable",
    "SettlementPrompt",
    "outcome_text",
    "print_summary",
    "stage_word",
]

STAGE_WORDS = {
    "queued": N_("waiting its turn"),
    "connecting": N_("connecting"),
    "inspecting": N_("checking"),
    "identified": N_("checking"),
    "awaiting_operator": N_("waiting for your answer"),
    "wiping": N_("erasing"),
    "verifying": N_("checking the erasure"),
    "certifying": N_("writing the certificate"),
    "done": N_("finished"),
    "failed": N_("stopped"),
    "unplugged": N_("unplugged"),
}
"""Stage identifiers → the words shown (the JSON lines keep the identifiers)."""

OUTCOME_WORDS = {
    "ready": (N_("ready"), "green"),
    "wipe_required": (N_("wipe required"), "yellow"),
    "service_required": (N_("service required"), "yellow"),
    "quarantine": (N_("quarantine: keep it aside"), "bold red"),
    "unreachable": (N_("unreachable"), "red"),
    "skipped": (N_("skipped"), "dim"),
    "erased": (N_("erased"), "green"),
    "erased_with_exceptions": (N_("erased with exceptions"), "yellow"),
    "not_erased": (N_("NOT erased"), "bold red"),
    "aborted": (N_("aborted"), "red"),
    "refused": (N_("refused"), "red"),
    "certificate_pending": (N_("erased, certificate pending"), "yellow"),
    "in_progress": (N_("in progress"), "cyan"),
}
"""Verdict/outcome identifiers → the words shown and their colour."""

_RANK_ACTION, _RANK_RUNNING, _RANK_DONE = 0, 1, 2


def stage_word(stage: str) -> str:
    """A stage in the reader's language (an unknown identifier is shown as it is)."""
    word = STAGE_WORDS.get(stage)
    return _(word) if word else stage


def outcome_text(slot: SlotResult) -> Text:
    """The verdict or outcome in words, coloured; empty while the terminal is worked."""
    key = slot.verdict_or_outcome
    if key is None:
        if slot.stage == "awaiting_operator":
            return Text(_("needs your answer"), style="bold yellow")
        return Text("")
    known = OUTCOME_WORDS.get(key)
    text = Text(_(known[0]), style=known[1]) if known else Text(safe(key))
    if slot.already_erased:
        text.append(" " + _("(already erased in this batch)"), style="dim")
    return text


def _elapsed_text(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _progress_text(slot: SlotResult) -> Text:
    """A ten-cell bar with the step count while erasing, else the percentage."""
    filled = round(slot.progress * 10)
    final = slot.stage in FINAL_STAGES
    style = "cyan"
    if final:
        style = "green" if not needs_action(slot) else "yellow" if slot.ok else "red"
    text = Text("█" * filled, style=style)
    text.append("░" * (10 - filled), style="dim")
    if slot.steps_total and not final:
        text.append(f" {slot.steps_done}/{slot.steps_total}")
    else:
        text.append(f" {round(slot.progress * 100):3d}%")
    return text


REASON_CELL = 80
"""Characters of a terminal's first reason shown in the table; the summary has them all."""


def _reason_text(slot: SlotResult) -> Text:
    """The first reason of a terminal that needs action, shortened (the summary lists all)."""
    if not needs_action(slot) or not slot.reasons:
        return Text("")
    reason = safe(slot.reasons[0])
    if len(reason) > REASON_CELL:
        reason = reason[: REASON_CELL - 1].rstrip() + "…"
    return Text(reason, style="dim")


class LiveTable:
    """The live view's state: the latest update per slot and when each started.

    Elapsed times move: a running slot's start is taken from its first update (its elapsed
    then), and the table computes it afresh at every refresh, so a terminal stuck on a slow
    step is seen to be stuck rather than frozen at its last event.
    """

    def __init__(self, mode: str, *, watching: bool, clock: Callable[[], float] = time.monotonic):
        self.mode = mode
        self.watching = watching
        self.batch_of: Callable[[], str | None] = lambda: None
        """The station's batch id (known once it runs)."""
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, SlotResult] = {}
        self._started: dict[str, float] = {}
        self._order: dict[str, int] = {}

    def update(self, slot: SlotResult) -> None:
        """Take one slot update (any thread)."""
        now = self._clock()
        with self._lock:
            previous = self._slots.get(slot.address)
            if previous is None or previous.stage in FINAL_STAGES:  # new, or plugged in again
                self._started.pop(slot.address, None)
                self._order[slot.address] = len(self._order)
            if slot.stage != "queued" and slot.address not in self._started:
                self._started[slot.address] = now - slot.elapsed_s
            self._slots[slot.address] = slot

    def rows(self) -> list[tuple[SlotResult, float | None]]:
        """Slots in the order a person needs: needing action, running, done; with elapsed."""
        now = self._clock()
        with self._lock:
            slots = list(self._slots.values())
            started = dict(self._started)
            order = dict(self._order)

        def rank(slot: SlotResult) -> tuple[int, int]:
            if needs_action(slot):
                group = _RANK_ACTION
            elif slot.stage in FINAL_STAGES:
                group = _RANK_DONE
            else:
                group = _RANK_RUNNING
            return group, order.get(slot.address, 0)

        result: list[tuple[SlotResult, float | None]] = []
        for slot in sorted(slots, key=rank):
            if slot.stage in FINAL_STAGES:
                elapsed: float | None = slot.elapsed_s
            elif slot.address in started:
                elapsed = now - started[slot.address]
            else:
                elapsed = None  # queued: not started yet
            result.append((slot, elapsed))
        return result

    def counts(self, rows: Iterable[tuple[SlotResult, float | None]]) -> tuple[int, int, int]:
        """(needing action, running, done) among the rows."""
        action = running = done = 0
        for slot, _elapsed in rows:
            if needs_action(slot):
                action += 1
            elif slot.stage in FINAL_STAGES:
                done += 1
            else:
                running += 1
        return action, running, done

    def render(self) -> RenderableType:
        """The table as it is now (called at every refresh of the live view)."""
        rows = self.rows()
        title = _("posdiag station: erasing terminals") if self.mode == "wipe" else _(
            "posdiag station: checking terminals"
        )
        batch = self.batch_of()
        if batch:
            title = _("{title} (batch {batch})").format(title=title, batch=batch)
        from rich.table import Table  # only a live screen needs it, not `posdiag --version`

        table = Table(title=title, title_justify="left", expand=False)
        table.add_column(_("Terminal"), no_wrap=True, overflow="ellipsis", max_width=48)
        table.add_column(_("Model"), no_wrap=True, overflow="ellipsis", max_width=22)
        table.add_column(_("Stage"), no_wrap=True)
        table.add_column(_("Progress"), no_wrap=True)
        table.add_column(_("Outcome"), overflow="fold", max_width=60)
        table.add_column(_("Elapsed"), justify="right", no_wrap=True)
        for slot, elapsed in rows:
            terminal = Text(safe(slot.serial or ""), style="bold")
            terminal.append(("  " if slot.serial else "") + safe(slot.address), style="dim")
            outcome = outcome_text(slot)
            reason = _reason_text(slot)
            if reason.plain:
                outcome.append("\n")
                outcome.append_text(reason)
            table.add_row(
                terminal,
                Text(safe(slot.model or "")),
                Text(stage_word(slot.stage), style="bold yellow" if needs_action(slot) and
                     slot.stage not in FINAL_STAGES else ""),
                _progress_text(slot),
                outcome,
                Text("" if elapsed is None else _elapsed_text(elapsed)),
            )
        action, running, done = self.counts(rows)
        parts = []
        if action:
            parts.append(
                ngettext("{n} needs action", "{n} need action", action).format(n=action)
            )
        parts.append(ngettext("{n} running", "{n} running", running).format(n=running))
        parts.append(ngettext("{n} finished", "{n} finished", done).format(n=done))
        footer = Text(_(", ").join(parts), style="bold yellow" if action else "")
        below: list[RenderableType] = [table, footer]
        if self.watching and not running:
            below.append(
                Text(_("Waiting for terminals — plug one in (Ctrl-C to stop)"), style="cyan")
            )
        return Group(*below)


# --- the summary ---------------------------------------------------------------------------


def _count_words(counts: dict[str, int]) -> str:
    parts = []
    for key, count in counts.items():
        known = OUTCOME_WORDS.get(key)
        parts.append(
            _("{outcome} {count}").format(outcome=_(known[0]) if known else safe(key), count=count)
        )
    return _(", ").join(parts) or _("none")


def print_summary(
    console: Console, summary: dict[str, Any], results: list[SlotResult], mode: str
) -> None:
    """The human summary: counts, then every terminal needing action by serial with its reasons.

    Check mode lists them too: a terminal found needing a wipe or service is work for the
    person at the station, not only one the station failed to check.
    """
    from .slots import latest_per_terminal

    terminals = summary["terminals"]
    console.print(
        Text(
            ngettext(
                "batch {batch}: {n} terminal: {counts}",
                "batch {batch}: {n} terminals: {counts}",
                terminals,
            ).format(batch=summary["batch"], n=terminals, counts=_count_words(summary["counts"]))
        )
    )
    waiting = [r for r in latest_per_terminal(results) if needs_action(r)]
    if waiting:
        console.print(
            Text(
                ngettext(
                    "{n} terminal needs action:", "{n} terminals need action:", len(waiting)
                ).format(n=len(waiting)),
                style="bold yellow",
            )
        )
    for result in waiting:
        who = (
            _("serial {serial}").format(serial=safe(result.serial))
            if result.serial
            else _("no serial read")
        )
        where = _(", ").join(safe(p) for p in (result.model, result.address) if p)
        line = Text("  ")
        line.append(_("{who} ({where}): ").format(who=who, where=where))
        line.stylize("bold", 2, 2 + len(who))
        line.append_text(outcome_text(result))
        console.print(line)
        reasons = result.reasons or (_("no reason given"),)
        for reason in reasons:
            console.print(Text("      " + safe(reason)))
    for again in summary["already_erased"]:
        console.print(
            Text(
                _(
                    "  {address} (serial {serial}): already erased in this batch, not wiped again"
                ).format(address=again["address"], serial=again["serial"])
            )
        )
    if not summary["ledger"]["verified"]:
        console.print(
            Text(
                _(
                    "LEDGER TAMPERED: {problem}; these results cannot be handed over as proof "
                    "until it is investigated (posdiag verify --ledger)"
                ).format(problem=summary["ledger"]["problem"]),
                style="bold red",
            )
        )


# --- the settlement prompt -----------------------------------------------------------------


def _read_answer(stream: TextIO, timeout_s: float, stop: threading.Event) -> str | None:
    """One line typed within the time (None: none came, or the station stops; "" at EOF)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return stream.readline()  # not a real terminal (tests): no timeout to wait out
    end = time.monotonic() + timeout_s
    while not stop.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return None
        ready, _w, _x = select.select([fd], [], [], min(left, 0.2))
        if ready:
            return stream.readline()
    return None


def _pause(live: Any) -> Any:
    """Take the live table off the screen (the question and answer stay in the scrollback).

    Returns:
        The view's vertical overflow mode, which rich's ``stop()`` changes for good.
    """
    overflow = live.vertical_overflow
    transient = live.transient
    live.transient = True
    try:
        live.stop()
    finally:
        live.transient = transient
    return overflow


def _resume(live: Any, overflow: Any) -> None:
    """Draw the live table again below the question, and let it refresh on its own."""
    live.vertical_overflow = overflow
    render = getattr(live, "_live_render", None)
    if render is not None and hasattr(render, "_shape"):
        render._shape = None  # drawn afresh below the prompt, not over it
    live.start(refresh=True)


class SettlementPrompt:
    """Asks the operator about one terminal's settlement, with the live view paused.

    The station calls it from a worker thread, one question at a time; the live table stops
    redrawing while the question is on the screen (it would overwrite it) and starts again
    after the answer. No answer within the question's time is "no": the terminal is refused.
    """

    def __init__(self, console: Console, stream: TextIO, stop: threading.Event) -> None:
        self.console = console
        self.stream = stream
        self.stop = stop
        self.live: Any = None
        """The rich Live view to pause (set once it runs)."""

    def __call__(self, question: SettlementQuestion) -> bool | None:
        """Ask once: True settled, False not (any answer but yes), None no answer in time."""
        live = self.live
        overflow = _pause(live) if live is not None else None
        try:
            model = safe(question.model or question.family)
            self.console.print(
                Text(
                    _(
                        "Terminal {model} serial {serial}: its unsettled transactions cannot be "
                        "read. Has it been settled? [y/N] "
                    ).format(model=model, serial=safe(question.serial)),
                    style="bold yellow",
                ),
                end="",
            )
            answer = _read_answer(self.stream, question.timeout_s, self.stop)
            if answer is None:
                message = (
                    _("The station is stopping: serial {serial} is not erased.")
                    if self.stop.is_set()
                    else _("No answer within {seconds} s: serial {serial} is not erased.")
                )
                self.console.print()
                self.console.print(
                    Text(
                        message.format(
                            seconds=round(question.timeout_s), serial=safe(question.serial)
                        ),
                        style="red",
                    )
                )
                return None
            yes = is_yes(answer)
            if not yes:
                self.console.print(
                    Text(
                        _("Serial {serial} is not erased.").format(serial=safe(question.serial))
                    )
                )
            return yes
        finally:
            if live is not None:
                _resume(live, overflow)
