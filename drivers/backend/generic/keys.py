"""Key material for a generic backend: the shared secret, or RSA keys from settings or files.

Checked when the backend is opened, so a missing or unreadable key is a configuration error
before any request, never a signature failure at the platform. Errors name the setting, never
the key.
"""

from __future__ import annotations

from pathlib import Path

from ..config import BackendConfig
from ..model import BackendConfigError
from .profile import Profile
from .signing import SigningKeys, load_private_key, load_public_key

__all__ = ["signing_keys"]

MAX_KEY_FILE = 64 * 1024


def _read_key(config: BackendConfig, name: str) -> str | None:
    """A key from setting ``name`` or from the file named by ``name_file`` (bounded)."""
    value = config.setting(name)
    if value:
        if not isinstance(value, str):
            raise BackendConfigError(f"backend {config.name!r}: {name} must be a PEM string")
        return value
    file_name = config.setting(f"{name}_file")
    if not file_name:
        return None
    path = Path(str(file_name)).expanduser()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise BackendConfigError(
            f"backend {config.name!r}: cannot read {name}_file {path}: {exc.strerror}"
        ) from None
    if len(data) > MAX_KEY_FILE:
        raise BackendConfigError(f"backend {config.name!r}: {name}_file {path} is too large")
    return data.decode("ascii", errors="replace")


def signing_keys(config: BackendConfig, profile: Profile) -> SigningKeys:
    """The key material the profile's scheme needs, checked before any request."""
    signing = profile.signing
    if signing.spec.scheme != "sha256withrsa-sorted":
        secret = config.require("secret")
        if not isinstance(secret, str):
            raise BackendConfigError(f"backend {config.name!r}: secret must be a string")
        return SigningKeys(secret=secret)
    pem = _read_key(config, "private_key")
    if pem is None:
        raise BackendConfigError(
            f"backend {config.name!r} needs the setting 'private_key' or 'private_key_file'"
        )
    public_pem = _read_key(config, "platform_public_key")
    if public_pem is None and signing.verify_response:
        raise BackendConfigError(
            f"backend {config.name!r}: profile {profile.name} verifies answers: set "
            "'platform_public_key' or 'platform_public_key_file'"
        )
    try:
        private = load_private_key(pem)
        public = load_public_key(public_pem) if public_pem else None
    except ValueError as exc:
        raise BackendConfigError(f"backend {config.name!r}: {exc}") from None
    return SigningKeys(private_key=private, public_key=public)
