"""The device side of a simulated backend's device sync: what a simulated terminal asks.

Real terminals poll their TMS or acquirer platform and obey it (a released unit drops its
merchant configuration). The simulated backends (``simulators/backend/``) answer that poll on
:data:`SYNC_PATH`; the simulated Android and nexo terminals ask it with :func:`ask_tms` and
apply the answer each in their own way (``adb/tms.py``, ``nexo/tms.py``). A backend that is
down, slow or answering garbage is a terminal offline from its backend: None, nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SYNC_PATH", "SYNC_TIMEOUT_S", "ask_tms"]

SYNC_PATH = "/_sim/device/sync"
"""The simulated backends' device-sync endpoint, under any API root."""
SYNC_TIMEOUT_S = 2.0
"""A sync that takes longer is a terminal offline from its backend."""


def ask_tms(tms_url: str, params: Mapping[str, str]) -> dict[str, Any] | None:
    """One sync request: the backend's JSON object, or None when it did not answer one."""
    import httpx  # here: a terminal without a backend (every plain simulated check) never loads it

    try:
        response = httpx.get(
            tms_url.rstrip("/") + SYNC_PATH,
            params=dict(params),
            timeout=SYNC_TIMEOUT_S,
            trust_env=False,
        )
        answer = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None
