"""The simulated Adyen Management API v3 speaks the real wire format, with state that moves.

Raw HTTP (httpx) against the simulator: paths, query parameters, paging links, Terminal objects,
problem+json errors, auth by X-API-Key or Basic, roles, and the reassignment state machine
(boarded → reassignmentInProgress → inventory) including the device-sync side.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from posdiag.drivers.errors import AddressError
from posdiag.simulators.backend.adyen import (
    BAD_PAGES,
    ROLE_READ,
    AdyenSimulator,
    terminals_from_states,
)
from posdiag.simulators.backend.server import SimTerminal

SERIAL = "000150183300032"
PROBLEM = "application/problem+json"


@pytest.fixture
def sim() -> Iterator[AdyenSimulator]:
    with AdyenSimulator.from_states(
        [f"{SERIAL}=bound", "400500600=unbound", "400500601=deployed", "400500602=pending"],
        retry_after="0",
    ) as simulator:
        yield simulator


def client(sim: AdyenSimulator, key: str | None = None) -> httpx.Client:
    headers = {"X-API-Key": sim.api_key if key is None else key}
    return httpx.Client(base_url=sim.api_url, headers=headers, timeout=5, trust_env=False)


def terminals(http: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = http.get("/terminals", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    document = answer.json()
    assert isinstance(document, dict)
    return document


def only(http: httpx.Client, serial: str) -> dict[str, Any]:
    data = terminals(http, searchQuery=serial)["data"]
    assert isinstance(data, list)
    (item,) = [i for i in data if i["serialNumber"] == serial]
    assert isinstance(item, dict)
    return item


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "wrong-key", None])
def test_missing_or_wrong_key_is_401_problem_json(sim: AdyenSimulator, key: str | None) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    answer = httpx.get(f"{sim.api_url}/terminals", headers=headers, trust_env=False)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["errorCode"] == "00_401"
    assert body["status"] == 401
    assert body["type"] == "https://docs.adyen.com/errors/unauthorized"
    assert {"title", "detail"} <= set(body)
    assert sim.counts["unauthorized"] == 1


@pytest.mark.parametrize("name", ["X-API-Key", "x-api-key", "X-API-KEY"])
def test_the_key_header_name_is_case_insensitive(sim: AdyenSimulator, name: str) -> None:
    answer = httpx.get(f"{sim.api_url}/terminals", headers={name: sim.api_key}, trust_env=False)
    assert answer.status_code == 200


def test_basic_auth_is_accepted_and_checked(sim: AdyenSimulator) -> None:
    good = httpx.get(f"{sim.api_url}/terminals", auth=(sim.username, sim.password), trust_env=False)
    assert good.status_code == 200
    bad = httpx.get(f"{sim.api_url}/terminals", auth=(sim.username, "nope"), trust_env=False)
    assert bad.status_code == 401
    junk = httpx.get(
        f"{sim.api_url}/terminals",
        headers={"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()},
        trust_env=False,
    )
    assert junk.status_code == 401


def test_roles_are_enforced_per_endpoint() -> None:
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], roles=[ROLE_READ]) as sim:
        with client(sim) as http:
            item = only(http, SERIAL)
            answer = http.post(
                f"/terminals/{item['id']}/reassign",
                json={"merchantId": sim.depot_merchant, "inventory": True},
            )
        assert answer.status_code == 403
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["errorCode"] == "00_403"
        assert sim.terminals[SERIAL].state == "bound"
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], roles=[]) as sim, client(sim) as http:
        assert http.get("/terminals").status_code == 403


# -- GET /terminals ---------------------------------------------------------------------------


def test_terminal_objects_have_the_real_shape(sim: AdyenSimulator) -> None:
    with client(sim) as http:
        item = only(http, SERIAL)
    assert item["id"] == f"AMS1-{SERIAL}"
    assert item["model"] == "AMS1"
    assert isinstance(item["firmwareVersion"], str)
    assert item["countryCode"] == "NL"
    assert item["assignment"] == {
        "companyId": sim.company_id,
        "merchantId": "M100200300400",
        "storeId": "S0001",
        "status": "boarded",
    }
    assert str(item["lastActivityAt"]).endswith("+01:00")


def test_states_map_to_assignment_statuses(sim: AdyenSimulator) -> None:
    with client(sim) as http:
        inventory = only(http, "400500600")["assignment"]
        deployed = only(http, "400500601")["assignment"]
        pending = only(http, "400500602")["assignment"]
    assert inventory == {
        "companyId": sim.company_id,
        "merchantId": sim.depot_merchant,
        "status": "inventory",
    }
    assert isinstance(deployed, dict) and deployed["status"] == "deployed"
    assert isinstance(pending, dict) and pending["status"] == "reassignmentInProgress"
    assert pending["reassignmentTarget"] == {"merchantId": sim.depot_merchant, "inventory": True}


def test_disabled_is_inventory_because_adyen_has_no_disabled_state() -> None:
    with AdyenSimulator.from_states(["9=disabled"]) as sim, client(sim) as http:
        assert only(http, "9")["assignment"]["status"] == "inventory"


def test_last_activity_is_omitted_after_14_days(sim: AdyenSimulator) -> None:
    sim.terminals[SERIAL].last_seen = time.time() - 15 * 86400
    with client(sim) as http:
        assert "lastActivityAt" not in only(http, SERIAL)


def test_paging_is_one_based_with_links_and_totals() -> None:
    serials = [f"77{n:03d}" for n in range(45)]
    with AdyenSimulator.from_states([f"{s}=bound" for s in serials]) as sim, client(sim) as http:
        first = terminals(http, searchQuery="77")
        assert first["itemsTotal"] == 45 and first["pagesTotal"] == 3
        assert len(first["data"]) == 20
        links = first["_links"]
        assert isinstance(links, dict)
        assert set(links) == {"first", "last", "self", "next"}
        assert "pageNumber=2" in links["next"]["href"]
        assert links["self"]["href"].startswith(sim.api_url + "/terminals?")
        last = terminals(http, searchQuery="77", pageNumber=3)
        assert len(last["data"]) == 5
        assert set(last["_links"]) == {"first", "last", "self", "prev"}
        big = terminals(http, searchQuery="77", pageSize=100)
        ids = [i["id"] for i in big["data"]]
        assert ids == sorted(ids) and len(ids) == 45
        assert terminals(http, searchQuery="77", pageNumber=9)["data"] == []


@pytest.mark.parametrize(
    ("name", "value"), [("pageSize", "101"), ("pageSize", "0"), ("pageNumber", "x")]
)
def test_bad_paging_parameters_are_422(sim: AdyenSimulator, name: str, value: str) -> None:
    with client(sim) as http:
        answer = http.get("/terminals", params={name: value})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["invalidFields"][0]["name"] == name


def test_search_matches_ids_containing_it_and_overrides_filters(sim: AdyenSimulator) -> None:
    with client(sim) as http:
        found = terminals(http, searchQuery="ams1-4005", merchantIds="nobody")
        assert found["itemsTotal"] == 3
        # the search showed the pending unit once: its reassignment to inventory completed
        assert terminals(http, merchantIds="M100200300400")["itemsTotal"] == 2
        assert terminals(http, merchantIds=sim.depot_merchant)["itemsTotal"] == 2
        assert terminals(http, countries="DE")["itemsTotal"] == 0


# -- POST /terminals/{id}/reassign ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"merchantId": "PosdiagDepot_POS", "storeId": "S0001", "inventory": True},
        {"merchantId": "PosdiagDepot_POS"},
        {"merchantId": "PosdiagDepot_POS", "inventory": "yes"},
        {"companyId": "SomeoneElse"},
        {"storeId": 5},
    ],
)
def test_reassign_validates_exactly_one_known_target(
    sim: AdyenSimulator, body: dict[str, object]
) -> None:
    with client(sim) as http:
        answer = http.post(f"/terminals/AMS1-{SERIAL}/reassign", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == 422 and problem["errorCode"] == "00_422"
    assert problem["invalidFields"]
    assert sim.terminals[SERIAL].state == "bound"


def test_reassign_with_a_body_that_is_not_json_is_400(sim: AdyenSimulator) -> None:
    with client(sim) as http:
        answer = http.post(f"/terminals/AMS1-{SERIAL}/reassign", content=b"\xff{")
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "00_400"


def test_reassign_of_an_unknown_id_is_404_problem_json(sim: AdyenSimulator) -> None:
    with client(sim) as http:
        answer = http.post("/terminals/AMS1-404/reassign", json={"companyId": sim.company_id})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["errorCode"] == "00_404"


def test_reassign_to_inventory_goes_through_in_progress_and_tells_the_terminal() -> None:
    with (
        AdyenSimulator.from_states([f"{SERIAL}=bound"], faults={"release_pending": 2}) as sim,
        client(sim) as http,
    ):
        answer = http.post(
            f"/terminals/AMS1-{SERIAL}/reassign",
            json={"merchantId": sim.depot_merchant, "inventory": True},
        )
        assert answer.status_code == 200
        assert answer.content == b""
        statuses = [only(http, SERIAL)["assignment"]["status"] for _ in range(3)]
        assert statuses == ["reassignmentInProgress", "reassignmentInProgress", "inventory"]
        assert only(http, SERIAL)["assignment"] == {
            "companyId": sim.company_id,
            "merchantId": sim.depot_merchant,
            "status": "inventory",
        }
        synced = httpx.get(f"{sim.base_url}/_sim/device/sync", params={"serial": SERIAL}).json()
        assert synced["release_device_owner"] is True
        assert sim.reassign_bodies == [{"merchantId": sim.depot_merchant, "inventory": True}]


def test_a_device_sync_completes_a_pending_reassignment() -> None:
    with (
        AdyenSimulator.from_states([f"{SERIAL}=bound"], faults={"release_pending": 1}) as sim,
        client(sim) as http,
    ):
        http.post(f"/terminals/AMS1-{SERIAL}/reassign", json={"companyId": sim.company_id})
        assert sim.terminals[SERIAL].state == "pending"
        httpx.get(f"{sim.base_url}/_sim/device/sync", params={"serial": SERIAL})
        assignment = only(http, SERIAL)["assignment"]
        assert assignment == {"companyId": sim.company_id, "status": "inventory"}


def test_from_inventory_to_a_store_is_immediate_and_boarded() -> None:
    with (
        AdyenSimulator.from_states(
            ["5=unbound"], stores={"ST001": "ShopNL"}, faults={"release_pending": 3}
        ) as sim,
        client(sim) as http,
    ):
        answer = http.post("/terminals/AMS1-5/reassign", json={"storeId": "ST001"})
        assert answer.status_code == 200
        assignment = only(http, "5")["assignment"]
        assert assignment == {
            "companyId": sim.company_id,
            "merchantId": "ShopNL",
            "storeId": "ST001",
            "status": "boarded",
        }


def test_rate_limit_is_429_problem_json_with_retry_after() -> None:
    with (
        AdyenSimulator.from_states(
            [f"{SERIAL}=bound"], faults={"rate_limit": 1}, retry_after="7"
        ) as sim,
        client(sim) as http,
    ):
        answer = http.get("/terminals")
        assert answer.status_code == 429
        assert answer.headers["retry-after"] == "7"
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["errorCode"] == "00_429"
        assert http.get("/terminals").status_code == 200
        assert sim.counts["rate_limited"] == 1


def test_bad_page_fault_serves_the_wrong_shapes() -> None:
    with (
        AdyenSimulator.from_states(["1=bound"], faults={"bad_page": 2}) as sim,
        client(sim) as http,
    ):
        assert http.get("/terminals").json() == BAD_PAGES[1]


# -- seeding and configuration ----------------------------------------------------------------


def test_seeding_from_states_and_its_errors() -> None:
    seeded = terminals_from_states(["A1=bound", "A2=unbound", "A3", "A4=pending"])
    assert [t.state for t in seeded] == ["bound", "unbound", "bound", "pending"]
    assert seeded[1].merchant is None
    with pytest.raises(AddressError, match=r"unknown state 'lost'.*deployed"):
        terminals_from_states(["A1=lost"])
    with pytest.raises(AddressError, match="SERIAL=STATE"):
        terminals_from_states(["../x=bound"])


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(AddressError, match="release_pending"):
        AdyenSimulator(faults={"relase_pending": 1})


def test_ids_are_model_dash_serial() -> None:
    with AdyenSimulator([SimTerminal(serial="324689776", model="V400m")]) as sim:
        assert sim.terminals["324689776"].backend_id == "V400m-324689776"


def test_backends_toml_names_the_api_root_and_credentials(sim: AdyenSimulator) -> None:
    text = sim.backends_toml("lab")
    assert text.startswith("[backend.lab]\n")
    assert f'url = "{sim.api_url}"' in text
    assert sim.api_url.endswith("/v3")
    assert f'api_key = "{sim.api_key}"' in text
    assert f'depot_merchant = "{sim.depot_merchant}"' in text
