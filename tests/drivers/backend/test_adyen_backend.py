"""posdiag's Adyen connector against the simulated Management API v3, over real HTTP.

Every test opens the connector the way the agent does (``parse_backends`` of the simulator's
``backends_toml`` + ``open_backend``) and checks what it reports and what it sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import structlog

from posdiag.drivers.backend.config import parse_backends
from posdiag.drivers.backend.model import (
    Backend,
    BackendAuthError,
    BackendConfigError,
    BackendError,
    BackendProtocolError,
    BackendRecord,
    BackendRefused,
    BackendUnavailable,
    Binding,
    ChangeResult,
    ChangeStatus,
    TerminalKey,
)
from posdiag.drivers.backend.registry import open_backend
from posdiag.simulators.backend.adyen import BAD_PAGES, ROLE_READ, AdyenSimulator
from posdiag.simulators.backend.server import SimTerminal

SERIAL = "000150183300032"
KEY = TerminalKey(SERIAL)


def connect(sim: AdyenSimulator, extra: str = "", **replace: str) -> Backend:
    text = sim.backends_toml()
    for old, new in replace.items():
        text = text.replace(old, new)
    return open_backend(parse_backends(text + extra)[0])


@pytest.fixture
def sim() -> Iterator[AdyenSimulator]:
    with AdyenSimulator.from_states(
        [f"{SERIAL}=bound", "400500600=unbound", "400500601=deployed", "400500602=pending"],
        retry_after="0",
    ) as simulator:
        yield simulator


def posts(sim: AdyenSimulator) -> list[str]:
    return [path for method, path in sim.requests if method == "POST"]


def text_of(result: BackendRecord | ChangeResult | BaseException) -> str:
    return repr(result) + str(result)


# -- lookup -----------------------------------------------------------------------------------


def test_boarded_terminal_is_bound_with_masked_ids(sim: AdyenSimulator) -> None:
    record = connect(sim).lookup(KEY)
    assert record.binding is Binding.BOUND
    assert record.status == "boarded"
    assert record.backend_id == f"AMS1-{SERIAL}"
    assert record.merchant == "****0400"
    assert record.store == "****0001"
    assert "M100200300400" not in text_of(record)
    assert record.model == "AMS1"
    assert record.firmware == "Castles_Android 1.113.4"
    assert record.last_seen is not None and record.last_seen.endswith("Z")
    assert record.battery_pct is None and record.online is None
    assert record.pending is False
    assert record.backend == "adyen" and record.kind == "adyen"


def test_last_seen_is_normalised_to_utc(sim: AdyenSimulator) -> None:
    sim.terminals[SERIAL].last_seen = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    sim.terminals[SERIAL].extra["adyen"] = {"lastActivityAt": "2023-11-14T23:13:20+01:00"}
    assert connect(sim).lookup(KEY).last_seen == "2023-11-14T22:13:20Z"


def test_deployed_is_bound_and_inventory_is_unbound(sim: AdyenSimulator) -> None:
    backend = connect(sim)
    assert backend.lookup(TerminalKey("400500601")).binding is Binding.BOUND
    inventory = backend.lookup(TerminalKey("400500600"))
    assert inventory.binding is Binding.UNBOUND
    assert inventory.status == "inventory"
    assert inventory.merchant is None


def test_reassignment_in_progress_is_bound_and_pending(sim: AdyenSimulator) -> None:
    record = connect(sim).lookup(TerminalKey("400500602"))
    assert record.binding is Binding.BOUND
    assert record.pending is True
    assert record.status == "reassignmentInProgress"
    facts = " ".join(e.fact for e in record.evidence)
    assert "reassignment to inventory scheduled, waiting for the terminal to synchronise" in facts


def test_unknown_serial_is_unknown(sim: AdyenSimulator) -> None:
    record = connect(sim).lookup(TerminalKey("999999999"))
    assert record.binding is Binding.UNKNOWN
    assert "no terminal with serialNumber 999999999" in record.evidence[0].fact


def test_tusn_only_key_is_unknown_without_asking(sim: AdyenSimulator) -> None:
    record = connect(sim).lookup(TerminalKey(tusn="00005702280117638929"))
    assert record.binding is Binding.UNKNOWN
    assert "serial number only" in record.evidence[0].fact
    assert sim.requests == []


def test_idle_terminal_says_no_activity_in_14_days(sim: AdyenSimulator) -> None:
    sim.terminals[SERIAL].last_seen = time.time() - 20 * 86400
    record = connect(sim).lookup(KEY)
    assert record.last_seen is None
    assert any("no activity in the last 14 days" in e.fact for e in record.evidence)


def test_exact_serial_match_is_found_on_page_two() -> None:
    # 150 terminals whose ids contain the serial; the exact one sorts last (page 2 of 100).
    crowd = [SimTerminal(serial=f"{n:03d}{SERIAL}", model="AMS1") for n in range(150)]
    exact = SimTerminal(serial=SERIAL, model="V400m")
    with AdyenSimulator([*crowd, exact]) as sim:
        record = connect(sim).lookup(KEY)
        assert record.backend_id == f"V400m-{SERIAL}"
        assert record.model == "V400m"
        pages = [(q["searchQuery"], q["pageNumber"], q["pageSize"]) for q in sim.list_queries]
        assert pages == [(SERIAL, "1", "100"), (SERIAL, "2", "100")]


def test_pages_are_bounded(sim: AdyenSimulator) -> None:
    crowd = [SimTerminal(serial=f"{n:03d}{SERIAL}", model="AMS1") for n in range(150)]
    with AdyenSimulator([*crowd, SimTerminal(serial=SERIAL, model="V400m")]) as big:
        with pytest.raises(BackendProtocolError, match="max_pages") as caught:
            connect(big, "max_pages = 1\n").lookup(KEY)
        assert "\n" not in str(caught.value)
        assert len(big.list_queries) == 1


def test_serial_with_control_characters_is_not_searched(sim: AdyenSimulator) -> None:
    record = connect(sim).lookup(TerminalKey("12\x1b[2J34"))
    assert record.binding is Binding.UNKNOWN
    assert sim.requests == []


def test_a_serial_is_percent_encoded_in_the_query(sim: AdyenSimulator) -> None:
    connect(sim).lookup(TerminalKey("A B&pageSize=1"))
    assert sim.list_queries[-1]["searchQuery"] == "A B&pageSize=1"
    assert sim.list_queries[-1]["pageSize"] == "100"


# -- release and report_lost ------------------------------------------------------------------


def test_release_reassigns_to_the_depot_inventory_and_confirms(sim: AdyenSimulator) -> None:
    result = connect(sim).release(KEY)
    assert result.status is ChangeStatus.DONE
    assert result.confirmed
    assert result.action == "release"
    assert result.requests == (f"POST /terminals/AMS1-{SERIAL}/reassign",)
    assert result.before.binding is Binding.BOUND
    assert result.after is not None and result.after.binding is Binding.UNBOUND
    assert sim.reassign_bodies == [{"merchantId": sim.depot_merchant, "inventory": True}]
    assert sim.terminals[SERIAL].released_device_owner is True
    assert sim.depot_merchant not in result.detail


def test_release_pending_then_done_without_sending_twice() -> None:
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], faults={"release_pending": 2}) as sim:
        backend = connect(sim)
        first = backend.release(KEY)
        assert first.status is ChangeStatus.PENDING
        assert not first.confirmed
        assert first.after is not None and first.after.pending
        assert "synchronise" in first.detail
        second = backend.release(KEY)
        assert second.status is ChangeStatus.DONE
        assert second.requests == ()
        assert "not sent again" in second.detail
        assert len(posts(sim)) == 1
        assert backend.release(KEY).status is ChangeStatus.ALREADY


def test_release_of_an_inventory_terminal_is_already_and_sends_nothing(
    sim: AdyenSimulator,
) -> None:
    result = connect(sim).release(TerminalKey("400500600"))
    assert result.status is ChangeStatus.ALREADY
    assert result.requests == ()
    assert posts(sim) == []


def test_release_of_an_unknown_terminal_is_refused(sim: AdyenSimulator) -> None:
    result = connect(sim).release(TerminalKey("31337"))
    assert result.status is ChangeStatus.REFUSED
    assert "does not know SN 31337" in result.detail
    assert posts(sim) == []


def test_release_to_a_depot_company(sim: AdyenSimulator) -> None:
    text = sim.backends_toml().replace(
        f'depot_merchant = "{sim.depot_merchant}"', f'depot_company = "{sim.company_id}"'
    )
    result = open_backend(parse_backends(text)[0]).release(TerminalKey("400500601"))
    assert result.status is ChangeStatus.DONE
    assert sim.reassign_bodies == [{"companyId": sim.company_id}]
    assert "company account" in result.detail


def test_a_depot_company_that_is_not_the_company_is_refused(sim: AdyenSimulator) -> None:
    backend = connect(sim, **{"depot_merchant = ": "depot_company = "})
    result = backend.release(KEY)
    assert result.status is ChangeStatus.REFUSED
    assert "companyId" in result.detail
    assert sim.terminals[SERIAL].state == "bound"


def test_report_lost_reassigns_to_inventory_and_says_it_is_the_nearest(
    sim: AdyenSimulator,
) -> None:
    result = connect(sim).report_lost(KEY, "stolen from the van")
    assert result.action == "report_lost"
    assert result.status is ChangeStatus.DONE
    assert "no lock or lost mode" in result.detail
    assert result.requests == (f"POST /terminals/AMS1-{SERIAL}/reassign",)
    assert sim.terminals[SERIAL].state == "unbound"


def test_report_lost_of_an_inventory_terminal_is_already(sim: AdyenSimulator) -> None:
    result = connect(sim).report_lost(TerminalKey("400500600"), "lost")
    assert result.status is ChangeStatus.ALREADY
    assert posts(sim) == []


# -- errors -----------------------------------------------------------------------------------


def test_wrong_key_is_an_auth_error_naming_the_backend(sim: AdyenSimulator) -> None:
    backend = connect(sim, **{sim.api_key: "AQE-wrong-key-000000"})
    with pytest.raises(BackendAuthError) as caught:
        backend.lookup(KEY)
    message = str(caught.value)
    assert message.startswith("adyen: ")
    assert "API key was rejected" in message and "00_401" in message
    assert "AQE-wrong-key" not in message
    assert "\n" not in message


def test_missing_read_role_is_refused_naming_the_role() -> None:
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], roles=[]) as sim:
        with pytest.raises(BackendRefused) as caught:
            connect(sim).lookup(KEY)
        assert "Terminal actions read" in str(caught.value)
        assert caught.value.code == "00_403"


def test_missing_assign_role_refuses_the_release() -> None:
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], roles=[ROLE_READ]) as sim:
        result = connect(sim).release(KEY)
        assert result.status is ChangeStatus.REFUSED
        assert "Management API—Assign Terminal" in result.detail
        assert result.requests == (f"POST /terminals/AMS1-{SERIAL}/reassign",)
        assert sim.terminals[SERIAL].state == "bound"


def test_a_422_is_refused_with_its_error_code(sim: AdyenSimulator) -> None:
    backend = connect(sim, **{sim.depot_merchant: "NoSuchMerchant"})
    result = backend.release(KEY)
    assert result.status is ChangeStatus.REFUSED
    assert "HTTP 422, 00_422" in result.detail
    assert "merchantId NoSuchMerchant not found" in result.detail
    api = backend.api
    with pytest.raises(BackendRefused) as caught:
        api.reassign(f"AMS1-{SERIAL}", {"merchantId": "NoSuchMerchant", "inventory": True})
    assert caught.value.code == "00_422"


def test_429_is_retried_honouring_retry_after() -> None:
    with AdyenSimulator.from_states(
        [f"{SERIAL}=bound"], faults={"rate_limit": 2}, retry_after="0"
    ) as sim:
        assert connect(sim).lookup(KEY).binding is Binding.BOUND
        assert sim.counts["rate_limited"] == 2


def test_429_past_the_retries_is_unavailable() -> None:
    with (
        AdyenSimulator.from_states(
            [f"{SERIAL}=bound"], faults={"rate_limit": 5}, retry_after="0"
        ) as sim,
        pytest.raises(BackendUnavailable, match="rate-limited"),
    ):
        connect(sim, "retries = 1\n").lookup(KEY)


def test_503_is_retried(sim: AdyenSimulator) -> None:
    sim.faults["server_error"] = 1
    assert connect(sim).lookup(KEY).binding is Binding.BOUND
    assert sim.counts["server_errors"] == 1


def test_garbage_is_a_protocol_error(sim: AdyenSimulator) -> None:
    sim.faults["garbage"] = 1
    with pytest.raises(BackendProtocolError, match="not JSON") as caught:
        connect(sim).lookup(KEY)
    assert str(caught.value).startswith("adyen: GET /terminals")


@pytest.mark.parametrize(
    ("variant", "outcome"),
    [
        (1, "protocol"),
        (2, "protocol"),
        (3, "protocol"),
        (4, "unknown"),
        (5, "unknown"),
        (6, "protocol"),
    ],
)
def test_wrong_shaped_pages_never_crash(variant: int, outcome: str) -> None:
    assert len(BAD_PAGES) == 6
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], faults={"bad_page": variant}) as sim:
        backend = connect(sim)
        if outcome == "protocol":
            with pytest.raises(BackendProtocolError) as caught:
                backend.lookup(KEY)
            assert str(caught.value).startswith("adyen: GET /terminals: ")
            assert "\n" not in str(caught.value)
        else:
            assert backend.lookup(KEY).binding is Binding.UNKNOWN
            assert len(sim.list_queries) == 1


HOSTILE = [
    {"assignment": 5},
    {"assignment": {"status": ["boarded"], "merchantId": {"x": 1}}},
    {"assignment": {"status": "retired"}},
    {"lastActivityAt": "9999-12-31T23:59:59-23:59"},
    {"lastActivityAt": 1e308},
    {"firmwareVersion": "\x1b[31mEVIL\u202e\x00" + "x" * 5000, "model": 12},
    {"id": None},
    {"assignment": {"status": "boarded", "merchantId": "\u202eM\x1b]0;pwn\x07" * 40}},
]


@pytest.mark.parametrize("override", HOSTILE)
def test_hostile_terminal_fields_are_typed_and_sanitised(
    sim: AdyenSimulator, override: dict[str, object]
) -> None:
    sim.terminals[SERIAL].extra["adyen"] = override
    record = connect(sim).lookup(KEY)
    for value in (record.status, record.firmware, record.model, record.merchant, record.last_seen):
        assert value is None or (value.isprintable() and len(value) <= 256)
    for evidence in record.evidence:
        assert evidence.fact.isprintable()


def test_unmappable_status_is_unknown_and_release_refuses(sim: AdyenSimulator) -> None:
    sim.terminals[SERIAL].extra["adyen"] = {"assignment": {"status": "retired"}}
    backend = connect(sim)
    assert backend.lookup(KEY).binding is Binding.UNKNOWN
    result = backend.release(KEY)
    assert result.status is ChangeStatus.REFUSED
    assert posts(sim) == []


@pytest.mark.parametrize("bad_id", ["../../companies/x", "AMS1-1?x=1", "AMS1 1", ".", ""])
def test_hostile_terminal_id_is_never_put_in_a_path(sim: AdyenSimulator, bad_id: str) -> None:
    sim.terminals[SERIAL].extra["adyen"] = {"id": bad_id}
    with pytest.raises(BackendProtocolError, match="not a valid id"):
        connect(sim).release(KEY)
    assert posts(sim) == []


# -- secrets and configuration ----------------------------------------------------------------


def test_the_api_key_appears_in_no_error_record_or_log(sim: AdyenSimulator) -> None:
    seen: list[str] = []
    sim.terminals[SERIAL].extra["adyen"] = {"firmwareVersion": f"fw {sim.api_key}"}
    with structlog.testing.capture_logs() as logs:
        backend = connect(sim)
        seen.append(repr(backend))
        seen.append(text_of(backend.lookup(KEY)))
        seen.append(text_of(backend.release(KEY)))
        seen.append(text_of(backend.report_lost(TerminalKey("400500601"), "lost")))
        sim.faults["garbage"] = sim.counts.get("after_faults", 0) + 1
        with pytest.raises(BackendError) as garbage:
            backend.lookup(KEY)
        seen.append(text_of(garbage.value))
    with AdyenSimulator.from_states([f"{SERIAL}=bound"], roles=[ROLE_READ]) as other:
        seen.append(text_of(connect(other).release(KEY)))
    wrong = connect(sim, **{sim.api_key: "AQE-another-secret-key-1"})
    with pytest.raises(BackendAuthError) as caught:
        wrong.lookup(KEY)
    seen.append(text_of(caught.value))
    seen.extend(repr(entry) for entry in logs)
    everything = "\n".join(seen)
    assert sim.api_key not in everything
    assert "AQE-another-secret-key-1" not in everything
    assert sim.api_key[:12] not in everything


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_key = ": "x_api_key = "}, "needs the setting 'api_key'"),
        ({"/v3": ""}, "ending in /v3"),
        ({"depot_merchant": "depot_company"}, None),
        ({"depot_merchant = ": "depot_merchant = 5 #"}, "depot_merchant must be"),
    ],
)
def test_configuration_errors_are_one_line(
    sim: AdyenSimulator, change: dict[str, str], message: str | None
) -> None:
    text = sim.backends_toml()
    for old, new in change.items():
        text = text.replace(old, new)
    if message is None:
        text += 'depot_merchant = "Other"\n'
        message = "exactly one of depot_merchant"
    with pytest.raises(BackendConfigError) as caught:
        open_backend(parse_backends(text)[0])
    assert message in str(caught.value)
    assert sim.api_key not in str(caught.value)


def test_the_connector_is_a_backend(sim: AdyenSimulator) -> None:
    backend = connect(sim)
    assert isinstance(backend, Backend)
    assert backend.kind == "adyen" and backend.name == "adyen"
    backend.close()
