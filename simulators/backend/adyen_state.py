"""The Adyen simulator's account tree: where each terminal is, and how reassignment moves it.

Split from :mod:`posdiag.simulators.backend.adyen` (the HTTP side) so each stays readable. The
mixin holds the account state (company, depot merchant account, known merchant accounts and
stores), renders a terminal's ``assignment`` and applies ``POST /terminals/{id}/reassign``:

* a configured terminal (``boarded``/``deployed``) moves through ``reassignmentInProgress``
  (``SimTerminal.state == "pending"``, ``extra["target"]``) for ``release_pending=N`` lookups or
  syncs, then arrives: in an inventory (``state = "unbound"``, ``extra["placement"]``) or boarded
  at a merchant account or store (``state = "bound"``);
* a terminal already in an inventory moves at once (nothing on it to remove).

The device-sync endpoint also serves simulated Adyen (nexo) terminals: a sync that names a
``poiid`` registers an unseen terminal under that id (``[model]-[serial]``), boarded at the
``merchantAccount``/``storeId`` it reports or in inventory without one, and the answer adds
``assignment`` (the status above), ``merchantAccount`` and ``storeId``, which the terminal
applies (:mod:`posdiag.simulators.nexo.tms`).

Errors are Adyen ``RestServiceError`` bodies (``application/problem+json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from posdiag.drivers.errors import AddressError

from .server import BackendSimulator, Request, Response, SimTerminal

__all__ = ["STATES", "AdyenAccounts", "terminals_from_states"]

STATES = ("bound", "unbound", "disabled", "deployed", "pending")
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_POIID = re.compile(r"[A-Za-z0-9]{1,32}-[A-Za-z0-9]{1,32}")
_ACCOUNT = re.compile(r"[A-Za-z0-9_.-]{1,80}")


def terminals_from_states(pairs: Iterable[str], model: str = "AMS1") -> list[SimTerminal]:
    """Terminals from ``SERIAL=STATE`` pairs (STATE: bound|unbound|disabled|deployed|pending).

    Raises:
        AddressError: a malformed pair or an unknown state, one line naming the valid ones.
    """
    terminals = []
    for pair in pairs:
        serial, _, state = pair.partition("=")
        serial, state = serial.strip(), (state.strip() or "bound")
        if not _SERIAL.fullmatch(serial):
            raise AddressError(f"adyen terminal {pair[:70]!r}: expected SERIAL=STATE")
        if state not in STATES:
            raise AddressError(
                f"adyen terminal {serial}: unknown state {state[:20]!r} "
                f"(known: {', '.join(STATES)})"
            )
        terminal = SimTerminal(serial=serial, state=state, model=model, battery_pct=None)
        terminal.firmware = "Castles_Android 1.113.4"
        if state in ("unbound", "disabled"):
            terminal.merchant = terminal.store = None
        if state == "pending":
            terminal.pending_lookups = 1
            terminal.released_device_owner = True
        terminals.append(terminal)
    return terminals


class AdyenAccounts(BackendSimulator):
    """The account tree and the reassign endpoint; :class:`AdyenSimulator` adds the HTTP API."""

    company_id: str
    depot_merchant: str
    merchants: set[str]
    stores: dict[str, str]
    reassign_bodies: list[object]

    def problem(
        self, status: int, code: str, title: str, detail: str, slug: str, **extra: Any
    ) -> Response:
        """An Adyen ``RestServiceError`` answer (``application/problem+json``)."""
        payload = {
            "type": f"https://docs.adyen.com/errors/{slug}",
            "errorCode": code,
            "title": title,
            "detail": detail,
            "status": status,
            "requestId": f"SIM{self.count('problems'):08d}",
            **extra,
        }
        return Response.json(status, payload, "application/problem+json")

    def invalid(self, detail: str, field: str, value: object, message: str) -> Response:
        """422 with ``invalidFields`` naming the field."""
        return self.problem(
            422,
            "00_422",
            "Invalid request",
            detail,
            "unprocessable-entity",
            invalidFields=[{"name": field, "value": str(value)[:100], "message": message}],
        )

    def _assignment(self, terminal: SimTerminal) -> dict[str, Any]:
        state = terminal.state
        assignment: dict[str, Any] = {"companyId": self.company_id}
        if state in ("unbound", "disabled"):
            place = terminal.extra.get("placement") or {"merchantId": self.depot_merchant}
            if place.get("merchantId"):
                assignment["merchantId"] = place["merchantId"]
            assignment["status"] = "inventory"
            return assignment
        if terminal.merchant:
            assignment["merchantId"] = terminal.merchant
        if terminal.store:
            assignment["storeId"] = terminal.store
        if state == "pending":
            target = terminal.extra.get("target") or {
                "merchantId": self.depot_merchant,
                "inventory": True,
            }
            assignment["status"] = "reassignmentInProgress"
            assignment["reassignmentTarget"] = {"inventory": False, **target}
        else:
            assignment["status"] = "deployed" if state == "deployed" else "boarded"
        return assignment

    # -- POST /terminals/{id}/reassign -------------------------------------------------------

    def _reassign(self, terminal_id: str, request: Request) -> Response:
        terminal = next((t for t in self.terminals.values() if t.backend_id == terminal_id), None)
        if terminal is None:
            return self.problem(
                404, "00_404", "Not Found", f"Terminal {terminal_id[:64]} not found", "not-found"
            )
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            body = None
        self.reassign_bodies.append(body)
        del self.reassign_bodies[:-1000]
        if not isinstance(body, dict):
            return self.problem(
                400, "00_400", "Bad Request", "Unable to parse the request body", "bad-request"
            )
        given = [k for k in ("companyId", "merchantId", "storeId") if body.get(k) is not None]
        if len(given) != 1:
            return self.invalid(
                "Specify exactly one of companyId, merchantId or storeId",
                "companyId/merchantId/storeId",
                ",".join(given) or "none",
                "exactly one target is required",
            )
        field = given[0]
        value = body[field]
        inventory = body.get("inventory")
        if not isinstance(value, str):
            return self.invalid(f"Invalid {field}", field, value, "must be a string")
        if field == "merchantId" and not isinstance(inventory, bool):
            return self.invalid(
                "inventory must be specified when reassigning to a merchant account",
                "inventory",
                inventory,
                "required, true or false",
            )
        known = {
            "companyId": {self.company_id},
            "merchantId": self._merchants(),
            "storeId": set(self._stores()),
        }[field]
        if value not in known:
            return self.invalid(f"{field} {value[:64]} not found", field, value, "unknown")
        if field == "companyId":
            target: dict[str, Any] = {"companyId": value, "inventory": True}
        elif field == "merchantId":
            target = {"merchantId": value, "inventory": inventory}
        else:
            target = {"storeId": value, "inventory": False}
        self._move(terminal, target)
        self.count("reassigned")
        return Response(200, b"", "application/json")

    def _merchants(self) -> set[str]:
        return self.merchants | {t.merchant for t in self.terminals.values() if t.merchant}

    def _stores(self) -> dict[str, str | None]:
        known: dict[str, str | None] = {
            t.store: t.merchant for t in self.terminals.values() if t.store
        }
        return {**known, **self.stores}

    def _move(self, terminal: SimTerminal, target: dict[str, Any]) -> None:
        """Apply a reassignment: configured terminals go through ``reassignmentInProgress``."""
        configured = terminal.state in ("bound", "deployed", "pending")
        if not configured:
            terminal.extra.pop("target", None)
            self._arrive(terminal, target)
            return
        terminal.extra["target"] = target
        if target["inventory"]:
            self.begin_release(terminal)
            if terminal.state == "unbound":
                self._arrive(terminal, target)
            return
        pending = int(self.faults.get("release_pending", 0))
        if pending > 0:
            terminal.state, terminal.pending_lookups = "pending", pending
        else:
            self._arrive(terminal, target)

    def _arrive(self, terminal: SimTerminal, target: Mapping[str, Any]) -> None:
        """The reassignment completes: the terminal is at its target."""
        terminal.extra.pop("target", None)
        terminal.pending_lookups = 0
        if target.get("inventory"):
            terminal.state = "unbound"
            terminal.merchant = terminal.store = None
            terminal.extra["placement"] = {
                k: v for k, v in target.items() if k in ("companyId", "merchantId")
            }
            return
        terminal.state = "bound"
        terminal.extra.pop("placement", None)
        if "storeId" in target:
            terminal.store = target["storeId"]
            terminal.merchant = self._stores().get(target["storeId"]) or terminal.merchant
        else:
            terminal.merchant, terminal.store = target["merchantId"], None

    def settle_pending(self, terminal: SimTerminal) -> None:
        """Count one lookup (or sync) of a pending reassignment; complete it when used up."""
        if terminal.state != "pending":
            return
        if terminal.pending_lookups > 0:
            terminal.pending_lookups -= 1
        if terminal.pending_lookups <= 0:
            target = terminal.extra.get("target") or {
                "merchantId": self.depot_merchant,
                "inventory": True,
            }
            self._arrive(terminal, target)

    # -- device sync of simulated Adyen terminals --------------------------------------------

    def _sync(self, request: Request) -> Response:
        """The shared device sync, plus what a nexo terminal needs (``poiid`` in the query).

        An unseen terminal is registered under its POIID, boarded where it says it is
        (``merchantAccount``, ``storeId``) or in inventory; a known one is renamed to its POIID
        (a unit seeded as ``SERIAL=STATE`` gets its real model). The answer adds
        ``assignment``, and ``merchantAccount``/``storeId`` while it is boarded or deployed.
        """
        query = request.query
        serial, poiid = query.get("serial", ""), query.get("poiid")
        if poiid is None:
            return super()._sync(request)
        if not _SERIAL.fullmatch(serial) or not _POIID.fullmatch(poiid):
            return Response.json(400, {"error": "serial and poiid required"})
        model = poiid.partition("-")[0]
        with self.lock:
            terminal = self.terminals.get(serial)
            if terminal is None and serial not in self.forgotten:
                merchant = query.get("merchantAccount")
                merchant = merchant if merchant and _ACCOUNT.fullmatch(merchant) else None
                store = query.get("storeId")
                store = store if merchant and store and _ACCOUNT.fullmatch(store) else None
                terminal = SimTerminal(
                    serial=serial,
                    state="bound" if merchant else "unbound",
                    merchant=merchant,
                    store=store,
                    model=model,
                    battery_pct=None,
                    backend_id=poiid,
                )
                self.add(terminal)
            elif terminal is not None and terminal.backend_id != poiid:
                terminal.model, terminal.backend_id = model, poiid
            firmware = query.get("firmware", "")
            if terminal is not None and 0 < len(firmware) <= 64 and firmware.isprintable():
                terminal.firmware = firmware  # a terminal reports its firmware when it syncs
            answer = super()._sync(request)
            terminal = self.terminals.get(serial)
            if answer.status != 200 or terminal is None:
                return answer
            payload = json.loads(answer.body)
            assignment = self._assignment(terminal)
            payload["assignment"] = assignment["status"]
            if assignment["status"] in ("boarded", "deployed", "reassignmentInProgress"):
                payload["merchantAccount"] = terminal.merchant
                payload["storeId"] = terminal.store
            return Response.json(200, payload)
