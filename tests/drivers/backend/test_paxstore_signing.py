"""PAXSTORE signing reproduces the reference's worked vectors (§1.2) byte for byte."""

from __future__ import annotations

import pytest

from posdiag.drivers.backend.paxstore.signing import (
    build_query,
    java_string_hash,
    java_url_encode,
    sdk_order,
    sign,
    signed_query,
)

KEY = "RCA9MDH6YN3WSSGPW6TJ"
SECRET = "TUNLDZVZECHNKZ4FW07XFCKN2W0N8ZDEA5ENKZYN"
TS = 1700000000000
ROW1 = "sysKey=RCA9MDH6YN3WSSGPW6TJ&serialNo=TEST8000999&timestamp=1700000000000"
ROW2 = "serialNo=TEST8000999&sysKey=RCA9MDH6YN3WSSGPW6TJ&timestamp=1700000000000"
ROW3 = (
    "includeDetailInfoList=false&includeInstalledApks=false&includeMasterTerminal=false"
    "&includeInstalledFirmware=false&sysKey=RCA9MDH6YN3WSSGPW6TJ&serialNo=TEST8000999"
    "&timestamp=1700000000000"
)


@pytest.mark.parametrize(
    ("query", "algorithm", "expected"),
    [
        (ROW1, "sha256", "56BD4430FE26D1F9BC5B31A4554D864EE51850A9C4201F6E6CF372190E810367"),
        (ROW2, "sha256", "97C818A9F9D8BC5FA34B79844801D9F8B78EB4D584CC66DE62FAE2D81BB05805"),
        (ROW3, "sha256", "F64EA65956FC95DC614EC3CFA13371CCB31FB48367A80B886EE343DBBCA08807"),
        (ROW1, "md5", "3174FA942064D8BF17D19B337CD1C22C"),
    ],
    ids=["row1-disable", "row2-sorted", "row3-get", "row4-md5"],
)
def test_worked_vectors(query: str, algorithm: str, expected: str) -> None:
    assert sign(query, SECRET, algorithm) == expected


def test_disable_query_is_built_in_sdk_order() -> None:
    query, signature = signed_query([("serialNo", "TEST8000999")], KEY, TS, SECRET)
    assert query == ROW1
    assert signature == "56BD4430FE26D1F9BC5B31A4554D864EE51850A9C4201F6E6CF372190E810367"


def test_get_query_is_built_in_sdk_order() -> None:
    params = [
        ("serialNo", "TEST8000999"),
        ("includeDetailInfoList", "false"),
        ("includeInstalledApks", "false"),
        ("includeInstalledFirmware", "false"),
        ("includeMasterTerminal", "false"),
    ]
    query, signature = signed_query(params, KEY, TS, SECRET)
    assert query == ROW3
    assert signature == "F64EA65956FC95DC614EC3CFA13371CCB31FB48367A80B886EE343DBBCA08807"


def test_md5_signed_query() -> None:
    query, signature = signed_query([("serialNo", "TEST8000999")], KEY, TS, SECRET, "md5")
    assert (query, signature) == (ROW1, "3174FA942064D8BF17D19B337CD1C22C")


def test_sorted_order_is_a_different_signature() -> None:
    pairs = sorted([("serialNo", "TEST8000999"), ("sysKey", KEY), ("timestamp", str(TS))])
    assert build_query(pairs) == ROW2
    assert sign(ROW2, SECRET) != sign(ROW1, SECRET)


def test_java_url_encoding_example() -> None:
    assert java_url_encode("A B*~_.-/é") == "A+B*%7E_.-%2F%C3%A9"


def test_lone_surrogate_encodes_like_java() -> None:
    assert java_url_encode("a\ud800b") == "a%3Fb"


def test_build_query_keeps_order_and_drops_empty() -> None:
    pairs = [("b", "2"), ("", "x"), ("a", ""), ("c", None), ("a", "1 &=")]
    assert build_query(pairs) == "b=2&a=1+%26%3D"


def test_build_query_refuses_a_name_that_would_change_the_string() -> None:
    with pytest.raises(ValueError):
        build_query([("a&b", "1")])


def test_java_string_hash_matches_java() -> None:
    assert java_string_hash("hello") == 99162322  # "hello".hashCode()
    assert java_string_hash("") == 0
    assert java_string_hash("polygenelubricants") == 0x80000000  # Integer.MIN_VALUE


def test_sdk_order_grows_the_table_past_twelve_entries() -> None:
    names = [f"p{i}" for i in range(13)]
    ordered = [name for name, _ in sdk_order([(n, "1") for n in names])]
    assert sorted(ordered) == sorted(names)

    def bucket(name: str, size: int) -> int:
        code = java_string_hash(name)
        return (code ^ code >> 16) & (size - 1)

    # 13 entries exceed 16 * 0.75: the table has 32 buckets, and iteration follows them.
    assert [bucket(n, 32) for n in ordered] == sorted(bucket(n, 32) for n in names)
    assert [bucket(n, 16) for n in ordered] != sorted(bucket(n, 16) for n in names)


def test_sdk_order_refuses_duplicates() -> None:
    with pytest.raises(ValueError):
        sdk_order([("a", "1"), ("a", "2")])


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="sha256"):
        sign("a=1", SECRET, "sha1")
