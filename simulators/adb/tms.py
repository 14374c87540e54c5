"""A simulated Android POS's terminal-management agent: it syncs with its (simulated) TMS.

A real PAXSTORE, Sunmi or Newland client polls its backend and obeys it: when the unit is
released there (moved to the depot's reseller, unbound, reassigned to inventory) the client gives
up the device owner and signs its account out at the next sync. The simulated terminal does the
same against a simulated backend's device-sync endpoint (``/_sim/device/sync``): at start (which
registers the unit, bound to its merchant, as an enrolled terminal is) and before it answers
``dumpsys device_policy`` or ``dumpsys account`` (one loopback request each), so a release shows
on the device the next time anyone looks, as with a push-notified real client, and no test
depends on timing.

A TMS that is down is a terminal offline from its TMS: nothing changes on the device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ..tms_sync import ask_tms

if TYPE_CHECKING:
    from .state import AndroidState

log = structlog.get_logger(__name__)

def sync(state: AndroidState) -> bool:
    """Poll the TMS once and apply what it says; True when it answered."""
    if not state.tms_url:
        return False
    serial = state.vendor_serial or state.serial
    answer = ask_tms(state.tms_url, {"serial": serial, "model": state.model})
    if answer is None:
        log.debug("sim.tms.offline", serial=serial)
        return False
    if answer.get("release_device_owner") is True and state.device_owner:
        owner = state.device_owner.partition("/")[0]
        log.info("sim.tms.released", serial=serial, owner=owner)
        state.device_owner = ""
        state.accounts = [a for a in state.accounts if not a[1].startswith(owner)]
    return True
