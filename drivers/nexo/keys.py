"""Where a nexo terminal's shared key and TLS roots come from, read as the secrets they are.

An Adyen terminal holds one shared key (identifier, version, passphrase) that every POS talking
to it uses to encrypt (reference nexo.md §6). posdiag takes it, in this order:

1. the address's ``key=FILE``: a TOML file private to its owner (mode 600)::

       identifier = "CryptoKeyIdentifier12345"
       version = 1
       passphrase = "p@ssw0rd123456"

2. the station settings' ``[nexo]`` table (``key_identifier``, ``key_version`` and
   ``passphrase_file``, a private file holding only the passphrase; or the passphrase in
   ``POSDIAG_NEXO_PASSPHRASE``);
3. the environment: ``POSDIAG_NEXO_KEY_IDENTIFIER``, ``POSDIAG_NEXO_KEY_VERSION`` and
   ``POSDIAG_NEXO_PASSPHRASE`` together.

Without any of them posdiag talks in clear text, which Adyen allows on TEST terminals only.
A file that others can read is refused with the ``chmod`` that fixes it, as the backends file
is: a passphrase others can read is a shared key others hold.

The terminal's certificate is checked against the address's ``ca=FILE`` (a simulator, a lab
unit) or the settings' ``ca_file``: Adyen's root certificates, which posdiag does not ship and
the operator downloads from Adyen (reference nexo.md §7). A ``ca_file`` that holds neither of
Adyen's roots (known by their SHA-1 fingerprints) is logged, not refused, since Adyen may add
roots; the chain and the name rule are enforced either way.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from ..i18n import _
from .failures import NexoConfigError

if TYPE_CHECKING:
    from .crypto import NexoKey

__all__ = [
    "ADYEN_ROOT_SHA1",
    "ENV_IDENTIFIER",
    "ENV_PASSPHRASE",
    "ENV_VERSION",
    "NexoSettings",
    "adyen_roots_in",
    "load_key_file",
    "make_key",
    "read_private_text",
    "resolve_ca",
    "resolve_key",
]

log = structlog.get_logger(__name__)

ENV_IDENTIFIER = "POSDIAG_NEXO_KEY_IDENTIFIER"
ENV_VERSION = "POSDIAG_NEXO_KEY_VERSION"
ENV_PASSPHRASE = "POSDIAG_NEXO_PASSPHRASE"
MAX_KEY_FILE = 4096
"""A key file is three lines; anything larger is the wrong file."""
MAX_CA_FILE = 1 << 20
"""A CA bundle of a few roots; a megabyte is already generous."""
MAX_PASSPHRASE = 256
ADYEN_ROOT_SHA1 = {
    "d5027fa8b39396db2a4fb186ef61e4a440a73051": "Adyen TEST root",
    "62610d88278e95b7f8579a9b5e0785d772876642": "Adyen LIVE root",
}
"""Adyen's terminal root certificates by SHA-1 fingerprint (reference nexo.md §7)."""
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KEY_FIELDS = frozenset({"identifier", "version", "passphrase"})


@dataclass(frozen=True)
class NexoSettings:
    """The station settings' ``[nexo]`` table, checked for types by the settings reader.

    Attributes:
        key_identifier: the shared key's identifier.
        key_version: its version.
        passphrase_file: a private file holding the passphrase alone.
        ca_file: Adyen's root certificates (PEM), for terminals whose address names no CA.
        event_listen: ``HOST:PORT`` where the station receives the terminals' EventNotifications
            (``posdiag.agent.nexo_events``), checked by the settings reader.
        source: the settings file, for messages.
    """

    key_identifier: str | None = None
    key_version: int | None = None
    passphrase_file: Path | None = None
    ca_file: Path | None = None
    event_listen: str | None = None
    source: Path | None = None

    @property
    def names_key(self) -> bool:
        """Whether the settings name a key (identifier and version)."""
        return self.key_identifier is not None or self.key_version is not None


def read_private_text(path: Path, what: str, limit: int = MAX_KEY_FILE) -> str:
    """The text of a file that holds a secret, refusing one others may read or change.

    Args:
        path: the file.
        what: what it is, for messages ("key file", "passphrase file").
        limit: the largest size accepted.

    Raises:
        NexoConfigError: missing, not a regular file, readable or writable by group or others,
            too large, or not UTF-8; one line naming the file and the fix.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise NexoConfigError(
            _("the nexo {what} {path} does not exist").format(what=what, path=path)
        ) from None
    except OSError as exc:
        raise NexoConfigError(
            _("cannot read the nexo {what} {path}: {why}").format(
                what=what, path=path, why=exc.strerror or exc
            )
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise NexoConfigError(
            _("the nexo {what} {path} is not a file").format(what=what, path=path)
        )
    if info.st_mode & 0o077:
        raise NexoConfigError(
            _(
                "the nexo {what} {path} can be read by others (it holds the terminal's shared "
                "key): chmod 600 {path}"
            ).format(what=what, path=path)
        )
    if info.st_size > limit:
        raise NexoConfigError(
            _("the nexo {what} {path} is larger than {size} bytes: not a {what}").format(
                what=what, path=path, size=limit
            )
        )
    try:
        return path.read_bytes()[: limit + 1].decode("utf-8")
    except OSError as exc:
        raise NexoConfigError(
            _("cannot read the nexo {what} {path}: {why}").format(
                what=what, path=path, why=exc.strerror or exc
            )
        ) from None
    except UnicodeDecodeError:
        raise NexoConfigError(
            _("the nexo {what} {path} is not UTF-8 text").format(what=what, path=path)
        ) from None


def make_key(identifier: object, version: object, passphrase: object, where: str) -> NexoKey:
    """A checked :class:`~.crypto.NexoKey`; ``where`` names the source in messages.

    The passphrase must be printable ASCII: Adyen's libraries encode other characters
    differently (latin-1 in Node, UTF-8 elsewhere), so a non-ASCII one works with some POS
    software and not others (reference nexo.md §6). Messages never quote it.

    Raises:
        NexoConfigError: a missing or malformed part.
    """
    from .crypto import NexoKey

    if not isinstance(identifier, str) or not _IDENTIFIER.fullmatch(identifier):
        raise NexoConfigError(
            _(
                "{where}: the key identifier must be 1 to 64 letters, digits, '.', '_' or '-'"
            ).format(where=where)
        )
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**31:
        raise NexoConfigError(
            _("{where}: the key version must be a whole number").format(where=where)
        )
    if (
        not isinstance(passphrase, str)
        or not passphrase
        or len(passphrase) > MAX_PASSPHRASE
        or not (passphrase.isascii() and passphrase.isprintable())
    ):
        raise NexoConfigError(
            _("{where}: the passphrase must be 1 to {maximum} printable ASCII characters").format(
                where=where, maximum=MAX_PASSPHRASE
            )
        )
    return NexoKey(identifier, version, passphrase)


def load_key_file(path: Path) -> NexoKey:
    """The key a private TOML key file holds (``identifier``, ``version``, ``passphrase``).

    Raises:
        NexoConfigError: the file is public, unreadable, not TOML, or its fields are wrong.
    """
    text = read_private_text(path, _("key file"))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # the parser's message may quote the line, and the line may be the passphrase
        raise NexoConfigError(
            _("the nexo key file {path} is not valid TOML").format(path=path)
        ) from None
    unknown = sorted(set(data) - _KEY_FIELDS)
    missing = sorted(_KEY_FIELDS - set(data))
    if unknown or missing:
        raise NexoConfigError(
            _(
                "the nexo key file {path} must hold exactly identifier, version and passphrase"
            ).format(path=path)
        )
    where = _("the nexo key file {path}").format(path=path)
    return make_key(data["identifier"], data["version"], data["passphrase"], where)


def _passphrase_from_file(path: Path) -> str:
    text = read_private_text(path, _("passphrase file"))
    return text.removesuffix("\n").removesuffix("\r")


def resolve_key(
    key_file: str | None,
    settings: NexoSettings | None,
    environ: Mapping[str, str] | None = None,
) -> tuple[NexoKey | None, str]:
    """The shared key for one terminal, and where it came from (for the log, never the key).

    Args:
        key_file: the address's ``key=`` option.
        settings: the station's ``[nexo]`` settings.
        environ: the environment (default ``os.environ``).

    Returns:
        ``(key, source)``; ``(None, "none")`` when nothing names a key (clear text).

    Raises:
        NexoConfigError: a key is named but incomplete or unreadable.
    """
    env = os.environ if environ is None else environ
    if key_file:
        return load_key_file(Path(key_file).expanduser()), "key file"
    if settings is not None and settings.names_key:
        where = _("the [nexo] settings in {file}").format(file=settings.source or "?")
        if settings.passphrase_file is not None:
            passphrase: str | None = _passphrase_from_file(settings.passphrase_file)
        else:
            passphrase = env.get(ENV_PASSPHRASE)
        if not passphrase:
            raise NexoConfigError(
                _("{where}: set passphrase_file, or the passphrase in {env}").format(
                    where=where, env=ENV_PASSPHRASE
                )
            )
        key = make_key(settings.key_identifier, settings.key_version, passphrase, where)
        return key, "settings"
    named = [name for name in (ENV_IDENTIFIER, ENV_VERSION, ENV_PASSPHRASE) if env.get(name)]
    if not named:
        return None, "none"
    if len(named) != 3:
        raise NexoConfigError(
            _("set all of {names} for the nexo key, or none of them").format(
                names=", ".join((ENV_IDENTIFIER, ENV_VERSION, ENV_PASSPHRASE))
            )
        )
    raw_version = env[ENV_VERSION].strip()
    version: object = (
        int(raw_version) if raw_version.isascii() and raw_version.isdigit() else raw_version
    )
    where = _("the environment ({names})").format(names="POSDIAG_NEXO_*")
    return make_key(env[ENV_IDENTIFIER].strip(), version, env[ENV_PASSPHRASE], where), "environment"


def resolve_ca(ca_option: str | None, settings: NexoSettings | None) -> tuple[Path, bool]:
    """The CA file a terminal's certificate must chain to, and whether it is Adyen's roots.

    Returns:
        ``(path, adyen_roots)``: the address's ``ca=`` (a simulator or lab CA, ``False``) or the
        settings' ``ca_file`` (Adyen's roots as the operator installed them, ``True``).

    Raises:
        NexoConfigError: neither is set, or the file cannot be read.
    """
    if ca_option:
        path, adyen = Path(ca_option).expanduser(), False
    elif settings is not None and settings.ca_file is not None:
        path, adyen = settings.ca_file, True
    else:
        raise NexoConfigError(
            _(
                "no CA to check the terminal's certificate against: add ca=FILE to the address "
                "(a lab terminal or simulator), or set ca_file in the station settings' [nexo] "
                "table to Adyen's root certificates (downloaded from Adyen; posdiag does not "
                "ship them)"
            )
        )
    try:
        size = path.stat().st_size
        readable = path.is_file() and size <= MAX_CA_FILE
    except OSError:
        readable = False
    if not readable:
        raise NexoConfigError(
            _("the CA file {path} does not exist or is not a certificate file").format(path=path)
        )
    if adyen:
        names = adyen_roots_in(path)
        if not names:
            log.warning("nexo.ca_not_adyen", path=str(path))
    return path, adyen


def adyen_roots_in(path: Path) -> list[str]:
    """Which of Adyen's roots a PEM file holds (by SHA-1 fingerprint); [] for none."""
    import ssl

    try:
        text = path.read_bytes()[:MAX_CA_FILE].decode("ascii", "replace")
    except OSError:
        return []
    found = []
    for block in re.findall(
        r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.DOTALL
    ):
        try:
            der = ssl.PEM_cert_to_DER_cert(block)
        except ValueError:
            continue
        name = ADYEN_ROOT_SHA1.get(hashlib.sha1(der).hexdigest())
        if name:
            found.append(name)
    return found
