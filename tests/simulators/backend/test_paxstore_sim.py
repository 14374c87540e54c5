"""The simulated PAXSTORE, spoken to over raw HTTP: authentication, state rules, pages, limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from posdiag.drivers.backend.config import parse_backends
from posdiag.drivers.backend.paxstore.signing import build_query, sdk_order, sign
from posdiag.drivers.errors import AddressError
from posdiag.simulators.backend.paxstore import SAMPLE_KEY, SAMPLE_SECRET, PaxstoreSimulator

API = "/v1/3rdsys"
PINNED = 1_700_000_000.0
ROW1 = "sysKey=RCA9MDH6YN3WSSGPW6TJ&serialNo=TEST8000999&timestamp=1700000000000"
ROW2 = "serialNo=TEST8000999&sysKey=RCA9MDH6YN3WSSGPW6TJ&timestamp=1700000000000"


@pytest.fixture
def sim() -> Iterator[PaxstoreSimulator]:
    with PaxstoreSimulator.seeded(
        ["A1=bound", "P1=unbound", "S1=disabled", "DEP1=depot", "OFF1=offline"],
        retry_after_s=0,
    ) as simulator:
        yield simulator


def call(
    sim: PaxstoreSimulator,
    method: str,
    path: str,
    params: list[tuple[str, str]] | None = None,
    *,
    body: Any = None,
    order: str = "sdk",
    secret: str = SAMPLE_SECRET,
    key: str = SAMPLE_KEY,
    age_s: float = 0.0,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One signed call, parameters in the SDK's order or sorted (both valid on the raw query)."""
    stamp = str(int((time.time() - age_s) * 1000))
    pairs = [*(params or []), ("sysKey", key), ("timestamp", stamp)]
    pairs = sdk_order(pairs) if order == "sdk" else sorted(pairs)
    query = build_query(pairs)
    sent = {"signature": sign(query, secret, sim.algorithm), **(headers or {})}
    return httpx.request(
        method, f"{sim.api_url}{API}{path}?{query}", json=body, headers=sent, timeout=5
    )


def raw(
    sim: PaxstoreSimulator, method: str, path: str, query: str, signature: str
) -> httpx.Response:
    url = f"{sim.api_url}{API}{path}?{query}"
    return httpx.request(method, url, headers={"signature": signature}, timeout=5)


def code(response: httpx.Response) -> int:
    return int(response.json()["businessCode"])


# -- authentication ----------------------------------------------------------------------------


def test_vector_rows_are_accepted_verbatim_in_either_order() -> None:
    with PaxstoreSimulator.seeded(["TEST8000999=bound"], clock=lambda: PINNED) as pinned:
        sorted_get = raw(
            pinned,
            "GET",
            "/terminal",
            ROW2,
            "97C818A9F9D8BC5FA34B79844801D9F8B78EB4D584CC66DE62FAE2D81BB05805",
        )
        assert sorted_get.status_code == 200 and code(sorted_get) == 0
        assert sorted_get.json()["data"]["serialNo"] == "TEST8000999"
        disable = raw(
            pinned,
            "PUT",
            "/terminal/disable",
            ROW1,
            "56BD4430FE26D1F9BC5B31A4554D864EE51850A9C4201F6E6CF372190E810367",
        )
        assert disable.status_code == 204
        assert pinned.terminals["TEST8000999"].extra["status"] == "S"
        # Row 2's signature does not fit row 1's bytes: verification is over the raw query.
        swapped = raw(
            pinned,
            "GET",
            "/terminal",
            ROW1,
            "97C818A9F9D8BC5FA34B79844801D9F8B78EB4D584CC66DE62FAE2D81BB05805",
        )
        assert (swapped.status_code, code(swapped)) == (401, 129)


def test_md5_server_accepts_the_md5_vector() -> None:
    with PaxstoreSimulator.seeded(
        ["TEST8000999=bound"], clock=lambda: PINNED, algorithm="md5"
    ) as pinned:
        answer = raw(pinned, "PUT", "/terminal/disable", ROW1, "3174FA942064D8BF17D19B337CD1C22C")
        assert answer.status_code == 204


def test_sorted_parameters_with_their_signature_are_accepted(sim: PaxstoreSimulator) -> None:
    answer = call(sim, "GET", "/terminal", [("serialNo", "A1")], order="sorted")
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "A"


def test_missing_signature_and_wrong_secret_are_129(sim: PaxstoreSimulator) -> None:
    unsigned = httpx.get(
        f"{sim.api_url}{API}/terminal",
        params={"sysKey": sim.key, "serialNo": "A1", "timestamp": str(int(time.time() * 1000))},
    )
    assert (unsigned.status_code, code(unsigned)) == (401, 129)
    wrong = call(sim, "GET", "/terminal", [("serialNo", "A1")], secret="X" * 40)
    assert (wrong.status_code, code(wrong)) == (401, 129)
    assert sim.counts["bad_signatures"] == 2


def test_unknown_key_is_104(sim: PaxstoreSimulator) -> None:
    answer = call(sim, "GET", "/terminal", [("serialNo", "A1")], key="SOMEOTHERKEY")
    assert (answer.status_code, code(answer)) == (401, 104)


def test_clock_tolerance(sim: PaxstoreSimulator) -> None:
    assert call(sim, "GET", "/terminal", [("serialNo", "A1")], age_s=290).status_code == 200
    late = call(sim, "GET", "/terminal", [("serialNo", "A1")], age_s=310)
    assert (late.status_code, code(late)) == (401, 129)


def test_skew_fault_moves_the_clock() -> None:
    with PaxstoreSimulator.seeded(["A1=bound"], faults={"skew": 400}) as skewed:
        assert code(call(skewed, "GET", "/terminal", [("serialNo", "A1")])) == 129
        assert call(skewed, "GET", "/terminal", [("serialNo", "A1")], age_s=-400).status_code == 200
        assert skewed.counts["skewed"] == 1


def test_bad_signature_fault_rejects_everything() -> None:
    with PaxstoreSimulator.seeded(["A1=bound"], faults={"bad_signature": 1}) as broken:
        assert code(call(broken, "GET", "/terminal", [("serialNo", "A1")])) == 129


def test_auth_failures_lock_the_key_out() -> None:
    with PaxstoreSimulator.seeded(["A1=bound"], auth_failure_limit=3) as sim:
        for _ in range(3):
            assert code(call(sim, "GET", "/terminal", [("serialNo", "A1")], secret="x")) == 129
        locked = call(sim, "GET", "/terminal", [("serialNo", "A1")])
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 1700


# -- state rules and business codes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "serial", "expected"),
    [
        ("GET", "/terminal", "NOPE", 1801),
        ("PUT", "/terminal/disable", "NOPE", 1800),
        ("PUT", "/terminal/active", "NOPE", 1800),
        ("DELETE", "/terminal", "NOPE", 1800),
        ("POST", "/terminal/operation", "NOPE", 1801),
        ("GET", "/terminals/network", "NOPE", 2028),
        ("PUT", "/terminal/disable", "P1", 1888),
        ("PUT", "/terminal/disable", "S1", 1888),
        ("PUT", "/terminal/active", "A1", 1893),
        ("DELETE", "/terminal", "A1", 1877),
        ("POST", "/terminal/operation", "OFF1", 1896),
    ],
)
def test_business_codes(
    sim: PaxstoreSimulator, method: str, path: str, serial: str, expected: int
) -> None:
    params = [("serialNo", serial)]
    if path.endswith("operation"):
        params.append(("command", "Lock"))
    answer = call(sim, method, path, params)
    assert code(answer) == expected and answer.status_code >= 400
    assert answer.headers["content-type"].startswith("application/json")


def test_lifecycle_activate_disable_delete(sim: PaxstoreSimulator) -> None:
    assert call(sim, "PUT", "/terminal/active", [("serialNo", "P1")]).status_code == 204
    assert sim.terminals["P1"].state == "bound"
    assert call(sim, "PUT", "/terminal/disable", [("serialNo", "P1")]).status_code == 204
    assert sim.terminals["P1"].state == "disabled"
    assert call(sim, "DELETE", "/terminal", [("serialNo", "P1")]).status_code == 204
    assert code(call(sim, "GET", "/terminal", [("serialNo", "P1")])) == 1801


@pytest.mark.parametrize(
    ("serial", "body", "expected"),
    [
        ("P1", {"resellerName": "Depot", "merchantName": "Returns"}, 2402),
        ("A1", {"resellerName": "Nowhere", "merchantName": "Returns"}, 1759),
        ("A1", {"resellerName": "Depot", "merchantName": "Nobody"}, 1720),
        ("A1", {"resellerName": "Depot", "merchantName": "Corner Café Berlin"}, 1937),
        ("A1", {"resellerName": "Depot"}, 135),
        ("A1", ["not", "an", "object"], 997),
    ],
)
def test_move_refusals(sim: PaxstoreSimulator, serial: str, body: Any, expected: int) -> None:
    answer = call(sim, "PUT", "/terminal/move", [("serialNo", serial)], body=body)
    assert code(answer) == expected
    assert sim.terminals[serial].store == "Acme Payments"


def test_move_to_the_depot_releases_the_device_owner(sim: PaxstoreSimulator) -> None:
    body = {"resellerName": "Depot", "merchantName": "Returns"}
    assert call(sim, "PUT", "/terminal/move", [("serialNo", "A1")], body=body).status_code == 204
    data = call(sim, "GET", "/terminal", [("serialNo", "A1")]).json()["data"]
    assert (data["resellerName"], data["merchantName"], data["status"]) == (
        "Depot",
        "Returns",
        "A",
    )
    sync = httpx.get(f"{sim.base_url}/_sim/device/sync", params={"serial": "A1"}).json()
    assert sync["release_device_owner"] is True and sync["state"] == "unbound"


def test_move_elsewhere_is_not_a_release(sim: PaxstoreSimulator) -> None:
    sim.resellers["Other Reseller"] = {"Other Shop"}
    body = {"resellerName": "Other Reseller", "merchantName": "Other Shop"}
    assert call(sim, "PUT", "/terminal/move", [("serialNo", "S1")], body=body).status_code == 204
    unit = sim.terminals["S1"]
    assert (unit.store, unit.state, unit.released_device_owner) == (
        "Other Reseller",
        "disabled",
        False,
    )


def test_release_pending_keeps_the_old_assignment_for_n_lookups() -> None:
    with PaxstoreSimulator.seeded(["A1=bound"], faults={"release_pending": 2}) as sim:
        body = {"resellerName": "Depot", "merchantName": "Returns"}
        call(sim, "PUT", "/terminal/move", [("serialNo", "A1")], body=body)
        seen = [
            call(sim, "GET", "/terminal", [("serialNo", "A1")]).json()["data"]["resellerName"]
            for _ in range(3)
        ]
    assert seen == ["Acme Payments", "Acme Payments", "Depot"]


def test_lock_is_pending_until_the_terminal_syncs(sim: PaxstoreSimulator) -> None:
    lock = [("serialNo", "A1"), ("command", "Lock")]
    assert call(sim, "POST", "/terminal/operation", lock).status_code == 204
    assert code(call(sim, "POST", "/terminal/operation", lock)) == 15096
    httpx.get(f"{sim.base_url}/_sim/device/sync", params={"serial": "A1"})
    assert code(call(sim, "POST", "/terminal/operation", lock)) == 15094
    unlock = [("serialNo", "A1"), ("command", "Unlock")]
    assert call(sim, "POST", "/terminal/operation", unlock).status_code == 204
    assert code(call(sim, "POST", "/terminal/operation", unlock)) == 15095


def test_network_dto(sim: PaxstoreSimulator) -> None:
    data = call(sim, "GET", "/terminals/network", [("serialNo", "OFF1")]).json()["data"]
    assert data["onlineStatus"] == 1 and data["battery"] == 87.0
    assert data["network"].startswith("NETWORK_")


def test_includes_follow_the_flags(sim: PaxstoreSimulator) -> None:
    bare = call(sim, "GET", "/terminal", [("serialNo", "A1")]).json()["data"]
    full = call(
        sim,
        "GET",
        "/terminal",
        [("serialNo", "A1"), ("includeInstalledFirmware", "true")],
    ).json()["data"]
    assert "installedFirmware" not in bare
    assert full["installedFirmware"]["firmwareName"].startswith("PayDroid")
    assert bare["lastAccessTime"] != bare["lastActiveTime"]


def test_wrong_method_and_unknown_path(sim: PaxstoreSimulator) -> None:
    wrong = call(sim, "POST", "/terminal/disable", [("serialNo", "A1")])
    assert (wrong.status_code, code(wrong)) == (405, 101)
    assert call(sim, "GET", "/nothing", []).status_code == 404


# -- pages and limits --------------------------------------------------------------------------


def test_search_pages_with_has_next() -> None:
    serials = [f"T{i:02d}=bound" for i in range(7)]
    with PaxstoreSimulator.seeded(serials) as sim:
        pages = [
            call(sim, "GET", "/terminals", [("pageNo", str(n)), ("limit", "3")]).json()
            for n in (1, 2, 3)
        ]
        bad = call(sim, "GET", "/terminals", [("limit", "101")])
        filtered = call(sim, "GET", "/terminals", [("snNameTID", "T03")]).json()
    assert [p["hasNext"] for p in pages] == [True, True, False]
    assert [len(p["dataset"]) for p in pages] == [3, 3, 1]
    assert {p["totalCount"] for p in pages} == {7}
    assert [d["serialNo"] for p in pages for d in p["dataset"]] == [f"T{i:02d}" for i in range(7)]
    assert code(bad) == 113
    assert [d["serialNo"] for d in filtered["dataset"]] == ["T03"]


def test_quota_headers_and_429() -> None:
    with PaxstoreSimulator.seeded(["A1=bound"], quota=2, retry_after_s=0) as sim:
        first = call(sim, "GET", "/terminal", [("serialNo", "A1")])
        second = call(sim, "GET", "/terminal", [("serialNo", "A1")])
        third = call(sim, "GET", "/terminal", [("serialNo", "A1")])
    assert first.headers["x-ratelimit-limit"] == "2"
    assert (first.headers["x-ratelimit-remaining"], second.headers["x-ratelimit-remaining"]) == (
        "1",
        "0",
    )
    assert int(first.headers["x-ratelimit-reset"]) > time.time() * 1000
    assert (third.status_code, code(third)) == (429, 429)
    assert third.headers["retry-after"] == "0"


def test_rate_limit_fault_answers_429_with_headers(sim: PaxstoreSimulator) -> None:
    sim.faults["rate_limit"] = 1
    limited = call(sim, "GET", "/terminal", [("serialNo", "A1")])
    assert limited.status_code == 429 and code(limited) == 429
    assert {"x-ratelimit-limit", "x-ratelimit-reset", "retry-after"} <= set(limited.headers)
    assert call(sim, "GET", "/terminal", [("serialNo", "A1")]).status_code == 200


# -- configuration and seeds -------------------------------------------------------------------


def test_backends_toml_is_ready_to_use(sim: PaxstoreSimulator) -> None:
    config = parse_backends(sim.backends_toml("tms"))[0]
    assert (config.name, config.kind, config.url) == ("tms", "paxstore", sim.api_url)
    assert config.url.endswith("/p-market-api")
    assert config.require("key") == SAMPLE_KEY and config.require("secret") == SAMPLE_SECRET
    assert (config.setting("depot_reseller"), config.setting("depot_merchant")) == (
        "Depot",
        "Returns",
    )


@pytest.mark.parametrize("seed", ["A1=lost", "A1", "=bound", "A 1=bound"])
def test_bad_seeds_are_refused(seed: str) -> None:
    with pytest.raises(AddressError, match="SERIAL=STATE"):
        PaxstoreSimulator.seeded([seed])


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(AddressError, match="bad_signature"):
        PaxstoreSimulator(faults={"bad_sig": 1})


def test_seed_states_map_to_statuses(sim: PaxstoreSimulator) -> None:
    statuses = {s: t.extra["status"] for s, t in sim.terminals.items()}
    assert statuses == {"A1": "A", "P1": "P", "S1": "S", "DEP1": "A", "OFF1": "A"}
    assert sim.terminals["DEP1"].state == "unbound" and sim.terminals["OFF1"].online is False
