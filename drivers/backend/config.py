"""The backends file: which backend knows which terminal, and how to reach it.

A TOML file, private to its owner (0600; a file others can read is refused, since it holds API
secrets), at ``$XDG_CONFIG_HOME/posdiag/backends.toml`` (``~/.config/posdiag/backends.toml``) or
given with ``--backends FILE``::

    [backend.tms]                       # the name posdiag reports
    kind = "paxstore"                   # paxstore | adyen | generic
    url = "https://api.whatspos.com/p-market-api"
    key = "RCA9MDH6YN3WSSGPW6TJ"
    secret_env = "POSDIAG_TMS_SECRET"   # any setting NAME_env reads NAME from the environment
    release = "move"                    # the kind's release mode
    depot_reseller = "Depot"
    depot_merchant = "Returns"
    match = { vendors = ["PAX"], models = [], serial_prefixes = [] }
    concurrency = 4                     # calls in flight, shared by a station's workers
    rate = 5.0                          # calls started per second
    timeout = 10.0                      # one attempt
    deadline = 30.0                     # one operation, retries included
    ca = "/path/to/lab-ca.pem"          # TLS roots for a lab backend (default: the system's)

A terminal is matched to every backend whose ``match`` accepts it (catalogue vendor, model,
serial prefix; an empty ``match`` accepts every terminal). Secrets never leave this module in
clear: ``BackendConfig``'s ``repr`` hides them and errors name the setting, not its value.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import BackendConfigError

__all__ = [
    "KINDS",
    "SECRET_SETTINGS",
    "BackendConfig",
    "Match",
    "default_backends_path",
    "load_backends",
    "parse_backends",
]

KINDS = ("paxstore", "adyen", "generic")
SECRET_SETTINGS = frozenset(
    {"secret", "key", "api_key", "password", "private_key", "md5_key", "aes_key", "token"}
)
"""Settings whose values are credentials: kept out of reprs, logs and errors."""
COMMON_SETTINGS = frozenset(
    {"kind", "url", "match", "concurrency", "rate", "timeout", "deadline", "retries", "ca"}
)
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
MAX_FILE = 256 * 1024


def default_backends_path() -> Path:
    """``$XDG_CONFIG_HOME/posdiag/backends.toml``, or ``~/.config/posdiag/backends.toml``."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "posdiag" / "backends.toml"


@dataclass(frozen=True)
class Match:
    """Which terminals a backend knows: empty lists accept anything."""

    vendors: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    serial_prefixes: tuple[str, ...] = ()

    def accepts(self, vendor: str | None, model: str | None, serial: str | None) -> bool:
        """True when every non-empty rule accepts the terminal (case-insensitive)."""
        if self.vendors and (vendor or "").casefold() not in {v.casefold() for v in self.vendors}:
            return False
        if self.models and (model or "").casefold() not in {m.casefold() for m in self.models}:
            return False
        return not self.serial_prefixes or any(
            (serial or "").upper().startswith(prefix.upper()) for prefix in self.serial_prefixes
        )


@dataclass(frozen=True)
class BackendConfig:
    """One configured backend; ``settings`` holds the kind's own keys, secrets resolved."""

    name: str
    kind: str
    url: str
    match: Match = Match()
    concurrency: int = 4
    rate: float = 5.0
    timeout: float = 10.0
    deadline: float = 30.0
    retries: int = 4
    ca: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        hidden = sorted(k for k in self.settings if k in SECRET_SETTINGS)
        return (
            f"BackendConfig(name={self.name!r}, kind={self.kind!r}, url={self.url!r}, "
            f"secrets={hidden})"
        )

    def setting(self, name: str, default: Any = None) -> Any:
        """A kind-specific setting."""
        return self.settings.get(name, default)

    def require(self, name: str) -> Any:
        """A setting the kind cannot work without, or a one-line configuration error."""
        value = self.settings.get(name)
        if value is None or value == "":
            raise BackendConfigError(f"backend {self.name!r} needs the setting {name!r}")
        return value


def load_backends(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> list[BackendConfig]:
    """Read the backends file; none configured when the default file does not exist.

    Raises:
        BackendConfigError: an unreadable, public or malformed file, one line naming the problem.
    """
    explicit = path is not None
    path = path or default_backends_path()
    try:
        info = path.stat()
    except FileNotFoundError:
        if explicit:
            raise BackendConfigError(f"backends file {path} does not exist") from None
        return []
    except OSError as exc:
        raise BackendConfigError(f"cannot read backends file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BackendConfigError(f"backends file {path} is not a file")
    if info.st_mode & 0o077:
        raise BackendConfigError(
            f"backends file {path} can be read by others (it holds API secrets): chmod 600 {path}"
        )
    if info.st_size > MAX_FILE:
        raise BackendConfigError(f"backends file {path} is larger than {MAX_FILE // 1024} KiB")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendConfigError(f"cannot read backends file {path}: {exc}") from None
    return parse_backends(text, source=str(path), base=path.parent, environ=environ)


def parse_backends(
    text: str,
    *,
    source: str = "backends file",
    base: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[BackendConfig]:
    """Parse the backends TOML (see the module docstring)."""
    environ = os.environ if environ is None else environ
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BackendConfigError(f"{source}: not valid TOML ({exc})") from None
    unknown_top = sorted(set(document) - {"backend"})
    if unknown_top:
        raise BackendConfigError(
            f"{source}: unknown section [{unknown_top[0]}] (expected [backend.NAME])"
        )
    tables = document.get("backend", {})
    if not isinstance(tables, dict):
        raise BackendConfigError(f"{source}: [backend] must hold named tables ([backend.NAME])")
    configs = []
    for name, table in tables.items():
        where = f"{source}: backend {name!r}"
        if not _NAME.fullmatch(name):
            raise BackendConfigError(
                f"{source}: backend name {name[:40]!r} (letters, digits, . _ -)"
            )
        if not isinstance(table, dict):
            raise BackendConfigError(f"{where} must be a table")
        configs.append(_one(name, table, where, base, environ))
    return configs


def _one(
    name: str, table: dict[str, Any], where: str, base: Path | None, environ: Mapping[str, str]
) -> BackendConfig:
    kind = table.get("kind")
    if kind not in KINDS:
        raise BackendConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    url = table.get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^\s/?#]+", url):
        raise BackendConfigError(f"{where}: url must be an http(s) URL")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        if key in COMMON_SETTINGS:
            continue
        if key.endswith("_env"):
            setting = key[: -len("_env")]
            if not isinstance(value, str) or not _ENV.fullmatch(value):
                raise BackendConfigError(f"{where}: {key} must name an environment variable")
            if value not in environ:
                raise BackendConfigError(
                    f"{where}: {setting} comes from ${value}, which is not set"
                )
            settings[setting] = environ[value]
        else:
            settings.setdefault(key, value)
    if "profile" in settings and base is not None and isinstance(settings["profile"], str):
        candidate = Path(settings["profile"])
        if not candidate.is_absolute() and (base / candidate).exists():
            settings["profile"] = str(base / candidate)
    match = table.get("match", {})
    if not isinstance(match, dict) or set(match) - {"vendors", "models", "serial_prefixes"}:
        raise BackendConfigError(f"{where}: match takes vendors, models and serial_prefixes")
    lists = {}
    for key in ("vendors", "models", "serial_prefixes"):
        items = match.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise BackendConfigError(f"{where}: match.{key} must be a list of strings")
        lists[key] = tuple(items)
    try:
        concurrency = int(table.get("concurrency", 4))
        rate = float(table.get("rate", 5.0))
        timeout = float(table.get("timeout", 10.0))
        deadline = float(table.get("deadline", 30.0))
        retries = int(table.get("retries", 4))
    except (TypeError, ValueError):
        raise BackendConfigError(
            f"{where}: concurrency, rate, timeout, deadline and retries are numbers"
        ) from None
    if not 1 <= concurrency <= 256 or not 0 < rate <= 10_000 or not 0 <= retries <= 10:
        raise BackendConfigError(f"{where}: concurrency 1–256, rate above 0, retries 0–10")
    if not 0 < timeout <= 600 or not 0 < deadline <= 3600:
        raise BackendConfigError(f"{where}: timeout 0–600 s and deadline 0–3600 s")
    ca = table.get("ca")
    if ca is not None and not isinstance(ca, str):
        raise BackendConfigError(f"{where}: ca must be a file path")
    return BackendConfig(
        name=name,
        kind=kind,
        url=url.rstrip("/"),
        match=Match(**lists),
        concurrency=concurrency,
        rate=rate,
        timeout=timeout,
        deadline=deadline,
        retries=retries,
        ca=ca,
        settings=settings,
    )
