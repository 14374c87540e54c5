"""The ADB host key: RSA-2048, token signatures and Android's public key format.

A device that requires authentication sends AUTH TOKEN with 20 random bytes; the host signs
them with PKCS#1 v1.5 as if they were a SHA-1 digest (``RSA_sign(NID_sha1, token, 20)``: the
token is *not* hashed again) and answers AUTH SIGNATURE. If no key is accepted it sends AUTH
RSAPUBLICKEY, and the device may ask its user to trust the key.

Public key wire format (``android_pubkey.h``; all integers little-endian)::

    base64(struct) + b" " + comment            e.g. b"QAAAA...= posdiag@host"

    struct RSAPublicKey (524 bytes):
    offset size field
    0      4    modulus_size_words  64 (2048 bits / 32)
    4      4    n0inv               -1 / n mod 2**32 (Montgomery constant)
    8      256  modulus             n, little-endian
    264    256  rr                  (2**2048)**2 mod n, little-endian
    520    4    exponent            65537

Key files are PEM PKCS#8 (``-----BEGIN PRIVATE KEY-----``), the format the stock client writes
to ``~/.android/adbkey``, so either tool can use the other's key. Key material is never logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from ..errors import PosdiagError
from ..private_files import make_private_dirs, write_temporary
from .protocol import TOKEN_SIZE, AdbProtocolError

# cryptography is imported where a key is made, read, used or checked: most devices (and every
# simulated one) ask for no AUTH, and a check should not pay ~10 ms to load it for nothing.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

log = structlog.get_logger(__name__)

KEY_BITS = 2048
PUBLIC_EXPONENT = 65537
MODULUS_WORDS = KEY_BITS // 32
ANDROID_PUBKEY_ENCODED_SIZE = 3 * 4 + 2 * (KEY_BITS // 8)
DEFAULT_COMMENT = "posdiag@host"

_WORDS = struct.Struct("<II")
_EXPONENT = struct.Struct("<I")
_MODULUS_BYTES = KEY_BITS // 8


class AdbKeyError(PosdiagError):
    """The host key file cannot be read, written or used (not RSA-2048, encrypted, corrupt)."""


def default_key_path() -> Path:
    """The path of posdiag's own key, ``$XDG_CONFIG_HOME`` or ``~/.config`` + ``posdiag/adbkey``.

    A relative ``XDG_CONFIG_HOME`` is ignored, as the XDG spec requires.
    """
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return base / "posdiag" / "adbkey"


def stock_key_path() -> Path:
    """Where the stock adb client keeps its key, ``~/.android/adbkey``."""
    return Path.home() / ".android" / "adbkey"


class AdbKey:
    """An RSA-2048 private key used to authenticate to devices.

    Args:
        private_key: the key.
        path: the file it was loaded from or written to, if any (for messages only).
    """

    def __init__(self, private_key: rsa.RSAPrivateKey, path: Path | None = None) -> None:
        if private_key.key_size != KEY_BITS:
            raise AdbKeyError(
                f"ADB keys are RSA-{KEY_BITS}; {path or 'this key'} has {private_key.key_size} bits"
            )
        if private_key.public_key().public_numbers().e > 0xFFFFFFFF:
            raise AdbKeyError(f"{path or 'this key'} has a public exponent ADB cannot carry")
        self._key = private_key
        self.path = path

    def __repr__(self) -> str:
        return f"AdbKey(path={str(self.path) if self.path else None!r})"

    @classmethod
    def generate(cls) -> AdbKey:
        """A new RSA-2048 key with e = 65537, as the stock client creates."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        return cls(rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS))

    @classmethod
    def from_pem(cls, data: bytes, path: Path | None = None) -> AdbKey:
        """Load a PEM private key (PKCS#8 as adb writes it, or traditional ``RSA PRIVATE KEY``).

        Raises:
            AdbKeyError: not PEM, encrypted, or not an RSA-2048 key.
        """
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        where = str(path) if path else "the key"
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, binascii.Error):
            raise AdbKeyError(
                f"{where} is not an unencrypted PEM private key; move it away to create a new one"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise AdbKeyError(f"{where} is not an RSA key")
        return cls(key, path)

    def to_pem(self) -> bytes:
        """The key as unencrypted PEM PKCS#8, the stock client's ``adbkey`` format."""
        from cryptography.hazmat.primitives import serialization

        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The public half."""
        return self._key.public_key()

    def sign_token(self, token: bytes) -> bytes:
        """Sign an AUTH token for AUTH SIGNATURE.

        The token is treated as an already computed SHA-1 digest (PKCS#1 v1.5 with the SHA-1
        DigestInfo prefix, nothing hashed), which is what adbd verifies.

        Raises:
            AdbProtocolError: the token is not 20 bytes, so it cannot be a SHA-1 digest (the
                stock client would fail the same way).
        """
        if len(token) != TOKEN_SIZE:
            raise AdbProtocolError(
                f"the device's AUTH token is {len(token)} bytes; ADB tokens are {TOKEN_SIZE}"
            )
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        return self._key.sign(bytes(token), padding.PKCS1v15(), Prehashed(hashes.SHA1()))

    def android_public_key(self, comment: str = DEFAULT_COMMENT) -> bytes:
        """The key for AUTH RSAPUBLICKEY (or a device's ``adb_keys`` line), without the NUL."""
        return encode_android_public_key(self.public_key, comment)


def encode_android_public_key(
    public_key: rsa.RSAPublicKey, comment: str = DEFAULT_COMMENT
) -> bytes:
    """``base64(RSAPublicKey struct) + b" " + comment`` (see the module docstring).

    Raises:
        ValueError: the key is not RSA-2048, or the comment contains a line break or NUL (the
            device stores keys one per line).
    """
    if any(c in comment for c in "\r\n\0"):
        raise ValueError("the key comment must be a single line without NUL")
    numbers = public_key.public_numbers()
    n = numbers.n
    if n.bit_length() != KEY_BITS:
        raise ValueError(f"ADB public keys are RSA-{KEY_BITS}")
    n0inv = (-pow(n & 0xFFFFFFFF, -1, 1 << 32)) % (1 << 32)
    rr = pow(2, 2 * KEY_BITS, n)
    struct_bytes = (
        _WORDS.pack(MODULUS_WORDS, n0inv)
        + n.to_bytes(_MODULUS_BYTES, "little")
        + rr.to_bytes(_MODULUS_BYTES, "little")
        + _EXPONENT.pack(numbers.e)
    )
    return base64.b64encode(struct_bytes) + b" " + comment.encode()


def parse_android_public_key(data: bytes) -> rsa.RSAPublicKey:
    """Parse an AUTH RSAPUBLICKEY payload or an ``adb_keys`` line into a public key.

    Accepts a trailing NUL, newline and comment. The struct's redundant fields (n0inv, rr) are
    checked so a corrupted key is rejected rather than trusted.

    Raises:
        AdbKeyError: not base64, not 524 bytes, not 64 words, or inconsistent fields.
    """
    fields = bytes(data).split(b"\0", 1)[0].split()
    if not fields:
        raise AdbKeyError("the ADB public key is empty")
    try:
        raw = base64.b64decode(fields[0], validate=True)
    except (binascii.Error, ValueError):
        raise AdbKeyError("the ADB public key is not base64") from None
    if len(raw) != ANDROID_PUBKEY_ENCODED_SIZE:
        raise AdbKeyError(
            f"the ADB public key is {len(raw)} bytes; expected {ANDROID_PUBKEY_ENCODED_SIZE}"
        )
    words, n0inv = _WORDS.unpack_from(raw, 0)
    if words != MODULUS_WORDS:
        raise AdbKeyError(f"the ADB public key has {words} modulus words; expected {MODULUS_WORDS}")
    n = int.from_bytes(raw[8 : 8 + _MODULUS_BYTES], "little")
    rr = int.from_bytes(raw[8 + _MODULUS_BYTES : 8 + 2 * _MODULUS_BYTES], "little")
    (exponent,) = _EXPONENT.unpack_from(raw, 8 + 2 * _MODULUS_BYTES)
    if n.bit_length() != KEY_BITS or n % 2 == 0:
        raise AdbKeyError("the ADB public key's modulus is not a 2048-bit odd number")
    if (n0inv * n + 1) % (1 << 32) != 0 or rr != pow(2, 2 * KEY_BITS, n):
        raise AdbKeyError("the ADB public key's n0inv or rr does not match its modulus")
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        return rsa.RSAPublicNumbers(exponent, n).public_key()
    except ValueError:
        raise AdbKeyError("the ADB public key's exponent is invalid") from None


def verify_token_signature(public_key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is this key's AUTH signature of ``token`` (device side)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    try:
        public_key.verify(
            bytes(signature), bytes(token), padding.PKCS1v15(), Prehashed(hashes.SHA1())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def load_or_create_key(path: Path | None = None) -> AdbKey:
    """The host key: load it, or create it on first use.

    With ``path`` that file is loaded or created. Without it: posdiag's own key
    (``default_key_path()``) if present; else the stock client's ``~/.android/adbkey`` if
    present, used in place so devices that already trust this computer accept posdiag without a
    prompt; else a new key at ``default_key_path()``.

    New files are created with mode 0600 from the start (``os.open`` with 0o600, never chmod
    after writing, so the key is never readable by others even briefly) and missing parent
    directories with 0700. The file is written under a temporary name and linked into place,
    so a crash never leaves half a key and a concurrent creator's key is kept, not overwritten.

    Raises:
        AdbKeyError: the key file exists but cannot be read or used, or cannot be created.
    """
    if path is None:
        target = default_key_path()
        if not target.exists():
            stock = stock_key_path()
            if stock.is_file():
                log.info("adb.key_stock", path=str(stock))
                return _load(stock)
    else:
        target = Path(path)
    if target.exists():
        return _load(target)
    return _create(target)


def _load(path: Path) -> AdbKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AdbKeyError(f"cannot read the ADB key {path}: {exc.strerror}") from None
    return AdbKey.from_pem(data, path)


def _create(path: Path) -> AdbKey:
    key = AdbKey.generate()
    pem = key.to_pem()
    try:
        make_private_dirs(path.parent)
        temporary = write_temporary(path, pem)
        try:
            os.link(temporary, path)  # not replace: a key another process made first wins
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    except FileExistsError:
        log.info("adb.key_created_concurrently", path=str(path))
        return _load(path)
    except OSError as exc:
        raise AdbKeyError(f"cannot create the ADB key {path}: {exc.strerror}") from None
    log.info("adb.key_created", path=str(path))
    key.path = path
    return key
