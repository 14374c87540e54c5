"""Sign and verify agent-platform requests and answers (sans-IO: strings in, strings out).

Chinese acquirer and agent platforms sign a flat set of parameters the same basic way (reference
§3.3, recipe [C5]); a profile's ``[signing]`` table picks the variant. Wire layout:

1. **Canonical string.** Take every top-level parameter except the signature field itself, the
   profile's ``exclude`` keys (default ``sign``, ``sign_type``) and empty values (``None`` or
   ``""``). Sort by key in ASCII (code-point) order. Join ``key=value`` pairs with ``&``::

       agentNo=A10001&materialsNo=TEST8000999&timestamp=1700000000000

   Values become text as follows: strings as they are; ``true``/``false`` for booleans; decimal
   integers; Python ``repr`` for floats; nested objects and arrays as compact JSON
   (``separators=(",", ":")``, non-ASCII kept, keys in the order received). How platforms
   stringify nested values is not documented (UNVERIFIED); flat requests, which is what the
   connector sends, do not depend on it. With ``url_encode = true`` each value is first encoded
   like Java's ``URLEncoder.encode(v, "UTF-8")`` (space → ``+``, ``* - . _`` kept, ``~`` →
   ``%7E``), the encoder such platforms' Java SDKs use.
2. **Signature** over the canonical string's UTF-8 bytes:

   * ``md5-sorted``: MD5 of ``canonical + secret_suffix + secret`` where ``secret_suffix`` is
     ``"&key="`` (the widespread recipe) or ``""`` (raw secret appended);
   * ``hmac-sha256-sorted``: HMAC-SHA256 of ``canonical`` keyed with the UTF-8 secret;
   * ``sha256withrsa-sorted``: RSASSA-PKCS1-v1_5 with SHA-256 of ``canonical`` under the
     sender's RSA private key; the receiver verifies with the matching public key.

3. **Encoding**: ``hex`` (``case`` = ``upper`` | ``lower``) or ``base64`` (standard alphabet,
   padded). Hex signatures are compared case-insensitively on verification.

Secrets and signatures never appear in exceptions raised here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "DEFAULT_EXCLUDE",
    "SCHEMES",
    "SignSpec",
    "SigningKeys",
    "canonical",
    "java_url_encode",
    "load_private_key",
    "load_public_key",
    "sign",
    "value_text",
    "verify",
]

SCHEMES = ("md5-sorted", "hmac-sha256-sorted", "sha256withrsa-sorted")
DEFAULT_EXCLUDE = frozenset({"sign", "sign_type"})
MAX_KEY_PEM = 64 * 1024


@dataclass(frozen=True)
class SignSpec:
    """How one platform signs: the ``[signing]`` table of a profile, minus the request fields."""

    scheme: str = "md5-sorted"
    field: str = "sign"
    exclude: frozenset[str] = DEFAULT_EXCLUDE
    url_encode: bool = False
    secret_suffix: str = "&key="
    case: str = "upper"
    encoding: str = "hex"

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown signing scheme {self.scheme!r}")
        if self.case not in ("upper", "lower") or self.encoding not in ("hex", "base64"):
            raise ValueError("case is upper|lower and encoding hex|base64")


@dataclass(frozen=True)
class SigningKeys:
    """Key material of one side.

    Attributes:
        secret: the shared secret (MD5 and HMAC schemes).
        private_key: this side's RSA key, to sign (``sha256withrsa-sorted``).
        public_key: the other side's RSA key, to verify what it signed.
    """

    secret: str | None = None
    private_key: rsa.RSAPrivateKey | None = None
    public_key: rsa.RSAPublicKey | None = None

    def __repr__(self) -> str:
        held = [n for n in ("secret", "private_key", "public_key") if getattr(self, n)]
        return f"SigningKeys(holds={held})"


def java_url_encode(text: str) -> str:
    """``URLEncoder.encode(text, "UTF-8")`` as Java computes it."""
    return quote_plus(text, safe="*", encoding="utf-8", errors="surrogatepass").replace("~", "%7E")


def value_text(value: object) -> str:
    """A parameter value as the canonical string holds it (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return str(value)


def canonical(spec: SignSpec, params: Mapping[str, object]) -> str:
    """The string that is signed: sorted non-empty ``key=value`` pairs joined with ``&``."""
    pairs = []
    for key in sorted(params):
        if key == spec.field or key in spec.exclude:
            continue
        text = value_text(params[key])
        if text == "":
            continue
        if spec.url_encode:
            text = java_url_encode(text)
        pairs.append(f"{key}={text}")
    return "&".join(pairs)


def _utf8(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate from hostile JSON is kept as its code unit, never raised."""
    return text.encode("utf-8", errors="surrogatepass")


def _encode(spec: SignSpec, digest: bytes) -> str:
    if spec.encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    text = digest.hex()
    return text.upper() if spec.case == "upper" else text


def _decode(spec: SignSpec, signature: str) -> bytes | None:
    try:
        if spec.encoding == "base64":
            return base64.b64decode(signature.encode("ascii"), validate=True)
        return bytes.fromhex(signature)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return None


def _digest(spec: SignSpec, keys: SigningKeys, text: str) -> bytes:
    """The symmetric schemes' digest (MD5, HMAC-SHA256)."""
    if keys.secret is None:
        raise ValueError(f"the {spec.scheme} scheme needs the shared secret")
    if spec.scheme == "md5-sorted":
        return hashlib.md5(_utf8(text + spec.secret_suffix + keys.secret)).digest()
    return hmac.new(_utf8(keys.secret), _utf8(text), hashlib.sha256).digest()


def sign(spec: SignSpec, keys: SigningKeys, params: Mapping[str, object]) -> str:
    """The signature of ``params`` (the signature field itself is ignored if present).

    Raises:
        ValueError: the key material the scheme needs is missing (a configuration mistake the
            connector reports before any request).
    """
    text = canonical(spec, params)
    if spec.scheme == "sha256withrsa-sorted":
        if keys.private_key is None:
            raise ValueError("the sha256withrsa-sorted scheme needs an RSA private key")
        return _encode(
            spec, keys.private_key.sign(_utf8(text), padding.PKCS1v15(), hashes.SHA256())
        )
    return _encode(spec, _digest(spec, keys, text))


def verify(
    spec: SignSpec, keys: SigningKeys, params: Mapping[str, object], signature: object
) -> bool:
    """True when ``signature`` is the other side's valid signature of ``params``.

    Any malformed signature (wrong type, bad hex or base64, wrong length) is simply invalid.
    """
    if not isinstance(signature, str) or not signature or len(signature) > 4096:
        return False
    text = canonical(spec, params)
    if spec.scheme == "sha256withrsa-sorted":
        if keys.public_key is None:
            raise ValueError("verifying sha256withrsa-sorted needs the other side's public key")
        raw = _decode(spec, signature)
        if raw is None:
            return False
        try:
            keys.public_key.verify(raw, _utf8(text), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True
    expected = _encode(spec, _digest(spec, keys, text))
    if not signature.isascii():
        return False
    if spec.encoding == "hex":
        return hmac.compare_digest(expected.lower(), signature.lower())
    return hmac.compare_digest(expected, signature)


def _pem_or_der(text: str | bytes, kind: str) -> tuple[bytes, bool]:
    """Key bytes and whether they are PEM; bare base64 DER (as platforms hand keys out) too."""
    data = text.encode("ascii", errors="replace") if isinstance(text, str) else bytes(text)
    if len(data) > MAX_KEY_PEM:
        raise ValueError(f"the {kind} is larger than {MAX_KEY_PEM // 1024} KiB")
    if b"-----BEGIN" in data:
        return data, True
    try:
        return base64.b64decode(b"".join(data.split()), validate=True), False
    except (ValueError, binascii.Error):
        raise ValueError(f"the {kind} is neither PEM nor base64 DER") from None


def load_private_key(text: str | bytes) -> rsa.RSAPrivateKey:
    """An unencrypted RSA private key from PEM (PKCS#1 or PKCS#8) or bare base64 PKCS#8 DER.

    Raises:
        ValueError: not an unencrypted RSA private key (the message never quotes the key).
    """
    data, pem = _pem_or_der(text, "private key")
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if pem
            else serialization.load_der_private_key(data, password=None)
        )
    except (ValueError, TypeError):
        raise ValueError("the private key cannot be read (unencrypted RSA PEM expected)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key is not an RSA key")
    return key


def load_public_key(text: str | bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM or bare base64 SubjectPublicKeyInfo DER.

    Raises:
        ValueError: not an RSA public key.
    """
    data, pem = _pem_or_der(text, "public key")
    try:
        key = (
            serialization.load_pem_public_key(data)
            if pem
            else serialization.load_der_public_key(data)
        )
    except (ValueError, TypeError):
        raise ValueError("the public key cannot be read (RSA PEM expected)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the public key is not an RSA key")
    return key
