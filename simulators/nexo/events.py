"""EventNotifications a simulated Adyen terminal POSTs to its configured event URL.

A real terminal sends events (``Initialised``, ``NetworkConnected``, ``SecurityAlarm``…) to the
URLs configured for it (Management API ``nexo.eventUrls``), encrypted with its shared key when
it has one, and expects no response body and never retries (reference §1, §4). The simulator
does the same: one POST per event, :data:`EVENT_TIMEOUT_S` at most, no retry; the outcome is
recorded in :attr:`EventSender.sent` (bounded) so a test can wait for it.

Events are sent from a background thread (:meth:`EventSender.send_async`), because an event
URL that does not answer must not hold up the terminal's start or its answers.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from posdiag.drivers.nexo.crypto import NexoKey, encrypt_message
from posdiag.drivers.nexo.messages import dumps, encode_message, event_notification

from .device import utc_timestamp
from .state import NexoState

__all__ = ["EVENT_DETAILS", "EVENT_TIMEOUT_S", "EventSender", "SentEvent"]

log = structlog.get_logger(__name__)

EVENT_TIMEOUT_S = 3.0
"""Seconds one event POST may take (connect and answer); then it is given up, not retried."""
MAX_SENT = 256
"""Outcomes remembered in :attr:`EventSender.sent`."""
EVENT_DETAILS: dict[str, dict[str, str]] = {
    "SecurityAlarm": {"message": "Tamper detected: the terminal is locked"},
    "NetworkDisconnected": {"message": "No network connection"},
    "OutOfOrder": {"message": "Printer out of order"},
}
"""EventDetails per event (form-encoded on the wire); others carry none."""
MAINTENANCE_EVENTS = frozenset({"SecurityAlarm", "OutOfOrder"})
_ids = itertools.count(1)


@dataclass(frozen=True)
class SentEvent:
    """One event POST and how it ended.

    Attributes:
        event: the EventToNotify.
        status: the HTTP status, or None when the POST failed (``error`` says how).
        error: the exception's class name, or "".
    """

    event: str
    status: int | None
    error: str = ""


class EventSender:
    """Sends a terminal's EventNotifications to ``state.event_url``.

    Args:
        state: the terminal's state (POIID, event URL).
        key: the key the terminal encrypts with (None: it has none, events go in clear).
    """

    def __init__(self, state: NexoState, key: NexoKey | None) -> None:
        self.state = state
        self.key = key
        self.sent: deque[SentEvent] = deque(maxlen=MAX_SENT)
        self.done = threading.Condition()
        self._threads: list[threading.Thread] = []

    def body(self, event: str, details: Mapping[str, str] | None = None) -> bytes:
        """The wire bytes of one EventNotification (encrypted when the terminal has a key)."""
        message = event_notification(
            f"E{next(_ids) % 10**9}",
            None,
            self.state.poiid,
            event=event,
            timestamp=utc_timestamp(time.time()),
            details=details if details is not None else EVENT_DETAILS.get(event),
            maintenance_required=True if event in MAINTENANCE_EVENTS else None,
        )
        wire = encode_message(message)
        if self.key is not None:
            wire = encrypt_message(wire, self.key)
        return dumps(wire)

    def send(self, event: str, details: Mapping[str, str] | None = None) -> SentEvent:
        """POST one event now (no retry); the outcome is also appended to :attr:`sent`."""
        import httpx  # here: a terminal without an event URL never loads httpx

        url = self.state.event_url
        try:
            response = httpx.post(
                url,
                content=self.body(event, details),
                headers={"Content-Type": "application/json"},
                timeout=EVENT_TIMEOUT_S,
                trust_env=False,
            )
            outcome = SentEvent(event, response.status_code)
        except httpx.HTTPError as exc:
            outcome = SentEvent(event, None, type(exc).__name__)
        log.debug("sim.nexo.event", name=event, status=outcome.status, error=outcome.error)
        with self.done:
            self.sent.append(outcome)
            self.done.notify_all()
        return outcome

    def send_async(self, events: list[str]) -> None:
        """Send ``events`` in order from a background thread (no-op without an event URL)."""
        if not self.state.event_url or not events:
            return

        def run() -> None:
            for event in events:
                try:
                    self.send(event)
                except Exception as exc:  # the simulator's own bug: say so, keep the terminal up
                    log.warning("sim.nexo.event_failed", name=event, error=type(exc).__name__)

        thread = threading.Thread(target=run, name="sim-nexo-events", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` events were attempted (sent or failed); False on timeout."""
        with self.done:
            return self.done.wait_for(lambda: len(self.sent) >= count, timeout)

    def join(self, timeout: float = EVENT_TIMEOUT_S + 1) -> None:
        """Wait for the background sends (at stop: a terminal finishes what it started)."""
        for thread in self._threads:
            thread.join(timeout)
