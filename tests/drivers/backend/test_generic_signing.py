"""Signing for profile-described platforms: the three schemes, both sides, worked vectors.

The MD5 vector follows the widespread recipe (reference §3.3 end, [C5]): sort the non-empty
parameters by ASCII, join ``k=v&…``, append ``&key=SECRET``, MD5, uppercase. Each expected value
is pinned as a literal AND recomputed here by hand with hashlib/hmac, so a change to either the
module or the recipe's reading shows up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from posdiag.drivers.backend.generic.signing import (
    SigningKeys,
    SignSpec,
    canonical,
    java_url_encode,
    load_private_key,
    load_public_key,
    sign,
    verify,
)

SECRET = "K3y-For-Test"
PARAMS: dict[str, object] = {
    "timestamp": "1700000000",
    "materialsNo": "TEST8000999",
    "agentNo": "A10001",
    "customerName": "深圳市某某便利店",
    "remark": "",
    "extra": None,
    "sign": "WILL-BE-IGNORED",
    "sign_type": "MD5",
}
CANONICAL = (
    "agentNo=A10001&customerName=深圳市某某便利店&materialsNo=TEST8000999&timestamp=1700000000"
)
MD5_UPPER = "6920559E9EC701BB21D596DDC1B44FD0"
MD5_RAW_LOWER = "aa9057aa7a93a8084302a324ca32245c"
HMAC_UPPER = "F3A4E6B4D45D8C9FD8A57CEBA4109FA1CFEC2A1A4EA6EE71C2C12D71BEDD5D37"

MD5 = SignSpec(scheme="md5-sorted")
KEYS = SigningKeys(secret=SECRET)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def by_hand(params: dict[str, object]) -> str:
    """The canonical string, computed independently of the module."""
    kept = {
        k: v for k, v in params.items() if k not in ("sign", "sign_type") and v not in ("", None)
    }
    return "&".join(f"{k}={kept[k]}" for k in sorted(kept, key=lambda k: k.encode("ascii")))


def test_canonical_string_sorts_and_drops_empty_values_and_sign_fields() -> None:
    assert canonical(MD5, PARAMS) == CANONICAL
    assert by_hand(PARAMS) == CANONICAL


def test_md5_recipe_worked_vector_uppercase_with_key_suffix() -> None:
    independent = hashlib.md5((by_hand(PARAMS) + "&key=" + SECRET).encode("utf-8")).hexdigest()
    assert independent.upper() == MD5_UPPER
    assert sign(MD5, KEYS, PARAMS) == MD5_UPPER


def test_md5_raw_secret_suffix_and_lowercase() -> None:
    spec = SignSpec(scheme="md5-sorted", secret_suffix="", case="lower")
    independent = hashlib.md5((by_hand(PARAMS) + SECRET).encode("utf-8")).hexdigest()
    assert independent == MD5_RAW_LOWER
    assert sign(spec, KEYS, PARAMS) == MD5_RAW_LOWER


def test_chinese_values_are_signed_as_utf8() -> None:
    # The same text encoded as GBK gives another digest: the module must use UTF-8.
    gbk = hashlib.md5((CANONICAL + "&key=" + SECRET).encode("gbk")).hexdigest().upper()
    assert gbk != MD5_UPPER
    assert sign(MD5, KEYS, PARAMS) == MD5_UPPER


def test_hmac_sha256_vector() -> None:
    spec = SignSpec(scheme="hmac-sha256-sorted")
    independent = hmac.new(SECRET.encode(), by_hand(PARAMS).encode(), hashlib.sha256).hexdigest()
    assert independent.upper() == HMAC_UPPER
    assert sign(spec, KEYS, PARAMS) == HMAC_UPPER
    assert verify(spec, KEYS, PARAMS, HMAC_UPPER.lower())  # hex compares case-insensitively
    assert not verify(spec, SigningKeys(secret="other"), PARAMS, HMAC_UPPER)


def test_base64_encoding_of_md5() -> None:
    spec = SignSpec(scheme="md5-sorted", encoding="base64")
    expected = base64.b64encode(bytes.fromhex(MD5_UPPER)).decode()
    assert sign(spec, KEYS, PARAMS) == expected
    assert verify(spec, KEYS, PARAMS, expected)


def test_sign_field_and_excluded_keys_do_not_change_the_signature() -> None:
    base = sign(MD5, KEYS, PARAMS)
    assert sign(MD5, KEYS, {**PARAMS, "sign": "other", "sign_type": "RSA"}) == base
    assert sign(MD5, KEYS, {**PARAMS, "remark": "x"}) != base
    spec = SignSpec(scheme="md5-sorted", field="signature", exclude=frozenset({"success"}))
    changed = sign(spec, KEYS, {**PARAMS, "success": "true", "signature": "x"})
    # sign and sign_type are ordinary fields for this spec, so they are signed.
    assert changed != base
    assert changed == sign(spec, KEYS, {**PARAMS, "success": "false"})


def test_url_encode_on_and_off() -> None:
    params = {"merchantName": "A B*~_.-/é", "agentNo": "A1"}
    plain = SignSpec(scheme="md5-sorted")
    encoded = SignSpec(scheme="md5-sorted", url_encode=True)
    assert canonical(plain, params) == "agentNo=A1&merchantName=A B*~_.-/é"
    # Java URLEncoder: space → +, * - . _ kept, ~ → %7E (reference §1.2).
    assert canonical(encoded, params) == "agentNo=A1&merchantName=A+B*%7E_.-%2F%C3%A9"
    assert sign(plain, KEYS, params) != sign(encoded, KEYS, params)
    assert java_url_encode("深圳") == quote("深圳", safe="")


def test_rsa_sign_verify_round_trip(rsa_key: rsa.RSAPrivateKey) -> None:
    spec = SignSpec(scheme="sha256withrsa-sorted", encoding="base64")
    signer = SigningKeys(private_key=rsa_key)
    checker = SigningKeys(public_key=rsa_key.public_key())
    signature = sign(spec, signer, PARAMS)
    # Independent check with cryptography directly over the hand-made string.
    rsa_key.public_key().verify(
        base64.b64decode(signature),
        by_hand(PARAMS).encode("utf-8"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert verify(spec, checker, PARAMS, signature)
    assert not verify(spec, checker, {**PARAMS, "materialsNo": "OTHER"}, signature)
    assert not verify(spec, checker, PARAMS, "not base64!")
    assert not verify(spec, checker, PARAMS, signature[:-4])
    with pytest.raises(ValueError):
        sign(spec, checker, PARAMS)


def test_rsa_hex_encoding(rsa_key: rsa.RSAPrivateKey) -> None:
    spec = SignSpec(scheme="sha256withrsa-sorted", encoding="hex", case="lower")
    signature = sign(spec, SigningKeys(private_key=rsa_key), PARAMS)
    assert len(signature) == 512 and signature == signature.lower()
    assert verify(spec, SigningKeys(public_key=rsa_key.public_key()), PARAMS, signature)


def test_keys_load_from_pem_and_bare_base64(rsa_key: rsa.RSAPrivateKey) -> None:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_private_key(pem).private_numbers() == rsa_key.private_numbers()
    assert load_public_key(base64.b64encode(der).decode()).public_numbers() == (
        rsa_key.public_key().public_numbers()
    )
    for bad in ("", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "%%%"):
        with pytest.raises(ValueError) as caught:
            load_private_key(bad)
        assert "AAAA" not in str(caught.value)


def test_missing_secret_is_a_value_error_not_a_crash() -> None:
    with pytest.raises(ValueError):
        sign(MD5, SigningKeys(), PARAMS)


def test_keys_repr_hides_material() -> None:
    assert SECRET not in repr(KEYS)


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(
            st.none(),
            st.text(max_size=20),
            st.integers(),
            st.booleans(),
            st.floats(allow_nan=False),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
        ),
        max_size=8,
    ),
    signature=st.one_of(st.text(max_size=80), st.none(), st.integers(), st.binary(max_size=8)),
    url_encode=st.booleans(),
)
def test_any_params_sign_and_verify_without_crashing(
    params: dict[str, object], signature: object, url_encode: bool
) -> None:
    for scheme in ("md5-sorted", "hmac-sha256-sorted"):
        spec = SignSpec(scheme=scheme, url_encode=url_encode)
        good = sign(spec, KEYS, params)
        assert verify(spec, KEYS, params, good)
        assert verify(spec, KEYS, params, signature) == (
            isinstance(signature, str) and signature.lower() == good.lower()
        )
