"""A simulated Adyen terminal's link to its (simulated) Adyen backend.

A real Adyen terminal syncs with Adyen's platform: when it is reassigned to inventory in the
Customer Area or through the Management API (``POST /terminals/{id}/reassign``), its merchant
configuration is removed at its next sync, and only then does the assignment leave
``reassignmentInProgress``. The simulated terminal does the same against a simulated backend's
device-sync endpoint (``/_sim/device/sync``, the one simulated Android units use): it registers
itself by serial (the backend names it ``[model]-[serial]``, the POIID, as Adyen does) and asks
where it stands, at start and before it answers Diagnosis, Login and GetTotals, so a
reassignment shows on the terminal the next time anyone looks, and no test depends on timing.

What it sends: ``serial``, ``model``, ``poiid`` and, so the backend can board a unit it has not
seen yet where the terminal believes it is, ``merchantAccount`` and ``storeId``. What it reads:
the backend's ``merchantAccount``/``storeId`` and ``assignment`` (the Adyen simulator adds them);
``inventory`` clears the merchant account, store and POS logins (:func:`clear_merchant`).

A backend that is down is a terminal offline from Adyen: nothing changes on the terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ..tms_sync import SYNC_PATH, ask_tms
from .device import clear_merchant
from .state import ASSIGNMENTS

if TYPE_CHECKING:
    from .state import NexoState

__all__ = ["SYNC_PATH", "sync"]

log = structlog.get_logger(__name__)

MAX_NAME = 80


def _name(value: object) -> str | None:
    """A merchant account or store id from the backend: a bounded string, or None."""
    if isinstance(value, str) and value and len(value) <= MAX_NAME and value.isprintable():
        return value
    return None


def sync(state: NexoState) -> bool:
    """Ask the backend once and apply what it says; True when it answered."""
    if not state.tms_url:
        return False
    params = {
        "serial": state.serial,
        "model": state.model,
        "poiid": state.poiid,
        "firmware": state.firmware,  # what the Management API then reports for the unit
    }
    if state.merchant_account:
        params["merchantAccount"] = state.merchant_account
    if state.store:
        params["storeId"] = state.store
    answer = ask_tms(state.tms_url, params)
    if answer is None:
        log.debug("sim.nexo.tms.offline", poiid=state.poiid)
        return False
    assignment = answer.get("assignment")
    if assignment == "inventory" or answer.get("state") in ("unbound", "unregistered"):
        if state.merchant_account or state.store:  # the reassignment arrives: unboard once
            log.info("sim.nexo.tms.unboarded", poiid=state.poiid)
            clear_merchant(state)
        state.assignment = "inventory"
        return True
    if isinstance(assignment, str) and assignment in ASSIGNMENTS:
        state.assignment = assignment
    if assignment in ("boarded", "deployed"):
        merchant = _name(answer.get("merchantAccount"))
        if merchant:
            state.merchant_account = merchant
            state.store = _name(answer.get("storeId"))
    return True
