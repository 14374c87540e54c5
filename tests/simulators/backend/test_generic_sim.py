"""The generic platform simulator from the wire: raw HTTP requests, signed (or not) by hand.

The request signatures here are computed with hashlib directly, not with the connector, so the
simulator's verification is checked independently of the code it serves.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from posdiag.drivers.backend.config import parse_backends
from posdiag.drivers.backend.generic.profile import load_profile
from posdiag.drivers.backend.generic.signing import SigningKeys, SignSpec, verify
from posdiag.drivers.errors import AddressError
from posdiag.simulators.backend.generic import (
    DEFAULT_SECRET,
    MERCHANT_NAME,
    GenericPlatformSimulator,
    parse_seed,
)

AGENT = "A100000001"


def md5_signed(params: dict[str, str], secret: str = DEFAULT_SECRET) -> dict[str, str]:
    """The [C5] recipe by hand: sorted non-empty k=v&…&key=SECRET, MD5, uppercase."""
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] != "")
    digest = hashlib.md5(f"{text}&key={secret}".encode()).hexdigest().upper()
    return {**params, "sign": digest}


def post(sim: GenericPlatformSimulator, path: str, params: dict[str, str]) -> httpx.Response:
    body = json.dumps(params, ensure_ascii=False).encode()
    return httpx.post(
        sim.api_url + path, content=body, headers={"content-type": "application/json"}
    )


def query(sim: GenericPlatformSimulator, serial: str) -> dict[str, Any]:
    params = md5_signed({"agentNo": AGENT, "materialsNo": serial, "timestamp": "1700000000"})
    answer = post(sim, "/materialsDataQuery", params)
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def answer_signature_ok(document: dict[str, Any]) -> bool:
    return verify(
        SignSpec(scheme="md5-sorted"),
        SigningKeys(secret=DEFAULT_SECRET),
        document,
        document.get("sign"),
    )


def test_query_answers_in_the_profiles_envelope_signed() -> None:
    with GenericPlatformSimulator.seeded("SN1=bound SN2=unbound") as sim:
        bound = query(sim, "SN1")
        unbound = query(sim, "SN2")
    assert bound["code"] == "00" and bound["msg"] == "成功"
    assert bound["data"]["bindStatus"] == "BINDED"
    assert bound["data"]["customerName"] == MERCHANT_NAME
    assert bound["data"]["materialsNo"] == "SN1"
    assert unbound["data"]["bindStatus"] == "UN_BIND" and unbound["data"]["customerNo"] is None
    assert answer_signature_ok(bound) and answer_signature_ok(unbound)
    assert not answer_signature_ok({**bound, "msg": "tampered"})


def test_unknown_unit_gets_the_not_found_code() -> None:
    with GenericPlatformSimulator() as sim:
        document = query(sim, "NOPE")
    assert document["code"] == "1001" and "不存在" in document["msg"]


def test_bad_signature_gets_code_99() -> None:
    with GenericPlatformSimulator.seeded("SN1=bound") as sim:
        params = md5_signed({"agentNo": AGENT, "materialsNo": "SN1"}, secret="wrong")
        document = post(sim, "/materialsDataQuery", params).json()
        assert document["code"] == "99" and document["msg"] == "签名错误"
        unsigned = post(sim, "/materialsDataQuery", {"agentNo": AGENT, "materialsNo": "SN1"})
        assert unsigned.json()["code"] == "99"
        tampered = {**md5_signed({"agentNo": AGENT, "materialsNo": "SN1"}), "materialsNo": "X"}
        assert post(sim, "/materialsDataQuery", tampered).json()["code"] == "99"
        assert sim.counts["bad_signatures"] == 3


def test_bad_signature_fault_refuses_a_good_signature_once() -> None:
    with GenericPlatformSimulator.seeded("SN1=bound", faults={"bad_signature": 1}) as sim:
        params = md5_signed({"agentNo": AGENT, "materialsNo": "SN1"})
        assert post(sim, "/materialsDataQuery", params).json()["code"] == "99"
        assert post(sim, "/materialsDataQuery", params).json()["code"] == "00"


def test_wrong_agent_is_refused_even_when_signed() -> None:
    with GenericPlatformSimulator.seeded("SN1=bound") as sim:
        params = md5_signed({"agentNo": "A2", "materialsNo": "SN1"})
        document = post(sim, "/materialsDataQuery", params).json()
    assert document["code"] == "99" and "代理商" in document["msg"]


def test_unbind_lock_and_already_codes_change_state() -> None:
    with GenericPlatformSimulator.seeded("SN1=bound SN2=bound") as sim:
        unbind = md5_signed({"agentNo": AGENT, "materialsNo": "SN1"})
        assert post(sim, "/unBindMaterials", unbind).json()["code"] == "00"
        assert sim.terminals["SN1"].state == "unbound" and sim.terminals["SN1"].merchant is None
        assert post(sim, "/unBindMaterials", unbind).json()["code"] == "1102"
        lock = md5_signed({"agentNo": AGENT, "materialsNo": "SN2", "remark": "被盗"})
        assert post(sim, "/lockMaterials", lock).json()["code"] == "00"
        assert sim.terminals["SN2"].state == "disabled"
        assert sim.terminals["SN2"].lost_reason == "被盗"
        assert query(sim, "SN2")["data"]["bindStatus"] == "LOCKED"
        assert post(sim, "/lockMaterials", lock).json()["code"] == "1103"
        refused = md5_signed({"agentNo": AGENT, "materialsNo": "SN2"})
        assert post(sim, "/unBindMaterials", refused).json()["code"] == "1200"


def test_release_pending_reports_bound_until_the_lookups_pass_and_sync_sees_it() -> None:
    with GenericPlatformSimulator.seeded("SN1=bound", faults={"release_pending": 2}) as sim:
        unbind = md5_signed({"agentNo": AGENT, "materialsNo": "SN1"})
        assert post(sim, "/unBindMaterials", unbind).json()["code"] == "00"
        assert sim.terminals["SN1"].state == "pending"
        assert query(sim, "SN1")["data"]["bindStatus"] == "BINDED"
        assert query(sim, "SN1")["data"]["bindStatus"] == "UN_BIND"
        sync = httpx.get(sim.base_url + "/_sim/device/sync", params={"serial": "SN1"}).json()
        assert sync["release_device_owner"] is True


def test_http_errors_and_malformed_bodies() -> None:
    with GenericPlatformSimulator() as sim:
        assert httpx.post(sim.api_url + "/nowhere", content=b"{}").status_code == 404
        assert httpx.get(sim.api_url + "/materialsDataQuery").status_code == 405
        garbage = httpx.post(sim.api_url + "/materialsDataQuery", content=b"\xff{")
        assert garbage.status_code == 200 and garbage.json()["code"] == "1000"
        array = httpx.post(sim.api_url + "/materialsDataQuery", content=b"[1]")
        assert array.json()["code"] == "1000"
        empty = post(sim, "/materialsDataQuery", md5_signed({"agentNo": AGENT}))
        assert empty.json()["code"] == "1000"


def test_rate_limit_answers_429_in_the_envelope_with_retry_after() -> None:
    with GenericPlatformSimulator(faults={"rate_limit": 1}, retry_after="0") as sim:
        answer = post(sim, "/materialsDataQuery", {})
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "0" and answer.json()["code"] == "429"


def test_faults_are_validated() -> None:
    assert {"bad_signature", "release_pending", "garbage"} <= set(GenericPlatformSimulator.FAULTS)
    with pytest.raises(AddressError, match="bad_sig"):
        GenericPlatformSimulator(faults={"bad_sig": 1})


def test_seed_states_and_errors() -> None:
    profile = load_profile("example-agent-platform")
    units = parse_seed(["A=bound", "B=unbound", "C=disabled", "D=FORCED_UNBIND"], profile)
    assert [u.state for u in units] == ["bound", "unbound", "disabled", "unbound"]
    assert units[3].extra["raw_state"] == "FORCED_UNBIND"
    assert units[0].extra["merchant_name"] == MERCHANT_NAME and units[1].merchant is None
    for bad in ("A", "A=", "=bound", "A=lost", "A=binded"):
        with pytest.raises(AddressError):
            parse_seed(bad, profile)


def test_backends_toml_is_a_working_section() -> None:
    with GenericPlatformSimulator(agent_no="AG-7") as sim:
        text = sim.backends_toml("lakala-like")
        (config,) = parse_backends(text)
    assert config.name == "lakala-like" and config.kind == "generic"
    assert config.url == sim.api_url
    assert config.settings["agent_no"] == "AG-7"
    assert config.settings["secret"] == DEFAULT_SECRET
    assert config.settings["profile"] == "example-agent-platform"
    assert DEFAULT_SECRET not in repr(config)
