"""Adyen's local Terminal API encryption (AdyenCryptoVersion 1), sans-IO, both directions.

Key derivation (reference nexo.md §6): PBKDF2-HMAC-SHA1 over the passphrase (UTF-8; Adyen's
rules keep it ASCII), salt ``b"AdyenNexoV1Salt"``, 4000 iterations, 80 bytes::

    bytes  0..31   HMAC-SHA256 key
    bytes 32..63   AES-256 key
    bytes 64..79   IV (before the per-message nonce)

Per message: a fresh 16-byte nonce; IV = derived IV XOR nonce; the UTF-8 JSON of the *whole*
clear message (``{"SaleToPOIRequest": {"MessageHeader": …, "DiagnosisRequest": …}}``) is
encrypted with AES-256-CBC and PKCS#7 padding, and authenticated by HMAC-SHA256 over the same
*plaintext* bytes (encrypt-and-MAC). On the wire::

    {"SaleToPOIRequest": {                      (or "SaleToPOIResponse")
        "MessageHeader": {...clear copy of the inner header...},
        "NexoBlob": b64(ciphertext),
        "SecurityTrailer": {
            "AdyenCryptoVersion": 1,
            "KeyIdentifier": "...",
            "KeyVersion": n,
            "Nonce": b64(nonce),
            "Hmac": b64(hmac)}}}

Base64 is standard with padding; whitespace is ignored when decoding. The receiver checks the
version, picks the key by identifier and version, decrypts, verifies the HMAC over the decrypted
bytes (never a re-serialisation) in constant time, and compares the clear header with the
decrypted one. Every failure of those checks is the same :class:`NexoCryptoError` with the same
message: no padding or MAC oracle.

Keys: a :class:`NexoKey` never shows its passphrase in ``repr``; derived material is cached
(PBKDF2 is slow on purpose) in a small bounded LRU keyed by the passphrase, inside this process
only. Nothing here logs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import sha256
from typing import Any

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..text import clean_text
from .errors import NexoCryptoError, NexoDecodeError, NexoUnknownKeyError
from .jsonwire import MAX_MESSAGE_BYTES, dumps, loads
from .messages import TOPS

__all__ = [
    "CRYPTO_VERSION",
    "NONCE_BYTES",
    "DerivedKey",
    "KeyLookup",
    "NexoKey",
    "decrypt_message",
    "derive_key",
    "encrypt_bytes",
    "encrypt_message",
    "is_encrypted",
]

CRYPTO_VERSION = 1
NONCE_BYTES = 16
SALT = b"AdyenNexoV1Salt"
ITERATIONS = 4000
_KEY_MATERIAL_BYTES = 80
_WHITESPACE = re.compile(r"\s+", re.ASCII)
_MAX_IDENTIFIER = 128


@dataclass(frozen=True)
class NexoKey:
    """A shared key as configured on the terminal: identifier, version and passphrase.

    The passphrase is excluded from ``repr`` (and so from ``str``, logs and tracebacks that show
    the object); the identifier and version are not secret, they travel in clear text.
    """

    identifier: str
    version: int
    passphrase: str = field(repr=False)
    crypto_version: int = CRYPTO_VERSION


@dataclass(frozen=True)
class DerivedKey:
    """The 80 bytes PBKDF2 derives from a passphrase, split as Adyen's libraries split them."""

    hmac_key: bytes = field(repr=False)
    cipher_key: bytes = field(repr=False)
    iv: bytes = field(repr=False)


@lru_cache(maxsize=16)
def derive_key(passphrase: str) -> DerivedKey:
    """Derive the HMAC key, AES key and IV from a passphrase (cached: 4000 PBKDF2 rounds)."""
    material = PBKDF2HMAC(
        algorithm=hashes.SHA1(),  # Adyen's scheme; SHA-1 is fine inside PBKDF2's HMAC
        length=_KEY_MATERIAL_BYTES,
        salt=SALT,
        iterations=ITERATIONS,
    ).derive(passphrase.encode("utf-8"))
    return DerivedKey(hmac_key=material[:32], cipher_key=material[32:64], iv=material[64:80])


def _b64(data: bytes) -> str:
    """Standard Base64 with padding, as every Adyen library writes it."""
    return base64.b64encode(data).decode("ascii")


def encrypt_bytes(
    top: str,
    header: Mapping[str, Any],
    plaintext: bytes,
    key: NexoKey,
    *,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    """Encrypt exact plaintext bytes into an envelope under ``top`` with ``header`` in clear.

    The lower-level form of :func:`encrypt_message`, for callers (tests, fault injection) that
    need byte-exact plaintext. ``nonce`` is for deterministic tests only; leave it None.
    """
    if top not in TOPS:
        raise ValueError(f"unknown message envelope {top!r}")
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError("a nonce is 16 bytes")
    derived = derive_key(key.passphrase)
    iv = bytes(a ^ b for a, b in zip(derived.iv, nonce, strict=True))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(derived.cipher_key), modes.CBC(iv)).encryptor()
    blob = encryptor.update(padded) + encryptor.finalize()
    mac = hmac.new(derived.hmac_key, plaintext, sha256).digest()
    return {
        top: {
            "MessageHeader": dict(header),
            "NexoBlob": _b64(blob),
            "SecurityTrailer": {
                "AdyenCryptoVersion": key.crypto_version,
                "KeyIdentifier": key.identifier,
                "KeyVersion": key.version,
                "Nonce": _b64(nonce),
                "Hmac": _b64(mac),
            },
        }
    }


def _top_of(message: Mapping[str, Any]) -> str:
    """The single envelope key of a message (SaleToPOIRequest or SaleToPOIResponse)."""
    if not isinstance(message, Mapping) or len(message) != 1:
        raise NexoDecodeError("At toplevel, field SaleToPOIRequest: Missing", path="")
    top = next(iter(message))
    if top not in TOPS or not isinstance(message[top], Mapping):
        raise NexoDecodeError("At toplevel, field SaleToPOIRequest: Missing", path="")
    return str(top)


def encrypt_message(
    message: Mapping[str, Any], key: NexoKey, *, nonce: bytes | None = None
) -> dict[str, Any]:
    """Encrypt a clear message (``{"SaleToPOIRequest": {...}}``) into its wire envelope.

    The message is serialised compactly (:func:`~.jsonwire.dumps`); its MessageHeader is copied
    in clear beside the blob so the receiver can route it before decrypting.
    """
    top = _top_of(message)
    header = message[top].get("MessageHeader", {})
    if not isinstance(header, Mapping):
        raise ValueError("the MessageHeader is not an object")
    return encrypt_bytes(top, header, dumps(message), key, nonce=nonce)


def is_encrypted(message: Mapping[str, Any]) -> bool:
    """True when the message carries a NexoBlob or SecurityTrailer under its envelope key."""
    if not isinstance(message, Mapping):
        return False
    for top in TOPS:
        inner = message.get(top)
        if isinstance(inner, Mapping) and ("NexoBlob" in inner or "SecurityTrailer" in inner):
            return True
    return False


def _strict_b64(value: object, limit: int) -> bytes:
    """Decode standard Base64 strictly (alphabet and padding), ignoring whitespace."""
    if not isinstance(value, str) or len(value) > limit:
        raise NexoCryptoError()
    compact = _WHITESPACE.sub("", value)
    if not compact.isascii():
        raise NexoCryptoError()
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise NexoCryptoError() from None


KeyLookup = Callable[[str, int], "NexoKey | None"]
"""Finds the key a message names: ``lookup(identifier, version)`` → the key, or None."""


def _pick_key(trailer: Mapping[str, Any], keys: KeyLookup | NexoKey) -> NexoKey:
    """The key the SecurityTrailer names, or NexoUnknownKeyError."""
    identifier, version = trailer.get("KeyIdentifier"), trailer.get("KeyVersion")
    shown = clean_text(identifier, limit=64) if identifier is not None else "?"
    if (
        not isinstance(identifier, str)
        or len(identifier) > _MAX_IDENTIFIER
        or not isinstance(version, int)
        or isinstance(version, bool)
    ):
        raise NexoUnknownKeyError(shown, version if isinstance(version, int) else None)
    if isinstance(keys, NexoKey):
        found: NexoKey | None = (
            keys if keys.identifier == identifier and keys.version == version else None
        )
    else:
        found = keys(identifier, version)
    if found is None:
        raise NexoUnknownKeyError(shown, version)
    return found


def decrypt_message(
    wire: Mapping[str, Any], keys: KeyLookup | NexoKey
) -> tuple[dict[str, Any], bytes]:
    """Decrypt and authenticate an encrypted envelope.

    Args:
        wire: the parsed envelope (``{"SaleToPOIResponse": {"MessageHeader", "NexoBlob",
            "SecurityTrailer"}}``).
        keys: the one key we hold, or a lookup by (KeyIdentifier, KeyVersion).

    Returns:
        The decrypted message object, and the exact plaintext bytes the HMAC covered.

    Raises:
        NexoUnknownKeyError: the trailer names a key we do not hold.
        NexoCryptoError: anything else about the envelope, the cipher or the MAC (one message).
        NexoDecodeError: the message authenticated, but its plaintext is not a nexo message
            object (the peer holds the key; this is a broken peer, not a wrong key).
    """
    if not isinstance(wire, Mapping) or len(wire) != 1:
        raise NexoCryptoError()
    top = next(iter(wire))
    inner = wire[top]
    if top not in TOPS or not isinstance(inner, Mapping):
        raise NexoCryptoError()
    trailer = inner.get("SecurityTrailer")
    if not isinstance(trailer, Mapping):
        raise NexoCryptoError()
    crypto_version = trailer.get("AdyenCryptoVersion")
    if type(crypto_version) is not int or crypto_version != CRYPTO_VERSION:
        raise NexoCryptoError()
    key = _pick_key(trailer, keys)
    nonce = _strict_b64(trailer.get("Nonce"), 64)
    mac = _strict_b64(trailer.get("Hmac"), 128)
    blob = _strict_b64(inner.get("NexoBlob"), 2 * MAX_MESSAGE_BYTES)
    if len(nonce) != NONCE_BYTES or not blob or len(blob) % 16:
        raise NexoCryptoError()
    derived = derive_key(key.passphrase)
    iv = bytes(a ^ b for a, b in zip(derived.iv, nonce, strict=True))
    try:
        decryptor = Cipher(algorithms.AES(derived.cipher_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(blob) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        plaintext = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        plaintext = b""  # fall through to the MAC check: same path, same error, no oracle
    expected = hmac.new(derived.hmac_key, plaintext, sha256).digest()
    if not hmac.compare_digest(expected, mac) or not plaintext:
        raise NexoCryptoError()
    message = loads(plaintext)
    inner_clear = message.get(top)
    if len(message) != 1 or not isinstance(inner_clear, Mapping):
        raise NexoCryptoError()
    clear_header = inner.get("MessageHeader")
    if clear_header is not None and inner_clear.get("MessageHeader") != clear_header:
        raise NexoCryptoError()
    return message, plaintext
