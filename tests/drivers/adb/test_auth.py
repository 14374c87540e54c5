"""The ADB host key: files and their modes, token signatures, Android's public key struct."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from structlog.testing import capture_logs

from posdiag.drivers.adb import auth
from posdiag.drivers.adb.auth import (
    ANDROID_PUBKEY_ENCODED_SIZE,
    AdbKey,
    AdbKeyError,
    default_key_path,
    encode_android_public_key,
    load_or_create_key,
    parse_android_public_key,
    stock_key_path,
    verify_token_signature,
)
from posdiag.drivers.adb.protocol import AdbProtocolError

# DER DigestInfo prefix for SHA-1 (RFC 8017 §9.2 note 1).
SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


@pytest.fixture(scope="module")
def key() -> AdbKey:
    return AdbKey.generate()


@pytest.fixture(scope="module")
def other_key() -> AdbKey:
    return AdbKey.generate()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: AdbKey) -> Path:
    """An empty home directory; new keys reuse the module key so no test waits for RSA."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    (tmp_path / "home").mkdir()
    pem = key.to_pem()
    monkeypatch.setattr(AdbKey, "generate", classmethod(lambda cls: AdbKey.from_pem(pem)))
    return tmp_path / "home"


def _pem_pkcs8(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# ---------------------------------------------------------------------- signatures


def test_signature_verifies(key: AdbKey, other_key: AdbKey) -> None:
    token = os.urandom(20)
    signature = key.sign_token(token)
    assert len(signature) == 256
    assert verify_token_signature(key.public_key, token, signature)
    assert not verify_token_signature(key.public_key, os.urandom(20), signature)
    assert not verify_token_signature(other_key.public_key, token, signature)
    assert not verify_token_signature(key.public_key, token, bytes(256))
    assert not verify_token_signature(key.public_key, token[:19], signature)


def test_signature_is_pkcs1_v15_over_the_token_as_a_sha1_digest(key: AdbKey) -> None:
    token = bytes(range(20))
    signature = int.from_bytes(key.sign_token(token), "big")
    numbers = key.public_key.public_numbers()
    encoded = pow(signature, numbers.e, numbers.n).to_bytes(256, "big")
    digest_info = SHA1_DIGEST_INFO + token  # the token itself, not SHA-1(token)
    assert encoded == b"\x00\x01" + b"\xff" * (256 - 3 - len(digest_info)) + b"\x00" + digest_info
    assert hashlib.sha1(token).digest() not in encoded


def test_token_must_be_20_bytes(key: AdbKey) -> None:
    with pytest.raises(AdbProtocolError, match="20"):
        key.sign_token(b"short")


# ---------------------------------------------------------------------- public key format


def test_android_public_key_struct_fields(key: AdbKey) -> None:
    encoded = key.android_public_key()
    b64, comment = encoded.split(b" ", 1)
    assert comment == b"posdiag@host"
    raw = base64.b64decode(b64)
    assert len(raw) == ANDROID_PUBKEY_ENCODED_SIZE == 524
    words, n0inv = struct.unpack_from("<II", raw)
    n = key.public_key.public_numbers().n
    assert words == 64
    assert (n0inv * (n & 0xFFFFFFFF)) % 2**32 == 2**32 - 1  # n0inv * n[0] ≡ -1 (mod 2^32)
    assert raw[8:264] == n.to_bytes(256, "little")
    assert int.from_bytes(raw[264:520], "little") == pow(2**2048, 2, n)
    assert struct.unpack_from("<I", raw, 520) == (65537,)


def test_custom_comment_and_invalid_comments(key: AdbKey) -> None:
    assert key.android_public_key("tech@bench-3").endswith(b" tech@bench-3")
    for bad in ("a\nb", "a\0b", "a\rb"):
        with pytest.raises(ValueError):
            key.android_public_key(bad)


def test_parse_android_public_key_round_trip(key: AdbKey) -> None:
    numbers = key.public_key.public_numbers()
    encoded = key.android_public_key()
    for variant in (encoded, encoded + b"\0", encoded + b"\n", encoded.split(b" ")[0]):
        assert parse_android_public_key(variant).public_numbers() == numbers


def test_parse_android_public_key_rejects_corruption(key: AdbKey) -> None:
    raw = bytearray(base64.b64decode(key.android_public_key().split(b" ")[0]))
    corrupt_rr = bytes(raw[:300]) + bytes([raw[300] ^ 1]) + bytes(raw[301:])
    corrupt_words = struct.pack("<I", 32) + bytes(raw[4:])
    for bad in (
        b"",
        b"not base64!!",
        base64.b64encode(bytes(raw[:-1])),
        base64.b64encode(corrupt_rr),
        base64.b64encode(corrupt_words),
        base64.b64encode(bytes(524)),
    ):
        with pytest.raises(AdbKeyError):
            parse_android_public_key(bad)


def test_encode_rejects_non_2048_bit_keys() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError):
        encode_android_public_key(small.public_key())
    with pytest.raises(AdbKeyError, match="2048"):
        AdbKey(small)


# ---------------------------------------------------------------------- key files


def test_default_path_follows_xdg(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_key_path() == home / ".config" / "posdiag" / "adbkey"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    assert default_key_path() == home / "xdg" / "posdiag" / "adbkey"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    assert default_key_path() == home / ".config" / "posdiag" / "adbkey"
    assert stock_key_path() == home / ".android" / "adbkey"


def test_new_key_file_is_0600_in_0700_dirs(home: Path, key: AdbKey) -> None:
    previous = os.umask(0)  # a permissive umask must not widen the modes
    try:
        created = load_or_create_key()
    finally:
        os.umask(previous)
    path = home / ".config" / "posdiag" / "adbkey"
    assert created.path == path
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert os.stat(path.parent.parent).st_mode & 0o777 == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in path.parent.iterdir()) == ["adbkey"]  # no temp file left
    assert created.public_key.public_numbers() == key.public_key.public_numbers()


def test_real_key_generation_writes_a_loadable_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "adbkey"
    created = load_or_create_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert created.public_key.key_size == 2048
    assert created.public_key.public_numbers().e == 65537
    again = load_or_create_key(path)
    assert again.public_key.public_numbers() == created.public_key.public_numbers()


def test_existing_key_is_reused(home: Path) -> None:
    first = load_or_create_key()
    assert first.path is not None
    content = first.path.read_bytes()
    second = load_or_create_key()
    assert second.public_key.public_numbers() == first.public_key.public_numbers()
    assert first.path.read_bytes() == content


def test_stock_adbkey_is_used_when_posdiag_has_none(home: Path, other_key: AdbKey) -> None:
    stock = home / ".android" / "adbkey"
    stock.parent.mkdir()
    stock.write_bytes(other_key.to_pem())  # PEM PKCS#8, as the stock client writes it
    loaded = load_or_create_key()
    assert loaded.path == stock
    assert loaded.public_key.public_numbers() == other_key.public_key.public_numbers()
    assert not (home / ".config" / "posdiag" / "adbkey").exists()


def test_posdiag_key_wins_over_the_stock_key(home: Path, key: AdbKey, other_key: AdbKey) -> None:
    own = load_or_create_key()
    stock = home / ".android" / "adbkey"
    stock.parent.mkdir()
    stock.write_bytes(other_key.to_pem())
    assert load_or_create_key().path == own.path


def test_explicit_path_never_falls_back_to_the_stock_key(
    home: Path, other_key: AdbKey, tmp_path: Path
) -> None:
    stock = home / ".android" / "adbkey"
    stock.parent.mkdir()
    stock.write_bytes(other_key.to_pem())
    target = tmp_path / "explicit" / "key"
    loaded = load_or_create_key(target)
    assert loaded.path == target
    assert loaded.public_key.public_numbers() != other_key.public_key.public_numbers()


def test_pem_formats_are_compatible(key: AdbKey, tmp_path: Path) -> None:
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(key.to_pem(), password=None)
    traditional = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert traditional.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    path = tmp_path / "adbkey"
    path.write_bytes(traditional)
    loaded = load_or_create_key(path)
    assert loaded.public_key.public_numbers() == key.public_key.public_numbers()


def test_unusable_key_files_raise_key_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"hello")
    ec_key = tmp_path / "ec"
    ec_key.write_bytes(_pem_pkcs8(ec.generate_private_key(ec.SECP256R1())))
    encrypted = tmp_path / "encrypted"
    encrypted.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    unreadable = tmp_path / "dir-not-file"
    unreadable.mkdir()
    for path in (garbage, ec_key, encrypted, unreadable):
        with pytest.raises(AdbKeyError):
            load_or_create_key(path)


def test_uncreatable_key_raises_a_key_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(AdbKeyError, match="cannot create"):
        load_or_create_key(blocker / "sub" / "adbkey")


def test_key_material_is_never_logged_or_shown(home: Path, key: AdbKey) -> None:
    with capture_logs() as logs:
        created = load_or_create_key()
        created.sign_token(bytes(20))
    text = repr(logs) + repr(created)
    pem_body = key.to_pem().decode().splitlines()[1]
    public_b64 = key.android_public_key().split(b" ")[0].decode()
    assert pem_body not in text
    assert public_b64[:40] not in text
    assert "BEGIN" not in text
    assert any(entry["event"] == "adb.key_created" for entry in logs)


def test_module_keeps_generation_parameters() -> None:
    assert (auth.KEY_BITS, auth.PUBLIC_EXPONENT) == (2048, 65537)


# ---------------------------------------------------------------------- stock client vectors

# Made by the stock client (Debian adb 29.0.6) in an empty HOME: the adbkey it wrote, its
# adbkey.pub, and its AUTH SIGNATURE for the token 00 01 .. 13. A throwaway test key.
STOCK_ADBKEY = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCvAPWS8VfefyWp
ghBYjsFS5T9bHS7SqjzZAtJEOIcQmgkjWIPR6nVaP1t8Ktz4S1sEKftUEtxrt0u9
j/eTLD0jkzW/HWPcaf3uCzRrFccKjBmyoVT/0sYnsf6MYbguPXkjMHpq69OwLU9J
rOkJSjlbn1tGkpD+p8cZKrTc1sWxv7XIsOob8zUGUJ010M6mMmCtccu5wj9ooAhH
cmyHgfTW+Z/eifnu+iwCyk7dSZXLxMtLRWHjZImVAvwv+6f922BAuO0QJy1Pcd4n
2WygZz5xevW6JF7rIJc+kcWfmXthYPcj4Ppax+N3X55QSQKhxQRUPDNzLCQeVUba
9fbrcuvxAgMBAAECggEAAbQxRTy8ewdYYxyH0wuSxh9Cx7zn6uJVmimiSUqWmrqx
NOr59OuC4yh47XjPssrYXZjuCu0YayO7T6LCSZMgRkN66LvdGsqHunoD8431pJHl
dyfbIhbX2eTsV6APm8L6oLUqX/ZLVuyzWAI1uPguyPMAf8D8uz9VcNaJsRkV5CuM
8ZA7uhDvabqcYDxgO1S0PP/eJwAcgmT7YxqUPgiCi8JpvRENfUJaqcK2UBZAlPLD
i8Rnfrq4oJjzBb/tN6xZ+O7AE13VmDi3bBkWYB90m0c0rW/VBO1GmO6XtUvNTAYZ
6Z3MOFIuQZLPrvvXOZTWWrqA2j9n0yzRlQ0xj8XqgQKBgQDqPllZTyunsu17NnS8
8IQmF7CCEw88w6x3sORQRyaeO2U6BEWHIRWSzR1T8xcmDqouI6Nt9BTUzfJFRgZR
QPofboBNlsplpJG+cMY6UIxhyKC3oLKGKflBW4BPODESz3K422/RVVvRw3ddqQv3
akWRSaH7ZfV+Ve3nIi2k/iLa4QKBgQC/Qg4HgJYlULP3XU6TNv5XUq2rD/E538Os
577AOxtZLKFnf78X6ESVa0lAiXs4ZIilTNSiEct3qsiEWXq30mq043NLnAkckOgX
GMwPjpxIY4Ua+HEphrGj1lqosvahaPLZZM89oqqGe/It8icx5alEV4XkbyMGxj1p
eDZN3InDEQKBgQC1MQFgKfN0xt0X/+mQ9OLjrFNmamPQ9vMDqpsQ1dizcPI+TGuT
uS283lifRVxUnedZxUt3k+RBMAUFPMNKOt6/TXSFj+yDbycljopnNUNBqDVZlT5C
tVkPCz5XCPo8uKbfAy6dWE+sFGzS0B5nhZbGaZSYqCebT9C0hyWTiNlhQQKBgAu/
Cc+KJS6Lg1II5/+AnCROzp237+/G/2SKIxv5RVe3tv39SYY1XKj0mt4c03WGLyI/
0rtVbnKeCYyfVjsd8DHF2lnlbmXTvH1Wp4m5D34eppkecwzC2fwe+RhtTVpicK/L
UjMN33089YW+3otg+IFbAr0h2jvbRwBIQsWLauaRAoGASzlq/KrRSKKb8id20b2W
kiHBnbYyKC4NdB3NwGtLVSy2rEFmXTGXXESo6QqA1jc3lBCHDTu/fCcbaSlLbVm1
mJPVlNAbMi66Zt/yS3EtqeQZduns/JCEU2rEMK4JdyjznpOExGBLtAzGlBnEvbTw
wLRj94ChIosssn1skjsuOEQ=
-----END PRIVATE KEY-----
"""
STOCK_ADBKEY_PUB_B64 = (
    b"QAAAAO9a8wPx63Lr9vXaRlUeJCxzMzxUBMWhAklQnl9348da+uAj92Bhe5mfxZE+lyDrXiS69XpxPmegbNkn3nFP"
    b"LScQ7bhAYNv9p/sv/AKViWTjYUVLy8TLlUndTsoCLPru+Ynen/nW9IGHbHJHCKBoP8K5y3GtYDKmztA1nVAGNfMb"
    b"6rDItb+xxdbctCoZx6f+kJJGW59bOUoJ6axJTy2w0+tqejAjeT0uuGGM/rEnxtL/VKGyGYwKxxVrNAvu/WncYx2/"
    b"NZMjPSyT94+9S7dr3BJU+ykEW0v43Cp8Wz9aderRg1gjCZoQhzhE0gLZPKrSLh1bP+VSwY5YEIKpJX/eV/GS9QCv"
    b"DlTSiHSZE3WqeClObSlbRjVQeUptBXjAyQ5OCyPp8Y60mKZnMlGoTLH2xJstfRPN/MhBJ45buf3T2LN+BCpXMlDu"
    b"euAg911IolvcwMeLoiQWiyG1fjfcvHZqbxeuVf4NGcee8B36FVrmjMnRIRofFdhiKj9ejafwtY+nXOlUAN3uO362"
    b"9ZdLsncjuTSZtbTOSwoF6CFb8BmBkevcb4CEkbtC89MhIOUxkJtBh3ZhanLl1idy0yN8sjqTtJyl61pGso+N1DnI"
    b"yQzXM3HQkZ2/hWFG5Nh0gtM6WgMp54141Y2kPYoUsDYHueclXqaZtWD+lUPxgXnuSYoYaVcacpTEowEAAQA="
)
STOCK_SIGNATURE = bytes.fromhex(
    "21b738100f006a187cbb1ac179bacea670b2eef0e0d7c4638fe662d5de990b64f5c6ec640ac34d70a6e9e9a9"
    "720a8e5d19fa8104831e9559188acf835d6cc1d9b9a0ff0344830a8bb59b7789398586c83756c5188313f2c2"
    "3ad17766dd7844bd2e783879950f5b18a9d4724e8250480a9880a9fb3296a66c0223a8791ded154ddf4c4572"
    "65280fff74ffcb5d27aeccb20612b5a606f96cf085ce9229d8b34c18299da582deb67982fad3337900a7dbcc"
    "150084b44fc986e61fc68ab052be9d592c2cd27c9759ae2b41276468a3f84631f95eb533052e40b5f578b59f"
    "e477cc7fa62b8dcfb2e888e648ea3b140a9c10949430c5597b9b0e6d9419e06544d53e79"
)


def test_stock_adbkey_loads_and_matches_its_pub_file(tmp_path: Path) -> None:
    path = tmp_path / "adbkey"
    path.write_bytes(STOCK_ADBKEY)
    key = load_or_create_key(path)
    assert key.android_public_key("@unknown") == STOCK_ADBKEY_PUB_B64 + b" @unknown"
    assert parse_android_public_key(STOCK_ADBKEY_PUB_B64).public_numbers() == (
        key.public_key.public_numbers()
    )


def test_signature_matches_the_stock_client_byte_for_byte() -> None:
    key = AdbKey.from_pem(STOCK_ADBKEY)
    token = bytes(range(20))
    assert key.sign_token(token) == STOCK_SIGNATURE
    assert verify_token_signature(key.public_key, token, STOCK_SIGNATURE)
