"""What a person is shown of a certificate: shared by the HTML page, the PDF and ``verify``.

The three renderings say the same things in the same words, so the wording lives here once:
outcome words and colours, step status words, dates in the reader's locale, and the
translation of the fixed English values posdiag itself writes into the content (media type,
inventory status…). The content is signed English data and is never changed; only its display
is translated, and only for values posdiag wrote: text a terminal or an operator supplied is
shown as it is (cleaned), never looked up in a catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from posdiag.drivers.i18n import N_, _, format_datetime
from posdiag.drivers.text import clean_text

from .content import (
    ANY_TEXT_LIMIT,
    DATA_BACKUP,
    DEFAULT_MEDIA_SOURCE,
    DEFAULT_MEDIA_TYPE,
    DEVICE_TYPE,
    DONE_STATUSES,
    INVENTORY_STATUS,
    NOT_CATEGORIZED,
    SIGNATURE_METHOD,
    SKIPPED_STATUSES,
    STANDARDS,
    TECHNIQUES,
)

__all__ = [
    "MASKING_NOTE",
    "OUTCOME_VIEW",
    "backend_state",
    "get",
    "is_missing",
    "outcome_view",
    "shown",
    "status_kind",
    "status_word",
    "text",
    "verdict_text",
    "when",
]

# outcome -> (word, colour, meaning); the colours are those of the printed page and the PDF.
OUTCOME_VIEW: dict[str, tuple[str, str, str]] = {
    "erased": (
        N_("Erased"),
        "#1b7a3a",
        N_("Every step of the wipe completed; how each was verified is listed below."),
    ),
    "erased_with_exceptions": (
        N_("Erased with exceptions"),
        "#a85d00",
        N_("The wipe ran, but not everything could be done or verified: see the exceptions."),
    ),
    "not_erased": (
        N_("Not erased"),
        "#b3261e",
        N_("The wipe did not complete. Merchant data may still be on this terminal."),
    ),
    "aborted": (
        N_("Aborted"),
        "#b3261e",
        N_("The wipe was stopped before it finished. Merchant data may still be on this terminal."),
    ),
    "refused": (
        N_("Refused"),
        "#4a5568",
        N_("posdiag refused to wipe this terminal (see the exceptions); nothing was erased."),
    ),
}

_STATUS_WORDS = {
    "done": N_("done"),
    "ok": N_("done"),
    "completed": N_("done"),
    "success": N_("done"),
    "succeeded": N_("done"),
    "passed": N_("done"),
    "verified": N_("done earlier, checked now"),
    "already_done": N_("already done"),
    "failed": N_("failed"),
    "skipped": N_("skipped"),
    "not_run": N_("not run"),
    "unavailable": N_("not available"),
    "unsupported": N_("not supported"),
    "not_applicable": N_("not applicable"),
}

_STATE_WORDS = {
    "activated": N_("activated"),
    "not_activated": N_("not activated"),
    "partial": N_("partly activated"),
    "unknown": N_("unknown"),
    "ready": N_("ready"),
    "wipe_required": N_("wipe required"),
    "service_required": N_("service required"),
    "quarantine": N_("quarantine"),
    "unreachable": N_("unreachable"),
}

MASKING_NOTE = N_(
    "Terminal and merchant identifiers are masked (last four characters). Serial numbers are "
    "shown in full: they identify the device this certificate is about."
)

# Values posdiag itself writes into the content, in English: translated for display only.
_OWN_VALUES = frozenset(
    {
        DATA_BACKUP,
        DEFAULT_MEDIA_SOURCE,
        DEFAULT_MEDIA_TYPE,
        DEVICE_TYPE,
        NOT_CATEGORIZED,
        SIGNATURE_METHOD,
        *STANDARDS,
        *INVENTORY_STATUS.values(),
        *(word for pair in TECHNIQUES.values() for word in pair),
        *_STATE_WORDS,
    }
)


def is_missing(value: Any) -> bool:
    """Whether a field holds nothing worth a line (None, blank, empty list or object)."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or value == [] or value == {}


def text(value: Any, limit: int = ANY_TEXT_LIMIT) -> str:
    """A value as clean display text: yes/no for booleans, posdiag's own words translated."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return shown(clean_text(value, limit))


def shown(value: str) -> str:
    """``value`` in the reader's language when posdiag wrote it, else exactly as it is."""
    if value in _STATE_WORDS:
        return _(_STATE_WORDS[value])
    if value in _OWN_VALUES:
        return _(value)
    return value


def when(value: Any) -> str:
    """A recorded moment in the reader's locale (text that is not a date is shown as it is)."""
    if is_missing(value):
        return ""
    return clean_text(format_datetime(str(value)), 64)


def get(mapping: Any, *path: str) -> Any:
    """``mapping[a][b]…``, or None where any level is missing or not an object."""
    for name in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(name)
    return mapping


def status_kind(status: Any) -> str:
    """``ok``, ``warn`` or ``bad``: how a step's status is coloured."""
    word = str(status or "").lower()
    if word in DONE_STATUSES:
        return "ok"
    if word in SKIPPED_STATUSES:
        return "warn"
    return "bad"


def status_word(status: Any) -> str:
    """A step's status in words; an unknown status is shown as recorded."""
    word = str(status or "").lower()
    if word in _STATUS_WORDS:
        return _(_STATUS_WORDS[word])
    return clean_text(status, 64) if not is_missing(status) else _("unknown")


def outcome_view(outcome: str) -> tuple[str, str, str]:
    """``(word, colour, meaning)`` of an outcome, translated; an unknown one says so."""
    found = OUTCOME_VIEW.get(outcome)
    if found is None:
        word = clean_text(outcome, 64) if outcome else _("Unknown")
        return word, "#4a5568", _("Unknown outcome.")
    word, colour, meaning = found
    return _(word), colour, _(meaning)


def verdict_text(verdict: Any) -> str | None:
    """The check's verdict and its reasons in one line, or None when the check gave none."""
    if not isinstance(verdict, Mapping) or is_missing(verdict.get("status")):
        return None
    status = text(verdict.get("status"))
    reasons = verdict.get("reasons")
    if isinstance(reasons, list) and reasons:
        return _("{status} ({reasons})").format(
            status=status, reasons=_("; ").join(text(r) for r in reasons)
        )
    return status


def backend_state(view: Any) -> str:
    """One backend's view of the unit in words: its binding, or why it was not consulted."""
    if not isinstance(view, Mapping):
        return ""
    if view.get("consulted"):
        state = _("{binding} (status {status})").format(
            binding=text(view.get("binding") or "-"), status=text(view.get("status") or "-")
        )
        if not is_missing(view.get("merchant")):
            state = _("{state}, merchant {merchant}").format(
                state=state, merchant=text(view.get("merchant"))
            )
        return state
    return _("not consulted: {error}").format(error=text(view.get("error") or _("no answer")))
