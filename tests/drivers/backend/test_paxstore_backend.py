"""The PAXSTORE connector against the simulated marketplace, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from posdiag.drivers.backend.config import parse_backends
from posdiag.drivers.backend.model import (
    BackendAuthError,
    BackendConfigError,
    BackendProtocolError,
    BackendRefused,
    BackendUnavailable,
    Binding,
    ChangeStatus,
    TerminalKey,
)
from posdiag.drivers.backend.paxstore import PaxstoreBackend, connect
from posdiag.drivers.backend.registry import open_backend
from posdiag.simulators.backend.paxstore import SAMPLE_SECRET, PaxstoreSimulator
from posdiag.simulators.backend.server import Response

SEEDS = [
    "BOUND1=bound",
    "FREE1=unbound",
    "OFF1=disabled",
    "DEPOT1=depot",
    "LOCKED1=locked",
    "LOCKING1=locking",
    "AWAY1=offline",
]
CLEAR_NAMES = ("Corner", "Café", "Berlin", "Acme")


def sn(serial: str) -> TerminalKey:
    return TerminalKey(serial=serial)


@contextmanager
def pax(
    faults: dict[str, float] | None = None, settings: dict[str, Any] | None = None, **sim: Any
) -> Iterator[tuple[PaxstoreSimulator, PaxstoreBackend]]:
    """A seeded simulator and a connector opened from its backends section (overridden)."""
    simulator = PaxstoreSimulator.seeded(SEEDS, faults=faults, **sim)
    with simulator:
        backend = opened(simulator, settings or {})
        try:
            yield simulator, backend
        finally:
            backend.close()


def opened(simulator: PaxstoreSimulator, settings: dict[str, Any], **kw: Any) -> PaxstoreBackend:
    lines = [
        line
        for line in simulator.backends_toml().splitlines()
        if line.split(" = ")[0] not in settings
    ]
    lines += [f"{name} = {json.dumps(value)}" for name, value in settings.items()]
    config = parse_backends("\n".join(lines))[0]
    backend = connect(config, **kw) if kw else open_backend(config)
    assert isinstance(backend, PaxstoreBackend)
    return backend


def sent(simulator: PaxstoreSimulator) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _, _ in simulator.api_log if m != "GET"]


# -- lookup ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serial", "binding", "status"),
    [
        ("BOUND1", Binding.BOUND, "A"),
        ("FREE1", Binding.UNBOUND, "P"),
        ("OFF1", Binding.DISABLED, "S"),
        ("DEPOT1", Binding.UNBOUND, "A"),
    ],
)
def test_lookup_maps_each_status(serial: str, binding: Binding, status: str) -> None:
    with pax() as (_, backend):
        record = backend.lookup(sn(serial))
    assert (record.binding, record.status) == (binding, status)
    assert record.backend == "paxstore" and record.kind == "paxstore"
    facts = " | ".join(e.fact for e in record.evidence)
    assert f"status {status}" in facts
    assert ("depot" in facts) is (serial == "DEPOT1")


def test_lookup_fills_the_record_from_last_access_not_activation() -> None:
    with pax() as (sim, backend):
        sim.terminals["BOUND1"].last_seen = 1_750_000_000.0
        sim.terminals["BOUND1"].battery_pct = 42
        record = backend.lookup(sn("BOUND1"))
    assert record.last_seen == "2025-06-15T15:06:40Z"
    assert record.last_seen != datetime.fromtimestamp(1_700_003_600, UTC).isoformat()
    assert record.model == "A920"
    assert record.firmware == "PayDroid_8.1.0_Sagittarius_V11.1.35_20230307"
    assert (record.online, record.battery_pct) == (True, 42)
    assert record.merchant == "****rlin" and record.store == "****ents"
    assert record.backend_id and record.backend_id.isdigit()


def test_offline_terminal_reports_offline() -> None:
    with pax() as (_, backend):
        record = backend.lookup(sn("AWAY1"))
    assert record.online is False
    assert any("offline" in e.fact for e in record.evidence)


def test_unknown_serial_is_unknown_not_an_error() -> None:
    with pax() as (_, backend):
        record = backend.lookup(sn("NOSUCH9"))
    assert record.binding is Binding.UNKNOWN
    assert [e.fact for e in record.evidence] == ["not registered (1801)"]


def test_tusn_only_is_unknown_without_asking() -> None:
    with pax() as (sim, backend):
        record = backend.lookup(TerminalKey(tusn="00005702280117638929"))
        assert sim.api_log == []
    assert record.binding is Binding.UNKNOWN
    assert "keyed by serial number" in record.evidence[0].fact


def test_network_denied_does_not_fail_the_lookup() -> None:
    with pax(denied=["/terminals/network"]) as (_, backend):
        record = backend.lookup(sn("BOUND1"))
    assert record.binding is Binding.BOUND
    assert (record.online, record.battery_pct) == (None, None)
    assert any("not available" in e.fact for e in record.evidence)


def test_insufficient_access_on_the_terminal_is_refused_with_code() -> None:
    with pax(denied=["/terminal"]) as (_, backend), pytest.raises(BackendRefused) as caught:
        backend.lookup(sn("BOUND1"))
    assert caught.value.code == "131"
    assert "insufficient access" in str(caught.value)


# -- release -----------------------------------------------------------------------------------


def test_move_release_end_to_end() -> None:
    with pax() as (sim, backend):
        result = backend.release(sn("BOUND1"))
        unit = sim.terminals["BOUND1"]
        assert (unit.store, unit.merchant, unit.extra["status"]) == ("Depot", "Returns", "A")
        sync = httpx.get(f"{sim.base_url}/_sim/device/sync", params={"serial": "BOUND1"}).json()
    assert result.status is ChangeStatus.DONE and result.confirmed
    assert result.requests == ("PUT /v1/3rdsys/terminal/move",)
    assert result.before.binding is Binding.BOUND
    assert result.after is not None and result.after.binding is Binding.UNBOUND
    assert result.after.status == "A"
    assert sync["release_device_owner"] is True


def test_move_release_of_a_disabled_unit() -> None:
    with pax() as (sim, backend):
        result = backend.release(sn("OFF1"))
        assert sim.terminals["OFF1"].store == "Depot"
    assert result.status is ChangeStatus.DONE
    assert result.after is not None and result.after.status == "S"


@pytest.mark.parametrize("serial", ["FREE1", "DEPOT1"])
def test_nothing_to_release_sends_nothing(serial: str) -> None:
    with pax() as (sim, backend):
        result = backend.release(sn(serial))
        assert sent(sim) == []
    assert result.status is ChangeStatus.ALREADY and result.requests == ()


def test_release_pending_until_the_move_shows() -> None:
    with pax(faults={"release_pending": 2}) as (_, backend):
        result = backend.release(sn("BOUND1"))
        still = backend.lookup(sn("BOUND1"))  # the second of the two pending lookups
        later = backend.lookup(sn("BOUND1"))
    assert result.status is ChangeStatus.PENDING and not result.confirmed
    assert result.after is not None and result.after.binding is Binding.BOUND
    assert still.binding is Binding.BOUND
    assert later.binding is Binding.UNBOUND


def test_unknown_depot_is_a_configuration_error() -> None:
    with (
        pax(settings={"depot_reseller": "Nowhere Ltd"}) as (_, backend),
        pytest.raises(BackendConfigError, match="depot_reseller") as caught,
    ):
        backend.release(sn("BOUND1"))
    assert "1759" in str(caught.value)


def test_release_of_an_unknown_unit_is_refused() -> None:
    with pax() as (sim, backend):
        result = backend.release(sn("NOSUCH9"))
        assert sent(sim) == []
    assert result.status is ChangeStatus.REFUSED and "not registered" in result.detail


def test_disable_release() -> None:
    with pax(settings={"release": "disable"}) as (sim, backend):
        done = backend.release(sn("BOUND1"))
        again = backend.release(sn("BOUND1"))
        assert sim.terminals["BOUND1"].state == "disabled"
    assert done.status is ChangeStatus.DONE
    assert done.requests == ("PUT /v1/3rdsys/terminal/disable",)
    assert done.after is not None and done.after.binding is Binding.DISABLED
    assert again.status is ChangeStatus.ALREADY and again.requests == ()


def test_delete_release_of_an_active_unit_disables_first() -> None:
    with pax(settings={"release": "delete"}) as (sim, backend):
        result = backend.release(sn("BOUND1"))
        assert "BOUND1" not in sim.terminals
        assert sim.counts.get("disabled") == 1 and sim.counts.get("deleted") == 1
    assert result.status is ChangeStatus.DONE
    assert result.requests == ("PUT /v1/3rdsys/terminal/disable", "DELETE /v1/3rdsys/terminal")
    assert result.after is not None and result.after.binding is Binding.UNKNOWN


def test_delete_release_of_a_disabled_unit_deletes_only() -> None:
    with pax(settings={"release": "delete"}) as (_, backend):
        result = backend.release(sn("OFF1"))
    assert result.status is ChangeStatus.DONE
    assert result.requests == ("DELETE /v1/3rdsys/terminal",)


def test_move_needs_depot_settings() -> None:
    with (
        PaxstoreSimulator() as sim,
        pytest.raises(BackendConfigError, match="depot_reseller"),
    ):
        text = "\n".join(
            line for line in sim.backends_toml().splitlines() if "depot_merchant" not in line
        )
        open_backend(parse_backends(text)[0])


# -- lost --------------------------------------------------------------------------------------


def test_report_lost_locks_and_disables() -> None:
    with pax() as (sim, backend):
        result = backend.report_lost(sn("BOUND1"), "stolen from the van")
        unit = sim.terminals["BOUND1"]
        assert unit.extra["lock"] == "pending" and unit.extra["status"] == "S"
    assert result.status is ChangeStatus.DONE
    assert result.requests == (
        "POST /v1/3rdsys/terminal/operation",
        "PUT /v1/3rdsys/terminal/disable",
    )
    assert result.after is not None and result.after.binding is Binding.DISABLED


def test_report_lost_of_a_locked_unit_still_disables() -> None:
    with pax() as (_, backend):
        result = backend.report_lost(sn("LOCKED1"), "lost")
    assert result.status is ChangeStatus.DONE and "already locked" in result.detail


def test_report_lost_while_a_lock_is_in_progress_is_pending() -> None:
    with pax() as (_, backend):
        result = backend.report_lost(sn("LOCKING1"), "lost")
    assert result.status is ChangeStatus.PENDING and "15096" in result.detail
    assert result.after is not None and result.after.status == "S"


def test_report_lost_of_an_offline_unit_is_refused_but_disabled() -> None:
    with pax() as (sim, backend):
        result = backend.report_lost(sn("AWAY1"), "lost")
        assert "lock" not in sim.terminals["AWAY1"].extra
    assert result.status is ChangeStatus.REFUSED
    assert "offline" in result.detail and "not applied" in result.detail
    assert result.after is not None and result.after.status == "S"


@pytest.mark.parametrize("serial", ["OFF1", "FREE1"])
def test_report_lost_with_nothing_to_do(serial: str) -> None:
    with pax() as (sim, backend):
        result = backend.report_lost(sn(serial), "lost")
        assert sent(sim) == []
    assert result.status is ChangeStatus.ALREADY


def test_report_lost_of_an_unknown_unit_is_refused() -> None:
    with pax() as (_, backend):
        result = backend.report_lost(sn("NOSUCH9"), "lost")
    assert result.status is ChangeStatus.REFUSED


def test_merchant_names_never_in_clear() -> None:
    with pax() as (_, backend):
        seen = [
            backend.lookup(sn("BOUND1")),
            backend.release(sn("BOUND1")),
            backend.report_lost(sn("AWAY1"), "lost"),
            backend.release(sn("OFF1")),
        ]
    text = repr(seen)
    for name in CLEAR_NAMES:
        assert name not in text


# -- authentication ----------------------------------------------------------------------------


def test_wrong_secret_is_an_auth_error_without_secrets() -> None:
    wrong = "WRONGSECRETWRONGSECRETWRONGSECRETWRONG00"
    with pax() as (sim, _):
        backend = opened(sim, {"secret": wrong})
        with pytest.raises(BackendAuthError) as caught:
            backend.lookup(sn("BOUND1"))
        backend.close()
        signatures = [s for _, _, _, s in sim.api_log if s]
    message = str(caught.value)
    assert message.startswith("paxstore: GET /v1/3rdsys/terminal") and "129" in message
    assert "\n" not in message and "clock" in message
    assert signatures
    for secret in (wrong, SAMPLE_SECRET, "sysKey", *signatures):
        assert secret not in message


def test_unknown_key_names_the_setting() -> None:
    with pax() as (sim, _):
        backend = opened(sim, {"key": "NOTAKEY"})
        with pytest.raises(BackendAuthError, match="'key'"):
            backend.lookup(sn("BOUND1"))
        backend.close()


@pytest.mark.parametrize("fault", [{"skew": 900}, {"bad_signature": 1}])
def test_skew_and_bad_signature_are_auth_errors(fault: dict[str, float]) -> None:
    with pax(faults=fault) as (sim, backend):
        with pytest.raises(BackendAuthError, match="129"):
            backend.lookup(sn("BOUND1"))
        assert sim.counts.get("skewed", 0) + sim.counts.get("bad_signatures", 0) == 1


def test_md5_marketplace() -> None:
    with pax(algorithm="md5") as (sim, backend):
        assert backend.lookup(sn("BOUND1")).binding is Binding.BOUND
        sha = opened(sim, {"signature": "sha256"})
        with pytest.raises(BackendAuthError):
            sha.lookup(sn("BOUND1"))
        sha.close()


def test_failed_authentications_lock_the_key_out() -> None:
    with pax(auth_failure_limit=2, faults={"bad_signature": 1}) as (_, backend):
        for _ in range(2):
            with pytest.raises(BackendAuthError):
                backend.lookup(sn("BOUND1"))
        with pytest.raises(BackendUnavailable, match="wait"):
            backend.lookup(sn("BOUND1"))


# -- transport faults --------------------------------------------------------------------------


def test_rate_limit_is_retried_with_a_fresh_signature() -> None:
    ticks = itertools.count()
    with pax(faults={"rate_limit": 2}, retry_after_s=0) as (sim, _):
        backend = opened(sim, {}, clock=lambda: time.time() + next(ticks) * 0.01)
        record = backend.lookup(sn("BOUND1"))
        backend.close()
        first = [q for m, p, q, _ in sim.api_log if p.endswith("/terminal")]
        assert sim.counts["rate_limited"] == 2
    assert record.binding is Binding.BOUND
    stamps = [q.rsplit("timestamp=", 1)[1] for q in first]
    assert len(stamps) == 3 and len(set(stamps)) == 3


def test_rate_limit_past_the_retries_is_unavailable() -> None:
    with (
        pax(faults={"rate_limit": 10}, retry_after_s=0, settings={"retries": 1}) as (_, b),
        pytest.raises(BackendUnavailable, match="rate-limited"),
    ):
        b.lookup(sn("BOUND1"))


def test_server_errors_are_retried() -> None:
    with pax(faults={"server_error": 2}) as (sim, backend):
        assert backend.lookup(sn("BOUND1")).binding is Binding.BOUND
        assert sim.counts["server_errors"] == 2


def test_garbage_is_a_protocol_error() -> None:
    with pax(faults={"garbage": 5}) as (_, backend), pytest.raises(BackendProtocolError):
        backend.lookup(sn("BOUND1"))


def test_oversize_answer_is_bounded() -> None:
    with pax() as (sim, backend):
        sim.terminals["BOUND1"].extra["remark"] = "x" * (5 * 1024 * 1024)
        with pytest.raises(BackendProtocolError, match="larger than"):
            backend.lookup(sn("BOUND1"))


def test_business_rate_limit_code_is_unavailable() -> None:
    with pax() as (sim, backend):
        sim.answer_next(
            "/terminal",
            Response.json(200, {"businessCode": 13103, "message": "slow down"}),
        )
        with pytest.raises(BackendUnavailable, match="13103"):
            backend.lookup(sn("BOUND1"))


# -- hostile answers ---------------------------------------------------------------------------

HOSTILE = [
    Response(200, b'{"businessCode":0,"data":{}}', "text/html"),
    Response.json(200, [1, 2, 3]),
    Response.json(200, {"businessCode": "zero"}),
    Response.json(200, {"businessCode": 0, "data": "a string"}),
    Response.json(200, {"businessCode": 0, "data": {"serialNo": "OTHER"}}),
    Response.json(400, {"businessCode": 0}),
    Response(200, b'{"businessCode":' + b"9" * 5000 + b"}", "application/json"),
    Response(200, b"[" * 100_000, "application/json"),
    Response.json(200, {"businessCode": 113, "message": "bad parameter"}),
]


@pytest.mark.parametrize("answer", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_envelopes_are_protocol_errors(answer: Response) -> None:
    with pax() as (sim, backend):
        sim.answer_next("/terminal", answer)
        with pytest.raises(BackendProtocolError) as caught:
            backend.lookup(sn("BOUND1"))
    assert "\n" not in str(caught.value) and str(caught.value).startswith("paxstore:")


def test_hostile_fields_stay_unknown_or_cleaned() -> None:
    data = {
        "serialNo": "BOUND1",
        "status": "A\u202e",
        "merchantName": ["not", "a", "name"],
        "resellerName": 12,
        "modelName": "\x1b[2JA920\u202eevil",
        "id": 10**40,
        "lastAccessTime": 1e300,
        "installedFirmware": "not an object",
    }
    with pax() as (sim, backend):
        sim.answer_next("/terminal", Response.json(200, {"businessCode": 0, "data": data}))
        sim.answer_next(
            "/terminals/network",
            Response.json(200, {"businessCode": 0, "data": {"battery": True, "onlineStatus": 9}}),
        )
        record = backend.lookup(sn("BOUND1"))
    assert record.binding is Binding.UNKNOWN
    assert record.merchant is None and record.store is None and record.backend_id is None
    assert record.last_seen is None and record.firmware is None
    assert record.model is not None and "\x1b" not in record.model and "\u202e" not in record.model
    assert (record.online, record.battery_pct) == (None, None)


def test_server_message_never_echoes_credentials() -> None:
    with pax() as (sim, backend):
        message = f"bad key {sim.key} secret {sim.secret.lower()}"
        sim.answer_next("/terminal", Response.json(400, {"businessCode": 4242, "message": message}))
        with pytest.raises(BackendRefused) as caught:
            backend.lookup(sn("BOUND1"))
    assert caught.value.code == "4242"
    assert sim.key not in str(caught.value) and sim.secret.lower() not in str(caught.value)
    assert "***" in str(caught.value)


def test_html_401_is_an_auth_error() -> None:
    with pax() as (sim, backend):
        sim.answer_next("/terminal", Response(401, b"<html>denied</html>", "text/html"))
        with pytest.raises(BackendAuthError, match="HTTP 401"):
            backend.lookup(sn("BOUND1"))


# -- the client's other endpoints --------------------------------------------------------------


def test_search_follows_pages_within_a_bound() -> None:
    with pax() as (sim, backend):
        every = backend.client.search(limit=2)
        calls = len(sim.api_log)
        cut = backend.client.search(limit=2, max_pages=2)
        active = backend.client.search(status="A", limit=100)
    assert len(every.terminals) == len(SEEDS) and every.total == len(SEEDS)
    assert not every.truncated and calls == 4
    assert cut.truncated and len(cut.terminals) == 4
    assert {t["serialNo"] for t in active.terminals} == {
        "BOUND1",
        "DEPOT1",
        "LOCKED1",
        "LOCKING1",
        "AWAY1",
    }


def test_activate_and_restart() -> None:
    with pax() as (sim, backend):
        backend.client.activate("FREE1")
        assert sim.terminals["FREE1"].extra["status"] == "A"
        with pytest.raises(BackendRefused) as caught:
            backend.client.activate("FREE1")
        backend.client.operation("BOUND1", "Restart")
        assert sim.counts["command_restart"] == 1
    assert caught.value.code == "1893" and "already activated" in str(caught.value)
