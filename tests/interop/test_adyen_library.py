"""The official Adyen Python library (``Adyen`` 16.x, unmodified) against our simulator.

If Adyen's own client can list terminals, reassign one to a merchant account's inventory and
read the new assignment back, and gets the exceptions it expects for a wrong key, a missing
role or an invalid body, the simulator speaks the Management API v3 as Adyen does, and the
connector's tests against it mean something. The library is a test dependency (``test`` extra):
this module is not skipped.

The only change made to the library is the service's ``baseUrl`` attribute (the library has no
client-level URL override; reference §2.6). The library chooses its HTTP backend itself:
``requests`` when importable (header ``x-api-key``), else ``pycurl``, else ``urllib``
(``X-API-KEY``); both ``requests`` (when installed) and the forced ``urllib`` path are run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import Adyen
import pytest
from Adyen.exceptions import AdyenAPIResponseError

from posdiag.simulators.backend.adyen import ROLE_READ, AdyenSimulator

SERIAL = "000150183300032"
BACKENDS = ["urllib"] + (["requests"] if importlib.util.find_spec("requests") else [])


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """``requests`` honours proxy variables: keep loopback calls off any proxy."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def sim() -> Iterator[AdyenSimulator]:
    with AdyenSimulator.from_states(
        [f"{SERIAL}=bound", f"9{SERIAL}=bound", "400500600=unbound"],
        faults={"release_pending": 1},
        retry_after="0",
    ) as simulator:
        yield simulator


def service(sim: AdyenSimulator, backend: str, key: str | None = None) -> Any:
    """The library's terminal-level service, pointed at the simulator and nothing else."""
    ady = Adyen.Adyen(
        xapikey=key or sim.api_key, platform="test", http_force=backend, http_timeout=10
    )
    terminals = ady.management.terminals_terminal_level_api
    terminals.baseUrl = sim.api_url
    return terminals


def find(terminals: Any, serial: str) -> dict[str, Any]:
    result = terminals.list_terminals(
        query_parameters={"searchQuery": quote(serial, safe=""), "pageSize": 100}
    )
    assert result.status_code == 200
    matches = [t for t in result.message["data"] if t["serialNumber"] == serial]
    assert len(matches) == 1
    item: dict[str, Any] = matches[0]
    return item


def test_the_library_picks_requests_when_installed(sim: AdyenSimulator) -> None:
    ady = Adyen.Adyen(xapikey=sim.api_key, platform="test")
    ady.client._init_http_client()
    chosen = ady.client.http_client.request.__name__
    expected = "_requests_request" if "requests" in BACKENDS else "_urllib_request"
    assert chosen == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_list_reassign_to_inventory_and_read_it_back(sim: AdyenSimulator, backend: str) -> None:
    terminals = service(sim, backend)
    item = find(terminals, SERIAL)
    assert item["id"] == f"AMS1-{SERIAL}"
    assert item["assignment"]["status"] == "boarded"
    result = terminals.reassign_terminal(
        {"merchantId": sim.depot_merchant, "inventory": True}, item["id"]
    )
    assert result.status_code == 200
    assert result.message == {}
    assert sim.reassign_bodies == [{"merchantId": sim.depot_merchant, "inventory": True}]
    pending = find(terminals, SERIAL)["assignment"]
    assert pending["status"] == "reassignmentInProgress"
    assert pending["reassignmentTarget"] == {"merchantId": sim.depot_merchant, "inventory": True}
    assert find(terminals, SERIAL)["assignment"] == {
        "companyId": sim.company_id,
        "merchantId": sim.depot_merchant,
        "status": "inventory",
    }
    assert sim.terminals[f"9{SERIAL}"].state == "bound"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_key_raises_the_authentication_error(sim: AdyenSimulator, backend: str) -> None:
    terminals = service(sim, backend, key="AQE-not-the-key-0000")
    with pytest.raises(Adyen.AdyenAPIAuthenticationError) as caught:
        terminals.list_terminals(query_parameters={"searchQuery": SERIAL})
    assert caught.value.status_code == 401
    assert caught.value.error_code == "00_401"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "body",
    [
        {"merchantId": "PosdiagDepot_POS"},
        {"merchantId": "PosdiagDepot_POS", "inventory": True, "storeId": "S0001"},
    ],
)
def test_a_bad_reassign_body_raises_unprocessable_entity(
    sim: AdyenSimulator, backend: str, body: dict[str, object]
) -> None:
    terminals = service(sim, backend)
    with pytest.raises(Adyen.AdyenAPIUnprocessableEntity) as caught:
        terminals.reassign_terminal(body, f"AMS1-{SERIAL}")
    assert caught.value.status_code == 422
    assert caught.value.error_code == "00_422"
    assert sim.terminals[SERIAL].state == "bound"


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_role_unknown_id_and_rate_limit_map_to_the_library_errors(
    backend: str,
) -> None:
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], roles=[ROLE_READ]) as sim:
        terminals = service(sim, backend)
        with pytest.raises(Adyen.AdyenAPIInvalidPermission) as forbidden:
            terminals.reassign_terminal({"companyId": sim.company_id}, f"AMS1-{SERIAL}")
        assert forbidden.value.error_code == "00_403"
    with AdyenSimulator.from_states([f"{SERIAL}=bound"]) as sim:
        terminals = service(sim, backend)
        with pytest.raises(Adyen.AdyenAPICommunicationError) as missing:
            terminals.reassign_terminal({"companyId": sim.company_id}, "AMS1-404")
        assert missing.value.status_code == 404
        assert missing.value.error_code == "00_404"
    with AdyenSimulator.from_states(
        [f"{SERIAL}=bound"], faults={"rate_limit": 1}, retry_after="0"
    ) as sim:
        terminals = service(sim, backend)
        with pytest.raises(AdyenAPIResponseError) as limited:
            terminals.list_terminals(query_parameters={"searchQuery": SERIAL})
        assert type(limited.value) is AdyenAPIResponseError
        assert limited.value.status_code == 429
        assert limited.value.error_code == "00_429"
        assert find(terminals, SERIAL)["assignment"]["status"] == "boarded"
