"""The simulated PAXSTORE's terminal endpoints: state rules and business codes (reference §1.4).

Called by :class:`~posdiag.simulators.backend.paxstore.PaxstoreSimulator` with its lock held,
after authentication. Paths are relative to ``/p-market-api/v1/3rdsys``:

======  ===========================  =================================================
GET     /terminal?serialNo=          TerminalDTO (1801 unknown)
GET     /terminals/{id}              TerminalDTO by id (1800 unknown)
GET     /terminals                   search page (pageNo ≥ 1, limit 1–100, hasNext)
GET     /terminals/network           battery, onlineStatus, network (2028 unknown)
PUT     /terminal/active             P or S → A (1893 already active)
PUT     /terminal/disable            A → S (1888 not active)
PUT     /terminal/move               body resellerName, merchantName; A or S (2402);
                                     1759 / 1720 / 1937 unknown reseller / merchant / pair
DELETE  /terminal                    P or S (1877 active)
POST    /terminal/operation          command=Restart|Lock|Unlock; 1896 offline,
                                     15094/15095 already locked/unlocked, 15096 in progress
======  ===========================  =================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .server import Request, Response, SimTerminal

if TYPE_CHECKING:
    from .paxstore import PaxstoreSimulator

__all__ = ["API", "dispatch", "error"]

API = "/v1/3rdsys"
CONTENT_TYPE = "application/json;charset=UTF-8"
ORDER_BY = {"name", "tid", "serialNo"}

Handler = Callable[["PaxstoreSimulator", Request], Response]


def error(status: int, code: int, message: str) -> Response:
    """A business error in the PAXSTORE envelope."""
    return Response.json(status, {"businessCode": code, "message": message}, CONTENT_TYPE)


def ok(data: Any) -> Response:
    """A single-object success."""
    return Response.json(200, {"businessCode": 0, "data": data}, CONTENT_TYPE)


def done() -> Response:
    """A success with no content (activate, disable, move, delete, commands: SDK 9.4.0+)."""
    return Response(204)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def terminal_dto(sim: PaxstoreSimulator, terminal: SimTerminal, query: dict[str, str]) -> Any:
    """The TerminalDTO as the API sends it (``include*`` flags honoured)."""
    created = float(terminal.extra.get("created", 1_700_000_000.0))
    dto: dict[str, Any] = {
        "id": int(terminal.backend_id) if terminal.backend_id.isdigit() else terminal.backend_id,
        "name": terminal.extra.get("name", f"{terminal.model}-{terminal.serial[-4:]}"),
        "tid": _tid(terminal),
        "serialNo": terminal.serial,
        "merchantName": terminal.merchant,
        "resellerName": terminal.store,
        "modelName": terminal.model,
        "location": None,
        "remark": terminal.extra.get("remark"),
        "status": terminal.extra["status"],
        "createdDate": _ms(created),
        "updatedDate": _ms(float(terminal.extra.get("updated", created))),
        "lastActiveTime": _ms(created + 3600),  # the activation time, not "last seen"
        "lastAccessTime": _ms(terminal.last_seen),
    }
    if query.get("includeInstalledFirmware") == "true":
        dto["installedFirmware"] = {"firmwareName": terminal.firmware, "installTime": _ms(created)}
    if query.get("includeInstalledApks") == "true":
        dto["installedApks"] = []
    if query.get("includeDetailInfoList") == "true":
        dto["terminalDetail"] = {"pn": f"{terminal.model}-0AW-RD5-21EA", "osVersion": "10"}
    return dto


def _tid(terminal: SimTerminal) -> str:
    return str(terminal.extra.get("tid", terminal.backend_id[-8:].rjust(8, "0")))


def _serial(request: Request) -> str | None:
    serial = request.query.get("serialNo", "")
    return serial if 0 < len(serial) <= 64 else None


def _touch(sim: PaxstoreSimulator, terminal: SimTerminal) -> None:
    terminal.extra["updated"] = sim.now()


def get_terminal(sim: PaxstoreSimulator, request: Request) -> Response:
    """GET /terminal: a lookup also counts down a pending release."""
    serial = _serial(request)
    if serial is None:
        return error(400, 135, "Parameter serialNo is missing or invalid")
    terminal = sim.terminals.get(serial)
    if terminal is None:
        return error(404, 1801, "Terminal doesn't exist")
    sim.count("lookups")
    answer = ok(terminal_dto(sim, terminal, dict(request.query)))
    sim.settle_pending(terminal)  # after answering: "pending for N lookups"
    return answer


def get_by_id(sim: PaxstoreSimulator, request: Request, terminal_id: str) -> Response:
    """GET /terminals/{id}."""
    for terminal in sim.terminals.values():
        if terminal.backend_id == terminal_id:
            return ok(terminal_dto(sim, terminal, dict(request.query)))
    return error(404, 1800, "Terminal not found")


def network(sim: PaxstoreSimulator, request: Request) -> Response:
    """GET /terminals/network by serialNo and/or tid."""
    serial, tid = request.query.get("serialNo"), request.query.get("tid")
    if not serial and not tid:
        return error(400, 135, "Parameter serialNo or tid is missing")
    terminal = sim.terminals.get(serial or "")
    if terminal is None and tid:
        terminal = next((t for t in sim.terminals.values() if _tid(t) == tid), None)
    if terminal is None:
        return error(404, 2028, "Terminal not found")
    if serial and tid and _tid(terminal) != tid:
        return error(400, 2039, "Tid does not match serialNo")
    return ok(
        {
            "id": int(terminal.backend_id) if terminal.backend_id.isdigit() else None,
            "tid": _tid(terminal),
            "serialNo": terminal.serial,
            "status": terminal.extra["status"],
            "battery": None if terminal.battery_pct is None else float(terminal.battery_pct),
            "onlineStatus": 2 if terminal.online else 1,
            "network": "NETWORK_WIFI",
            "macAddress": "00:1A:2B:" + terminal.serial[-6:].rjust(6, "0")[:2] + ":00:01",
        }
    )


def search(sim: PaxstoreSimulator, request: Request) -> Response:
    """GET /terminals: filters, order, and pages with ``hasNext``."""
    query = request.query
    page_no, limit = query.get("pageNo", "1"), query.get("limit", "10")
    if not (page_no.isdigit() and limit.isdigit() and len(page_no) < 7 and len(limit) < 7):
        return error(400, 113, "pageNo and limit must be numbers")
    page, size = int(page_no), int(limit)
    order_by = query.get("orderBy") or "serialNo"
    status = query.get("status")
    if (
        page < 1
        or not 1 <= size <= 100
        or order_by not in ORDER_BY
        or status
        not in (
            None,
            "A",
            "P",
            "S",
        )
    ):
        return error(400, 113, "Parameter is missing or invalid")
    found = []
    for terminal in sim.terminals.values():
        exact = query.get("snNameTID")
        names = (terminal.serial, terminal.extra.get("name"), _tid(terminal))
        if (status and terminal.extra["status"] != status) or (exact and exact not in names):
            continue
        if query.get("resellerName") and terminal.store != query["resellerName"]:
            continue
        if query.get("merchantName") and terminal.merchant != query["merchantName"]:
            continue
        found.append(terminal_dto(sim, terminal, dict(query)))
    found.sort(key=lambda dto: str(dto.get(order_by) or ""))
    chunk = found[(page - 1) * size : page * size]
    payload = {
        "businessCode": 0,
        "pageNo": page,
        "limit": size,
        "orderBy": order_by,
        "totalCount": len(found),
        "hasNext": page * size < len(found),
        "dataset": chunk,
    }
    return Response.json(200, payload, CONTENT_TYPE)


def _changing(
    sim: PaxstoreSimulator, request: Request
) -> tuple[SimTerminal | None, Response | None]:
    serial = _serial(request)
    if serial is None:
        return None, error(400, 135, "Parameter serialNo is missing or invalid")
    terminal = sim.terminals.get(serial)
    if terminal is None:
        return None, error(404, 1800, "Terminal not found")
    return terminal, None


def activate(sim: PaxstoreSimulator, request: Request) -> Response:
    """PUT /terminal/active."""
    terminal, refusal = _changing(sim, request)
    if terminal is None:
        return refusal or error(404, 1800, "Terminal not found")
    if terminal.extra["status"] == "A":
        return error(400, 1893, "The terminal has already been activated!")
    sim.set_status(terminal, "A")
    _touch(sim, terminal)
    return done()


def disable(sim: PaxstoreSimulator, request: Request) -> Response:
    """PUT /terminal/disable."""
    terminal, refusal = _changing(sim, request)
    if terminal is None:
        return refusal or error(404, 1800, "Terminal not found")
    if terminal.extra["status"] != "A":
        return error(400, 1888, "The terminal is not active, unable to disable!")
    sim.set_status(terminal, "S")
    _touch(sim, terminal)
    sim.count("disabled")
    return done()


def move(sim: PaxstoreSimulator, request: Request) -> Response:
    """PUT /terminal/move, body ``{"resellerName", "merchantName"}``."""
    terminal, refusal = _changing(sim, request)
    if terminal is None:
        return refusal or error(404, 1800, "Terminal not found")
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return error(400, 997, "Malformed JSON")
    if not isinstance(body, dict):
        return error(400, 997, "Malformed JSON")
    reseller, merchant = body.get("resellerName"), body.get("merchantName")
    if not (isinstance(reseller, str) and reseller and isinstance(merchant, str) and merchant):
        return error(400, 135, "resellerName and merchantName are mandatory")
    if reseller not in sim.resellers:
        return error(400, 1759, "Reseller doesn't exist")
    if not any(merchant in merchants for merchants in sim.resellers.values()):
        return error(400, 1720, "Merchant doesn't exist")
    if merchant not in sim.resellers[reseller]:
        return error(400, 1937, "Merchant is not under the reseller")
    if terminal.extra["status"] not in ("A", "S"):
        return error(400, 2402, "The terminal is not active or disabled, unable to move!")
    _touch(sim, terminal)
    sim.count("moved")
    if (reseller, merchant) == sim.depot:
        terminal.extra["move_to"] = (reseller, merchant)
        sim.begin_release(terminal)
    else:
        terminal.store, terminal.merchant = reseller, merchant
        sim.set_status(terminal, terminal.extra["status"])
    return done()


def delete(sim: PaxstoreSimulator, request: Request) -> Response:
    """DELETE /terminal."""
    terminal, refusal = _changing(sim, request)
    if terminal is None:
        return refusal or error(404, 1800, "Terminal not found")
    if terminal.extra["status"] == "A":
        return error(400, 1877, "The terminal is active, unable to delete!")
    sim.forget(terminal.serial)
    sim.count("deleted")
    return done()


def operation(sim: PaxstoreSimulator, request: Request) -> Response:
    """POST /terminal/operation: commands are pushed to an online terminal."""
    serial = _serial(request)
    command = request.query.get("command", "")
    if serial is None or command not in ("Restart", "Lock", "Unlock"):
        return error(400, 135, "Parameter serialNo or command is missing or invalid")
    terminal = sim.terminals.get(serial)
    if terminal is None:
        return error(404, 1801, "Terminal doesn't exist")
    lock = terminal.extra.get("lock")
    if command == "Lock" and lock == "locked":
        return error(400, 15094, "The terminal is already locked")
    if command == "Lock" and lock == "pending":
        return error(400, 15096, "The terminal lock is in progress")
    if command == "Unlock" and lock is None:
        return error(400, 15095, "The terminal is already unlocked")
    if not terminal.online:
        return error(400, 1896, "The terminal is offline")
    sim.count(f"command_{command.lower()}")
    if command == "Lock":
        terminal.extra["lock"] = "pending"  # delivered at the unit's next sync
    elif command == "Unlock":
        terminal.extra.pop("lock", None)
    return done()


ROUTES: dict[str, dict[str, Handler]] = {
    "/terminal": {"GET": get_terminal, "DELETE": delete},
    "/terminals": {"GET": search},
    "/terminals/network": {"GET": network},
    "/terminal/active": {"PUT": activate},
    "/terminal/disable": {"PUT": disable},
    "/terminal/move": {"PUT": move},
    "/terminal/operation": {"POST": operation},
}


def dispatch(sim: PaxstoreSimulator, request: Request, path: str) -> Response:
    """The endpoint for ``path`` (under ``/v1/3rdsys``), 101 for a wrong method."""
    methods = ROUTES.get(path)
    if methods is None and path.startswith("/terminals/") and path.count("/") == 2:
        if request.method != "GET":
            return error(405, 101, "Request method not supported")
        return get_by_id(sim, request, path.rsplit("/", 1)[1])
    if methods is None:
        return error(404, 998, "Bad request")
    handler = methods.get(request.method)
    if handler is None:
        return error(405, 101, "Request method not supported")
    return handler(sim, request)
