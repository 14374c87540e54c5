"""Platform profiles: the shipped example loads, and every mistake is one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.backend.generic.profile import (
    PROFILES_DIR,
    load_profile,
    parse_profile,
    shipped_profiles,
)
from posdiag.drivers.backend.model import BackendConfigError, Binding

BASE = """
name = "test-platform"
verified = true

[transport]
body = "json"
success_field = "code"
success_values = ["00"]
message_field = "msg"
auth_codes = ["99"]

[signing]
scheme = "md5-sorted"
field = "sign"
timestamp_field = "timestamp"
timestamp_format = "unix_ms"
agent_field = "agentNo"

[operations.query]
path = "/query"
request = { sn_field = "sn" }
not_found_codes = ["1001"]

[operations.query.response]
state = "data.status"

[operations.unbind]
path = "/unbind"
request = { sn_field = "sn" }
already_codes = ["1102"]

[operations.lock]
path = "/lock"
request = { sn_field = "sn", reason_field = "remark" }

[states]
B = "bound"
U = "unbound"
D = "disabled"
"""


def test_base_profile_is_valid() -> None:
    profile = parse_profile(BASE, "base.toml")
    assert profile.query.response == {"state": "data.status"}
    assert profile.lock is not None and profile.lock.reason_field == "remark"
    assert profile.binding_of("b") is Binding.BOUND  # case-insensitive fallback
    assert profile.binding_of("X") is None
    assert profile.raw_state(Binding.DISABLED) == "D"


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('name = "test-platform"', 'name = "bad name!"', "name"),
        ("verified = true", 'verified = "yes"', "verified"),
        ("verified = true", "", "verified is missing"),
        ('body = "json"', 'body = "xml"', "transport.body"),
        ('success_values = ["00"]', "success_values = [0]", "transport.success_values"),
        ('success_values = ["00"]', "success_values = []", "transport.success_values"),
        ('success_field = "code"', 'success_field = "a..b"', "transport.success_field"),
        ('auth_codes = ["99"]', 'auth_codes = "99"', "transport.auth_codes"),
        ('message_field = "msg"', 'mesage_field = "msg"', "transport.mesage_field"),
        ('scheme = "md5-sorted"', 'scheme = "md4"', "signing.scheme"),
        ('field = "sign"', 'field = "si gn"', "signing.field"),
        ('timestamp_format = "unix_ms"', 'timestamp_format = "seconds"', "timestamp_format"),
        ('timestamp_format = "unix_ms"', 'timestamp_format = "%Q%"', "timestamp_format"),
        ('agent_field = "agentNo"', 'agent_field = "agentNo"\ncase = "mixed"', "signing.case"),
        ('agent_field = "agentNo"', 'agent_field = "agentNo"\nencoding = "b32"', "encoding"),
        (
            'agent_field = "agentNo"',
            'agent_field = "agentNo"\ntimestamp_utc_offset = "8"',
            "timestamp_utc_offset",
        ),
        ('agent_field = "agentNo"', 'agent_field = "agentNo"\nurl_encode = 1', "url_encode"),
        ('scheme = "md5-sorted"', 'scheme = "hmac-sha256-sorted"\nsecret_suffix = ""', "suffix"),
        ('path = "/query"', 'path = "query"', "operations.query.path"),
        ('path = "/query"', 'path = "/q?x=1"', "operations.query.path"),
        ('request = { sn_field = "sn" }\nnot_found', "request = {}\nnot_found", "sn_field"),
        ('state = "data.status"', 'status = "data.status"', "operations.query.response"),
        ('already_codes = ["1102"]', "already_codes = [1102]", "already_codes"),
        ('reason_field = "remark" }', 'reason_field = "remark", extra = "x" }', "request.extra"),
        ('[operations.unbind]\npath = "/unbind"', '[operations.unbind]\npath = "/u"\nx = 1', "x"),
        ('D = "disabled"', 'D = "gone"', "states.D"),
        ('D = "disabled"', "", "disabled"),
        ('U = "unbound"', "", "unbound"),
        ("[states]", "[states]\n[extra]", "extra"),
        ("name = ", "name = = ", "not valid TOML"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(old: str, new: str, named: str) -> None:
    assert old in BASE
    with pytest.raises(BackendConfigError) as caught:
        parse_profile(BASE.replace(old, new, 1), "p.toml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("profile p.toml: ")
    assert named in message


def test_missing_sections_are_named() -> None:
    for section in ("[transport]", "[signing]", "[states]"):
        cut = BASE.replace(section, "[unused" + section[1:], 1)
        with pytest.raises(BackendConfigError) as caught:
            parse_profile(cut, "p.toml")
        assert "\n" not in str(caught.value)
    without_unbind = BASE.replace("[operations.unbind]", "[operations.unbindx]")
    with pytest.raises(BackendConfigError, match=r"unknown key .operations\.unbindx"):
        parse_profile(without_unbind, "p.toml")


def test_lock_is_optional_but_then_disabled_state_is_not_required() -> None:
    lockless = BASE.split("[operations.lock]")[0] + '[states]\nB = "bound"\nU = "unbound"\n'
    profile = parse_profile(lockless, "p.toml")
    assert profile.lock is None


def test_query_cannot_have_already_codes() -> None:
    text = BASE.replace('not_found_codes = ["1001"]', 'already_codes = ["1"]')
    with pytest.raises(BackendConfigError, match=r"operations\.query"):
        parse_profile(text, "p.toml")


def test_strftime_timestamp_and_offset() -> None:
    text = BASE.replace(
        'timestamp_format = "unix_ms"',
        'timestamp_format = "%Y%m%d%H%M%S"\ntimestamp_utc_offset = "-03:30"',
    )
    signing = parse_profile(text, "p.toml").signing
    assert signing.timestamp_format == "%Y%m%d%H%M%S"
    assert signing.timestamp_utc_offset_min == -210


def test_shipped_example_loads_and_is_marked_unverified() -> None:
    assert "example-agent-platform" in shipped_profiles()
    profile = load_profile("example-agent-platform")
    assert profile.verified is False
    assert profile.signing.spec.scheme == "md5-sorted"
    assert profile.signing.spec.secret_suffix == "&key="
    assert profile.signing.agent_field == "agentNo"
    assert profile.states["BINDED"] is Binding.BOUND
    assert profile.states["FORCED_UNBIND"] is Binding.UNBOUND
    assert profile.lock is not None
    text = (PROFILES_DIR / "example-agent-platform.toml").read_text(encoding="utf-8")
    assert "NOT VERIFIED" in text and "ASSUMPTION" in text and "§3.2" in text


def test_load_by_path_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(BASE, encoding="utf-8")
    assert load_profile(str(path)).name == "test-platform"
    cases = {
        "no-such-profile": "no shipped profile",
        str(tmp_path / "absent.toml"): "cannot read profile",
        "Bad Name!": "neither a path nor a name",
        "": "must name a profile",
    }
    big = tmp_path / "big.toml"
    big.write_text("#" * 70_000)
    cases[str(big)] = "larger than"
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    cases[str(binary)] = "not UTF-8"
    for reference, fragment in cases.items():
        with pytest.raises(BackendConfigError) as caught:
            load_profile(reference)
        assert fragment in str(caught.value)
        assert "\n" not in str(caught.value)


TOML_VALUES = [
    '""',
    '"x"',
    '"bound"',
    '"/p"',
    "0",
    "-1",
    "1.5",
    "true",
    "false",
    "[]",
    '["00"]',
    "[1, 2]",
    '[["a"]]',
    "{}",
    '{ a = "b" }',
    "{ sn_field = 1 }",
    '"%Y%m%d"',
    '"' + "x" * 300 + '"',
    '"a.b.c.d.e.f.g.h.i"',
    '"+25:00"',
    '"深圳"',
]
LINES = [i for i, line in enumerate(BASE.splitlines()) if " = " in line]


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(LINES), st.sampled_from(TOML_VALUES)), min_size=1, max_size=3
    )
)
def test_any_wrong_value_anywhere_is_a_profile_or_one_config_error(
    changes: list[tuple[int, str]],
) -> None:
    lines = BASE.splitlines()
    for index, value in changes:
        lines[index] = lines[index].split(" = ", 1)[0] + " = " + value
    try:
        parse_profile("\n".join(lines), "fuzz.toml")
    except BackendConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("profile fuzz.toml: ")
