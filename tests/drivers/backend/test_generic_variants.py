"""The generic connector with other profile shapes: form body + HMAC + TUSN, RSA, hostile answers.

Each profile is written to a temporary file that both the simulator and the connector read, as
a depot would ship one; the simulator verifies the request signatures and signs its answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.backend.config import parse_backends
from posdiag.drivers.backend.generic import GenericBackend
from posdiag.drivers.backend.model import (
    BackendAuthError,
    BackendConfigError,
    BackendError,
    BackendProtocolError,
    BackendRefused,
    Binding,
    ChangeStatus,
    TerminalKey,
)
from posdiag.drivers.backend.registry import open_backend
from posdiag.simulators.backend.generic import MERCHANT_NO, GenericPlatformSimulator
from posdiag.simulators.backend.server import Request, Response, SimTerminal

TUSN = "00005702280117638929"

FORM_PROFILE = """
name = "form-platform"
verified = true

[transport]
body = "form"
success_field = "head.retCode"
success_values = ["000000"]
message_field = "head.retMsg"
auth_codes = ["E0001"]
constants = { version = "1.0" }

[signing]
scheme = "hmac-sha256-sorted"
case = "lower"
url_encode = true
timestamp_field = "reqTime"
timestamp_format = "%Y%m%d%H%M%S"
agent_field = "orgId"
nonce_field = "nonce"
verify_response = true

[operations.query]
path = "/api/v1/term/query"
request = { sn_field = "termSn", tusn_field = "tusn" }

[operations.query.response]
state = "body.term.state"
merchant_no = "body.term.merNo"
merchant_name = "body.term.merName"
terminal_no = "body.term.termNo"
sn = "body.term.termSn"
tusn = "body.term.tusn"

[operations.unbind]
path = "/api/v1/term/op"
request = { sn_field = "termSn", tusn_field = "tusn", constants = { opType = "UNBIND" } }
already_messages = ["未绑定"]

[operations.lock]
path = "/api/v1/term/op"
request = { sn_field = "termSn", constants = { opType = "LOCK" } }

[states]
"1" = "bound"
"0" = "unbound"
"9" = "disabled"
"""

RSA_PROFILE = """
name = "rsa-platform"
verified = true

[transport]
success_field = "code"
success_values = ["00"]
message_field = "msg"
auth_codes = ["401"]

[signing]
scheme = "sha256withrsa-sorted"
field = "sign"
timestamp_field = "timestamp"
timestamp_format = "unix"
agent_field = "appId"
verify_response = true

[operations.query]
path = "/materialsDataQuery"
request = { sn_field = "materialsNo" }
not_found_codes = ["1001"]

[operations.query.response]
state = "data.bindStatus"
merchant_no = "data.customerNo"

[operations.unbind]
path = "/unBindMaterials"
request = { sn_field = "materialsNo" }
already_codes = ["1102"]

[states]
BINDED = "bound"
UN_BIND = "unbound"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def connect(simulator: GenericPlatformSimulator, extra: str = "") -> GenericBackend:
    backend = open_backend(parse_backends(simulator.backends_toml("plat") + extra)[0])
    assert isinstance(backend, GenericBackend)
    return backend


def form_sim(tmp_path: Path, **kwargs: Any) -> GenericPlatformSimulator:
    platform = GenericPlatformSimulator(
        profile=write(tmp_path, "form.toml", FORM_PROFILE), retry_after="0", **kwargs
    )
    platform.add(
        SimTerminal("NL0001", merchant=MERCHANT_NO, tusn=TUSN, extra={"merchant_name": "某店"})
    )
    platform.add(SimTerminal("NL0002", state="unbound", merchant=None))
    return platform


def test_form_hmac_lookup_by_tusn_then_release_by_tusn(tmp_path: Path) -> None:
    with form_sim(tmp_path) as platform:
        backend = connect(platform)
        record = backend.lookup(TerminalKey(tusn=TUSN))
        assert record.binding is Binding.BOUND and record.status == "1"
        assert record.merchant == "****" + MERCHANT_NO[-4:]
        assert "某店" not in repr(record)
        result = backend.release(TerminalKey(tusn=TUSN))
        assert result.status is ChangeStatus.DONE
        assert result.requests == ("POST /api/v1/term/op",)
        assert platform.terminals["NL0001"].state == "unbound"


@pytest.mark.parametrize(
    ("state", "binding", "raw"),
    [
        ("bound", Binding.BOUND, "1"),
        ("unbound", Binding.UNBOUND, "0"),
        ("disabled", Binding.DISABLED, "9"),
    ],
)
def test_lookup_by_tusn_in_every_state(
    tmp_path: Path, state: str, binding: Binding, raw: str
) -> None:
    with form_sim(tmp_path) as platform:
        platform.terminals["NL0001"].state = state
        record = connect(platform).lookup(TerminalKey(tusn=TUSN))
    assert record.binding is binding and record.status == raw
    assert record.key == TerminalKey(tusn=TUSN)


def test_form_lookup_by_serial_and_unknown_tusn(tmp_path: Path) -> None:
    with form_sim(tmp_path) as platform:
        backend = connect(platform)
        assert backend.lookup(TerminalKey("NL0002")).binding is Binding.UNBOUND
        unknown = backend.lookup(TerminalKey(tusn="99999999999999999999"))
        assert unknown.binding is Binding.UNKNOWN  # success with an empty record: no code listed
        assert any("no record" in e.fact for e in unknown.evidence)
        # A verified profile adds no "not verified" evidence.
        assert not any("not verified" in e.fact for e in unknown.evidence)


def test_shared_path_operations_are_told_apart_by_their_constants(tmp_path: Path) -> None:
    with form_sim(tmp_path) as platform:
        backend = connect(platform)
        lost = backend.report_lost(TerminalKey("NL0001"), "lost")
        assert lost.status is ChangeStatus.DONE and lost.requests == ("POST /api/v1/term/op",)
        assert platform.counts["op.lock"] == 1 and "op.unbind" not in platform.counts


def test_label_disagreeing_with_the_platform_is_a_protocol_error(tmp_path: Path) -> None:
    with form_sim(tmp_path) as platform, pytest.raises(BackendProtocolError, match="NL0001"):
        connect(platform).lookup(TerminalKey(serial="OTHER01", tusn=TUSN))


class AlreadyByMessage(GenericPlatformSimulator):
    """The unit is unbound by someone else just before our unbind arrives."""

    def route(self, request: Request) -> Response:
        if request.path == self.profile.unbind.path and b"UNBIND" in request.body:
            self.terminals["NL0001"].state = "unbound"
            self.terminals["NL0001"].merchant = None
        return super().route(request)


def test_already_message_counts_as_already(tmp_path: Path) -> None:
    platform = AlreadyByMessage(profile=write(tmp_path, "f.toml", FORM_PROFILE))
    platform.add(SimTerminal("NL0001", merchant=MERCHANT_NO))
    with platform:
        result = connect(platform).release(TerminalKey("NL0001"))
    assert result.status is ChangeStatus.ALREADY and "未绑定" in result.detail


def test_bad_signature_fault_maps_the_profiles_auth_code(tmp_path: Path) -> None:
    with (
        form_sim(tmp_path, faults={"bad_signature": 1}) as platform,
        pytest.raises(BackendAuthError, match="E0001"),
    ):
        connect(platform).lookup(TerminalKey("NL0001"))


def test_rsa_profile_end_to_end(tmp_path: Path) -> None:
    platform = GenericPlatformSimulator.seeded(
        "R1=bound R2=unbound", profile=write(tmp_path, "rsa.toml", RSA_PROFILE)
    )
    with platform:
        text = platform.backends_toml("plat")
        assert "BEGIN PRIVATE KEY" in text and "secret" not in text
        backend = connect(platform)
        assert backend.lookup(TerminalKey("R2")).binding is Binding.UNBOUND
        assert backend.release(TerminalKey("R1")).status is ChangeStatus.DONE
        assert backend.lookup(TerminalKey("NOPE")).binding is Binding.UNKNOWN
        with pytest.raises(BackendRefused, match="no lost/lock"):
            backend.report_lost(TerminalKey("R1"), "lost")


def test_rsa_answer_signed_by_another_key_is_an_auth_error(tmp_path: Path) -> None:
    platform = GenericPlatformSimulator.seeded(
        "R1=bound", profile=write(tmp_path, "rsa.toml", RSA_PROFILE)
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    key_file = write(tmp_path, "platform.pem", other_pem)
    with platform:
        text = platform.backends_toml("plat")
        start = text.index("platform_public_key = '''")
        text = text[:start] + f'platform_public_key_file = "{key_file}"\n'
        backend = open_backend(parse_backends(text)[0])
        with pytest.raises(BackendAuthError, match="signature does not verify"):
            backend.lookup(TerminalKey("R1"))


def test_rsa_profile_without_private_key_is_a_config_error(tmp_path: Path) -> None:
    platform = GenericPlatformSimulator(profile=write(tmp_path, "rsa.toml", RSA_PROFILE))
    text = platform.backends_toml("plat")
    start = text.index("private_key = '''")
    end = text.index("platform_public_key = ")
    with pytest.raises(BackendConfigError, match="private_key"):
        open_backend(parse_backends(text[:start] + text[end:])[0])
    broken = text[:start] + "private_key = 'not a key'\n" + text[end:]
    with pytest.raises(BackendConfigError, match="private key") as caught:
        open_backend(parse_backends(broken)[0])
    assert "not a key" not in str(caught.value)
    without_public = text[:end]
    with pytest.raises(BackendConfigError, match="platform_public_key"):
        open_backend(parse_backends(without_public)[0])


def test_profile_path_the_platform_lacks_is_a_config_error(tmp_path: Path) -> None:
    with form_sim(tmp_path) as platform:
        moved = write(tmp_path, "moved.toml", FORM_PROFILE.replace("/api/v1/term/query", "/v2/q"))
        text = platform.backends_toml("plat").replace(str(tmp_path / "form.toml"), str(moved))
        backend = open_backend(parse_backends(text)[0])
        with pytest.raises(BackendConfigError, match=r"operations\.query\.path"):
            backend.lookup(TerminalKey("NL0001"))


class Scripted(GenericPlatformSimulator):
    """Answers the next API call with a scripted body (a hostile or broken platform)."""

    script: list[tuple[int, bytes]]

    def route(self, request: Request) -> Response:
        if self.script:
            status, body = self.script.pop(0)
            return Response(status, body, "application/json")
        return super().route(request)


def scripted(*answers: tuple[int, bytes]) -> Scripted:
    platform = Scripted.seeded("SN1=bound", retry_after="0")
    platform.script = list(answers)
    return platform


def doc(payload: object) -> tuple[int, bytes]:
    return 200, json.dumps(payload, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (doc([1, 2, 3]), BackendProtocolError),
        (doc({"msg": "no code"}), BackendProtocolError),
        (doc({"code": {"nested": 1}}), BackendProtocolError),
        (doc({"code": "00", "data": {"bindStatus": {"x": 1}}}), BackendProtocolError),
        (doc({"code": "00", "data": {"other": 1}}), BackendProtocolError),
        (
            doc({"code": "00", "data": {"bindStatus": "BINDED", "materialsNo": "ELSE"}}),
            BackendProtocolError,
        ),
        (doc({"code": "7777", "msg": "\x1b[31m系统繁忙"}), BackendRefused),
        (doc({"code": "99", "msg": "签名错误"}), BackendAuthError),
        ((200, b'{"code": "00", "data": ' + b"[" * 100_000 + b"]"), BackendProtocolError),
        ((200, b'{"code": 1' + b"0" * 5000 + b"}"), BackendProtocolError),
        ((200, b"\xff\xfe"), BackendProtocolError),
        ((400, b"<html>bad request</html>"), BackendProtocolError),
        ((500, b"oops"), BackendError),
        ((401, b""), BackendAuthError),
    ],
)
def test_hostile_answers_become_typed_errors(
    answer: tuple[int, bytes], error: type[BackendError]
) -> None:
    with scripted(answer) as platform, pytest.raises(error) as caught:
        connect(platform, "retries = 0\n").lookup(TerminalKey("SN1"))
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


def test_numeric_codes_and_empty_data() -> None:
    with scripted(doc({"code": "00", "data": None}), doc({"code": 0})) as platform:
        backend = connect(platform)
        assert backend.lookup(TerminalKey("SN1")).binding is Binding.UNKNOWN
        with pytest.raises(BackendRefused):  # 0 is not "00"
            backend.lookup(TerminalKey("SN1"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ENVELOPES = st.fixed_dictionaries(
    {"code": st.sampled_from(["00", "1001", "99", 0, None, "x"]) | JSON},
    optional={
        "msg": JSON,
        "data": JSON
        | st.fixed_dictionaries(
            {},
            optional={
                "bindStatus": st.sampled_from(["BINDED", "UN_BIND", "LOCKED", "?"]) | JSON,
                "customerNo": JSON,
                "materialsNo": st.just("SN1") | JSON,
                "terminalNo": JSON,
            },
        ),
    },
)


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[Scripted, GenericBackend]]:
    with scripted() as platform:
        yield platform, connect(platform, "retries = 0\n")


@settings(max_examples=120, deadline=None)
@given(document=JSON | ENVELOPES)
def test_any_json_answer_is_a_record_or_a_typed_error(
    hostile: tuple[Scripted, GenericBackend], document: object
) -> None:
    platform, backend = hostile
    platform.script = [doc(document)]
    try:
        record = backend.lookup(TerminalKey("SN1"))
    except BackendError as exc:
        assert "\n" not in str(exc)
        return
    assert not platform.script
    assert record.merchant is None or record.merchant.startswith("****")
    assert record.binding in tuple(Binding)
