"""What a terminal session is doing right now, in plain words, for whoever is watching.

A check or a wipe is a series of exchanges, some of them long (a ZVT printout at 9600 baud, a
host dial-up, a data clear on a slow Android unit). The drivers say what each exchange is for,
as the operator would put it ("reading the system configuration printout", "clearing the payment
app's data"), and how far it got (bytes received, step 2 of 6); the agent shows it as a spinner
line on a terminal screen, as a column in the station's table, or not at all (piped, ``--json``).

The listener is held in a :class:`contextvars.ContextVar`, so each session (a thread in the
station, the main thread in ``check``) reports to its own watcher, and a driver with nobody
listening pays one lookup. Texts are translated by the driver (through ``_()``) when announced:
what reaches the listener is ready to show, never protocol jargon.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Activity", "announce", "listening", "received"]


@dataclass(frozen=True)
class Activity:
    """One moment of a session, ready to show."""

    what: str
    """The exchange in plain words, in the reader's language (no opcodes, no timer names)."""
    done: int | None = None
    """Steps done, or bytes received when ``unit`` is ``"bytes"``."""
    total: int | None = None
    """Steps (or bytes) expected in all, when known."""
    unit: str | None = None
    """``"bytes"``, ``"steps"`` or None (an exchange without a measure)."""
    started: float = 0.0
    """``time.monotonic()`` when this exchange began, so a watcher can show it moving."""


Listener = Callable[[Activity], None]

_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "posdiag_activity_listener", default=None
)
_current: contextvars.ContextVar[Activity | None] = contextvars.ContextVar(
    "posdiag_activity_current", default=None
)


def announce(
    what: str, *, done: int | None = None, total: int | None = None, unit: str | None = None
) -> None:
    """Say which exchange begins (or how far a stepped one got); never raises into the driver."""
    listener = _listener.get()
    if listener is None:
        return
    current = _current.get()
    started = current.started if current is not None and current.what == what else time.monotonic()
    activity = Activity(what, done, total, unit, started)
    _current.set(activity)
    with contextlib.suppress(Exception):  # a display must never break the session it watches
        listener(activity)


def received(count: int) -> None:
    """Count bytes received for the exchange in progress (a transport or driver read loop).

    A stepped exchange ("2/6") keeps its steps: bytes are only counted for exchanges measured in
    bytes or not measured at all. Watchers redraw at their own pace, so each read is told.
    """
    listener = _listener.get()
    if count <= 0 or listener is None:
        return
    current = _current.get()
    if current is None or current.unit == "steps":
        return
    updated = Activity(
        current.what, (current.done or 0) + count, current.total, "bytes", current.started
    )
    _current.set(updated)
    with contextlib.suppress(Exception):  # a display must never break the session it watches
        listener(updated)


@contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Send this context's announcements to ``listener`` until the block ends."""
    token = _listener.set(listener)
    current = _current.set(None)
    try:
        yield
    finally:
        _current.reset(current)
        _listener.reset(token)
