"""EventNotifications to a local receiver, and the link with the simulated Adyen backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from posdiag.drivers.nexo.additional import parse_additional
from posdiag.drivers.nexo.crypto import decrypt_message, is_encrypted
from posdiag.drivers.nexo.messages import decode_message, diagnosis_request, loads, login_request


class Receiver:
    """A plain HTTP server that records POSTed bodies (an event URL)."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[bytes] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.arrived:
                    receiver.bodies.append(body)
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, count: int) -> list[bytes]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.bodies) >= count, 5)
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_start_events_are_posted_encrypted(nexo_terminal: Any, receiver: Receiver) -> None:
    terminal = nexo_terminal("tampered", event_url=receiver.url)
    bodies = receiver.wait(3)
    events = []
    for body in bodies:
        wire = loads(body)
        assert is_encrypted(wire)
        clear, _ = decrypt_message(wire, terminal.key)
        message = decode_message(clear)
        assert message.header.message_class == "Event"
        assert message.header.message_type == "Notification"
        assert message.header.poiid == terminal.poiid
        events.append(message.body)
    assert [e["EventToNotify"] for e in events] == [
        "Initialised",
        "NetworkConnected",
        "SecurityAlarm",
    ]
    alarm = events[-1]
    assert alarm["MaintenanceRequiredFlag"] is True
    assert "Tamper" in parse_additional(alarm["EventDetails"])["message"]
    assert alarm["TimeStamp"].endswith("Z")
    assert terminal.simulator.events.wait(3, 5)
    assert [e.status for e in terminal.simulator.events.sent] == [200, 200, 200]


def test_events_go_in_clear_without_a_key(nexo_terminal: Any, receiver: Receiver) -> None:
    nexo_terminal("no-network", event_url=receiver.url, no_key=True)
    bodies = receiver.wait(2)
    kinds = [decode_message(loads(b)).body["EventToNotify"] for b in bodies]
    assert kinds == ["Initialised", "NetworkDisconnected"]


def test_an_unreachable_event_url_is_not_retried(nexo_terminal: Any, receiver: Receiver) -> None:
    url = receiver.url
    receiver.close()  # nobody listens there now
    terminal = nexo_terminal("activated", event_url=url)
    events = terminal.simulator.events
    assert events.wait(2, 10)
    assert all(e.status is None and e.error for e in events.sent)
    assert len(events.sent) == 2  # one attempt per event


def _reassign(backend: Any, terminal_id: str, body: dict[str, Any]) -> httpx.Response:
    simulator = backend.simulator
    return httpx.post(
        f"{backend.url}/terminals/{terminal_id}/reassign",
        json=body,
        headers={"X-API-Key": simulator.api_key},
        timeout=5,
        trust_env=False,
    )


def _assignment(backend: Any, terminal_id: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{backend.url}/terminals",
        params={"searchQuery": terminal_id},
        headers={"X-API-Key": backend.simulator.api_key},
        timeout=5,
        trust_env=False,
    ).json()
    [item] = answer["data"]
    return dict(item["assignment"])


def test_reassign_to_inventory_reaches_the_terminal_at_its_next_sync(
    backend_simulator: Any, nexo_terminal: Any, nexo_client: Any
) -> None:
    backend = backend_simulator("adyen", "000150183300099=unbound")
    terminal = nexo_terminal("activated", tms=backend.url)
    registered = backend.simulator.terminals[terminal.state.serial]
    assert registered.backend_id == terminal.poiid == "V400m-324688179"
    assert _assignment(backend, terminal.poiid)["status"] == "boarded"
    assert _assignment(backend, terminal.poiid)["merchantId"] == "AcmeRetail_NL_POS"
    client = nexo_client(terminal)
    client.send(
        login_request(
            client.sid(), client.sale_id, client.poiid, date_time="2025-01-01T00:00:00Z",
            manufacturer_id="posdiag", application_name="t", software_version="1",
        )
    )  # fmt: skip
    assert terminal.state.logged_sale_ids == [client.sale_id]
    answer = _reassign(
        backend, terminal.poiid, {"merchantId": backend.simulator.depot_merchant, "inventory": True}
    )
    assert answer.status_code == 200
    reply = client.send(diagnosis_request(client.sid(), client.sale_id, client.poiid))
    extras = reply.additional("DiagnosisResponse")
    assert "merchantAccount" not in extras and "storeId" not in extras
    assert "LoggedSaleID" not in reply.body("DiagnosisResponse")
    assert terminal.state.assignment == "inventory"
    assert _assignment(backend, terminal.poiid)["status"] == "inventory"


def test_reassignment_in_progress_until_the_terminal_syncs(
    backend_simulator: Any, nexo_terminal: Any, nexo_client: Any
) -> None:
    backend = backend_simulator("adyen", "000150183300099=unbound", release_pending=1)
    terminal = nexo_terminal("unsettled", model="P400Plus", tms=backend.url)
    poiid = terminal.poiid
    _reassign(backend, poiid, {"merchantId": backend.simulator.depot_merchant, "inventory": True})
    registered = backend.simulator.terminals[terminal.state.serial]
    assert registered.state == "pending"
    assert terminal.state.merchant_account == "AcmeRetail_NL_POS"  # not synced yet
    client = nexo_client(terminal)
    extras = client.send(diagnosis_request(client.sid(), client.sale_id, poiid)).additional(
        "DiagnosisResponse"
    )
    assert "merchantAccount" not in extras  # the sync before Diagnosis completed the move
    assert registered.state == "unbound"
    assert _assignment(backend, poiid)["status"] == "inventory"


def test_a_seeded_unit_takes_its_poiid_and_a_fresh_one_registers_in_inventory(
    backend_simulator: Any, nexo_terminal: Any
) -> None:
    backend = backend_simulator("adyen", "324688179=bound")
    assert backend.simulator.terminals["324688179"].backend_id == "A920-324688179"
    terminal = nexo_terminal("activated", tms=backend.url)
    assert backend.simulator.terminals["324688179"].backend_id == terminal.poiid
    fresh = nexo_terminal("fresh", model="S1F2", tms=backend.url)
    unit = backend.simulator.terminals[fresh.state.serial]
    assert unit.state == "unbound" and unit.merchant is None
    assert fresh.state.assignment == "inventory"


def test_a_backend_that_is_down_changes_nothing(nexo_terminal: Any, nexo_client: Any) -> None:
    terminal = nexo_terminal("activated", tms="http://127.0.0.1:9/v3")
    client = nexo_client(terminal)
    extras = client.send(diagnosis_request(client.sid(), client.sale_id, client.poiid)).additional(
        "DiagnosisResponse"
    )
    assert extras["merchantAccount"] == "AcmeRetail_NL_POS"


def test_a_terminal_in_inventory_keeps_its_pos_logins_across_syncs(
    backend_simulator: Any, nexo_terminal: Any, nexo_client: Any
) -> None:
    """Unboarding happens once, when the reassignment arrives; later syncs leave logins alone.

    A POS that logs in to a unit in inventory (a depot reading its totals) stays logged in,
    and the backend learns the firmware the terminal reports.
    """
    backend = backend_simulator("adyen", "000150183300099=unbound")
    terminal = nexo_terminal("fresh", tms=backend.url)
    assert terminal.state.assignment == "inventory"
    client = nexo_client(terminal)
    client.send(
        login_request(
            client.sid(), client.sale_id, client.poiid, date_time="2025-01-01T00:00:00Z",
            manufacturer_id="posdiag", application_name="t", software_version="1",
        )
    )  # fmt: skip
    client.send(diagnosis_request(client.sid(), client.sale_id, client.poiid))  # syncs first
    assert terminal.state.logged_sale_ids == [client.sale_id]
    assert backend.simulator.terminals[terminal.state.serial].firmware == terminal.state.firmware
