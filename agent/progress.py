"""The line that moves while a check or a wipe talks to a terminal (a spinner, plain words).

A person at a bench must never stare at a silent screen: every exchange a driver announces
(:mod:`posdiag.drivers.activity`) and every stage of a wipe becomes one live line on stderr —
"reading the system configuration printout 1.2 KB · 3 s" — with a spinner that keeps turning
while the terminal is slow. Nothing is shown when stderr or stdout is not a terminal or the
output is JSON: pipes and collectors see exactly what they saw before.

The line is rich's :class:`~rich.status.Status`; it is paused around prompts (the wipe's serial
confirmation) so a question is never overwritten.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

from posdiag.drivers.activity import Activity, listening
from posdiag.drivers.i18n import _, format_decimal
from posdiag.drivers.text import clean_text

__all__ = ["ProgressLine", "size_text", "wants_progress"]


def wants_progress(console: Console, *, as_json: bool) -> bool:
    """Whether a live line belongs on this screen (a person is watching, not a pipe)."""
    return not as_json and console.is_terminal and sys.stdout.isatty()


def size_text(count: int) -> str:
    """Bytes as a person reads them: 812 B, 1.2 KB, 3.4 MB (decimal sign of the locale)."""
    if count < 1000:
        return _("{size} B").format(size=count)
    if count < 1_000_000:
        return _("{size} KB").format(size=format_decimal(round(count / 1000, 1), places=1))
    return _("{size} MB").format(size=format_decimal(round(count / 1_000_000, 1), places=1))


class ProgressLine:
    """One live line for one session: who is being talked to, and what is happening now."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self._status: Any = None
        self._lock = threading.Lock()
        self._subject = ""
        self._what = ""
        self._measure = ""
        self._since = time.monotonic()

    @contextmanager
    def session(self, subject: str) -> Iterator[ProgressLine]:
        """Show the line while the block talks to ``subject`` (an address or a title)."""
        if not self.enabled:
            yield self
            return
        self._subject = clean_text(subject, 80)
        self._what = _("connecting")
        self._measure = ""
        self._since = time.monotonic()
        status = self.console.status(self._text(), spinner="dots")
        done = threading.Event()
        ticker = threading.Thread(
            target=self._tick, args=(done,), name="posdiag-progress", daemon=True
        )
        with status, listening(self.on_activity):
            self._status = status
            ticker.start()
            try:
                yield self
            finally:
                done.set()
                ticker.join()
                self._status = None
        self._subject = ""

    def on_activity(self, activity: Activity) -> None:
        """A driver announced an exchange (called in the session's thread)."""
        measure = ""
        if activity.unit == "bytes" and activity.done:
            measure = size_text(activity.done)
        elif activity.unit == "steps" and activity.done is not None and activity.total:
            measure = f"{activity.done}/{activity.total}"
        with self._lock:
            if activity.what != self._what:
                self._since = activity.started or time.monotonic()
            self._what = clean_text(activity.what, 120)
            self._measure = measure
        self._refresh()

    def stage(self, what: str) -> None:
        """The agent's own stage (inspecting, verifying, writing the certificate…)."""
        self.on_activity(Activity(what, started=time.monotonic()))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the line while the block asks the person something."""
        status = self._status
        if status is None:
            yield
            return
        status.stop()
        try:
            yield
        finally:
            status.start()

    def _text(self) -> str:
        with self._lock:
            elapsed = int(time.monotonic() - self._since)
            parts = [self._what]
            if self._measure:
                parts.append(self._measure)
            if elapsed >= 2:
                parts.append(_("{seconds} s").format(seconds=elapsed))
            subject = f"[bold]{escape(self._subject)}[/]  " if self._subject else ""
        return subject + escape(" · ".join(parts))

    def _refresh(self) -> None:
        status = self._status
        if status is not None:
            status.update(self._text())

    def _tick(self, done: threading.Event) -> None:
        """Keep the elapsed seconds moving while a terminal is slow to answer."""
        while not done.wait(0.5):
            self._refresh()

