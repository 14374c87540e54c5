"""Bounded, strict JSON: every bad input is a NexoDecodeError, and nothing else ever escapes."""

from __future__ import annotations

import contextlib
import json
import random
import time
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posdiag.drivers.nexo.crypto import NexoKey, decrypt_message
from posdiag.drivers.nexo.errors import NexoDecodeError, NexoError
from posdiag.drivers.nexo.messages import (
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    decode_message,
    dumps,
    loads,
    read_diagnosis,
    read_event,
    read_login,
    read_request,
    read_response,
    read_totals,
)


def test_dumps_is_compact_utf8() -> None:
    assert dumps({"SaleToPOIRequest": {"MessageHeader": {}}}) == (
        b'{"SaleToPOIRequest":{"MessageHeader":{}}}'
    )
    assert dumps({"a": "é€"}) == '{"a":"é€"}'.encode()
    with pytest.raises(ValueError):
        dumps({"a": float("nan")})


def test_loads_accepts_a_normal_message() -> None:
    raw = b'{ "SaleToPOIResponse": {"MessageHeader": {"A": 1.5, "B": [true, null, "\\u00e9"]}} }'
    assert loads(raw) == {
        "SaleToPOIResponse": {"MessageHeader": {"A": 1.5, "B": [True, None, "é"]}}
    }
    assert loads(bytearray(b"{}")) == {}
    assert loads(memoryview(b'{"a": "\\ud83d\\ude00"}')) == {"a": "😀"}


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"[]" + b"}" * (depth - 1)


@pytest.mark.parametrize(
    "raw,why",
    [
        (b"", "empty"),
        (b"   ", "blank"),
        (b"[]", "array at the top"),
        (b'"text"', "string at the top"),
        (b"1", "number at the top"),
        (b"null", "null at the top"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"x": {"a": 1, "a": 1}}', "nested duplicate key"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": -Infinity}', "-Infinity"),
        (b'{"a": 1e999}', "overflow to infinity"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "integer too long"),
        (b'{"a": "\xff"}', "invalid UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "UTF-8 encoded surrogate"),
        (b'{"a": "\\ud800"}', "escaped lone surrogate"),
        (b'{"\\udc00": 1}', "lone surrogate in a key"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        (b"{'a': 1}", "single quotes"),
        (b'{"a": 1,}', "trailing comma"),
        (b'{"a": "\x01"}', "raw control character"),
        (b'{"a": 1} {"b": 2}', "two documents"),
        (b"{" * 100_000, "unbalanced and deep"),
        (b"[" * 900_000, "deep array"),
        (_nested(MAX_DEPTH + 1), "one level too deep"),
        (b'{"a": "' + b"x" * MAX_MESSAGE_BYTES + b'"}', "too large"),
    ],
)
def test_loads_refuses(raw: bytes, why: str) -> None:
    with pytest.raises(NexoDecodeError):
        loads(raw)


def test_depth_limit_is_exact() -> None:
    assert loads(_nested(MAX_DEPTH))
    with pytest.raises(NexoDecodeError, match="nests deeper"):
        loads(_nested(MAX_DEPTH + 1))
    # Brackets inside strings do not nest.
    assert loads(json.dumps({"a": "[" * 1000 + '\\"{' * 100}).encode())


def test_size_limit_is_exact() -> None:
    filler = MAX_MESSAGE_BYTES - len(b'{"a":""}')
    assert loads(b'{"a":"' + b"x" * filler + b'"}')
    with pytest.raises(NexoDecodeError, match="larger"):
        loads(b'{"a":"' + b"x" * (filler + 1) + b'"}')


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":"' + b'\\"' * 300_000,  # an unterminated string of escaped quotes
        b'{"a":"' + b"\\" * 900_000,
        b'"' * MAX_MESSAGE_BYTES,
        b'{"a":[' + b'"[",' * 200_000,
    ],
)
def test_hostile_input_is_refused_in_linear_time(raw: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(NexoDecodeError):
        loads(raw)
    assert time.perf_counter() - started < 5.0  # quadratic scanning took minutes here


def test_loads_refuses_non_bytes() -> None:
    with pytest.raises(NexoDecodeError):
        loads(cast(Any, "{}"))


# --- fuzz: whatever the bytes, only NexoError comes out -----------------------------------------

KEY = NexoKey("k", 1, "p@ssw0rd123456")


def _through_everything(raw: bytes) -> None:
    """Feed bytes through every stage a terminal's bytes reach; only NexoError may escape."""
    try:
        obj = loads(raw)
    except NexoDecodeError:
        return
    _through_decoders(obj)


def _through_decoders(obj: Any) -> None:
    with contextlib.suppress(NexoError):
        decrypt_message(obj, KEY)
    try:
        msg = decode_message(obj)
    except NexoDecodeError:
        return
    for reader in (
        read_response,
        read_diagnosis,
        read_login,
        read_totals,
        read_event,
        read_request,
    ):
        with contextlib.suppress(NexoDecodeError):
            reader(msg)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _through_everything(raw)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_HEADER = st.fixed_dictionaries(
    {},
    optional={
        "MessageClass": st.sampled_from(["Service", "Event", "Device", 3, ""]),
        "MessageCategory": st.sampled_from(["Diagnosis", "Login", "GetTotals", "Event", "X"]),
        "MessageType": st.sampled_from(["Request", "Response", "Notification", None]),
        "ServiceID": st.text(max_size=12),
        "POIID": _JSON,
    },
)
_BODY_NAMES = st.sampled_from(
    [
        "DiagnosisResponse",
        "LoginResponse",
        "GetTotalsResponse",
        "ReconciliationResponse",
        "EventNotification",
        "DiagnosisRequest",
        "LoginRequest",
        "AbortRequest",
        "ReconciliationRequest",
        "GetTotalsRequest",
    ]
)


@st.composite
def _messages(draw: st.DrawFn) -> dict[str, Any]:
    top = draw(st.sampled_from(["SaleToPOIRequest", "SaleToPOIResponse"]))
    header = draw(_HEADER)
    body = draw(st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6))
    return {top: {"MessageHeader": header, draw(_BODY_NAMES): body}}


_FIELDS = [
    "Response", "POIStatus", "HostStatus", "LoggedSaleID", "POISystemData", "TransactionTotals",
    "POIReconciliationID", "ReconciliationType", "EventToNotify", "TimeStamp", "EventDetails",
    "HostDiagnosisFlag", "AcquirerID", "DateTime", "SaleSoftware", "AbortReason",
    "MessageReference", "TotalDetails", "TotalFilter", "MaintenanceRequiredFlag",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(_messages())
def test_fuzz_structured_messages(obj: dict[str, Any]) -> None:
    _through_decoders(obj)
    _through_everything(json.dumps(obj).encode())


def test_random_mutations_of_a_real_message() -> None:
    base = (
        b'{"SaleToPOIResponse":{"MessageHeader":{"ProtocolVersion":"3.0","MessageClass":"Service",'
        b'"MessageCategory":"Diagnosis","MessageType":"Response","ServiceID":"1","SaleID":"S",'
        b'"POIID":"V400m-1"},"DiagnosisResponse":{"Response":{"Result":"Success",'
        b'"AdditionalResponse":"batteryLevel=100%25&unconfirmedBatchCount=0"},'
        b'"POIStatus":{"GlobalStatus":"OK"},"HostStatus":[{"AcquirerID":"0"}]}}}'
    )
    rng = random.Random(1234)
    for _ in range(2000):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(raw))
            action = rng.random()
            if action < 0.4:
                raw[position] = rng.randrange(256)
            elif action < 0.7:
                del raw[position]
            else:
                raw.insert(position, rng.choice(b'{}[]",:0aeE-+.\\'))
        _through_everything(bytes(raw))
