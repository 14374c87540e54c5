"""The station's Ed25519 signing key: created once, private, and never shown.

Whoever holds the key can issue certificates in the station's name, so it lives in a file only
its user can read; its public half is what a depot hands out so others can verify certificates.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ..logs import get_logger
from .errors import CertificateError

__all__ = ["KEY_FILE_NAME", "StationKey", "default_key_path", "fingerprint_of", "raw_public"]

log = get_logger(__name__)

KEY_FILE_NAME = "station_ed25519.pem"


def fingerprint_of(raw_public_key: bytes) -> str:
    """Short display fingerprint of a raw Ed25519 public key.

    The first 64 bits of SHA-256, in colon-separated groups, are enough for a person to compare a
    printout with a station's screen; trust decisions compare the full key, never this.

    Args:
        raw_public_key: the 32 raw public key bytes.

    Returns:
        Something like ``"3f2a:9c1d:07be:55e0"``.
    """
    digest = hashlib.sha256(raw_public_key).hexdigest()[:16]
    return ":".join(digest[i : i + 4] for i in range(0, 16, 4))


def default_key_path() -> Path:
    """Where the station key lives unless told otherwise.

    ``$XDG_CONFIG_HOME/posdiag/station_ed25519.pem``, or ``~/.config/posdiag/…`` when the variable
    is unset or not absolute (the XDG spec says to ignore relative values).
    """
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "posdiag" / KEY_FILE_NAME


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key, the form signatures embed."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class StationKey:
    """The station's Ed25519 signing key.

    One key per station, kept in a file only its user can read: whoever holds it can issue
    certificates in the station's name. It is created on first use so a new station works out of
    the box; its public key is exported so others can verify certificates against it.
    """

    def __init__(self, private_key: Ed25519PrivateKey, path: Path | None = None) -> None:
        self._private_key = private_key
        self.path = path
        self._raw_public = raw_public(private_key.public_key())

    @classmethod
    def generate(cls) -> StationKey:
        """A fresh key held only in memory (tests, one-off signing)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> StationKey:
        """Load the station key, creating it (and its folder) on first use.

        A new folder is made 0700 (an existing one is left as it is) and the file is created 0600
        from the start (``os.open`` with ``O_EXCL``), never loosened and tightened afterwards, so
        the private key is not readable by others even for a moment. It is written to a temporary
        name and hard-linked into place, so two stations starting together never read a
        half-written key.

        Args:
            path: key file; :func:`default_key_path` when None.

        Returns:
            The key, the same one on every later call.

        Raises:
            CertificateError: if the file is unreadable, not an Ed25519 PKCS#8 key, or readable by
                other users.
        """
        target = Path(path) if path is not None else default_key_path()
        if not target.exists():
            cls._create(target)
        return cls._load(target)

    @classmethod
    def _create(cls, target: Path) -> None:
        """Write a new key to ``target`` unless another process got there first."""
        folder = target.parent
        if not folder.exists():
            try:
                folder.mkdir(mode=0o700, parents=True)
                # Nothing is in it yet, so making the mode exact (whatever the umask) is safe.
                os.chmod(folder, 0o700)
            except FileExistsError:
                pass
            except OSError as exc:
                raise CertificateError(f"cannot create key folder {folder}: {exc}") from exc
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = folder / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(tmp, flags, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                return  # another station process created it first: use theirs
            except OSError:
                # File systems without hard links: publish by rename, still never overwriting.
                if target.exists():
                    return
                os.rename(tmp, target)
        except OSError as exc:
            raise CertificateError(f"cannot write station key {target}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        log.info(
            "station key created",
            path=str(target),
            fingerprint=fingerprint_of(raw_public(key.public_key())),
        )

    @classmethod
    def _load(cls, target: Path) -> StationKey:
        """Read and check an existing key file."""
        try:
            mode = target.stat().st_mode
            data = target.read_bytes()
        except OSError as exc:
            raise CertificateError(f"cannot read station key {target}: {exc}") from exc
        if mode & 0o077:
            raise CertificateError(
                f"station key {target} is readable by other users (mode {mode & 0o777:o}); "
                f"anyone who can read it can forge certificates. Run: chmod 600 {target}"
            )
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CertificateError(
                f"station key {target} is not an unencrypted PKCS#8 PEM key: {exc}"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CertificateError(f"station key {target} is not an Ed25519 key")
        return cls(key, target)

    @property
    def public_key_raw(self) -> bytes:
        """The 32 raw public key bytes, as embedded in signatures."""
        return self._raw_public

    @property
    def fingerprint(self) -> str:
        """Short SHA-256 fingerprint of the public key, for display (see :func:`fingerprint_of`)."""
        return fingerprint_of(self._raw_public)

    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM, to hand to whoever verifies certificates."""
        return (
            self._private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``data``."""
        return self._private_key.sign(data)

    def __repr__(self) -> str:
        # Never show key material, even by accident in a traceback.
        return f"StationKey(fingerprint={self.fingerprint!r}, path={self.path!r})"
