"""Adyen's local encryption against the published vectors (nexo.md §6), tampering, key choice."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from posdiag.drivers.errors import AuthenticationError
from posdiag.drivers.nexo.crypto import (
    DerivedKey,
    NexoKey,
    decrypt_message,
    derive_key,
    encrypt_bytes,
    encrypt_message,
    is_encrypted,
)
from posdiag.drivers.nexo.errors import NexoCryptoError, NexoDecodeError, NexoUnknownKeyError
from posdiag.drivers.nexo.messages import (
    decode_message,
    diagnosis_request,
    diagnosis_response,
    dumps,
    encode_message,
    read_event,
)

PASSPHRASE = "p@ssw0rd123456"
KEY = NexoKey("CryptoKeyIdentifier12345", 1, PASSPHRASE)

# Vector 3: Adyen's own encrypted EventNotification (dotnet NotificationDecryptionTest.cs).
VECTOR3_HEADER = {
    "ProtocolVersion": "3.0",
    "SaleID": "null",
    "MessageClass": "Event",
    "MessageCategory": "Event",
    "POIID": "P400Plus-275102806",
    "MessageType": "Notification",
    "DeviceID": "5",
}
VECTOR3_BLOB = (
    "x2DY8J2M9ZCyjOZ8Gt7JdLBA/6bT/KXvvAbJf9kzguqO8dWp1I1pPLQpLstpdIiAVqSwG3PR0PrP/lF82UmhmCnUJGCu"
    "EXilqvBNF1tF/yEgnFOklNc1myR2IPW/+2oZOWKFXlTo/gX89EbODXOOGUqaJfSdpDhlqjyMz7mGczobTPvPGqCVx2BD"
    "HU8VTxI9nicwQv+QV48GqVZzxnP8ZOdQOQ5cac+bcS0Y3l7SmWpIoQsoicnjahTY9ICosLJmN4DvDHsN4Kh2DAetFO5b"
    "9I9Lqgm/dvnXUVhb9tPbM7Pn+ratjYpaNbonbO5M+Tm8rDEIyKoUUuFXPWISymrCXtCDVKEb2B5S5pilUmokrXVa9Ldt"
    "sv3BKG7rbrglYEuql4WVs6kzr6ybgAKh1Q0LsAXEve3pydt72ay4U3FOJSBxJ3gNqmnG8mVW2HCXQVo1RgVaZmP5TBWY"
    "uksCKXYypnMulu1PlRI++oeW/J2qjQU="
)
VECTOR3_PLAINTEXT = (
    b'{ "SaleToPOIRequest": { "EventNotification": { "EventDetails": "reference_id=9876", '
    b'"TimeStamp": "2020-11-13T09:02:35.697Z", "EventToNotify": "SaleWakeUp" }, '
    b'"MessageHeader": { "ProtocolVersion": "3.0", "SaleID": "null", "MessageClass": "Event", '
    b'"MessageCategory": "Event", "POIID": "P400Plus-275102806", "MessageType": "Notification", '
    b'"DeviceID": "5" } } }'
)
VECTOR3_KEY = NexoKey("ncrkey", 1, "ncrpass")


def vector3() -> dict[str, Any]:
    return {
        "SaleToPOIRequest": {
            "MessageHeader": dict(VECTOR3_HEADER),
            "NexoBlob": VECTOR3_BLOB,
            "SecurityTrailer": {
                "AdyenCryptoVersion": 1,
                "KeyIdentifier": "ncrkey",
                "KeyVersion": 1,
                "Nonce": "Be6rAx+vRju2aCHwPh6lrg==",
                "Hmac": "LG8A9Re1M8xLMr7rDUk0NwsnvAOX+VLjHv9sPHWTl34=",
            },
        }
    }


# --- the published vectors --------------------------------------------------------------------


def test_vector1_derived_material() -> None:
    derived = derive_key(PASSPHRASE)
    assert derived.hmac_key.hex() == (
        "733636253b5b98f9a483b1a678d73a58dab2accafbc029ecbe12d60eaa909e32"
    )
    assert derived.cipher_key.hex() == (
        "cf2c822761b9f5305bf69970bfa7b659a6724a119db21f8b0e949779f2ea022c"
    )
    assert derived.iv.hex() == "bb9ba8092e6027c735398dc65977c051"


def test_vector2_deterministic_encryption() -> None:
    nonce = bytes(range(16))
    plaintext = b'{"SaleToPOIRequest":{"MessageHeader":{}}}'
    wire = encrypt_bytes("SaleToPOIRequest", {}, plaintext, KEY, nonce=nonce)
    trailer = wire["SaleToPOIRequest"]["SecurityTrailer"]
    assert trailer["Nonce"] == "AAECAwQFBgcICQoLDA0ODw=="
    assert wire["SaleToPOIRequest"]["NexoBlob"] == (
        "bCSdA/21eXKqHofUI2X2/BYxBp1gGkxpZMLgaqPoWEI1VKZGtoZ5kqylVKhAfqdh"
    )
    assert trailer["Hmac"] == "bkw0wSq34TdKIJoFgyI2zEa3NKxdmlTtAFeQVaeO/0g="
    assert trailer == {
        "AdyenCryptoVersion": 1,
        "KeyIdentifier": "CryptoKeyIdentifier12345",
        "KeyVersion": 1,
        "Nonce": "AAECAwQFBgcICQoLDA0ODw==",
        "Hmac": "bkw0wSq34TdKIJoFgyI2zEa3NKxdmlTtAFeQVaeO/0g=",
    }
    actual_iv = bytes(a ^ b for a, b in zip(derive_key(PASSPHRASE).iv, nonce, strict=True))
    assert actual_iv.hex() == "bb9aaa0a2a6521c03d3087cd557ace5e"
    # The message-level API serialises that plaintext exactly (compact JSON).
    assert encrypt_message({"SaleToPOIRequest": {"MessageHeader": {}}}, KEY, nonce=nonce) == wire
    message, raw = decrypt_message(wire, KEY)
    assert raw == plaintext
    assert message == {"SaleToPOIRequest": {"MessageHeader": {}}}


def test_vector3_official_event_notification() -> None:
    message, plaintext = decrypt_message(vector3(), VECTOR3_KEY)
    assert plaintext == VECTOR3_PLAINTEXT
    decoded = decode_message(message)
    assert decoded.header.message_class == "Event"
    assert decoded.header.poiid == "P400Plus-275102806"
    assert decoded.header.device_id == "5"
    assert decoded.header.service_id is None
    event = read_event(decoded)
    assert event.kind == "SaleWakeUp"
    assert event.timestamp == "2020-11-13T09:02:35.697Z"
    assert event.details == {"reference_id": "9876"}
    assert event.maintenance_required is None


def test_vector3_with_a_key_lookup() -> None:
    asked: list[tuple[str, int]] = []

    def lookup(identifier: str, version: int) -> NexoKey | None:
        asked.append((identifier, version))
        return VECTOR3_KEY if (identifier, version) == ("ncrkey", 1) else None

    _message, plaintext = decrypt_message(vector3(), lookup)
    assert plaintext == VECTOR3_PLAINTEXT
    assert asked == [("ncrkey", 1)]


def test_whitespace_in_base64_is_ignored() -> None:
    wire = vector3()
    blob = wire["SaleToPOIRequest"]["NexoBlob"]
    wire["SaleToPOIRequest"]["NexoBlob"] = "\n".join(
        blob[i : i + 76] for i in range(0, len(blob), 76)
    )
    wire["SaleToPOIRequest"]["SecurityTrailer"]["Nonce"] = " Be6rAx+vRju2aCHwPh6lrg==\r\n"
    assert decrypt_message(wire, VECTOR3_KEY)[1] == VECTOR3_PLAINTEXT


# --- secrets stay secret -----------------------------------------------------------------------


def test_passphrase_never_in_repr_or_str() -> None:
    key = NexoKey("kid", 3, "Sup3r-Secret-Passphrase!")
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert "Sup3r-Secret-Passphrase!" not in text
    assert "kid" in repr(key)
    derived = derive_key("Sup3r-Secret-Passphrase!")
    assert derived.hmac_key.hex() not in repr(derived)
    assert derived.cipher_key.hex() not in repr(derived)
    assert derived.iv.hex() not in repr(derived)
    assert isinstance(derived, DerivedKey)


def test_derivation_is_cached() -> None:
    assert derive_key(PASSPHRASE) is derive_key(PASSPHRASE)


# --- round trips -------------------------------------------------------------------------------


def test_round_trip_request_and_response() -> None:
    request = diagnosis_request("A1B2C3", "DiagTool01", "V400m-324688179", host_diagnosis=True)
    clear = encode_message(request)
    wire = encrypt_message(clear, KEY)
    assert is_encrypted(wire) and not is_encrypted(clear)
    assert wire["SaleToPOIRequest"]["MessageHeader"] == clear["SaleToPOIRequest"]["MessageHeader"]
    assert "DiagnosisRequest" not in wire["SaleToPOIRequest"]
    message, plaintext = decrypt_message(wire, KEY)
    assert plaintext == dumps(clear)
    assert decode_message(message) == request

    response = diagnosis_response(request, additional={"batteryLevel": "42%"})
    wire = encrypt_message(encode_message(response), KEY)
    assert "SaleToPOIResponse" in wire
    message, _ = decrypt_message(wire, KEY)
    assert decode_message(message) == response


def test_fresh_nonce_every_time() -> None:
    clear: dict[str, Any] = {"SaleToPOIRequest": {"MessageHeader": {}}}
    one, two = encrypt_message(clear, KEY), encrypt_message(clear, KEY)
    assert (
        one["SaleToPOIRequest"]["SecurityTrailer"]["Nonce"]
        != (two["SaleToPOIRequest"]["SecurityTrailer"]["Nonce"])
    )
    assert one["SaleToPOIRequest"]["NexoBlob"] != two["SaleToPOIRequest"]["NexoBlob"]


def test_encrypt_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        encrypt_bytes("SaleToPOIRequest", {}, b"{}", KEY, nonce=b"short")
    with pytest.raises(ValueError):
        encrypt_bytes("Other", {}, b"{}", KEY)
    with pytest.raises(NexoDecodeError):
        encrypt_message({"Other": {}}, KEY)


# --- every failure is the same crypto error ----------------------------------------------------


def _flip(b64: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _tampered() -> list[tuple[str, dict[str, Any], NexoKey]]:
    cases: list[tuple[str, dict[str, Any], NexoKey]] = []

    def case(name: str, key: NexoKey = VECTOR3_KEY) -> dict[str, Any]:
        wire = copy.deepcopy(vector3())
        cases.append((name, wire, key))
        inner: dict[str, Any] = wire["SaleToPOIRequest"]
        return inner

    case("blob first byte")["NexoBlob"] = _flip(VECTOR3_BLOB, 0)
    case("blob last byte (padding)")["NexoBlob"] = _flip(VECTOR3_BLOB, 367)
    case("blob middle byte")["NexoBlob"] = _flip(VECTOR3_BLOB, 200)
    case("blob truncated")["NexoBlob"] = base64.b64encode(
        base64.b64decode(VECTOR3_BLOB)[:-16]
    ).decode()
    case("blob not a block multiple")["NexoBlob"] = base64.b64encode(b"x" * 17).decode()
    case("blob empty")["NexoBlob"] = ""
    case("blob not base64")["NexoBlob"] = "not*base64!"
    case("blob missing padding")["NexoBlob"] = VECTOR3_BLOB.rstrip("=")
    case("blob not a string")["NexoBlob"] = 12
    inner = case("hmac flipped")
    inner["SecurityTrailer"]["Hmac"] = _flip(inner["SecurityTrailer"]["Hmac"], 5)
    case("hmac missing")["SecurityTrailer"].pop("Hmac")
    inner = case("nonce flipped")
    inner["SecurityTrailer"]["Nonce"] = _flip(inner["SecurityTrailer"]["Nonce"], 3)
    case("nonce 15 bytes")["SecurityTrailer"]["Nonce"] = base64.b64encode(bytes(15)).decode()
    case("nonce 17 bytes")["SecurityTrailer"]["Nonce"] = base64.b64encode(bytes(17)).decode()
    case("wrong passphrase", NexoKey("ncrkey", 1, "ncrpass2"))
    case("clear header changed")["MessageHeader"]["POIID"] = "P400Plus-000000000"
    case("clear header gains a field")["MessageHeader"]["ServiceID"] = "X"
    case("crypto version 2")["SecurityTrailer"]["AdyenCryptoVersion"] = 2
    case("crypto version true")["SecurityTrailer"]["AdyenCryptoVersion"] = True
    case("crypto version 1.0")["SecurityTrailer"]["AdyenCryptoVersion"] = 1.0
    case("crypto version missing")["SecurityTrailer"].pop("AdyenCryptoVersion")
    case("no trailer")["SecurityTrailer"] = None
    return cases


@pytest.mark.parametrize("name,wire,key", _tampered(), ids=[c[0] for c in _tampered()])
def test_tampering_is_one_generic_crypto_error(
    name: str, wire: dict[str, Any], key: NexoKey
) -> None:
    reference = str(NexoCryptoError())
    with pytest.raises(NexoCryptoError) as caught:
        decrypt_message(wire, key)
    assert type(caught.value) is NexoCryptoError, name
    assert str(caught.value) == reference
    assert isinstance(caught.value, AuthenticationError)


def test_envelope_of_the_other_direction_is_refused() -> None:
    wire = vector3()
    wire = {"SaleToPOIResponse": wire["SaleToPOIRequest"]}
    with pytest.raises(NexoCryptoError):
        decrypt_message(wire, VECTOR3_KEY)  # the inner message is a SaleToPOIRequest


def test_unknown_key_version_and_identifier() -> None:
    wire = vector3()
    wire["SaleToPOIRequest"]["SecurityTrailer"]["KeyVersion"] = 2
    with pytest.raises(NexoUnknownKeyError) as caught:
        decrypt_message(wire, VECTOR3_KEY)
    assert caught.value.identifier == "ncrkey" and caught.value.version == 2
    assert "ncrpass" not in str(caught.value)
    wire = vector3()
    wire["SaleToPOIRequest"]["SecurityTrailer"]["KeyIdentifier"] = "other\x1b[31m"
    with pytest.raises(NexoUnknownKeyError) as caught:
        decrypt_message(wire, lambda identifier, version: None)
    assert "\x1b" not in str(caught.value)
    wire = vector3()
    wire["SaleToPOIRequest"]["SecurityTrailer"]["KeyVersion"] = "1"
    with pytest.raises(NexoUnknownKeyError):
        decrypt_message(wire, VECTOR3_KEY)
    assert issubclass(NexoUnknownKeyError, NexoCryptoError)


def test_authenticated_garbage_is_a_decode_error_not_a_key_error() -> None:
    # The peer holds the key (the HMAC passes) but sent a body that is not a JSON object: that is
    # a broken peer, and the operator must not be told to fix the key.
    wire = encrypt_bytes("SaleToPOIRequest", {}, b"[1, 2]", KEY)
    with pytest.raises(NexoDecodeError):
        decrypt_message(wire, KEY)


def test_decrypt_without_clear_header_is_accepted() -> None:
    wire = encrypt_message(
        {"SaleToPOIResponse": {"MessageHeader": {"MessageClass": "Service"}}}, KEY
    )
    del wire["SaleToPOIResponse"]["MessageHeader"]
    message, _ = decrypt_message(wire, KEY)
    assert message == {"SaleToPOIResponse": {"MessageHeader": {"MessageClass": "Service"}}}


@pytest.mark.parametrize("wire", [None, {}, [], {"A": {}, "B": {}}, {"SaleToPOIRequest": []}])
def test_not_an_envelope(wire: Any) -> None:
    with pytest.raises(NexoCryptoError):
        decrypt_message(wire, KEY)
