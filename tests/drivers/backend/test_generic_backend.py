"""The generic connector with the shipped example profile, against the generic simulator.

Everything goes over real HTTP on 127.0.0.1: the simulator verifies each request's MD5
signature, so every passing call also proves the connector signs as the profile says.
"""

from __future__ import annotations

import pytest

from posdiag.drivers.backend.config import parse_backends
from posdiag.drivers.backend.generic import GenericBackend
from posdiag.drivers.backend.model import (
    BackendAuthError,
    BackendConfigError,
    BackendProtocolError,
    BackendRecord,
    BackendRefused,
    BackendUnavailable,
    Binding,
    ChangeStatus,
    TerminalKey,
)
from posdiag.drivers.backend.registry import open_backend
from posdiag.simulators.backend.generic import (
    MERCHANT_NAME,
    MERCHANT_NO,
    GenericPlatformSimulator,
)
from posdiag.simulators.backend.server import Request, Response

SEED = "SN1=bound SN2=unbound SN3=disabled SN4=CHANGE_BIND SN5=FORCED_UNBIND"


def sim(seed: str = SEED, **kwargs: object) -> GenericPlatformSimulator:
    kwargs.setdefault("retry_after", "0")
    return GenericPlatformSimulator.seeded(seed, **kwargs)


def connect(simulator: GenericPlatformSimulator, extra: str = "", **replace: str) -> GenericBackend:
    text = simulator.backends_toml("agentplat") + extra
    for old, new in replace.items():
        text = text.replace(old, new)
    backend = open_backend(parse_backends(text)[0])
    assert isinstance(backend, GenericBackend)
    return backend


def no_merchant_in_clear(*things: object) -> None:
    text = " ".join(repr(t) for t in things)
    assert MERCHANT_NO not in text and MERCHANT_NO[:-4] not in text
    assert MERCHANT_NAME not in text and "深圳" not in text


@pytest.mark.parametrize(
    ("serial", "binding", "raw"),
    [
        ("SN1", Binding.BOUND, "BINDED"),
        ("SN2", Binding.UNBOUND, "UN_BIND"),
        ("SN3", Binding.DISABLED, "LOCKED"),
        ("SN4", Binding.BOUND, "CHANGE_BIND"),
        ("SN5", Binding.UNBOUND, "FORCED_UNBIND"),
    ],
)
def test_lookup_maps_raw_states_through_the_profile(
    serial: str, binding: Binding, raw: str
) -> None:
    with sim() as platform:
        record = connect(platform).lookup(TerminalKey(serial))
    assert record.binding is binding
    assert record.status == raw
    assert record.backend == "agentplat" and record.kind == "generic"
    facts = [e.fact for e in record.evidence]
    assert "profile not verified against the platform" in facts
    assert any(f"{raw!r} → {binding.value}" in fact for fact in facts)
    no_merchant_in_clear(record)


def test_bound_record_fields_and_masked_merchant() -> None:
    with sim() as platform:
        record = connect(platform).lookup(TerminalKey("SN1"))
    assert record.merchant == "****" + MERCHANT_NO[-4:]
    assert record.backend_id == platform.terminals["SN1"].backend_id
    assert record.model == "MP35P"
    facts = " ".join(e.fact for e in record.evidence)
    assert "bound at 2024-03-01 10:00:00" in facts and "activated at" in facts
    no_merchant_in_clear(record)


def test_unknown_unit_is_unknown_with_the_platforms_words() -> None:
    with sim() as platform:
        record = connect(platform).lookup(TerminalKey("NOPE"))
    assert record.binding is Binding.UNKNOWN
    assert any("1001" in e.fact and "不存在" in e.fact for e in record.evidence)


def test_unmapped_raw_state_is_unknown_and_says_so() -> None:
    with sim() as platform:
        platform.terminals["SN1"].extra["raw_state"] = "MYSTERY_STATE"
        record = connect(platform).lookup(TerminalKey("SN1"))
    assert record.binding is Binding.UNKNOWN and record.status == "MYSTERY_STATE"
    assert any("not in profile" in e.fact for e in record.evidence)


def test_tusn_only_key_is_refused_when_the_profile_has_no_tusn_field() -> None:
    with sim() as platform:
        with pytest.raises(BackendRefused, match="serial number"):
            connect(platform).lookup(TerminalKey(tusn="00005702280117638929"))
        assert platform.counts.get("op.query", 0) == 0


def test_release_done_then_already() -> None:
    with sim() as platform:
        backend = connect(platform)
        result = backend.release(TerminalKey("SN1"))
        assert result.status is ChangeStatus.DONE and result.confirmed
        assert result.requests == ("POST /unBindMaterials",)
        assert result.before.binding is Binding.BOUND
        assert result.after is not None and result.after.binding is Binding.UNBOUND
        assert platform.terminals["SN1"].released_device_owner
        no_merchant_in_clear(result)
        again = backend.release(TerminalKey("SN1"))
        assert again.status is ChangeStatus.ALREADY and again.requests == ()
        assert platform.counts["op.unbind"] == 1


def test_release_of_unknown_unit_is_refused_without_sending() -> None:
    with sim() as platform:
        result = connect(platform).release(TerminalKey("NOPE"))
        assert result.status is ChangeStatus.REFUSED and result.requests == ()
        assert platform.counts.get("op.unbind", 0) == 0


def test_release_of_locked_unit_is_refused_with_the_code() -> None:
    with sim() as platform:
        result = connect(platform).release(TerminalKey("SN3"))
    assert result.status is ChangeStatus.REFUSED
    assert "1200" in result.detail and "不能解绑" in result.detail
    assert result.requests == ("POST /unBindMaterials",)


def test_release_pending_until_the_terminal_syncs() -> None:
    with sim(faults={"release_pending": 2}) as platform:
        backend = connect(platform)
        result = backend.release(TerminalKey("SN1"))
        assert result.status is ChangeStatus.PENDING and not result.confirmed
        assert "still shows BINDED" in result.detail
        assert backend.lookup(TerminalKey("SN1")).binding is Binding.UNBOUND


class RacingSimulator(GenericPlatformSimulator):
    """The merchant unbinds in the platform's app between our lookup and our unbind."""

    def route(self, request: Request) -> Response:
        if request.path == self.profile.unbind.path:
            for terminal in self.terminals.values():
                terminal.state, terminal.merchant = "unbound", None
        return super().route(request)


def test_already_code_from_unbind_counts_as_already_after_confirming() -> None:
    with RacingSimulator.seeded("SN1=bound", retry_after="0") as platform:
        result = connect(platform).release(TerminalKey("SN1"))
    assert result.status is ChangeStatus.ALREADY
    assert "1102" in result.detail
    assert result.requests == ("POST /unBindMaterials",)
    assert result.after is not None and result.after.binding is Binding.UNBOUND


def test_report_lost_done_then_already() -> None:
    with sim() as platform:
        backend = connect(platform)
        result = backend.report_lost(TerminalKey("SN1"), "stolen\x1b[2J at the depot")
        assert result.status is ChangeStatus.DONE
        assert result.requests == ("POST /lockMaterials",)
        assert result.after is not None and result.after.binding is Binding.DISABLED
        assert platform.terminals["SN1"].lost_reason == "stolen at the depot"
        no_merchant_in_clear(result)
        again = backend.report_lost(TerminalKey("SN1"), "stolen")
        assert again.status is ChangeStatus.ALREADY and again.requests == ()


def test_report_lost_of_unknown_unit_is_refused() -> None:
    with sim() as platform:
        result = connect(platform).report_lost(TerminalKey("NOPE"), "lost")
        assert result.status is ChangeStatus.REFUSED
        assert platform.counts.get("op.lock", 0) == 0


def test_wrong_secret_is_an_auth_error_without_the_secret() -> None:
    with sim() as platform:
        backend = connect(platform, **{platform.secret: "wrong-secret-123"})
        with pytest.raises(BackendAuthError) as caught:
            backend.lookup(TerminalKey("SN1"))
        assert platform.counts["bad_signatures"] == 1
    message = str(caught.value)
    assert "agentplat" in message and "99" in message and "签名错误" in message
    assert "wrong-secret-123" not in message and platform.secret not in message
    assert "\n" not in message


def test_bad_signature_fault_is_an_auth_error() -> None:
    with sim(faults={"bad_signature": 1}) as platform:
        backend = connect(platform)
        with pytest.raises(BackendAuthError):
            backend.lookup(TerminalKey("SN1"))
        assert backend.lookup(TerminalKey("SN1")).binding is Binding.BOUND


def test_wrong_agent_is_an_auth_error() -> None:
    with sim() as platform:
        backend = connect(platform, **{platform.agent_no: "A999"})
        with pytest.raises(BackendAuthError, match="代理商不存在"):
            backend.lookup(TerminalKey("SN1"))


def test_garbage_is_a_protocol_error() -> None:
    with sim(faults={"garbage": 1}) as platform:
        backend = connect(platform)
        with pytest.raises(BackendProtocolError, match="agentplat"):
            backend.lookup(TerminalKey("SN1"))
        assert backend.lookup(TerminalKey("SN1")).binding is Binding.BOUND


def test_429_is_retried_honouring_retry_after() -> None:
    with sim(faults={"rate_limit": 2}) as platform:
        record = connect(platform).lookup(TerminalKey("SN1"))
        assert record.binding is Binding.BOUND
        assert platform.counts["rate_limited"] == 2
        assert platform.counts["op.query"] == 1


def test_429_past_the_retries_is_unavailable() -> None:
    with sim(faults={"rate_limit": 5}) as platform:
        with pytest.raises(BackendUnavailable, match="rate-limited"):
            connect(platform, "retries = 1\n").lookup(TerminalKey("SN1"))
        assert platform.counts.get("op.query", 0) == 0


def test_503_is_retried() -> None:
    with sim(faults={"server_error": 1}) as platform:
        assert connect(platform).lookup(TerminalKey("SN1")).binding is Binding.BOUND
        assert platform.counts["server_errors"] == 1


def test_report_lost_without_a_lock_operation_raises_refused(tmp_path: object) -> None:
    from pathlib import Path

    from posdiag.drivers.backend.generic.profile import PROFILES_DIR

    text = (PROFILES_DIR / "example-agent-platform.toml").read_text(encoding="utf-8")
    head, _, tail = text.partition("[operations.lock]")
    lockless = head + "[states]" + tail.split("[states]", 1)[1]
    path = Path(str(tmp_path)) / "lockless.toml"
    path.write_text(lockless, encoding="utf-8")
    with sim("SN1=bound", profile=path) as platform:
        with pytest.raises(BackendRefused, match="no lost/lock operation") as caught:
            connect(platform).report_lost(TerminalKey("SN1"), "lost")
        assert platform.requests == []
    assert "agentplat" in str(caught.value)


@pytest.mark.parametrize(
    ("drop", "fragment"),
    [
        ('profile = "example-agent-platform"\n', "'profile'"),
        ('agent_no = "A100000001"\n', "'agent_no'"),
        ('secret = "sim-md5-key-9f3c2a7e51b84d06"\n', "'secret'"),
    ],
)
def test_missing_settings_are_one_line_config_errors(drop: str, fragment: str) -> None:
    with sim() as platform:
        text = platform.backends_toml("agentplat")
        assert drop in text
        with pytest.raises(BackendConfigError) as caught:
            open_backend(parse_backends(text.replace(drop, ""))[0])
    assert fragment in str(caught.value) and "agentplat" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_profile_name_is_a_config_error_naming_the_backend() -> None:
    with sim() as platform:
        text = platform.backends_toml("agentplat").replace(
            "example-agent-platform", "no-such-platform"
        )
        with pytest.raises(BackendConfigError, match=r"agentplat.*no shipped profile"):
            open_backend(parse_backends(text)[0])


def test_records_are_plain_backend_records() -> None:
    with sim() as platform:
        backend = connect(platform)
        assert isinstance(backend.lookup(TerminalKey("SN2")), BackendRecord)
        backend.close()
